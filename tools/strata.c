/*
 * strata.c — entry point of the `strata` command-line tool: the command
 * table, dispatch, and the help and usage texts. The commands themselves
 * live in tools/cmd_<name>.c (see cli.h for how to add one).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "strata/strata.h"

static int cmd_help(int argc, char **argv);

/* Order here is the order `strata --help` lists them in. */
const cli_command cli_commands[] = {
	{"help", "[COMMAND]", "list the commands, or explain one",
	 "Without COMMAND, lists every command. With it, prints that command's\n"
	 "usage and description. `strata --help` and `strata COMMAND --help` do\n"
	 "the same.",
	 cmd_help},
	{"version", "", "print the library version", "Prints `strata X.Y.Z`, the version of the linked Strata library.",
	 cmd_version},
	{"demo", "[DIR]", "end-to-end demonstration of the substrate (report in DIR)",
	 "Builds a small linked list of nodes in an in-memory store, updates it\n"
	 "copy-on-write while an old snapshot stays open, shows both snapshots,\n"
	 "aborts a transaction, shows stale NodeID detection after reclamation,\n"
	 "runs the invariant checker and prints the store statistics.\n"
	 "Everything printed is also written to DIR/demo-report.txt; DIR is\n"
	 "created if needed and defaults to ./strata-demo.",
	 cmd_demo},
	{"info", "DIR [--stats]", "describe a store directory: superblock and files",
	 "Reads DIR/SUPER without opening the store and prints the format\n"
	 "version, which of the two slots is current and the state of each,\n"
	 "the generation, store UUID, checkpoint (generation, epoch, size),\n"
	 "clean-shutdown flag, WAL start LSN and WAL file size; then the WAL\n"
	 "files present (size, and what each header says), the checkpoint files\n"
	 "(ckpt.*) and the data file. Everything is opened read-only.\n"
	 "Exits 1 if DIR is not a store (no SUPER, or not a Strata superblock),\n"
	 "if SUPER is truncated, or if both of its slots are corrupt.\n"
	 "--stats also opens the store (recovering it, as check does) and\n"
	 "prints what strata_stats reports: live and retired nodes, live bytes,\n"
	 "file bytes (data file and checkpoint), space amplification (file /\n"
	 "live), object-table chunks on disk and loaded, and this open's cache\n"
	 "and compaction figures.",
	 cmd_info},
	{"wal", "DIR [--from LSN] [--limit N] [--frames]", "dump the commits in a store's WAL",
	 "Replays the WAL of DIR read-only, from the superblock's WAL start LSN\n"
	 "or from LSN (decimal or 0x-hex; the LSN of a commit as this command\n"
	 "lists them), and prints one line per commit:\n"
	 "`epoch E lsn L frames N`. --frames adds each frame of the commit:\n"
	 "`NODE id=.. size=.. kind=..`, `RETIRE id=..`, `ROOT name=.. id=..`.\n"
	 "--limit N stops after N commits. Ends with a summary (commits, bytes\n"
	 "read, end LSN) and what replay found after the last commit: a torn\n"
	 "tail is reported and left in place (nothing is ever written).\n"
	 "Exits 1 on corruption (a bad frame followed by a commit written after\n"
	 "it was synced), after printing the commits before it and naming the\n"
	 "file, offset and LSN of the bad frame.",
	 cmd_wal},
	{"check", "DIR", "open a store and verify it: invariants, image CRCs, roots",
	 "Opens the store in DIR and checks it: strata_check (object-table\n"
	 "states and epochs against the allocator bitmaps, the node counters,\n"
	 "every root names a visible node), then every live and retired node\n"
	 "image: one on disk is read back and its CRC32C checked, one in memory\n"
	 "is held to the CRC32C its checkpoint recorded (nodes replayed from\n"
	 "the WAL were checked by replay); and every root's node must resolve.\n"
	 "Prints what recovery did, one `problem: ...` line per\n"
	 "problem (naming the node), and a last line\n"
	 "`check: N nodes, M images verified, P problems`.\n"
	 "Exits 0 if clean; 1 if problems were found, or if DIR is not a store\n"
	 "or cannot be opened (another process has it open, corrupt WAL, ...).\n"
	 "Note: unlike info and wal, check opens the store, and opening\n"
	 "recovers it: the WAL is replayed, a torn tail is cut, and closing\n"
	 "checkpoints the recovered state. Run `strata wal DIR` first to see a\n"
	 "WAL without changing anything.",
	 cmd_check},
	{"checkpoint", "DIR", "open a store, write a checkpoint, close it",
	 "Opens the store in DIR (recovering it, as check does), writes a\n"
	 "checkpoint with strata_checkpoint (object table, roots, node images;\n"
	 "the WAL it makes unnecessary is recycled) and prints the checkpoint\n"
	 "generation and epoch that DIR/SUPER then names. Closing the store\n"
	 "writes the clean-shutdown checkpoint, printed as `closed: ...`.\n"
	 "Exits 1 if DIR is not a store, cannot be opened, or a write fails.",
	 cmd_checkpoint},
	{"compact", "DIR", "open a store, compact its data file, close it",
	 "Opens the store in DIR (recovering it, as check does) and runs\n"
	 "strata_compact: in every size class whose segments are at most half\n"
	 "full, live nodes move into the lowest-numbered segments (their\n"
	 "NodeIDs do not change), each round recorded by a checkpoint, and the\n"
	 "emptied segments at the end of the data file are cut off. Prints the\n"
	 "live bytes, file bytes and amplification before and after, and what\n"
	 "moved. A crash at any point leaves a complete store (the old places\n"
	 "or the new ones). Exits 1 if DIR is not a store, cannot be opened, or\n"
	 "a write fails.",
	 cmd_compact},
	{"kv", "SUB DIR NAME ...", "the B+tree from the shell: put, get, del, scan, load, batch, stats",
	 "  kv put DIR NAME KEY VALUE      insert or replace\n"
	 "  kv get DIR NAME KEY            print the value\n"
	 "  kv del DIR NAME KEY            delete (exit 1 if absent)\n"
	 "  kv scan DIR NAME [--from K] [--to K] [--limit N]\n"
	 "                                 print `key<TAB>value` for keys in [K, K)\n"
	 "  kv load DIR NAME FILE.tsv      lines `key<TAB>value`: bulk load into an\n"
	 "                                 empty tree when sorted, else puts (1000 per\n"
	 "                                 commit); progress on a terminal\n"
	 "  kv batch DIR NAME FILE         lines `p K V`, `d K`, `g K`, `s FROM TO`,\n"
	 "                                 `c` (commit; the end commits too), `#...`\n"
	 "  kv stats DIR NAME              height, nodes, fill, bytes\n"
	 "Keys and values are escaped text in and out: \\\\, \\t, \\n, \\r, \\xHH.\n"
	 "put, load and batch create the store and the tree if missing\n"
	 "(--node-size N, default 4096). --in-memory: a fresh in-process store\n"
	 "instead of DIR (nothing is kept). Exits 1 on a missing key or a failure.",
	 cmd_kv},
	{"xt", "SUB DIR NAME ...", "the X-tree from the shell: create, load, query, knn, batch, stats, draw",
	 "  xt create DIR NAME --dims D [--node-size N]\n"
	 "  xt load DIR NAME FILE.csv      rows `id,min1..minD,max1..maxD` or `id,x1..xD`;\n"
	 "                                 STR bulk load into an empty tree, else inserts\n"
	 "                                 (10000 per commit); progress on a terminal\n"
	 "  xt query DIR NAME --box min1,..,minD,max1,..,maxD [--contains|--within]\n"
	 "                                 ids of the entries meeting (containing, within)\n"
	 "                                 the box, ascending, one per line\n"
	 "  xt knn DIR NAME --point x1,..,xD -k K [--metric l2|l1|linf]\n"
	 "                                 `id distance` lines, nearest first (ties: id)\n"
	 "  xt batch DIR NAME FILE         lines `i ID COORDS`, `d ID COORDS` (a point or a\n"
	 "                                 box), `q COORDS` (intersects), `k K POINT`, `c`\n"
	 "                                 (commit; the end commits too), `#...`; each\n"
	 "                                 query answers from the last commit, then `--`\n"
	 "  xt stats DIR NAME              height, nodes per level, supernodes, fill, overlap\n"
	 "  xt draw DIR NAME --svg OUT.svg 2-D: every node's MBR, supernodes in red\n"
	 "load and batch create the store and the tree if missing (--dims D, else\n"
	 "points of as many dimensions as the first row). --in-memory (create, load,\n"
	 "batch): a fresh in-process store instead of DIR, tree `xt`; nothing is kept.\n"
	 "Exits 1 on bad input or a failure.",
	 cmd_xt},
	{NULL, NULL, NULL, NULL, NULL},
};

static const char usage_line[] = "usage: strata COMMAND [ARGUMENTS]\n";

const cli_command *cli_find(const char *name)
{
	for (const cli_command *c = cli_commands; c->name; c++)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

bool cli_is_help(const char *arg)
{
	return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

static void print_command_usage(FILE *out, const cli_command *cmd)
{
	fprintf(out, "usage: strata %s%s%s\n", cmd->name, cmd->args[0] ? " " : "", cmd->args);
}

void cli_print_command_help(FILE *out, const cli_command *cmd)
{
	print_command_usage(out, cmd);
	fprintf(out, "\n%s.\n", cmd->summary);
	if (cmd->help)
		fprintf(out, "\n%s\n", cmd->help);
}

static void print_overview(FILE *out)
{
	fputs(usage_line, out);
	fprintf(out, "\nStrata %s: command-line tool for the MVCC copy-on-write node store.\n\n"
		     "Commands:\n", strata_version());
	for (const cli_command *c = cli_commands; c->name; c++) {
		char synopsis[64];
		snprintf(synopsis, sizeof synopsis, "%s %s", c->name, c->args);
		fprintf(out, "  %-18s %s\n", synopsis, c->summary);
	}
	fputs("\nRun `strata help COMMAND` for details on one command.\n"
	      "Exit status: 0 success, 1 failure, 2 usage error.\n", out);
}

/* Usage errors that happen before a command is chosen. */
static int top_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int top_usage_error(const char *fmt, ...)
{
	va_list ap;
	fputs("strata: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fputs(usage_line, stderr);
	fputs("Run `strata --help` for the list of commands.\n", stderr);
	return CLI_USAGE;
}

int cli_usage_error(const cli_command *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "strata %s: ", cmd->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	print_command_usage(stderr, cmd);
	return CLI_USAGE;
}

int cli_dir_arg(const cli_command *cmd, int argc, char **argv, const char **dir)
{
	if (argc < 2)
		return cli_usage_error(cmd, "missing DIR");
	if (argc > 2)
		return cli_usage_error(cmd, "too many arguments");
	if (argv[1][0] == '-' || argv[1][0] == '\0')
		return cli_usage_error(cmd, "bad argument '%s'", argv[1]);
	*dir = argv[1];
	return 0;
}

void cli_printf(cli_out *out, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	if (out && out->file) {
		va_start(ap, fmt);
		vfprintf(out->file, fmt, ap);
		va_end(ap);
	}
}

static int cmd_help(int argc, char **argv)
{
	const cli_command *self = cli_find("help");
	if (argc > 2)
		return cli_usage_error(self, "too many arguments");
	if (argc == 1) {
		print_overview(stdout);
		return CLI_OK;
	}
	const cli_command *cmd = cli_find(argv[1]);
	if (!cmd)
		return cli_usage_error(self, "unknown command '%s'", argv[1]);
	cli_print_command_help(stdout, cmd);
	return CLI_OK;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return top_usage_error("no command given");
	if (cli_is_help(argv[1]))
		return cmd_help(1, argv + 1);
	if (argv[1][0] == '-')
		return top_usage_error("unknown option '%s'", argv[1]);
	const cli_command *cmd = cli_find(argv[1]);
	if (!cmd)
		return top_usage_error("unknown command '%s'", argv[1]);
	/* `strata CMD --help` is answered here so handlers need not repeat it. */
	if (argc > 2 && cli_is_help(argv[2])) {
		cli_print_command_help(stdout, cmd);
		return CLI_OK;
	}
	return cmd->run(argc - 1, argv + 1);
}
