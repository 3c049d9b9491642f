/*
 * xt_query.c — queries on a snapshot: window queries (intersects, contains,
 * within) and best-first k-nearest-neighbour search (Hjaltason & Samet
 * 1999) as an incremental cursor.
 *
 * Window tests run one dimension at a time over a chunk of entries into a
 * byte mask, branch-free, so the compiler vectorises them over the
 * structure-of-arrays coordinates.
 *
 * The cursor keeps one priority queue of nodes and entries keyed by their
 * distance to the query point. Order: distance; at equal distance nodes
 * before entries (a node at distance r may still hold an entry at r with a
 * smaller id); entries by ascending id. An entry popped from the queue is
 * therefore the next result in the documented total order.
 */
#include <stdlib.h>

#include "xt_internal.h"

#define CHUNK 256

typedef struct wq {
	const xt_rd *rd;
	uint32_t d;
	strata_xt_pred pred;
	const double *qlo, *qhi;
	strata_xt_hit_fn fn;
	void *ctx;
} wq;

/* mask[i] &= entry i passes the test (rel: 0 intersects, 1 contains q,
 * 2 within q) in every dimension. */
static void test_chunk(const xt_view *v, uint32_t d, uint32_t from, uint32_t len, int rel,
		       const double *qlo, const double *qhi, uint8_t *mask)
{
	uint32_t cap = v->h->cap;
	for (uint32_t k = 0; k < d; k++) {
		const double *lo = v->lo + (size_t)k * cap + from, *hi = v->hi + (size_t)k * cap + from;
		const double a = qlo[k], b = qhi[k];
		if (rel == 0)
			for (uint32_t i = 0; i < len; i++)
				mask[i] &= (uint8_t)((lo[i] <= b) & (hi[i] >= a));
		else if (rel == 1)
			for (uint32_t i = 0; i < len; i++)
				mask[i] &= (uint8_t)((lo[i] <= a) & (hi[i] >= b));
		else
			for (uint32_t i = 0; i < len; i++)
				mask[i] &= (uint8_t)((lo[i] >= a) & (hi[i] <= b));
	}
}

static int visit(const wq *q, strata_node_id id, uint32_t level)
{
	xt_view v;
	int rc = xt_rd_node(q->rd, id, &v, NULL);
	if (rc)
		return rc;
	if (v.h->level != level)
		return STRATA_ECORRUPT;
	/* Directory boxes: "contains" needs a child box containing q; the
	 * other predicates need one that meets q. */
	int rel = level ? (q->pred == STRATA_XT_CONTAINS ? 1 : 0) : (int)q->pred;
	uint8_t mask[CHUNK];
	for (uint32_t from = 0; from < v.h->count; from += CHUNK) {
		uint32_t len = v.h->count - from < CHUNK ? v.h->count - from : CHUNK;
		memset(mask, 1, len);
		test_chunk(&v, q->d, from, len, rel, q->qlo, q->qhi, mask);
		for (uint32_t j = 0; j < len; j++) {
			if (!mask[j])
				continue;
			uint32_t i = from + j;
			if (level) {
				rc = visit(q, v.ids[i], level - 1);
			} else {
				xt_box b;
				xt_box_get(&v, q->d, i, &b);
				rc = q->fn(q->ctx, v.ids[i], b.lo, b.hi);
			}
			if (rc)
				return rc;
		}
	}
	return 0;
}

STRATA_API int strata_xt_query(const strata_snapshot *snap, const char *name, uint32_t dims,
			       strata_xt_pred pred, const double *min, const double *max,
			       strata_xt_hit_fn fn, void *ctx)
{
	xt_rd rd;
	int rc = xt_rd_open(snap, name, &rd);
	if (rc)
		return rc;
	if (dims != rd.m->dims)
		return STRATA_EDIMS;
	if (!fn || pred < STRATA_XT_INTERSECTS || pred > STRATA_XT_WITHIN)
		return STRATA_EINVAL;
	if ((rc = xt_validate_box(dims, min, max)))
		return rc;
	if (rd.m->height == 0)
		return 0;
	wq q = {&rd, dims, pred, min, max ? max : min, fn, ctx};
	return visit(&q, rd.m->top, rd.m->height - 1);
}

/* ---- best-first kNN ---------------------------------------------------------- */

typedef struct hitem {
	double dist;
	uint64_t id;      /* entry id, or child NodeID */
	const void *node; /* entries: the leaf holding it */
	uint32_t idx;     /* entries: index in the leaf */
	int32_t level;    /* nodes: their level; entries: -1 */
} hitem;

struct strata_xt_cursor {
	xt_rd rd;
	strata_xt_metric metric;
	double pt[XT_MAXD];
	hitem *heap;
	size_t n, cap;
	uint64_t nodes;
	xt_box out;
};

static bool before(const hitem *a, const hitem *b)
{
	if (a->dist != b->dist)
		return a->dist < b->dist;
	if ((a->level < 0) != (b->level < 0))
		return a->level >= 0; /* nodes first */
	return a->id < b->id;
}

static int heap_push(strata_xt_cursor *c, const hitem *it)
{
	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 256;
		hitem *h = realloc(c->heap, cap * sizeof *h);
		if (!h)
			return STRATA_ENOMEM;
		c->heap = h;
		c->cap = cap;
	}
	size_t i = c->n++;
	while (i > 0 && before(it, &c->heap[(i - 1) / 2])) {
		c->heap[i] = c->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	c->heap[i] = *it;
	return 0;
}

static hitem heap_pop(strata_xt_cursor *c)
{
	hitem top = c->heap[0], last = c->heap[--c->n];
	size_t i = 0;
	for (;;) {
		size_t l = 2 * i + 1, m = l;
		if (l >= c->n)
			break;
		if (l + 1 < c->n && before(&c->heap[l + 1], &c->heap[l]))
			m = l + 1;
		if (!before(&c->heap[m], &last))
			break;
		c->heap[i] = c->heap[m];
		i = m;
	}
	if (c->n)
		c->heap[i] = last;
	return top;
}

static int expand(strata_xt_cursor *c, strata_node_id id, uint32_t level)
{
	xt_view v;
	int rc = xt_rd_node(&c->rd, id, &v, NULL);
	if (rc)
		return rc;
	if (v.h->level != level)
		return STRATA_ECORRUPT;
	c->nodes++;
	uint32_t d = c->rd.m->dims, cap = v.h->cap;
	for (uint32_t i = 0; i < v.h->count; i++) {
		hitem it = {xt_mindist(c->pt, v.lo + i, v.hi + i, cap, d, c->metric), v.ids[i], v.h,
			    i, level ? (int32_t)level - 1 : -1};
		if ((rc = heap_push(c, &it)))
			return rc;
	}
	return 0;
}

STRATA_API int strata_xt_cursor_open(const strata_snapshot *snap, const char *name, uint32_t dims,
				     const double *point, strata_xt_metric metric,
				     strata_xt_cursor **out)
{
	xt_rd rd;
	int rc = xt_rd_open(snap, name, &rd);
	if (rc)
		return rc;
	if (dims != rd.m->dims)
		return STRATA_EDIMS;
	if (!out || metric < STRATA_XT_L2 || metric > STRATA_XT_LINF)
		return STRATA_EINVAL;
	if ((rc = xt_validate_box(dims, point, NULL)))
		return rc;
	strata_xt_cursor *c = calloc(1, sizeof *c);
	if (!c)
		return STRATA_ENOMEM;
	c->rd = rd;
	c->metric = metric;
	memcpy(c->pt, point, dims * sizeof(double));
	if (rd.m->height) {
		hitem root = {0, rd.m->top, NULL, 0, (int32_t)rd.m->height - 1};
		if ((rc = heap_push(c, &root))) {
			strata_xt_cursor_close(c);
			return rc;
		}
	}
	*out = c;
	return 0;
}

STRATA_API int strata_xt_cursor_next(strata_xt_cursor *c, uint64_t *id, double *dist,
				     const double **min, const double **max)
{
	if (!c)
		return STRATA_EINVAL;
	while (c->n) {
		hitem it = heap_pop(c);
		if (it.level >= 0) {
			int rc = expand(c, it.id, (uint32_t)it.level);
			if (rc)
				return rc;
			continue;
		}
		xt_view v = xt_view_of(it.node, c->rd.m->dims);
		xt_box_get(&v, c->rd.m->dims, it.idx, &c->out);
		if (id)
			*id = it.id;
		if (dist)
			*dist = it.dist;
		if (min)
			*min = c->out.lo;
		if (max)
			*max = c->out.hi;
		return 0;
	}
	return STRATA_ENOTFOUND;
}

STRATA_API uint64_t strata_xt_cursor_nodes(const strata_xt_cursor *c)
{
	return c ? c->nodes : 0;
}

STRATA_API void strata_xt_cursor_close(strata_xt_cursor *c)
{
	if (!c)
		return;
	free(c->heap);
	free(c);
}

STRATA_API int strata_xt_knn(const strata_snapshot *snap, const char *name, uint32_t dims,
			     const double *point, uint32_t k, strata_xt_metric metric,
			     strata_xt_knn_fn fn, void *ctx)
{
	if (k == 0 || !fn)
		return STRATA_EINVAL;
	strata_xt_cursor *c;
	int rc = strata_xt_cursor_open(snap, name, dims, point, metric, &c);
	if (rc)
		return rc;
	for (uint32_t j = 0; j < k && !rc; j++) {
		uint64_t id;
		double dist;
		const double *lo, *hi;
		rc = strata_xt_cursor_next(c, &id, &dist, &lo, &hi);
		if (rc == STRATA_ENOTFOUND) {
			rc = 0;
			break;
		}
		if (!rc)
			rc = fn(ctx, id, dist, lo, hi);
	}
	strata_xt_cursor_close(c);
	return rc;
}
