/*
 * bench_scale.c — the `scale` suite (issue 6, item 7): what happens when a
 * DURABLE store is larger than memory, opened often and churned for long.
 * How to run it and what it measured: design/PERFORMANCE.md, "Scale".
 *
 * Figures:
 *   open_clean_N       strata_open of a cleanly closed store of N live 64 B
 *                      nodes (1M and 10M; --quick 50k and 500k; 100M too
 *                      with STRATA_SCALE_HUGE=1), page cache warm;
 *   open_query_N       open + the first point query (snapshot open, resolve
 *                      of a random NodeID, read its bytes, close): ms;
 *   query_first_N      that first query alone (its object-table chunk and
 *                      its image are read from the files): us;
 *   query_warm_N       a point query of a node already loaded (mean over
 *                      1024 random loaded nodes, 16 passes): ns;
 *   open_query_dropped_N  open + first query with the store's files dropped
 *                      from the page cache first (reads the device);
 *   open_ratio_*       per run, open_clean of the big store / of the small
 *                      one, the two opened alternately in the same run;
 *   random_query_*     point queries (snapshot open + strata_resolve of a
 *                      uniformly random NodeID + read + close) on the 10M
 *                      store (--quick 500k) opened with cache_bytes = a tenth
 *                      of its node bytes: queries/s and the cache hit ratio
 *                      of the same batch, from strata_stats (cache_hits,
 *                      cache_misses before and after);
 *   ot_bytes_per_entry  growth of the process's resident anonymous memory
 *                      (statm resident - shared: mapped file pages, such
 *                      as the checkpoint's used-slot words read in place,
 *                      are page cache) while strata_node_stat
 *                      touches every entry of that store (object-table
 *                      chunks loaded; images pass through a 64 KiB
 *                      cache), less the cache's bytes at the end (strata_stats
 *                      cache_bytes) and the segment headers the loads built
 *                      (segments_unbuilt before - after, 8 KiB each),
 *                      divided by the entries; after a warm-up read of the
 *                      first node, whose chunk is not counted;
 *                      ot_rss_per_entry_raw: the same without subtracting;
 *                      ot_bytes_per_entry_2nd_half: the same figure over
 *                      the second half of the entries only (the marginal
 *                      cost: what is allocated once, whatever the count,
 *                      falls in the first half);
 *   space_amp_*        strata_stats().space_amplification (file bytes /
 *                      live bytes) after a churn of random node
 *                      replacements (1 KiB nodes, strata_txn_write, 1000 per
 *                      commit, checkpoints by WAL size, background
 *                      compaction off): without a reader, with a snapshot
 *                      held for the whole churn, once that reader closed,
 *                      and after strata_compact() (both stores);
 *   disk_amp_*         the same with the files' allocated blocks (st_blocks)
 *                      in place of their sizes: a punched hole counts;
 *   lmdb_space_amp_*   LMDB under the same churn (8 B key + 1016 B value,
 *                      same random order, 1000 puts per commit, MDB_NOSYNC),
 *                      same run: data.mdb's size / (rows x 1024 B); its
 *                      "compaction" is mdb_env_copy2(MDB_CP_COMPACT);
 *   churn_rate_*       replacements per second during the churn;
 *   *_compacted        in the same process, right after the churn (and the
 *                      reader's close): strata_reclaim, strata_checkpoint,
 *                      strata_compact; *_compacted_reopen: the store closed,
 *                      reopened and compacted, as `strata compact DIR` does.
 *
 * Environment: STRATA_SCALE_HUGE=1 adds the 100M store; STRATA_SCALE_DEBUG=1
 * prints each churn run's readings and size classes on stderr.
 *
 * Every store is built, opened and churned in forked children (each exits
 * without close after measuring, except the builders), so no figure sees
 * memory or caches of another. Everything lives in one temporary directory
 * under $TMPDIR (default /tmp), removed at the end.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "strata/strata.h"
#include "suites.h"

#ifdef STRATA_BENCH_HAVE_LMDB
#include <lmdb.h>
#endif

#define NODE_BYTES 64u           /* nodes of the open / query stores */
#define BUILD_TXN_NODES 100000u
#define WARM_IDS 1024u           /* nodes a warm query picks from */
#define WARM_PASSES 16u
#define MAXR 32                  /* runs measured inside one child */
#define CHURN_NODE_BYTES 1024u
#define CHURN_PER_COMMIT 1000u
#define LMDB_KEY 8u
#define MIB (1ull << 20)
#define GIB (1ull << 30)

/* ---- errors, paths, the temporary directory ------------------------------- */
/* The files strata_stats counts as the store's (the data file and the
 * checkpoint files; not the WAL, SUPER, LOCK). */
static bool store_file(const char *name)
{
	return !strcmp(name, "data") || !strncmp(name, "ckpt.", 5);
}

/* Bytes of the directory's store files: apparent sizes, or the blocks the
 * file system allocated (a punched hole counts nothing). */
static uint64_t dir_bytes(const char *dir, bool allocated)
{
	DIR *d = opendir(dir);
	uint64_t sum = 0;
	if (!d)
		return 0;
	for (struct dirent *e; (e = readdir(d));) {
		struct stat st;
		if (!store_file(e->d_name))
			continue;
		if (!fstatat(dirfd(d), e->d_name, &st, 0) && S_ISREG(st.st_mode))
			sum += allocated ? (uint64_t)st.st_blocks * 512u : (uint64_t)st.st_size;
	}
	closedir(d);
	return sum;
}

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Figures measured in children: at least 3 runs; --quick: exactly 3. */
static int runs_of(const bench_session *s)
{
	int r = s->opts.runs < 3 || s->opts.quick ? 3 : s->opts.runs;
	return r > MAXR ? MAXR : r;
}

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long long size = 0, res = 0;
	if (!f || fscanf(f, "%llu %llu", &size, &res) != 2)
		bench_sys_fail("reading /proc/self/statm");
	fclose(f);
	return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* Resident anonymous memory (statm resident - shared): what the process
 * allocated, without the file pages it has mapped (the checkpoint's
 * used-slot words, read in place when a segment's header is built, are
 * page cache, not memory of the object table). */
static uint64_t anon_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long long size = 0, res = 0, shared = 0;
	if (!f || fscanf(f, "%llu %llu %llu", &size, &res, &shared) != 3)
		bench_sys_fail("reading /proc/self/statm");
	fclose(f);
	return (uint64_t)(res - shared) * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* ---- child processes -------------------------------------------------------- */
typedef struct child_out {
	double d[16];
	double a[MAXR], b[MAXR];
	uint64_t u[8];
	int rc;
	char msg[200];
} child_out;

/* A failing library call in the child ends the program here too. */
static child_out in_child(bench_child_fn fn, const void *arg)
{
	static child_out o; /* large: not on the stack */
	bench_in_child(fn, arg, &o, sizeof o);
	return o;
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

/* A reader child: no checkpoint, no compaction, the files stay as built. */
static strata_options reader_options(const char *dir, uint64_t cache_bytes)
{
	strata_options o = durable_options(dir, false);
	o.checkpoint_wal_bytes = UINT64_MAX;
	o.checkpoint_dirty_nodes = UINT64_MAX;
	o.checkpoint_interval_ms = 0;
	o.compact_amplification = 0;
	o.cache_bytes = cache_bytes;
	return o;
}

/* ---- the stores of 64 B nodes ------------------------------------------------- */
typedef struct store_spec {
	char dir[512], ids[512]; /* store directory; its NodeIDs, in order */
	char label[24];
	uint64_t nodes;
	bool built;
} store_spec;

static void label_of(char *buf, size_t n, uint64_t nodes)
{
	if (nodes % 1000000 == 0)
		snprintf(buf, n, "%lluM", (unsigned long long)(nodes / 1000000));
	else
		snprintf(buf, n, "%lluk", (unsigned long long)(nodes / 1000));
}

/* Child: the nodes in NONE transactions of BUILD_TXN_NODES, their NodeIDs
 * appended to the ids file, a clean close. A huge store is built without
 * checkpoints until the close (each would write the whole object table)
 * and without a cache bound: with cache_bytes = 4 GiB the build of 100M
 * stalled past 66M nodes (VmRSS 14 GB, the writer in grace_collect). It
 * needs ~11 GB of memory and ~20 GB of disk while it runs. */
static void child_build(const void *arg, void *res)
{
	child_out *out = res;
	const store_spec *sp = arg;
	strata_options o = durable_options(sp->dir, true);
	o.compact_amplification = 0;
	if (sp->nodes > 20000000) {
		o.checkpoint_wal_bytes = UINT64_MAX;
		o.checkpoint_dirty_nodes = UINT64_MAX;
		o.checkpoint_interval_ms = 0;
		o.wal_file_size = 1 * GIB;
	}
	FILE *f = fopen(sp->ids, "wb");
	if (!f)
		bench_sys_fail("fopen (ids)");
	strata_node_id *buf = bench_xmalloc(sizeof *buf * BUILD_TXN_NODES);
	strata_store *st;
	uint64_t t0 = bench_now_ns();
	bench_check(strata_open(&o, &st), "strata_open (DURABLE, create)");
	for (uint64_t done = 0; done < sp->nodes;) {
		uint64_t n = sp->nodes - done < BUILD_TXN_NODES ? sp->nodes - done : BUILD_TXN_NODES;
		strata_txn *t;
		bench_check(strata_txn_begin(st, NULL, 0, STRATA_TXN_NONE, &t), "strata_txn_begin");
		for (uint64_t k = 0; k < n; k++) {
			void *p;
			uint64_t v = done + k;
			BENCH_CHECK(strata_txn_alloc(t, NODE_BYTES, 0, &buf[k], &p), "strata_txn_alloc");
			memcpy(p, &v, sizeof v);
		}
		bench_check(strata_txn_commit(t, NULL), "strata_txn_commit");
		if (fwrite(buf, sizeof *buf, n, f) != n)
			bench_sys_fail("fwrite (ids)");
		done += n;
	}
	out->d[0] = (double)(bench_now_ns() - t0) / 1e9;
	bench_check(strata_close(st), "strata_close");
	out->d[1] = (double)(bench_now_ns() - t0) / 1e9 - out->d[0];
	if (fclose(f))
		bench_sys_fail("fclose (ids)");
	free(buf);
}

static void build_store(bench_session *s, store_spec *sp)
{
	if (sp->built)
		return;
	child_out o = in_child(child_build, sp);
	sp->built = true;
	uint64_t bytes = dir_bytes(sp->dir, false);
	bench_note(s, "store %s: %llu nodes of %u B built in %.1f s (NONE txns of %u), clean "
		   "close %.1f s; data + checkpoint files %.0f MiB", sp->label,
		   (unsigned long long)sp->nodes, NODE_BYTES, o.d[0], BUILD_TXN_NODES, o.d[1],
		   (double)bytes / MIB);
}

/* n NodeIDs of the store picked at random (pread from its ids file). */
static void pick_ids(const store_spec *sp, uint64_t seed, strata_node_id *ids, unsigned n)
{
	int fd = open(sp->ids, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		bench_sys_fail("open (ids)");
	for (unsigned i = 0; i < n; i++) {
		off_t at = (off_t)(splitmix(&seed) % sp->nodes * sizeof *ids);
		if (pread(fd, &ids[i], sizeof *ids, at) != (ssize_t)sizeof *ids)
			bench_sys_fail("pread (ids)");
	}
	close(fd);
}

/* All NodeIDs of the store, in order. */
static strata_node_id *load_ids(const store_spec *sp)
{
	strata_node_id *ids = bench_xmalloc(sizeof *ids * sp->nodes);
	FILE *f = fopen(sp->ids, "rb");
	if (!f || fread(ids, sizeof *ids, sp->nodes, f) != sp->nodes)
		bench_sys_fail("reading the ids file");
	fclose(f);
	return ids;
}

/* One point query: snapshot, resolve, read the node's first 8 bytes. */
static inline uint64_t point_query(strata_store *st, strata_node_id id)
{
	strata_snapshot *snap;
	const void *p;
	uint64_t v;
	BENCH_CHECK(strata_snapshot_open(st, &snap), "strata_snapshot_open");
	BENCH_CHECK(strata_resolve(snap, id, &p, NULL), "strata_resolve");
	memcpy(&v, p, sizeof v);
	strata_snapshot_close(snap);
	return v;
}

/* ---- figure 1: open, first query, warm query ---------------------------------- */
typedef struct open_job {
	const store_spec *sp;
	strata_node_id ids[WARM_IDS]; /* ids[0]: the first query */
} open_job;

/* Child: times strata_open, the first point query, then point queries of
 * loaded nodes; exits without close. */
static void child_open(const void *arg, void *res)
{
	child_out *out = res;
	const open_job *j = arg;
	strata_options o = reader_options(j->sp->dir, 0);
	strata_store *st;
	uint64_t c0 = thread_cpu_ns(), t0 = bench_now_ns();
	bench_check(strata_open(&o, &st), "strata_open");
	uint64_t t1 = bench_now_ns(), c1 = thread_cpu_ns();
	uint64_t acc = point_query(st, j->ids[0]);
	uint64_t t2 = bench_now_ns();
	for (unsigned i = 1; i < WARM_IDS; i++) /* loads them: untimed */
		acc += point_query(st, j->ids[i]);
	uint64_t t3 = bench_now_ns();
	for (unsigned pass = 0; pass < WARM_PASSES; pass++)
		for (unsigned i = 0; i < WARM_IDS; i++)
			acc += point_query(st, j->ids[i]);
	uint64_t t4 = bench_now_ns();
	bench_sink += acc;
	out->d[0] = (double)(t1 - t0) / 1e6;               /* open, ms */
	out->d[1] = (double)(t2 - t0) / 1e6;               /* open + first query, ms */
	out->d[2] = (double)(t2 - t1) / 1e3;               /* first query, us */
	out->d[3] = (double)(t4 - t3) / (WARM_IDS * WARM_PASSES); /* warm query, ns */
	out->d[4] = (double)(c1 - c0) / 1e6;               /* CPU of the open, ms */
}

#define RAN_SHARE 0.95
#define MAX_RETRIES 4

/* An open from the page cache is CPU-bound: one that got less than
 * RAN_SHARE of its wall time as CPU was descheduled and is timed again. */
static child_out open_once(bench_session *s, const open_job *j, bool dropped)
{
	for (int attempt = 0;; attempt++) {
		if (dropped)
			bench_evict_dir(j->sp->dir);
		child_out o = in_child(child_open, j);
		if (dropped || s->opts.no_rerun || attempt == MAX_RETRIES ||
		    o.d[4] >= RAN_SHARE * o.d[0])
			return o;
		s->reruns++;
	}
}

typedef struct open_figs {
	char open[BENCH_NAME_MAX], oq[BENCH_NAME_MAX], first[BENCH_NAME_MAX];
	char warm[BENCH_NAME_MAX], dropped[BENCH_NAME_MAX];
	bool w_open, w_oq, w_first, w_warm, w_dropped;
	double v[5][MAXR];
} open_figs;

static bool open_figs_init(bench_session *s, open_figs *f, const char *label)
{
	snprintf(f->open, sizeof f->open, "open_clean_%s", label);
	snprintf(f->oq, sizeof f->oq, "open_query_%s", label);
	snprintf(f->first, sizeof f->first, "query_first_%s", label);
	snprintf(f->warm, sizeof f->warm, "query_warm_%s", label);
	snprintf(f->dropped, sizeof f->dropped, "open_query_dropped_%s", label);
	f->w_open = bench_wants(s, f->open);
	f->w_oq = bench_wants(s, f->oq);
	f->w_first = bench_wants(s, f->first);
	f->w_warm = bench_wants(s, f->warm);
	f->w_dropped = bench_wants(s, f->dropped);
	return f->w_open || f->w_oq || f->w_first || f->w_warm || f->w_dropped;
}

static void fig_open(bench_session *s, store_spec *stores, size_t n)
{
	static open_figs figs[3];
	bool any = false, want[3];
	char ratio_name[2][BENCH_NAME_MAX];
	bool want_ratio[2] = {false, false};
	for (size_t i = 0; i < n; i++)
		any |= want[i] = open_figs_init(s, &figs[i], stores[i].label);
	for (size_t i = 1; i < n; i++) {
		snprintf(ratio_name[i - 1], BENCH_NAME_MAX, "open_ratio_%s_%s", stores[i].label,
			 stores[0].label);
		want_ratio[i - 1] = bench_wants(s, ratio_name[i - 1]);
		any |= want_ratio[i - 1];
	}
	if (!any)
		return;
	for (size_t i = 0; i < n; i++)
		build_store(s, &stores[i]);
	int runs = runs_of(s);
	static open_job job;
	/* One untimed open of each, then rounds over the stores in alternating
	 * order, so host drift hits every size alike. */
	for (size_t i = 0; i < n; i++) {
		job.sp = &stores[i];
		pick_ids(&stores[i], 999 + i, job.ids, WARM_IDS);
		in_child(child_open, &job);
	}
	for (int r = 0; r < runs; r++) {
		for (size_t k = 0; k < n; k++) {
			size_t i = r % 2 ? n - 1 - k : k;
			open_figs *f = &figs[i];
			job.sp = &stores[i];
			pick_ids(&stores[i], (uint64_t)r * 7919 + i, job.ids, WARM_IDS);
			child_out o = open_once(s, &job, false);
			for (int m = 0; m < 4; m++)
				f->v[m][r] = o.d[m];
			if (f->w_dropped) {
				o = open_once(s, &job, true);
				f->v[4][r] = o.d[1];
			}
		}
	}
	for (size_t i = 0; i < n; i++) {
		open_figs *f = &figs[i];
		if (!want[i])
			continue;
		if (f->w_open)
			bench_record(s, f->open, "ms", NULL, f->v[0], runs);
		if (f->w_oq)
			bench_record(s, f->oq, "ms", NULL, f->v[1], runs);
		if (f->w_first)
			bench_record(s, f->first, "us", NULL, f->v[2], runs);
		if (f->w_warm)
			bench_record(s, f->warm, "ns", NULL, f->v[3], runs);
		if (f->w_dropped)
			bench_record(s, f->dropped, "ms", NULL, f->v[4], runs);
		bench_add_target(s, f->oq, 50.0);
	}
	for (size_t i = 1; i < n; i++) {
		if (!want_ratio[i - 1])
			continue;
		double ratio[MAXR];
		for (int r = 0; r < runs; r++)
			ratio[r] = figs[i].v[0][r] / figs[0].v[0][r];
		bench_record(s, ratio_name[i - 1], "x", NULL, ratio, runs);
		bench_add_target(s, ratio_name[i - 1], 1.5);
	}
}

/* ---- figure 2: random point queries on data 10 x the cache --------------------- */
typedef struct random_job {
	const store_spec *sp;
	uint64_t cache_bytes, queries;
	int runs;
	bool no_rerun;
} random_job;

typedef struct random_batch {
	uint64_t ns, cpu_ns, hits, misses;
} random_batch;

static random_batch random_once(strata_store *st, const strata_node_id *ids, uint64_t n,
				uint64_t queries, uint64_t *seed)
{
	strata_store_stats a, b;
	bench_check(strata_stats(st, &a), "strata_stats");
	uint64_t acc = 0, c0 = thread_cpu_ns(), t0 = bench_now_ns();
	for (uint64_t q = 0; q < queries; q++)
		acc += point_query(st, ids[splitmix(seed) % n]);
	uint64_t t1 = bench_now_ns(), c1 = thread_cpu_ns();
	bench_check(strata_stats(st, &b), "strata_stats");
	bench_sink += acc;
	return (random_batch){t1 - t0, c1 - c0, b.cache_hits - a.cache_hits,
			      b.cache_misses - a.cache_misses};
}

/* Child: the store opened with the cache bound; one untimed batch fills
 * the cache (and loads every object-table chunk); then runs batches, each
 * redone (up to MAX_RETRIES times) when preempted. */
static void child_random(const void *arg, void *res)
{
	child_out *out = res;
	const random_job *j = arg;
	strata_node_id *ids = load_ids(j->sp);
	strata_options o = reader_options(j->sp->dir, j->cache_bytes);
	strata_store *st;
	bench_check(strata_open(&o, &st), "strata_open (bounded cache)");
	uint64_t seed = 12345;
	random_once(st, ids, j->sp->nodes, j->queries, &seed);
	for (int r = 0; r < j->runs; r++) {
		random_batch b;
		for (int attempt = 0;; attempt++) {
			b = random_once(st, ids, j->sp->nodes, j->queries, &seed);
			if (j->no_rerun || attempt == MAX_RETRIES ||
			    (double)b.cpu_ns >= RAN_SHARE * (double)b.ns)
				break;
			out->u[1]++;
		}
		out->a[r] = (double)j->queries * 1e9 / (double)b.ns;
		out->b[r] = b.hits + b.misses ? 100.0 * (double)b.hits / (double)(b.hits + b.misses)
					      : 0;
	}
	strata_store_stats ss;
	bench_check(strata_stats(st, &ss), "strata_stats");
	out->d[0] = (double)ss.cache_bytes / MIB;
	out->d[1] = (double)ss.cache_evictions;
	out->d[2] = (double)ss.cache_bytes_read / MIB;
	out->d[3] = (double)rss_bytes() / MIB;
}

static void fig_random(bench_session *s, store_spec *sp)
{
	bool a = bench_wants(s, "random_query_10x_cache");
	bool b = bench_wants(s, "random_query_hit_ratio");
	if (!a && !b)
		return;
	build_store(s, sp);
	random_job j = {.sp = sp,
			.cache_bytes = sp->nodes * NODE_BYTES / 10,
			.queries = bench_ops(s, 1000000, 100000),
			.runs = runs_of(s),
			.no_rerun = s->opts.no_rerun};
	child_out o = in_child(child_random, &j);
	s->reruns += (int)o.u[1];
	if (a)
		bench_record(s, "random_query_10x_cache", "q/s", NULL, o.a, j.runs);
	if (b)
		bench_record(s, "random_query_hit_ratio", "%", NULL, o.b, j.runs);
	bench_note(s, "random queries: store %s (%llu MiB of 64 B images), cache_bytes %.1f MiB, "
		   "%llu uniform queries per batch (snapshot open, resolve, read, close), page "
		   "cache warm", sp->label, (unsigned long long)(sp->nodes * NODE_BYTES / MIB),
		   (double)j.cache_bytes / MIB, (unsigned long long)j.queries);
	bench_note(s, "random queries, at the end: cache %.1f MiB, %.0f evictions, %.0f MiB "
		   "read, VmRSS %.0f MiB", o.d[0], o.d[1], o.d[2], o.d[3]);
}

/* ---- figure 4: resident bytes per object-table entry -------------------------- */
/* Small, so the cache's own metadata (cnodes, beyond cache_bytes) stays
 * out of the figure; large enough for the images of one query. */
#define OT_FIG_CACHE (64u << 10)
/* Entries of one object-table chunk: the warm-up's, not counted. */
#define OT_FIG_WARM 16384u
/* A segment header's resident pages: the 4224 B before slot 0 (FORMAT.md). */
#define SEG_HEADER_BYTES 8192.0

/* Resident growth between two points of the touch, less the cache's
 * images and the segment headers built in between, per entry. */
static double ot_growth(uint64_t r0, uint64_t r1, const strata_store_stats *s0,
			const strata_store_stats *s1, double n)
{
	double headers = (double)(s0->segments_unbuilt - s1->segments_unbuilt) * SEG_HEADER_BYTES;
	double cached = (double)s1->cache_bytes - (double)s0->cache_bytes;
	return ((double)(r1 - r0) - cached - headers) / n;
}

static void child_ot(const void *arg, void *res)
{
	child_out *out = res;
	const store_spec *sp = arg;
	strata_node_id *ids = load_ids(sp); /* read, so already resident */
	strata_options o = reader_options(sp->dir, OT_FIG_CACHE);
	strata_store *st;
	bench_check(strata_open(&o, &st), "strata_open");
	/* Warm-up: the first chunk fault allocates what every later one reuses
	 * (its read buffer, kept by the allocator); that chunk (the nodes were
	 * issued in order from one shard) is left out of the count. */
	uint64_t first = OT_FIG_WARM < sp->nodes ? OT_FIG_WARM : 0, acc = 0;
	strata_snapshot *w;
	strata_node_info wi;
	bench_check(strata_snapshot_open(st, &w), "strata_snapshot_open");
	bench_check(strata_node_stat(w, ids[0], &wi), "strata_node_stat");
	strata_snapshot_close(w);
	strata_store_stats s0;
	bench_check(strata_stats(st, &s0), "strata_stats");
	uint64_t r0 = anon_bytes(), mid = first + (sp->nodes - first) / 2, rm = r0;
	strata_store_stats sm = s0;
	/* A snapshot per node: strata_node_stat reads the image too (into the
	 * 64 KiB cache), and a snapshot held throughout would keep them all. */
	for (uint64_t i = first; i < sp->nodes; i++) {
		strata_snapshot *snap;
		strata_node_info info;
		if (i == mid) {
			bench_check(strata_stats(st, &sm), "strata_stats");
			rm = anon_bytes();
		}
		BENCH_CHECK(strata_snapshot_open(st, &snap), "strata_snapshot_open");
		BENCH_CHECK(strata_node_stat(snap, ids[i], &info), "strata_node_stat");
		strata_snapshot_close(snap);
		acc += info.size;
	}
	uint64_t r1 = anon_bytes();
	bench_sink += acc;
	strata_store_stats ss;
	bench_check(strata_stats(st, &ss), "strata_stats");
	/* The images the stat calls left in the cache are the cache's bytes
	 * (bounded by cache_bytes, counted by strata_stats), not the table's;
	 * so are the segment headers the loads built (two pages each). */
	double headers = (double)(s0.segments_unbuilt - ss.segments_unbuilt) * SEG_HEADER_BYTES;
	double n = (double)(sp->nodes - first);
	out->d[0] = ot_growth(r0, r1, &s0, &ss, n);
	out->d[6] = ot_growth(rm, r1, &sm, &ss, (double)(sp->nodes - mid));
	out->d[5] = headers / MIB;
	out->d[1] = (double)ss.chunks_loaded;
	out->d[2] = (double)ss.handles_total;
	out->d[3] = (double)ss.cache_bytes / MIB;
	out->d[4] = (double)(r1 - r0) / n;
}

static void fig_ot(bench_session *s, store_spec *sp)
{
	if (!bench_wants(s, "ot_bytes_per_entry"))
		return;
	build_store(s, sp);
	int runs = runs_of(s);
	double v[MAXR], raw[MAXR], half[MAXR];
	child_out o = {0};
	for (int r = 0; r < runs; r++) {
		o = in_child(child_ot, sp);
		v[r] = o.d[0];
		raw[r] = o.d[4];
		half[r] = o.d[6];
	}
	bench_record(s, "ot_bytes_per_entry", "B", NULL, v, runs);
	bench_record(s, "ot_bytes_per_entry_2nd_half", "B", NULL, half, runs);
	bench_record(s, "ot_rss_per_entry_raw", "B", NULL, raw, runs);
	bench_add_target(s, "ot_bytes_per_entry", 32.0);
	bench_add_target(s, "ot_bytes_per_entry_2nd_half", 32.0);
	uint64_t files = dir_bytes(sp->dir, false);
	bench_note(s, "ot_bytes_per_entry: resident anonymous memory growth while strata_node_stat touched all %llu "
		   "entries of store %s (%.0f chunks loaded), less the 64 KiB cache's images "
		   "(%.2f MiB at the end) and the segment headers built (%.2f MiB)",
		   (unsigned long long)sp->nodes, sp->label, o.d[1], o.d[3], o.d[5]);
	bench_note(s, "ot_rss_per_entry_raw: the same growth, cache and headers included");
	bench_note(s, "ot_bytes_per_entry_2nd_half: ot_bytes_per_entry over the second half of "
		   "the touch only: the cost per added entry, without what is allocated once");
	bench_note(s, "object table by design: 32 B per entry (each image's CRC32C in the "
		   "low bits of its birth and retire stamps); "
		   "store %s on disk (data + checkpoint): %.1f B per node", sp->label,
		   (double)files / (double)sp->nodes);
}

/* ---- figure 3: space amplification under churn -------------------------------- */
typedef struct churn_job {
	char dir[512];
	uint64_t nodes, replacements, wal_bytes;
	bool reader;
	uint64_t seed;
} churn_job;

static void amp_of(const char *dir, strata_store *st, double *apparent, double *disk,
		   uint64_t *live)
{
	strata_store_stats ss;
	bench_check(strata_stats(st, &ss), "strata_stats");
	*apparent = ss.space_amplification;
	*live = ss.live_bytes;
	uint64_t alloc = dir_bytes(dir, true);
	*disk = ss.live_bytes ? (double)alloc / (double)ss.live_bytes : 0;
}

/* d[]: 0 amp after churn, 1 disk amp after churn, 2 amp once the reader
 * closed (reader runs), 3 amp after compaction, 4 disk amp after it,
 * 5 churn replacements/s, 6 compaction seconds, 7 MiB moved, 8 live MiB,
 * 9 file MiB after churn, 10 file MiB after compaction; rc: compact's. */
static void child_churn(const void *arg, void *res)
{
	child_out *out = res;
	const churn_job *j = arg;
	strata_options o = durable_options(j->dir, true);
	o.checkpoint_wal_bytes = j->wal_bytes;
	o.compact_amplification = 0; /* no background compaction: measured apart */
	strata_store *st;
	bench_check(strata_open(&o, &st), "strata_open (churn)");
	strata_node_id *ids = bench_xmalloc(sizeof *ids * j->nodes);
	for (uint64_t done = 0; done < j->nodes;) {
		uint64_t n = j->nodes - done < 10000 ? j->nodes - done : 10000;
		strata_txn *t;
		bench_check(strata_txn_begin(st, NULL, 0, STRATA_TXN_NONE, &t), "strata_txn_begin");
		for (uint64_t k = 0; k < n; k++) {
			void *p;
			BENCH_CHECK(strata_txn_alloc(t, CHURN_NODE_BYTES, 0, &ids[done + k], &p),
				    "strata_txn_alloc");
			memset(p, (int)(k & 0xff), CHURN_NODE_BYTES);
		}
		bench_check(strata_txn_commit(t, NULL), "strata_txn_commit");
		done += n;
	}
	bench_check(strata_checkpoint(st), "strata_checkpoint");
	strata_snapshot *reader = NULL;
	if (j->reader)
		bench_check(strata_snapshot_open(st, &reader), "strata_snapshot_open (reader)");
	uint64_t seed = j->seed, t0 = bench_now_ns();
	for (uint64_t done = 0; done < j->replacements; done += CHURN_PER_COMMIT) {
		strata_txn *t;
		BENCH_CHECK(strata_txn_begin(st, NULL, 0, STRATA_TXN_NONE, &t), "strata_txn_begin");
		for (unsigned k = 0; k < CHURN_PER_COMMIT; k++) {
			uint64_t i = splitmix(&seed) % j->nodes;
			void *p;
			BENCH_CHECK(strata_txn_write(t, ids[i], &ids[i], &p, NULL), "strata_txn_write");
			((unsigned char *)p)[k % CHURN_NODE_BYTES]++;
		}
		BENCH_CHECK(strata_txn_commit(t, NULL), "strata_txn_commit");
	}
	out->d[5] = (double)j->replacements * 1e9 / (double)(bench_now_ns() - t0);
	strata_reclaim(st);
	bench_check(strata_checkpoint(st), "strata_checkpoint");
	uint64_t live;
	amp_of(j->dir, st, &out->d[0], &out->d[1], &live);
	out->d[8] = (double)live / MIB;
	out->d[9] = out->d[0] * out->d[8];
	if (reader) {
		/* The reader must be read from to notice nothing; then it goes. */
		strata_snapshot_close(reader);
		strata_reclaim(st);
		bench_check(strata_checkpoint(st), "strata_checkpoint");
		double disk;
		amp_of(j->dir, st, &out->d[2], &disk, &live);
	}
	if (getenv("STRATA_SCALE_DEBUG")) {
		strata_store_stats ss;
		bench_check(strata_stats(st, &ss), "strata_stats");
		for (int c = 0; c < STRATA_NUM_CLASSES; c++)
			if (ss.classes[c].segments)
				fprintf(stderr, "  class %u B: %llu segments, %llu/%llu slots used; "
					"retired %llu, live %llu\n", ss.classes[c].slot_size,
					(unsigned long long)ss.classes[c].segments,
					(unsigned long long)ss.classes[c].slots_used,
					(unsigned long long)ss.classes[c].slots_total,
					(unsigned long long)ss.nodes_retired,
					(unsigned long long)ss.nodes_live);
	}
	strata_reclaim(st);
	uint64_t moved = 0, c0 = bench_now_ns();
	out->rc = strata_compact(st, &moved);
	out->d[6] = (double)(bench_now_ns() - c0) / 1e9;
	out->d[7] = (double)moved / MIB;
	if (out->rc)
		snprintf(out->msg, sizeof out->msg, "strata_compact: %s", strata_strerror(out->rc));
	amp_of(j->dir, st, &out->d[3], &out->d[4], &live);
	out->d[10] = out->d[3] * (double)live / MIB;
	bench_check(strata_checkpoint(st), "strata_checkpoint");
	amp_of(j->dir, st, &out->d[11], &out->d[12], &live);
	strata_store_stats ss;
	bench_check(strata_stats(st, &ss), "strata_stats");
	out->u[0] = ss.compact_rounds;
	out->u[1] = ss.compact_segments_freed;
	/* What `strata compact DIR` does: the store closed, reopened (no
	 * reader, nothing retired left), compacted. */
	bench_check(strata_close(st), "strata_close");
	o.flags = 0;
	bench_check(strata_open(&o, &st), "strata_open (reopen)");
	moved = 0;
	int rc = strata_compact(st, &moved);
	if (rc && !out->rc) {
		out->rc = rc;
		snprintf(out->msg, sizeof out->msg, "strata_compact after reopen: %s",
			 strata_strerror(rc));
	}
	amp_of(j->dir, st, &out->d[13], &out->d[14], &live);
	out->d[15] = (double)moved / MIB;
	bench_check(strata_close(st), "strata_close");
	free(ids);
}

#ifdef STRATA_BENCH_HAVE_LMDB
static void lmdb_ok(int rc, const char *what)
{
	if (rc) {
		fprintf(stderr, "strata-bench: %s failed: %s\n", what, mdb_strerror(rc));
		exit(1);
	}
}

static uint64_t file_size(const char *dir, const char *name)
{
	char path[600];
	struct stat st;
	bench_path_join(path, sizeof path, dir, name);
	return stat(path, &st) ? 0 : (uint64_t)st.st_size;
}

static void lmdb_key(uint64_t i, unsigned char *key)
{
	for (int b = 0; b < 8; b++)
		key[b] = (unsigned char)(i >> (56 - 8 * b));
}

/* Child: LMDB under the same churn. d[0] file / live after the churn (with
 * the reader still open in reader runs), d[1] after mdb_env_copy2 with
 * MDB_CP_COMPACT (the copy's file), d[5] puts/s. */
static void child_lmdb_churn(const void *arg, void *res)
{
	child_out *out = res;
	const churn_job *j = arg;
	MDB_env *env;
	MDB_dbi dbi;
	MDB_txn *t;
	static unsigned char val[CHURN_NODE_BYTES];
	unsigned char key[LMDB_KEY];
	uint64_t value_bytes = CHURN_NODE_BYTES - LMDB_KEY;
	lmdb_ok(mdb_env_create(&env), "mdb_env_create");
	lmdb_ok(mdb_env_set_mapsize(env, 256 * GIB), "mdb_env_set_mapsize");
	lmdb_ok(mdb_env_open(env, j->dir, MDB_NOSYNC | MDB_NOTLS, 0644), "mdb_env_open");
	lmdb_ok(mdb_txn_begin(env, NULL, 0, &t), "mdb_txn_begin");
	lmdb_ok(mdb_dbi_open(t, NULL, 0, &dbi), "mdb_dbi_open");
	for (uint64_t i = 0; i < j->nodes; i++) {
		lmdb_key(i, key);
		memset(val, (int)(i & 0xff), sizeof val);
		MDB_val k = {LMDB_KEY, key}, v = {value_bytes, val};
		lmdb_ok(mdb_put(t, dbi, &k, &v, MDB_APPEND), "mdb_put (load)");
	}
	lmdb_ok(mdb_txn_commit(t), "mdb_txn_commit");
	MDB_txn *reader = NULL;
	if (j->reader)
		lmdb_ok(mdb_txn_begin(env, NULL, MDB_RDONLY, &reader), "mdb_txn_begin (reader)");
	uint64_t seed = j->seed, t0 = bench_now_ns();
	for (uint64_t done = 0; done < j->replacements; done += CHURN_PER_COMMIT) {
		lmdb_ok(mdb_txn_begin(env, NULL, 0, &t), "mdb_txn_begin");
		for (unsigned n = 0; n < CHURN_PER_COMMIT; n++) {
			uint64_t i = splitmix(&seed) % j->nodes;
			lmdb_key(i, key);
			val[n % value_bytes]++;
			MDB_val k = {LMDB_KEY, key}, v = {value_bytes, val};
			lmdb_ok(mdb_put(t, dbi, &k, &v, 0), "mdb_put (churn)");
		}
		lmdb_ok(mdb_txn_commit(t), "mdb_txn_commit");
	}
	out->d[5] = (double)j->replacements * 1e9 / (double)(bench_now_ns() - t0);
	double live = (double)j->nodes * CHURN_NODE_BYTES;
	out->d[0] = (double)file_size(j->dir, "data.mdb") / live;
	if (reader)
		mdb_txn_abort(reader);
	char copy[600];
	bench_path_join(copy, sizeof copy, j->dir, "copy");
	if (mkdir(copy, 0755))
		bench_sys_fail("mkdir (lmdb copy)");
	lmdb_ok(mdb_env_copy2(env, copy, MDB_CP_COMPACT), "mdb_env_copy2 (compact)");
	out->d[1] = (double)file_size(copy, "data.mdb") / live;
	mdb_env_close(env);
}
#endif

typedef struct churn_figs {
	const char *name[16];
	bool want[16];
	double v[16][MAXR];
} churn_figs;

enum {
	F_AMP, F_DISK, F_AMP_COMP, F_DISK_COMP, F_AMP_REOPEN, F_RATE,   /* no reader */
	F_AMP_R, F_AMP_R_CLOSED, F_AMP_R_COMP, F_DISK_R_COMP, F_AMP_R_REOPEN, /* reader */
	F_LMDB, F_LMDB_R, F_LMDB_COPY, F_LMDB_RATE, F_NFIGS
};

static void fig_churn(bench_session *s, const char *tmp)
{
	static churn_figs f = {.name = {
		[F_AMP] = "space_amp_churn",
		[F_DISK] = "disk_amp_churn",
		[F_AMP_COMP] = "space_amp_compacted",
		[F_DISK_COMP] = "disk_amp_compacted",
		[F_AMP_REOPEN] = "space_amp_compacted_reopen",
		[F_RATE] = "churn_rate_strata",
		[F_AMP_R] = "space_amp_churn_reader",
		[F_AMP_R_CLOSED] = "space_amp_reader_closed",
		[F_AMP_R_COMP] = "space_amp_reader_compacted",
		[F_DISK_R_COMP] = "disk_amp_reader_compacted",
		[F_AMP_R_REOPEN] = "space_amp_reader_compacted_reopen",
		[F_LMDB] = "lmdb_space_amp_churn",
		[F_LMDB_R] = "lmdb_space_amp_churn_reader",
		[F_LMDB_COPY] = "lmdb_space_amp_copy_compact",
		[F_LMDB_RATE] = "churn_rate_lmdb",
	}};
	bool any = false;
	for (int i = 0; i < F_NFIGS; i++)
		any |= f.want[i] = bench_wants(s, f.name[i]);
	if (!any)
		return;
	bool have_lmdb = false;
#ifdef STRATA_BENCH_HAVE_LMDB
	have_lmdb = true;
#endif
	int runs = runs_of(s);
	churn_job j = {.nodes = bench_ops(s, 200000, 5000),
		       .wal_bytes = s->opts.quick ? 4 * MIB : 16 * MIB};
	j.replacements = 3 * j.nodes;
	int compact_rc = 0;
	char compact_msg[200] = "";
	double moved = 0, csecs = 0, live = 0, file_churn = 0, file_comp = 0, file_r = 0;
	for (int r = 0; r < runs; r++) {
		j.seed = 4242 + (uint64_t)r;
		for (int reader = 0; reader < 2; reader++) {
			j.reader = reader;
			bench_path_join(j.dir, sizeof j.dir, tmp, "churn");
			if (mkdir(j.dir, 0755))
				bench_sys_fail("mkdir (churn)");
			child_out o = in_child(child_churn, &j);
			bench_remove_tree(j.dir);
			if (getenv("STRATA_SCALE_DEBUG"))
				fprintf(stderr, "churn run %d reader %d: amp %.3f disk %.3f closed %.3f "
					"compacted %.3f disk %.3f, +ckpt %.3f disk %.3f; moved %.2f "
					"MiB, rounds %llu, segments freed %llu, rc %d; reopen: %.3f "
					"disk %.3f moved %.2f MiB\n", r, reader,
					o.d[0], o.d[1], o.d[2], o.d[3], o.d[4], o.d[11], o.d[12],
					o.d[7], (unsigned long long)o.u[0],
					(unsigned long long)o.u[1], o.rc, o.d[13], o.d[14], o.d[15]);
			if (!reader) {
				f.v[F_AMP][r] = o.d[0];
				f.v[F_DISK][r] = o.d[1];
				f.v[F_AMP_COMP][r] = o.d[3];
				f.v[F_DISK_COMP][r] = o.d[4];
				f.v[F_AMP_REOPEN][r] = o.d[13];
				f.v[F_RATE][r] = o.d[5];
				moved = o.d[7];
				csecs = o.d[6];
				live = o.d[8];
				file_churn = o.d[9];
				file_comp = o.d[10];
			} else {
				f.v[F_AMP_R][r] = o.d[0];
				f.v[F_AMP_R_CLOSED][r] = o.d[2];
				f.v[F_AMP_R_COMP][r] = o.d[3];
				f.v[F_DISK_R_COMP][r] = o.d[4];
				f.v[F_AMP_R_REOPEN][r] = o.d[13];
				file_r = o.d[9];
			}
			if (o.rc) {
				compact_rc = o.rc;
				snprintf(compact_msg, sizeof compact_msg, "%s", o.msg);
			}
			if (!have_lmdb)
				continue;
#ifdef STRATA_BENCH_HAVE_LMDB
			bench_path_join(j.dir, sizeof j.dir, tmp, "lmdb");
			if (mkdir(j.dir, 0755))
				bench_sys_fail("mkdir (lmdb)");
			o = in_child(child_lmdb_churn, &j);
			bench_remove_tree(j.dir);
			if (!reader) {
				f.v[F_LMDB][r] = o.d[0];
				f.v[F_LMDB_COPY][r] = o.d[1];
				f.v[F_LMDB_RATE][r] = o.d[5];
			} else {
				f.v[F_LMDB_R][r] = o.d[0];
			}
#endif
		}
	}
	for (int i = 0; i < F_NFIGS; i++) {
		bool lmdb = i >= F_LMDB;
		bool compacted = i == F_AMP_COMP || i == F_DISK_COMP || i == F_AMP_R_COMP ||
				 i == F_DISK_R_COMP || i == F_AMP_REOPEN || i == F_AMP_R_REOPEN;
		if (!f.want[i] || (lmdb && !have_lmdb) || (compacted && compact_rc))
			continue;
		const char *unit = i == F_RATE || i == F_LMDB_RATE ? "ops/s" : "x";
		bench_record(s, f.name[i], unit, lmdb ? "lmdb" : NULL, f.v[i], runs);
	}
	bench_add_target(s, "space_amp_compacted", 1.5);
	bench_add_target(s, "space_amp_reader_compacted", 1.5);
	bench_add_target(s, "space_amp_compacted_reopen", 1.5);
	bench_add_target(s, "space_amp_reader_compacted_reopen", 1.5);
	bench_add_ratio(s, "space_amp_churn", "lmdb_space_amp_churn");
	bench_add_ratio(s, "space_amp_churn_reader", "lmdb_space_amp_churn_reader");
	bench_add_ratio(s, "space_amp_compacted", "lmdb_space_amp_copy_compact");
	bench_note(s, "churn: %llu nodes of %u B, then %llu random replacements "
		   "(strata_txn_write, %u per NONE commit), checkpoint every %llu MiB of WAL, "
		   "background compaction off, a checkpoint before each reading",
		   (unsigned long long)j.nodes, CHURN_NODE_BYTES,
		   (unsigned long long)j.replacements, CHURN_PER_COMMIT,
		   (unsigned long long)(j.wal_bytes / MIB));
	bench_note(s, "churn, last run: live %.1f MiB; files %.1f MiB after churn (%.1f MiB with "
		   "the reader), %.1f MiB after strata_compact (%.2f MiB moved in %.2f s)", live,
		   file_churn, file_r, file_comp, moved, csecs);
	if (compact_rc)
		bench_note(s, "compaction figures missing: %s (%d)", compact_msg, compact_rc);
	if (!have_lmdb)
		bench_note(s, "lmdb peer skipped: strata-bench was built without liblmdb");
	else
		bench_note(s, "lmdb churn: the same rows (8 B key + %u B value), same random order, "
			   "%u puts per commit, MDB_NOSYNC; amplification = data.mdb size / (rows x "
			   "%u B); a read txn held for the whole churn in the reader runs",
			   CHURN_NODE_BYTES - LMDB_KEY, CHURN_PER_COMMIT, CHURN_NODE_BYTES);
}

/* ---- the suite ------------------------------------------------------------------ */
int bench_scale(bench_session *s)
{
	char tmp[512] = "";
	if (!s->opts.list)
		bench_make_tmpdir(tmp, sizeof tmp, "scale");
	const char *huge = getenv("STRATA_SCALE_HUGE");
	bool with_huge = huge && *huge && strcmp(huge, "0") != 0;
	uint64_t sizes[3] = {bench_ops(s, 1000000, 50000), bench_ops(s, 10000000, 500000),
			     bench_ops(s, 100000000, 5000000)};
	size_t n = with_huge ? 3 : 2;
	static store_spec stores[3];
	for (size_t i = 0; i < n; i++) {
		store_spec *sp = &stores[i];
		*sp = (store_spec){.nodes = sizes[i]};
		label_of(sp->label, sizeof sp->label, sp->nodes);
		char name[64];
		snprintf(name, sizeof name, "store-%s", sp->label);
		bench_path_join(sp->dir, sizeof sp->dir, tmp, name);
		snprintf(name, sizeof name, "ids-%s", sp->label);
		bench_path_join(sp->ids, sizeof sp->ids, tmp, name);
	}
	uint64_t t0 = bench_now_ns();
	fig_open(s, stores, n);
	uint64_t t1 = bench_now_ns();
	fig_random(s, &stores[1]);
	uint64_t t2 = bench_now_ns();
	fig_ot(s, &stores[1]);
	uint64_t t3 = bench_now_ns();
	for (size_t i = 0; i < n; i++) /* the churn needs the disk and the memory */
		if (stores[i].built) {
			bench_remove_tree(stores[i].dir);
			unlink(stores[i].ids);
		}
	fig_churn(s, tmp);
	uint64_t t4 = bench_now_ns();
	if (!s->opts.list)
		bench_note(s, "wall time: builds + opens %.1f s, random queries %.1f s, object "
			   "table %.1f s, churn %.1f s", (double)(t1 - t0) / 1e9,
			   (double)(t2 - t1) / 1e9, (double)(t3 - t2) / 1e9, (double)(t4 - t3) / 1e9);
	if (!with_huge)
		bench_note(s, "the 100M store is built only with STRATA_SCALE_HUGE=1 (minutes, "
			   "~11 GB of memory, ~20 GB of disk while it is built)");
	if (tmp[0])
		bench_remove_tree(tmp);
	return 0;
}
