/*
 * xt_meta.c — creating a tree (the meta node and its resolved options),
 * opening one for reading through a snapshot (by name on each call, or once
 * as a query handle), and the small read-only entry points (count, dims).
 * A root that is empty or holds another kind of node is STRATA_EWRONGINDEX,
 * before anything else is looked at.
 */
#include <stdlib.h>

#include "xt_internal.h"

static uint32_t default_node_size(uint32_t d)
{
	/* 1-3 dimensions: 1 KiB (about 24 entries in 2-D, 16-18 in 3-D).
	 * Against 4 KiB it took 2.4x fewer instructions per insert and 1.6x
	 * fewer per small window query in 2-D, 2.0x fewer per insert in 3-D
	 * (callgrind, 100k boxes; design/XTREE.md). */
	if (d <= 3)
		return 1024;
	/* Else room for 32 directory entries: fewer makes high-dimensional
	 * nodes so small that the tree degenerates into pointer chasing. */
	uint32_t need = XT_HDR_SIZE + 32u * xt_entry_bytes(d, false), size = 4096;
	while (size < need)
		size *= 2;
	return size;
}

static int resolve_options(uint32_t d, const strata_xt_options *in, strata_xt_options *o)
{
	strata_xt_options z = {0};
	*o = in ? *in : z;
	if (!o->node_size)
		o->node_size = default_node_size(d);
	o->min_fill_pct = o->min_fill_pct ? o->min_fill_pct : 40;
	o->reinsert_pct = o->reinsert_pct ? o->reinsert_pct : 30;
	o->choose_p = o->choose_p ? o->choose_p : 32;
	o->max_overlap_pct = o->max_overlap_pct ? o->max_overlap_pct : 20;
	o->min_fanout_pct = o->min_fanout_pct ? o->min_fanout_pct : 35;
	o->bulk_fill_pct = o->bulk_fill_pct ? o->bulk_fill_pct : 100;
	if (o->node_size < 512 || o->node_size > 65536 || (o->node_size & (o->node_size - 1)))
		return STRATA_EINVAL;
	/* A node must hold enough entries for a split to leave both halves
	 * at the minimum fill. */
	if (xt_cap_of(o->node_size, d, false) < 4)
		return STRATA_EINVAL;
	if (o->min_fill_pct > 50 || o->min_fanout_pct > 50 || o->reinsert_pct >= 50 ||
	    o->max_overlap_pct > 100 || o->bulk_fill_pct > 100)
		return STRATA_EINVAL;
	return 0;
}

STRATA_API int strata_xt_create(strata_txn *txn, const char *name, uint32_t dims,
				const strata_xt_options *opts)
{
	if (!txn || !name)
		return STRATA_EINVAL;
	if (dims < 1 || dims > XT_MAXD)
		return STRATA_EDIMS;
	strata_xt_options o;
	int rc = resolve_options(dims, opts, &o);
	if (rc)
		return rc;
	strata_node_id cur, id;
	if ((rc = strata_txn_get_root(txn, name, &cur)))
		return rc;
	if (cur != STRATA_NODE_NULL)
		return STRATA_EEXIST;
	void *p;
	if ((rc = strata_txn_alloc(txn, sizeof(xt_meta), XT_KIND_META, &id, &p)))
		return rc;
	xt_meta *m = p;
	m->h.kind = XT_KIND_META;
	m->h.blocks = 1;
	m->magic = XT_MAGIC;
	m->dims = dims;
	m->o = o;
	if ((rc = strata_txn_set_root(txn, name, id)))
		strata_txn_free(txn, id);
	return rc;
}

static int meta_ok(const void *p, uint32_t size)
{
	const xt_meta *m = p;
	return size >= sizeof *m && m->h.kind == XT_KIND_META && m->magic == XT_MAGIC &&
	       m->dims >= 1 && m->dims <= XT_MAXD && m->height <= XT_MAXH;
}

int xt_rd_open(const strata_snapshot *snap, const char *name, xt_rd *rd)
{
	if (!snap || !name || !rd)
		return STRATA_EINVAL;
	strata_node_id id;
	int rc = strata_snapshot_root(snap, name, &id);
	if (rc)
		return rc;
	if (id == STRATA_NODE_NULL)
		return STRATA_EWRONGINDEX;
	const void *p;
	uint32_t size;
	if ((rc = strata_resolve(snap, id, &p, &size)))
		return rc;
	if (!meta_ok(p, size))
		return STRATA_EWRONGINDEX;
	rd->snap = snap;
	rd->m = p;
	return 0;
}

STRATA_API int strata_xt_handle_open(const strata_snapshot *snap, const char *name,
				     strata_xt_handle **out)
{
	if (!out)
		return STRATA_EINVAL;
	*out = NULL;
	xt_rd rd;
	int rc = xt_rd_open(snap, name, &rd);
	if (rc)
		return rc;
	strata_xt_handle *h = malloc(sizeof *h);
	if (!h)
		return STRATA_ENOMEM;
	h->rd = rd;
	*out = h;
	return 0;
}

STRATA_API void strata_xt_handle_close(strata_xt_handle *h)
{
	free(h); /* the snapshot is not touched: it may be closed already */
}

STRATA_API uint32_t strata_xt_handle_dims(const strata_xt_handle *h)
{
	return h ? h->rd.m->dims : 0;
}

STRATA_API uint64_t strata_xt_handle_count(const strata_xt_handle *h)
{
	return h ? h->rd.m->count : 0;
}

STRATA_API int strata_xt_is_tree(const strata_snapshot *snap, strata_node_id id)
{
	const void *p;
	uint32_t size;
	return snap && strata_resolve(snap, id, &p, &size) == 0 && meta_ok(p, size);
}

STRATA_API int strata_xt_count(const strata_snapshot *snap, const char *name, uint64_t *count)
{
	xt_rd rd;
	int rc = xt_rd_open(snap, name, &rd);
	if (!rc && !count)
		rc = STRATA_EINVAL;
	if (!rc)
		*count = rd.m->count;
	return rc;
}

STRATA_API int strata_xt_dims(const strata_snapshot *snap, const char *name, uint32_t *dims)
{
	xt_rd rd;
	int rc = xt_rd_open(snap, name, &rd);
	if (!rc && !dims)
		rc = STRATA_EINVAL;
	if (!rc)
		*dims = rd.m->dims;
	return rc;
}

STRATA_API int strata_xt_txn_count(strata_txn *txn, const char *name, uint64_t *count)
{
	if (!count)
		return STRATA_EINVAL;
	xt_op op;
	int rc = xt_op_begin(&op, txn, name, 0);
	if (rc == STRATA_EDIMS) /* any dims: read them from the meta node */
		rc = 0;
	if (!rc) {
		strata_node_id mid;
		const void *p;
		rc = strata_txn_get_root(txn, name, &mid);
		if (!rc)
			rc = strata_txn_read(txn, mid, &p, NULL, NULL);
		if (!rc)
			*count = ((const xt_meta *)p)->count;
	}
	return rc;
}
