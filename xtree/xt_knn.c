/*
 * xt_knn.c — the k nearest neighbours in one call (strata_xt_knn and
 * strata_xt_handle_knn): best-first search over nodes with the k best
 * entries kept apart.
 *
 * The cursor (xt_query.c) queues nodes and entries in one heap, which
 * distance browsing needs: it cannot know how many results will be asked
 * for. When k is known, entries need no queue: a max-heap of the k best so
 * far, ordered by (distance, id), decides at once whether an entry can
 * still be a result. Only directory children are queued (a min-heap by
 * distance), and a node is read only while its distance does not exceed
 * the k-th best: a node at exactly that distance may hold an entry at the
 * same distance with a smaller id, so it is read too. When the next node is
 * farther, the k best are final; sorted by (distance, id) they are exactly
 * the first k results of the documented order, which is the cursor's.
 *
 * Before the search, one greedy descent to a leaf (always the nearest
 * child) offers that leaf's entries: a k-th best known from the start
 * keeps the search from queueing every child of the first nodes it reads
 * (the bound would be infinite until a leaf is read). The search skips
 * that leaf, so no entry is offered twice.
 */
#include <math.h>
#include <stdlib.h>

#include "xt_internal.h"

typedef struct kres { /* one of the k best entries */
	double dist;
	uint64_t id;
	const void *leaf;
	uint32_t idx;
} kres;

typedef struct nitem { /* a queued node */
	double dist;
	strata_node_id id;
	uint32_t level;
} nitem;

typedef struct knn {
	const xt_rd *rd;
	const double *pt;
	strata_xt_metric metric;
	uint32_t k, nres;
	strata_node_id dived; /* the leaf the first descent offered */
	kres *res; /* max-heap by (dist, id): res[0] is the worst kept */
	nitem *q;  /* min-heap by dist */
	size_t nq, qcap;
	/* Small queries allocate nothing. */
	kres res0[32];
	nitem q0[128];
} knn;

/* Is a a worse result than b? */
static inline bool worse(const kres *a, const kres *b)
{
	return a->dist != b->dist ? a->dist > b->dist : a->id > b->id;
}

/* No entry or node farther than this can be a result. */
static inline double kth(const knn *s)
{
	return s->nres == s->k ? s->res[0].dist : INFINITY;
}

static void res_sift_down(kres *h, uint32_t n, uint32_t i, kres x)
{
	for (;;) {
		uint32_t l = 2 * i + 1, m = l;
		if (l >= n)
			break;
		if (l + 1 < n && worse(&h[l + 1], &h[l]))
			m = l + 1;
		if (!worse(&h[m], &x))
			break;
		h[i] = h[m];
		i = m;
	}
	h[i] = x;
}

/* Keeps x if it is among the k best so far. */
static void offer(knn *s, const kres *x)
{
	kres *h = s->res;
	if (s->nres < s->k) {
		uint32_t i = s->nres++;
		while (i > 0 && worse(x, &h[(i - 1) / 2])) {
			h[i] = h[(i - 1) / 2];
			i = (i - 1) / 2;
		}
		h[i] = *x;
	} else if (worse(&h[0], x)) {
		res_sift_down(h, s->k, 0, *x);
	}
}

static int q_push(knn *s, double dist, strata_node_id id, uint32_t level)
{
	if (s->nq == s->qcap) {
		size_t cap = 4 * s->qcap;
		nitem *q = s->q == s->q0 ? malloc(cap * sizeof *q) : realloc(s->q, cap * sizeof *q);
		if (!q)
			return STRATA_ENOMEM;
		if (s->q == s->q0)
			memcpy(q, s->q0, sizeof s->q0);
		s->q = q;
		s->qcap = cap;
	}
	size_t i = s->nq++;
	while (i > 0 && s->q[(i - 1) / 2].dist > dist) {
		s->q[i] = s->q[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	s->q[i] = (nitem){dist, id, level};
	return 0;
}

static nitem q_pop(knn *s)
{
	nitem top = s->q[0], last = s->q[--s->nq];
	size_t i = 0;
	for (;;) {
		size_t l = 2 * i + 1, m = l;
		if (l >= s->nq)
			break;
		if (l + 1 < s->nq && s->q[l + 1].dist < s->q[l].dist)
			m = l + 1;
		if (!(s->q[m].dist < last.dist))
			break;
		s->q[i] = s->q[m];
		i = m;
	}
	if (s->nq)
		s->q[i] = last;
	return top;
}

/* Reads node `id` at `level`: *v. */
static int read_node(const knn *s, strata_node_id id, uint32_t level, xt_view *v)
{
	int rc = xt_rd_node(s->rd, id, v, NULL);
	return rc ? rc : v->h->level != level ? STRATA_ECORRUPT : 0;
}

/* Offers every entry of leaf v. */
static void offer_leaf(knn *s, const xt_view *v)
{
	xt_vd dv[XT_DIST_CHUNK / XT_LANES];
	for (uint32_t from = 0; from < v->h->count; from += XT_DIST_CHUNK) {
		uint32_t len = v->h->count - from < XT_DIST_CHUNK ? v->h->count - from : XT_DIST_CHUNK;
		xt_distances(v, s->rd->m->dims, s->pt, s->metric, from, len, dv);
		for (uint32_t j = 0; j < len; j++) {
			kres x = {dv[j / XT_LANES][j % XT_LANES], v->ids[from + j], v->h, from + j};
			if (x.dist <= kth(s))
				offer(s, &x);
		}
	}
}

/* The greedy descent: the nearest child at every level, then the leaf's
 * entries offered. */
static int dive(knn *s)
{
	const xt_meta *m = s->rd->m;
	strata_node_id id = m->top;
	xt_view v;
	for (uint32_t level = m->height - 1;; level--) {
		int rc = read_node(s, id, level, &v);
		if (rc)
			return rc;
		if (level == 0)
			break;
		double best = INFINITY;
		xt_vd dv[XT_DIST_CHUNK / XT_LANES];
		for (uint32_t from = 0; from < v.h->count; from += XT_DIST_CHUNK) {
			uint32_t len = v.h->count - from < XT_DIST_CHUNK ? v.h->count - from
									   : XT_DIST_CHUNK;
			xt_distances(&v, m->dims, s->pt, s->metric, from, len, dv);
			for (uint32_t j = 0; j < len; j++)
				/* the first child if all are at inf (L2 gaps of 1e200 square to
				 * inf): none is less, and id would stay this node's */
				if (dv[j / XT_LANES][j % XT_LANES] < best || from + j == 0) {
					best = dv[j / XT_LANES][j % XT_LANES];
					id = v.ids[from + j];
				}
		}
	}
	offer_leaf(s, &v);
	s->dived = id;
	return 0;
}

/* Reads one node: its entries are offered, its children queued. */
static int expand(knn *s, const nitem *n)
{
	xt_view v;
	uint32_t d = s->rd->m->dims;
	if (n->level == 0 && n->id == s->dived)
		return 0; /* offered by the descent */
	int rc = xt_rd_node(s->rd, n->id, &v, NULL);
	if (rc)
		return rc;
	if (v.h->level != n->level)
		return STRATA_ECORRUPT;
	xt_vd dv[XT_DIST_CHUNK / XT_LANES];
	for (uint32_t from = 0; from < v.h->count; from += XT_DIST_CHUNK) {
		uint32_t len = v.h->count - from < XT_DIST_CHUNK ? v.h->count - from : XT_DIST_CHUNK;
		xt_distances(&v, d, s->pt, s->metric, from, len, dv);
		for (uint32_t j = 0; j < len; j++) {
			double dist = dv[j / XT_LANES][j % XT_LANES];
			if (dist > kth(s))
				continue;
			if (n->level == 0) {
				kres x = {dist, v.ids[from + j], v.h, from + j};
				offer(s, &x);
			} else if ((rc = q_push(s, dist, v.ids[from + j], n->level - 1))) {
				return rc;
			}
		}
	}
	return 0;
}

/* Sorts the k best by (dist, id) ascending (heap sort in place) and hands
 * them to fn with their boxes. */
static int report(knn *s, strata_xt_knn_fn fn, void *ctx)
{
	uint32_t d = s->rd->m->dims;
	for (uint32_t n = s->nres; n > 1; n--) {
		kres top = s->res[0];
		res_sift_down(s->res, n - 1, 0, s->res[n - 1]);
		s->res[n - 1] = top;
	}
	for (uint32_t i = 0; i < s->nres; i++) {
		const kres *r = &s->res[i];
		xt_view v = xt_view_of(r->leaf, d);
		xt_box b;
		xt_box_get(&v, d, r->idx, &b);
		int rc = fn(ctx, r->id, r->dist, b.lo, b.hi);
		if (rc)
			return rc;
	}
	return 0;
}

static int search(knn *s)
{
	const xt_meta *m = s->rd->m;
	if (m->height == 0)
		return 0;
	/* The descent can bound the search only if a leaf may hold k entries. */
	bool may_bound = s->k <= xt_cap_of(m->o.node_size, m->dims, true);
	int rc = may_bound ? dive(s) : 0;
	if (!rc)
		rc = q_push(s, 0, m->top, m->height - 1);
	while (!rc && s->nq) {
		nitem n = q_pop(s);
		if (n.dist > kth(s))
			break; /* every node left is farther still */
		rc = expand(s, &n);
	}
	return rc;
}

static int knn_rd(const xt_rd *rd, uint32_t dims, const double *point, uint32_t k,
		  strata_xt_metric metric, strata_xt_knn_fn fn, void *ctx)
{
	bool bad = k == 0 || !fn || metric < STRATA_XT_L2 || metric > STRATA_XT_LINF;
	int rc = xt_check_args(rd, dims, bad, point, NULL);
	if (rc)
		return rc;
	knn st, *s = &st; /* 4 KiB of stack: no allocation for k <= 32 and short queues */
	s->rd = rd;
	s->pt = point;
	s->metric = metric;
	s->k = k;
	s->nres = 0;
	s->dived = STRATA_NODE_NULL;
	s->res = k <= sizeof s->res0 / sizeof s->res0[0] ? s->res0 : malloc(k * sizeof *s->res);
	s->q = s->q0;
	s->nq = 0;
	s->qcap = sizeof s->q0 / sizeof s->q0[0];
	rc = s->res ? search(s) : STRATA_ENOMEM;
	if (!rc)
		rc = report(s, fn, ctx);
	if (s->res && s->res != s->res0)
		free(s->res);
	if (s->q != s->q0)
		free(s->q);
	return rc;
}

STRATA_API int strata_xt_knn(const strata_snapshot *snap, const char *name, uint32_t dims,
			     const double *point, uint32_t k, strata_xt_metric metric,
			     strata_xt_knn_fn fn, void *ctx)
{
	xt_rd rd;
	int rc = xt_rd_open(snap, name, &rd);
	return rc ? rc : knn_rd(&rd, dims, point, k, metric, fn, ctx);
}

STRATA_API int strata_xt_handle_knn(const strata_xt_handle *h, uint32_t dims, const double *point,
				    uint32_t k, strata_xt_metric metric, strata_xt_knn_fn fn,
				    void *ctx)
{
	return h ? knn_rd(&h->rd, dims, point, k, metric, fn, ctx) : STRATA_EINVAL;
}
