/*
 * xt.h — the X-tree's part of the `strata` tool: `strata xt ...`
 * (cmd_xt.c) and the X-tree section of `strata check` (xt_check.c).
 */
#ifndef STRATA_TOOLS_XT_H
#define STRATA_TOOLS_XT_H
#include <stdint.h>

#include <stdbool.h>

#include "strata/xtree.h"

#define XT_MAXD STRATA_XT_DIMS_MAX

/* The parsed command line. */
typedef struct xargs {
	const char *sub, *dir, *name, *file, *svg, *box, *point, *metric;
	uint32_t dims, node_size, k;
	strata_xt_pred pred;
	bool in_memory;
} xargs;

struct strata_store;
/* Prints "strata xt SUB: what: reason" to stderr; returns CLI_FAIL. */
int xt_fail(const xargs *a, const char *what, int rc);
/* Creates tree a->name with `dims` if its root is empty (must_be_new:
 * an existing tree is an error). CLI status. */
int xt_ensure_tree(const xargs *a, strata_store *s, uint32_t dims, bool must_be_new);
/* Up to max doubles separated by sep (' ': blanks); -1 on a bad number. */
int xt_parse_doubles(const char *s, char sep, double *out, int max);
/* Prints a window query's ids ascending / a kNN's `id distance` lines;
 * h: tree a->name opened on a snapshot (strata_xt_handle_open). */
int xt_run_query(const xargs *a, const strata_xt_handle *h, uint32_t d, const double *box, int n,
		 strata_xt_pred pred);
int xt_run_knn(const xargs *a, const strata_xt_handle *h, uint32_t d, const double *pt, int n,
	       uint32_t k, strata_xt_metric mt);
/* The handler (cmd_xt.c; also declared in cli.h with the others). */
int cmd_xt(int argc, char **argv);
/* `xt load` and `xt batch` (xt_text.c). */
int xt_cmd_load(const xargs *a, strata_store *s);
int xt_cmd_batch(const xargs *a, strata_store *s);


/* Runs strata_xt_check on every root holding an X-tree; returns the number
 * of trees with problems, *trees the number checked. */
uint64_t xt_check_trees(strata_store *s, strata_report_fn report, void *ctx, uint64_t *trees);
/* The X-tree step of `strata demo` (xt_demo.c): prints to out. */
struct cli_out;
int xt_demo(strata_store *s, struct cli_out *out);
#endif
