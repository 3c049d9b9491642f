/*
 * test_xtree.c — the X-tree against a brute-force oracle: random workloads
 * of inserts, deletes, moves and every query kind (window intersects /
 * contains / within, kNN in L2, L1, L∞ with ties on an integer grid) in 1,
 * 2, 3, 8, 16 and 32 dimensions, uniform and clustered, IN_MEMORY and
 * DURABLE (with close + reopen, and strata_make_durable live), the
 * invariant checker after every batch; snapshot queries while a writer
 * runs; STR bulk load; supernodes; bad input leaving the tree untouched.
 *
 * XT_LONG=1 in the environment multiplies the workloads by 10.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <float.h>
#include <ftw.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "durable.h"
#include "io_sim.h"
#include "strata/xtree.h"
#include "support/model.h"

TestSuite(xtree, .fini = test_leak_check);
TestSuite(xtree_diff, .fini = test_leak_check, .timeout = 600);

#define MAXD STRATA_XT_DIMS_MAX

/* ---- the oracle ----------------------------------------------------------------- */
typedef struct ment {
	uint64_t id;
	double lo[MAXD], hi[MAXD];
} ment;

typedef struct model {
	uint32_t d;
	ment *e;
	size_t n, cap;
} model;

static void model_add(model *m, uint64_t id, const double *lo, const double *hi)
{
	if (m->n == m->cap) {
		m->cap = m->cap ? 2 * m->cap : 256;
		m->e = realloc(m->e, m->cap * sizeof *m->e);
		cr_assert_not_null(m->e);
	}
	ment *e = &m->e[m->n++];
	e->id = id;
	memcpy(e->lo, lo, m->d * sizeof(double));
	memcpy(e->hi, hi, m->d * sizeof(double));
}

static void model_del(model *m, size_t i)
{
	m->e[i] = m->e[--m->n];
}

static bool pred_ok(const model *m, const ment *e, strata_xt_pred p, const double *lo,
		    const double *hi)
{
	for (uint32_t k = 0; k < m->d; k++) {
		bool ok = p == STRATA_XT_INTERSECTS ? e->lo[k] <= hi[k] && e->hi[k] >= lo[k]
			  : p == STRATA_XT_CONTAINS ? e->lo[k] <= lo[k] && e->hi[k] >= hi[k]
						    : e->lo[k] >= lo[k] && e->hi[k] <= hi[k];
		if (!ok)
			return false;
	}
	return true;
}

/* The same formula as the library's: per-dimension gap, summed in order. */
static double dist_of(uint32_t d, const double *pt, const ment *e, strata_xt_metric mt)
{
	double acc = 0;
	for (uint32_t k = 0; k < d; k++) {
		double x = pt[k], g = x < e->lo[k] ? e->lo[k] - x : x > e->hi[k] ? x - e->hi[k] : 0.0;
		if (mt == STRATA_XT_L2)
			acc += g * g;
		else if (mt == STRATA_XT_L1)
			acc += g;
		else
			acc = g > acc ? g : acc;
	}
	return mt == STRATA_XT_L2 ? sqrt(acc) : acc;
}

typedef struct hit {
	double dist;
	uint64_t id;
} hit;

static int cmp_hit(const void *a, const void *b)
{
	const hit *x = a, *y = b;
	if (x->dist != y->dist)
		return x->dist < y->dist ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* ---- collecting results ----------------------------------------------------------- */
typedef struct ids {
	uint64_t *v;
	size_t n, cap;
	hit *h;
	uint32_t d;
} ids;

static void ids_push(ids *s, uint64_t id, double dist)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 256;
		s->v = realloc(s->v, s->cap * sizeof *s->v);
		s->h = realloc(s->h, s->cap * sizeof *s->h);
	}
	s->h[s->n] = (hit){dist, id};
	s->v[s->n++] = id;
}

static void ids_free(ids *s)
{
	free(s->v);
	free(s->h);
}

static int on_hit(void *ctx, uint64_t id, const double *lo, const double *hi)
{
	(void)lo, (void)hi;
	ids_push(ctx, id, 0);
	return 0;
}

/* strata_xt_ids_fn: every block holds 1..64 ids. */
static int on_ids(void *ctx, const uint64_t *v, size_t n)
{
	cr_assert(n >= 1 && n <= 64, "a block of %zu ids", n);
	for (size_t i = 0; i < n; i++)
		ids_push(ctx, v[i], 0);
	return 0;
}

static int on_knn(void *ctx, uint64_t id, double dist, const double *lo, const double *hi)
{
	(void)lo, (void)hi;
	ids_push(ctx, id, dist);
	return 0;
}

/* ---- workload data ------------------------------------------------------------------- */
typedef struct gen {
	test_rng r;
	uint32_t d;
	bool clustered, grid, boxes;
	double centers[8][MAXD];
} gen;

static double unit(test_rng *r)
{
	return (double)(rng_next(r) >> 11) / 9007199254740992.0;
}

static double gauss(test_rng *r)
{
	double u = unit(r) + 1e-12, v = unit(r);
	return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

static void gen_init(gen *g, uint32_t d, uint64_t seed, bool clustered, bool grid)
{
	memset(g, 0, sizeof *g);
	g->r.s = seed;
	g->d = d;
	g->clustered = clustered;
	g->grid = grid;
	g->boxes = d <= 3;
	for (int c = 0; c < 8; c++)
		for (uint32_t k = 0; k < d; k++)
			g->centers[c][k] = unit(&g->r);
}

/* A random box (a point in high dimensions or on the grid). */
static void gen_box(gen *g, double *lo, double *hi)
{
	int c = (int)rng_below(&g->r, 8);
	for (uint32_t k = 0; k < g->d; k++) {
		double x;
		if (g->grid)
			x = (double)rng_below(&g->r, 8); /* many equal distances: ties */
		else if (g->clustered)
			x = g->centers[c][k] + 0.02 * gauss(&g->r);
		else
			x = unit(&g->r);
		lo[k] = x;
		hi[k] = x;
		if (g->boxes && rng_below(&g->r, 3))
			hi[k] = x + (g->grid ? (double)rng_below(&g->r, 3) : 0.05 * unit(&g->r));
	}
}

/* ---- store helpers ---------------------------------------------------------------- */
static strata_txn *begin(strata_store *s, const char *name)
{
	strata_txn *t;
	int rc = strata_txn_begin(s, &name, 1, 0, &t);
	cr_assert_eq(rc, 0, "begin: %s", strata_strerror(rc));
	return t;
}

static void commit(strata_txn *t)
{
	int rc = strata_txn_commit(t, NULL);
	cr_assert_eq(rc, 0, "commit: %s", strata_strerror(rc));
}

static void create(strata_store *s, const char *name, uint32_t d, const strata_xt_options *o)
{
	strata_txn *t = begin(s, name);
	int rc = strata_xt_create(t, name, d, o);
	cr_assert_eq(rc, 0, "create: %s", strata_strerror(rc));
	commit(t);
}

static void check_tree(strata_store *s, const char *name, uint64_t count)
{
	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	int rc = strata_xt_check(snap, name, test_report, NULL);
	cr_assert_eq(rc, 0, "strata_xt_check: %s", strata_strerror(rc));
	uint64_t n;
	cr_assert_eq(strata_xt_count(snap, name, &n), 0);
	cr_assert_eq(n, count, "count %llu, model %llu", (unsigned long long)n,
		     (unsigned long long)count);
	strata_snapshot_close(snap);
}

/* Every query kind against the model; through the query handle h when
 * it is not NULL, else by name. */
static void compare_window(const strata_snapshot *snap, const strata_xt_handle *h,
			   const char *name, const model *m, gen *g)
{
	double lo[MAXD], hi[MAXD];
	gen_box(g, lo, hi);
	if (!g->grid && !g->clustered)
		for (uint32_t k = 0; k < m->d; k++) { /* windows of varying size */
			double w = unit(&g->r) * (m->d > 3 ? 0.6 : 0.3);
			lo[k] -= w, hi[k] += w;
		}
	for (int p = 0; p < 3; p++) {
		ids got = {0}, want = {0};
		int rc = h ? strata_xt_handle_query(h, m->d, (strata_xt_pred)p, lo, hi, on_hit, &got)
			   : strata_xt_query(snap, name, m->d, (strata_xt_pred)p, lo, hi, on_hit, &got);
		cr_assert_eq(rc, 0, "query: %s", strata_strerror(rc));
		for (size_t i = 0; i < m->n; i++)
			if (pred_ok(m, &m->e[i], (strata_xt_pred)p, lo, hi))
				ids_push(&want, m->e[i].id, 0);
		cr_assert_eq(got.n, want.n, "pred %d: %zu hits, oracle %zu (d=%u)", p, got.n, want.n,
			     m->d);
		if (got.n) {
			qsort(got.v, got.n, sizeof *got.v, cmp_u64);
			qsort(want.v, want.n, sizeof *want.v, cmp_u64);
			cr_assert_arr_eq(got.v, want.v, got.n * sizeof *got.v, "pred %d ids differ", p);
		}
		if (h) { /* the block form: the same ids as the per-hit form and the oracle */
			ids blk = {0};
			rc = strata_xt_handle_query_ids(h, m->d, (strata_xt_pred)p, lo, hi, on_ids, &blk);
			cr_assert_eq(rc, 0, "query_ids: %s", strata_strerror(rc));
			cr_assert_eq(blk.n, want.n, "pred %d: %zu ids in blocks, oracle %zu (d=%u)", p,
				     blk.n, want.n, m->d);
			if (blk.n) {
				qsort(blk.v, blk.n, sizeof *blk.v, cmp_u64);
				cr_assert_arr_eq(blk.v, want.v, blk.n * sizeof *blk.v,
						 "pred %d: block ids differ", p);
			}
			ids_free(&blk);
		}
		ids_free(&got);
		ids_free(&want);
	}
}

static void compare_knn(const strata_snapshot *snap, const strata_xt_handle *h, const char *name,
			const model *m, gen *g)
{
	double pt[MAXD], hi[MAXD];
	gen_box(g, pt, hi);
	uint32_t k = 1 + (uint32_t)rng_below(&g->r, 40);
	strata_xt_metric mt = (strata_xt_metric)rng_below(&g->r, 3);
	ids got = {0};
	int rc = h ? strata_xt_handle_knn(h, m->d, pt, k, mt, on_knn, &got)
		   : strata_xt_knn(snap, name, m->d, pt, k, mt, on_knn, &got);
	cr_assert_eq(rc, 0, "knn: %s", strata_strerror(rc));
	hit *all = malloc((m->n + 1) * sizeof *all);
	for (size_t i = 0; i < m->n; i++)
		all[i] = (hit){dist_of(m->d, pt, &m->e[i], mt), m->e[i].id};
	qsort(all, m->n, sizeof *all, cmp_hit);
	size_t want = m->n < k ? m->n : k;
	cr_assert_eq(got.n, want, "knn k=%u: %zu results, want %zu", k, got.n, want);
	for (size_t i = 0; i < want; i++) {
		cr_assert_eq(got.h[i].id, all[i].id, "knn metric %d result %zu: id %llu, want %llu", mt,
			     i, (unsigned long long)got.h[i].id, (unsigned long long)all[i].id);
		cr_assert_eq(got.h[i].dist, all[i].dist, "knn result %zu: distance", i);
	}
	free(all);
	ids_free(&got);
}

static void compare_all(strata_store *s, const char *name, const model *m, gen *g, int queries)
{
	strata_snapshot *snap;
	strata_xt_handle *h;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	cr_assert_eq(strata_xt_handle_open(snap, name, &h), 0);
	cr_assert_eq(strata_xt_handle_count(h), m->n);
	for (int q = 0; q < queries; q++) { /* by name and through the handle in turn */
		compare_window(snap, q % 2 ? h : NULL, name, m, g);
		compare_knn(snap, q % 2 ? NULL : h, name, m, g);
	}
	strata_xt_handle_close(h);
	strata_snapshot_close(snap);
}

static int scale(void)
{
	const char *e = getenv("XT_LONG");
	return e && *e && *e != '0' ? 10 : 1;
}

/* One batch of random inserts (70 %), deletes (20 %) and moves (10 %) in
 * one transaction, mirrored in the model. */
static void batch(strata_store *s, const char *name, model *m, gen *g, int ops, uint64_t *next_id)
{
	strata_txn *t = begin(s, name);
	uint32_t d = m->d;
	for (int i = 0; i < ops; i++) {
		uint64_t r = rng_below(&g->r, 10);
		double lo[MAXD], hi[MAXD];
		if (r < 7 || m->n == 0) {
			gen_box(g, lo, hi);
			uint64_t id = (*next_id)++;
			if (m->n && rng_below(&g->r, 20) == 0) { /* an exact duplicate */
				ment *e = &m->e[rng_below(&g->r, m->n)];
				id = e->id;
				memcpy(lo, e->lo, sizeof lo);
				memcpy(hi, e->hi, sizeof hi);
			}
			int rc = strata_xt_insert(t, name, d, lo, hi, id);
			cr_assert_eq(rc, 0, "insert: %s", strata_strerror(rc));
			model_add(m, id, lo, hi);
		} else if (r < 9) {
			size_t j = rng_below(&g->r, m->n);
			int rc = strata_xt_delete(t, name, d, m->e[j].lo, m->e[j].hi, m->e[j].id);
			cr_assert_eq(rc, 0, "delete: %s", strata_strerror(rc));
			model_del(m, j);
		} else {
			size_t j = rng_below(&g->r, m->n);
			gen_box(g, lo, hi);
			int rc = strata_xt_move(t, name, d, m->e[j].lo, m->e[j].hi, lo, hi, m->e[j].id);
			cr_assert_eq(rc, 0, "move: %s", strata_strerror(rc));
			memcpy(m->e[j].lo, lo, sizeof lo);
			memcpy(m->e[j].hi, hi, sizeof hi);
		}
	}
	commit(t);
}

/* Grows the tree to `target` entries in batches, then runs mixed batches
 * that also delete (so it shrinks and condenses), checking after each. */
static void run_workload(strata_store *s, uint32_t d, uint64_t seed, bool clustered, bool grid,
			 size_t target, const strata_xt_options *o)
{
	const char *name = "xt";
	create(s, name, d, o);
	gen g;
	gen_init(&g, d, seed, clustered, grid);
	model m = {.d = d};
	uint64_t next = 1;
	int rounds = 0;
	while (m.n < target) {
		batch(s, name, &m, &g, 200, &next);
		check_tree(s, name, m.n);
		if (++rounds % 4 == 0)
			compare_all(s, name, &m, &g, 5);
	}
	compare_all(s, name, &m, &g, 10);
	/* Shrink: deletes only, down to a handful, then empty. */
	strata_txn *t = begin(s, name);
	while (m.n > 3) {
		size_t j = rng_below(&g.r, m.n);
		cr_assert_eq(strata_xt_delete(t, name, d, m.e[j].lo, m.e[j].hi, m.e[j].id), 0);
		model_del(&m, j);
		if (m.n % 97 == 0) {
			commit(t);
			check_tree(s, name, m.n);
			compare_all(s, name, &m, &g, 2);
			t = begin(s, name);
		}
	}
	commit(t);
	compare_all(s, name, &m, &g, 5);
	t = begin(s, name);
	while (m.n) {
		cr_assert_eq(strata_xt_delete(t, name, d, m.e[0].lo, m.e[0].hi, m.e[0].id), 0);
		model_del(&m, 0);
	}
	commit(t);
	check_tree(s, name, 0);
	free(m.e);
}

static size_t target_for(uint32_t d)
{
	return (size_t)scale() * (d <= 3 ? 3000 : d <= 16 ? 1500 : 800);
}

#define DIFF(D, CL, GRID, SEED)                                                              \
	Test(xtree_diff, d##D##_##CL##_##GRID)                                                 \
	{                                                                                      \
		strata_store *s = test_open(NULL);                                             \
		run_workload(s, D, SEED, CL, GRID, target_for(D), NULL);                       \
		test_close(s);                                                                 \
	}
#define uniform false
#define clustered true
#define grid true
#define real false
DIFF(1, uniform, real, 11)
DIFF(1, uniform, grid, 12)
DIFF(2, uniform, real, 21)
DIFF(2, clustered, real, 22)
DIFF(2, uniform, grid, 23)
DIFF(3, uniform, real, 31)
DIFF(3, clustered, grid, 32)
DIFF(8, uniform, real, 81)
DIFF(8, clustered, real, 82)
DIFF(16, uniform, real, 161)
DIFF(16, clustered, real, 162)
DIFF(32, uniform, real, 321)
DIFF(32, clustered, grid, 322)
#undef uniform
#undef clustered
#undef grid
#undef real

/* run_workload on a fresh IN_MEMORY store with trees of node_size bytes. */
static void workload_in_nodes(uint32_t node_size, uint32_t d, uint64_t seed, bool clustered,
			      size_t target)
{
	strata_xt_options o = {.node_size = node_size};
	strata_store *s = test_open(NULL);
	run_workload(s, d, seed, clustered, false, target, &o);
	test_close(s);
}

/* Small nodes: deep trees, many splits, reinserts and condenses. */
Test(xtree_diff, small_nodes_2d)
{
	workload_in_nodes(512, 2, 99, false, 2000);
}

/* 6-D in 1 KiB blocks: supernodes under inserts, deletes and moves. */
Test(xtree_diff, supernodes_6d)
{
	workload_in_nodes(1024, 6, 66, false, 4000);
}

Test(xtree_diff, small_nodes_8d_clustered)
{
	workload_in_nodes(2048, 8, 98, true, 1500);
}

/* 3-D in 4 KiB blocks, the default before 1 KiB (trees keep the node size
 * they were created with): 68-entry nodes, so ChooseSubtree takes its
 * sorted top-p path (n > choose_p), which 1 KiB 3-D nodes never reach. */
Test(xtree_diff, nodes_4k_3d)
{
	workload_in_nodes(4096, 3, 34, false, 6000);
}

/* Window tests run four entries per step on CPUs with AVX2 and two per
 * step otherwise (xt_query.c), chosen at run time: the other path gets
 * the differential workload here, whichever this CPU takes by default
 * (2-D, 3-D and 8-D: the constant-d and generic copies; every predicate;
 * node sizes whose entry counts leave partial steps). */
extern int xt_query_avx2;

static void workload_on_the_other_lanes(uint32_t node_size, uint32_t d, uint64_t seed)
{
	int was = xt_query_avx2;
	strata_xt_options o = {.node_size = node_size};
	for (int avx2 = 0; avx2 <= 1; avx2++) {
		if (avx2 && !__builtin_cpu_supports("avx2"))
			break;
		xt_query_avx2 = avx2;
		strata_store *s = test_open(NULL);
		run_workload(s, d, seed + (uint64_t)avx2, d == 8, false, 1500, &o);
		test_close(s);
	}
	xt_query_avx2 = was;
}

Test(xtree_diff, window_lanes_2d) { workload_on_the_other_lanes(512, 2, 701); }
Test(xtree_diff, window_lanes_3d) { workload_on_the_other_lanes(1024, 3, 703); }
Test(xtree_diff, window_lanes_8d) { workload_on_the_other_lanes(2048, 8, 708); }

/* ChooseSubtree also takes four entries a step on AVX2 (xt_choose.c) and
 * must choose exactly as the two-lane path does: the same workload of
 * inserts, deletes and moves builds the same tree on both, node for node
 * (levels, sizes, counts and boxes in visiting order). */
static int hash_node(void *ctx, uint32_t level, uint32_t blocks, uint32_t count, const double *lo,
		     const double *hi)
{
	uint64_t *h = ctx;
	uint32_t d = (uint32_t)(*h >> 59) + 1; /* the top bits carry the dimension count in */
	uint64_t x = *h & ((1ull << 59) - 1);
	x = test_fnv(x, &level, sizeof level);
	x = test_fnv(x, &blocks, sizeof blocks);
	x = test_fnv(x, &count, sizeof count);
	x = test_fnv(x, lo, d * sizeof *lo);
	x = test_fnv(x, hi, d * sizeof *hi);
	*h = (uint64_t)(d - 1) << 59 | (x & ((1ull << 59) - 1));
	return 0;
}

static uint64_t shape_after_workload(uint32_t d, uint32_t node_size, bool clustered, int avx2)
{
	xt_query_avx2 = avx2;
	strata_store *s = test_open(NULL);
	strata_xt_options o = {.node_size = node_size};
	create(s, "c", d, &o);
	gen g;
	gen_init(&g, d, 900 + d, clustered, false);
	model m = {.d = d};
	uint64_t next = 1;
	for (int b = 0; b < 15; b++)
		batch(s, "c", &m, &g, 300, &next);
	check_tree(s, "c", m.n);
	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	uint64_t h = (uint64_t)(d - 1) << 59 | (TEST_FNV_SEED & ((1ull << 59) - 1));
	cr_assert_eq(strata_xt_nodes(snap, "c", hash_node, &h), 0);
	strata_snapshot_close(snap);
	free(m.e);
	test_close(s);
	return h;
}

static void choose_lanes_case(uint32_t d, uint32_t node_size, bool clustered)
{
	if (!__builtin_cpu_supports("avx2"))
		return; /* one path only on this CPU: nothing to compare */
	int was = xt_query_avx2;
	uint64_t two = shape_after_workload(d, node_size, clustered, 0);
	uint64_t four = shape_after_workload(d, node_size, clustered, 1);
	xt_query_avx2 = was;
	cr_assert_eq(two, four, "%u-D, %u-byte nodes: the AVX2 ChooseSubtree built another tree", d,
		     node_size);
}

Test(xtree, choose_lanes_build_the_same_tree_2d) { choose_lanes_case(2, 512, false); }
Test(xtree, choose_lanes_build_the_same_tree_3d) { choose_lanes_case(3, 1024, true); }
Test(xtree, choose_lanes_build_the_same_tree_8d) { choose_lanes_case(8, 2048, true); }

/* The default node size by dimension count: what xtree.h promises. */
Test(xtree, default_node_sizes)
{
	static const uint32_t dims[] = {1, 2, 3, 4, 8, 16, 32};
	static const uint32_t want[] = {1024, 1024, 1024, 4096, 8192, 16384, 32768};
	strata_store *s = test_open(NULL);
	for (size_t i = 0; i < sizeof dims / sizeof *dims; i++) {
		char name[16];
		snprintf(name, sizeof name, "t%u", dims[i]);
		create(s, name, dims[i], NULL);
		strata_snapshot *snap;
		cr_assert_eq(strata_snapshot_open(s, &snap), 0);
		strata_xt_stats st;
		cr_assert_eq(strata_xt_stats_get(snap, name, &st), 0);
		cr_expect_eq(st.node_size, want[i], "%u-D: %u", dims[i], st.node_size);
		cr_expect_geq(st.dir_capacity, dims[i] <= 3 ? 16u : 32u, "%u-D", dims[i]);
		strata_snapshot_close(snap);
	}
	test_close(s);
}

/* ---- the basics, by hand ------------------------------------------------------------- */
Test(xtree, create_insert_query_knn)
{
	strata_store *s = test_open(NULL);
	create(s, "t", 2, NULL);
	strata_txn *t = begin(s, "t");
	for (int i = 0; i < 10; i++) {
		double p[2] = {i, 0};
		cr_assert_eq(strata_xt_insert(t, "t", 2, p, NULL, (uint64_t)(100 + i)), 0);
	}
	uint64_t n;
	cr_assert_eq(strata_xt_txn_count(t, "t", &n), 0);
	cr_assert_eq(n, 10);
	commit(t);
	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	double lo[2] = {2.5, -1}, hi[2] = {5, 1};
	ids got = {0};
	cr_assert_eq(strata_xt_query(snap, "t", 2, STRATA_XT_INTERSECTS, lo, hi, on_hit, &got), 0);
	qsort(got.v, got.n, sizeof *got.v, cmp_u64);
	cr_assert_eq(got.n, 3);
	cr_assert_eq(got.v[0], 103);
	cr_assert_eq(got.v[2], 105);
	got.n = 0;
	/* (4.5, 0): 104 and 105 tie at 0.5; ascending id first. */
	double q[2] = {4.5, 0};
	cr_assert_eq(strata_xt_knn(snap, "t", 2, q, 3, STRATA_XT_L2, on_knn, &got), 0);
	cr_assert_eq(got.n, 3);
	cr_assert_eq(got.h[0].id, 104);
	cr_assert_eq(got.h[1].id, 105);
	cr_assert_eq(got.h[2].id, 103);
	cr_assert_float_eq(got.h[0].dist, 0.5, 1e-15);
	cr_assert_float_eq(got.h[2].dist, 1.5, 1e-15);
	ids_free(&got);
	strata_snapshot_close(snap);
	check_tree(s, "t", 10);
	test_close(s);
}

Test(xtree, cursor_yields_incrementally_in_order)
{
	strata_store *s = test_open(NULL);
	create(s, "t", 3, NULL);
	gen g;
	gen_init(&g, 3, 7, false, false);
	strata_txn *t = begin(s, "t");
	for (uint64_t i = 0; i < 5000; i++) {
		double lo[MAXD], hi[MAXD];
		gen_box(&g, lo, hi);
		cr_assert_eq(strata_xt_insert(t, "t", 3, lo, hi, i), 0);
	}
	commit(t);
	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	double pt[3] = {0.5, 0.5, 0.5};
	strata_xt_cursor *c = (strata_xt_cursor *)&c; /* not NULL: a failed open must clear it */
	cr_assert_eq(strata_xt_cursor_open(snap, "nosuch", 3, pt, STRATA_XT_LINF, &c),
		     STRATA_ENOTFOUND);
	cr_assert_null(c, "a failed open leaves *out NULL");
	c = (strata_xt_cursor *)&c;
	cr_assert_eq(strata_xt_cursor_open(snap, "t", 2, pt, STRATA_XT_LINF, &c), STRATA_EDIMS);
	cr_assert_null(c);
	cr_assert_eq(strata_xt_cursor_open(snap, "t", 3, pt, STRATA_XT_LINF, &c), 0);
	hit prev = {-1, 0};
	uint64_t first_nodes = 0;
	for (int i = 0; i < 5000; i++) {
		hit h;
		cr_assert_eq(strata_xt_cursor_next(c, &h.id, &h.dist, NULL, NULL), 0, "result %d", i);
		cr_assert(cmp_hit(&prev, &h) < 0, "result %d out of order", i);
		prev = h;
		if (i == 0)
			first_nodes = strata_xt_cursor_nodes(c);
	}
	cr_assert_eq(strata_xt_cursor_next(c, NULL, NULL, NULL, NULL), STRATA_ENOTFOUND);
	/* Distance browsing: the first result read a path, not the tree. */
	strata_xt_stats st;
	cr_assert_eq(strata_xt_stats_get(snap, "t", &st), 0);
	cr_assert_lt(first_nodes * 4, st.nodes, "first result read %llu of %llu nodes",
		     (unsigned long long)first_nodes, (unsigned long long)st.nodes);
	cr_assert_eq(strata_xt_cursor_nodes(c), st.nodes);
	strata_xt_cursor_close(c);
	strata_snapshot_close(snap);
	test_close(s);
}

/* ---- bad input: a status code, the tree untouched ------------------------------------ */
static uint64_t tree_hash(strata_store *s, const char *name)
{
	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	strata_node_id id;
	cr_assert_eq(strata_snapshot_root(snap, name, &id), 0);
	double lo[MAXD], hi[MAXD];
	for (int k = 0; k < MAXD; k++)
		lo[k] = -1e300, hi[k] = 1e300;
	ids got = {0};
	cr_assert_eq(strata_xt_query(snap, name, 2, STRATA_XT_INTERSECTS, lo, hi, on_hit, &got), 0);
	qsort(got.v, got.n, sizeof *got.v, cmp_u64);
	uint64_t h = test_fnv(TEST_FNV_SEED, got.v, got.n * sizeof *got.v);
	h = test_fnv(h, &id, sizeof id);
	ids_free(&got);
	strata_snapshot_close(snap);
	return h;
}

Test(xtree, bad_input_is_refused_and_changes_nothing)
{
	strata_store *s = test_open(NULL);
	create(s, "t", 2, NULL);
	strata_txn *t = begin(s, "t");
	for (uint64_t i = 0; i < 300; i++) {
		double p[2] = {(double)(i % 17), (double)(i / 17)};
		cr_assert_eq(strata_xt_insert(t, "t", 2, p, NULL, i), 0);
	}
	commit(t);
	uint64_t before = tree_hash(s, "t");
	double nan2[2] = {NAN, 0}, inf2[2] = {0, INFINITY}, a[2] = {1, 1}, b[2] = {0, 2};
	t = begin(s, "t");
	cr_assert_eq(strata_xt_insert(t, "t", 2, nan2, NULL, 1), STRATA_ECOORD);
	cr_assert_eq(strata_xt_insert(t, "t", 2, inf2, NULL, 1), STRATA_ECOORD);
	cr_assert_eq(strata_xt_insert(t, "t", 2, a, b, 1), STRATA_ECOORD, "min > max");
	cr_assert_eq(strata_xt_insert(t, "t", 3, a, NULL, 1), STRATA_EDIMS);
	cr_assert_eq(strata_xt_insert(t, "t", 2, NULL, NULL, 1), STRATA_EINVAL);
	cr_assert_eq(strata_xt_delete(t, "t", 2, a, NULL, 99999), STRATA_ENOTFOUND);
	cr_assert_eq(strata_xt_delete(t, "t", 2, nan2, NULL, 1), STRATA_ECOORD);
	cr_assert_eq(strata_xt_move(t, "t", 2, a, NULL, nan2, NULL, 18), STRATA_ECOORD);
	cr_assert_eq(strata_xt_move(t, "t", 2, a, NULL, b, NULL, 99999), STRATA_ENOTFOUND);
	cr_assert_eq(strata_xt_create(t, "t", 2, NULL), STRATA_EEXIST);
	cr_assert_eq(strata_xt_bulk_load(t, "t", 2, 1, a, NULL, &(uint64_t){1}), STRATA_EINVAL,
		     "bulk load into a non-empty tree");
	cr_assert_eq(strata_xt_insert(t, "other", 2, a, NULL, 1), STRATA_ENOTLOCKED);
	commit(t);
	cr_assert_eq(tree_hash(s, "t"), before);

	/* Creation errors. */
	const char *names[] = {"u", "raw", "t"};
	cr_assert_eq(strata_txn_begin(s, names, 3, 0, &t), 0);
	cr_assert_eq(strata_xt_create(t, "u", 0, NULL), STRATA_EDIMS);
	cr_assert_eq(strata_xt_create(t, "u", 33, NULL), STRATA_EDIMS);
	cr_assert_eq(strata_xt_create(t, "u", 2, &(strata_xt_options){.node_size = 1000}),
		     STRATA_EINVAL);
	cr_assert_eq(strata_xt_create(t, "u", 32, &(strata_xt_options){.node_size = 1024}),
		     STRATA_EINVAL, "too small for 32 dimensions");
	cr_assert_eq(strata_xt_insert(t, "u", 2, a, NULL, 1), STRATA_EWRONGINDEX, "empty root");
	/* A foreign root: some other node kind. */
	strata_node_id raw;
	void *p;
	cr_assert_eq(strata_txn_alloc(t, 64, 0x41, &raw, &p), 0);
	cr_assert_eq(strata_txn_set_root(t, "raw", raw), 0);
	cr_assert_eq(strata_xt_insert(t, "raw", 2, a, NULL, 1), STRATA_EWRONGINDEX);
	commit(t);

	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	ids got = {0};
	cr_assert_eq(strata_xt_knn(snap, "t", 2, a, 0, STRATA_XT_L2, on_knn, &got), STRATA_EINVAL);
	cr_assert_eq(strata_xt_knn(snap, "t", 3, a, 1, STRATA_XT_L2, on_knn, &got), STRATA_EDIMS);
	cr_assert_eq(strata_xt_knn(snap, "t", 2, nan2, 1, STRATA_XT_L2, on_knn, &got), STRATA_ECOORD);
	cr_assert_eq(strata_xt_knn(snap, "t", 2, a, 1, (strata_xt_metric)7, on_knn, &got),
		     STRATA_EINVAL);
	cr_assert_eq(strata_xt_query(snap, "t", 2, (strata_xt_pred)5, a, NULL, on_hit, &got),
		     STRATA_EINVAL);
	cr_assert_eq(strata_xt_query(snap, "t", 2, STRATA_XT_WITHIN, a, b, on_hit, &got),
		     STRATA_ECOORD);
	cr_assert_eq(strata_xt_query(snap, "raw", 2, STRATA_XT_WITHIN, a, NULL, on_hit, &got),
		     STRATA_EWRONGINDEX);
	cr_assert_eq(strata_xt_query(snap, "nope", 2, STRATA_XT_WITHIN, a, NULL, on_hit, &got),
		     STRATA_ENOTFOUND);
	cr_assert_eq(strata_xt_check(snap, "raw", NULL, NULL), STRATA_EWRONGINDEX);
	cr_assert_eq(got.n, 0);
	strata_snapshot_close(snap);
	cr_assert_eq(tree_hash(s, "t"), before);
	check_tree(s, "t", 300);
	test_close(s);
}

/* Query handles: errors, the snapshot's epoch and nothing later, a cursor
 * outliving its handle, and the snapshot closed before the handle. */
Test(xtree, query_handle_lifetime_and_errors)
{
	strata_store *s = test_open(NULL);
	create(s, "t", 2, NULL);
	strata_txn *t = begin(s, "t");
	for (uint64_t i = 0; i < 100; i++)
		cr_assert_eq(strata_xt_insert(t, "t", 2, (double[]){(double)i, 0}, NULL, i), 0);
	commit(t);
	const char *names[] = {"raw", "empty"};
	cr_assert_eq(strata_txn_begin(s, names, 2, 0, &t), 0);
	strata_node_id raw;
	void *p;
	cr_assert_eq(strata_txn_alloc(t, 64, 0x41, &raw, &p), 0);
	cr_assert_eq(strata_txn_set_root(t, "raw", raw), 0);
	cr_assert_eq(strata_txn_set_root(t, "empty", STRATA_NODE_NULL), 0);
	commit(t);

	strata_snapshot *snap;
	strata_xt_handle *h = (strata_xt_handle *)&names; /* not NULL: open must clear it */
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	cr_assert_eq(strata_xt_handle_open(snap, "nope", &h), STRATA_ENOTFOUND);
	cr_assert_eq(strata_xt_handle_open(snap, "raw", &h), STRATA_EWRONGINDEX);
	cr_assert_eq(strata_xt_handle_open(snap, "empty", &h), STRATA_EWRONGINDEX);
	cr_assert_eq(strata_xt_handle_open(snap, "t", NULL), STRATA_EINVAL);
	cr_assert_eq(strata_xt_handle_open(NULL, "t", &h), STRATA_EINVAL);
	cr_assert_null(h, "no handle after a failed open");
	cr_assert_eq(strata_xt_handle_open(snap, "t", &h), 0);
	cr_assert_eq(strata_xt_handle_dims(h), 2);

	/* Bad arguments: as by name. */
	ids got = {0};
	double a[2] = {5, 0}, b[2] = {4, 1}, nan2[2] = {NAN, 0};
	cr_assert_eq(strata_xt_handle_query(NULL, 2, STRATA_XT_INTERSECTS, a, NULL, on_hit, &got),
		     STRATA_EINVAL);
	cr_assert_eq(strata_xt_handle_query(h, 3, STRATA_XT_INTERSECTS, a, NULL, on_hit, &got),
		     STRATA_EDIMS);
	cr_assert_eq(strata_xt_handle_query(h, 2, (strata_xt_pred)9, a, NULL, on_hit, &got),
		     STRATA_EINVAL);
	cr_assert_eq(strata_xt_handle_query(h, 2, STRATA_XT_WITHIN, a, b, on_hit, &got),
		     STRATA_ECOORD);
	cr_assert_eq(strata_xt_handle_knn(h, 2, a, 0, STRATA_XT_L2, on_knn, &got), STRATA_EINVAL);
	cr_assert_eq(strata_xt_handle_knn(h, 2, nan2, 1, STRATA_XT_L2, on_knn, &got),
		     STRATA_ECOORD);
	cr_assert_eq(strata_xt_handle_knn(NULL, 2, a, 1, STRATA_XT_L2, on_knn, &got),
		     STRATA_EINVAL);
	strata_xt_cursor *c = NULL;
	cr_assert_eq(strata_xt_handle_cursor(h, 2, a, (strata_xt_metric)4, &c), STRATA_EINVAL);
	cr_assert_eq(got.n, 0);

	/* A later commit is not seen through the handle (nor its snapshot). */
	t = begin(s, "t");
	for (uint64_t i = 100; i < 150; i++)
		cr_assert_eq(strata_xt_insert(t, "t", 2, (double[]){(double)i, 0}, NULL, i), 0);
	commit(t);
	cr_assert_eq(strata_xt_handle_count(h), 100);
	double all_lo[2] = {-1, -1}, all_hi[2] = {1000, 1};
	cr_assert_eq(strata_xt_handle_query(h, 2, STRATA_XT_INTERSECTS, all_lo, all_hi, on_hit, &got),
		     0);
	cr_assert_eq(got.n, 100);
	ids_free(&got);

	/* A cursor opened through the handle outlives it. */
	cr_assert_eq(strata_xt_handle_cursor(h, 2, a, STRATA_XT_L2, &c), 0);
	strata_xt_handle_close(h);
	uint64_t id;
	double dist;
	cr_assert_eq(strata_xt_cursor_next(c, &id, &dist, NULL, NULL), 0);
	cr_assert(id == 5 && dist == 0, "nearest to (5, 0): id %llu at %g", (unsigned long long)id,
		  dist);
	cr_assert_eq(strata_xt_cursor_next(c, &id, &dist, NULL, NULL), 0);
	cr_assert(id == 4 && dist == 1, "then id 4 at 1 (ties by id): id %llu at %g",
		  (unsigned long long)id, dist);
	strata_xt_cursor_close(c);

	/* The snapshot closed first: closing the handle afterwards is fine. */
	cr_assert_eq(strata_xt_handle_open(snap, "t", &h), 0);
	strata_snapshot_close(snap);
	strata_xt_handle_close(h);
	strata_xt_handle_close(NULL);
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	cr_assert_eq(strata_xt_handle_open(snap, "t", &h), 0);
	cr_assert_eq(strata_xt_handle_count(h), 150, "a new snapshot's handle sees the commit");
	strata_xt_handle_close(h);
	strata_snapshot_close(snap);
	test_close(s);
}

typedef struct stopper {
	int calls, ret;
	size_t ids;
} stopper;

static int stop_ids(void *ctx, const uint64_t *v, size_t n)
{
	stopper *st = ctx;
	(void)v;
	st->calls++;
	st->ids += n;
	return st->ret;
}

/* strata_xt_handle_query_ids: errors as strata_xt_handle_query, every hit
 * once in blocks of at most 64 (small nodes: many leaves), a nonzero return
 * stops the query and is returned, an empty window makes no call. The
 * differential tests compare its ids with the per-hit form and the oracle. */
Test(xtree, query_ids_blocks_errors_and_stop)
{
	strata_store *s = test_open(NULL);
	strata_xt_options o = {.node_size = 512};
	create(s, "t", 2, &o);
	strata_txn *t = begin(s, "t");
	for (uint64_t i = 0; i < 2000; i++)
		cr_assert_eq(strata_xt_insert(t, "t", 2, (double[]){(double)(i % 50), (double)(i / 50)},
					      NULL, i), 0);
	commit(t);
	strata_snapshot *snap;
	strata_xt_handle *h;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	cr_assert_eq(strata_xt_handle_open(snap, "t", &h), 0);

	double all_lo[2] = {-1, -1}, all_hi[2] = {100, 100}, a[2] = {5, 0}, b[2] = {4, 1};
	stopper st = {0, 0, 0};
	cr_assert_eq(strata_xt_handle_query_ids(NULL, 2, STRATA_XT_INTERSECTS, a, NULL, stop_ids, &st),
		     STRATA_EINVAL);
	cr_assert_eq(strata_xt_handle_query_ids(h, 2, STRATA_XT_INTERSECTS, a, NULL, NULL, &st),
		     STRATA_EINVAL);
	cr_assert_eq(strata_xt_handle_query_ids(h, 3, STRATA_XT_INTERSECTS, a, NULL, stop_ids, &st),
		     STRATA_EDIMS);
	cr_assert_eq(strata_xt_handle_query_ids(h, 2, (strata_xt_pred)3, a, NULL, stop_ids, &st),
		     STRATA_EINVAL);
	cr_assert_eq(strata_xt_handle_query_ids(h, 2, STRATA_XT_WITHIN, a, b, stop_ids, &st),
		     STRATA_ECOORD);
	cr_assert_eq(st.calls, 0);

	ids got = {0};
	cr_assert_eq(strata_xt_handle_query_ids(h, 2, STRATA_XT_WITHIN, all_lo, all_hi, on_ids, &got),
		     0);
	cr_assert_eq(got.n, 2000);
	qsort(got.v, got.n, sizeof *got.v, cmp_u64);
	for (size_t i = 0; i < got.n; i++)
		cr_assert_eq(got.v[i], i, "each id once");
	ids_free(&got);

	st = (stopper){0, 0, 0};
	cr_assert_eq(strata_xt_handle_query_ids(h, 2, STRATA_XT_INTERSECTS, all_lo, all_hi, stop_ids,
						&st), 0);
	cr_assert_eq(st.ids, 2000);
	cr_assert(st.calls >= 2000 / 64, "%d blocks for 2000 hits", st.calls);
	st = (stopper){0, 7, 0};
	cr_assert_eq(strata_xt_handle_query_ids(h, 2, STRATA_XT_INTERSECTS, all_lo, all_hi, stop_ids,
						&st), 7);
	cr_assert_eq(st.calls, 1, "stopped after the first block");
	double far_lo[2] = {500, 500}, far_hi[2] = {600, 600};
	st = (stopper){0, 0, 0};
	cr_assert_eq(strata_xt_handle_query_ids(h, 2, STRATA_XT_INTERSECTS, far_lo, far_hi, stop_ids,
						&st), 0);
	cr_assert_eq(st.calls, 0, "no hits, no call");
	strata_xt_handle_close(h);
	strata_snapshot_close(snap);
	test_close(s);
}

/* A stale root: the meta node a snapshot saw was freed (the tree dropped). */
Test(xtree, stale_node_is_estale)
{
	strata_store *s = test_open(NULL);
	create(s, "t", 2, NULL);
	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	strata_node_id meta;
	cr_assert_eq(strata_snapshot_root(snap, "t", &meta), 0);
	strata_snapshot_close(snap);
	strata_txn *t = begin(s, "t");
	cr_assert_eq(strata_txn_free(t, meta), 0);
	cr_assert_eq(strata_txn_set_root(t, "t", STRATA_NODE_NULL), 0);
	commit(t);
	strata_reclaim(s);
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	cr_assert_eq(strata_xt_is_tree(snap, meta), 0);
	uint64_t n;
	cr_assert_eq(strata_xt_count(snap, "t", &n), STRATA_EWRONGINDEX);
	strata_snapshot_close(snap);
	test_close(s);
}

/* ---- bulk load ------------------------------------------------------------------------- */
static void bulk_case(uint32_t d, size_t n, bool clustered, uint64_t seed)
{
	strata_store *s = test_open(NULL);
	create(s, "b", d, NULL);
	gen g;
	gen_init(&g, d, seed, clustered, false);
	model m = {.d = d};
	double *lo = malloc(n * d * sizeof *lo), *hi = malloc(n * d * sizeof *hi);
	uint64_t *id = malloc(n * sizeof *id);
	for (size_t i = 0; i < n; i++) {
		gen_box(&g, lo + i * d, hi + i * d);
		id[i] = i * 3 + 1;
		model_add(&m, id[i], lo + i * d, hi + i * d);
	}
	strata_txn *t = begin(s, "b");
	int rc = strata_xt_bulk_load(t, "b", d, n, lo, hi, id);
	cr_assert_eq(rc, 0, "bulk: %s", strata_strerror(rc));
	commit(t);
	check_tree(s, "b", n);
	compare_all(s, "b", &m, &g, 10);
	/* The tree goes on as a normal X-tree after the load. */
	uint64_t next = n * 3 + 2;
	batch(s, "b", &m, &g, 300, &next);
	check_tree(s, "b", m.n);
	compare_all(s, "b", &m, &g, 5);
	free(lo), free(hi), free(id), free(m.e);
	test_close(s);
}

/* The bulk load sorts by centres scaled into their range, computed from
 * halves so that a range wider than DBL_MAX (boxes near -DBL_MAX and
 * +DBL_MAX) stays finite: the tree is valid and complete. */
static int count_hit(void *ctx, uint64_t id, const double *lo, const double *hi)
{
	(void)id, (void)lo, (void)hi;
	++*(size_t *)ctx;
	return 0;
}

Test(xtree, bulk_load_extreme_coordinates)
{
	enum { N = 3000 };
	strata_store *s = test_open(NULL);
	create(s, "b", 2, NULL);
	static double lo[N * 2], hi[N * 2];
	static uint64_t id[N];
	for (size_t i = 0; i < N; i++) {
		double x = (i % 2 ? 1 : -1) * (1.7e308 - (double)i * 1e303);
		lo[2 * i] = hi[2 * i] = x;
		lo[2 * i + 1] = (double)(i % 97) / 97;
		hi[2 * i + 1] = lo[2 * i + 1] + 0.001;
		id[i] = i + 1;
	}
	strata_txn *t = begin(s, "b");
	cr_assert_eq(strata_xt_bulk_load(t, "b", 2, N, lo, hi, id), 0);
	commit(t);
	check_tree(s, "b", N);
	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	const double qlo[3][2] = {{-DBL_MAX, 0}, {0, 0}, {-DBL_MAX, 0.5}};
	const double qhi[3][2] = {{0, 1}, {DBL_MAX, 1}, {DBL_MAX, 1.1}};
	size_t want[3] = {N / 2, N / 2, 0};
	for (size_t i = 0; i < N; i++)
		want[2] += lo[2 * i + 1] <= 1.1 && hi[2 * i + 1] >= 0.5;
	for (int q = 0; q < 3; q++) {
		size_t n = 0;
		cr_assert_eq(strata_xt_query(snap, "b", 2, STRATA_XT_INTERSECTS, qlo[q], qhi[q],
					     count_hit, &n), 0);
		cr_assert_eq(n, want[q], "window %d: %zu hits, want %zu", q, n, want[q]);
	}
	strata_snapshot_close(snap);
	test_close(s);
}

/* The load checks every coordinate before it writes anything: a NaN, an
 * infinity or min > max anywhere (first entry, either lane of the vector
 * test, the odd coordinate after the last pair) is STRATA_ECOORD, and the
 * tree stays empty and takes a good load afterwards. */
Test(xtree, bulk_load_refuses_bad_coordinates)
{
	enum { D = 3, N = 5 }; /* 15 coordinates: 7 pairs, then one alone */
	strata_store *s = test_open(NULL);
	create(s, "b", D, NULL);
	double lo[N * D], hi[N * D];
	uint64_t id[N];
	const size_t at[] = {0, 6, 7, 14};
	const double bad[] = {NAN, INFINITY, -INFINITY};
	for (int c = 0; c < 4 * 4 * 2; c++) {
		for (size_t i = 0; i < N * D; i++)
			lo[i] = (double)i, hi[i] = (double)i + 0.5;
		for (size_t i = 0; i < N; i++)
			id[i] = i + 1;
		size_t where = at[c % 4];
		int kind = c / 4 % 4;
		bool in_hi = c / 16;
		if (kind == 3) /* min > max */
			lo[where] = hi[where] + 1;
		else
			(in_hi ? hi : lo)[where] = bad[kind];
		strata_txn *t = begin(s, "b");
		cr_assert_eq(strata_xt_bulk_load(t, "b", D, N, lo, hi, id), STRATA_ECOORD,
			     "case %d: coordinate %zu of %s", c, where, in_hi ? "max" : "min");
		commit(t);
		check_tree(s, "b", 0);
	}
	for (size_t i = 0; i < N * D; i++)
		lo[i] = (double)i, hi[i] = (double)i + 0.5;
	strata_txn *t = begin(s, "b");
	cr_assert_eq(strata_xt_bulk_load(t, "b", D, N, lo, hi, id), 0);
	commit(t);
	check_tree(s, "b", N);
	test_close(s);
}

/* STR tiles, not just a valid tree: points on a jittered grid, loaded in
 * random order, must come out in nodes that hardly overlap (a load that
 * left the order alone would give every node nearly the whole space).
 * In 2-D and 3-D, where the slabs are cut recursively. */
static void bulk_tiles_case(uint32_t d, size_t side)
{
	size_t n = 1;
	for (uint32_t k = 0; k < d; k++)
		n *= side;
	strata_store *s = test_open(NULL);
	create(s, "b", d, NULL);
	double *pt = malloc(n * d * sizeof *pt);
	uint64_t *id = malloc(n * sizeof *id);
	test_rng r = {77};
	for (size_t i = 0; i < n; i++) {
		size_t cell = i;
		for (uint32_t k = 0; k < d; k++, cell /= side)
			pt[i * d + k] = ((double)(cell % side) + 0.1 + 0.8 * unit(&r)) / (double)side;
		id[i] = i + 1;
	}
	for (size_t i = n - 1; i > 0; i--) { /* random input order */
		size_t j = (size_t)rng_below(&r, i + 1);
		for (uint32_t k = 0; k < d; k++) {
			double x = pt[i * d + k];
			pt[i * d + k] = pt[j * d + k], pt[j * d + k] = x;
		}
		uint64_t x = id[i];
		id[i] = id[j], id[j] = x;
	}
	strata_txn *t = begin(s, "b");
	cr_assert_eq(strata_xt_bulk_load(t, "b", d, n, pt, NULL, id), 0);
	commit(t);
	check_tree(s, "b", n);
	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	strata_xt_stats st;
	cr_assert_eq(strata_xt_stats_get(snap, "b", &st), 0);
	cr_assert_gt(st.height, 2u);
	cr_assert_lt(st.overlap, 0.1, "%u-D: directory overlap %.3f", d, st.overlap);
	strata_snapshot_close(snap);
	free(pt), free(id);
	test_close(s);
}

Test(xtree, bulk_load_tiles_2d) { bulk_tiles_case(2, 150); }
Test(xtree, bulk_load_tiles_3d) { bulk_tiles_case(3, 30); }

Test(xtree, bulk_load_1d) { bulk_case(1, 5000, false, 1); }
Test(xtree, bulk_load_2d) { bulk_case(2, 20000, false, 2); }
Test(xtree, bulk_load_2d_small) { bulk_case(2, 150, true, 3); }
Test(xtree, bulk_load_3d_clustered) { bulk_case(3, 10000, true, 4); }
Test(xtree, bulk_load_16d) { bulk_case(16, 3000, false, 5); }
Test(xtree, bulk_load_32d_clustered) { bulk_case(32, 2000, true, 6); }

/* ---- supernodes ---------------------------------------------------------------------- */
Test(xtree, supernodes_form_and_shrink)
{
	/* Uniform 16-D points in 4 KiB blocks: directory splits overlap
	 * heavily and the X-tree turns nodes into supernodes. */
	strata_xt_options o = {.node_size = 4096};
	strata_store *s = test_open(NULL);
	create(s, "x", 16, &o);
	gen g;
	gen_init(&g, 16, 77, false, false);
	model m = {.d = 16};
	uint64_t next = 1;
	while (m.n < 5000)
		batch(s, "x", &m, &g, 500, &next);
	compare_all(s, "x", &m, &g, 10);
	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	strata_xt_stats st;
	cr_assert_eq(strata_xt_stats_get(snap, "x", &st), 0);
	cr_log_info("16-D: height %u nodes %llu supernodes %llu (max %u blocks) overlap %.3f",
		    st.height, (unsigned long long)st.nodes, (unsigned long long)st.supernodes,
		    st.supernode_max_blocks, st.overlap);
	cr_assert_gt(st.supernodes, 0, "no supernode formed");
	strata_snapshot_close(snap);
	check_tree(s, "x", m.n);
	/* Deleting shrinks supernodes back block by block (the checker
	 * refuses a supernode whose entries fit in fewer blocks). */
	while (m.n) {
		strata_txn *t = begin(s, "x");
		for (int i = 0; i < 400 && m.n; i++) {
			size_t j = rng_below(&g.r, m.n);
			cr_assert_eq(strata_xt_delete(t, "x", 16, m.e[j].lo, m.e[j].hi, m.e[j].id), 0);
			model_del(&m, j);
		}
		commit(t);
		check_tree(s, "x", m.n);
	}
	free(m.e);
	test_close(s);
}

/* ---- DURABLE ---------------------------------------------------------------------------- */
static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(path);
}

static strata_store *open_durable(const char *dir)
{
	strata_options o = test_durable_options(dir, false);
	o.durability = STRATA_ASYNC;
	return test_open(&o);
}

Test(xtree, durable_survives_close_and_reopen)
{
	char dir[] = "/tmp/strata-xt-XXXXXX";
	cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
	strata_store *s = open_durable(dir);
	create(s, "d", 3, NULL);
	gen g;
	gen_init(&g, 3, 303, true, false);
	model m = {.d = 3};
	uint64_t next = 1;
	for (int i = 0; i < 10; i++)
		batch(s, "d", &m, &g, 300, &next);
	check_tree(s, "d", m.n);
	cr_assert_eq(strata_checkpoint(s), 0);
	for (int i = 0; i < 3; i++) /* some in the WAL only */
		batch(s, "d", &m, &g, 300, &next);
	test_close(s);
	s = open_durable(dir);
	check_tree(s, "d", m.n);
	compare_all(s, "d", &m, &g, 20);
	batch(s, "d", &m, &g, 300, &next);
	check_tree(s, "d", m.n);
	test_close(s);
	free(m.e);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* The differential workload on a DURABLE store, closed and reopened
 * (recovery: checkpoint + WAL replay) every few batches. */
static void durable_workload(uint32_t d, bool clustered, bool grid, uint64_t seed, size_t target)
{
	char dir[] = "/tmp/strata-xt-XXXXXX";
	cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
	strata_store *s = open_durable(dir);
	create(s, "d", d, NULL);
	gen g;
	gen_init(&g, d, seed, clustered, grid);
	model m = {.d = d};
	uint64_t next = 1;
	for (int round = 1; m.n < target; round++) {
		batch(s, "d", &m, &g, 250, &next);
		check_tree(s, "d", m.n);
		if (round % 3)
			continue;
		if (round % 2)
			cr_assert_eq(strata_checkpoint(s), 0);
		test_close(s);
		s = open_durable(dir);
		check_tree(s, "d", m.n);
		compare_all(s, "d", &m, &g, 4);
	}
	test_close(s);
	free(m.e);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* 1-D on the integer grid: many equal kNN distances across reopens. */
Test(xtree_diff, durable_1d_grid_reopen)
{
	durable_workload(1, false, true, 1001, 2000 * (size_t)scale());
}
Test(xtree_diff, durable_2d_reopen) { durable_workload(2, false, false, 2002, 2000 * (size_t)scale()); }
Test(xtree_diff, durable_16d_clustered_reopen)
{
	durable_workload(16, true, false, 1616, 1000 * (size_t)scale());
}
/* 32-D: 32 KiB nodes, the largest the substrate writes for this index. */
Test(xtree_diff, durable_32d_reopen)
{
	durable_workload(32, false, false, 3232, 800 * (size_t)scale());
}

/* A process killed (SIGKILL) while it commits X-tree batches SYNC: the
 * reopened store holds every acknowledged batch and at most the one in
 * flight, whole, and the tree passes the checker. */
static void crash_child(const char *dir, int fd)
{
	strata_options o = test_durable_options(dir, false);
	strata_store *s;
	const char *name = "k";
	strata_txn *t;
	if (strata_open(&o, &s) || strata_txn_begin(s, &name, 1, 0, &t) ||
	    strata_xt_create(t, name, 2, NULL) || strata_txn_commit(t, NULL))
		_exit(2);
	for (uint32_t b = 1;; b++) {
		if (strata_txn_begin(s, &name, 1, 0, &t))
			_exit(2);
		for (uint64_t i = 0; i < 100; i++) {
			uint64_t id = (uint64_t)(b - 1) * 100 + i;
			double pt[2] = {(double)(id % 317), (double)(id / 317)};
			if (strata_xt_insert(t, name, 2, pt, NULL, id))
				_exit(2);
		}
		if (strata_txn_commit(t, NULL) || write(fd, &b, sizeof b) != sizeof b)
			_exit(2);
	}
}

Test(xtree, recovers_after_sigkill)
{
#if defined(__SANITIZE_THREAD__)
	cr_skip_test("ThreadSanitizer cannot run a store in a child forked from a "
		     "multi-threaded process (the worker is); normal and ASan builds run it");
#endif
	char dir[] = "/tmp/strata-xt-XXXXXX";
	cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
	int p[2];
	cr_assert_eq(pipe(p), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(p[0]);
		crash_child(dir, p[1]);
	}
	close(p[1]);
	uint32_t b = 0, acked = 0;
	while (read(p[0], &b, sizeof b) == sizeof b) {
		acked = b;
		if (acked == 30)
			kill(pid, SIGKILL); /* while it commits batch 31 */
	}
	close(p[0]);
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFSIGNALED(status), "the child failed on its own (status %d)", status);
	strata_options o;
	strata_options_init(&o);
	o.mode = STRATA_DURABLE;
	o.path = dir;
	strata_store *s = test_open(&o);
	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	uint64_t n;
	cr_assert_eq(strata_xt_count(snap, "k", &n), 0);
	cr_assert(n % 100 == 0 && n / 100 >= acked && n / 100 <= acked + 1,
		  "%llu entries after %u acknowledged batches", (unsigned long long)n, acked);
	cr_assert_eq(strata_xt_check(snap, "k", test_report, NULL), 0);
	double lo[2] = {-1, -1}, hi[2] = {1e9, 1e9};
	ids got = {0};
	cr_assert_eq(strata_xt_query(snap, "k", 2, STRATA_XT_INTERSECTS, lo, hi, on_hit, &got), 0);
	cr_assert_eq(got.n, n);
	qsort(got.v, got.n, sizeof *got.v, cmp_u64);
	for (size_t i = 0; i < got.n; i++)
		cr_assert_eq(got.v[i], i, "entry %zu", i);
	ids_free(&got);
	strata_snapshot_close(snap);
	test_close(s);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Power loss (io_sim) after every I/O step of an X-tree workload committed
 * SYNC, with checkpoints between (test_power_loss_campaign): whatever
 * unsynced writes the loss drops, keeps or tears, the reopened tree is
 * exactly the tree of the last acknowledged commit or of the one in flight,
 * and passes both checkers. Trees are compared by a digest: the count and
 * the sum of a hash of each entry (id and box), the same whatever order a
 * query returns them in. */
static uint64_t entry_hash(uint32_t d, uint64_t id, const double *lo, const double *hi)
{
	uint64_t h = test_fnv(TEST_FNV_SEED, &id, sizeof id);
	h = test_fnv(h, lo, d * sizeof *lo);
	return test_fnv(h, hi, d * sizeof *hi);
}

static test_digest model_digest(const model *m)
{
	test_digest g = {m->n, 0};
	for (size_t i = 0; i < m->n; i++)
		g.h += entry_hash(m->d, m->e[i].id, m->e[i].lo, m->e[i].hi);
	return g;
}

static int on_digest(void *ctx, uint64_t id, const double *lo, const double *hi)
{
	test_digest *g = ctx;
	g->n++;
	g->h += entry_hash(2, id, lo, hi);
	return 0;
}

enum { PL_BATCHES = 10 };

static uint32_t pl_workload(io_env *env, test_digest *want)
{
	strata_options o = test_durable_options("db", true);
	strata_store *s;
	if (store_open_env(&o, env, &s))
		return 0;
	const char *name = "p";
	strata_txn *t;
	uint32_t acked = 0;
	if (strata_txn_begin(s, &name, 1, STRATA_TXN_SYNC, &t))
		goto out;
	if (strata_xt_create(t, name, 2, NULL)) {
		strata_txn_abort(t);
		goto out;
	}
	if (strata_txn_commit(t, NULL))
		goto out;
	gen g;
	gen_init(&g, 2, 4711, false, false);
	model m = {.d = 2};
	want[acked++] = model_digest(&m);
	uint64_t next = 1;
	for (uint32_t b = 1; b <= PL_BATCHES; b++) {
		if (strata_txn_begin(s, &name, 1, STRATA_TXN_SYNC, &t))
			break;
		int rc = 0;
		for (int i = 0; i < 60 && !rc; i++) {
			double lo[MAXD], hi[MAXD];
			if (m.n < 20 || rng_below(&g.r, 10) < 7) {
				gen_box(&g, lo, hi);
				rc = strata_xt_insert(t, name, 2, lo, hi, next);
				if (!rc)
					model_add(&m, next++, lo, hi);
			} else {
				size_t j = rng_below(&g.r, m.n);
				rc = strata_xt_delete(t, name, 2, m.e[j].lo, m.e[j].hi, m.e[j].id);
				if (!rc)
					model_del(&m, j);
			}
		}
		want[b] = model_digest(&m);
		if (rc) {
			strata_txn_abort(t);
			break;
		}
		if (strata_txn_commit(t, NULL))
			break;
		acked = b + 1;
		if (b % 4 == 3 && strata_checkpoint(s))
			break;
	}
	free(m.e);
out:
	strata_close(s); /* fails once the machine stopped */
	return acked;
}

static int pl_read(strata_store *s, test_digest *got)
{
	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	const double lo[2] = {-DBL_MAX, -DBL_MAX}, hi[2] = {DBL_MAX, DBL_MAX};
	int rc = strata_xt_query(snap, "p", 2, STRATA_XT_INTERSECTS, lo, hi, on_digest, got);
	if (!rc)
		cr_assert_eq(strata_xt_check(snap, "p", test_report, NULL), 0);
	strata_snapshot_close(snap);
	return rc;
}

Test(xtree, power_loss_leaves_the_tree_of_one_commit, .timeout = 600)
{
	test_power_loss_campaign(pl_workload, pl_read, PL_BATCHES + 1);
}

Test(xtree, make_durable_live)
{
	char dir[] = "/tmp/strata-xt-XXXXXX";
	cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
	strata_store *s = test_open(NULL);
	create(s, "d", 8, NULL);
	gen g;
	gen_init(&g, 8, 808, false, false);
	model m = {.d = 8};
	uint64_t next = 1;
	for (int i = 0; i < 5; i++)
		batch(s, "d", &m, &g, 300, &next);
	strata_snapshot *old;
	cr_assert_eq(strata_snapshot_open(s, &old), 0);
	char sub[64];
	snprintf(sub, sizeof sub, "%s/db", dir);
	int rc = strata_make_durable(s, sub);
	cr_assert_eq(rc, 0, "make_durable: %s", strata_strerror(rc));
	uint64_t n;
	cr_assert_eq(strata_xt_count(old, "d", &n), 0);
	cr_assert_eq(n, m.n, "a snapshot across the switch");
	strata_snapshot_close(old);
	for (int i = 0; i < 3; i++)
		batch(s, "d", &m, &g, 300, &next);
	test_close(s);
	strata_options o;
	strata_options_init(&o);
	o.mode = STRATA_DURABLE;
	o.path = sub;
	s = test_open(&o);
	check_tree(s, "d", m.n);
	compare_all(s, "d", &m, &g, 10);
	test_close(s);
	free(m.e);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- snapshots while a writer runs ---------------------------------------------------- */
typedef struct writer_arg {
	strata_store *s;
	int batches;
} writer_arg;

/* The writer keeps the tree's ids in [0, count) with every id's point at
 * (id, id): a reader can check any snapshot is one whole commit. */
static void *writer(void *p)
{
	writer_arg *w = p;
	uint64_t count = 1000;
	for (int b = 0; b < w->batches; b++) {
		strata_txn *t;
		const char *name = "c";
		if (strata_txn_begin(w->s, &name, 1, 0, &t))
			return (void *)1;
		for (int i = 0; i < 50; i++) {
			double pt[2] = {(double)count, (double)count};
			if (strata_xt_insert(t, name, 2, pt, NULL, count++))
				return (void *)1;
		}
		for (int i = 0; i < 25; i++) {
			count--;
			double pt[2] = {(double)count, (double)count};
			if (strata_xt_delete(t, name, 2, pt, NULL, count))
				return (void *)1;
		}
		if (strata_txn_commit(t, NULL))
			return (void *)1;
	}
	return NULL;
}

Test(xtree, snapshot_queries_while_a_writer_runs)
{
	strata_store *s = test_open(NULL);
	create(s, "c", 2, NULL);
	strata_txn *t = begin(s, "c");
	for (uint64_t i = 0; i < 1000; i++) {
		double pt[2] = {(double)i, (double)i};
		cr_assert_eq(strata_xt_insert(t, "c", 2, pt, NULL, i), 0);
	}
	commit(t);
	writer_arg w = {s, 200};
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, writer, &w), 0);
	for (int r = 0; r < 300; r++) {
		strata_snapshot *snap;
		cr_assert_eq(strata_snapshot_open(s, &snap), 0);
		uint64_t n;
		cr_assert_eq(strata_xt_count(snap, "c", &n), 0);
		double lo[2] = {-1, -1}, hi[2] = {1e9, 1e9};
		ids got = {0};
		cr_assert_eq(strata_xt_query(snap, "c", 2, STRATA_XT_INTERSECTS, lo, hi, on_hit, &got), 0);
		cr_assert_eq(got.n, n, "query saw %zu entries, count %llu", got.n, (unsigned long long)n);
		qsort(got.v, got.n, sizeof *got.v, cmp_u64);
		for (size_t i = 0; i < got.n; i++)
			cr_assert_eq(got.v[i], i, "a torn snapshot");
		got.n = 0;
		double far[2] = {1e9, 1e9};
		cr_assert_eq(strata_xt_knn(snap, "c", 2, far, 3, STRATA_XT_L2, on_knn, &got), 0);
		cr_assert_eq(got.h[0].id, n - 1);
		if (r % 50 == 0)
			cr_assert_eq(strata_xt_check(snap, "c", test_report, NULL), 0);
		ids_free(&got);
		strata_snapshot_close(snap);
	}
	void *res;
	pthread_join(th, &res);
	cr_assert_null(res, "the writer failed");
	check_tree(s, "c", 1000 + 25 * 200);
	test_close(s);
}

/* ---- ChooseSubtree on a node built by hand ---------------------------------------- */
#include "xtree/xt_internal.h"

/* A 2-D directory node of n entries (boxes lo/hi: n pairs of corners),
 * `cap` 8, in buf. */
static xt_view hand_node(void *buf, uint32_t n, const double (*lo)[2], const double (*hi)[2])
{
	memset(buf, 0, XT_HDR_SIZE);
	xt_hdr *h = buf;
	h->level = 1, h->count = n, h->cap = 8;
	xt_view v = xt_view_of(buf, 2);
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t k = 0; k < 2; k++)
			v.lo[k * 8 + i] = lo[i][k], v.hi[k * 8 + i] = hi[i][k];
	return v;
}

/* xt_choose in 2-D, no prefetch. */
static int choose2(const xt_meta *m, const xt_view *v, const double *lo, const double *hi, int leaf,
		   uint32_t *got)
{
	return xt_choose(m, v, 2, lo, hi, leaf, NULL, got);
}

/* Entries so wide that their areas overflow (1e300 by 1e300): their
 * enlargements were inf - inf = NaN, and the choice once was entry 64,
 * past the node's end, on AVX2. Now the choice is taken on a copy scaled
 * into range, so among huge boxes it is R*'s: of those that cover the new
 * box (enlargement 0) the least area, else the least enlargement. Where a
 * node mixes 1e300 with units, the units' areas underflow in that copy:
 * the choice is then some entry of the node, the same at either width.
 * Both with and without the overlap step. */
Test(xtree, choose_with_nan_enlargements)
{
	static const double hlo[4][2] = {
		{-1e300, -1e300}, {5e299, 5e299}, {0.5e299, 0.5e299}, {-1e300, -1e300}};
	static const double hhi[4][2] = {
		{1e300, 1e300}, {6e299, 6e299}, {2.5e299, 2.5e299}, {DBL_MAX, DBL_MAX}};
	const double hb_lo[2] = {1e299, 1e299}, hb_hi[2] = {2e299, 2e299};
	static const double mlo[5][2] = {{-1e300, -1e300}, {-1e300, -1e300}, {5, 5}, {7, 7}, {1, 1}};
	static const double mhi[5][2] = {{1e300, 1e300}, {1e300, 1e300}, {6, 6}, {9, 9}, {4, 4}};
	const double mb_lo[2] = {2, 2}, mb_hi[2] = {3, 3};
	static uint64_t buf[128];
	xt_meta m = {.o.choose_p = 32};
	int was = xt_query_avx2;
	uint32_t mixed[2][2][2];
	for (int avx2 = 0; avx2 < (__builtin_cpu_supports("avx2") ? 2 : 1); avx2++) {
		xt_query_avx2 = avx2;
		for (int leaf = 0; leaf < 2; leaf++) {
			uint32_t got = 99;
			xt_view v = hand_node(buf, 3, hlo, hhi); /* covers, apart, covers smaller */
			cr_assert_eq(choose2(&m, &v, hb_lo, hb_hi, leaf, &got), 0);
			cr_assert_eq(got, 2, "AVX2 %d, leaf %d: entry %u", avx2, leaf, got);
			v = hand_node(buf, 2, hlo, hhi); /* covers, apart */
			cr_assert_eq(choose2(&m, &v, hb_lo, hb_hi, leaf, &got), 0);
			cr_assert_eq(got, 0, "AVX2 %d, leaf %d: entry %u", avx2, leaf, got);
			v = hand_node(buf, 4, hlo, hhi); /* one up to DBL_MAX: extents overflow */
			cr_assert_eq(choose2(&m, &v, hb_lo, hb_hi, leaf, &got), 0);
			cr_assert_lt(got, 4, "AVX2 %d, leaf %d: entry %u", avx2, leaf, got);
			for (int k = 0; k < 2; k++) {
				v = hand_node(buf, 4 + (uint32_t)k, mlo, mhi);
				cr_assert_eq(choose2(&m, &v, mb_lo, mb_hi, leaf, &got), 0);
				cr_assert_lt(got, 4u + (uint32_t)k, "AVX2 %d, leaf %d: entry %u", avx2,
					     leaf, got);
				mixed[avx2][leaf][k] = got;
				if (avx2)
					cr_assert_eq(got, mixed[0][leaf][k], "leaf %d: widths differ", leaf);
			}
		}
	}
	xt_query_avx2 = was;
}

/* ---- huge, tiny and signed-zero coordinates --------------------------------------- */
/* Any finite coordinates are valid input: boxes reaching +-DBL_MAX, areas
 * and margins that overflow to inf (differences of them NaN), subnormal
 * and zero widths, signed zeros, all in one tree. Inserts, deletes and
 * moves in batches; the checker after each batch; window and kNN queries
 * (callback and cursor) against a brute-force scan; and the same tree on
 * either ChooseSubtree width. */

/* A coordinate of one of several magnitudes: up to +-DBL_MAX, +-1e300,
 * +-1e154 (where squares and areas start to overflow), unit, tiny,
 * subnormal, or a signed zero. */
static double wild_coord(test_rng *r)
{
	double u = 2 * unit(r) - 1;
	switch (rng_below(r, 7)) {
	case 0: return u * DBL_MAX;
	case 1: return u * 1e300;
	case 2: return u * 1e154;
	case 3: return u;
	case 4: return u * 1e-300;
	case 5: return u * 1e-320; /* subnormal */
	default: return rng_below(r, 2) ? -0.0 : 0.0;
	}
}

/* A box with a wild corner and a width of 0, tiny or huge (clamped at
 * DBL_MAX); now and then the whole space, or [+0, -0]. */
static void wild_box(test_rng *r, uint32_t d, double *lo, double *hi)
{
	bool all = rng_below(r, 40) == 0;
	for (uint32_t k = 0; k < d; k++) {
		if (all) {
			lo[k] = -DBL_MAX, hi[k] = DBL_MAX;
			continue;
		}
		double x = wild_coord(r), w;
		switch (rng_below(r, 4)) {
		case 0: w = 0; break;
		case 1: w = fabs(wild_coord(r)); break;
		case 2: w = unit(r) * 1e300; break;
		default: w = unit(r) * DBL_MAX; break;
		}
		double y = x + w;
		lo[k] = x;
		hi[k] = y <= DBL_MAX ? y : DBL_MAX;
		if (x == 0 && w == 0)
			hi[k] = rng_below(r, 2) ? -0.0 : 0.0;
	}
}

/* Window (every predicate) and kNN (callback and cursor, every metric)
 * queries against the model. */
static void wild_queries(strata_store *s, const char *name, const model *m, test_rng *r, int n)
{
	uint32_t d = m->d;
	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	for (int q = 0; q < n; q++) {
		double lo[MAXD], hi[MAXD], pt[MAXD];
		wild_box(r, d, lo, hi);
		for (int p = 0; p < 3; p++) {
			ids got = {0}, want = {0};
			int rc = strata_xt_query(snap, name, d, (strata_xt_pred)p, lo, hi, on_hit, &got);
			cr_assert_eq(rc, 0, "query: %s", strata_strerror(rc));
			for (size_t i = 0; i < m->n; i++)
				if (pred_ok(m, &m->e[i], (strata_xt_pred)p, lo, hi))
					ids_push(&want, m->e[i].id, 0);
			cr_assert_eq(got.n, want.n, "pred %d: %zu hits, oracle %zu", p, got.n, want.n);
			if (got.n) {
				qsort(got.v, got.n, sizeof *got.v, cmp_u64);
				qsort(want.v, want.n, sizeof *want.v, cmp_u64);
				cr_assert_arr_eq(got.v, want.v, got.n * sizeof *got.v, "pred %d ids", p);
			}
			ids_free(&got);
			ids_free(&want);
		}
		for (uint32_t k = 0; k < d; k++)
			pt[k] = wild_coord(r);
		uint32_t k = 1 + (uint32_t)rng_below(r, 40);
		strata_xt_metric mt = (strata_xt_metric)rng_below(r, 3);
		hit *all = malloc((m->n + 1) * sizeof *all);
		for (size_t i = 0; i < m->n; i++) {
			all[i] = (hit){dist_of(d, pt, &m->e[i], mt), m->e[i].id};
			cr_assert(!isnan(all[i].dist));
		}
		qsort(all, m->n, sizeof *all, cmp_hit);
		size_t want = m->n < k ? m->n : k;
		ids got = {0};
		int rc = strata_xt_knn(snap, name, d, pt, k, mt, on_knn, &got);
		cr_assert_eq(rc, 0, "knn: %s", strata_strerror(rc));
		cr_assert_eq(got.n, want, "knn k=%u: %zu results, want %zu", k, got.n, want);
		strata_xt_cursor *c;
		cr_assert_eq(strata_xt_cursor_open(snap, name, d, pt, mt, &c), 0);
		for (size_t i = 0; i < want; i++) {
			hit h;
			cr_assert_eq(got.h[i].id, all[i].id, "knn metric %d result %zu: id %llu, want %llu",
				     mt, i, (unsigned long long)got.h[i].id,
				     (unsigned long long)all[i].id);
			cr_assert_eq(got.h[i].dist, all[i].dist, "knn result %zu: distance", i);
			rc = strata_xt_cursor_next(c, &h.id, &h.dist, NULL, NULL);
			cr_assert_eq(rc, 0, "cursor result %zu: %s", i, strata_strerror(rc));
			cr_assert(h.id == all[i].id && h.dist == all[i].dist, "cursor result %zu", i);
		}
		strata_xt_cursor_close(c);
		free(all);
		ids_free(&got);
	}
	strata_snapshot_close(snap);
}

/* The workload on one ChooseSubtree width; returns the shape of the tree
 * it grew (hash_node), before the deletes that empty it. */
static uint64_t wild_workload(uint32_t d, uint32_t node_size, uint64_t seed, int avx2)
{
	const char *name = "w";
	xt_query_avx2 = avx2;
	strata_store *s = test_open(NULL);
	strata_xt_options o = {.node_size = node_size};
	create(s, name, d, &o);
	test_rng r = {seed};
	model m = {.d = d};
	uint64_t next = 1;
	for (int b = 0; b < 16; b++) {
		strata_txn *t = begin(s, name);
		for (int i = 0; i < 250; i++) {
			uint64_t op = rng_below(&r, 10);
			double lo[MAXD], hi[MAXD];
			wild_box(&r, d, lo, hi);
			if (op < 7 || m.n == 0) {
				uint64_t id = next++;
				if (m.n && rng_below(&r, 20) == 0) { /* an exact duplicate */
					ment *e = &m.e[rng_below(&r, m.n)];
					id = e->id;
					memcpy(lo, e->lo, sizeof lo);
					memcpy(hi, e->hi, sizeof hi);
				}
				int rc = strata_xt_insert(t, name, d, lo, hi, id);
				cr_assert_eq(rc, 0, "insert %zu: %s", m.n, strata_strerror(rc));
				model_add(&m, id, lo, hi);
				continue;
			}
			size_t j = rng_below(&r, m.n);
			ment *e = &m.e[j];
			int rc = op < 9 ? strata_xt_delete(t, name, d, e->lo, e->hi, e->id)
					: strata_xt_move(t, name, d, e->lo, e->hi, lo, hi, e->id);
			cr_assert_eq(rc, 0, "%s: %s", op < 9 ? "delete" : "move", strata_strerror(rc));
			if (op < 9) {
				model_del(&m, j);
			} else {
				memcpy(e->lo, lo, sizeof lo);
				memcpy(e->hi, hi, sizeof hi);
			}
		}
		commit(t);
		check_tree(s, name, m.n);
		wild_queries(s, name, &m, &r, 6);
		strata_snapshot *snap;
		strata_xt_stats st;
		cr_assert_eq(strata_snapshot_open(s, &snap), 0);
		cr_assert_eq(strata_xt_stats_get(snap, name, &st), 0);
		cr_assert(isfinite(st.overlap) && st.overlap >= 0, "overlap %g", st.overlap);
		strata_snapshot_close(snap);
	}
	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	uint64_t h = (uint64_t)(d - 1) << 59 | (TEST_FNV_SEED & ((1ull << 59) - 1));
	cr_assert_eq(strata_xt_nodes(snap, name, hash_node, &h), 0);
	strata_snapshot_close(snap);
	while (m.n) { /* condense all the way down */
		strata_txn *t = begin(s, name);
		for (int i = 0; i < 300 && m.n; i++) {
			size_t j = rng_below(&r, m.n);
			int rc = strata_xt_delete(t, name, d, m.e[j].lo, m.e[j].hi, m.e[j].id);
			cr_assert_eq(rc, 0, "delete: %s", strata_strerror(rc));
			model_del(&m, j);
		}
		commit(t);
		check_tree(s, name, m.n);
		wild_queries(s, name, &m, &r, 2);
	}
	free(m.e);
	test_close(s);
	return h;
}

static void wild_case(uint32_t d, uint32_t node_size, uint64_t seed)
{
	int was = xt_query_avx2;
	uint64_t two = wild_workload(d, node_size, seed, 0);
	if (__builtin_cpu_supports("avx2")) {
		uint64_t four = wild_workload(d, node_size, seed, 1);
		cr_assert_eq(two, four, "%u-D: the AVX2 ChooseSubtree built another tree", d);
	}
	xt_query_avx2 = was;
}

Test(xtree, huge_tiny_and_signed_zero_boxes_2d) { wild_case(2, 512, 4242); }
Test(xtree, huge_tiny_and_signed_zero_boxes_3d) { wild_case(3, 1024, 4343); }

/* ChooseSubtree, the split and the reinsert order decide by comparisons
 * that scaling every coordinate by a power of two leaves as they are
 * (products and sums of scaled doubles are the scaled results, barring
 * overflow and underflow), and where areas or distances would overflow
 * they work on a copy scaled back into range. So data scaled by 2^600,
 * whose 2-D areas are past DBL_MAX, must grow the very tree the data
 * itself grows: the same nodes in the same order, with the same boxes once
 * scaled back. Before ChooseSubtree took such a copy it fell back to index
 * order there, and this failed. */
typedef struct shape_ctx {
	uint64_t h;
	uint32_t d;
	double unscale;
} shape_ctx;

static int hash_unscaled(void *ctx, uint32_t level, uint32_t blocks, uint32_t count,
			 const double *lo, const double *hi)
{
	shape_ctx *c = ctx;
	c->h = test_fnv(c->h, &level, sizeof level);
	c->h = test_fnv(c->h, &blocks, sizeof blocks);
	c->h = test_fnv(c->h, &count, sizeof count);
	for (uint32_t k = 0; k < c->d; k++) {
		double b[2] = {lo[k] * c->unscale, hi[k] * c->unscale};
		c->h = test_fnv(c->h, b, sizeof b);
	}
	return 0;
}

static uint64_t scaled_shape(uint32_t d, double scale, uint64_t seed)
{
	const char *name = "s";
	strata_store *s = test_open(NULL);
	strata_xt_options o = {.node_size = 512};
	create(s, name, d, &o);
	test_rng r = {seed};
	model m = {.d = d};
	for (int b = 0; b < 12; b++) {
		strata_txn *t = begin(s, name);
		for (int i = 0; i < 250; i++) {
			if (m.n > 100 && rng_below(&r, 8) == 0) {
				size_t j = rng_below(&r, m.n);
				cr_assert_eq(strata_xt_delete(t, name, d, m.e[j].lo, m.e[j].hi, m.e[j].id),
					     0);
				model_del(&m, j);
				continue;
			}
			double lo[MAXD], hi[MAXD];
			for (uint32_t k = 0; k < d; k++) {
				double a = (double)rng_below(&r, 1u << 20) / 1024;
				lo[k] = a * scale;
				hi[k] = (a + (double)rng_below(&r, 1u << 12) / 1024) * scale;
			}
			uint64_t id = (uint64_t)b * 1000 + (uint64_t)i + 1;
			cr_assert_eq(strata_xt_insert(t, name, d, lo, hi, id), 0);
			model_add(&m, id, lo, hi);
		}
		commit(t);
		check_tree(s, name, m.n);
	}
	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	shape_ctx c = {TEST_FNV_SEED, d, 1 / scale};
	cr_assert_eq(strata_xt_nodes(snap, name, hash_unscaled, &c), 0);
	strata_snapshot_close(snap);
	free(m.e);
	test_close(s);
	return c.h;
}

static void scale_case(uint32_t d)
{
	int was = xt_query_avx2;
	for (int avx2 = 0; avx2 <= (__builtin_cpu_supports("avx2") ? 1 : 0); avx2++) {
		xt_query_avx2 = avx2;
		uint64_t plain = scaled_shape(d, 1, 77 + d);
		cr_assert_eq(scaled_shape(d, 0x1p600, 77 + d), plain,
			     "%u-D: coordinates times 2^600 grew another tree", d);
		/* Scaled down as far as no area or overlap underflows (tiny
		 * coordinates, whose areas do, may grow another valid tree). */
		cr_assert_eq(scaled_shape(d, 0x1p-200, 77 + d), plain,
			     "%u-D: coordinates times 2^-200 grew another tree", d);
	}
	xt_query_avx2 = was;
}

Test(xtree, a_power_of_two_scale_grows_the_same_tree_2d) { scale_case(2); }
Test(xtree, a_power_of_two_scale_grows_the_same_tree_3d) { scale_case(3); }

/* Every entry so far from the query point that its L2 distance is inf
 * (gaps of 1e300 square past DBL_MAX): all tie, so kNN returns the k
 * least ids at distance inf, the cursor likewise. The greedy first
 * descent found no child nearer than inf and once read its own node again
 * as a child (ECORRUPT). */
Test(xtree, knn_when_every_distance_overflows)
{
	strata_store *s = test_open(NULL);
	create(s, "f", 2, NULL);
	model m = {.d = 2};
	strata_txn *t = begin(s, "f");
	for (uint64_t i = 0; i < 500; i++) {
		double p[2] = {1e300 * (double)(1 + i % 25), 1e300 * (double)(1 + i / 25)};
		cr_assert_eq(strata_xt_insert(t, "f", 2, p, NULL, 1000 - i), 0);
		model_add(&m, 1000 - i, p, p);
	}
	commit(t);
	check_tree(s, "f", m.n);
	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	const double far[2] = {-1e300, -DBL_MAX};
	for (int mt = 0; mt < 3; mt++) {
		hit all[500];
		for (size_t i = 0; i < m.n; i++)
			all[i] = (hit){dist_of(2, far, &m.e[i], (strata_xt_metric)mt), m.e[i].id};
		qsort(all, m.n, sizeof *all, cmp_hit);
		ids got = {0};
		int rc = strata_xt_knn(snap, "f", 2, far, 7, (strata_xt_metric)mt, on_knn, &got);
		cr_assert_eq(rc, 0, "metric %d: %s", mt, strata_strerror(rc));
		cr_assert_eq(got.n, 7);
		strata_xt_cursor *c;
		cr_assert_eq(strata_xt_cursor_open(snap, "f", 2, far, (strata_xt_metric)mt, &c), 0);
		for (size_t i = 0; i < 7; i++) {
			hit h;
			cr_assert(got.h[i].id == all[i].id && got.h[i].dist == all[i].dist,
				  "metric %d result %zu: %llu at %g, want %llu at %g", mt, i,
				  (unsigned long long)got.h[i].id, got.h[i].dist,
				  (unsigned long long)all[i].id, all[i].dist);
			cr_assert_eq(strata_xt_cursor_next(c, &h.id, &h.dist, NULL, NULL), 0);
			cr_assert(h.id == all[i].id && h.dist == all[i].dist, "cursor result %zu", i);
		}
		if (mt == STRATA_XT_L2)
			cr_assert(isinf(all[m.n - 1].dist) && isinf(all[0].dist));
		strata_xt_cursor_close(c);
		ids_free(&got);
	}
	strata_snapshot_close(snap);
	free(m.e);
	test_close(s);
}
