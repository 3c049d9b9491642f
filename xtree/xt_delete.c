/*
 * xt_delete.c — deleting one entry (box + id) and moving one: find the leaf
 * by a read-only search (boxes overlap, so several subtrees may be tried),
 * then copy-on-write the path it found, remove the entry, and condense
 * bottom-up: an underfull node leaves the tree and its entries are
 * reinserted at their level; a supernode that fits in fewer blocks shrinks;
 * a directory root left with one child hands the root to that child.
 */
#include <stdlib.h>

#include "xt_internal.h"

typedef struct xt_path {
	uint32_t top;
	strata_node_id id[XT_MAXH];
	xt_view v[XT_MAXH];
	uint32_t slot[XT_MAXH]; /* slot[L]: node L's entry in node L+1; slot[0]... */
	uint32_t leaf_slot;     /* the entry in the leaf */
} xt_path;

static bool contains(const xt_view *v, uint32_t d, uint32_t i, const double *lo, const double *hi)
{
	uint32_t cap = v->h->cap;
	for (uint32_t k = 0; k < d; k++)
		if (v->lo[(size_t)k * cap + i] > lo[k] || v->hi[(size_t)k * cap + i] < hi[k])
			return false;
	return true;
}

static bool equal(const xt_view *v, uint32_t d, uint32_t i, const double *lo, const double *hi)
{
	uint32_t cap = v->h->cap;
	for (uint32_t k = 0; k < d; k++)
		if (v->lo[(size_t)k * cap + i] != lo[k] || v->hi[(size_t)k * cap + i] != hi[k])
			return false;
	return true;
}

/* 1: found (slots recorded in P), 0: not under this node, < 0: error. */
static int find(xt_op *op, strata_node_id id, uint32_t level, const double *lo, const double *hi,
		uint64_t eid, xt_path *P)
{
	const void *p;
	int rc = strata_txn_read(op->t, id, &p, NULL, NULL);
	if (rc)
		return rc;
	xt_view v = xt_view_of(p, op->d);
	if (v.h->level != level)
		return STRATA_ECORRUPT;
	for (uint32_t i = 0; i < v.h->count; i++) {
		if (level == 0) {
			if (v.ids[i] == eid && equal(&v, op->d, i, lo, hi)) {
				P->leaf_slot = i;
				return 1;
			}
			continue;
		}
		if (!contains(&v, op->d, i, lo, hi))
			continue;
		P->slot[level - 1] = i;
		if ((rc = find(op, v.ids[i], level - 1, lo, hi, eid, P)))
			return rc;
	}
	return 0;
}

/* Copy-on-write of the path find() recorded. */
static int write_path(xt_op *op, xt_path *P)
{
	strata_node_id nid;
	void *p;
	strata_node_id id = op->m->top;
	for (uint32_t L = P->top;; L--) {
		int rc = strata_txn_write(op->t, id, &nid, &p, NULL);
		if (rc)
			return rc;
		P->id[L] = nid;
		P->v[L] = xt_view_of(p, op->d);
		if (L == P->top)
			op->m->top = nid;
		else
			P->v[L + 1].ids[P->slot[L]] = nid;
		if (L == 0)
			return 0;
		id = P->v[L].ids[P->slot[L - 1]];
	}
}

static int orphan_all(xt_op *op, const xt_view *v, uint32_t level)
{
	xt_ents tmp = {0};
	int rc = xt_ents_reserve(&tmp, op->d, v->h->count);
	if (!rc)
		xt_ents_push_all(&tmp, v);
	/* reuse the pending queue of the forced reinsert */
	if (!rc)
		rc = xt_pending_reserve(op, tmp.n);
	for (uint32_t i = 0; !rc && i < tmp.n; i++)
		xt_pending_push(op, &tmp, i, level);
	xt_ents_free(&tmp);
	return rc;
}

/* Shrinks path node L if its entries fit in fewer blocks. */
static int maybe_shrink(xt_op *op, xt_path *P, uint32_t L)
{
	uint32_t need = xt_blocks_for(op->m, P->v[L].h->count, L == 0);
	if (need >= P->v[L].h->blocks)
		return 0;
	xt_op_forget(op);
	int rc = xt_node_resize(op->t, op->m, &P->id[L], &P->v[L], need);
	if (rc)
		return rc;
	if (L == P->top)
		op->m->top = P->id[L];
	else
		P->v[L + 1].ids[P->slot[L]] = P->id[L];
	return 0;
}

static int condense(xt_op *op, xt_path *P)
{
	int rc;
	for (uint32_t L = 0; L < P->top; L++) {
		xt_view *v = &P->v[L], *pv = &P->v[L + 1];
		if (v->h->count < xt_min_count(op->m, L == 0)) {
			xt_op_forget(op);
			if ((rc = orphan_all(op, v, L)) || (rc = strata_txn_free(op->t, P->id[L])))
				return rc;
			xt_node_remove(pv, op->d, P->slot[L]);
			continue;
		}
		if ((rc = maybe_shrink(op, P, L)))
			return rc;
		xt_box b;
		xt_box_of_node(v, op->d, &b);
		xt_box_set(pv, op->d, P->slot[L], &b);
	}
	return maybe_shrink(op, P, P->top);
}

/* A directory root with one child hands over to it; an empty leaf root
 * leaves an empty tree. */
static int shorten(xt_op *op)
{
	while (op->m->height > 0) {
		const void *p;
		int rc = strata_txn_read(op->t, op->m->top, &p, NULL, NULL);
		if (rc)
			return rc;
		const xt_hdr *h = p;
		if (h->count > 1 || (h->level > 0 && h->count == 0))
			return h->count ? 0 : STRATA_ECORRUPT;
		if (h->level == 0 && h->count == 1)
			return 0;
		strata_node_id child = h->count ? xt_view_of(p, op->d).ids[0] : STRATA_NODE_NULL;
		xt_op_forget(op);
		if ((rc = strata_txn_free(op->t, op->m->top)))
			return rc;
		op->m->top = child;
		op->m->height--;
	}
	return 0;
}

static int delete_one(xt_op *op, const double *lo, const double *hi, uint64_t id)
{
	xt_path P;
	if (op->m->height == 0)
		return STRATA_ENOTFOUND;
	P.top = op->m->height - 1;
	int rc = find(op, op->m->top, P.top, lo, hi, id, &P);
	if (rc <= 0)
		return rc ? rc : STRATA_ENOTFOUND;
	if ((rc = xt_op_write(op)) || (rc = write_path(op, &P)))
		return rc;
	xt_node_remove(&P.v[0], op->d, P.leaf_slot);
	op->m->count--;
	if ((rc = condense(op, &P)) || (rc = xt_drain_pending(op)))
		return rc;
	return shorten(op);
}

STRATA_API int strata_xt_delete(strata_txn *txn, const char *name, uint32_t dims,
				const double *min, const double *max, uint64_t id)
{
	xt_op op;
	int rc = xt_op_begin(&op, txn, name, dims);
	if (rc || (rc = xt_validate_box(dims, min, max)))
		return rc;
	rc = delete_one(&op, min, max ? max : min, id);
	xt_op_end(&op);
	return rc;
}

STRATA_API int strata_xt_move(strata_txn *txn, const char *name, uint32_t dims,
			      const double *omin, const double *omax, const double *nmin,
			      const double *nmax, uint64_t id)
{
	xt_op op;
	int rc = xt_op_begin(&op, txn, name, dims);
	if (rc || (rc = xt_validate_box(dims, omin, omax)) ||
	    (rc = xt_validate_box(dims, nmin, nmax)))
		return rc;
	rc = delete_one(&op, omin, omax ? omax : omin, id);
	op.reinserted = 0;
	if (!rc)
		rc = xt_insert_ent(&op, id, 0, nmin, nmax ? nmax : nmin, 0);
	if (!rc && !(rc = xt_drain_pending(&op)))
		op.m->count++;
	xt_op_end(&op);
	return rc;
}
