/*
 * bench_substrate.c — the `substrate` suite: the costs of the node store's
 * primitives, single-threaded, IN_MEMORY.
 *
 * Figures (issue item 13): resolve hot (a few nodes in cache) and cold
 * (random over a large store); alloc+free per size class through a
 * transaction and through the raw segment allocator; a one-node commit;
 * snapshot open+close with LMDB read transactions as the peer; and the
 * overhead of 64 active object-table shards against 1. calib_alu (peer
 * "machine") is no Strata figure: it shows how busy the shared host was.
 *
 * Every batch is timed as a whole and divided by its operation count; the
 * results of the work go to bench_sink. Each group opens its own store, so one figure's leftovers (nodes, segments,
 * root versions) never colour another's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "internal.h" /* seg_alloc_node/seg_free_node for the raw allocator */
#include "peer_lmdb.h"
#include "suites.h"

#define HOT_NODES 16         /* power of two: the hot loop masks the index */
#define COLD_TXN_NODES 100000 /* allocations per transaction while building */
#define NODE_64 64u
#define LARGE_SIZE (256u * 1024)

static const char *const ROOT = "bench";

/* ---- helpers --------------------------------------------------------------- */
static strata_store *open_store(uint32_t shards_initial)
{
	strata_options o;
	strata_options_init(&o);
	o.ot_shards_initial = shards_initial;
	strata_store *st;
	bench_check(strata_open(&o, &st), "strata_open");
	return st;
}

/* Commits n nodes of `size` bytes, per_txn allocations per transaction;
 * their IDs go to ids[] (may be NULL). */
static void make_nodes(strata_store *st, uint64_t n, uint32_t size, uint64_t per_txn,
		       strata_node_id *ids)
{
	for (uint64_t done = 0; done < n;) {
		strata_txn *t;
		bench_check(strata_txn_begin(st, NULL, 0, 0, &t), "strata_txn_begin");
		for (uint64_t k = 0; k < per_txn && done < n; k++, done++) {
			strata_node_id id;
			void *p;
			BENCH_CHECK(strata_txn_alloc(t, size, 0, &id, &p), "strata_txn_alloc");
			memcpy(p, &done, sizeof done < size ? sizeof done : size);
			if (ids)
				ids[done] = id;
		}
		bench_check(strata_txn_commit(t, NULL), "strata_txn_commit");
	}
}

/* splitmix64: a fast, well-mixed generator for the shuffle (outside timing). */
static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15u);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

static void shuffle(strata_node_id *v, uint64_t n)
{
	uint64_t seed = 0x5eed;
	for (uint64_t i = n - 1; i > 0; i--) {
		uint64_t j = splitmix64(&seed) % (i + 1);
		strata_node_id tmp = v[i];
		v[i] = v[j];
		v[j] = tmp;
	}
}

static void size_label(char *buf, size_t len, uint32_t size)
{
	if (size >= 1024 && size % 1024 == 0)
		snprintf(buf, len, "%uKiB", size / 1024);
	else
		snprintf(buf, len, "%uB", size);
}

/* ---- resolve ----------------------------------------------------------------- */
typedef struct resolve_ctx {
	strata_snapshot *snap;
	const strata_node_id *ids;
	uint64_t n;    /* ids[] length */
	uint64_t next; /* cold: where the next batch starts in ids[] */
} resolve_ctx;

/* The same HOT_NODES nodes over and over: entries stay in L1. */
static uint64_t run_resolve_hot(void *arg, uint64_t ops)
{
	const resolve_ctx *c = arg;
	uint64_t acc = 0, errs = 0;
	uint64_t t0 = bench_now_ns();
	for (uint64_t i = 0; i < ops; i++) {
		const void *p = NULL;
		errs += strata_resolve(c->snap, c->ids[i & (HOT_NODES - 1)], &p, NULL) != 0;
		acc += (uintptr_t)p;
	}
	uint64_t t1 = bench_now_ns();
	bench_check(errs ? STRATA_ESTALE : 0, "strata_resolve (hot)");
	bench_sink += acc;
	return t1 - t0;
}

/* Walks the pre-shuffled ID array: its reads are sequential (prefetched),
 * the object-table entries they name are random. No PRNG in the loop. */
static uint64_t run_resolve_cold(void *arg, uint64_t ops)
{
	resolve_ctx *c = arg;
	uint64_t acc = 0, errs = 0, at = c->next;
	uint64_t t0 = bench_now_ns();
	for (uint64_t i = 0; i < ops; i++) {
		const void *p = NULL;
		errs += strata_resolve(c->snap, c->ids[at], &p, NULL) != 0;
		acc += (uintptr_t)p;
		if (++at == c->n)
			at = 0;
	}
	uint64_t t1 = bench_now_ns();
	c->next = at;
	bench_check(errs ? STRATA_ESTALE : 0, "strata_resolve (cold)");
	bench_sink += acc;
	return t1 - t0;
}

typedef struct hot_store {
	strata_store *st;
	strata_snapshot *snap;
	strata_node_id ids[HOT_NODES];
	resolve_ctx ctx;
} hot_store;

static void hot_open(hot_store *h, uint32_t shards_initial)
{
	h->st = open_store(shards_initial);
	make_nodes(h->st, HOT_NODES, NODE_64, HOT_NODES, h->ids);
	bench_check(strata_snapshot_open(h->st, &h->snap), "strata_snapshot_open");
	h->ctx = (resolve_ctx){.snap = h->snap, .ids = h->ids, .n = HOT_NODES};
}

static void hot_close(hot_store *h)
{
	strata_snapshot_close(h->snap);
	bench_check(strata_close(h->st), "strata_close");
}

static void fig_resolve_hot(bench_session *s)
{
	if (!bench_wants(s, "resolve_hot"))
		return;
	hot_store h;
	hot_open(&h, 1);
	bench_measure(s, "resolve_hot", NULL, run_resolve_hot, &h.ctx, bench_ops(s, 4000000, 250000));
	hot_close(&h);
}

static void fig_resolve_cold(bench_session *s)
{
	bool build = bench_wants(s, "cold_build_64B");
	bool cold = bench_wants(s, "resolve_cold");
	if (!build && !cold)
		return;
	uint64_t n = bench_ops(s, 10000000, 1000000);
	strata_node_id *ids = bench_xmalloc(sizeof *ids * n);
	strata_store *st = open_store(1);
	uint64_t t0 = bench_now_ns();
	make_nodes(st, n, NODE_64, COLD_TXN_NODES, ids);
	double build_ns = (double)(bench_now_ns() - t0) / (double)n;
	if (build)
		bench_record(s, "cold_build_64B", "ns/op", NULL, &build_ns, 1);
	if (cold) {
		shuffle(ids, n);
		strata_snapshot *snap;
		bench_check(strata_snapshot_open(st, &snap), "strata_snapshot_open");
		resolve_ctx c = {.snap = snap, .ids = ids, .n = n};
		uint64_t ops = bench_ops(s, 4000000, 250000);
		bench_measure(s, "resolve_cold", NULL, run_resolve_cold, &c, ops);
		strata_snapshot_close(snap);
		bench_note(s, "resolve_cold: %llu live 64 B nodes (built in txns of %d allocs); "
			   "%llu resolves/run in a precomputed random permutation (PRNG not timed, "
			   "nothing subtracted); node bytes are not touched",
			   (unsigned long long)n, COLD_TXN_NODES, (unsigned long long)ops);
	}
	bench_check(strata_close(st), "strata_close");
	free(ids);
}

/* ---- allocate + free ------------------------------------------------------- */
typedef struct alloc_ctx {
	strata_store *st;
	seg_alloc *seg;
	uint32_t size;
} alloc_ctx;

/* Nodes allocated before they are freed again. Freeing each node at once
 * would reuse one slot and one object-table entry forever, a layout no
 * workload has (and whether that one entry 4K-aliases a hot lock word then
 * decides the figure). Up to 64 per batch, but at most 256 KiB of nodes:
 * the slots cycle through L2, so the figure is the allocator's path and
 * zeroing at cache speed, not DRAM bandwidth. */
#define ALLOC_BATCH_MAX 64
#define ALLOC_BATCH_BYTES (256u * 1024)

static uint64_t alloc_batch(uint32_t size)
{
	uint64_t n = ALLOC_BATCH_BYTES / size;
	return n > ALLOC_BATCH_MAX ? ALLOC_BATCH_MAX : n ? n : 1;
}

/* ops x (alloc + free of an own node) in one open transaction; begin and
 * abort are not timed. */
static uint64_t run_txn_alloc_free(void *arg, uint64_t ops)
{
	const alloc_ctx *c = arg;
	strata_txn *t;
	bench_check(strata_txn_begin(c->st, NULL, 0, 0, &t), "strata_txn_begin");
	strata_node_id ids[ALLOC_BATCH_MAX];
	uint64_t acc = 0, batch = alloc_batch(c->size);
	uint64_t t0 = bench_now_ns();
	for (uint64_t done = 0; done < ops;) {
		uint64_t n = ops - done < batch ? ops - done : batch;
		for (uint64_t k = 0; k < n; k++) {
			void *p;
			BENCH_CHECK(strata_txn_alloc(t, c->size, 0, &ids[k], &p), "strata_txn_alloc");
			acc += (uintptr_t)p;
		}
		for (uint64_t k = 0; k < n; k++)
			BENCH_CHECK(strata_txn_free(t, ids[k]), "strata_txn_free");
		done += n;
	}
	uint64_t t1 = bench_now_ns();
	strata_txn_abort(t);
	bench_sink += acc;
	return t1 - t0;
}

/* The raw segment allocator, no object table, no transaction. */
static uint64_t run_seg_alloc_free(void *arg, uint64_t ops)
{
	const alloc_ctx *c = arg;
	void *ptrs[ALLOC_BATCH_MAX];
	uint64_t acc = 0, batch = alloc_batch(c->size);
	uint64_t t0 = bench_now_ns();
	for (uint64_t done = 0; done < ops;) {
		uint64_t n = ops - done < batch ? ops - done : batch;
		for (uint64_t k = 0; k < n; k++) {
			ptrs[k] = seg_alloc_node(c->seg, c->size);
			if (__builtin_expect(!ptrs[k], 0))
				bench_check(STRATA_ENOMEM, "seg_alloc_node");
			acc += (uintptr_t)ptrs[k];
		}
		for (uint64_t k = 0; k < n; k++)
			seg_free_node(c->seg, ptrs[k], c->size);
		done += n;
	}
	uint64_t t1 = bench_now_ns();
	bench_sink += acc;
	return t1 - t0;
}

/* Batches shrink with the size: allocation zeroes the node, so big classes
 * cost microseconds per op. */
static uint64_t alloc_ops(const bench_session *s, uint32_t size)
{
	uint64_t max = bench_ops(s, 1000000, 50000);
	uint64_t bytes = bench_ops(s, 1ull << 30, 1ull << 25);
	uint64_t n = bytes / size;
	return n > max ? max : n < 1000 ? 1000 : n;
}

static const uint32_t sample_sizes[] = {64, 192, 512, 1024, 4096, 16384, 65536, LARGE_SIZE};

static void size_name(char *buf, size_t len, const char *prefix, uint32_t size)
{
	char lab[16];
	size_label(lab, sizeof lab, size);
	snprintf(buf, len, "%s_%s%s", prefix, size > SMALL_MAX ? "large_" : "", lab);
}

static void fig_alloc_classes(bench_session *s)
{
	strata_store *st = NULL;
	seg_alloc *seg = NULL;
	for (size_t i = 0; i < sizeof sample_sizes / sizeof *sample_sizes; i++) {
		uint32_t size = sample_sizes[i];
		char txn_name[BENCH_NAME_MAX], seg_name[BENCH_NAME_MAX];
		size_name(txn_name, sizeof txn_name, "txn_alloc_free", size);
		size_name(seg_name, sizeof seg_name, "seg_alloc_free", size);
		if (bench_wants(s, txn_name)) {
			if (!st)
				st = open_store(1);
			alloc_ctx c = {.st = st, .size = size};
			bench_measure(s, txn_name, NULL, run_txn_alloc_free, &c, alloc_ops(s, size));
		}
		if (bench_wants(s, seg_name)) {
			if (!seg) {
				seg = bench_xmalloc(sizeof *seg);
				bench_check(seg_init(seg), "seg_init");
			}
			alloc_ctx c = {.seg = seg, .size = size};
			bench_measure(s, seg_name, NULL, run_seg_alloc_free, &c, alloc_ops(s, size));
		}
	}
	if (st)
		bench_check(strata_close(st), "strata_close");
	if (seg) {
		seg_destroy(seg);
		free(seg);
	}
}

/* ---- commit ---------------------------------------------------------------- */
/* begin(one root), alloc 64 B, set_root, commit. The previous root's node
 * stays live (nothing frees it): the store grows by one node per op. */
static uint64_t run_commit_1node(void *arg, uint64_t ops)
{
	strata_store *st = arg;
	uint64_t t0 = bench_now_ns();
	for (uint64_t i = 0; i < ops; i++) {
		strata_txn *t;
		strata_node_id id;
		void *p;
		BENCH_CHECK(strata_txn_begin(st, &ROOT, 1, 0, &t), "strata_txn_begin");
		BENCH_CHECK(strata_txn_alloc(t, NODE_64, 0, &id, &p), "strata_txn_alloc");
		BENCH_CHECK(strata_txn_set_root(t, ROOT, id), "strata_txn_set_root");
		BENCH_CHECK(strata_txn_commit(t, NULL), "strata_txn_commit");
	}
	return bench_now_ns() - t0;
}

/* The steady-state update: copy-on-write the root node, repoint the root,
 * commit; the old version is retired and reclaimed by the same commit. */
static uint64_t run_commit_cow(void *arg, uint64_t ops)
{
	strata_store *st = arg;
	uint64_t t0 = bench_now_ns();
	for (uint64_t i = 0; i < ops; i++) {
		strata_txn *t;
		strata_node_id old, id;
		void *p;
		BENCH_CHECK(strata_txn_begin(st, &ROOT, 1, 0, &t), "strata_txn_begin");
		BENCH_CHECK(strata_txn_get_root(t, ROOT, &old), "strata_txn_get_root");
		BENCH_CHECK(strata_txn_write(t, old, &id, &p, NULL), "strata_txn_write");
		((unsigned char *)p)[0]++;
		BENCH_CHECK(strata_txn_set_root(t, ROOT, id), "strata_txn_set_root");
		BENCH_CHECK(strata_txn_commit(t, NULL), "strata_txn_commit");
	}
	return bench_now_ns() - t0;
}

static void fig_commit(bench_session *s)
{
	uint64_t ops = bench_ops(s, 200000, 5000);
	if (bench_wants(s, "commit_1node")) {
		strata_store *st = open_store(1);
		bench_measure(s, "commit_1node", NULL, run_commit_1node, st, ops);
		bench_check(strata_close(st), "strata_close");
	}
	if (bench_wants(s, "commit_cow_1node")) {
		strata_store *st = open_store(1);
		run_commit_1node(st, 1); /* the root's first version */
		bench_measure(s, "commit_cow_1node", NULL, run_commit_cow, st, ops);
		bench_check(strata_close(st), "strata_close");
	}
}

/* ---- snapshots and the LMDB peer ----------------------------------------- */
static uint64_t run_snapshot_open_close(void *arg, uint64_t ops)
{
	strata_store *st = arg;
	uint64_t acc = 0;
	uint64_t t0 = bench_now_ns();
	for (uint64_t i = 0; i < ops; i++) {
		strata_snapshot *snap;
		BENCH_CHECK(strata_snapshot_open(st, &snap), "strata_snapshot_open");
		acc += (uintptr_t)snap;
		strata_snapshot_close(snap);
	}
	uint64_t t1 = bench_now_ns();
	bench_sink += acc;
	return t1 - t0;
}

static void fig_snapshot(bench_session *s)
{
	if (!bench_wants(s, "snapshot_open_close"))
		return;
	strata_store *st = open_store(1);
	make_nodes(st, 1, NODE_64, 1, NULL); /* a committed epoch to pin */
	bench_measure(s, "snapshot_open_close", NULL, run_snapshot_open_close, st,
		      bench_ops(s, 4000000, 250000));
	bench_check(strata_close(st), "strata_close");
}

static void fig_lmdb(bench_session *s)
{
	bool ba = bench_wants(s, "lmdb_read_begin_abort");
	bool rr = bench_wants(s, "lmdb_read_renew_reset");
	if (!ba && !rr)
		return;
	peer_lmdb *p;
	const char *why;
	if (peer_lmdb_open(&p, &why)) {
		bench_note(s, "lmdb peer skipped: %s", why);
		if (!s->opts.json)
			fprintf(stderr, "  lmdb peer skipped: %s\n", why);
		return;
	}
	uint64_t ops = bench_ops(s, 4000000, 250000);
	if (ba)
		bench_measure(s, "lmdb_read_begin_abort", "lmdb", peer_lmdb_begin_abort, p, ops);
	if (rr)
		bench_measure(s, "lmdb_read_renew_reset", "lmdb", peer_lmdb_renew_reset, p, ops);
	peer_lmdb_close(p);
}

/* ---- sharding overhead ------------------------------------------------------- */
/* Non-short-circuit: in --list mode every name is printed. */
static bool wants_any3(bench_session *s, const char *a, const char *b, const char *c)
{
	bool wa = bench_wants(s, a), wb = bench_wants(s, b), wc = bench_wants(s, c);
	return wa || wb || wc;
}

static void fig_shard_resolve(bench_session *s)
{
	if (!wants_any3(s, "shard_overhead_resolve_hot", "resolve_hot_1shard",
			"resolve_hot_64shards"))
		return;
	hot_store one, many;
	hot_open(&one, 1);
	hot_open(&many, 64);
	bench_overhead(s, "shard_overhead_resolve_hot", "resolve_hot_1shard", run_resolve_hot,
		       &one.ctx, "resolve_hot_64shards", run_resolve_hot, &many.ctx,
		       bench_ops(s, 4000000, 250000));
	hot_close(&one);
	hot_close(&many);
}

static void fig_shard_alloc(bench_session *s)
{
	if (!wants_any3(s, "shard_overhead_alloc_free", "txn_alloc_free_64B_1shard",
			"txn_alloc_free_64B_64shards"))
		return;
	alloc_ctx one = {.st = open_store(1), .size = NODE_64};
	alloc_ctx many = {.st = open_store(64), .size = NODE_64};
	bench_overhead(s, "shard_overhead_alloc_free", "txn_alloc_free_64B_1shard",
		       run_txn_alloc_free, &one, "txn_alloc_free_64B_64shards", run_txn_alloc_free,
		       &many, bench_ops(s, 1000000, 25000));
	bench_check(strata_close(one.st), "strata_close");
	bench_check(strata_close(many.st), "strata_close");
}

/* ---- the suite -------------------------------------------------------------- */
static void describe(bench_session *s)
{
	bench_add_ratio(s, "snapshot_open_close", "lmdb_read_begin_abort");
	bench_add_ratio(s, "snapshot_open_close", "lmdb_read_renew_reset");
	bench_add_ratio(s, "resolve_cold", "resolve_hot");
	bench_add_ratio(s, "txn_alloc_free_64B", "seg_alloc_free_64B");
	bench_add_target(s, "resolve_hot", 5.0);
	bench_add_target(s, "snapshot_open_close", 50.0);
	bench_add_target(s, "shard_overhead_resolve_hot", 1.0);
	bench_add_target(s, "shard_overhead_alloc_free", 1.0);
	bench_note(s, "shard_overhead_*: per run, 32 interleaved slices per side (A,B,B,A...); %% = "
		   "64 shards / 1 shard - 1; one thread allocates from one shard either way");
	bench_note(s, "calib_alu: a fixed 6-op ALU loop, not Strata: it runs ~2x slower when the "
		   "host shares the core; read the other figures against it");
	bench_note(s, "txn_alloc_free_*: alloc + free of own nodes in one open txn, in batches of "
		   "min(%d, %u KiB / size) allocs then as many frees; seg_alloc_free_*: the same "
		   "with seg_alloc_node/seg_free_node; allocation zeroes the node",
		   ALLOC_BATCH_MAX, ALLOC_BATCH_BYTES / 1024);
}

static void fig_calib(bench_session *s)
{
	if (bench_wants(s, "calib_alu"))
		bench_measure(s, "calib_alu", "machine", bench_calib_alu, NULL,
			      bench_ops(s, 50000000, 2000000));
}

int bench_substrate(bench_session *s)
{
	describe(s);
	fig_calib(s);
	fig_resolve_hot(s);
	fig_snapshot(s);
	fig_lmdb(s);
	fig_alloc_classes(s);
	fig_commit(s);
	fig_shard_resolve(s);
	fig_shard_alloc(s);
	fig_resolve_cold(s);
	return 0;
}
