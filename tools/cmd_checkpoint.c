/*
 * cmd_checkpoint.c — `strata checkpoint DIR`: opens the store (recovering
 * it), writes a checkpoint with strata_checkpoint and prints what DIR/SUPER
 * then names (checkpoint generation and epoch), read back from disk with
 * cli_read_super; then closes the store, which writes the clean-shutdown
 * checkpoint, and prints that one too. Exit 0, or 1 if the store cannot be
 * opened or a write fails.
 */
#include <inttypes.h>
#include <stdio.h>

#include "cli.h"
#include "strata/strata.h"
#include "superblock.h"

/* "what: generation G, epoch E, clean shutdown yes|no" from DIR/SUPER. */
static int print_super(const char *what, const char *dir)
{
	sb_state sb;
	sb_read_report rep;
	int rc = cli_read_super("checkpoint", dir, &sb, &rep);
	if (!rc)
		printf("%s: generation %" PRIu64 ", epoch %" PRIu64 ", clean shutdown %s\n", what,
		       sb.ckpt_gen, sb.ckpt_epoch, sb.flags & SB_FLAG_CLEAN ? "yes" : "no");
	return rc;
}

int cmd_checkpoint(int argc, char **argv)
{
	const cli_command *self = cli_find("checkpoint");
	const char *dir;
	int urc = cli_dir_arg(self, argc, argv, &dir);
	if (urc)
		return urc;
	strata_store *s;
	sb_state before;
	int rc = cli_open_store("checkpoint", dir, &s, &before);
	if (rc)
		return rc;
	printf("before: generation %" PRIu64 ", epoch %" PRIu64 "\n", before.ckpt_gen,
	       before.ckpt_epoch);
	if ((rc = strata_checkpoint(s)))
		fprintf(stderr, "strata checkpoint: %s: %s\n", dir, strata_strerror(rc));
	else
		rc = print_super("checkpoint", dir);
	int closed = cli_close_store("checkpoint", dir, s);
	if (!closed)
		closed = print_super("closed", dir);
	return rc ? CLI_FAIL : closed;
}
