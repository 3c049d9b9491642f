/*
 * bench_bptree.c — the `bptree` suite: the B+tree against LMDB doing the
 * same work in the same run. Keys are 12 bytes ("user" + a big-endian
 * 64-bit number: a shared prefix, memcmp order = number order), values 100
 * bytes. A tree of N keys holds the numbers i * 1024, i < N; inserts add
 * numbers in between (few repeat), spread over the whole key range. How to
 * run it and what it measured: design/BPTREE.md.
 *
 * Figures, for N = 1M and 10M (--quick: 100k):
 *   load_N_*        sequential bulk load of N keys into an empty tree
 *                   (strata_bpt_load; LMDB: MDB_APPEND in one txn), ns/key
 *                   including the commit; a fresh store each run;
 *   get_N_*         random gets of existing keys through one snapshot /
 *                   read txn per batch, ns/get;
 *   scan_N_*        seek to a random key + read 100 entries, ns/scan;
 *   insert_N_*      random new keys, 1000 puts per commit, ns/put: Strata
 *                   IN_MEMORY vs LMDB MDB_NOSYNC (neither syncs), and
 *                   Strata DURABLE SYNC vs LMDB synced (one sync per 1000);
 *   mixed_N_*       gets/s of 1 and 2 reader threads while one writer
 *                   commits batches of 1000 inserts (Strata IN_MEMORY).
 * Inserts grow the trees run after run (each run adds its keys).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "bptree/bpt.h" /* bpt_full_separators: the separator figure */
#include "peer_lmdb_kv.h"
#include "strata/bptree.h"
#include "suites.h"

#define KLEN 12u
#define VLEN 100u
#define BATCH 1000u
#define SCAN 100u

static const char *const TREE = "bench";

static void key_of(uint64_t x, uint8_t *k)
{
	memcpy(k, "user", 4);
	for (int i = 0; i < 8; i++)
		k[4 + i] = (uint8_t)(x >> (56 - 8 * i));
}

#define STRIDE 1024u

/* The i-th key of a loaded tree. */
static void loaded_key(uint64_t i, uint8_t *k)
{
	key_of(i * STRIDE, k);
}

static uint64_t rng(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* ops key numbers: of loaded keys, or (fresh) between them. */
static uint64_t *key_numbers(uint64_t ops, uint64_t n, bool fresh, uint64_t seed)
{
	uint64_t *a = bench_xmalloc(ops * sizeof *a);
	for (uint64_t i = 0; i < ops; i++) {
		uint64_t r = rng(&seed);
		a[i] = (r % n) * STRIDE + (fresh ? 1 + (r >> 40) % (STRIDE - 1) : 0);
	}
	return a;
}

/* STRATA_BPT_FIGS (environment): a comma-separated list of name prefixes,
 * e.g. "get_10M,insert_10M_"; only figures starting with one of them run
 * (peers included), and nothing is loaded for the others. --only still
 * applies on top. For before/after comparisons of a few figures. */
static bool figs_allow(const char *name)
{
	const char *f = getenv("STRATA_BPT_FIGS");
	if (!f || !*f)
		return true;
	while (*f) {
		size_t len = strcspn(f, ",");
		if (len && strncmp(name, f, len) == 0)
			return true;
		f += len + (f[len] == ',');
	}
	return false;
}

static bool wants(bench_session *s, const char *name)
{
	return figs_allow(name) && bench_wants(s, name);
}

/* ---- the Strata side ------------------------------------------------------- */
typedef struct sx {
	strata_store *st;
	uint64_t n;          /* keys loaded */
	const uint64_t *idx; /* key numbers of the next batch */
	uint8_t val[VLEN];
	unsigned txn_flags;
} sx;

typedef struct src {
	uint64_t i, n;
	uint8_t key[KLEN], val[VLEN];
} src;

static int src_next(void *ctx, const void **k, size_t *kl, const void **v, size_t *vl)
{
	src *s = ctx;
	if (s->i == s->n)
		return 0;
	loaded_key(s->i++, s->key);
	*k = s->key;
	*kl = KLEN;
	*v = s->val;
	*vl = VLEN;
	return 1;
}

/* Creates the tree and bulk loads n keys; returns the ns of load + commit. */
static uint64_t sx_load(strata_store *st, uint64_t n)
{
	strata_txn *t;
	src s = {.n = n};
	memset(s.val, 0x61, VLEN);
	uint64_t t0 = bench_now_ns();
	bench_check(strata_txn_begin(st, &TREE, 1, 0, &t), "txn_begin");
	bench_check(strata_bpt_create(t, TREE, NULL), "bpt_create");
	bench_check(strata_bpt_load(t, TREE, src_next, &s), "bpt_load");
	bench_check(strata_txn_commit(t, NULL), "commit");
	return bench_now_ns() - t0;
}

static strata_store *mem_store(void)
{
	strata_store *st;
	bench_check(strata_open(NULL, &st), "strata_open");
	return st;
}

static uint64_t sx_load_fresh(void *arg, uint64_t ops)
{
	(void)arg;
	strata_store *st = mem_store();
	uint64_t ns = sx_load(st, ops);
	bench_check(strata_close(st), "strata_close");
	return ns;
}

static uint64_t sx_get(void *arg, uint64_t ops)
{
	sx *x = arg;
	uint8_t key[KLEN];
	strata_snapshot *snap;
	uint64_t sum = 0, t0 = bench_now_ns();
	BENCH_CHECK(strata_snapshot_open(x->st, &snap), "snapshot_open");
	for (uint64_t i = 0; i < ops; i++) {
		const void *v;
		size_t vl;
		key_of(x->idx[i], key);
		BENCH_CHECK(strata_bpt_get(snap, TREE, key, KLEN, &v, &vl), "bpt_get");
		sum += ((const uint8_t *)v)[0];
	}
	strata_snapshot_close(snap);
	uint64_t ns = bench_now_ns() - t0;
	bench_sink += sum;
	return ns;
}

static uint64_t sx_scan(void *arg, uint64_t ops)
{
	sx *x = arg;
	uint8_t key[KLEN];
	strata_snapshot *snap;
	strata_bpt_cursor *c;
	uint64_t sum = 0, t0 = bench_now_ns();
	BENCH_CHECK(strata_snapshot_open(x->st, &snap), "snapshot_open");
	BENCH_CHECK(strata_bpt_cursor_open(snap, TREE, &c), "cursor_open");
	for (uint64_t i = 0; i < ops; i++) {
		key_of(x->idx[i], key);
		int rc = strata_bpt_cursor_seek(c, key, KLEN);
		for (unsigned j = 0; j < SCAN && rc == 0; j++) {
			const void *k, *v;
			size_t kl, vl;
			BENCH_CHECK(strata_bpt_cursor_get(c, &k, &kl, &v, &vl), "cursor_get");
			sum += ((const uint8_t *)v)[0] + kl;
			rc = strata_bpt_cursor_next(c);
		}
	}
	strata_bpt_cursor_close(c);
	strata_snapshot_close(snap);
	uint64_t ns = bench_now_ns() - t0;
	bench_sink += sum;
	return ns;
}

static uint64_t sx_insert(void *arg, uint64_t ops)
{
	sx *x = arg;
	uint8_t key[KLEN];
	uint64_t t0 = bench_now_ns();
	for (uint64_t i = 0; i < ops;) {
		strata_txn *t;
		BENCH_CHECK(strata_txn_begin(x->st, &TREE, 1, x->txn_flags, &t), "txn_begin");
		for (unsigned j = 0; j < BATCH && i < ops; j++, i++) {
			key_of(x->idx[i], key);
			BENCH_CHECK(strata_bpt_put(t, TREE, key, KLEN, x->val, VLEN, 0), "bpt_put");
		}
		BENCH_CHECK(strata_txn_commit(t, NULL), "commit");
	}
	uint64_t ns = bench_now_ns() - t0;
	x->idx += ops; /* the next batch inserts other keys */
	return ns;
}

/* ---- the mixed workload: readers while a writer commits --------------------- */
#define MIXED_KEYS 2000000u /* the writer's fresh keys; it wraps around (overwrites) */

typedef struct mixed {
	sx *x;
	const uint64_t *keys; /* MIXED_KEYS key numbers for the writer */
	atomic_bool stop;
	atomic_uint_fast64_t gets;
} mixed;

typedef struct mixed_reader_arg {
	mixed *m;
	uint64_t seed;
} mixed_reader_arg;

static void *mixed_reader(void *arg)
{
	mixed_reader_arg *a = arg;
	mixed *m = a->m;
	uint64_t seed = a->seed, n = 0;
	uint8_t key[KLEN];
	while (!atomic_load_explicit(&m->stop, memory_order_relaxed)) {
		strata_snapshot *snap;
		BENCH_CHECK(strata_snapshot_open(m->x->st, &snap), "snapshot_open");
		for (int i = 0; i < 1000; i++) {
			const void *v;
			size_t vl;
			key_of((rng(&seed) % m->x->n) * STRIDE, key);
			BENCH_CHECK(strata_bpt_get(snap, TREE, key, KLEN, &v, &vl), "bpt_get");
			n++;
		}
		strata_snapshot_close(snap);
	}
	atomic_fetch_add(&m->gets, n);
	return NULL;
}

static void *mixed_writer(void *arg)
{
	mixed *m = arg;
	for (uint64_t at = 0; !atomic_load_explicit(&m->stop, memory_order_relaxed);
	     at = (at + BATCH) % (MIXED_KEYS - MIXED_KEYS % BATCH)) {
		m->x->idx = m->keys + at;
		sx_insert(m->x, BATCH);
	}
	return NULL;
}

/* Reader gets/s over run_ns with `readers` threads and one writer. */
static double mixed_once(sx *x, const uint64_t *keys, unsigned readers, uint64_t run_ns)
{
	mixed m = {.x = x, .keys = keys};
	mixed_reader_arg args[2];
	pthread_t th[2], w;
	if (pthread_create(&w, NULL, mixed_writer, &m))
		bench_check(-EAGAIN, "pthread_create");
	for (unsigned i = 0; i < readers; i++) {
		args[i] = (mixed_reader_arg){&m, 0x5eed + i};
		if (pthread_create(&th[i], NULL, mixed_reader, &args[i]))
			bench_check(-EAGAIN, "pthread_create");
	}
	uint64_t t0 = bench_now_ns();
	usleep((useconds_t)(run_ns / 1000));
	atomic_store(&m.stop, true);
	for (unsigned i = 0; i < readers; i++)
		pthread_join(th[i], NULL);
	uint64_t t1 = bench_now_ns();
	pthread_join(w, NULL);
	return (double)atomic_load(&m.gets) * 1e9 / (double)(t1 - t0);
}

static void fig_mixed(bench_session *s, sx *x, uint64_t n, const char *label)
{
	char name[2][BENCH_NAME_MAX];
	bool want[2];
	for (unsigned r = 0; r < 2; r++) {
		snprintf(name[r], sizeof name[r], "mixed_%s_%ur_1w", label, r + 1);
		want[r] = wants(s, name[r]);
	}
	if (!want[0] && !want[1])
		return;
	int runs = s->opts.runs < 64 ? s->opts.runs : 64;
	double v[2][64];
	uint64_t *keys = key_numbers(MIXED_KEYS, n, true, 99);
	for (int k = 0; k < runs; k++)
		for (unsigned r = 0; r < 2; r++)
			if (want[r])
				v[r][k] = mixed_once(x, keys, r + 1,
						     s->opts.quick ? 100000000u : 500000000u);
	for (unsigned r = 0; r < 2; r++)
		if (want[r])
			bench_record(s, name[r], "gets/s", NULL, v[r], runs);
	free(keys);
}

/* ---- one size: every figure ---------------------------------------------------- */
typedef struct size_run {
	uint64_t n;
	const char *label; /* "1M", "10M", "100k" */
	char tmp[256];
} size_run;

static void fig_name(char *out, const char *what, const size_run *z, const char *who)
{
	snprintf(out, BENCH_NAME_MAX, "%s_%s_%s", what, z->label, who);
}

/* An LMDB environment sized for n keys (+ inserts), loaded unless !load. */
static lmdb_kv *lmdb_open_loaded(uint64_t n, bool nosync, bool load)
{
	lmdb_kv *p;
	const char *why = NULL;
	if (lmdb_kv_open(&p, n * 600 + (2ull << 30), nosync, KLEN, VLEN, key_of, &why)) {
		fprintf(stderr, "strata-bench: lmdb: %s\n", why);
		exit(1);
	}
	if (load)
		lmdb_kv_load(p, n, loaded_key);
	return p;
}

static void fig_load(bench_session *s, const size_run *z, bool lmdb)
{
	char a[BENCH_NAME_MAX], b[BENCH_NAME_MAX];
	fig_name(a, "load", z, "strata");
	fig_name(b, "load", z, "lmdb");
	if (wants(s, a))
		bench_measure(s, a, NULL, sx_load_fresh, NULL, z->n);
	if (lmdb && wants(s, b)) {
		double v[64];
		int runs = s->opts.runs < 64 ? s->opts.runs : 64;
		for (int r = 0; r < runs; r++) {
			lmdb_kv *fresh = lmdb_open_loaded(z->n, true, false);
			v[r] = (double)lmdb_kv_load(fresh, z->n, loaded_key) / (double)z->n;
			lmdb_kv_close(fresh);
		}
		bench_record(s, b, "ns/op", "lmdb", v, runs);
	}
	bench_add_ratio(s, a, b);
}

/* get, scan and insert on one loaded Strata store and one LMDB env. */
static void fig_pair(bench_session *s, const size_run *z, const char *what, sx *x,
		     lmdb_kv *lm, const char *lm_who, bench_fn sf, bench_fn lf, uint64_t ops,
		     bool fresh)
{
	char a[BENCH_NAME_MAX], b[BENCH_NAME_MAX];
	fig_name(a, what, z, x->txn_flags ? "strata_sync" : "strata");
	fig_name(b, what, z, lm_who);
	bool wa = wants(s, a), wb = lm && wants(s, b);
	if (!wa && !wb)
		return;
	/* Enough fresh keys for the warm-up, the runs and their reruns. */
	uint64_t total = fresh ? ops * (5u * (uint64_t)s->opts.runs + 2) : ops;
	uint64_t *idx = key_numbers(total, z->n, fresh, 7);
	x->idx = idx;
	if (wa)
		bench_measure(s, a, NULL, sf, x, ops);
	if (wb) {
		lmdb_kv_set_indexes(lm, idx);
		bench_measure(s, b, "lmdb", lf, lm, ops);
	}
	bench_add_ratio(s, a, b);
	free(idx);
}

static bool wants_prefix(bench_session *s, const size_run *z, const char *what)
{
	char n[4][BENCH_NAME_MAX];
	fig_name(n[0], what, z, "strata");
	fig_name(n[1], what, z, "lmdb");
	fig_name(n[2], what, z, "strata_sync");
	fig_name(n[3], what, z, "lmdb_sync");
	bool any = false;
	for (int i = 0; i < 4; i++)
		any |= wants(s, n[i]);
	return any;
}

static void make_tmpdir(char *out, size_t n)
{
	const char *base = getenv("TMPDIR");
	snprintf(out, n, "%s/strata-bench-bptree-XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(out)) {
		perror("strata-bench: mkdtemp");
		exit(1);
	}
}

/* DURABLE SYNC inserts against synced LMDB. */
static void fig_durable(bench_session *s, size_run *z, uint64_t ops)
{
	if (!wants_prefix(s, z, "insert_durable"))
		return;
	char dir[512];
	make_tmpdir(dir, sizeof dir);
	strata_options o;
	strata_options_init(&o);
	o.mode = STRATA_DURABLE;
	o.path = dir;
	o.flags = STRATA_OPEN_CREATE;
	sx d = {.n = z->n, .txn_flags = STRATA_TXN_SYNC};
	memset(d.val, 0x62, VLEN);
	bench_check(strata_open(&o, &d.st), "strata_open (DURABLE)");
	sx_load(d.st, z->n);
	lmdb_kv *lm = lmdb_open_loaded(z->n, false, true);
	fig_pair(s, z, "insert_durable", &d, lm, "lmdb_sync", sx_insert, lmdb_kv_insert, ops, true);
	lmdb_kv_close(lm);
	bench_check(strata_close(d.st), "strata_close");
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd))
		fprintf(stderr, "strata-bench: could not remove %s\n", dir);
}

/* Separator bytes and branch nodes with shortest separators and with full
 * keys, after the same bulk load. */
static void separator_note(bench_session *s, const size_run *z)
{
	strata_bpt_stats st[2];
	for (int full = 0; full < 2; full++) {
		strata_store *st_ = mem_store();
		bpt_full_separators = full;
		sx_load(st_, z->n);
		bpt_full_separators = false;
		strata_snapshot *snap;
		bench_check(strata_snapshot_open(st_, &snap), "snapshot_open");
		bench_check(strata_bpt_stats_get(snap, TREE, &st[full]), "bpt_stats");
		strata_snapshot_close(snap);
		bench_check(strata_close(st_), "strata_close");
	}
	bench_note(s, "%s keys: separators %llu B (shortest) vs %llu B (full keys); branch nodes "
		      "%llu vs %llu; height %u vs %u; leaf fill %.1f%%",
		   z->label, (unsigned long long)st[0].separator_bytes,
		   (unsigned long long)st[1].separator_bytes, (unsigned long long)st[0].branch_nodes,
		   (unsigned long long)st[1].branch_nodes, st[0].height, st[1].height,
		   st[0].leaf_fill * 100);
}

static void run_size(bench_session *s, size_run *z)
{
	lmdb_kv *lm = NULL;
	bool have_lmdb = true;
	{
		const char *why;
		lmdb_kv *probe;
		if (lmdb_kv_open(&probe, 1u << 20, true, KLEN, VLEN, key_of, &why)) {
			bench_note(s, "lmdb peer skipped: %s", why);
			have_lmdb = false;
		}
		lmdb_kv_close(probe);
	}
	fig_load(s, z, have_lmdb);
	uint64_t gets = bench_ops(s, 1000000, 100000), scans = bench_ops(s, 20000, 2000);
	uint64_t ins = bench_ops(s, 100000, 20000);
	/* Which loaded trees the figures STRATA_BPT_FIGS allows need. */
	static const char *const what[] = {"get", "scan", "insert", "mixed"};
	static const char *const who[] = {"strata", "lmdb", "1r_1w", "2r_1w"};
	bool need_sx = s->opts.list, need_lm = s->opts.list;
	for (size_t i = 0; i < 4; i++)
		for (size_t j = i < 3 ? 0 : 2; j < (i < 3 ? 2u : 4u); j++) {
			char a[BENCH_NAME_MAX];
			fig_name(a, what[i], z, who[j]);
			need_sx |= figs_allow(a);
			need_lm |= j == 1 && figs_allow(a);
		}
	if (need_sx) {
		sx m = {.st = mem_store(), .n = z->n};
		memset(m.val, 0x62, VLEN);
		sx_load(m.st, z->n);
		if (have_lmdb && need_lm)
			lm = lmdb_open_loaded(z->n, true, true);
		fig_pair(s, z, "get", &m, lm, "lmdb", sx_get, lmdb_kv_get, gets, false);
		fig_pair(s, z, "scan", &m, lm, "lmdb", sx_scan, lmdb_kv_scan, scans, false);
		fig_pair(s, z, "insert", &m, lm, "lmdb", sx_insert, lmdb_kv_insert, ins, true);
		lmdb_kv_close(lm);
		fig_mixed(s, &m, z->n, z->label);
		bench_check(strata_close(m.st), "strata_close");
	}
	if (have_lmdb)
		fig_durable(s, z, bench_ops(s, 20000, 5000));
	if (!s->opts.list && figs_allow("separators"))
		separator_note(s, z);
}

int bench_bptree(bench_session *s)
{
	size_run sizes[] = {{.n = 1000000, .label = "1M"}, {.n = 10000000, .label = "10M"}};
	size_run quick = {.n = 100000, .label = "100k"};
	if (s->opts.quick) {
		run_size(s, &quick);
	} else {
		for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
			run_size(s, &sizes[i]);
	}
	bench_note(s, "keys 12 B (\"user\" + big-endian u64), values 100 B, node size 4096; "
		      "insert: random new keys, 1000 per commit; strata IN_MEMORY vs lmdb "
		      "MDB_NOSYNC, strata_sync (DURABLE SYNC) vs lmdb_sync");
	bench_note(s, "targets (issue 5): get <= lmdb; insert rate >= 1.5x lmdb (ratio <= 0.67); "
		      "load >= 5M keys/s (<= 200 ns/key); mixed gets/s grow with readers");
	bench_add_target(s, s->opts.quick ? "load_100k_strata" : "load_1M_strata", 200.0);
	return 0;
}
