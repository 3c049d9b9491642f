/*
 * print.c — human-readable renderings shared by subcommands: byte sizes and
 * the strata_stats() block. Kept apart from any one command so `demo` and
 * later inspection commands print statistics the same way.
 */
#include <inttypes.h>
#include <stdio.h>

#include "cli.h"
#include "strata/strata.h"

const char *cli_fmt_bytes(char *buf, size_t len, uint64_t bytes)
{
	static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
	if (bytes < 1024) {
		snprintf(buf, len, "%" PRIu64 " B", bytes);
		return buf;
	}
	double v = (double)bytes / 1024.0;
	unsigned u = 0;
	while (v >= 1024.0 && u + 1 < sizeof units / sizeof units[0]) {
		v /= 1024.0;
		u++;
	}
	snprintf(buf, len, "%.1f %s", v, units[u]);
	return buf;
}

static void print_counters(cli_out *out, const strata_store_stats *st)
{
	cli_printf(out, "  epochs           current %" PRIu64 ", oldest pinned %" PRIu64 "\n",
		   st->epoch_current, st->epoch_oldest_pinned);
	cli_printf(out, "  nodes            %" PRIu64 " live, %" PRIu64 " retired, %" PRIu64
			" reserved by open transactions\n",
		   st->nodes_live, st->nodes_retired, st->nodes_reserved);
	cli_printf(out, "  handles          %" PRIu64 " issued, %" PRIu64 " free for reuse;"
			" %" PRIu32 " of %" PRIu32 " shards active\n",
		   st->handles_total, st->handles_free, st->shards_active, st->shards_max);
	cli_printf(out, "  readers          %" PRIu32 " snapshots/transactions open\n",
		   st->snapshots_open);
	cli_printf(out, "  transactions     %" PRIu64 " committed, %" PRIu64 " aborted\n",
		   st->commits, st->aborts);
}

static void print_memory(cli_out *out, const strata_store_stats *st)
{
	char a[32], b[32], c[32];
	cli_printf(out, "  reclamation      %" PRIu64 " runs freed %" PRIu64 " nodes (%s);"
			" %" PRIu64 " retired nodes (%s) held back by pins\n",
		   st->reclaim_runs, st->reclaimed_nodes,
		   cli_fmt_bytes(a, sizeof a, st->reclaimed_bytes), st->pinned_retired_nodes,
		   cli_fmt_bytes(b, sizeof b, st->pinned_retired_bytes));
	cli_printf(out, "  memory           %s in segments; %" PRIu64 " large objects (%s)\n",
		   cli_fmt_bytes(c, sizeof c, st->segment_bytes), st->large_objects,
		   cli_fmt_bytes(a, sizeof a, st->large_bytes));
	cli_printf(out, "  fragmentation    %.2f%% (1 - bytes requested / bytes held)\n",
		   st->fragmentation * 100.0);
}

/* Only classes holding memory are listed: 24 rows of zeros help nobody. */
static void print_classes(cli_out *out, const strata_store_stats *st)
{
	cli_printf(out, "  size classes holding memory:\n"
			"    %8s %9s %21s %12s %12s\n",
		   "slot", "segments", "slots used / total", "bytes used", "requested");
	unsigned shown = 0;
	for (unsigned i = 0; i < STRATA_NUM_CLASSES; i++) {
		const strata_class_stats *c = &st->classes[i];
		if (!c->segments && !c->slots_used)
			continue;
		char used[48];
		snprintf(used, sizeof used, "%" PRIu64 " / %" PRIu64, c->slots_used, c->slots_total);
		cli_printf(out, "    %8" PRIu32 " %9" PRIu64 " %21s %12" PRIu64 " %12" PRIu64 "\n",
			   c->slot_size, c->segments, used, c->bytes_used, c->bytes_requested);
		shown++;
	}
	if (!shown)
		cli_printf(out, "    (none)\n");
}

void cli_print_stats(cli_out *out, const strata_store_stats *st)
{
	cli_printf(out, "Store statistics (strata_stats):\n");
	print_counters(out, st);
	print_memory(out, st);
	print_classes(out, st);
}
