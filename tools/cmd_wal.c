/*
 * cmd_wal.c — `strata wal DIR [--from LSN] [--limit N] [--frames]`: dumps
 * the commits of a store's WAL as replay sees them, one line per commit
 * and optionally one per frame, then a summary and what replay found at
 * the end of the log (a torn tail, or corruption: exit 1).
 *
 * Built on wal_replay() without salvage, reading through io_env_posix().
 * Read-only: the superblock gives the WAL's UUID, file size and start LSN;
 * a torn tail is reported, never cut (wal_cut_tail is not called).
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "io.h"
#include "strata/strata.h"
#include "superblock.h"
#include "wal.h"

/* Returned by the replay callback to stop at --limit: positive, so it can
 * never be mistaken for a Strata status or -errno. */
#define DUMP_LIMIT_REACHED 1

typedef struct wal_opts {
	const char *dir;
	uint64_t from;
	bool has_from;
	uint64_t limit; /* 0: no limit */
	bool frames;
} wal_opts;

/* ---- arguments -------------------------------------------------------------- */

/* A whole unsigned number, decimal or 0x-hex. */
static bool parse_u64(const char *s, uint64_t *out)
{
	if (!isdigit((unsigned char)s[0]))
		return false;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

/* Reads the value of option argv[*i] into *v; 0 or a usage error. */
static int option_value(const cli_command *self, int argc, char **argv, int *i, uint64_t *v)
{
	const char *opt = argv[*i];
	if (*i + 1 >= argc)
		return cli_usage_error(self, "%s needs a value", opt);
	const char *val = argv[++*i];
	if (!parse_u64(val, v))
		return cli_usage_error(self, "bad %s value '%s'", opt, val);
	return 0;
}

/* One argument, or one option and its value; 0 or a usage error. */
static int parse_one(const cli_command *self, int argc, char **argv, int *i, wal_opts *o)
{
	const char *a = argv[*i];
	if (strcmp(a, "--frames") == 0) {
		o->frames = true;
		return 0;
	}
	if (strcmp(a, "--from") == 0) {
		o->has_from = true;
		int rc = option_value(self, argc, argv, i, &o->from);
		return rc || o->from % 8 == 0
			       ? rc
			       : cli_usage_error(self, "--from %s: frames start at multiples of 8", argv[*i]);
	}
	if (strcmp(a, "--limit") == 0) {
		int rc = option_value(self, argc, argv, i, &o->limit);
		return rc || o->limit ? rc : cli_usage_error(self, "--limit must be at least 1");
	}
	if (a[0] == '-')
		return cli_usage_error(self, "unknown option '%s'", a);
	if (a[0] == '\0')
		return cli_usage_error(self, "bad argument ''");
	if (o->dir)
		return cli_usage_error(self, "too many arguments");
	o->dir = a;
	return 0;
}

static int parse_args(const cli_command *self, int argc, char **argv, wal_opts *o)
{
	for (int i = 1; i < argc; i++) {
		int rc = parse_one(self, argc, argv, &i, o);
		if (rc)
			return rc;
	}
	return o->dir ? 0 : cli_usage_error(self, "missing DIR");
}

/* ---- frames and commits ----------------------------------------------------- */

/* A root name as text: printable ASCII as is, anything else as \xNN. */
static void print_name(const char *name, uint16_t len)
{
	for (uint16_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c >= 0x20 && c < 0x7f && c != '\\')
			putchar(c);
		else
			printf("\\x%02x", c);
	}
}

static void print_frame(const wal_frame *f)
{
	wal_node_rec n;
	wal_root_rec r;
	uint64_t id;
	if (f->type == WAL_NODE && !walf_node_decode(f, &n)) {
		printf("    NODE id=0x%016" PRIx64 " size=%" PRIu32 " kind=%u\n", n.id, n.size,
		       (unsigned)n.kind);
	} else if (f->type == WAL_RETIRE && !walf_retire_decode(f, &id)) {
		printf("    RETIRE id=0x%016" PRIx64 "\n", id);
	} else if (f->type == WAL_ROOT && !walf_root_decode(f, &r)) {
		printf("    ROOT name=");
		print_name(r.name, r.name_len);
		printf(" id=0x%016" PRIx64 "\n", r.id);
	} else {
		printf("    frame type=%u len=%" PRIu32 " lsn=%" PRIu64 ": payload does not decode\n",
		       (unsigned)f->type, f->len, f->lsn);
	}
}

typedef struct dump {
	const wal_opts *o;
	uint64_t shown;
} dump;

static int on_commit(void *ctx, const wal_commit_view *c)
{
	dump *d = ctx;
	if (d->o->limit && d->shown == d->o->limit)
		return DUMP_LIMIT_REACHED;
	printf("epoch %" PRIu64 " lsn %" PRIu64 " frames %zu\n", c->epoch, c->lsn, c->nframes);
	if (d->o->frames)
		for (size_t i = 0; i < c->nframes; i++)
			print_frame(&c->frames[i]);
	d->shown++;
	return 0;
}

/* ---- the command ------------------------------------------------------------ */

/* FORMAT.md: a power of two of at least 1 MiB; the 1 TiB cap keeps the
 * LSN arithmetic below (and replay's) far from wrapping. */
static bool valid_file_size(uint64_t f)
{
	return f >= WAL_MIN_FILE && f <= (UINT64_C(1) << 40) && (f & (f - 1)) == 0;
}

static void print_summary(int rc, const wal_replay_result *res)
{
	printf("summary: commits %" PRIu64 ", bytes %" PRIu64 ", end LSN %" PRIu64
	       ", last epoch %" PRIu64 "%s\n",
	       res->commits, res->bytes, res->end_lsn, res->last_epoch,
	       rc == DUMP_LIMIT_REACHED ? " (stopped at --limit)" : "");
	if (res->message[0])
		printf("replay: %s\n", res->message);
	if (rc == 0 && res->cut_to > res->cut_from)
		printf("tail: LSN %" PRIu64 " to %" PRIu64 " (%" PRIu64
		       " bytes) would be cut when the store is opened; strata wal changed nothing\n",
		       res->cut_from, res->cut_to, res->cut_to - res->cut_from);
}

/* A --from LSN that is not where a frame starts reads as a bad frame: say
 * so, since replay's verdict then says nothing about the log. */
static void note_bad_from(const wal_opts *o, int rc, const wal_replay_result *res)
{
	if (o->has_from && res->commits == 0 && (rc == STRATA_ECORRUPT || res->message[0]))
		printf("note: no valid frame at LSN %" PRIu64 "; --from must be the LSN of a commit as"
		       " `strata wal %s` lists them, or this is not the log's real state\n",
		       o->from, o->dir);
}

static int replay_failed(const char *dir, int rc, const wal_replay_result *res)
{
	if (rc == STRATA_ECORRUPT && res->message[0])
		fprintf(stderr, "strata wal: %s: %s: %s\n", dir, strata_strerror(rc), res->message);
	else
		fprintf(stderr, "strata wal: %s: %s\n", dir, strata_strerror(rc));
	return CLI_FAIL;
}

static int dump_wal(const wal_opts *o, const sb_state *sb)
{
	char size[32];
	if (!valid_file_size(sb->wal_file_size)) {
		fprintf(stderr, "strata wal: %s: the superblock's WAL file size %" PRIu64
				" is not a power of two from 1 MiB to 1 TiB\n", o->dir, sb->wal_file_size);
		return CLI_FAIL;
	}
	wal_config cfg = {.env = io_env_posix(), .dir = o->dir, .file_size = sb->wal_file_size};
	memcpy(cfg.uuid, sb->uuid, sizeof cfg.uuid);
	uint64_t start = o->has_from ? o->from : sb->wal_start_lsn;
	if (start > UINT64_MAX - 2 * sb->wal_file_size) /* replay's arithmetic would wrap */
		return cli_usage_error(cli_find("wal"), "LSN %" PRIu64 " is past any possible log", start);
	printf("WAL of %s from LSN %" PRIu64 " (superblock start LSN %" PRIu64 ", files of %s)\n",
	       o->dir, start, sb->wal_start_lsn, cli_fmt_bytes(size, sizeof size, sb->wal_file_size));
	dump d = {.o = o};
	wal_replay_result res;
	int rc = wal_replay(&cfg, start, false, on_commit, &d, &res);
	print_summary(rc, &res);
	note_bad_from(o, rc, &res);
	if (rc && rc != DUMP_LIMIT_REACHED)
		return replay_failed(o->dir, rc, &res);
	return CLI_OK;
}

int cmd_wal(int argc, char **argv)
{
	const cli_command *self = cli_find("wal");
	for (int i = 1; i < argc; i++)
		if (cli_is_help(argv[i])) {
			cli_print_command_help(stdout, self);
			return CLI_OK;
		}
	wal_opts o = {0};
	int rc = parse_args(self, argc, argv, &o);
	if (rc)
		return rc;
	sb_state sb;
	sb_read_report rep;
	if ((rc = cli_read_super("wal", o.dir, &sb, &rep)))
		return rc;
	return dump_wal(&o, &sb);
}
