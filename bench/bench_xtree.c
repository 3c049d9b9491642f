/*
 * bench_xtree.c — the `xtree` suite: the X-tree against a brute-force scan
 * and the spatial peers, in the same run, on the same data and queries.
 *
 * Figures (issue 4 item 11):
 *   2d_*         100k uniform 2-D boxes (sides up to 0.001): insert build
 *                (1000 inserts per commit) and STR bulk build, per entry;
 *                window queries of 0.001 %, 0.01 %, 0.1 % and 1 % of the
 *                space; kNN k = 1, 10, 100; nodes read per kNN(10);
 *                DURABLE (a bulk-loaded tree in a store directory, reopened)
 *                against IN_MEMORY. Peers: Boost.Geometry rstar<16>
 *                (insert-built and packed), libspatialindex R* (insert-
 *                built), SQLite R*Tree (windows), and the scan.
 *   {8,16,32}d_* 100k points, uniform and Gaussian clusters, bulk-loaded:
 *                kNN(10) against the scan.
 * Every query set is first run once on every system and the results
 * cross-checked (hit counts; sums of kNN ids): a mismatch stops the run.
 * SQLite stores float32 rounded outward, so its counts may be larger.
 * --quick: 20k entries and fewer queries.
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

/* Uniform, or 10 Gaussian clusters (sigma 0.05); boxes: sides up to `side`. */
static void gen(data *D, uint32_t d, size_t n, bool clustered, double side, uint64_t seed)
{
	double c[10][MAXD];
	D->d = d, D->n = n;
	D->lo = bench_xmalloc(n * d * sizeof(double));
	D->hi = bench_xmalloc(n * d * sizeof(double));
	D->id = bench_xmalloc(n * sizeof(uint64_t));
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
		D->id[i] = i + 1;
	}
}

static void data_free(data *D)
{
	free(D->lo), free(D->hi), free(D->id);
}

/* Query windows covering `sel` of the unit space (2-D), or kNN points:
 * uniform, or (clustered) near random entries. */
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
typedef struct xt {
	strata_store *st;
	strata_snapshot *snap;
	const data *q;
	size_t next;
	uint32_t k;
	uint64_t sum;
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
	(void)dist, (void)lo, (void)hi;
	*(uint64_t *)ctx += id;
	return 0;
}

static uint64_t run_xt_window(void *arg, uint64_t ops)
{
	xt *x = arg;
	uint32_t d = x->q->d;
	uint64_t t0 = bench_now_ns();
	for (uint64_t i = 0; i < ops; i++, x->next = (x->next + 1) % x->q->n)
		BENCH_CHECK(strata_xt_query(x->snap, NAME, d, STRATA_XT_INTERSECTS,
					    x->q->lo + x->next * d, x->q->hi + x->next * d, count_hit,
					    &x->sum),
			    "strata_xt_query");
	return bench_now_ns() - t0;
}

static uint64_t run_xt_knn(void *arg, uint64_t ops)
{
	xt *x = arg;
	uint32_t d = x->q->d;
	uint64_t t0 = bench_now_ns();
	for (uint64_t i = 0; i < ops; i++, x->next = (x->next + 1) % x->q->n)
		BENCH_CHECK(strata_xt_knn(x->snap, NAME, d, x->q->lo + x->next * d, x->k,
					  STRATA_XT_L2, sum_knn, &x->sum),
			    "strata_xt_knn");
	return bench_now_ns() - t0;
}

/* ---- the brute-force scan ------------------------------------------------------------- */
typedef struct scan {
	const data *D;
	const data *q;
	size_t next;
	uint32_t k;
	uint64_t sum;
	double *best; /* k distances, ascending */
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
	for (uint32_t j = 0; j < m; j++)
		sum += s->bid[j];
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
	uint64_t t0 = bench_now_ns();
	for (uint64_t i = 0; i < ops; i++, p->next = (p->next + 1) % p->q->n)
		p->sum += peer_boost_window(p->h, p->q->lo + p->next * 2, p->q->hi + p->next * 2);
	return bench_now_ns() - t0;
}

static uint64_t run_boost_knn(void *arg, uint64_t ops)
{
	peer *p = arg;
	uint64_t t0 = bench_now_ns();
	for (uint64_t i = 0; i < ops; i++, p->next = (p->next + 1) % p->q->n)
		p->sum += peer_boost_knn(p->h, p->q->lo + p->next * 2, p->k);
	return bench_now_ns() - t0;
}

static uint64_t run_boost_build(void *arg, uint64_t ops, int packed)
{
	const data *D = arg;
	(void)ops;
	uint64_t t0 = bench_now_ns();
	peer_boost *b = peer_boost_build(D->lo, D->hi, D->id, D->n, packed);
	uint64_t t1 = bench_now_ns();
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

static void cross_check(bench_session *s, const char *fig, const char *who, uint64_t got,
			uint64_t want, bool superset_ok)
{
	if (got == want || (superset_ok && got >= want))
		return;
	fprintf(stderr, "strata-bench xtree: %s: %s gives %llu, the scan %llu\n", fig, who,
		(unsigned long long)got, (unsigned long long)want);
	exit(1);
	(void)s;
}

/* ---- the 2-D part ------------------------------------------------------------------------ */
typedef struct sys2d {
	xt x;
	scan sc;
	peer boost, sidx, sqlrt;
	bool have_boost, have_sidx, have_sqlrt;
} sys2d;

static void window_figs(bench_session *s, sys2d *y, const data *D, double sel, uint64_t seed)
{
	char name[40], pname[BENCH_NAME_MAX];
	snprintf(name, sizeof name, "2d_window_%g%%", sel * 100);
	if (!bench_wants(s, name))
		return;
	data Q;
	gen_queries(&Q, D, s->opts.quick ? 200 : 1000, sel, false, seed);
	uint64_t ops = Q.n;
	y->x.q = y->sc.q = y->boost.q = y->sidx.q = y->sqlrt.q = &Q;
	uint64_t want = one_pass(run_scan_window, &y->sc, &y->sc.sum, &y->sc.next, Q.n);
	cross_check(s, name, "xtree", one_pass(run_xt_window, &y->x, &y->x.sum, &y->x.next, Q.n),
		    want, false);
	bench_measure(s, name, NULL, run_xt_window, &y->x, ops);
	snprintf(pname, sizeof pname, "%s_scan", name);
	bench_measure(s, pname, "scan", run_scan_window, &y->sc, ops);
#ifdef STRATA_BENCH_HAVE_BOOST
	snprintf(pname, sizeof pname, "%s_boost", name);
	cross_check(s, pname, "boost", one_pass(run_boost_window, &y->boost, &y->boost.sum,
						&y->boost.next, Q.n), want, false);
	bench_measure(s, pname, "boost", run_boost_window, &y->boost, ops);
	if (sel == 0.0001)
		bench_add_ratio(s, name, pname);
#endif
#ifdef STRATA_BENCH_HAVE_SIDX
	if (y->have_sidx) {
		snprintf(pname, sizeof pname, "%s_sidx", name);
		cross_check(s, pname, "libspatialindex", one_pass(run_sidx_window, &y->sidx,
				&y->sidx.sum, &y->sidx.next, Q.n), want, false);
		bench_measure(s, pname, "libspatialindex", run_sidx_window, &y->sidx, ops);
	}
#endif
#ifdef STRATA_BENCH_HAVE_SQLITE
	if (y->have_sqlrt) {
		snprintf(pname, sizeof pname, "%s_sqlite", name);
		cross_check(s, pname, "sqlite", one_pass(run_sqlrt_window, &y->sqlrt, &y->sqlrt.sum,
				&y->sqlrt.next, Q.n), want, true);
		bench_measure(s, pname, "sqlite", run_sqlrt_window, &y->sqlrt, ops);
	}
#endif
	bench_note(s, "%s: %.1f hits per window (scan)", name, (double)want / (double)Q.n);
	data_free(&Q);
}

static void knn_figs(bench_session *s, sys2d *y, const data *D, uint32_t k, uint64_t seed)
{
	char name[40], pname[BENCH_NAME_MAX];
	snprintf(name, sizeof name, "2d_knn%u", k);
	if (!bench_wants(s, name))
		return;
	data Q;
	gen_queries(&Q, D, s->opts.quick ? 200 : 1000, 0, false, seed);
	y->x.q = y->sc.q = y->boost.q = y->sidx.q = &Q;
	y->x.k = y->sc.k = y->boost.k = y->sidx.k = k;
	uint64_t want = one_pass(run_scan_knn, &y->sc, &y->sc.sum, &y->sc.next, Q.n);
	cross_check(s, name, "xtree", one_pass(run_xt_knn, &y->x, &y->x.sum, &y->x.next, Q.n), want,
		    false);
	bench_measure(s, name, NULL, run_xt_knn, &y->x, Q.n);
	snprintf(pname, sizeof pname, "%s_scan", name);
	bench_measure(s, pname, "scan", run_scan_knn, &y->sc, s->opts.quick ? 50 : 200);
#ifdef STRATA_BENCH_HAVE_BOOST
	snprintf(pname, sizeof pname, "%s_boost", name);
	cross_check(s, pname, "boost", one_pass(run_boost_knn, &y->boost, &y->boost.sum,
						&y->boost.next, Q.n), want, false);
	bench_measure(s, pname, "boost", run_boost_knn, &y->boost, Q.n);
	if (k == 10)
		bench_add_ratio(s, name, pname);
#endif
#ifdef STRATA_BENCH_HAVE_SIDX
	if (y->have_sidx) { /* it may return ties beyond k: ids are summed over k only */
		snprintf(pname, sizeof pname, "%s_sidx", name);
		bench_measure(s, pname, "libspatialindex", run_sidx_knn, &y->sidx, Q.n / 4);
	}
#endif
	data_free(&Q);
}

/* Nodes read per kNN(10): the cursor counts them. */
static void knn_nodes(bench_session *s, sys2d *y, const data *D, const char *name)
{
	if (!bench_wants(s, name))
		return;
	data Q;
	gen_queries(&Q, D, 200, 0, false, 99);
	double v[1] = {0};
	for (size_t i = 0; i < Q.n; i++) {
		strata_xt_cursor *c;
		bench_check(strata_xt_cursor_open(y->x.snap, NAME, D->d, Q.lo + i * D->d, STRATA_XT_L2,
						  &c), "cursor_open");
		for (int j = 0; j < 10; j++)
			bench_check(strata_xt_cursor_next(c, NULL, NULL, NULL, NULL), "cursor_next");
		v[0] += (double)strata_xt_cursor_nodes(c);
		strata_xt_cursor_close(c);
	}
	v[0] /= (double)Q.n;
	bench_record(s, name, "nodes", NULL, v, 1);
	data_free(&Q);
}

static void build_figs(bench_session *s, const data *D)
{
	uint64_t n = D->n;
	if (bench_wants(s, "2d_insert_build"))
		bench_measure(s, "2d_insert_build", NULL, run_insert_build, (void *)D, n);
	if (bench_wants(s, "2d_bulk_build")) {
		const bench_fig *f = bench_measure(s, "2d_bulk_build", NULL, run_bulk_build, (void *)D, n);
		bench_note(s, "2d_bulk_build: %.1f ms for %llu entries (median)", f->median * n / 1e6,
			   (unsigned long long)n);
	}
#ifdef STRATA_BENCH_HAVE_BOOST
	if (bench_wants(s, "2d_insert_build_boost")) {
		bench_measure(s, "2d_insert_build_boost", "boost", run_boost_insert, (void *)D, n);
		bench_add_ratio(s, "2d_insert_build", "2d_insert_build_boost");
	}
	if (bench_wants(s, "2d_bulk_build_boost")) {
		bench_measure(s, "2d_bulk_build_boost", "boost", run_boost_packed, (void *)D, n);
		bench_add_ratio(s, "2d_bulk_build", "2d_bulk_build_boost");
	}
#endif
}

/* Query figures of one bulk-loaded tree (IN_MEMORY or DURABLE). */
static void str_figs(bench_session *s, strata_store *st, const data *D, const char *tag)
{
	char name[BENCH_NAME_MAX];
	xt x = {st};
	bench_check(strata_snapshot_open(st, &x.snap), "snapshot");
	data Q;
	gen_queries(&Q, D, s->opts.quick ? 200 : 1000, 0.0001, false, 5);
	x.q = &Q;
	snprintf(name, sizeof name, "2d_window_0.01%%_str_%s", tag);
	if (bench_wants(s, name))
		bench_measure(s, name, NULL, run_xt_window, &x, Q.n);
	for (size_t i = 0; i < Q.n * 2; i++) /* kNN at the windows' corners */
		Q.hi[i] = Q.lo[i];
	x.k = 10;
	snprintf(name, sizeof name, "2d_knn10_str_%s", tag);
	if (bench_wants(s, name))
		bench_measure(s, name, NULL, run_xt_knn, &x, Q.n);
	data_free(&Q);
	strata_snapshot_close(x.snap);
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(path);
}

static void durable_figs(bench_session *s, const data *D)
{
	strata_store *mem = store_mem();
	xt_bulk(mem, D);
	str_figs(s, mem, D, "mem");
	bench_check(strata_close(mem), "close");
	const char *tmp = getenv("TMPDIR");
	char dir[512];
	snprintf(dir, sizeof dir, "%s/strata-bench-xt-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		bench_note(s, "durable figures skipped: mkdtemp: %s", strerror(errno));
		return;
	}
	strata_options o;
	strata_options_init(&o);
	o.mode = STRATA_DURABLE;
	o.path = dir;
	o.flags = STRATA_OPEN_CREATE;
	strata_store *st;
	bench_check(strata_open(&o, &st), "strata_open DURABLE");
	xt_bulk(st, D);
	bench_check(strata_close(st), "close");
	bench_check(strata_open(&o, &st), "strata_open DURABLE (reopen)");
	str_figs(s, st, D, "durable");
	bench_check(strata_close(st), "close");
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	bench_add_ratio(s, "2d_window_0.01%_str_durable", "2d_window_0.01%_str_mem");
	bench_add_ratio(s, "2d_knn10_str_durable", "2d_knn10_str_mem");
}

static void peers_build(bench_session *s, sys2d *y, const data *D)
{
#ifdef STRATA_BENCH_HAVE_BOOST
	y->boost.h = peer_boost_build(D->lo, D->hi, D->id, D->n, 0);
#endif
#ifdef STRATA_BENCH_HAVE_SIDX
	if (bench_wants(s, "2d_insert_build_sidx")) {
		uint64_t t0 = bench_now_ns();
		y->sidx.h = peer_sidx_build(2, D->lo, D->hi, D->id, D->n);
		double v = (double)(bench_now_ns() - t0) / (double)D->n;
		y->have_sidx = y->sidx.h != NULL;
		if (y->have_sidx)
			bench_record(s, "2d_insert_build_sidx", "ns/op", "libspatialindex", &v, 1);
	}
#endif
#ifdef STRATA_BENCH_HAVE_SQLITE
	y->sqlrt.h = peer_sqlrt_build(2, D->lo, D->hi, D->id, D->n);
	y->have_sqlrt = y->sqlrt.h != NULL;
#endif
	(void)s;
}

static void peers_free(sys2d *y)
{
#ifdef STRATA_BENCH_HAVE_BOOST
	peer_boost_free(y->boost.h);
#endif
#ifdef STRATA_BENCH_HAVE_SIDX
	if (y->have_sidx)
		peer_sidx_free(y->sidx.h);
#endif
#ifdef STRATA_BENCH_HAVE_SQLITE
	if (y->have_sqlrt)
		peer_sqlrt_free(y->sqlrt.h);
#endif
	(void)y;
}

static void suite_2d(bench_session *s, size_t n)
{
	data D;
	gen(&D, 2, n, false, 0.001, 1);
	build_figs(s, &D);
	sys2d y = {0};
	y.x.st = store_mem();
	xt_inserts(y.x.st, &D);
	bench_check(strata_snapshot_open(y.x.st, &y.x.snap), "snapshot");
	y.sc.D = &D;
	y.sc.best = bench_xmalloc(100 * sizeof(double));
	y.sc.bid = bench_xmalloc(100 * sizeof(uint64_t));
	peers_build(s, &y, &D);
	const double sels[] = {0.00001, 0.0001, 0.001, 0.01};
	for (int i = 0; i < 4; i++)
		window_figs(s, &y, &D, sels[i], 10 + (uint64_t)i);
	const uint32_t ks[] = {1, 10, 100};
	for (int i = 0; i < 3; i++)
		knn_figs(s, &y, &D, ks[i], 20 + (uint64_t)i);
	knn_nodes(s, &y, &D, "2d_knn10_nodes");
	peers_free(&y);
	strata_snapshot_close(y.x.snap);
	bench_check(strata_close(y.x.st), "close");
	free(y.sc.best), free(y.sc.bid);
	durable_figs(s, &D);
	data_free(&D);
}

/* ---- high dimensions ------------------------------------------------------------------- */
static void suite_hd(bench_session *s, uint32_t d, bool clustered, size_t n)
{
	char name[40], sname[BENCH_NAME_MAX];
	snprintf(name, sizeof name, "%ud_%s_knn10", d, clustered ? "clustered" : "uniform");
	snprintf(sname, sizeof sname, "%s_scan", name);
	if (!bench_wants(s, name))
		return;
	data D, Q;
	gen(&D, d, n, clustered, 0, 100 + d);
	gen_queries(&Q, &D, s->opts.quick ? 50 : 200, 0, clustered, 200 + d);
	xt x = {store_mem(), NULL, &Q, 0, 10, 0};
	xt_bulk(x.st, &D);
	bench_check(strata_snapshot_open(x.st, &x.snap), "snapshot");
	scan sc = {&D, &Q, 0, 10, 0, bench_xmalloc(10 * sizeof(double)),
		   bench_xmalloc(10 * sizeof(uint64_t))};
	uint64_t want = one_pass(run_scan_knn, &sc, &sc.sum, &sc.next, Q.n);
	cross_check(s, name, "xtree", one_pass(run_xt_knn, &x, &x.sum, &x.next, Q.n), want, false);
	bench_measure(s, name, NULL, run_xt_knn, &x, Q.n);
	bench_measure(s, sname, "scan", run_scan_knn, &sc, Q.n / 2);
	bench_add_ratio(s, name, sname);
	snprintf(name, sizeof name, "%ud_%s_knn10_nodes", d, clustered ? "clustered" : "uniform");
	knn_nodes(s, &(sys2d){.x = x}, &D, name);
	strata_snapshot_close(x.snap);
	bench_check(strata_close(x.st), "close");
	free(sc.best), free(sc.bid);
	data_free(&D), data_free(&Q);
}

int bench_xtree(bench_session *s)
{
	size_t n = s->opts.quick ? 20000 : 100000;
	suite_2d(s, n);
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
	bench_note(s, "peers: boost rstar<16> and libspatialindex R* insert-built; SQLite R*Tree "
		      "windows only (float32, superset allowed in the cross-check)");
	return 0;
}
