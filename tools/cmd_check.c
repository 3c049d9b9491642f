/*
 * cmd_check.c — `strata check DIR`: opens the store (which recovers it),
 * runs the invariant checker (strata_check: object table against the
 * allocator bitmaps, epochs, counters, roots) and reads back every node
 * image (strata_verify_images: CRCs, roots resolve), printing each problem
 * and a summary line. Exit 0 clean, 1 problems found or no store.
 *
 * Also owns cli_open_store() and cli_close_store(), which `strata
 * checkpoint` shares: a store is opened only after its superblock has been
 * read read-only (so a directory that is no store is reported the way
 * `strata info` reports it, and nothing is written into it), and with the
 * coordinator's timed and size-triggered checkpoints off, so the command
 * alone decides what is written.
 */
#include <inttypes.h>
#include <stdio.h>

#include "cli.h"
#include "kv.h"
#include "strata/strata.h"
#include "superblock.h"
#include "verify.h"
#include "xt.h"

int cli_open_store(const char *cmd, const char *dir, strata_store **out, struct sb_state *before)
{
	sb_state sb;
	sb_read_report rep;
	int rc = cli_read_super(cmd, dir, before ? before : &sb, &rep);
	if (rc)
		return rc;
	strata_options o;
	strata_options_init(&o);
	o.mode = STRATA_DURABLE;
	o.path = dir;
	o.checkpoint_interval_ms = 0;
	o.checkpoint_wal_bytes = UINT64_MAX;
	if ((rc = strata_open(&o, out))) {
		fprintf(stderr, "strata %s: %s: cannot open the store: %s\n  %s\n", cmd, dir,
			strata_strerror(rc), strata_last_error());
		return CLI_FAIL;
	}
	printf("recovery: %s\n", strata_last_error());
	return CLI_OK;
}

int cli_close_store(const char *cmd, const char *dir, strata_store *s)
{
	int rc = strata_close(s);
	if (rc)
		fprintf(stderr, "strata %s: %s: closing the store (final checkpoint): %s\n", cmd, dir,
			strata_strerror(rc));
	return rc ? CLI_FAIL : CLI_OK;
}

/* ---- the checks -------------------------------------------------------------- */

static void print_problem(void *ctx, const char *message)
{
	(*(uint64_t *)ctx)++;
	printf("problem: %s\n", message);
}

static void section_result(const char *what, uint64_t problems)
{
	if (problems)
		printf("%s: %" PRIu64 " problem%s\n", what, problems, problems == 1 ? "" : "s");
	else
		printf("%s: clean\n", what);
}

/* Both checkers; returns the number of problems. */
static uint64_t run_checks(strata_store *s, uint64_t *images)
{
	uint64_t inv = 0, img = 0;
	strata_check(s, print_problem, &inv);
	section_result("invariants (object table, allocator bitmaps, epochs, counters, roots)", inv);
	strata_verify_images(s, print_problem, &img, images);
	char what[64];
	snprintf(what, sizeof what, "images (%" PRIu64 " checked: CRCs, roots resolve)", *images);
	section_result(what, img);
	uint64_t bpt = 0, trees;
	kv_check_bptrees(s, print_problem, &bpt, &trees);
	snprintf(what, sizeof what, "b+trees (%" PRIu64 " checked)", trees);
	section_result(what, bpt);
	uint64_t xtp = 0, xts;
	xt_check_trees(s, print_problem, &xtp, &xts);
	snprintf(what, sizeof what, "x-trees (%" PRIu64 " checked)", xts);
	section_result(what, xtp);
	return inv + img + bpt + xtp;
}

int cmd_check(int argc, char **argv)
{
	const cli_command *self = cli_find("check");
	const char *dir;
	int urc = cli_dir_arg(self, argc, argv, &dir);
	if (urc)
		return urc;
	strata_store *s;
	int rc = cli_open_store("check", dir, &s, NULL);
	if (rc)
		return rc;
	uint64_t images = 0, problems = run_checks(s, &images);
	strata_store_stats st;
	strata_stats(s, &st);
	printf("check: %" PRIu64 " nodes, %" PRIu64 " images verified, %" PRIu64 " problems\n",
	       st.nodes_live + st.nodes_retired, images, problems);
	rc = cli_close_store("check", dir, s);
	return problems ? CLI_FAIL : rc;
}
