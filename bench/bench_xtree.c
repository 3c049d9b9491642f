/*
 * bench_xtree.c — the `xtree` suite: the X-tree against a brute-force scan
 * and the spatial peers, in the same run, on the same data and queries.
 *
 * Figures (issue 4 item 11), by data set (the figure-name prefix):
 *   2d           100k uniform 2-D boxes (sides up to 0.001): insert build
 *                (1000 inserts per commit) and STR bulk build, per entry;
 *                window queries of 0.001 %, 0.01 %, 0.1 % and 1 % of the
 *                space; kNN k = 1, 10, 100; nodes read per window query and
 *                per kNN(10); DURABLE (a bulk-loaded tree in a store
 *                directory, reopened) against IN_MEMORY. Peers: Boost.Geometry
 *                rstar<16> (insert-built and packed), libspatialindex R*
 *                (insert-built, and its STR bulk load), SQLite R*Tree
 *                (windows), and the scan (timed at window 0.01 % and kNN(10):
 *                its cost hardly depends on the query).
 *   2d_parcel    100k "parcels" (gen_parcels below: a dense tiling of small,
 *                mostly disjoint boxes of varied size and aspect ratio, with
 *                streets and setbacks between them);
 *   3d           100k uniform 3-D boxes (sides up to 0.01);
 *   2d_1m        1M uniform 2-D boxes (sides up to 0.001): each the same
 *                builds (X-tree, Boost insert and packed, libspatialindex
 *                STR), windows and kNN against Boost, nodes per query.
 *   {8,16,32}d_* 100k points, uniform and Gaussian clusters, bulk-loaded:
 *                kNN(10) against the scan, nodes per kNN(10).
 * Every query set is first run once on every system and the results
 * cross-checked (hit counts; sums of kNN ids) against the scan, or against
 * Boost at 1M (a scan of 1M entries per query would take most of the run):
 * a mismatch stops the run. SQLite stores float32 rounded outward, so its
 * counts may be larger. The libspatialindex STR tree is cross-checked on the
 * 0.01 % windows.
 * Nodes per window query are counted from the tree's node boxes
 * (strata_xt_nodes): the query reads the root and every other node whose box
 * meets the window (xt_query.c prunes exactly so).
 * --quick: 20k entries per set (the 1M set 40k) and fewer queries.
 */
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "peer_spatial.h"
#include "strata/xtree.h"
#include "suites.h"

#define MAXD STRATA_XT_DIMS_MAX
static const char *const NAME = "xt";

/* ---- data --------------------------------------------------------------------------- */
typedef struct data {
	uint32_t d;
	size_t n;
	double *lo, *hi; /* n * d, entry after entry */
	uint64_t *id;
} data;

static uint64_t rnd(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

static double unit(uint64_t *x)
{
	return (double)(rnd(x) >> 11) / 9007199254740992.0;
}

static double gauss(uint64_t *x)
{
	return sqrt(-2 * log(unit(x) + 1e-300)) * cos(6.283185307179586 * unit(x));
}

static void data_alloc(data *D, uint32_t d, size_t n)
{
	D->d = d, D->n = n;
	D->lo = bench_xmalloc(n * d * sizeof(double));
	D->hi = bench_xmalloc(n * d * sizeof(double));
	D->id = bench_xmalloc(n * sizeof(uint64_t));
	for (size_t i = 0; i < n; i++)
		D->id[i] = i + 1;
}

/* Uniform, or 10 Gaussian clusters (sigma 0.05); boxes: sides up to `side`. */
static void gen(data *D, uint32_t d, size_t n, bool clustered, double side, uint64_t seed)
{
	double c[10][MAXD];
	data_alloc(D, d, n);
	for (int j = 0; j < 10; j++)
		for (uint32_t k = 0; k < d; k++)
			c[j][k] = unit(&seed);
	for (size_t i = 0; i < n; i++) {
		size_t j = rnd(&seed) % 10;
		for (uint32_t k = 0; k < d; k++) {
			double x = clustered ? c[j][k] + 0.05 * gauss(&seed) : unit(&seed);
			D->lo[i * d + k] = x;
			D->hi[i * d + k] = x + side * unit(&seed);
		}
	}
}

/* Parcels: the unit square cut recursively in two until every piece is one
 * parcel, n in all. Each cut gives each side a random share (25-75 %) of
 * the parcels still to place and a piece of the area within ±20 % of that
 * share, so parcel areas vary (the jitter compounds over ~17 levels). The
 * cut is across the longer side four times in five, else (unless the piece
 * is already 2.5 times longer than wide) across the shorter, so most
 * parcels are near square and some are strips. A cut of a piece holding 100
 * or more parcels leaves a street (0.4 × the mean parcel side s = 1/√n, at
 * most a tenth of the piece) between the two pieces: blocks of 25-100
 * parcels. Every parcel is then shrunk by a setback of 0.03 s on each side,
 * so neighbours do not touch; 3 % of them instead grow by 25 % of their
 * extent on each side and overlap their neighbours ("mostly
 * non-overlapping": survey slivers, easements). Ids follow the order of the
 * cuts (neighbours have near ids, as in a cadastre numbered block by block).
 * Measured at 100k (and alike at 1M): areas 0.26 / 0.69 / 1.8 times the
 * mean at the 5th percentile / median / 95th (max 13); aspect ratios 1.7
 * median, 3.7 at the 90th percentile, 8 at the 99th; the parcels cover 83 %
 * of the square. */
typedef struct parcel_gen {
	data *D;
	size_t at;
	double s;
	uint64_t seed;
} parcel_gen;

static void parcel_emit(parcel_gen *g, double x0, double y0, double x1, double y1)
{
	double f = unit(&g->seed) < 0.03 ? -0.25 : 0, bx, by;
	if (f == 0)
		bx = by = 0.03 * g->s;
	else
		bx = f * (x1 - x0), by = f * (y1 - y0);
	/* a setback never eats more than a third of a thin strip */
	bx = fmin(bx, (x1 - x0) / 3), by = fmin(by, (y1 - y0) / 3);
	double *lo = g->D->lo + 2 * g->at, *hi = g->D->hi + 2 * g->at;
	lo[0] = x0 + bx, lo[1] = y0 + by, hi[0] = x1 - bx, hi[1] = y1 - by;
	g->at++;
}

static void parcel_cut(parcel_gen *g, double x0, double y0, double x1, double y1, size_t cnt)
{
	if (cnt == 1) {
		parcel_emit(g, x0, y0, x1, y1);
		return;
	}
	size_t a = (size_t)llround((double)cnt * (0.25 + 0.5 * unit(&g->seed)));
	a = a < 1 ? 1 : (a > cnt - 1 ? cnt - 1 : a);
	double share = (double)a / (double)cnt * (0.8 + 0.4 * unit(&g->seed));
	share = fmin(fmax(share, 0.05), 0.95);
	double w = x1 - x0, h = y1 - y0;
	bool wide = w >= h;
	/* across the shorter side only while the piece is not yet a strip */
	bool across_x = unit(&g->seed) < 0.8 || fmax(w, h) > 2.5 * fmin(w, h) ? wide : !wide;
	double street = cnt >= 100 ? fmin(0.4 * g->s, 0.1 * (across_x ? x1 - x0 : y1 - y0)) : 0;
	if (across_x) {
		double len = x1 - x0 - street, c = x0 + share * len;
		parcel_cut(g, x0, y0, c, y1, a);
		parcel_cut(g, c + street, y0, x1, y1, cnt - a);
	} else {
		double len = y1 - y0 - street, c = y0 + share * len;
		parcel_cut(g, x0, y0, x1, c, a);
		parcel_cut(g, x0, c + street, x1, y1, cnt - a);
	}
}

static void gen_parcels(data *D, size_t n, uint64_t seed)
{
	data_alloc(D, 2, n);
	parcel_gen g = {D, 0, 1 / sqrt((double)n), seed};
	parcel_cut(&g, 0, 0, 1, 1, n);
}

static void data_free(data *D)
{
	free(D->lo), free(D->hi), free(D->id);
}

/* Query windows covering `sel` of the unit space, or kNN points: uniform,
 * or (near) close to random entries. */
static void gen_queries(data *Q, const data *D, size_t n, double sel, bool near, uint64_t seed)
{
	uint32_t d = D->d;
	double w = sel > 0 ? pow(sel, 1.0 / d) : 0;
	gen(Q, d, n, false, 0, seed);
	for (size_t i = 0; near && i < n; i++) {
		size_t e = rnd(&seed) % D->n;
		for (uint32_t k = 0; k < d; k++)
			Q->lo[i * d + k] = D->lo[e * d + k] + 0.01 * gauss(&seed);
	}
	for (size_t i = 0; i < n * d; i++) {
		Q->lo[i] -= w / 2;
		Q->hi[i] = Q->lo[i] + w;
	}
}
/* ---- the X-tree ------------------------------------------------------------------------ */
/* Hit ids collected by a window query, reused across queries. */
typedef struct idbuf {
	uint64_t *v;
	size_t n, cap;
} idbuf;

typedef struct xt {
	strata_store *st;
	strata_snapshot *snap;
	strata_xt_handle *h; /* the tree opened once on snap: what queries use */
	const data *q;
	size_t next;
	uint32_t k;
	uint64_t sum;  /* hits, or kNN result ids summed */
	double dsum;   /* kNN result distances summed */
	idbuf ids;     /* the last window's hits */
} xt;

static strata_store *store_mem(void)
{
	strata_store *st;
	bench_check(strata_open(NULL, &st), "strata_open");
	return st;
}

static void xt_bulk(strata_store *st, const data *D)
{
	strata_txn *t;
	bench_check(strata_txn_begin(st, &NAME, 1, 0, &t), "begin");
	bench_check(strata_xt_create(t, NAME, D->d, NULL), "strata_xt_create");
	bench_check(strata_xt_bulk_load(t, NAME, D->d, D->n, D->lo, D->hi, D->id), "bulk_load");
	bench_check(strata_txn_commit(t, NULL), "commit");
}

static void xt_inserts(strata_store *st, const data *D)
{
	strata_txn *t;
	bench_check(strata_txn_begin(st, &NAME, 1, 0, &t), "begin");
	bench_check(strata_xt_create(t, NAME, D->d, NULL), "strata_xt_create");
	for (size_t i = 0; i < D->n; i++) {
		BENCH_CHECK(strata_xt_insert(t, NAME, D->d, D->lo + i * D->d, D->hi + i * D->d, D->id[i]),
			    "strata_xt_insert");
		if (i % 1000 == 999) {
			bench_check(strata_txn_commit(t, NULL), "commit");
			bench_check(strata_txn_begin(st, &NAME, 1, 0, &t), "begin");
		}
	}
	bench_check(strata_txn_commit(t, NULL), "commit");
}

/* Opens the snapshot and the query handle on it (and closes both). */
static void xt_snap_open(xt *x)
{
	bench_check(strata_snapshot_open(x->st, &x->snap), "snapshot");
	bench_check(strata_xt_handle_open(x->snap, NAME, &x->h), "strata_xt_handle_open");
}

static void xt_snap_close(xt *x)
{
	strata_xt_handle_close(x->h);
	strata_snapshot_close(x->snap);
	free(x->ids.v);
	x->ids = (idbuf){NULL, 0, 0};
}

static uint64_t run_build(void *arg, uint64_t ops, bool bulk)
{
	const data *D = arg;
	(void)ops;
	strata_store *st = store_mem();
	uint64_t t0 = bench_now_ns();
	if (bulk)
		xt_bulk(st, D);
	else
		xt_inserts(st, D);
	uint64_t t1 = bench_now_ns();
	bench_check(strata_close(st), "strata_close");
	return t1 - t0;
}

static uint64_t run_insert_build(void *arg, uint64_t ops) { return run_build(arg, ops, false); }
static uint64_t run_bulk_build(void *arg, uint64_t ops) { return run_build(arg, ops, true); }

static int count_hit(void *ctx, uint64_t id, const double *lo, const double *hi)
{
	(void)id, (void)lo, (void)hi;
	(*(uint64_t *)ctx)++;
	return 0;
}

static int sum_knn(void *ctx, uint64_t id, double dist, const double *lo, const double *hi)
{
	xt *x = ctx;
	(void)lo, (void)hi;
	x->sum += id;
	x->dsum += dist;
	return 0;
}

/* strata_xt_ids_fn: a block of hit ids appended to the buffer. */
static int collect_ids(void *ctx, const uint64_t *ids, size_t n)
{
	idbuf *b = ctx;
	if (b->n + n > b->cap) {
		b->cap = 2 * (b->n + n);
		b->v = realloc(b->v, b->cap * sizeof *b->v);
		if (!b->v)
			bench_check(STRATA_ENOMEM, "collect_ids");
	}
	memcpy(b->v + b->n, ids, n * sizeof *ids);
	b->n += n;
	return 0;
}

/* Window queries as an engine would run them and as the Boost peer does:
 * the hits' ids collected into a buffer reused across queries, here
 * through the block form (strata_xt_handle_query_ids). */
static uint64_t run_xt_window(void *arg, uint64_t ops)
{
	xt *x = arg;
	uint32_t d = x->q->d;
	uint64_t t0 = bench_now_ns();
	for (uint64_t i = 0; i < ops; i++, x->next = (x->next + 1) % x->q->n) {
		x->ids.n = 0;
		BENCH_CHECK(strata_xt_handle_query_ids(x->h, d, STRATA_XT_INTERSECTS,
						       x->q->lo + x->next * d,
						       x->q->hi + x->next * d, collect_ids, &x->ids),
			    "strata_xt_handle_query_ids");
		x->sum += x->ids.n;
	}
	return bench_now_ns() - t0;
}

/* The per-hit callback form (strata_xt_handle_query), counting only: the
 * `*_hitfn` figures, what runs 1-9 measured as the window figure. */
static uint64_t run_xt_window_hitfn(void *arg, uint64_t ops)
{
	xt *x = arg;
	uint32_t d = x->q->d;
	uint64_t t0 = bench_now_ns();
	for (uint64_t i = 0; i < ops; i++, x->next = (x->next + 1) % x->q->n)
		BENCH_CHECK(strata_xt_handle_query(x->h, d, STRATA_XT_INTERSECTS,
						   x->q->lo + x->next * d, x->q->hi + x->next * d,
						   count_hit, &x->sum),
			    "strata_xt_handle_query");
	return bench_now_ns() - t0;
}

static uint64_t run_xt_knn(void *arg, uint64_t ops)
{
	xt *x = arg;
	uint32_t d = x->q->d;
	uint64_t t0 = bench_now_ns();
	for (uint64_t i = 0; i < ops; i++, x->next = (x->next + 1) % x->q->n)
		BENCH_CHECK(strata_xt_handle_knn(x->h, d, x->q->lo + x->next * d, x->k,
						 STRATA_XT_L2, sum_knn, x),
			    "strata_xt_handle_knn");
	return bench_now_ns() - t0;
}

/* ---- the brute-force scan ------------------------------------------------------------- */
typedef struct scan {
	const data *D;
	const data *q;
	size_t next;
	uint32_t k;
	uint64_t sum;
	double dsum;  /* kNN result distances summed */
	double *best; /* k squared distances, ascending */
	uint64_t *bid;
} scan;

static uint64_t scan_window(const data *D, const double *lo, const double *hi)
{
	uint64_t n = 0;
	uint32_t d = D->d;
	for (size_t i = 0; i < D->n; i++) {
		int ok = 1;
		for (uint32_t k = 0; k < d; k++)
			ok &= (D->lo[i * d + k] <= hi[k]) & (D->hi[i * d + k] >= lo[k]);
		n += (uint64_t)ok;
	}
	return n;
}

/* The k nearest (L2 to the box, ties by id) kept in an insertion-sorted list. */
static uint64_t scan_knn(scan *s, const double *pt)
{
	const data *D = s->D;
	uint32_t d = D->d, k = s->k, m = 0;
	for (size_t i = 0; i < D->n; i++) {
		double acc = 0;
		for (uint32_t j = 0; j < d; j++) {
			double x = pt[j], l = D->lo[i * d + j], h = D->hi[i * d + j];
			double g = x < l ? l - x : (x > h ? x - h : 0.0);
			acc += g * g;
		}
		if (m == k && acc >= s->best[k - 1])
			continue; /* ids ascend with i: an equal distance loses */
		uint32_t p = m < k ? m++ : k - 1;
		while (p > 0 && s->best[p - 1] > acc) {
			s->best[p] = s->best[p - 1], s->bid[p] = s->bid[p - 1];
			p--;
		}
		s->best[p] = acc, s->bid[p] = D->id[i];
	}
	uint64_t sum = 0;
	for (uint32_t j = 0; j < m; j++) {
		sum += s->bid[j];
		s->dsum += sqrt(s->best[j]);
	}
	return sum;
}

static uint64_t run_scan_window(void *arg, uint64_t ops)
{
	scan *s = arg;
	uint32_t d = s->q->d;
	uint64_t t0 = bench_now_ns();
	for (uint64_t i = 0; i < ops; i++, s->next = (s->next + 1) % s->q->n)
		s->sum += scan_window(s->D, s->q->lo + s->next * d, s->q->hi + s->next * d);
	return bench_now_ns() - t0;
}

static uint64_t run_scan_knn(void *arg, uint64_t ops)
{
	scan *s = arg;
	uint32_t d = s->q->d;
	uint64_t t0 = bench_now_ns();
	for (uint64_t i = 0; i < ops; i++, s->next = (s->next + 1) % s->q->n)
		s->sum += scan_knn(s, s->q->lo + s->next * d);
	return bench_now_ns() - t0;
}

/* kNN answers of one pass: result ids and result distances, summed. */
typedef struct knn_ans {
	uint64_t ids;
	double dist;
} knn_ans;

/* ---- peers ------------------------------------------------------------------------------ */
typedef struct peer {
	void *h;
	const data *q;
	size_t next;
	uint32_t k;
	uint64_t sum;
} peer;

#ifdef STRATA_BENCH_HAVE_BOOST
static uint64_t run_boost_window(void *arg, uint64_t ops)
{
	peer *p = arg;
	uint32_t d = p->q->d;
	uint64_t t0 = bench_now_ns();
	for (uint64_t i = 0; i < ops; i++, p->next = (p->next + 1) % p->q->n)
		p->sum += peer_boost_window(p->h, p->q->lo + p->next * d, p->q->hi + p->next * d);
	return bench_now_ns() - t0;
}

static uint64_t run_boost_knn(void *arg, uint64_t ops)
{
	peer *p = arg;
	uint32_t d = p->q->d;
	uint64_t t0 = bench_now_ns();
	for (uint64_t i = 0; i < ops; i++, p->next = (p->next + 1) % p->q->n)
		p->sum += peer_boost_knn(p->h, p->q->lo + p->next * d, p->k);
	return bench_now_ns() - t0;
}

static knn_ans pass_boost_knn(peer *p, size_t nq)
{
	knn_ans a = {0, 0};
	uint32_t d = p->q->d;
	for (size_t i = 0; i < nq; i++) {
		a.ids += peer_boost_knn(p->h, p->q->lo + i * d, p->k);
		a.dist += peer_boost_knn_dist(p->h, p->q->lo + i * d, p->k);
	}
	return a;
}

static uint64_t run_boost_build(void *arg, uint64_t ops, int packed)
{
	const data *D = arg;
	(void)ops;
	uint64_t t0 = bench_now_ns();
	peer_boost *b = peer_boost_build(D->d, D->lo, D->hi, D->id, D->n, packed);
	uint64_t t1 = bench_now_ns();
	if (!b)
		bench_check(-1, "peer_boost_build");
	peer_boost_free(b);
	return t1 - t0;
}

static uint64_t run_boost_insert(void *arg, uint64_t ops) { return run_boost_build(arg, ops, 0); }
static uint64_t run_boost_packed(void *arg, uint64_t ops) { return run_boost_build(arg, ops, 1); }
#endif

#ifdef STRATA_BENCH_HAVE_SIDX
static uint64_t run_sidx_window(void *arg, uint64_t ops)
{
	peer *p = arg;
	uint32_t d = p->q->d;
	uint64_t t0 = bench_now_ns();
	for (uint64_t i = 0; i < ops; i++, p->next = (p->next + 1) % p->q->n)
		p->sum += peer_sidx_window(p->h, p->q->lo + p->next * d, p->q->hi + p->next * d);
	return bench_now_ns() - t0;
}

static uint64_t run_sidx_knn(void *arg, uint64_t ops)
{
	peer *p = arg;
	uint32_t d = p->q->d;
	uint64_t t0 = bench_now_ns(), count;
	for (uint64_t i = 0; i < ops; i++, p->next = (p->next + 1) % p->q->n)
		p->sum += peer_sidx_knn(p->h, p->q->lo + p->next * d, p->k, &count);
	return bench_now_ns() - t0;
}

static uint64_t run_sidx_str(void *arg, uint64_t ops)
{
	const data *D = arg;
	(void)ops;
	uint64_t t0 = bench_now_ns();
	peer_sidx *x = peer_sidx_build_str(D->d, D->lo, D->hi, D->id, D->n);
	uint64_t t1 = bench_now_ns();
	if (!x)
		bench_check(-1, "peer_sidx_build_str");
	peer_sidx_free(x);
	return t1 - t0;
}
#endif

#ifdef STRATA_BENCH_HAVE_SQLITE
static uint64_t run_sqlrt_window(void *arg, uint64_t ops)
{
	peer *p = arg;
	uint32_t d = p->q->d;
	uint64_t t0 = bench_now_ns();
	for (uint64_t i = 0; i < ops; i++, p->next = (p->next + 1) % p->q->n)
		p->sum += peer_sqlrt_window(p->h, p->q->lo + p->next * d, p->q->hi + p->next * d);
	return bench_now_ns() - t0;
}
#endif

/* ---- cross-checks --------------------------------------------------------------------- */
/* One pass of fn over the whole query set; returns the summed results. */
static uint64_t one_pass(bench_fn fn, void *arg, uint64_t *sum, size_t *next, size_t nq)
{
	*sum = 0;
	*next = 0;
	fn(arg, nq);
	uint64_t v = *sum;
	*sum = 0;
	*next = 0;
	return v;
}

static void cross_check(const char *fig, const char *who, uint64_t got, uint64_t want,
			const char *ref, bool superset_ok)
{
	if (got == want || (superset_ok && got >= want))
		return;
	fprintf(stderr, "strata-bench xtree: %s: %s gives %llu, %s %llu\n", fig, who,
		(unsigned long long)got, ref, (unsigned long long)want);
	exit(1);
}

/* kNN answers of one pass: result ids and result distances, summed. Ids
 * are compared where both sides break ties by ascending id (X-tree and the
 * scan); distances otherwise (Boost returns any of the tied entries), to a
 * relative 1e-9 (the systems compute a distance in different orders). */

static knn_ans pass_xt_knn(xt *x, size_t nq)
{
	x->dsum = 0;
	knn_ans a = {one_pass(run_xt_knn, x, &x->sum, &x->next, nq), x->dsum};
	x->dsum = 0;
	return a;
}

static knn_ans pass_scan_knn(scan *sc, size_t nq)
{
	sc->dsum = 0;
	knn_ans a = {one_pass(run_scan_knn, sc, &sc->sum, &sc->next, nq), sc->dsum};
	sc->dsum = 0;
	return a;
}

static void knn_check(const char *fig, const char *who, knn_ans got, knn_ans want,
		      const char *ref, bool by_ids)
{
	if (by_ids)
		cross_check(fig, who, got.ids, want.ids, ref, false);
	if (fabs(got.dist - want.dist) <= 1e-9 * fmax(1.0, fabs(want.dist)))
		return;
	fprintf(stderr, "strata-bench xtree: %s: %s's kNN distances sum to %.17g, %s's to %.17g\n",
		fig, who, got.dist, ref, want.dist);
	exit(1);
}

/* ---- nodes read per window query ------------------------------------------------------ */
typedef struct nboxes {
	uint32_t d;
	size_t n, cap;
	double *lo, *hi;
	bool root_seen;
} nboxes;

static int collect_node(void *ctx, uint32_t level, uint32_t blocks, uint32_t count,
			const double *min, const double *max)
{
	nboxes *b = ctx;
	(void)level, (void)blocks, (void)count;
	if (!b->root_seen) { /* the root is read by every query */
		b->root_seen = true;
		return 0;
	}
	if (b->n == b->cap) {
		b->cap = b->cap ? 2 * b->cap : 1024;
		b->lo = realloc(b->lo, b->cap * b->d * sizeof(double));
		b->hi = realloc(b->hi, b->cap * b->d * sizeof(double));
		if (!b->lo || !b->hi)
			bench_check(STRATA_ENOMEM, "collect_node");
	}
	memcpy(b->lo + b->n * b->d, min, b->d * sizeof(double));
	memcpy(b->hi + b->n * b->d, max, b->d * sizeof(double));
	b->n++;
	return 0;
}

/* Mean nodes an intersects query reads over the query set: the root, and
 * every other node whose box meets the window. */
static double window_nodes(const strata_snapshot *snap, const data *Q)
{
	nboxes b = {.d = Q->d};
	bench_check(strata_xt_nodes(snap, NAME, collect_node, &b), "strata_xt_nodes");
	data N = {b.d, b.n, b.lo, b.hi, NULL};
	double total = 0;
	for (size_t i = 0; i < Q->n; i++)
		total += 1 + (double)scan_window(&N, Q->lo + i * Q->d, Q->hi + i * Q->d);
	free(b.lo), free(b.hi);
	return total / (double)Q->n;
}

/* Nodes read per kNN(10): the cursor counts them. */
static void knn_nodes(bench_session *s, const strata_xt_handle *h, const data *D,
		      const char *name)
{
	if (!bench_wants(s, name))
		return;
	data Q;
	gen_queries(&Q, D, 200, 0, false, 99);
	double v[1] = {0};
	for (size_t i = 0; i < Q.n; i++) {
		strata_xt_cursor *c;
		bench_check(strata_xt_handle_cursor(h, D->d, Q.lo + i * D->d, STRATA_XT_L2, &c),
			    "cursor_open");
		for (int j = 0; j < 10; j++)
			bench_check(strata_xt_cursor_next(c, NULL, NULL, NULL, NULL), "cursor_next");
		v[0] += (double)strata_xt_cursor_nodes(c);
		strata_xt_cursor_close(c);
	}
	v[0] /= (double)Q.n;
	bench_record(s, name, "nodes", NULL, v, 1);
	data_free(&Q);
}

/* ---- 2-D and 3-D box sets ------------------------------------------------------------ */
typedef enum kind { UNIFORM, PARCEL } kind;

typedef struct set {
	const char *tag; /* figure-name prefix */
	uint32_t d;
	size_t n;
	kind kind;
	double side;     /* uniform boxes: sides up to this */
	bool base;       /* the full peer set: libspatialindex insert-built and SQLite
			    queried, the scan timed, DURABLE */
	uint64_t seed;
} set;

typedef struct sys {
	const set *c;
	xt x;
	scan sc;
	peer boost, sidx, sqlrt, sidx_str;
	bool have_boost, have_sidx, have_sqlrt, have_sidx_str;
	bool ref_boost;  /* cross-check against Boost (1M), not the scan */
	double hits[4];  /* per window, by selectivity */
} sys;

static void set_queries(sys *y, const data *Q, uint32_t k)
{
	y->x.q = y->sc.q = y->boost.q = y->sidx.q = y->sqlrt.q = y->sidx_str.q = Q;
	y->x.k = y->sc.k = y->boost.k = y->sidx.k = k;
}

/* The reference hit count of one pass of windows over the query set. */
static uint64_t reference(sys *y, size_t nq, const char **who)
{
#ifdef STRATA_BENCH_HAVE_BOOST
	if (y->ref_boost) {
		*who = "boost";
		return one_pass(run_boost_window, &y->boost, &y->boost.sum, &y->boost.next, nq);
	}
#endif
	*who = "the scan";
	return one_pass(run_scan_window, &y->sc, &y->sc.sum, &y->sc.next, nq);
}

static void window_figs(bench_session *s, sys *y, const data *D, int si, double sel)
{
	const set *c = y->c;
	char name[BENCH_NAME_MAX], pname[BENCH_NAME_MAX + 16];
	snprintf(name, sizeof name, "%s_window_%g%%", c->tag, sel * 100);
	if (!bench_wants(s, name))
		return;
	data Q;
	gen_queries(&Q, D, s->opts.quick ? 200 : 1000, sel, false, c->seed + 10 + (uint64_t)si);
	uint64_t ops = Q.n;
	set_queries(y, &Q, 0);
	const char *ref;
	uint64_t want = reference(y, Q.n, &ref);
	y->hits[si] = (double)want / (double)Q.n;
	cross_check(name, "xtree", one_pass(run_xt_window, &y->x, &y->x.sum, &y->x.next, Q.n), want,
		    ref, false);
#ifdef STRATA_BENCH_HAVE_BOOST
	if (y->have_boost) { /* the target's ratio: both figures of the same moments */
		char bname[BENCH_NAME_MAX + 16];
		snprintf(bname, sizeof bname, "%s_boost", name);
		cross_check(bname, "boost", one_pass(run_boost_window, &y->boost, &y->boost.sum,
						     &y->boost.next, Q.n), want, ref, false);
		bench_measure_pair(s, name, NULL, run_xt_window, &y->x, bname, "boost",
				   run_boost_window, &y->boost, ops);
		if (sel == 0.0001)
			bench_add_ratio(s, name, bname);
	} else
#endif
		bench_measure(s, name, NULL, run_xt_window, &y->x, ops);
	snprintf(pname, sizeof pname, "%s_hitfn", name);
	if (c->base && bench_wants(s, pname)) {
		cross_check(pname, "xtree (per hit)", one_pass(run_xt_window_hitfn, &y->x, &y->x.sum,
							       &y->x.next, Q.n), want, ref, false);
		bench_measure(s, pname, NULL, run_xt_window_hitfn, &y->x, ops);
	}
	snprintf(pname, sizeof pname, "%s_nodes", name);
	if ((c->base || sel == 0.0001 || sel == 0.01) && bench_wants(s, pname)) {
		double v = window_nodes(y->x.snap, &Q);
		bench_record(s, pname, "nodes", NULL, &v, 1);
	}
	snprintf(pname, sizeof pname, "%s_scan", name);
	if (c->base && sel == 0.0001)
		bench_measure(s, pname, "scan", run_scan_window, &y->sc, ops);
#ifdef STRATA_BENCH_HAVE_SIDX
	if (y->have_sidx) {
		snprintf(pname, sizeof pname, "%s_sidx", name);
		cross_check(pname, "libspatialindex", one_pass(run_sidx_window, &y->sidx,
				&y->sidx.sum, &y->sidx.next, Q.n), want, ref, false);
		bench_measure(s, pname, "libspatialindex", run_sidx_window, &y->sidx, ops);
	}
	if (y->have_sidx_str && sel == 0.0001) /* the STR tree: checked, not timed */
		cross_check(name, "libspatialindex (STR)",
			    one_pass(run_sidx_window, &y->sidx_str, &y->sidx_str.sum,
				     &y->sidx_str.next, Q.n), want, ref, false);
#endif
#ifdef STRATA_BENCH_HAVE_SQLITE
	if (y->have_sqlrt) {
		snprintf(pname, sizeof pname, "%s_sqlite", name);
		cross_check(pname, "sqlite", one_pass(run_sqlrt_window, &y->sqlrt, &y->sqlrt.sum,
				&y->sqlrt.next, Q.n), want, ref, true);
		bench_measure(s, pname, "sqlite", run_sqlrt_window, &y->sqlrt, ops);
	}
#endif
	data_free(&Q);
}

static void knn_figs(bench_session *s, sys *y, const data *D, uint32_t k)
{
	const set *c = y->c;
	char name[BENCH_NAME_MAX], pname[BENCH_NAME_MAX + 16];
	snprintf(name, sizeof name, "%s_knn%u", c->tag, k);
	if (!bench_wants(s, name))
		return;
	data Q;
	gen_queries(&Q, D, s->opts.quick ? 200 : 1000, 0, false, c->seed + 20 + k);
	set_queries(y, &Q, k);
	const char *ref = "the scan";
	knn_ans want;
#ifdef STRATA_BENCH_HAVE_BOOST
	if (y->ref_boost)
		ref = "boost", want = pass_boost_knn(&y->boost, Q.n);
	else
#endif
		want = pass_scan_knn(&y->sc, Q.n);
	knn_check(name, "xtree", pass_xt_knn(&y->x, Q.n), want, ref, !y->ref_boost);
#ifdef STRATA_BENCH_HAVE_BOOST
	if (y->have_boost) { /* both figures of the same moments (bench_measure_pair) */
		char bname[BENCH_NAME_MAX + 16];
		snprintf(bname, sizeof bname, "%s_boost", name);
		if (!y->ref_boost)
			knn_check(bname, "boost", pass_boost_knn(&y->boost, Q.n), want, ref, false);
		bench_measure_pair(s, name, NULL, run_xt_knn, &y->x, bname, "boost", run_boost_knn,
				   &y->boost, Q.n);
		if (k == 10 && c->base)
			bench_add_ratio(s, name, bname);
	} else
#endif
		bench_measure(s, name, NULL, run_xt_knn, &y->x, Q.n);
	snprintf(pname, sizeof pname, "%s_scan", name);
	if (c->base && k == 10)
		bench_measure(s, pname, "scan", run_scan_knn, &y->sc, s->opts.quick ? 50 : 200);
#ifdef STRATA_BENCH_HAVE_SIDX
	if (y->have_sidx) { /* it may return ties beyond k: ids are summed over k only */
		snprintf(pname, sizeof pname, "%s_sidx", name);
		bench_measure(s, pname, "libspatialindex", run_sidx_knn, &y->sidx, Q.n / 4);
	}
#endif
	data_free(&Q);
}

static void build_figs(bench_session *s, const set *c, const data *D)
{
	char name[BENCH_NAME_MAX], pname[BENCH_NAME_MAX + 16];
	uint64_t n = D->n;
	int runs = s->opts.runs;
	if (n > 200000 && runs > 3)
		s->opts.runs = 3; /* a 1M insert build takes seconds per batch */
	snprintf(name, sizeof name, "%s_insert_build", c->tag);
	if (bench_wants(s, name))
		bench_measure(s, name, NULL, run_insert_build, (void *)D, n);
#ifdef STRATA_BENCH_HAVE_BOOST
	snprintf(pname, sizeof pname, "%s_boost", name);
	if (bench_wants(s, pname)) {
		bench_measure(s, pname, "boost", run_boost_insert, (void *)D, n);
		if (c->base)
			bench_add_ratio(s, name, pname);
	}
#endif
	snprintf(name, sizeof name, "%s_bulk_build", c->tag);
	if (bench_wants(s, name)) {
		const bench_fig *f = bench_measure(s, name, NULL, run_bulk_build, (void *)D, n);
		bench_note(s, "%s: %.1f ms for %llu entries (median)", name, f->median * (double)n / 1e6,
			   (unsigned long long)n);
	}
#ifdef STRATA_BENCH_HAVE_BOOST
	snprintf(pname, sizeof pname, "%s_boost", name);
	if (bench_wants(s, pname)) {
		bench_measure(s, pname, "boost", run_boost_packed, (void *)D, n);
		if (c->base)
			bench_add_ratio(s, name, pname);
	}
#endif
#ifdef STRATA_BENCH_HAVE_SIDX
	snprintf(pname, sizeof pname, "%s_sidx", name);
	if (bench_wants(s, pname)) {
		bench_measure(s, pname, "libspatialindex", run_sidx_str, (void *)D, n);
		if (c->base)
			bench_add_ratio(s, name, pname);
	}
#endif
	s->opts.runs = runs;
}

/* DURABLE against IN_MEMORY: the same STR-loaded tree in both stores,
 * queried in one paired measurement (bench_overhead: slices alternating
 * mem, durable, durable, mem, ... in every run, at least 9 runs), so drift
 * and neighbours on the shared host hit both sides alike and the ratio is
 * of the same moments. Each side's warm-up pass reads every node its
 * queries need (DURABLE loads node images on first use): steady state. */
static void str_pair(bench_session *s, xt *mem, xt *dur, const char *fig, bench_fn fn, size_t nq)
{
	char a[BENCH_NAME_MAX], b[BENCH_NAME_MAX], pct[BENCH_NAME_MAX];
	snprintf(a, sizeof a, "%s_mem", fig);
	snprintf(b, sizeof b, "%s_durable", fig);
	snprintf(pct, sizeof pct, "%s_durable_extra", fig);
	if (!bench_wants(s, pct))
		return;
	bench_overhead(s, pct, a, fn, mem, b, fn, dur, nq);
	bench_add_ratio(s, b, a);
}

static void str_figs(bench_session *s, strata_store *mem_st, strata_store *dur_st, const data *D)
{
	xt mem = {.st = mem_st}, dur = {.st = dur_st};
	xt_snap_open(&mem);
	xt_snap_open(&dur);
	data Q;
	gen_queries(&Q, D, s->opts.quick ? 200 : 1000, 0.0001, false, 5);
	mem.q = dur.q = &Q;
	str_pair(s, &mem, &dur, "2d_window_0.01%_str", run_xt_window, Q.n);
	for (size_t i = 0; i < Q.n * 2; i++) /* kNN at the windows' corners */
		Q.hi[i] = Q.lo[i];
	mem.k = dur.k = 10;
	str_pair(s, &mem, &dur, "2d_knn10_str", run_xt_knn, Q.n);
	/* Both sides ran the same queries as often: the same answers. */
	cross_check("2d_*_str", "DURABLE", dur.sum, mem.sum, "IN_MEMORY", false);
	if (dur.dsum != mem.dsum)
		cross_check("2d_knn10_str distances", "DURABLE", 1, 0, "IN_MEMORY", false);
	data_free(&Q);
	xt_snap_close(&dur);
	xt_snap_close(&mem);
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(path);
}

static void durable_figs(bench_session *s, const data *D)
{
	const char *tmp = getenv("TMPDIR");
	char dir[512];
	snprintf(dir, sizeof dir, "%s/strata-bench-xt-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		bench_note(s, "durable figures skipped: mkdtemp: %s", strerror(errno));
		return;
	}
	strata_store *mem = store_mem();
	xt_bulk(mem, D);
	strata_options o;
	strata_options_init(&o);
	o.mode = STRATA_DURABLE;
	o.path = dir;
	o.flags = STRATA_OPEN_CREATE;
	strata_store *st;
	bench_check(strata_open(&o, &st), "strata_open DURABLE");
	xt_bulk(st, D);
	bench_check(strata_close(st), "close");
	/* Reopened: queries read the tree as recovery left it. */
	bench_check(strata_open(&o, &st), "strata_open DURABLE (reopen)");
	str_figs(s, mem, st, D);
	bench_check(strata_close(st), "close");
	bench_check(strata_close(mem), "close");
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* The query trees of the peers (the timed builds are in build_figs). */
static void peers_build(bench_session *s, sys *y, const data *D)
{
	const set *c = y->c;
#ifdef STRATA_BENCH_HAVE_BOOST
	y->boost.h = peer_boost_build(D->d, D->lo, D->hi, D->id, D->n, 0);
	y->have_boost = y->boost.h != NULL;
	y->ref_boost = y->have_boost && D->n > 200000;
#endif
#ifdef STRATA_BENCH_HAVE_SIDX
	char name[BENCH_NAME_MAX];
	snprintf(name, sizeof name, "%s_insert_build_sidx", c->tag);
	if (c->base && bench_wants(s, name)) {
		uint64_t t0 = bench_now_ns();
		y->sidx.h = peer_sidx_build(D->d, D->lo, D->hi, D->id, D->n);
		double v = (double)(bench_now_ns() - t0) / (double)D->n;
		y->have_sidx = y->sidx.h != NULL;
		if (y->have_sidx)
			bench_record(s, name, "ns/op", "libspatialindex", &v, 1);
	}
	y->sidx_str.h = peer_sidx_build_str(D->d, D->lo, D->hi, D->id, D->n);
	y->have_sidx_str = y->sidx_str.h != NULL;
#endif
#ifdef STRATA_BENCH_HAVE_SQLITE
	if (c->base) {
		y->sqlrt.h = peer_sqlrt_build(D->d, D->lo, D->hi, D->id, D->n);
		y->have_sqlrt = y->sqlrt.h != NULL;
	}
#endif
	(void)s, (void)c;
}

static void peers_free(sys *y)
{
#ifdef STRATA_BENCH_HAVE_BOOST
	if (y->have_boost)
		peer_boost_free(y->boost.h);
#endif
#ifdef STRATA_BENCH_HAVE_SIDX
	if (y->have_sidx)
		peer_sidx_free(y->sidx.h);
	if (y->have_sidx_str)
		peer_sidx_free(y->sidx_str.h);
#endif
#ifdef STRATA_BENCH_HAVE_SQLITE
	if (y->have_sqlrt)
		peer_sqlrt_free(y->sqlrt.h);
#endif
	(void)y;
}

/* Does the figure name start with "tag_"? */
static size_t tag_of(const char *fig, const char *tag)
{
	size_t len = strlen(tag);
	return strncmp(fig, tag, len) == 0 && fig[len] == '_' ? len : 0;
}

/* Does `--only` leave anything of set c to run (its data and trees take
 * seconds to build at 1M)? The figure's set is the longest tag it starts
 * with ("2d_1m_knn10" is 2d_1m's, not 2d's). */
static bool set_wanted(const bench_session *s, const set *sets, size_t nsets, const set *c)
{
	if (!s->opts.only || s->opts.list)
		return true;
	const set *best = NULL;
	size_t best_len = 0;
	for (size_t i = 0; i < nsets; i++) {
		size_t len = tag_of(s->opts.only, sets[i].tag);
		if (len > best_len)
			best = &sets[i], best_len = len;
	}
	return best == c;
}

static void suite_set(bench_session *s, const set *sets, size_t nsets, const set *c)
{
	if (!set_wanted(s, sets, nsets, c))
		return;
	data D;
	size_t n = s->opts.list ? 2000 : c->n; /* --list: names only, no 1M build */
	if (c->kind == PARCEL)
		gen_parcels(&D, n, c->seed);
	else
		gen(&D, c->d, n, false, c->side, c->seed);
	build_figs(s, c, &D);
	sys y = {.c = c};
	y.x.st = store_mem();
	xt_inserts(y.x.st, &D);
	xt_snap_open(&y.x);
	y.sc.D = &D;
	y.sc.best = bench_xmalloc(100 * sizeof(double));
	y.sc.bid = bench_xmalloc(100 * sizeof(uint64_t));
	peers_build(s, &y, &D);
	const double sels[] = {0.00001, 0.0001, 0.001, 0.01};
	for (int i = 0; i < 4; i++)
		window_figs(s, &y, &D, i, sels[i]);
	if (!s->opts.list && y.hits[1] > 0)
		bench_note(s, "%s: %zu entries; hits per window 0.001/0.01/0.1/1 %%: %.1f, %.1f, %.1f, "
			      "%.1f (%s)", c->tag, D.n, y.hits[0], y.hits[1], y.hits[2], y.hits[3],
			   y.ref_boost ? "Boost" : "scan");
	const uint32_t ks[] = {1, 10, 100};
	for (int i = 0; i < 3; i++)
		knn_figs(s, &y, &D, ks[i]);
	char name[BENCH_NAME_MAX];
	snprintf(name, sizeof name, "%s_knn10_nodes", c->tag);
	knn_nodes(s, y.x.h, &D, name);
	peers_free(&y);
	xt_snap_close(&y.x);
	bench_check(strata_close(y.x.st), "close");
	free(y.sc.best), free(y.sc.bid);
	if (c->base)
		durable_figs(s, &D);
	data_free(&D);
}

/* ---- high dimensions ------------------------------------------------------------------- */
/* libspatialindex (STR-loaded R-tree) kNN(10) at 16 and 32 D: the issue's
 * anchor (75 ms per query at 16-D). A query takes tens of milliseconds,
 * so only the first nq queries, answers checked against the scan's ids. */
static void sidx_hd(bench_session *s, const char *name, const data *D, const data *Q, scan *sc)
{
#ifdef STRATA_BENCH_HAVE_SIDX
	char pname[BENCH_NAME_MAX];
	snprintf(pname, sizeof pname, "%s_sidx", name);
	if (D->d < 16 || !bench_wants(s, pname))
		return;
	size_t nq = s->opts.quick ? 5 : 20;
	peer p = {.h = peer_sidx_build_str(D->d, D->lo, D->hi, D->id, D->n), .q = Q, .k = 10};
	if (!p.h) {
		bench_note(s, "%s: libspatialindex STR load failed", pname);
		return;
	}
	uint64_t want = one_pass(run_scan_knn, sc, &sc->sum, &sc->next, nq);
	cross_check(pname, "libspatialindex", one_pass(run_sidx_knn, &p, &p.sum, &p.next, nq), want,
		    "the scan", false);
	const bench_fig *f = bench_measure(s, pname, "libspatialindex", run_sidx_knn, &p, nq);
	const bench_fig *x = bench_find(s, name);
	if (f && x && f->median > 0) /* a note: bench.h's 16 ratios are taken */
		bench_note(s, "%s / %s = %.4f", name, pname, x->median / f->median);
	peer_sidx_free(p.h);
#else
	(void)s, (void)name, (void)D, (void)Q, (void)sc;
#endif
}

/* Windows at 8-32 D: cubes of 0.01 % and 1 % of the unit volume, centred
 * near random entries (uniform windows would mostly miss clustered data),
 * X-tree (ids collected, as in 2-D) against the scan and libspatialindex
 * (STR-loaded) on the same windows, every count cross-checked against the
 * scan's. bench.h's 16 ratios are taken: the ratios go into one note per
 * data set. */
static void hd_windows(bench_session *s, const char *tag, const data *D, xt *x, peer *sidx)
{
	const double sels[] = {0.0001, 0.01};
	char note[BENCH_NOTE_MAX] = "";
	for (int i = 0; i < 2; i++) {
		char name[BENCH_NAME_MAX], sname[BENCH_NAME_MAX + 8], iname[BENCH_NAME_MAX + 8];
		snprintf(name, sizeof name, "%s_window_%g%%", tag, sels[i] * 100);
		snprintf(sname, sizeof sname, "%s_scan", name);
		snprintf(iname, sizeof iname, "%s_sidx", name);
		if (!bench_wants(s, name))
			continue;
		data Q;
		gen_queries(&Q, D, s->opts.quick ? 50 : 200, sels[i], true, 300 + D->d + (uint64_t)i);
		scan sc = {.D = D, .q = &Q};
		x->q = &Q;
		uint64_t want = one_pass(run_scan_window, &sc, &sc.sum, &sc.next, Q.n);
		cross_check(name, "xtree", one_pass(run_xt_window, x, &x->sum, &x->next, Q.n), want,
			    "the scan", false);
		const bench_fig *fx = bench_measure(s, name, NULL, run_xt_window, x, Q.n);
		const bench_fig *fs = bench_measure(s, sname, "scan", run_scan_window, &sc, Q.n / 4);
		const bench_fig *fi = NULL;
#ifdef STRATA_BENCH_HAVE_SIDX
		size_t nq = s->opts.quick ? 5 : 20; /* milliseconds per query at 16-32 D */
		if (sidx->h && bench_wants(s, iname)) {
			uint64_t w = one_pass(run_scan_window, &sc, &sc.sum, &sc.next, nq);
			sidx->q = &Q;
			cross_check(iname, "libspatialindex", one_pass(run_sidx_window, sidx, &sidx->sum,
								      &sidx->next, nq), w, "the scan", false);
			fi = bench_measure(s, iname, "libspatialindex", run_sidx_window, sidx, nq);
		}
#else
		(void)sidx, (void)iname;
#endif
		size_t len = strlen(note);
		len += (size_t)snprintf(note + len, sizeof note - len, "%s%g %%: %.1f hits, X-tree / "
					"scan %.3f", len ? "; " : "", sels[i] * 100,
					(double)want / (double)Q.n,
					fx && fs ? fx->median / fs->median : NAN);
		if (fx && fi && len < sizeof note)
			snprintf(note + len, sizeof note - len, ", / libspatialindex %.3f",
				 fx->median / fi->median);
		data_free(&Q);
	}
	if (note[0])
		bench_note(s, "%s windows %s", tag, note);
}

static void suite_hd(bench_session *s, uint32_t d, bool clustered, size_t n)
{
	char tag[20], name[40], sname[BENCH_NAME_MAX];
	snprintf(tag, sizeof tag, "%ud_%s", d, clustered ? "clustered" : "uniform");
	snprintf(name, sizeof name, "%s_knn10", tag);
	snprintf(sname, sizeof sname, "%s_scan", name);
	char w1[BENCH_NAME_MAX], w2[BENCH_NAME_MAX];
	snprintf(w1, sizeof w1, "%s_window_0.01%%", tag);
	snprintf(w2, sizeof w2, "%s_window_1%%", tag);
	bool want_knn = bench_wants(s, name);
	bool want_win = bench_wants(s, w1) | bench_wants(s, w2);
	if (!want_knn && !want_win)
		return;
	data D, Q;
	gen(&D, d, n, clustered, 0, 100 + d);
	gen_queries(&Q, &D, s->opts.quick ? 50 : 200, 0, clustered, 200 + d);
	xt x = {.st = store_mem(), .q = &Q, .k = 10};
	xt_bulk(x.st, &D);
	xt_snap_open(&x);
	scan sc = {.D = &D, .q = &Q, .k = 10, .best = bench_xmalloc(10 * sizeof(double)),
		   .bid = bench_xmalloc(10 * sizeof(uint64_t))};
	if (want_knn) {
		knn_check(name, "xtree", pass_xt_knn(&x, Q.n), pass_scan_knn(&sc, Q.n), "the scan",
			  true);
		bench_measure(s, name, NULL, run_xt_knn, &x, Q.n);
		bench_measure(s, sname, "scan", run_scan_knn, &sc, Q.n / 2);
		bench_add_ratio(s, name, sname);
		sidx_hd(s, name, &D, &Q, &sc);
		snprintf(name, sizeof name, "%s_knn10_nodes", tag);
		knn_nodes(s, x.h, &D, name);
	}
	if (want_win && !s->opts.list) {
		peer p = {0};
#ifdef STRATA_BENCH_HAVE_SIDX
		p.h = peer_sidx_build_str(D.d, D.lo, D.hi, D.id, D.n);
		if (!p.h)
			bench_note(s, "%s: libspatialindex STR load failed", tag);
#endif
		hd_windows(s, tag, &D, &x, &p);
#ifdef STRATA_BENCH_HAVE_SIDX
		if (p.h)
			peer_sidx_free(p.h);
#endif
	}
	xt_snap_close(&x);
	bench_check(strata_close(x.st), "close");
	free(sc.best), free(sc.bid);
	data_free(&D), data_free(&Q);
}

int bench_xtree(bench_session *s)
{
	size_t n = s->opts.quick ? 20000 : 100000;
	const set sets[] = {
		{"2d", 2, n, UNIFORM, 0.001, true, 1},
		{"2d_parcel", 2, n, PARCEL, 0, false, 300},
		{"3d", 3, n, UNIFORM, 0.01, false, 400},
		{"2d_1m", 2, s->opts.quick ? 40000 : 1000000, UNIFORM, 0.001, false, 500},
	};
	for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++)
		suite_set(s, sets, sizeof sets / sizeof sets[0], &sets[i]);
	const uint32_t dims[] = {8, 16, 32};
	for (int i = 0; i < 3; i++) {
		suite_hd(s, dims[i], false, n);
		suite_hd(s, dims[i], true, n);
	}
#ifndef STRATA_BENCH_HAVE_BOOST
	bench_note(s, "Boost.Geometry peer skipped: boost/geometry.hpp not found at build time");
#endif
#ifndef STRATA_BENCH_HAVE_SIDX
	bench_note(s, "libspatialindex peer skipped: not found at build time");
#endif
	bench_note(s, "peers: boost rstar<16> insert-built (and packed for *_bulk_build_boost); "
		      "libspatialindex R* insert-built (queries, 2d) and STR (*_bulk_build_sidx: "
		      "capacity 100, fill 0.7); SQLite R*Tree windows (float32, superset allowed)");
	if (s->opts.runs > 3 && !s->opts.quick)
		bench_note(s, "2d_1m builds: 3 timed runs each (seconds per batch)");
	return 0;
}
