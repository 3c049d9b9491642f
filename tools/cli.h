/*
 * cli.h — the plumbing every `strata` subcommand shares: the command table
 * entry type, the usage-error convention, and a printer that writes to the
 * terminal and, optionally, to a report file at the same time.
 *
 * Adding a subcommand: write tools/cmd_<name>.c with a handler of type
 * cli_handler, declare it below, and add one row to the table in strata.c.
 *
 * Exit statuses (shared by every command, tested by tests/cli):
 *   0  success
 *   1  the operation failed (the message names the strata_strerror reason)
 *   2  usage error: unknown command, bad or extra arguments
 */
#ifndef STRATA_TOOLS_CLI_H
#define STRATA_TOOLS_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* argv[0] is the command's own name; argv[argc] is NULL. Returns an exit
 * status from the enum above. */
typedef int (*cli_handler)(int argc, char **argv);

typedef struct cli_command {
	const char *name;
	const char *args;    /* argument synopsis for usage lines, "" if none */
	const char *summary; /* one line for `strata --help` */
	const char *help;    /* longer text for `strata help NAME`, may be NULL */
	cli_handler run;
} cli_command;

/* The table lives in strata.c; it ends with an all-NULL row. */
extern const cli_command cli_commands[];

const cli_command *cli_find(const char *name);
/* Prints "strata: <message>" and the command's usage line to stderr and
 * returns CLI_USAGE, so handlers can `return cli_usage_error(...)`. */
int cli_usage_error(const cli_command *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Commands taking exactly one DIR: 0 and *dir, or the usage error's
 * status (already reported). */
int cli_dir_arg(const cli_command *cmd, int argc, char **argv, const char **dir);
/* Full help for one command on `out`. */
void cli_print_command_help(FILE *out, const cli_command *cmd);
/* True when argv[i] asks for help (-h / --help). */
bool cli_is_help(const char *arg);

/* A tee: everything printed goes to stdout and, once a file is attached,
 * to that file too, so a command's report and its terminal output match. */
typedef struct cli_out {
	FILE *file; /* NULL: terminal only */
} cli_out;

void cli_printf(cli_out *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- shared printers (print.c) ------------------------------------------ */
struct strata_store_stats;
/* "1.5 MiB"-style size into buf (at least 32 bytes); returns buf. */
const char *cli_fmt_bytes(char *buf, size_t len, uint64_t bytes);
/* The statistics block used by `strata demo` (and later `strata stats`). */
void cli_print_stats(cli_out *out, const struct strata_store_stats *st);

/* ---- reading a store directory without opening it (cmd_info.c) --------- */
struct sb_state;
struct sb_read_report;
/* dir + "/" + name into buf; false, with a message on stderr, if too long. */
bool cli_path(char *buf, size_t len, const char *dir, const char *name);
/* Reads DIR/SUPER read-only (sb_read). CLI_OK, or CLI_FAIL after printing
 * "strata CMD: ..." to stderr: no such directory, not a store (no SUPER,
 * or STRATA_EFORMAT), truncated, both slots corrupt, or an I/O error. */
int cli_read_super(const char *cmd, const char *dir, struct sb_state *sb,
		   struct sb_read_report *rep);

/* ---- opening a store (cmd_check.c; check and checkpoint) --------------- */
struct strata_store;
/* Reads DIR/SUPER first (cli_read_super; into *before if not NULL), then
 * opens the store DURABLE without CREATE, timed checkpoints off, and prints
 * "recovery: <what recovery did>". CLI_OK, or CLI_FAIL after a message on
 * stderr naming strata_last_error(). */
int cli_open_store(const char *cmd, const char *dir, struct strata_store **out,
		   struct sb_state *before);
/* strata_close; CLI_FAIL with a message if it (its final checkpoint) fails. */
int cli_close_store(const char *cmd, const char *dir, struct strata_store *s);

/* ---- handlers, one file each ------------------------------------------- */
int cmd_version(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_wal(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_checkpoint(int argc, char **argv);
int cmd_compact(int argc, char **argv);
int cmd_kv(int argc, char **argv);
int cmd_xt(int argc, char **argv);

#endif /* STRATA_TOOLS_CLI_H */
