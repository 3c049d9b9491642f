/*
 * xt_check.c — the X-tree part of `strata check`: every root whose node is
 * an X-tree meta node (strata_xt_is_tree, as of one snapshot) gets
 * strata_xt_check. Root names come from the substrate's catalog, read under
 * its lock (the tool links the internal library; no public call lists
 * roots).
 */
#include "internal.h"
#include "strata/xtree.h"
#include "xt.h"

uint64_t xt_check_trees(strata_store *s, strata_report_fn report, void *ctx, uint64_t *trees)
{
	strata_snapshot *snap;
	uint64_t problems = 0;
	*trees = 0;
	if (strata_snapshot_open(s, &snap)) {
		report(ctx, "x-trees not checked: no snapshot");
		return 1;
	}
	catalog *cat = &s->cat;
	pthread_mutex_lock(&cat->lock);
	root_dir *dir = atomic_load(&cat->dir);
	for (uint32_t i = 0; i < dir->n; i++) {
		const char *name = dir->roots[i]->name;
		strata_node_id id;
		if (strata_snapshot_root(snap, name, &id) || !strata_xt_is_tree(snap, id))
			continue;
		(*trees)++;
		problems += strata_xt_check(snap, name, report, ctx) != 0;
	}
	pthread_mutex_unlock(&cat->lock);
	strata_snapshot_close(snap);
	return problems;
}
