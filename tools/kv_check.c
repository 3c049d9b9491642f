/*
 * kv_check.c — the B+tree part of `strata check`: finds every root that
 * holds a B+tree (strata_bpt_is_bptree on each root name as of one
 * snapshot) and runs strata_bpt_check on it. Root names come from the
 * substrate's catalog, read under its lock like strata_verify_images does
 * (the tool links the internal library; no public call lists roots).
 */
#include "internal.h"
#include "kv.h"
#include "strata/bptree.h"

uint64_t kv_check_bptrees(strata_store *s, strata_report_fn report, void *ctx, uint64_t *trees)
{
	strata_snapshot *snap;
	uint64_t problems = 0;
	*trees = 0;
	if (strata_snapshot_open(s, &snap)) {
		report(ctx, "b+trees not checked: no snapshot");
		return 1;
	}
	catalog *cat = &s->cat;
	pthread_mutex_lock(&cat->lock); /* no new names: the directory stays */
	root_dir *dir = atomic_load(&cat->dir);
	for (uint32_t i = 0; i < dir->n; i++) {
		const char *name = dir->roots[i]->name;
		if (!strata_bpt_is_bptree(snap, name))
			continue;
		(*trees)++;
		problems += strata_bpt_check(snap, name, report, ctx) != 0;
	}
	pthread_mutex_unlock(&cat->lock);
	strata_snapshot_close(snap);
	return problems;
}
