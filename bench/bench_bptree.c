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
 *                   including the commit; a fresh store each run; every
 *                   Strata load's wall and CPU time, system time, minor
 *                   faults, huge-page faults and segments taken from the
 *                   segment pool / fresh are printed and noted;
 *   get_N_*         random gets of existing keys through one snapshot /
 *                   read txn per batch, ns/get;
 *   scan_N_*        seek to a random key + read 100 entries, ns/scan;
 *   insert_N_*      random new keys, 1000 puts per commit, ns/put: Strata
 *                   IN_MEMORY vs LMDB MDB_NOSYNC (neither syncs), and
 *                   Strata DURABLE SYNC vs LMDB synced (one sync per 1000);
 *   mixed_N_Rr_*    R = 1, 2 reader threads doing random gets while one
 *                   writer commits 1000 inserts 5 times a second (a fixed,
 *                   throttled rate): gets/s of all readers (wall), and
 *                   _cpu: gets per reader CPU second; Strata IN_MEMORY vs
 *                   LMDB MDB_NOSYNC; the ratios give the 2r/1r scaling.
 * Inserts grow the trees run after run (each run adds its keys).
 * Environment: STRATA_BPT_FIGS (which figures), STRATA_BPT_POOL_MB and
 * STRATA_BPT_PREFAULT (segment pool bound, prefault watermark),
 * STRATA_BPT_LOAD_COLD=1 (each load starts with an empty pool).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
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

/* What each load of the load figure cost besides its wall time, so a slow
 * load can be told apart: slow on the CPU (the host), or in the kernel
 * (page faults of fresh memory), or off the CPU (preempted). THP faults
 * are read system-wide from /proc/vmstat: the bench lock keeps the other
 * jobs of this host off while it runs. */
#define LOAD_LOG_MAX 32
typedef struct load_rec {
	double wall_ns, cpu_ns; /* per key; cpu: this thread's user + system */
	double sys_ms;
	long minflt, thp;
	uint64_t pool_hits, pool_misses; /* the store's segments: reused / fresh */
} load_rec;
typedef struct load_log {
	int n;
	load_rec r[LOAD_LOG_MAX];
} load_log;

static long thp_faults(void)
{
	FILE *f = fopen("/proc/vmstat", "r");
	char k[64];
	long v, r = -1;
	while (f && fscanf(f, "%63s %ld", k, &v) == 2)
		if (strcmp(k, "thp_fault_alloc") == 0)
			r = v;
	if (f)
		fclose(f);
	return r;
}

static double tv_ms(struct timeval t)
{
	return (double)t.tv_sec * 1e3 + (double)t.tv_usec / 1e3;
}

/* jemalloc's control call where the library runs on jemalloc (weak: absent
 * with libc malloc). */
extern int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen)
	__attribute__((weak));

/* STRATA_BPT_LOAD_COLD=1: every load starts with an empty segment pool and
 * no freed memory left resident in jemalloc (all arenas purged), as the
 * first store of a process does: it faults in fresh memory (or takes what
 * the prefault thread, started by this open, has ready). Without the
 * purge, jemalloc hands the freed segments straight back, still faulted
 * in. */
static void pool_empty_if_cold(void)
{
	const char *c = getenv("STRATA_BPT_LOAD_COLD");
	if (!c || *c != '1')
		return;
	strata_segment_pool_set(strata_segment_pool_set(0));
	if (mallctl)
		(void)mallctl("arena.4096.purge", NULL, NULL, NULL, 0); /* 4096: every arena */
}

static uint64_t sx_load_fresh(void *arg, uint64_t ops)
{
	load_log *lg = arg;
	pool_empty_if_cold();
	strata_store *st = mem_store();
	struct rusage a, b;
	long thp0 = thp_faults();
	getrusage(RUSAGE_THREAD, &a);
	uint64_t ns = sx_load(st, ops);
	getrusage(RUSAGE_THREAD, &b);
	long thp1 = thp_faults();
	strata_store_stats ss;
	bench_check(strata_stats(st, &ss), "strata_stats");
	if (lg && lg->n < LOAD_LOG_MAX) {
		double cpu = tv_ms(b.ru_utime) - tv_ms(a.ru_utime) + tv_ms(b.ru_stime) - tv_ms(a.ru_stime);
		lg->r[lg->n++] = (load_rec){.wall_ns = (double)ns / (double)ops,
					    .cpu_ns = cpu * 1e6 / (double)ops,
					    .sys_ms = tv_ms(b.ru_stime) - tv_ms(a.ru_stime),
					    .minflt = b.ru_minflt - a.ru_minflt,
					    .thp = thp0 < 0 ? -1 : thp1 - thp0,
					    .pool_hits = ss.pool_hits,
					    .pool_misses = ss.pool_misses};
	}
	bench_check(strata_close(st), "strata_close");
	return ns;
}

/* Every load of the figure (the warm-up first, re-runs included) on
 * stderr, and as one note: wall/cpu ns per key, sys ms, THP faults,
 * segments from the pool / fresh. */
static void load_log_report(bench_session *s, const char *fig, const load_log *lg)
{
	char note[BENCH_NOTE_MAX];
	int len = snprintf(note, sizeof note, "%s per load, warm-up first (wall/cpu ns per key, sys "
					      "ms, THP faults, pool hits/misses):", fig);
	for (int i = 0; i < lg->n; i++) {
		const load_rec *r = &lg->r[i];
		fprintf(stderr, "    %s load %d: wall %.1f ns/key, cpu %.1f ns/key (sys %.1f ms), "
				"minor faults %ld, THP faults %ld, pool hits %llu misses %llu\n",
			fig, i, r->wall_ns, r->cpu_ns, r->sys_ms, r->minflt, r->thp,
			(unsigned long long)r->pool_hits, (unsigned long long)r->pool_misses);
		if (len > 0 && (size_t)len < sizeof note)
			len += snprintf(note + len, sizeof note - (size_t)len, " %.0f/%.0f/%.0f/%ld/%llu/%llu",
					r->wall_ns, r->cpu_ns, r->sys_ms, r->thp,
					(unsigned long long)r->pool_hits,
					(unsigned long long)r->pool_misses);
	}
	bench_note(s, "%s", note);
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

/* ---- the mixed workload: readers while a writer commits ---------------------
 * Built for a small machine (this one has 2 vCPUs): the writer commits
 * batches of BATCH inserts at a fixed rate (MIXED_COMMITS_PER_S), sleeping
 * in between, so it takes a small, measured share of one CPU instead of
 * competing with the readers for both; 1 then 2 reader threads do random
 * gets of loaded keys, a fresh snapshot (LMDB: read txn) per 1000 gets.
 * Per run: the readers' gets/s over wall time, and their gets per CPU
 * second (CLOCK_THREAD_CPUTIME_ID): wall throughput can only scale if a
 * second CPU is free, gets per CPU second shows whether readers slow each
 * other down (shared cache lines, locks) whatever the neighbours do.
 * LMDB does the same with its own writer and readers, in the same run. */
#define MIXED_KEYS 2000000u /* the writer's fresh keys; it wraps around (overwrites) */
#define MIXED_COMMITS_PER_S 5u
#define MIXED_READ_KEYS 64000u /* each reader cycles through its own key numbers (a multiple of 1000) */

typedef struct mixed_side {
	const char *who; /* "strata" or "lmdb" */
	void *ctx;       /* sx or lmdb_kv */
	/* one commit of BATCH inserts of keys[0..BATCH) */
	void (*write)(void *ctx, const uint64_t *keys);
	/* ops gets of keys[0..ops) in one snapshot; a sum of value bytes */
	uint64_t (*read)(void *ctx, const uint64_t *keys, uint64_t ops);
} mixed_side;

typedef struct mixed {
	const mixed_side *side;
	const uint64_t *wkeys; /* MIXED_KEYS key numbers for the writer */
	uint64_t n;            /* loaded keys: readers read i * STRIDE, i < n */
	atomic_bool stop;
	uint64_t commits, writer_cpu_ns; /* written by the writer, read after join */
} mixed;

typedef struct mixed_reader {
	mixed *m;
	uint64_t seed;
	uint64_t gets, cpu_ns; /* results */
} mixed_reader;

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *mixed_reader_main(void *arg)
{
	mixed_reader *a = arg;
	mixed *m = a->m;
	uint64_t *keys = bench_xmalloc(MIXED_READ_KEYS * sizeof *keys), seed = a->seed, sum = 0;
	for (unsigned i = 0; i < MIXED_READ_KEYS; i++)
		keys[i] = (rng(&seed) % m->n) * STRIDE;
	uint64_t c0 = thread_cpu_ns(), n = 0;
	for (unsigned at = 0; !atomic_load_explicit(&m->stop, memory_order_relaxed);
	     at = (at + 1000) % MIXED_READ_KEYS) {
		sum += m->side->read(m->side->ctx, keys + at, 1000);
		n += 1000;
	}
	a->cpu_ns = thread_cpu_ns() - c0;
	a->gets = n;
	bench_sink += sum;
	free(keys);
	return NULL;
}

static void *mixed_writer_main(void *arg)
{
	mixed *m = arg;
	const uint64_t period = 1000000000u / MIXED_COMMITS_PER_S;
	struct timespec next;
	clock_gettime(CLOCK_MONOTONIC, &next);
	uint64_t c0 = thread_cpu_ns(), at = 0;
	while (!atomic_load_explicit(&m->stop, memory_order_relaxed)) {
		m->side->write(m->side->ctx, m->wkeys + at);
		at = (at + BATCH) % (MIXED_KEYS - MIXED_KEYS % BATCH);
		m->commits++;
		next.tv_nsec += (long)period; /* a fixed schedule: late commits do not drift it */
		while (next.tv_nsec >= 1000000000) {
			next.tv_nsec -= 1000000000;
			next.tv_sec++;
		}
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
			;
	}
	m->writer_cpu_ns = thread_cpu_ns() - c0;
	return NULL;
}

typedef struct mixed_result {
	double gets_per_s;     /* all readers together, over wall time */
	double gets_per_cpu_s; /* per reader CPU second */
	double writer_share;   /* writer CPU time / wall time */
	double commits_per_s;
} mixed_result;

static mixed_result mixed_once(const mixed_side *side, const uint64_t *wkeys, uint64_t n,
			       unsigned readers, uint64_t run_ns)
{
	mixed m = {.side = side, .wkeys = wkeys, .n = n};
	mixed_reader r[2];
	pthread_t th[2], w;
	if (pthread_create(&w, NULL, mixed_writer_main, &m))
		bench_check(-EAGAIN, "pthread_create");
	for (unsigned i = 0; i < readers; i++) {
		r[i] = (mixed_reader){.m = &m, .seed = 0x5eed + i};
		if (pthread_create(&th[i], NULL, mixed_reader_main, &r[i]))
			bench_check(-EAGAIN, "pthread_create");
	}
	uint64_t t0 = bench_now_ns();
	usleep((useconds_t)(run_ns / 1000));
	atomic_store(&m.stop, true);
	uint64_t gets = 0, cpu = 0;
	for (unsigned i = 0; i < readers; i++) {
		pthread_join(th[i], NULL);
		gets += r[i].gets;
		cpu += r[i].cpu_ns;
	}
	pthread_join(w, NULL);
	double wall = (double)(bench_now_ns() - t0);
	return (mixed_result){.gets_per_s = (double)gets * 1e9 / wall,
			      .gets_per_cpu_s = cpu ? (double)gets * 1e9 / (double)cpu : 0,
			      .writer_share = (double)m.writer_cpu_ns / wall,
			      .commits_per_s = (double)m.commits * 1e9 / wall};
}

static void sx_mixed_write(void *ctx, const uint64_t *keys)
{
	sx *x = ctx;
	x->idx = keys;
	sx_insert(x, BATCH);
}

static uint64_t sx_mixed_read(void *ctx, const uint64_t *keys, uint64_t ops)
{
	sx *x = ctx;
	uint8_t key[KLEN];
	uint64_t sum = 0;
	strata_snapshot *snap;
	BENCH_CHECK(strata_snapshot_open(x->st, &snap), "snapshot_open");
	for (uint64_t i = 0; i < ops; i++) {
		const void *v;
		size_t vl;
		key_of(keys[i], key);
		BENCH_CHECK(strata_bpt_get(snap, TREE, key, KLEN, &v, &vl), "bpt_get");
		sum += ((const uint8_t *)v)[0];
	}
	strata_snapshot_close(snap);
	return sum;
}

static void lm_mixed_write(void *ctx, const uint64_t *keys)
{
	lmdb_kv_set_indexes(ctx, keys);
	lmdb_kv_insert(ctx, BATCH);
}

static uint64_t lm_mixed_read(void *ctx, const uint64_t *keys, uint64_t ops)
{
	return lmdb_kv_get_at(ctx, keys, ops);
}

static double median_of(double *v, int n)
{
	for (int i = 1; i < n; i++) /* insertion sort: n <= 64 */
		for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
			double t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Figures mixed_N_{1r,2r}_{who} (gets/s) and ..._cpu (gets per reader CPU
 * second) for one side; a note with the writer's rate and CPU share. */
static void fig_mixed_side(bench_session *s, const mixed_side *side, uint64_t n,
			   const char *label)
{
	char name[2][2][BENCH_NAME_MAX];
	bool any = false;
	for (unsigned r = 0; r < 2; r++) {
		snprintf(name[r][0], BENCH_NAME_MAX, "mixed_%s_%ur_%s", label, r + 1, side->who);
		snprintf(name[r][1], BENCH_NAME_MAX, "mixed_%s_%ur_%s_cpu", label, r + 1, side->who);
		any |= wants(s, name[r][0]) | wants(s, name[r][1]);
	}
	if (!any)
		return;
	int runs = s->opts.runs < 64 ? s->opts.runs : 64;
	double v[2][2][64], share[128], rate[128];
	uint64_t *wkeys = key_numbers(MIXED_KEYS, n, true, 99);
	for (int k = 0; k < runs; k++)
		for (unsigned r = 0; r < 2; r++) {
			mixed_result res = mixed_once(side, wkeys, n, r + 1,
						      s->opts.quick ? 200000000u : 1000000000u);
			v[r][0][k] = res.gets_per_s;
			v[r][1][k] = res.gets_per_cpu_s;
			share[2 * k + (int)r] = res.writer_share;
			rate[2 * k + (int)r] = res.commits_per_s;
		}
	for (unsigned r = 0; r < 2; r++) {
		bench_record(s, name[r][0], "gets/s", side->who, v[r][0], runs);
		bench_record(s, name[r][1], "gets/cpu-s", side->who, v[r][1], runs);
	}
	bench_add_ratio(s, name[1][0], name[0][0]);
	double load[3] = {0, 0, 0};
	if (getloadavg(load, 3) < 1) /* the note says so rather than omitting it */
		load[0] = -1;
	bench_note(s, "mixed %s %s: writer %.1f commits/s of %u puts (target %u/s), %.1f %% of one "
		      "CPU (medians); load average %.2f after",
		   label, side->who, median_of(rate, 2 * runs), BATCH, MIXED_COMMITS_PER_S,
		   100 * median_of(share, 2 * runs), load[0]);
	free(wkeys);
}

static void fig_mixed(bench_session *s, sx *x, lmdb_kv *lm, uint64_t n, const char *label)
{
	mixed_side sides[2] = {{"strata", x, sx_mixed_write, sx_mixed_read},
			       {"lmdb", lm, lm_mixed_write, lm_mixed_read}};
	for (unsigned i = 0; i < (lm ? 2u : 1u); i++)
		fig_mixed_side(s, &sides[i], n, label);
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
	if (wants(s, a)) {
		load_log lg = {0};
		bench_measure(s, a, NULL, sx_load_fresh, &lg, z->n);
		load_log_report(s, a, &lg);
	}
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

/* DURABLE SYNC inserts against synced LMDB. */
static void fig_durable(bench_session *s, size_run *z, uint64_t ops)
{
	if (!wants_prefix(s, z, "insert_durable"))
		return;
	char dir[512];
	bench_make_tmpdir(dir, sizeof dir, "bptree");
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

/* Where the loaded store's segments came from by now (load, gets, scans,
 * inserts): the insert figure's growth is where fresh memory is faulted. */
static void pool_note(bench_session *s, sx *m, const char *label)
{
	strata_store_stats st;
	bench_check(strata_stats(m->st, &st), "strata_stats");
	bench_note(s, "%s store after the inserts: segments from the pool %llu, fresh %llu; "
		      "prefaulted (process) %llu; %llu MiB in segments",
		   label, (unsigned long long)st.pool_hits, (unsigned long long)st.pool_misses,
		   (unsigned long long)st.pool_prefaulted,
		   (unsigned long long)(st.segment_bytes >> 20));
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
	static const char *const what[] = {"get", "scan", "insert"};
	static const char *const who[] = {"strata", "lmdb", "strata_cpu", "lmdb_cpu"};
	bool need_sx = s->opts.list, need_lm = s->opts.list;
	for (size_t i = 0; i < 5; i++) /* get, scan, insert, mixed 1r, mixed 2r */
		for (size_t j = 0; j < (i < 3 ? 2u : 4u); j++) {
			char a[BENCH_NAME_MAX];
			if (i < 3)
				fig_name(a, what[i], z, who[j]);
			else
				snprintf(a, sizeof a, "mixed_%s_%zur_%s", z->label, i - 2, who[j]);
			need_sx |= figs_allow(a);
			need_lm |= (j & 1) && figs_allow(a);
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
		pool_note(s, &m, z->label);
		fig_mixed(s, &m, lm, z->n, z->label);
		lmdb_kv_close(lm);
		bench_check(strata_close(m.st), "strata_close");
	}
	if (have_lmdb)
		fig_durable(s, z, bench_ops(s, 20000, 5000));
	if (!s->opts.list && figs_allow("separators"))
		separator_note(s, z);
}

/* STRATA_BPT_POOL_MB and STRATA_BPT_PREFAULT (environment): the segment
 * pool's bound and the prefault watermark for this run, to compare
 * settings with one binary (STRATA_BPT_POOL_MB=0: no pool, as before it
 * existed). Each run notes what it used. */
static void pool_settings(bench_session *s)
{
	const char *mb = getenv("STRATA_BPT_POOL_MB"), *pf = getenv("STRATA_BPT_PREFAULT");
	if (mb && *mb)
		strata_segment_pool_set((size_t)strtoull(mb, NULL, 10) << 20);
	/* Only an explicit setting is applied (any call replaces the library's
	 * automatic prefault, so the watermark is not read back). */
	char wm[64] = "automatic (32 once 64 MiB of fresh segments were made)";
	if (pf && *pf) {
		unsigned n = (unsigned)strtoul(pf, NULL, 10);
		strata_segment_prefault_set(n);
		snprintf(wm, sizeof wm, "%u segments", n);
	}
	size_t bound = strata_segment_pool_set(0);
	strata_segment_pool_set(bound);
	const char *cold = getenv("STRATA_BPT_LOAD_COLD");
	bench_note(s, "segment pool %zu MiB, prefault %s%s", bound >> 20, wm,
		   cold && *cold == '1' ? ", every load starts with an empty pool" : "");
}

int bench_bptree(bench_session *s)
{
	pool_settings(s);
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
		      "load >= 5M keys/s (<= 200 ns/key); mixed gets/s grow with readers "
		      "(2r/1r; gets/cpu-s equal means readers do not slow each other)");
	bench_add_target(s, s->opts.quick ? "load_100k_strata" : "load_1M_strata", 200.0);
	return 0;
}
