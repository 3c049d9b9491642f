/*
 * xt_query.c — queries on a snapshot: window queries (intersects, contains,
 * within) and best-first k-nearest-neighbour search (Hjaltason & Samet
 * 1999) as an incremental cursor.
 *
 * Each query runs through an opened tree (xt_rd): by name, opened per call,
 * or a query handle opened once per snapshot (xt_meta.c).
 *
 * Window tests take two entries at a time (one vector of the structure-of-
 * arrays coordinates), every dimension of them, branch-free in 2-D and 3-D
 * (above, a lane stops at the first dimension both entries fail), into a
 * bit mask of up to 64 entries; only the set bits are visited. A directory
 * node's matching children are resolved and prefetched before the first
 * is descended into, and leaves lying within the window are not tested.
 * Hits go to a per-hit callback (id and box) or, in the block form
 * (strata_xt_handle_query_ids), as one array of ids per leaf chunk: the
 * leaf's own id array when every entry matched.
 *
 * The cursor keeps one priority queue of nodes and entries keyed by their
 * distance to the query point. Order: distance; at equal distance nodes
 * before entries (a node at distance r may still hold an entry at r with a
 * smaller id); entries by ascending id. An entry popped from the queue is
 * therefore the next result in the documented total order.
 *
 * Distances of a node's entries are computed two entries per vector over
 * the contiguous coordinates (xt_distances). The callback form, which knows
 * k, has its own search (xt_knn.c).
 */
#include <stdlib.h>

#include "xt_internal.h"

_Static_assert(XT_LANES == 2, "visit() gathers two lanes per vector into its bitmask");

typedef struct wq {
	const xt_rd *rd;
	uint32_t d;
	strata_xt_pred pred;
	const double *qlo, *qhi;
	strata_xt_hit_fn fn;     /* one call per hit, or ... */
	strata_xt_ids_fn ids_fn; /* ... one per leaf chunk (exactly one of the two) */
	void *ctx;
} wq;

/* One vector of entries (at, at + 1) against the query in every dimension;
 * tail > 0: only `tail` entries remain (xt_load_tail). early: stop at the
 * first dimension that both entries fail (the generic-d copy: in 8-32 D a
 * large window still excludes most entries within a few dimensions, and
 * testing all d of them cost as much as a scan); the constant 2-D and 3-D
 * copies stay branch-free. */
static inline __attribute__((always_inline)) xt_vi
test_lane(const xt_view *v, uint32_t d, uint32_t at, uint32_t tail, const int rel,
	  const double *qlo, const double *qhi, const bool early)
{
	uint32_t cap = v->h->cap;
	xt_vi m = {-1, -1};
	for (uint32_t k = 0; k < d && (!early || (m[0] | m[1])); k++) {
		const double *lo = v->lo + (size_t)k * cap + at, *hi = v->hi + (size_t)k * cap + at;
		xt_vd l = tail ? xt_load_tail(lo, tail) : xt_load(lo);
		xt_vd h = tail ? xt_load_tail(hi, tail) : xt_load(hi);
		if (rel == 0)
			m &= (l <= xt_splat(qhi[k])) & (h >= xt_splat(qlo[k]));
		else if (rel == 1)
			m &= (l <= xt_splat(qlo[k])) & (h >= xt_splat(qhi[k]));
		else
			m &= (l >= xt_splat(qlo[k])) & (h <= xt_splat(qhi[k]));
	}
	return m;
}

/* Entries [from, from + len) of a node (len <= 64) that pass the test in
 * every dimension, one bit each (bit i: entry from + i). rel 0: meets q
 * (lo <= qhi & hi >= qlo); 1: contains q (lo <= qlo & hi >= qhi); 2: within
 * q (lo >= qlo & hi <= qhi). Two entries per step, every dimension of them
 * in the inner loop, the mask kept in a register: no mask array to store,
 * reload and gather bits from. A partial last lane repeats the last entry;
 * its bit is cleared. Inlined with a constant rel, so each predicate gets
 * its own loop. */
static inline __attribute__((always_inline)) uint64_t
test_bits(const xt_view *v, uint32_t d, uint32_t from, uint32_t len, const int rel,
	  const double *qlo, const double *qhi)
{
	const bool early = d > 3;
	uint32_t full = len / XT_LANES, j = 0;
	uint64_t bits = 0;
	for (; j < full; j++) { /* whole lanes: plain loads */
		xt_vi m = test_lane(v, d, from + XT_LANES * j, 0, rel, qlo, qhi, early);
		bits |= (uint64_t)xt_mask_bits(m) << (XT_LANES * j);
	}
	if (len % XT_LANES) { /* the partial lane, once: its copy's bit cleared below */
		xt_vi m = test_lane(v, d, from + XT_LANES * j, len % XT_LANES, rel, qlo, qhi, early);
		bits |= (uint64_t)xt_mask_bits(m) << (XT_LANES * j);
	}
	return len < 64 ? bits & ((1ull << len) - 1) : bits;
}

/* ---- four entries per step where the CPU has AVX2 ---------------------------
 * The same test on 256-bit vectors, chosen at run time (the library is
 * built for the x86-64 baseline): half the loads, compares and mask steps
 * per entry, which is most of a small window's instructions (a 0.001 %
 * window in 2-D tests ~5 nodes of ~100 entries for one or two hits). A
 * partial last step loads through a mask (masked lanes read nothing, so
 * the node's end is never crossed) and its extra bits are cleared. The
 * compares are ordered, like the vector-extension ones above. */
#ifdef XT_HAVE_AVX2

/* -1: not decided yet; 0: baseline lanes; 1: AVX2 (tests set it). Read
 * through xt_use_avx2, by ChooseSubtree too. */
int xt_query_avx2 = -1;

static inline __attribute__((always_inline, target("avx2"))) __m256d ld4(const double *p,
									 uint32_t tail)
{
	if (!tail)
		return _mm256_loadu_pd(p);
	__m256i m = _mm256_setr_epi64x(-1, tail > 1 ? -1 : 0, tail > 2 ? -1 : 0, 0);
	return _mm256_maskload_pd(p, m);
}

/* Entries [at, at + 4) (tail > 0: only `tail` of them) against the query. */
static inline __attribute__((always_inline, target("avx2"))) uint64_t
test_lane4(const xt_view *v, uint32_t d, uint32_t at, uint32_t tail, const int rel,
	   const double *qlo, const double *qhi)
{
	const uint32_t cap = v->h->cap;
	__m256d m = _mm256_castsi256_pd(_mm256_set1_epi64x(-1));
	for (uint32_t k = 0; k < d; k++) {
		__m256d l = ld4(v->lo + (size_t)k * cap + at, tail);
		__m256d h = ld4(v->hi + (size_t)k * cap + at, tail);
		__m256d a = _mm256_set1_pd(qlo[k]), b = _mm256_set1_pd(qhi[k]);
		if (rel == 0)
			m = _mm256_and_pd(m, _mm256_and_pd(_mm256_cmp_pd(l, b, _CMP_LE_OQ),
							   _mm256_cmp_pd(h, a, _CMP_GE_OQ)));
		else if (rel == 1)
			m = _mm256_and_pd(m, _mm256_and_pd(_mm256_cmp_pd(l, a, _CMP_LE_OQ),
							   _mm256_cmp_pd(h, b, _CMP_GE_OQ)));
		else
			m = _mm256_and_pd(m, _mm256_and_pd(_mm256_cmp_pd(l, a, _CMP_GE_OQ),
							   _mm256_cmp_pd(h, b, _CMP_LE_OQ)));
		if (d > 3 && _mm256_testz_pd(m, m)) /* all four failed: the rest can't help */
			break;
	}
	return (uint64_t)_mm256_movemask_pd(m);
}

static inline __attribute__((always_inline, target("avx2"))) uint64_t
test_bits4(const xt_view *v, uint32_t d, uint32_t from, uint32_t len, const int rel,
	   const double *qlo, const double *qhi)
{
	uint64_t bits = 0;
	uint32_t at = 0;
	for (; at + 4 <= len; at += 4)
		bits |= test_lane4(v, d, from + at, 0, rel, qlo, qhi) << at;
	if (at < len) /* masked lanes read 0.0 and may pass: cleared below */
		bits |= test_lane4(v, d, from + at, len - at, rel, qlo, qhi) << at;
	return len < 64 ? bits & ((1ull << len) - 1) : bits;
}

static __attribute__((noinline, target("avx2"))) uint64_t
node_bits4(const xt_view *v, uint32_t d, uint32_t from, uint32_t len, int rel, const double *qlo,
	   const double *qhi)
{
	if (d == 2 && rel == 0)
		return test_bits4(v, 2, from, len, 0, qlo, qhi);
	if (d == 3 && rel == 0)
		return test_bits4(v, 3, from, len, 0, qlo, qhi);
	if (rel == 0)
		return test_bits4(v, d, from, len, 0, qlo, qhi);
	return rel == 1 ? test_bits4(v, d, from, len, 1, qlo, qhi)
			: test_bits4(v, d, from, len, 2, qlo, qhi);
}

#endif

/* test_bits with rel (and, for 2-D and 3-D intersects, d) constant: the
 * per-dimension query splats leave the lane loop, which unrolls (2-D: 4
 * loads, 4 compares). */
static inline __attribute__((always_inline)) uint64_t
node_bits(const xt_view *v, uint32_t d, uint32_t from, uint32_t len, int rel,
			  const double *qlo, const double *qhi)
{
#ifdef XT_HAVE_AVX2
	if (xt_use_avx2())
		return node_bits4(v, d, from, len, rel, qlo, qhi);
#endif
	if (d == 2) {
		if (rel == 0)
			return test_bits(v, 2, from, len, 0, qlo, qhi);
		return rel == 1 ? test_bits(v, 2, from, len, 1, qlo, qhi)
				: test_bits(v, 2, from, len, 2, qlo, qhi);
	}
	if (d == 3 && rel == 0) /* 3-D intersects: the common case there */
		return test_bits(v, 3, from, len, 0, qlo, qhi);
	if (rel == 0)
		return test_bits(v, d, from, len, 0, qlo, qhi);
	return rel == 1 ? test_bits(v, d, from, len, 1, qlo, qhi)
			: test_bits(v, d, from, len, 2, qlo, qhi);
}

static int visit_node(const wq *q, const xt_view *v, uint32_t level, bool inside);

/* Touches the lines of a node about to be read (up to 2 KiB of it), so the
 * loads of several children overlap instead of each query step waiting for
 * its own cache misses. */
static inline void prefetch_node(const void *p, uint32_t size)
{
	uint32_t n = size < 2048 ? size : 2048;
	const char *c = p;
	for (uint32_t at = 0; at < n; at += 256) { /* nodes are >= 512 bytes: 4 lines a step */
		__builtin_prefetch(c + at);
		__builtin_prefetch(c + at + 64);
		__builtin_prefetch(c + at + 128);
		__builtin_prefetch(c + at + 192);
	}
}

/* The children of directory node v that passed (bits, entries from +
 * i): all resolved and prefetched first, then visited in turn. Those in
 * `inside` lie within the query box. */
static int visit_children(const wq *q, const xt_view *v, uint32_t level, uint32_t from,
			  uint64_t bits, uint64_t inside)
{
	xt_view kids[64];
	bool in[64];
	uint32_t n = 0, size;
	for (; bits; bits &= bits - 1) {
		uint32_t b = (uint32_t)__builtin_ctzll(bits), i = from + b;
		in[n] = inside >> b & 1;
		int rc = xt_rd_node(q->rd, v->ids[i], &kids[n], &size);
		if (rc)
			return rc;
		if (kids[n].h->level != level - 1)
			return STRATA_ECORRUPT;
		prefetch_node(kids[n++].h, size);
	}
	for (uint32_t j = 0; j < n; j++) {
		int rc = visit_node(q, &kids[j], level - 1, in[j]);
		if (rc)
			return rc;
	}
	return 0;
}

/* 2-D hits: the box gathered inline (4 loads), everything the loop needs
 * in locals, so a hit costs little beyond the callback itself. */
static int report_hits_2d(const wq *q, const xt_view *v, uint32_t from, uint64_t bits)
{
	const uint32_t cap = v->h->cap;
	const double *lo0 = v->lo + from, *lo1 = v->lo + cap + from;
	const double *hi0 = v->hi + from, *hi1 = v->hi + cap + from;
	const uint64_t *ids = v->ids + from;
	strata_xt_hit_fn fn = q->fn;
	void *ctx = q->ctx;
	for (; bits; bits &= bits - 1) {
		uint32_t i = (uint32_t)__builtin_ctzll(bits);
		double lo[2] = {lo0[i], lo1[i]}, hi[2] = {hi0[i], hi1[i]};
		int rc = fn(ctx, ids[i], lo, hi);
		if (rc)
			return rc;
	}
	return 0;
}

/* The ids of the hits (bits, entries from + i; len entries tested) in one
 * call: the node's own id array when every entry matched (a leaf inside
 * the window), else gathered into a block. */
static int report_ids(const wq *q, const xt_view *v, uint32_t from, uint32_t len, uint64_t bits)
{
	uint64_t all = len < 64 ? (1ull << len) - 1 : ~0ull;
	if (bits == all)
		return q->ids_fn(q->ctx, v->ids + from, len);
	uint64_t buf[64];
	const uint64_t *ids = v->ids + from;
	size_t n = 0;
	for (; bits; bits &= bits - 1)
		buf[n++] = ids[__builtin_ctzll(bits)];
	return n ? q->ids_fn(q->ctx, buf, n) : 0;
}

/* The hits among leaf entries (bits, entries from + i) go to the callback. */
static int report_hits(const wq *q, const xt_view *v, uint32_t from, uint32_t len, uint64_t bits)
{
	if (q->ids_fn)
		return report_ids(q, v, from, len, bits);
	if (q->d == 2)
		return report_hits_2d(q, v, from, bits);
	for (; bits; bits &= bits - 1) {
		uint32_t i = from + (uint32_t)__builtin_ctzll(bits);
		xt_box b;
		xt_box_get(v, q->d, i, &b);
		int rc = q->fn(q->ctx, v->ids[i], b.lo, b.hi);
		if (rc)
			return rc;
	}
	return 0;
}

/* Which of the children in `bits` (entries from + i) lie within the query
 * box: every entry below such a child intersects the box and lies within
 * it, so it needs no test (not so for "contains"). Asked only of
 * leaf-parents with more than two children meeting the box: large
 * windows, where most leaves read lie inside; a small window rarely covers
 * a leaf and would pay the test for nothing. */
static uint64_t children_inside(const wq *q, const xt_view *v, uint32_t level, uint32_t from,
				uint32_t len, uint64_t bits)
{
	uint64_t rest = bits & (bits - 1); /* bits less its lowest: more than two set? */
	if (level != 1 || q->pred == STRATA_XT_CONTAINS || !(rest & (rest - 1)))
		return 0; /* (no popcount: without -mpopcnt it is a libgcc call) */
	return node_bits(v, q->d, from, len, 2, q->qlo, q->qhi) & bits;
}

/* inside: v lies within the query box (its parent's entry did), so every
 * entry of it matches. */
static int visit_node(const wq *q, const xt_view *v, uint32_t level, bool inside)
{
	/* Directory boxes: "contains" needs a child box containing q; the
	 * other predicates need one that meets q. */
	int rel = level ? (q->pred == STRATA_XT_CONTAINS ? 1 : 0) : (int)q->pred;
	for (uint32_t from = 0; from < v->h->count; from += 64) {
		uint32_t len = v->h->count - from < 64 ? v->h->count - from : 64;
		uint64_t all = len < 64 ? (1ull << len) - 1 : ~0ull;
		uint64_t bits = inside ? all : node_bits(v, q->d, from, len, rel, q->qlo, q->qhi);
		int rc;
		if (level) {
			uint64_t in = inside ? all : children_inside(q, v, level, from, len, bits);
			rc = visit_children(q, v, level, from, bits, in);
		} else {
			rc = report_hits(q, v, from, len, bits);
		}
		if (rc)
			return rc;
	}
	return 0;
}

static int visit(const wq *q, strata_node_id id, uint32_t level)
{
	xt_view v;
	int rc = xt_rd_node(q->rd, id, &v, NULL);
	if (rc)
		return rc;
	if (v.h->level != level)
		return STRATA_ECORRUPT;
	return visit_node(q, &v, level, false);
}

/* A query's own arguments against the opened tree: its dims, then the
 * other arguments, then the box (the order the errors were documented in). */
int xt_check_args(const xt_rd *rd, uint32_t dims, bool bad_arg, const double *min,
		  const double *max)
{
	if (dims != rd->m->dims)
		return STRATA_EDIMS;
	if (bad_arg)
		return STRATA_EINVAL;
	return xt_validate_box(dims, min, max);
}

/* A window query with either callback (the other NULL). */
static int query_rd(const xt_rd *rd, uint32_t dims, strata_xt_pred pred, const double *min,
		    const double *max, strata_xt_hit_fn fn, strata_xt_ids_fn ids_fn, void *ctx)
{
	bool bad = (!fn && !ids_fn) || pred < STRATA_XT_INTERSECTS || pred > STRATA_XT_WITHIN;
	int rc = xt_check_args(rd, dims, bad, min, max);
	if (rc)
		return rc;
	if (rd->m->height == 0)
		return 0;
	wq q = {rd, dims, pred, min, max ? max : min, fn, ids_fn, ctx};
	return visit(&q, rd->m->top, rd->m->height - 1);
}

STRATA_API int strata_xt_query(const strata_snapshot *snap, const char *name, uint32_t dims,
			       strata_xt_pred pred, const double *min, const double *max,
			       strata_xt_hit_fn fn, void *ctx)
{
	xt_rd rd;
	int rc = xt_rd_open(snap, name, &rd);
	return rc ? rc : query_rd(&rd, dims, pred, min, max, fn, NULL, ctx);
}

STRATA_API int strata_xt_handle_query(const strata_xt_handle *h, uint32_t dims,
				      strata_xt_pred pred, const double *min, const double *max,
				      strata_xt_hit_fn fn, void *ctx)
{
	return h ? query_rd(&h->rd, dims, pred, min, max, fn, NULL, ctx) : STRATA_EINVAL;
}

STRATA_API int strata_xt_handle_query_ids(const strata_xt_handle *h, uint32_t dims,
					  strata_xt_pred pred, const double *min,
					  const double *max, strata_xt_ids_fn fn, void *ctx)
{
	return h ? query_rd(&h->rd, dims, pred, min, max, NULL, fn, ctx) : STRATA_EINVAL;
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
	/* Small queries never allocate beyond the cursor itself. */
	hitem heap0[96];
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
		size_t cap = 4 * c->cap;
		hitem *h = c->heap == c->heap0 ? malloc(cap * sizeof *h)
					       : realloc(c->heap, cap * sizeof *h);
		if (!h)
			return STRATA_ENOMEM;
		if (c->heap == c->heap0)
			memcpy(h, c->heap0, sizeof c->heap0);
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

/* Distances from the query point to entries [from, from + len) of v. The
 * gap max(lo - x, x - hi, 0) and the order of the sum are xt_mindist's,
 * and sqrtpd rounds as sqrt does, so both agree exactly. A partial last
 * lane repeats the last entry (ignored).
 *
 * Two loop orders. dist_lanes: one vector of two entries at a time with
 * every dimension in the inner loop (the sum stays in a register), inlined
 * with d and the metric constant for 2-D and 3-D. dist_dims: dimension by
 * dimension over all entries, which reads each dimension's array as one
 * stream; in 8-32 D the lane order would touch 2d arrays at once, more
 * streams than the prefetchers follow (32-D kNN took 1.5-2x longer). */
static inline __attribute__((always_inline)) void
dist_lanes(const xt_view *v, uint32_t d, const double *pt, const int metric, uint32_t from,
	   uint32_t len, xt_vd *out)
{
	uint32_t cap = v->h->cap, nv = (len + XT_LANES - 1) / XT_LANES, full = len / XT_LANES;
	const xt_vd zero = xt_splat(0);
	for (uint32_t j = 0; j < nv; j++) {
		uint32_t at = from + XT_LANES * j, rest = len - XT_LANES * j;
		xt_vd acc = zero;
		for (uint32_t k = 0; k < d; k++) {
			const double *lo = v->lo + (size_t)k * cap + at, *hi = v->hi + (size_t)k * cap + at;
			xt_vd l = j < full ? xt_load(lo) : xt_load_tail(lo, rest);
			xt_vd h = j < full ? xt_load(hi) : xt_load_tail(hi, rest);
			xt_vd x = xt_splat(pt[k]);
			xt_vd g = xt_max(xt_max(l - x, x - h), zero);
			if (metric == STRATA_XT_L2)
				acc += g * g;
			else if (metric == STRATA_XT_L1)
				acc += g;
			else
				acc = xt_max(acc, g);
		}
		out[j] = metric == STRATA_XT_L2 ? xt_sqrt(acc) : acc;
	}
}

static void dist_dims(const xt_view *v, uint32_t d, const double *pt, strata_xt_metric metric,
		      uint32_t from, uint32_t len, xt_vd *out)
{
	uint32_t cap = v->h->cap, nv = (len + XT_LANES - 1) / XT_LANES, full = len / XT_LANES;
	const xt_vd zero = xt_splat(0);
	for (uint32_t j = 0; j < nv; j++)
		out[j] = zero;
	for (uint32_t k = 0; k < d; k++) {
		const double *lo = v->lo + (size_t)k * cap + from, *hi = v->hi + (size_t)k * cap + from;
		const xt_vd x = xt_splat(pt[k]);
		for (uint32_t j = 0; j < nv; j++) {
			uint32_t at = XT_LANES * j, rest = len - at;
			xt_vd l = j < full ? xt_load(lo + at) : xt_load_tail(lo + at, rest);
			xt_vd h = j < full ? xt_load(hi + at) : xt_load_tail(hi + at, rest);
			xt_vd g = xt_max(xt_max(l - x, x - h), zero);
			if (metric == STRATA_XT_L2)
				out[j] += g * g;
			else if (metric == STRATA_XT_L1)
				out[j] += g;
			else
				out[j] = xt_max(out[j], g);
		}
	}
	if (metric == STRATA_XT_L2)
		for (uint32_t j = 0; j < nv; j++)
			out[j] = xt_sqrt(out[j]);
}

void xt_distances(const xt_view *v, uint32_t d, const double *pt, strata_xt_metric metric,
		  uint32_t from, uint32_t len, xt_vd *out)
{
	if (metric == STRATA_XT_L2 && d == 2)
		dist_lanes(v, 2, pt, STRATA_XT_L2, from, len, out);
	else if (metric == STRATA_XT_L2 && d == 3)
		dist_lanes(v, 3, pt, STRATA_XT_L2, from, len, out);
	else
		dist_dims(v, d, pt, metric, from, len, out);
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
	xt_vd dv[XT_DIST_CHUNK / XT_LANES];
	for (uint32_t from = 0; from < v.h->count; from += XT_DIST_CHUNK) {
		uint32_t len = v.h->count - from < XT_DIST_CHUNK ? v.h->count - from : XT_DIST_CHUNK;
		xt_distances(&v, c->rd.m->dims, c->pt, c->metric, from, len, dv);
		for (uint32_t j = 0; j < len; j++) {
			double dist = dv[j / XT_LANES][j % XT_LANES];
			hitem it = {dist, v.ids[from + j], v.h, from + j,
				    level ? (int32_t)level - 1 : -1};
			if ((rc = heap_push(c, &it)))
				return rc;
		}
	}
	return 0;
}

static int cursor_open(const xt_rd *rd, uint32_t dims, const double *point,
		       strata_xt_metric metric, strata_xt_cursor **out)
{
	bool bad = !out || metric < STRATA_XT_L2 || metric > STRATA_XT_LINF;
	int rc = xt_check_args(rd, dims, bad, point, NULL);
	if (rc)
		return rc;
	strata_xt_cursor *c = malloc(sizeof *c); /* not calloc: the arrays need no zeroes */
	if (!c)
		return STRATA_ENOMEM;
	c->rd = *rd;
	c->metric = metric;
	c->heap = c->heap0;
	c->n = 0;
	c->cap = sizeof c->heap0 / sizeof c->heap0[0];
	c->nodes = 0;
	memcpy(c->pt, point, dims * sizeof(double));
	if (rd->m->height) {
		hitem root = {0, rd->m->top, NULL, 0, (int32_t)rd->m->height - 1};
		if ((rc = heap_push(c, &root))) {
			strata_xt_cursor_close(c);
			return rc;
		}
	}
	*out = c;
	return 0;
}

/* A failed open leaves *out NULL, so that closing it is harmless. */
STRATA_API int strata_xt_cursor_open(const strata_snapshot *snap, const char *name, uint32_t dims,
				     const double *point, strata_xt_metric metric,
				     strata_xt_cursor **out)
{
	if (out)
		*out = NULL;
	xt_rd rd;
	int rc = xt_rd_open(snap, name, &rd);
	return rc ? rc : cursor_open(&rd, dims, point, metric, out);
}

STRATA_API int strata_xt_handle_cursor(const strata_xt_handle *h, uint32_t dims,
				       const double *point, strata_xt_metric metric,
				       strata_xt_cursor **out)
{
	if (out)
		*out = NULL;
	return h ? cursor_open(&h->rd, dims, point, metric, out) : STRATA_EINVAL;
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
	if (c->heap != c->heap0)
		free(c->heap);
	free(c);
}
