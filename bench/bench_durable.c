/*
 * bench_durable.c — the `durable` suite: what DURABLE mode costs and what it
 * delivers, with LMDB and SQLite (WAL mode) making the same one-row commits
 * in the same run. How to run it and what it measured: design/PERFORMANCE.md.
 *
 * Figures:
 *   raw_*            the device's own sync rate, the baseline: 512 B pwrite
 *                    into a preallocated zero-filled file + fdatasync (what
 *                    Strata's WAL does), appended + fdatasync, and
 *                    O_DIRECT|O_DSYNC into the preallocated file;
 *   *_commit_*       commits/s of one-row transactions: Strata SYNC with 1,
 *                    4, 16 and 64 committer threads (each on its own root),
 *                    ASYNC and NONE with one; LMDB synced and MDB_NOSYNC;
 *                    SQLite WAL with synchronous FULL and NORMAL;
 *   *_busy           the same with a spinning thread on the other vCPU: an
 *                    idle vCPU of this VM takes I/O completions late;
 *   sync_1t_vs_*     per round, SYNC 1 committer / raw overwrite+fdatasync;
 *   resolve_hot_*    strata_resolve of 16 hot 64 B nodes, IN_MEMORY against
 *                    DURABLE (reopened, nodes loaded), interleaved A/B;
 *   recovery_*       strata_open of a store killed without close, replaying
 *                    16/64/256 MiB of WAL (1 KiB nodes): ms and MB/s, page
 *                    cache warm and (replay_cold) dropped first;
 *   open_*           strata_open of a cleanly closed store: empty, 1M and 10M
 *                    64 B nodes (--quick: 100k, 1M); open + the first resolve
 *                    (a lazy load); open with the page cache dropped.
 *
 * Rate figures run for a fixed time per run; runs go in rounds over all the
 * rate figures, in alternating order, so host and device drift hits every
 * system alike. Opens are timed in forked children: each child opens the
 * same files afresh and exits without closing, so a recovery can be timed
 * again and no allocator state of an earlier open is reused. Everything
 * lives in one temporary directory under $TMPDIR (default /tmp), removed at
 * the end.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "durable.h" /* wal_end(): how many WAL bytes a recovery replays */
#include "peer_lmdb.h"
#include "peer_sqlite.h"
#include "suites.h"

#define VALUE_BYTES 100u        /* the one-row commit's node / row value */
#define MAX_COMMITTERS 64u
#define RAW_BYTES 512u          /* one raw device write */
#define RAW_FILE_BYTES (16u << 20) /* preallocated raw file; overwrites wrap */
#define RAW_APPEND_WRAP (64u << 20)
#define HOT_NODES 16u           /* power of two: the loop masks the index */
#define HOT_NODE_BYTES 64u
#define WAL_NODE_BYTES 1024u    /* recovery: nodes written to the WAL */
#define WAL_TXN_NODES 16u
#define OPEN_NODE_BYTES 64u
#define OPEN_TXN_NODES 100000u  /* building the store for the open figures */
#define MIB (1ull << 20)

static const char *const OPEN_ROOT = "open";

/* ---- errors, paths, the temporary directory ------------------------------- */
static void make_subdir(char *out, size_t n, const char *dir, const char *name)
{
	bench_path_join(out, n, dir, name);
	if (mkdir(out, 0755))
		bench_sys_fail("mkdir");
}

static strata_options durable_options(const char *dir, bool create)
{
	strata_options o;
	strata_options_init(&o);
	o.mode = STRATA_DURABLE;
	o.path = dir;
	o.flags = create ? STRATA_OPEN_CREATE : 0;
	return o;
}

/* No checkpoint by WAL size, dirty nodes or time: the WAL only grows. */
static void no_checkpoints(strata_options *o)
{
	o->checkpoint_wal_bytes = UINT64_MAX;
	o->checkpoint_dirty_nodes = UINT64_MAX;
	o->checkpoint_interval_ms = 0;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u), .tv_nsec = (long)(ns % 1000000000u)};
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int runs_of(const bench_session *s)
{
	return s->opts.runs < 3 ? 3 : s->opts.runs;
}

/* ---- child processes -------------------------------------------------------- */
/* What a child reports through its pipe. */
typedef struct child_out {
	uint64_t ns[2];
	uint64_t cpu_ns; /* thread CPU time of what ns[0] timed */
	uint64_t bytes, count;
	char msg[200];
} child_out;

/* Runs fn in a forked child (bench_in_child: a store it left open is
 * abandoned as by a crash). */
static child_out in_child(bench_child_fn fn, const void *arg)
{
	child_out o;
	bench_in_child(fn, arg, &o, sizeof o);
	return o;
}

/* ---- rates: N threads committing for a fixed time --------------------------- */
typedef void (*commit_fn)(void *ctx, unsigned thread);

typedef struct rate_cfg {
	const char *name, *unit, *peer;
	unsigned threads;
	bool busy; /* a spinning thread keeps another vCPU busy meanwhile */
	commit_fn fn;
	void *ctx;
	bool wanted; /* a figure of its own, measured in the rounds */
	bool needed; /* wanted, or part of a paired ratio: its resource is opened */
	double *samples;
} rate_cfg;

typedef struct rate_run {
	const rate_cfg *cfg;
	pthread_barrier_t start;
	atomic_bool stop;
	uint64_t ops[MAX_COMMITTERS];
} rate_run;

typedef struct rate_arg {
	rate_run *run;
	unsigned idx;
} rate_arg;

/* On a quiet host, an idle vCPU of this VM takes an I/O completion late
 * (ms); a busy one takes it at once (~70 us). The spinner keeps the other
 * vCPU busy, to show what the device can do with a waiting committer. */
static void *spinner(void *arg)
{
	rate_run *r = arg;
	uint64_t n = 0;
	while (!atomic_load_explicit(&r->stop, memory_order_relaxed))
		n++;
	bench_sink += n;
	return NULL;
}

static void *rate_worker(void *arg)
{
	rate_arg *a = arg;
	rate_run *r = a->run;
	uint64_t n = 0;
	pthread_barrier_wait(&r->start);
	while (!atomic_load_explicit(&r->stop, memory_order_relaxed)) {
		r->cfg->fn(r->cfg->ctx, a->idx);
		n++;
	}
	r->ops[a->idx] = n;
	return NULL;
}

typedef struct rate_sample {
	uint64_t ops, ns;
} rate_sample;

static double per_second(rate_sample x)
{
	return (double)x.ops * 1e9 / (double)x.ns;
}

/* One run of about run_ns: operations from the start signal until the
 * last thread finished its last operation, and that time. */
static rate_sample rate_once(const rate_cfg *c, uint64_t run_ns)
{
	rate_run r = {.cfg = c};
	pthread_t th[MAX_COMMITTERS], spin;
	rate_arg args[MAX_COMMITTERS];
	pthread_barrier_init(&r.start, NULL, c->threads + 1);
	for (unsigned i = 0; i < c->threads; i++) {
		args[i] = (rate_arg){&r, i};
		if ((errno = pthread_create(&th[i], NULL, rate_worker, &args[i])))
			bench_sys_fail("pthread_create");
	}
	if (c->busy && (errno = pthread_create(&spin, NULL, spinner, &r)))
		bench_sys_fail("pthread_create");
	pthread_barrier_wait(&r.start);
	uint64_t t0 = bench_now_ns();
	sleep_ns(run_ns);
	atomic_store(&r.stop, true);
	uint64_t total = 0;
	for (unsigned i = 0; i < c->threads; i++) {
		pthread_join(th[i], NULL);
		total += r.ops[i];
	}
	uint64_t t1 = bench_now_ns();
	if (c->busy)
		pthread_join(spin, NULL);
	pthread_barrier_destroy(&r.start);
	return (rate_sample){total, t1 - t0};
}

/* Every run is a round over all configurations, forward then backward
 * (A,B,..,B,A), after one short warm-up round. */
static void rate_rounds(bench_session *s, rate_cfg *cfg, size_t n, uint64_t run_ns)
{
	int runs = runs_of(s);
	for (size_t i = 0; i < n; i++)
		if (cfg[i].wanted)
			rate_once(&cfg[i], run_ns / 4);
	for (int r = 0; r < runs; r++) {
		for (size_t k = 0; k < n; k++) {
			rate_cfg *c = &cfg[r % 2 ? n - 1 - k : k];
			if (c->wanted)
				c->samples[r] = per_second(rate_once(c, run_ns));
		}
	}
	for (size_t i = 0; i < n; i++)
		if (cfg[i].wanted)
			bench_record(s, cfg[i].name, cfg[i].unit, cfg[i].peer, cfg[i].samples, runs);
}

/* ---- the raw device ------------------------------------------------------------ */
typedef enum raw_kind { RAW_OVERWRITE, RAW_APPEND, RAW_DIRECT } raw_kind;

typedef struct raw_ctx {
	int fd;
	raw_kind kind;
	uint64_t off;
	void *buf; /* RAW_BYTES, page aligned (O_DIRECT) */
} raw_ctx;

static void op_raw(void *ctx, unsigned thread)
{
	raw_ctx *r = ctx;
	(void)thread;
	if (pwrite(r->fd, r->buf, RAW_BYTES, (off_t)r->off) != (ssize_t)RAW_BYTES)
		bench_sys_fail("pwrite (raw)");
	if (r->kind != RAW_DIRECT && fdatasync(r->fd))
		bench_sys_fail("fdatasync (raw)");
	r->off += RAW_BYTES;
	if (r->kind == RAW_APPEND && r->off >= RAW_APPEND_WRAP) {
		if (ftruncate(r->fd, 0))
			bench_sys_fail("ftruncate (raw)");
		r->off = 0;
	} else if (r->kind != RAW_APPEND && r->off >= RAW_FILE_BYTES) {
		r->off = 0;
	}
}

/* Zeros written and synced: allocated blocks, no unwritten extents. */
static void prefill(int fd, const char *dir)
{
	static char zeros[1 << 20]; /* bss, not 1 MiB of .rodata */
	for (uint64_t at = 0; at < RAW_FILE_BYTES; at += sizeof zeros)
		if (pwrite(fd, zeros, sizeof zeros, (off_t)at) != (ssize_t)sizeof zeros)
			bench_sys_fail("pwrite (prefill)");
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fsync(fd) || dfd < 0 || fsync(dfd))
		bench_sys_fail("fsync (prefill)");
	close(dfd);
}

/* Returns false (O_DIRECT refused by the file system) or true. */
static bool raw_open(raw_ctx *r, const char *dir, raw_kind kind)
{
	static const char *const names[] = {"raw-overwrite", "raw-append", "raw-direct"};
	char path[512];
	bench_path_join(path, sizeof path, dir, names[kind]);
	*r = (raw_ctx){.kind = kind};
	if (posix_memalign(&r->buf, 4096, 4096))
		bench_sys_fail("posix_memalign");
	memset(r->buf, 0x5a, 4096);
	if ((r->fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
		bench_sys_fail("open (raw)");
	if (kind == RAW_APPEND)
		return true;
	prefill(r->fd, dir);
	if (kind == RAW_OVERWRITE)
		return true;
	close(r->fd);
	r->fd = open(path, O_RDWR | O_DIRECT | O_DSYNC | O_CLOEXEC);
	return r->fd >= 0;
}

static void raw_close(raw_ctx *r)
{
	if (r->fd >= 0)
		close(r->fd);
	free(r->buf);
	r->buf = NULL;
	r->fd = -1;
}

/* ---- Strata one-node commits ----------------------------------------------------- */
typedef struct commit_ctx {
	strata_store *st;
	unsigned flags; /* STRATA_TXN_SYNC / ASYNC / NONE */
} commit_ctx;

static char root_names[MAX_COMMITTERS][8];
static const char *roots[MAX_COMMITTERS];

static void init_root_names(void)
{
	for (unsigned i = 0; i < MAX_COMMITTERS; i++) {
		snprintf(root_names[i], sizeof root_names[i], "c%02u", i);
		roots[i] = root_names[i];
	}
}

/* Copy-on-write of the thread's root node (VALUE_BYTES), one byte
 * changed, root repointed: the WAL gets NODE + RETIRE + ROOT + COMMIT and
 * the store does not grow (the old version is reclaimed). */
static void op_strata(void *ctx, unsigned t)
{
	const commit_ctx *c = ctx;
	strata_txn *txn;
	strata_node_id old, id;
	void *p;
	BENCH_CHECK(strata_txn_begin(c->st, &roots[t], 1, c->flags, &txn), "strata_txn_begin");
	BENCH_CHECK(strata_txn_get_root(txn, roots[t], &old), "strata_txn_get_root");
	BENCH_CHECK(strata_txn_write(txn, old, &id, &p, NULL), "strata_txn_write");
	((unsigned char *)p)[0]++;
	BENCH_CHECK(strata_txn_set_root(txn, roots[t], id), "strata_txn_set_root");
	BENCH_CHECK(strata_txn_commit(txn, NULL), "strata_txn_commit");
}

/* A store in dir/name whose committer roots each hold a first node. */
static void commit_open(commit_ctx *c, const char *dir, const char *name, unsigned flags)
{
	char path[512];
	bench_path_join(path, sizeof path, dir, name);
	strata_options o = durable_options(path, true);
	bench_check(strata_open(&o, &c->st), "strata_open (DURABLE)");
	c->flags = flags;
	strata_txn *t;
	bench_check(strata_txn_begin(c->st, roots, MAX_COMMITTERS, STRATA_TXN_SYNC, &t),
		    "strata_txn_begin");
	for (unsigned i = 0; i < MAX_COMMITTERS; i++) {
		strata_node_id id;
		void *p;
		bench_check(strata_txn_alloc(t, VALUE_BYTES, 0, &id, &p), "strata_txn_alloc");
		bench_check(strata_txn_set_root(t, roots[i], id), "strata_txn_set_root");
	}
	bench_check(strata_txn_commit(t, NULL), "strata_txn_commit");
}

static void commit_close(commit_ctx *c)
{
	if (c->st)
		bench_check(strata_close(c->st), "strata_close");
	c->st = NULL;
}

static void op_lmdb(void *ctx, unsigned t)
{
	(void)t;
	peer_lmdb_commit_one(ctx);
}

static void op_sqlite(void *ctx, unsigned t)
{
	(void)t;
	peer_sqlite_commit_one(ctx);
}

/* ---- the rate figures ---------------------------------------------------------- */
/* What a rate figure runs against: a raw file, a Strata store, a peer. */
enum {
	RES_RAW_OVER, RES_RAW_APPEND, RES_RAW_DIRECT, /* in raw_kind order */
	RES_SYNC, RES_ASYNC, RES_NONE,
	RES_LMDB_SYNC, RES_LMDB_NOSYNC, RES_SQL_FULL, RES_SQL_NORMAL,
	NRES
};

static const struct rate_def {
	const char *name, *unit, *peer;
	unsigned threads;
	bool busy;
	int res;
} rate_defs[] = {
	{"raw_sync_overwrite_512B", "syncs/s", "device", 1, false, RES_RAW_OVER},
	{"raw_sync_append_512B", "syncs/s", "device", 1, false, RES_RAW_APPEND},
	{"raw_dsync_direct_512B", "syncs/s", "device", 1, false, RES_RAW_DIRECT},
	{"raw_sync_overwrite_512B_busy", "syncs/s", "device", 1, true, RES_RAW_OVER},
	{"raw_sync_append_512B_busy", "syncs/s", "device", 1, true, RES_RAW_APPEND},
	{"raw_dsync_direct_512B_busy", "syncs/s", "device", 1, true, RES_RAW_DIRECT},
	{"sync_commit_1t", "commits/s", "strata", 1, false, RES_SYNC},
	{"sync_commit_1t_busy", "commits/s", "strata", 1, true, RES_SYNC},
	{"sync_commit_4t", "commits/s", "strata", 4, false, RES_SYNC},
	{"sync_commit_16t", "commits/s", "strata", 16, false, RES_SYNC},
	{"sync_commit_64t", "commits/s", "strata", 64, false, RES_SYNC},
	{"async_commit_1t", "commits/s", "strata", 1, false, RES_ASYNC},
	{"none_commit_1t", "commits/s", "strata", 1, false, RES_NONE},
	{"lmdb_commit_sync", "commits/s", "lmdb", 1, false, RES_LMDB_SYNC},
	{"lmdb_commit_sync_busy", "commits/s", "lmdb", 1, true, RES_LMDB_SYNC},
	{"lmdb_commit_nosync", "commits/s", "lmdb", 1, false, RES_LMDB_NOSYNC},
	{"sqlite_wal_full_commit", "commits/s", "sqlite", 1, false, RES_SQL_FULL},
	{"sqlite_wal_full_commit_busy", "commits/s", "sqlite", 1, true, RES_SQL_FULL},
	{"sqlite_wal_normal_commit", "commits/s", "sqlite", 1, false, RES_SQL_NORMAL},
};
#define NRATES (sizeof rate_defs / sizeof *rate_defs)

/* Paired figures: Strata's one-committer SYNC rate over the raw
 * overwrite+fdatasync rate, measured in alternating slices (idle, busy). */
static const struct ratio_def {
	const char *name, *num, *den;
} ratio_defs[] = {
	{"sync_1t_vs_raw_overwrite", "sync_commit_1t", "raw_sync_overwrite_512B"},
	{"sync_1t_vs_raw_overwrite_busy", "sync_commit_1t_busy", "raw_sync_overwrite_512B_busy"},
};
#define NRATIOS (sizeof ratio_defs / sizeof *ratio_defs)

typedef struct rate_env {
	raw_ctx raw[3];
	commit_ctx strata[3]; /* RES_SYNC .. RES_NONE */
	peer_lmdb *lmdb[2];
	peer_sqlite *sql[2];
	bool need[NRES];
	bool failed[NRES];
} rate_env;

static void peer_skipped(bench_session *s, const char *peer, const char *why)
{
	bench_note(s, "%s peer skipped: %s", peer, why);
	if (!s->opts.json)
		fprintf(stderr, "  %s peer skipped: %s\n", peer, why);
}

static void open_raw(bench_session *s, rate_env *env, const char *dir, int res)
{
	if (!raw_open(&env->raw[res], dir, (raw_kind)res)) {
		bench_note(s, "raw_dsync_direct_*: skipped: O_DIRECT refused here (%s)",
			   strerror(errno));
		env->failed[res] = true;
	}
}

static void open_strata(rate_env *env, const char *dir, int res)
{
	static const char *const names[] = {"sync", "async", "none"};
	static const unsigned flags[] = {STRATA_TXN_SYNC, STRATA_TXN_ASYNC, STRATA_TXN_NONE};
	commit_open(&env->strata[res - RES_SYNC], dir, names[res - RES_SYNC],
		    flags[res - RES_SYNC]);
}

static void open_lmdb(bench_session *s, rate_env *env, const char *dir, int res)
{
	char path[512];
	const char *why;
	bool nosync = res == RES_LMDB_NOSYNC;
	make_subdir(path, sizeof path, dir, nosync ? "lmdb-nosync" : "lmdb-sync");
	if (peer_lmdb_open_writer(&env->lmdb[nosync], path, nosync, VALUE_BYTES, &why)) {
		peer_skipped(s, "lmdb", why);
		env->failed[res] = true;
	}
}

static void open_sqlite(bench_session *s, rate_env *env, const char *dir, int res)
{
	char path[512];
	const char *why;
	bool normal = res == RES_SQL_NORMAL;
	bench_path_join(path, sizeof path, dir, normal ? "sqlite-normal.db" : "sqlite-full.db");
	if (peer_sqlite_open(&env->sql[normal], path, !normal, VALUE_BYTES, &why)) {
		peer_skipped(s, "sqlite", why);
		env->failed[res] = true;
	}
}

static void open_res(bench_session *s, rate_env *env, const char *dir, int res)
{
	if (res <= RES_RAW_DIRECT)
		open_raw(s, env, dir, res);
	else if (res <= RES_NONE)
		open_strata(env, dir, res);
	else if (res <= RES_LMDB_NOSYNC)
		open_lmdb(s, env, dir, res);
	else
		open_sqlite(s, env, dir, res);
}

static void bind_cfg(rate_cfg *c, rate_env *env, int res)
{
	if (res <= RES_RAW_DIRECT) {
		c->fn = op_raw;
		c->ctx = &env->raw[res];
	} else if (res <= RES_NONE) {
		c->fn = op_strata;
		c->ctx = &env->strata[res - RES_SYNC];
	} else if (res <= RES_LMDB_NOSYNC) {
		c->fn = op_lmdb;
		c->ctx = env->lmdb[res == RES_LMDB_NOSYNC];
	} else {
		c->fn = op_sqlite;
		c->ctx = env->sql[res == RES_SQL_NORMAL];
	}
}

/* Opens what the selected figures need; a peer that cannot be had drops
 * its figures (with a note). */
static void setup(bench_session *s, rate_cfg *cfg, rate_env *env, const char *dir)
{
	for (int k = 0; k < 3; k++)
		env->raw[k].fd = -1;
	for (size_t i = 0; i < NRATES; i++)
		env->need[rate_defs[i].res] |= cfg[i].needed;
	for (int res = 0; res < NRES; res++)
		if (env->need[res])
			open_res(s, env, dir, res);
	for (size_t i = 0; i < NRATES; i++) {
		int res = rate_defs[i].res;
		if (env->failed[res])
			cfg[i].needed = cfg[i].wanted = false;
		else if (cfg[i].needed)
			bind_cfg(&cfg[i], env, res);
	}
}

static void teardown(rate_env *env)
{
	for (int k = 0; k < 3; k++)
		raw_close(&env->raw[k]);
	for (int k = 0; k < 3; k++)
		commit_close(&env->strata[k]);
	for (int k = 0; k < 2; k++) {
		peer_lmdb_close(env->lmdb[k]);
		peer_sqlite_close(env->sql[k]);
	}
}

static rate_cfg *cfg_named(rate_cfg *cfg, const char *name)
{
	for (size_t i = 0; i < NRATES; i++)
		if (!strcmp(cfg[i].name, name))
			return &cfg[i];
	return NULL;
}

static void select_rates(bench_session *s, rate_cfg *cfg, bool *ratio)
{
	for (size_t i = 0; i < NRATES; i++) {
		const struct rate_def *d = &rate_defs[i];
		cfg[i] = (rate_cfg){.name = d->name, .unit = d->unit, .peer = d->peer,
				    .threads = d->threads, .busy = d->busy};
		cfg[i].wanted = cfg[i].needed = bench_wants(s, d->name);
	}
	for (size_t i = 0; i < NRATIOS; i++) {
		ratio[i] = bench_wants(s, ratio_defs[i].name);
		cfg_named(cfg, ratio_defs[i].num)->needed |= ratio[i];
		cfg_named(cfg, ratio_defs[i].den)->needed |= ratio[i];
	}
}

/* One paired run: PAIR_SLICES slices per side, alternating A,B,B,A, so
 * the device's and the host's drift hits both sides alike. */
#define PAIR_SLICES 8

static double paired_once(const rate_cfg *a, const rate_cfg *b, uint64_t run_ns)
{
	rate_sample sa = {0}, sb = {0};
	uint64_t slice = run_ns / PAIR_SLICES;
	for (int k = 0; k < PAIR_SLICES; k++) {
		for (int side = 0; side < 2; side++) {
			bool first_a = k % 2 == 0;
			const rate_cfg *c = (side == 0) == first_a ? a : b;
			rate_sample x = rate_once(c, slice);
			rate_sample *acc = c == a ? &sa : &sb;
			acc->ops += x.ops;
			acc->ns += x.ns;
		}
	}
	return per_second(sa) / per_second(sb);
}

static void record_ratio(bench_session *s, rate_cfg *cfg, const struct ratio_def *d,
			 uint64_t run_ns)
{
	const rate_cfg *num = cfg_named(cfg, d->num), *den = cfg_named(cfg, d->den);
	if (!num->needed || !den->needed)
		return;
	int runs = runs_of(s);
	double v[1000];
	for (int r = 0; r < runs; r++)
		v[r] = paired_once(num, den, run_ns);
	bench_record(s, d->name, "x", NULL, v, runs);
}

static void fig_rates(bench_session *s, const char *tmp)
{
	rate_cfg cfg[NRATES];
	bool ratio[NRATIOS], any = false;
	select_rates(s, cfg, ratio);
	for (size_t i = 0; i < NRATES; i++)
		any |= cfg[i].needed;
	if (!any)
		return;
	int runs = runs_of(s);
	double *samples = bench_xmalloc(sizeof *samples * NRATES * (uint64_t)runs);
	for (size_t i = 0; i < NRATES; i++)
		cfg[i].samples = samples + i * (size_t)runs;
	char dir[512];
	make_subdir(dir, sizeof dir, tmp, "rates");
	rate_env env = {0};
	setup(s, cfg, &env, dir);
	uint64_t run_ns = bench_ops(s, 1000, 150) * 1000000u;
	rate_rounds(s, cfg, NRATES, run_ns);
	for (size_t i = 0; i < NRATIOS; i++)
		if (ratio[i])
			record_ratio(s, cfg, &ratio_defs[i], run_ns);
	teardown(&env);
	free(samples);
	bench_note(s, "rates: %d rounds over all rate figures (alternating order, after a warm-up "
		   "round), %.2f s each; *_vs_*: per run, %d slices per side alternating A,B,B,A; "
		   "*_busy: a spinning thread keeps the other vCPU busy", runs, (double)run_ns / 1e9,
		   PAIR_SLICES);
}

/* ---- hot resolve: DURABLE against IN_MEMORY -------------------------------------- */
typedef struct hot_ctx {
	strata_store *st;
	strata_snapshot *snap;
	strata_node_id ids[HOT_NODES];
} hot_ctx;

static uint64_t run_hot(void *arg, uint64_t ops)
{
	const hot_ctx *h = arg;
	uint64_t acc = 0, errs = 0;
	uint64_t t0 = bench_now_ns();
	for (uint64_t i = 0; i < ops; i++) {
		const void *p = NULL;
		errs += strata_resolve(h->snap, h->ids[i & (HOT_NODES - 1)], &p, NULL) != 0;
		acc += (uintptr_t)p;
	}
	uint64_t t1 = bench_now_ns();
	bench_check(errs ? STRATA_ESTALE : 0, "strata_resolve (hot)");
	bench_sink += acc;
	return t1 - t0;
}

static void hot_fill(hot_ctx *h)
{
	strata_txn *t;
	bench_check(strata_txn_begin(h->st, NULL, 0, 0, &t), "strata_txn_begin");
	for (unsigned i = 0; i < HOT_NODES; i++) {
		void *p;
		bench_check(strata_txn_alloc(t, HOT_NODE_BYTES, 0, &h->ids[i], &p), "strata_txn_alloc");
		memset(p, (int)i, HOT_NODE_BYTES);
	}
	bench_check(strata_txn_commit(t, NULL), "strata_txn_commit");
}

static void hot_snapshot(hot_ctx *h)
{
	bench_check(strata_snapshot_open(h->st, &h->snap), "strata_snapshot_open");
	for (unsigned i = 0; i < HOT_NODES; i++) { /* DURABLE: loads the lazy images */
		const void *p;
		bench_check(strata_resolve(h->snap, h->ids[i], &p, NULL), "strata_resolve (load)");
	}
}

/* Created, closed cleanly, reopened: the nodes come back lazily, as after
 * any restart, and the first resolve of each loads it. */
static void hot_open_durable(hot_ctx *h, const char *tmp)
{
	char dir[512];
	bench_path_join(dir, sizeof dir, tmp, "hot");
	strata_options o = durable_options(dir, true);
	bench_check(strata_open(&o, &h->st), "strata_open (DURABLE)");
	hot_fill(h);
	bench_check(strata_close(h->st), "strata_close");
	o.flags = 0;
	bench_check(strata_open(&o, &h->st), "strata_open (reopen)");
	hot_snapshot(h);
}

static void hot_close(hot_ctx *h)
{
	strata_snapshot_close(h->snap);
	bench_check(strata_close(h->st), "strata_close");
}

static void fig_resolve(bench_session *s, const char *tmp)
{
	bool a = bench_wants(s, "resolve_hot_in_memory");
	bool b = bench_wants(s, "resolve_hot_durable");
	if (!bench_wants(s, "durable_overhead_resolve_hot") && !a && !b)
		return;
	hot_ctx mem = {0}, dur = {0};
	bench_check(strata_open(NULL, &mem.st), "strata_open (IN_MEMORY)");
	hot_fill(&mem);
	hot_snapshot(&mem);
	hot_open_durable(&dur, tmp);
	bench_overhead(s, "durable_overhead_resolve_hot", "resolve_hot_in_memory", run_hot, &mem,
		       "resolve_hot_durable", run_hot, &dur, bench_ops(s, 4000000, 250000));
	hot_close(&mem);
	hot_close(&dur);
}

/* ---- recovery: replaying the WAL of a killed writer ----------------------------- */
typedef struct wal_job {
	const char *dir;
	uint64_t target; /* WAL bytes to write */
} wal_job;

static void wal_txn(strata_store *st, unsigned flags, uint64_t *seq)
{
	strata_txn *t;
	strata_node_id id = 0;
	bench_check(strata_txn_begin(st, &roots[0], 1, flags, &t), "strata_txn_begin");
	for (unsigned i = 0; i < WAL_TXN_NODES; i++) {
		void *p;
		BENCH_CHECK(strata_txn_alloc(t, WAL_NODE_BYTES, 0, &id, &p), "strata_txn_alloc");
		memset(p, (int)(++*seq & 0xff), WAL_NODE_BYTES);
	}
	bench_check(strata_txn_set_root(t, roots[0], id), "strata_txn_set_root");
	bench_check(strata_txn_commit(t, NULL), "strata_txn_commit");
}

/* Child: NONE commits until the WAL holds `target` bytes, one SYNC commit
 * to make all of it durable, then exit without close. No checkpoint runs:
 * neither by size nor by time. */
static void child_write_wal(const void *arg, void *res)
{
	child_out *out = res;
	const wal_job *j = arg;
	strata_options o = durable_options(j->dir, true);
	no_checkpoints(&o);
	strata_store *st;
	bench_check(strata_open(&o, &st), "strata_open (DURABLE)");
	uint64_t seq = 0, t0 = bench_now_ns();
	while (wal_end(st->dur->wal) < j->target) {
		wal_txn(st, STRATA_TXN_NONE, &seq);
		out->count++;
	}
	wal_txn(st, STRATA_TXN_SYNC, &seq);
	out->count++;
	out->ns[0] = bench_now_ns() - t0;
	out->bytes = wal_end(st->dur->wal);
}

typedef struct open_job {
	const char *dir;
	bool resolve; /* also resolve OPEN_ROOT's node */
} open_job;

static void first_resolve(strata_store *st)
{
	strata_snapshot *snap;
	strata_node_id id;
	const void *p;
	bench_check(strata_snapshot_open(st, &snap), "strata_snapshot_open");
	bench_check(strata_snapshot_root(snap, OPEN_ROOT, &id), "strata_snapshot_root");
	bench_check(strata_resolve(snap, id, &p, NULL), "strata_resolve (first)");
	bench_sink += *(const unsigned char *)p;
	strata_snapshot_close(snap);
}

/* Child: times strata_open (and the first resolve), then exits without
 * close, leaving the files as they were. */
static void child_open(const void *arg, void *res)
{
	child_out *out = res;
	const open_job *j = arg;
	strata_options o = durable_options(j->dir, false);
	no_checkpoints(&o); /* the recovered store stays as it is */
	strata_store *st;
	uint64_t c0 = thread_cpu_ns(), t0 = bench_now_ns();
	bench_check(strata_open(&o, &st), "strata_open (recover)");
	out->ns[0] = bench_now_ns() - t0;
	out->cpu_ns = thread_cpu_ns() - c0;
	snprintf(out->msg, sizeof out->msg, "%s", strata_last_error());
	if (j->resolve)
		first_resolve(st);
	out->ns[1] = bench_now_ns() - t0;
}

/* Like the runner's batches (bench.c): an open from the page cache is
 * CPU-bound, so one that got less than this share of its wall time as CPU
 * was descheduled by other jobs and is timed again, up to MAX_RETRIES times.
 * Opens that read the device (cold) are taken as they come. */
#define RAN_SHARE 0.95
#define MAX_RETRIES 4

static child_out open_once(bench_session *s, const open_job *j, bool cold)
{
	for (int attempt = 0;; attempt++) {
		if (cold)
			bench_evict_dir(j->dir);
		child_out o = in_child(child_open, j);
		if (cold || s->opts.no_rerun || attempt == MAX_RETRIES ||
		    (double)o.cpu_ns >= RAN_SHARE * (double)o.ns[0])
			return o;
		s->reruns++;
	}
}

/* Runs child_open runs times (after one untimed open): ms per open, and
 * ms for open + first resolve when asked. */
static child_out time_opens(bench_session *s, const open_job *j, bool cold, double *ms,
			    double *ms_resolve)
{
	child_out o = in_child(child_open, j);
	for (int r = 0; r < runs_of(s); r++) {
		o = open_once(s, j, cold);
		ms[r] = (double)o.ns[0] / 1e6;
		if (ms_resolve)
			ms_resolve[r] = (double)o.ns[1] / 1e6;
	}
	return o;
}

static void record_recovery(bench_session *s, const char *open_name, const char *mbs_name,
			    const double *ms, uint64_t bytes)
{
	int runs = runs_of(s);
	double mbs[1000];
	for (int r = 0; r < runs; r++)
		mbs[r] = (double)bytes / 1e6 / (ms[r] / 1e3);
	if (open_name)
		bench_record(s, open_name, "ms", NULL, ms, runs);
	if (mbs_name)
		bench_record(s, mbs_name, "MB/s", NULL, mbs, runs);
}

static void recovery_name(char *buf, const char *what, unsigned mib)
{
	snprintf(buf, BENCH_NAME_MAX, "recovery_%s_%uMiB", what, mib);
}

static void recovery_one(bench_session *s, const char *tmp, unsigned mib)
{
	char open_name[BENCH_NAME_MAX], mbs_name[BENCH_NAME_MAX], cold_name[BENCH_NAME_MAX];
	recovery_name(open_name, "open", mib);
	recovery_name(mbs_name, "replay", mib);
	recovery_name(cold_name, "replay_cold", mib);
	bool want_open = bench_wants(s, open_name), want_mbs = bench_wants(s, mbs_name);
	bool want_cold = bench_wants(s, cold_name);
	if (!want_open && !want_mbs && !want_cold)
		return;
	char dir[512];
	bench_path_join(dir, sizeof dir, tmp, "recovery");
	wal_job wj = {.dir = dir, .target = mib * MIB};
	child_out w = in_child(child_write_wal, &wj);
	open_job oj = {.dir = dir};
	double ms[1000];
	child_out o = time_opens(s, &oj, false, ms, NULL);
	record_recovery(s, want_open ? open_name : NULL, want_mbs ? mbs_name : NULL, ms, w.bytes);
	if (want_cold) {
		time_opens(s, &oj, true, ms, NULL);
		record_recovery(s, NULL, cold_name, ms, w.bytes);
	}
	const char *said = strstr(o.msg, "recovered");
	bench_note(s, "recovery %u MiB: %llu WAL bytes, %llu commits written in %.2f s; open: "
		   "%.120s", mib, (unsigned long long)w.bytes, (unsigned long long)w.count,
		   (double)w.ns[0] / 1e9, said ? said : o.msg);
	bench_remove_tree(dir);
}

static const unsigned recovery_mib[] = {16, 64, 256}; /* --quick: the first two */

static void fig_recovery(bench_session *s, const char *tmp)
{
	size_t n = sizeof recovery_mib / sizeof *recovery_mib;
	for (size_t i = 0; i < (s->opts.quick ? 2 : n); i++)
		recovery_one(s, tmp, recovery_mib[i]);
}

/* ---- open of a cleanly closed store ------------------------------------------- */
typedef struct build_job {
	const char *dir;
	uint64_t nodes;
} build_job;

static void build_txn(strata_store *st, uint64_t from, uint64_t n, bool last)
{
	strata_txn *t;
	strata_node_id id = 0;
	bench_check(strata_txn_begin(st, &OPEN_ROOT, 1, STRATA_TXN_NONE, &t), "strata_txn_begin");
	for (uint64_t k = from; k < from + n; k++) {
		void *p;
		BENCH_CHECK(strata_txn_alloc(t, OPEN_NODE_BYTES, 0, &id, &p), "strata_txn_alloc");
		memcpy(p, &k, sizeof k);
	}
	if (last)
		bench_check(strata_txn_set_root(t, OPEN_ROOT, id), "strata_txn_set_root");
	bench_check(strata_txn_commit(t, NULL), "strata_txn_commit");
}

/* Child: nodes committed in big NONE transactions, then a clean close
 * (its final checkpoint leaves the WAL empty). */
static void child_build(const void *arg, void *res)
{
	child_out *out = res;
	const build_job *j = arg;
	strata_options o = durable_options(j->dir, true);
	strata_store *st;
	uint64_t t0 = bench_now_ns();
	bench_check(strata_open(&o, &st), "strata_open (DURABLE)");
	for (uint64_t done = 0; done < j->nodes; done += OPEN_TXN_NODES) {
		uint64_t n = j->nodes - done < OPEN_TXN_NODES ? j->nodes - done : OPEN_TXN_NODES;
		build_txn(st, done, n, done + n == j->nodes);
	}
	out->ns[1] = bench_now_ns() - t0;
	bench_check(strata_close(st), "strata_close");
	out->ns[0] = bench_now_ns() - t0;
}

static void count_label(char *buf, size_t n, uint64_t nodes)
{
	if (!nodes)
		snprintf(buf, n, "empty");
	else if (nodes % 1000000 == 0)
		snprintf(buf, n, "%lluM", (unsigned long long)(nodes / 1000000));
	else
		snprintf(buf, n, "%lluk", (unsigned long long)(nodes / 1000));
}

/* Times the opens of the store in dir; records the wanted figures. */
static void measure_opens(bench_session *s, const char *dir, const char *const names[3],
			  const bool want[3], bool resolve)
{
	open_job oj = {.dir = dir, .resolve = resolve};
	int runs = runs_of(s);
	double ms[1000], ms_res[1000];
	time_opens(s, &oj, false, ms, ms_res);
	if (want[0])
		bench_record(s, names[0], "ms", NULL, ms, runs);
	if (want[1])
		bench_record(s, names[1], "ms", NULL, ms_res, runs);
	if (want[2]) {
		time_opens(s, &oj, true, ms, ms_res);
		bench_record(s, names[2], "ms", NULL, ms, runs);
	}
}

static void open_one(bench_session *s, const char *tmp, uint64_t nodes)
{
	char lab[32], a[BENCH_NAME_MAX], b[BENCH_NAME_MAX], c[BENCH_NAME_MAX];
	count_label(lab, sizeof lab, nodes);
	snprintf(a, sizeof a, "open_clean_%s", lab);
	snprintf(b, sizeof b, "open_resolve_%s", lab);
	snprintf(c, sizeof c, "open_clean_cold_%s", lab);
	const char *const names[3] = {a, b, c};
	bool want[3] = {bench_wants(s, a), nodes && bench_wants(s, b), bench_wants(s, c)};
	if (!want[0] && !want[1] && !want[2])
		return;
	char dir[512];
	bench_path_join(dir, sizeof dir, tmp, "open");
	build_job bj = {.dir = dir, .nodes = nodes};
	child_out built = in_child(child_build, &bj);
	measure_opens(s, dir, names, want, nodes > 0);
	if (nodes)
		bench_note(s, "open %s: %llu nodes of %u B built in txns of %u (NONE) in %.2f s, "
			   "clean close %.2f s", lab, (unsigned long long)nodes, OPEN_NODE_BYTES,
			   OPEN_TXN_NODES, (double)built.ns[1] / 1e9,
			   (double)(built.ns[0] - built.ns[1]) / 1e9);
	bench_remove_tree(dir);
}

static void fig_open(bench_session *s, const char *tmp)
{
	open_one(s, tmp, 0);
	open_one(s, tmp, bench_ops(s, 1000000, 100000));
	open_one(s, tmp, bench_ops(s, 10000000, 1000000));
}

/* ---- targets, ratios, the suite ------------------------------------------------- */
/* A floor target (bench.h's targets are ceilings): a note with the verdict. */
static void note_floor(bench_session *s, const char *name, double min, const char *what)
{
	const bench_fig *f = bench_find(s, name);
	if (!f)
		return;
	bench_note(s, "target %s >= %g %s (%s): median %.4g %s (best run %.4g: %s)", name, min,
		   f->unit, what, f->median, f->median >= min ? "MET" : "MISSED", f->max,
		   f->max >= min ? "met" : "missed");
}

static void describe(bench_session *s)
{
	static const char *const ratios[][2] = {
		{"sync_commit_1t", "lmdb_commit_sync"},
		{"sync_commit_1t", "sqlite_wal_full_commit"},
		{"sync_commit_1t_busy", "lmdb_commit_sync_busy"},
		{"sync_commit_1t_busy", "sqlite_wal_full_commit_busy"},
		{"sync_commit_64t", "sync_commit_1t"},
		{"sync_commit_64t", "lmdb_commit_sync"},
		{"sync_commit_64t", "sqlite_wal_full_commit"},
		{"sync_commit_64t", "raw_sync_overwrite_512B_busy"},
		{"async_commit_1t", "sqlite_wal_normal_commit"},
		{"none_commit_1t", "lmdb_commit_nosync"},
		{"lmdb_commit_sync", "raw_sync_overwrite_512B"},
		{"sqlite_wal_full_commit", "raw_sync_overwrite_512B"},
		{"raw_sync_overwrite_512B_busy", "raw_sync_overwrite_512B"},
		{"raw_sync_append_512B", "raw_sync_overwrite_512B"},
		{"raw_dsync_direct_512B_busy", "raw_sync_overwrite_512B_busy"},
		{"resolve_hot_durable", "resolve_hot_in_memory"},
	};
	for (size_t i = 0; i < sizeof ratios / sizeof *ratios; i++)
		bench_add_ratio(s, ratios[i][0], ratios[i][1]);
	bench_add_target(s, "durable_overhead_resolve_hot", 2.0);
	bench_add_target(s, "open_clean_10M", 100.0);
	bench_note(s, "commits: one-row transactions, %u B each: Strata copies the thread's root "
		   "node (own root per thread) and repoints the root; LMDB puts the next 8 B key; "
		   "SQLite INSERTs the next key", VALUE_BYTES);
	bench_note(s, "raw: %u B pwrite at successive offsets + fdatasync, into a preallocated "
		   "zero-filled %u MiB file (overwrite, wraps) or at the end (append); direct: "
		   "O_DIRECT|O_DSYNC, no fdatasync", RAW_BYTES, RAW_FILE_BYTES >> 20);
}

static void judge(bench_session *s)
{
	note_floor(s, "sync_commit_64t", 100000, "64 SYNC committers");
	note_floor(s, ratio_defs[0].name, 0.8, "1 SYNC committer / raw overwrite+fdatasync");
	note_floor(s, ratio_defs[1].name, 0.8, "the same, with the spinner");
	for (size_t i = 0; i < sizeof recovery_mib / sizeof *recovery_mib; i++) {
		char name[BENCH_NAME_MAX];
		recovery_name(name, "replay", recovery_mib[i]);
		note_floor(s, name, 1000, "replay 1 GB/s, page cache warm");
	}
}

int bench_durable(bench_session *s)
{
	init_root_names();
	describe(s);
	char tmp[512] = "";
	if (!s->opts.list)
		bench_make_tmpdir(tmp, sizeof tmp, "durable");
	fig_resolve(s, tmp);
	fig_rates(s, tmp);
	fig_recovery(s, tmp);
	fig_open(s, tmp);
	judge(s);
	if (tmp[0])
		bench_remove_tree(tmp);
	return 0;
}
