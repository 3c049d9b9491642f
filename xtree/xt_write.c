/*
 * xt_write.c — X-tree insertion: R* ChooseSubtree, overflow treatment
 * (forced reinsert once per level and operation, else split), the split
 * itself with the X-tree's supernode fallback, and a new root when the top
 * splits. Also the operation context every write shares (xt_op_begin).
 *
 * Copy-on-write: an insert makes the meta node and every node on its path
 * writable top-down and repoints each parent at the new NodeID as it
 * descends; nodes already written in this transaction are changed in place
 * (strata_txn_read_own says which), committed ones are rewritten with only
 * their used entries copied (strata_txn_rewrite). Directory boxes are enlarged on the way down, which
 * keeps them exact: the union of a tight box and the new entry is tight.
 *
 * Entries removed for forced reinsertion (and orphans of a condensed delete)
 * wait in op->pending and are inserted after the operation that removed them
 * has finished with its path, so no path is used after it went stale.
 */
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>

#include "xt_internal.h"

typedef struct xt_path {
	uint32_t top;                /* level of the root */
	strata_node_id id[XT_MAXH];  /* id[L]: the path's node at level L */
	xt_view v[XT_MAXH];
	uint32_t slot[XT_MAXH];      /* slot[L]: node L's entry in node L+1 */
} xt_path;

/* Boxes i < n of d dimensions (lo and hi: n * d coordinates; hi NULL:
 * points) finite with lo <= hi. One flat pass, a vector test per two
 * coordinates without branches (a bulk load's arrays): NaN fails
 * every comparison, an infinity one of the bounds, and -DBL_MAX <= l <=
 * h <= DBL_MAX leaves both finite. */
int xt_validate_boxes(uint32_t d, size_t n, const double *lo, const double *hi)
{
	if (!lo)
		return STRATA_EINVAL;
	const double *h = hi ? hi : lo;
	size_t m = n * d, i = 0;
	bool all = true;
#if defined(__SSE2__)
	const __m128d min = _mm_set1_pd(-DBL_MAX), max = _mm_set1_pd(DBL_MAX);
	__m128d ok = _mm_cmpeq_pd(min, min); /* all ones */
	for (; i + 2 <= m; i += 2) {
		__m128d l = _mm_loadu_pd(lo + i), u = _mm_loadu_pd(h + i);
		__m128d t = _mm_and_pd(_mm_cmpge_pd(l, min), _mm_cmple_pd(u, max));
		ok = _mm_and_pd(ok, _mm_and_pd(t, _mm_cmple_pd(l, u)));
	}
	all = _mm_movemask_pd(ok) == 3;
#endif
	for (; i < m; i++)
		all &= (lo[i] >= -DBL_MAX) & (h[i] <= DBL_MAX) & (lo[i] <= h[i]);
	return all ? 0 : STRATA_ECOORD;
}

int xt_validate_box(uint32_t d, const double *lo, const double *hi)
{
	return xt_validate_boxes(d, 1, lo, hi);
}

/* Reads and checks the meta node; makes nothing writable yet, but notes
 * whether this transaction already owns it (every insert of a batch after
 * the first), so xt_op_write need not look it up again. */
int xt_op_begin(xt_op *op, strata_txn *t, const char *name, uint32_t dims)
{
	memset(op, 0, offsetof(xt_op, own_id)); /* 512 bytes read only where own_mask says */
	if (!t || !name)
		return STRATA_EINVAL;
	strata_node_id mid;
	int rc = strata_txn_get_root(t, name, &mid);
	if (rc)
		return rc;
	if (mid == STRATA_NODE_NULL)
		return STRATA_EWRONGINDEX;
	const void *p;
	uint32_t size;
	int owned;
	if ((rc = strata_txn_read_own(t, mid, &p, &size, &owned)))
		return rc;
	const xt_meta *m = p;
	if (size < sizeof *m || m->h.kind != XT_KIND_META || m->magic != XT_MAGIC)
		return STRATA_EWRONGINDEX;
	if (dims != m->dims)
		return STRATA_EDIMS;
	op->t = t;
	op->name = name;
	op->m = (xt_meta *)p; /* read-only until xt_op_write unless owned */
	op->mid = mid;
	op->m_owned = owned != 0;
	op->d = dims;
	return 0;
}

/* Copy-on-write of the meta node (and the root name repointed). */
int xt_op_write(xt_op *op)
{
	if (op->m_owned)
		return 0;
	strata_node_id nid;
	void *p;
	int rc = strata_txn_write(op->t, op->mid, &nid, &p, NULL);
	if (rc)
		return rc;
	op->m = p;
	op->m_owned = true;
	if (nid == op->mid)
		return 0;
	op->mid = nid;
	return strata_txn_set_root(op->t, op->name, nid);
}

/* Most operations queue nothing: free(NULL) twice per insert was ~1 %
 * of a 1M insert build. */
void xt_op_end(xt_op *op)
{
	if (op->plevel || op->pending.ids) {
		xt_ents_free(&op->pending);
		free(op->plevel);
		op->plevel = NULL;
	}
}

/* Room for k more pending entries (and their levels). */
int xt_pending_reserve(xt_op *op, uint32_t k)
{
	int rc = xt_ents_reserve(&op->pending, op->d, op->pending.n + k);
	if (rc)
		return rc;
	if (op->plevel_cap < op->pending.cap) {
		uint8_t *pl = realloc(op->plevel, op->pending.cap);
		if (!pl)
			return STRATA_ENOMEM;
		op->plevel = pl;
		op->plevel_cap = op->pending.cap;
	}
	return 0;
}

/* Queues entry i of e for reinsertion at `level` (room reserved). */
void xt_pending_push(xt_op *op, const xt_ents *e, uint32_t i, uint32_t level)
{
	op->plevel[op->pending.n] = (uint8_t)level;
	xt_ents_push(&op->pending, e->ids[i], e->hist[i], e->lo + (size_t)i * e->d,
		     e->hi + (size_t)i * e->d);
}

/* A committed node's used bytes into its new version `dst` (header, then
 * each array's first count entries): a leaf is 72 % full on average, and
 * at 1M entries nearly every insert copies its leaf, so the copy's memory
 * traffic is what the bytes past count would add. Those stay as the
 * allocator handed them over; nothing reads past count. */
static int copy_used(void *dst, const void *src, uint32_t size, uint32_t d)
{
	const xt_hdr *h = src;
	if (size < XT_HDR_SIZE || h->count > h->cap ||
	    (uint64_t)h->cap * xt_entry_bytes(d, h->level == 0) > size - XT_HDR_SIZE)
		return STRATA_ECORRUPT;
	memcpy(dst, src, XT_HDR_SIZE); /* first: the view of dst reads its header */
	xt_view s = xt_view_of(src, d), t = xt_view_of(dst, d);
	uint32_t n = h->count, cap = h->cap;
	memcpy(t.ids, s.ids, n * sizeof *s.ids);
	for (uint32_t k = 0; k < 2 * d; k++) /* lo[0..d) then hi[0..d): one run of arrays */
		memcpy(t.lo + (size_t)k * cap, s.lo + (size_t)k * cap, n * sizeof(double));
	if (s.hist)
		memcpy(t.hist, s.hist, n * sizeof *s.hist);
	return 0;
}

/* Asks for the lines of a committed node as soon as its address is known
 * (up to 4 KiB: a one-block node whole, a supernode's first blocks), so
 * their misses overlap each other and the claim's own work (the second
 * lookup, the allocation) instead of coming one by one in the copy: at 1M
 * entries nearly every insert copies its leaf. Only the address is
 * needed: waiting for the header to pick the used lines was no faster. */
static void prefetch_node(const void *p, uint32_t size)
{
	const char *c = p;
	size = size < 4096 ? size : 4096;
	for (uint32_t o = 0; o < size; o += 256) { /* nodes are >= 512 B, powers of two */
		__builtin_prefetch(c + o);
		__builtin_prefetch(c + o + 64);
		__builtin_prefetch(c + o + 128);
		__builtin_prefetch(c + o + 192);
	}
}

/* Makes node *id writable (writable() checks it is a node of `level`). A
 * node this operation already made writable at that level comes from
 * op->own_*: reinsertions descend the same upper nodes again, and each
 * lookup in the substrate cost ~130 instructions (7.7 per 2-D insert). A
 * node the transaction owns is written in place; a committed one is
 * rewritten (strata_txn_rewrite) with only its used bytes copied. */
static int claim(xt_op *op, strata_node_id *id, uint32_t level)
{
	const void *cur;
	uint32_t size;
	int owned;
	int rc = strata_txn_read_own(op->t, *id, &cur, &size, &owned);
	if (rc)
		return rc;
	void *p = (void *)cur;
	if (!owned) {
		prefetch_node(cur, size);
		if ((rc = strata_txn_rewrite(op->t, *id, 0, id, &p, &cur, NULL)) ||
		    (rc = copy_used(p, cur, size, op->d)))
			return rc;
	}
	op->own_id[level] = *id;
	op->own_p[level] = p;
	op->own_mask |= 1u << level;
	return 0;
}

/* Inline: the own_* hit (a third of the calls at 1M entries) is a few
 * instructions, the claim is not. */
static inline int writable(xt_op *op, strata_node_id *id, uint32_t level, xt_view *v)
{
	if (!((op->own_mask >> level & 1) && *id == op->own_id[level])) {
		int rc = claim(op, id, level);
		if (rc)
			return rc;
	}
	*v = xt_view_of(op->own_p[level], op->d);
	if (v->h->level != level || v->h->count > v->h->cap)
		return STRATA_ECORRUPT;
	return 0;
}

/* Point the parent (or the meta node) at path node L's current id. */
static void repoint(xt_op *op, xt_path *P, uint32_t L)
{
	if (L == P->top)
		op->m->top = P->id[L];
	else
		P->v[L + 1].ids[P->slot[L]] = P->id[L];
}

/* ---- overflow --------------------------------------------------------------- */

static int overflow(xt_op *op, xt_path *P, uint32_t L, xt_ents *e);

/* Writes group order[from..to) of e into node v (emptied first). */
static void fill_group(xt_view *v, uint32_t d, const xt_ents *e, const uint32_t *order,
		       uint32_t from, uint32_t to)
{
	v->h->count = 0;
	xt_node_append_ents(v, d, e, order + from, to - from);
}

/* Recomputes the boxes on the path from level L up to the root. */
static void refresh_up(xt_op *op, xt_path *P, uint32_t L)
{
	for (uint32_t l = L; l < P->top; l++) {
		xt_box b;
		xt_box_of_node(&P->v[l], op->d, &b);
		xt_box_set(&P->v[l + 1], op->d, P->slot[l], &b);
	}
}

typedef struct dist_ix {
	double dist;
	uint32_t i;
} dist_ix;

static bool dist_before(const dist_ix *x, const dist_ix *y)
{
	if (x->dist != y->dist)
		return x->dist > y->dist;
	return x->i < y->i;
}

static int cmp_dist_desc(const void *a, const void *b)
{
	const dist_ix *x = a, *y = b;
	return dist_before(x, y) ? -1 : dist_before(y, x);
}

/* Farthest first (ties: lower index first). A strict total order, so the
 * result does not depend on the sort: insertion for the few dozen entries
 * of an overflowing node (qsort's callback per comparison cost more than
 * the rest of the reinsert), qsort for supernode-sized sets. */
static void sort_dist(dist_ix *dx, uint32_t n)
{
	if (n > 128) {
		qsort(dx, n, sizeof *dx, cmp_dist_desc);
		return;
	}
	/* dx comes in index order, so x's index is above every one before
	 * it: dist_before(x, y) is x.dist > y.dist here (NaN: false both). */
	for (uint32_t i = 1; i < n; i++) {
		dist_ix x = dx[i];
		uint32_t j = i;
		for (; j > 0 && x.dist > dx[j - 1].dist; j--)
			dx[j] = dx[j - 1];
		dx[j] = x;
	}
}

/* Squared distances of the entries' centres from the centre of `all`,
 * every coordinate multiplied by f first (inlined with f constant: 1.0
 * is no multiplication). */
static inline __attribute__((always_inline)) void
centre_dists(const xt_ents *e, const xt_box *all, double f, dist_ix *dx)
{
	uint32_t n = e->n, d = e->d;
	for (uint32_t i = 0; i < n; i++) {
		double s = 0;
		for (uint32_t k = 0; k < d; k++) {
			double c = (e->lo[(size_t)i * d + k] * f + e->hi[(size_t)i * d + k] * f) / 2;
			double g = c - (all->lo[k] * f + all->hi[k] * f) / 2;
			s += g * g;
		}
		dx[i] = (dist_ix){s, i};
	}
}

/* Whether every centre distance of entries whose union is `all` is a
 * finite number. Where no coordinate is past DBL_MAX / 2, no lo + hi
 * overflows, so every centre lies in `all`; then a gap is at most the
 * extent, and (rounding is monotone) a distance at most the sum of the
 * squared extents. Centres of boxes near DBL_MAX once overflowed, and
 * gaps of 1e200 square to inf: ties or NaNs ranked the entries, not
 * their distances. */
static bool dists_finite(const xt_box *all, uint32_t d)
{
	double s = 0, lo = 0, hi = 0;
	for (uint32_t k = 0; k < d; k++) {
		double x = all->hi[k] - all->lo[k];
		s += x * x;
		lo = all->lo[k] < lo ? all->lo[k] : lo;
		hi = all->hi[k] > hi ? all->hi[k] : hi;
	}
	return s <= DBL_MAX && lo >= -DBL_MAX / 2 && hi <= DBL_MAX / 2;
}

/* The reinsert order's distances: as they are where they are finite,
 * else with the coordinates scaled by a power of two into (-1, 1), which
 * is exact but for underflow and leaves every distance finite (at most
 * 4d): the entries rank by distance as unbounded doubles would rank them.
 * Not inlined: inside reinsert it changed how gcc 12 compiled the
 * insertion sort there (+20 % of reinsert's instructions). */
static __attribute__((noinline)) void reinsert_dists(const xt_ents *e, dist_ix *dx)
{
	xt_box all;
	xt_box_of_ents(e, NULL, 0, e->n, &all);
	if (dists_finite(&all, e->d)) {
		centre_dists(e, &all, 1.0, dx);
		return;
	}
	centre_dists(e, &all, xt_unit_scale(all.lo, all.hi, e->d), dx);
}

/* R* forced reinsert: keep the entries nearest the node's centre, queue the
 * reinsert_pct farthest (nearest of them first: "close reinsert"). */
static int reinsert(xt_op *op, xt_path *P, uint32_t L, xt_ents *e)
{
	enum { SMALL = 128 };
	uint32_t n = e->n, d = op->d;
	uint32_t p = xt_cap_of(op->m->o.node_size, d, L == 0) * op->m->o.reinsert_pct / 100;
	p = p ? p : 1;
	dist_ix dstack[SMALL], *dx = n <= SMALL ? dstack : malloc((size_t)n * sizeof *dx);
	uint32_t ostack[SMALL], *order = n <= SMALL ? ostack : malloc((size_t)n * sizeof *order);
	int rc = dx && order ? 0 : STRATA_ENOMEM;
	if (rc)
		goto err;
	reinsert_dists(e, dx);
	sort_dist(dx, n);
	for (uint32_t j = 0; j < n; j++)
		order[j] = dx[j].i;
	fill_group(&P->v[L], d, e, order, p, n);
	refresh_up(op, P, L);
	if ((rc = xt_pending_reserve(op, p)))
		goto err;
	for (uint32_t j = p; j-- > 0;)
		xt_pending_push(op, e, order[j], L);
err:
	if (dx != dstack)
		free(dx);
	if (order != ostack)
		free(order);
	return rc;
}

/* Grows path node L by one block; false if it cannot grow (size limit). */
static int grow(xt_op *op, xt_path *P, uint32_t L, bool *grown)
{
	xt_op_forget(op);
	int rc = xt_node_resize(op->t, op->m, &P->id[L], &P->v[L], P->v[L].h->blocks + 1u);
	*grown = rc == 0;
	if (rc == STRATA_ETOOBIG)
		return 0;
	if (!rc)
		repoint(op, P, L);
	return rc;
}

/* The parent's entry for the node split off path node L, then the parent's
 * own overflow if it is full. */
static int add_sibling(xt_op *op, xt_path *P, uint32_t L, strata_node_id bid, const xt_box *ba,
		       const xt_box *bb, uint32_t hist)
{
	uint32_t d = op->d;
	if (L == P->top) { /* the root split: a new root above */
		strata_node_id rid;
		xt_view r;
		if (op->m->height >= XT_MAXH) /* paths are arrays of XT_MAXH levels */
			return STRATA_EFULL;
		int rc = xt_node_new(op->t, op->m, L + 1, 1, &rid, &r);
		if (rc)
			return rc;
		r.h->count = 2;
		r.ids[0] = P->id[L], r.ids[1] = bid;
		r.hist[0] = r.hist[1] = hist;
		xt_box_set(&r, d, 0, ba);
		xt_box_set(&r, d, 1, bb);
		op->m->top = rid;
		op->m->height++;
		return 0;
	}
	xt_view *pv = &P->v[L + 1];
	uint32_t s = P->slot[L];
	xt_box_set(pv, d, s, ba);
	pv->hist[s] = hist;
	xt_ents one = {0};
	int rc = xt_ents_reserve(&one, d, pv->h->count + 1);
	if (rc)
		goto err;
	xt_ents_push(&one, bid, hist, bb->lo, bb->hi);
	if (pv->h->count < pv->h->cap) {
		xt_node_append_ent(pv, d, &one, 0);
		goto err;
	}
	one.n = 0;
	xt_ents_push_all(&one, pv);
	xt_ents_push(&one, bid, hist, bb->lo, bb->hi);
	rc = overflow(op, P, L + 1, &one);
err:
	xt_ents_free(&one);
	return rc;
}

/* Splits path node L holding entries e (one more than fit). */
static int split(xt_op *op, xt_path *P, uint32_t L, xt_ents *e)
{
	uint32_t n = e->n, d = op->d;
	xt_split s = {.order = malloc((size_t)n * sizeof(uint32_t))};
	if (!s.order)
		return STRATA_ENOMEM;
	int rc = L == 0 ? xt_split_leaf(op->m, e, &s) : xt_split_dir(op->m, e, &s);
	if (rc)
		goto err;
	if (!s.ok) { /* X-tree: no good split, a supernode instead */
		bool grown;
		if ((rc = grow(op, P, L, &grown)))
			goto err;
		if (grown) {
			xt_node_append_ent(&P->v[L], d, e, n - 1);
			goto err;
		}
	}
	uint32_t hist = L == P->top ? 0 : P->v[L + 1].hist ? P->v[L + 1].hist[P->slot[L]] : 0;
	hist |= 1u << s.axis;
	strata_node_id bid;
	xt_view bv;
	if ((rc = xt_node_new(op->t, op->m, L, xt_blocks_for(op->m, n - s.k, L == 0), &bid, &bv)))
		goto err;
	fill_group(&bv, d, e, s.order, s.k, n);
	fill_group(&P->v[L], d, e, s.order, 0, s.k);
	uint32_t need = xt_blocks_for(op->m, s.k, L == 0);
	if (need < P->v[L].h->blocks) { /* a supernode's half may fit in fewer blocks */
		xt_op_forget(op);
		if ((rc = xt_node_resize(op->t, op->m, &P->id[L], &P->v[L], need)))
			goto err;
		repoint(op, P, L);
	}
	xt_box ba, bb;
	xt_box_of_node(&P->v[L], d, &ba);
	xt_box_of_node(&bv, d, &bb);
	rc = add_sibling(op, P, L, bid, &ba, &bb, hist);
err:
	free(s.order);
	return rc;
}

static int overflow(xt_op *op, xt_path *P, uint32_t L, xt_ents *e)
{
	uint32_t bit = 1u << L;
	if (L < P->top && !(op->reinserted & bit) && P->v[L].h->blocks == 1) {
		op->reinserted |= bit;
		return reinsert(op, P, L, e);
	}
	return split(op, P, L, e);
}

/* ---- insertion -------------------------------------------------------------- */

static int new_root_leaf(xt_op *op)
{
	strata_node_id id;
	xt_view v;
	int rc = xt_node_new(op->t, op->m, 0, 1, &id, &v);
	if (rc)
		return rc;
	op->m->top = id;
	op->m->height = 1;
	return 0;
}

/* Entry s of v enlarged to cover [lo, hi], in place (xt_box_extend's
 * comparisons, without copying the box out and back). */
static void enlarge(xt_view *v, uint32_t d, uint32_t s, const double *lo, const double *hi)
{
	uint32_t cap = v->h->cap;
	for (uint32_t k = 0; k < d; k++) {
		double *l = v->lo + (size_t)k * cap + s, *h = v->hi + (size_t)k * cap + s;
		*l = lo[k] < *l ? lo[k] : *l;
		*h = hi[k] > *h ? hi[k] : *h;
	}
}

/* Descends from the root to `level` choosing subtrees, enlarging boxes. */
static int descend(xt_op *op, xt_path *P, const double *lo, const double *hi, uint32_t level)
{
	P->top = op->m->height - 1;
	if (level > P->top)
		return STRATA_ECORRUPT;
	P->id[P->top] = op->m->top;
	int rc = writable(op, &P->id[P->top], P->top, &P->v[P->top]);
	if (rc)
		return rc;
	op->m->top = P->id[P->top];
	for (uint32_t L = P->top; L > level; L--) {
		xt_view *v = &P->v[L];
		uint32_t s;
		if (v->h->count == 0)
			return STRATA_ECORRUPT;
		if ((rc = xt_choose(op->m, v, op->d, lo, hi, L == 1, op->t, &s)))
			return rc;
		enlarge(v, op->d, s, lo, hi);
		P->slot[L - 1] = s;
		P->id[L - 1] = v->ids[s];
		if ((rc = writable(op, &P->id[L - 1], L - 1, &P->v[L - 1])))
			return rc;
		v->ids[s] = P->id[L - 1];
	}
	return 0;
}

int xt_insert_ent(xt_op *op, uint64_t id, uint32_t hist, const double *lo, const double *hi,
		  uint32_t level)
{
	int rc = 0;
	if (op->m->height == 0 && (rc = new_root_leaf(op)))
		return rc;
	xt_path P;
	if ((rc = descend(op, &P, lo, hi, level)))
		return rc;
	xt_view *v = &P.v[level];
	if (v->h->count < v->h->cap) {
		xt_node_append(v, op->d, id, hist, lo, hi);
		return 0;
	}
	xt_ents e = {0};
	if ((rc = xt_ents_reserve(&e, op->d, v->h->count + 1)))
		goto err;
	xt_ents_push_all(&e, v);
	xt_ents_push(&e, id, hist, lo, hi);
	rc = overflow(op, &P, level, &e);
err:
	xt_ents_free(&e);
	return rc;
}

int xt_drain_pending(xt_op *op)
{
	uint32_t d = op->d;
	for (uint32_t i = 0; i < op->pending.n; i++) {
		/* Copy out: the insert may grow (move) the pending arrays. */
		xt_box b;
		memcpy(b.lo, op->pending.lo + (size_t)i * d, d * sizeof(double));
		memcpy(b.hi, op->pending.hi + (size_t)i * d, d * sizeof(double));
		int rc = xt_insert_ent(op, op->pending.ids[i], op->pending.hist[i], b.lo, b.hi,
				       op->plevel[i]);
		if (rc)
			return rc;
	}
	op->pending.n = 0;
	return 0;
}

STRATA_API int strata_xt_insert(strata_txn *txn, const char *name, uint32_t dims,
				const double *min, const double *max, uint64_t id)
{
	xt_op op;
	int rc = xt_op_begin(&op, txn, name, dims);
	if (rc || (rc = xt_validate_box(dims, min, max)) || (rc = xt_op_write(&op)))
		return rc;
	rc = xt_insert_ent(&op, id, 0, min, max ? max : min, 0);
	if (!rc)
		rc = xt_drain_pending(&op);
	if (!rc)
		op.m->count++;
	xt_op_end(&op);
	return rc;
}
