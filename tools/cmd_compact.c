/*
 * cmd_compact.c — `strata compact DIR`: opens the store (recovering it),
 * runs strata_compact (rounds of moving live nodes out of sparse segments,
 * each recorded by a checkpoint; emptied segments at the end of `data` cut
 * off) and prints the space figures before and after, then closes it.
 * Exit 0, or 1 if the store cannot be opened or a write fails.
 */
#include <inttypes.h>
#include <stdio.h>

#include "cli.h"
#include "strata/strata.h"

static void print_space(const char *what, strata_store *s)
{
	strata_store_stats st;
	if (strata_stats(s, &st) == 0)
		printf("%s: live %" PRIu64 " B, file %" PRIu64 " B, amplification %.2f\n", what,
		       st.live_bytes, st.file_bytes, st.space_amplification);
}

int cmd_compact(int argc, char **argv)
{
	const cli_command *self = cli_find("compact");
	const char *dir;
	int urc = cli_dir_arg(self, argc, argv, &dir);
	if (urc)
		return urc;
	strata_store *s;
	int rc = cli_open_store("compact", dir, &s, NULL);
	if (rc)
		return rc;
	print_space("before", s);
	uint64_t moved = 0;
	if ((rc = strata_compact(s, &moved))) {
		fprintf(stderr, "strata compact: %s: %s (%s)\n", dir, strata_strerror(rc),
			strata_last_error());
	} else {
		strata_store_stats st;
		if (strata_stats(s, &st) == 0)
			printf("moved: %" PRIu64 " nodes, %" PRIu64 " B in %" PRIu64
			       " rounds; %" PRIu64 " segments given back\n",
			       st.compact_moved_nodes, moved, st.compact_rounds, st.compact_segments_freed);
		print_space("after", s);
	}
	int closed = cli_close_store("compact", dir, s);
	return rc ? CLI_FAIL : closed;
}
