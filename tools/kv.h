/*
 * kv.h — what `strata kv` (cmd_kv.c) shares with its text helpers
 * (kv_text.c) and `strata check` (kv_check.c).
 *
 * Text form of keys and values, used for arguments, TSV files, batch files
 * and output alike: printable ASCII stands for itself, except `\`; other
 * bytes are written \t, \n, \r, \\ or \xHH. kv_unescape accepts exactly
 * what kv_escape writes (and any \xHH), so output can be fed back in.
 */
#ifndef STRATA_TOOLS_KV_H
#define STRATA_TOOLS_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "strata/strata.h"

/* Writes bytes p[0..n) escaped to f. */
void kv_escape(FILE *f, const void *p, size_t n);
/* Unescapes s[0..n) in place; *out_len gets the byte length. False on a
 * bad escape (a lone `\`, \x without two hex digits, an unknown letter). */
bool kv_unescape(char *s, size_t n, size_t *out_len);

/* Reads one line (without its newline) into *line (grown as needed).
 * Returns its length, or -1 at end of file. */
long kv_getline(FILE *f, char **line, size_t *cap);

/* Progress on stderr when it is a terminal: "\rWHAT: N lines (P%)". */
typedef struct kv_progress {
	bool on;
	long total; /* bytes in the file, 0 if unknown */
	const char *what;
} kv_progress;
void kv_progress_start(kv_progress *p, const char *what, FILE *f);
void kv_progress_update(kv_progress *p, uint64_t lines, FILE *f);
void kv_progress_end(kv_progress *p, uint64_t lines);

/* `strata check`: runs strata_bpt_check on every root that holds a
 * B+tree; problems go to report. *trees gets how many were checked.
 * Returns how many trees had problems. */
uint64_t kv_check_bptrees(strata_store *s, strata_report_fn report, void *ctx, uint64_t *trees);

/* `strata demo`'s B+tree step (kv_demo.c): builds two trees in store s
 * and prints what it shows to out. 0 or the failing call's status. */
struct cli_out;
int kv_demo(strata_store *s, struct cli_out *out);

#endif /* STRATA_TOOLS_KV_H */
