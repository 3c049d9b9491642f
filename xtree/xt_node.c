/*
 * xt_node.c — X-tree node memory: allocating a node of a number of blocks,
 * reallocating it larger or smaller (supernodes grow and shrink by whole
 * blocks), and moving entries in and out of the structure-of-arrays layout.
 * Scratch memory (xt_ents) is plain malloc: it never outlives a call.
 */
#include "xt_internal.h"

uint32_t xt_min_count(const xt_meta *m, bool leaf)
{
	uint32_t cap = xt_cap_of(m->o.node_size, m->dims, leaf);
	uint32_t pct = m->o.min_fill_pct;
	/* A directory split may leave MIN_FANOUT on one side (X-tree split). */
	if (!leaf && m->o.min_fanout_pct < pct)
		pct = m->o.min_fanout_pct;
	uint32_t n = cap * pct / 100;
	return n ? n : 1;
}

uint32_t xt_blocks_for(const xt_meta *m, uint32_t count, bool leaf)
{
	uint32_t b = 1;
	while (xt_cap_of(b * m->o.node_size, m->dims, leaf) < count)
		b++;
	return b;
}

static uint8_t kind_for(uint32_t level, uint32_t blocks)
{
	return level == 0 ? XT_KIND_LEAF : blocks > 1 ? XT_KIND_SUPER : XT_KIND_DIR;
}

int xt_node_new(strata_txn *t, const xt_meta *m, uint32_t level, uint32_t blocks,
		strata_node_id *id, xt_view *v)
{
	if ((uint64_t)blocks * m->o.node_size > STRATA_NODE_MAX || blocks > UINT16_MAX)
		return STRATA_ETOOBIG;
	uint32_t size = blocks * m->o.node_size;
	void *p;
	int rc = strata_txn_alloc(t, size, kind_for(level, blocks), id, &p);
	if (rc)
		return rc;
	xt_hdr *h = p;
	h->kind = kind_for(level, blocks);
	h->level = (uint8_t)level;
	h->blocks = (uint16_t)blocks;
	h->count = 0;
	h->cap = xt_cap_of(size, m->dims, level == 0);
	*v = xt_view_of(p, m->dims);
	return 0;
}

int xt_node_resize(strata_txn *t, const xt_meta *m, strata_node_id *id, xt_view *v,
		   uint32_t blocks)
{
	strata_node_id nid;
	xt_view nv;
	uint32_t d = m->dims, n = v->h->count;
	int rc = xt_node_new(t, m, v->h->level, blocks, &nid, &nv);
	if (rc)
		return rc;
	memcpy(nv.ids, v->ids, n * sizeof *nv.ids);
	for (uint32_t k = 0; k < d; k++) {
		memcpy(nv.lo + (size_t)k * nv.h->cap, v->lo + (size_t)k * v->h->cap, n * sizeof(double));
		memcpy(nv.hi + (size_t)k * nv.h->cap, v->hi + (size_t)k * v->h->cap, n * sizeof(double));
	}
	if (v->hist)
		memcpy(nv.hist, v->hist, n * sizeof *nv.hist);
	nv.h->count = n;
	if ((rc = strata_txn_free(t, *id))) {
		strata_txn_free(t, nid);
		return rc;
	}
	*id = nid;
	*v = nv;
	return 0;
}

void xt_node_remove(xt_view *v, uint32_t d, uint32_t i)
{
	uint32_t last = --v->h->count, cap = v->h->cap;
	if (i == last)
		return;
	v->ids[i] = v->ids[last];
	if (v->hist)
		v->hist[i] = v->hist[last];
	for (uint32_t k = 0; k < d; k++) {
		v->lo[(size_t)k * cap + i] = v->lo[(size_t)k * cap + last];
		v->hi[(size_t)k * cap + i] = v->hi[(size_t)k * cap + last];
	}
}

void xt_node_append_ent(xt_view *v, uint32_t d, const xt_ents *e, uint32_t i)
{
	uint32_t j = v->h->count++, cap = v->h->cap;
	v->ids[j] = e->ids[i];
	if (v->hist)
		v->hist[j] = e->hist[i];
	for (uint32_t k = 0; k < d; k++) {
		v->lo[(size_t)k * cap + j] = e->lo[(size_t)i * d + k];
		v->hi[(size_t)k * cap + j] = e->hi[(size_t)i * d + k];
	}
}

/* Entries idx[0..n) of e appended in that order, array by array: the
 * rows-to-columns transposition of a split or reinsert (a few dozen
 * entries), without the per-entry loop setup of xt_node_append_ent. */
void xt_node_append_ents(xt_view *v, uint32_t d, const xt_ents *e, const uint32_t *idx,
			 uint32_t n)
{
	uint32_t j0 = v->h->count, cap = v->h->cap;
	for (uint32_t j = 0; j < n; j++)
		v->ids[j0 + j] = e->ids[idx[j]];
	if (v->hist)
		for (uint32_t j = 0; j < n; j++)
			v->hist[j0 + j] = e->hist[idx[j]];
	for (uint32_t k = 0; k < d; k++) {
		double *lo = v->lo + (size_t)k * cap + j0, *hi = v->hi + (size_t)k * cap + j0;
		for (uint32_t j = 0; j < n; j++) {
			lo[j] = e->lo[(size_t)idx[j] * d + k];
			hi[j] = e->hi[(size_t)idx[j] * d + k];
		}
	}
	v->h->count = j0 + n;
}

void xt_node_append(xt_view *v, uint32_t d, uint64_t id, uint32_t hist, const double *lo,
		    const double *hi)
{
	uint32_t j = v->h->count++, cap = v->h->cap;
	v->ids[j] = id;
	if (v->hist)
		v->hist[j] = hist;
	for (uint32_t k = 0; k < d; k++) {
		v->lo[(size_t)k * cap + j] = lo[k];
		v->hi[(size_t)k * cap + j] = hi[k];
	}
}
