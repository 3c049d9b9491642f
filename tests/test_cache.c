/*
 * test_cache.c — the bounded node cache of DURABLE mode (cache.c): a store
 * many times larger than cache_bytes reads back exactly; images a snapshot
 * holds stay valid after eviction and are freed once it closes; a scan
 * does not flush the hot set (2Q); dirty images start a checkpoint; a
 * damaged image is an error; readers and a writer run concurrently with
 * constant eviction; resident memory stays under the cap plus the
 * documented overhead (measured from /proc in a child process).
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "durable.h"
#include "io_sim.h"
#include "support/model.h"

TestSuite(cache, .fini = test_leak_check);

#define CAP (256u << 10)
#define NNODES 3000u /* sizes 200..2047: ~3.4 MB, 13x the cache */

static uint32_t size_of(uint32_t k)
{
	return 200 + (k * 7919u) % 1848u;
}

/* Node k at version v: (k, v, then bytes derived from both). */
static void fill(uint8_t *p, uint32_t k, uint32_t v, uint32_t size)
{
	memcpy(p, &k, 4);
	memcpy(p + 4, &v, 4);
	for (uint32_t i = 8; i < size; i++)
		p[i] = (uint8_t)(k * 31u + v * 17u + i);
}

static bool holds(const uint8_t *p, uint32_t k, uint32_t v, uint32_t size)
{
	uint32_t gk, gv;
	memcpy(&gk, p, 4);
	memcpy(&gv, p + 4, 4);
	if (gk != k || gv != v)
		return false;
	for (uint32_t i = 8; i < size; i++)
		if (p[i] != (uint8_t)(k * 31u + v * 17u + i))
			return false;
	return true;
}

static strata_options cached_opts(const char *path, uint64_t cap)
{
	strata_options o = test_durable_options(path, true);
	o.cache_bytes = cap;
	return o;
}

static strata_store *open_sim(io_env *env, uint64_t cap)
{
	strata_options o = cached_opts("db", cap);
	strata_store *s;
	int rc = store_open_env(&o, env, &s);
	cr_assert_eq(rc, 0, "open: %s: %s", strata_strerror(rc), strata_last_error());
	return s;
}

/* Writes nodes [0, n) at version 1, 100 per commit, a checkpoint after
 * each commit (so the cache can evict what it wrote). ids[k] gets k's id. */
static void write_nodes(strata_store *s, uint32_t n, strata_node_id *ids)
{
	const char *rname = "r";
	for (uint32_t k = 0; k < n;) {
		strata_txn *t;
		cr_assert_eq(strata_txn_begin(s, &rname, 1, STRATA_TXN_SYNC, &t), 0);
		for (uint32_t j = 0; j < 100 && k < n; j++, k++) {
			void *p;
			cr_assert_eq(strata_txn_alloc(t, size_of(k), 1, &ids[k], &p), 0);
			fill(p, k, 1, size_of(k));
		}
		cr_assert_eq(strata_txn_set_root(t, rname, ids[0]), 0);
		cr_assert_eq(strata_txn_commit(t, NULL), 0);
		cr_assert_eq(strata_checkpoint(s), 0, "%s", strata_last_error());
	}
}

/* A store in the simulator with nodes [0, NNODES) written (13x the cache). */
static strata_store *written_store(io_env **env, strata_node_id **ids)
{
	*env = test_sim_env();
	strata_store *s = open_sim(*env, CAP);
	*ids = calloc(NNODES, sizeof **ids);
	cr_assert_not_null(*ids);
	write_nodes(s, NNODES, *ids);
	return s;
}

static void read_check(strata_store *s, const strata_node_id *ids, uint32_t k, uint32_t v)
{
	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	const void *p;
	uint32_t size;
	int rc = strata_resolve(snap, ids[k], &p, &size);
	cr_assert_eq(rc, 0, "node %u: %s (%s)", k, strata_strerror(rc), strata_last_error());
	cr_assert_eq(size, size_of(k));
	cr_assert(holds(p, k, v, size), "node %u: wrong bytes", k);
	strata_snapshot_close(snap);
}

/* Used bytes minus those waiting for grace never exceed the cap once the
 * writes are checkpointed (nothing dirty is left). */
static void assert_bounded(strata_store *s)
{
	strata_store_stats st = test_stats(s);
	cr_assert_eq(st.cache_bytes_max, CAP);
	cr_assert_eq(st.cache_dirty_bytes, 0);
	cr_assert_leq(st.cache_bytes - st.cache_grace_bytes, CAP, "cache %" PRIu64 " grace %" PRIu64,
		      st.cache_bytes, st.cache_grace_bytes);
}

Test(cache, reads_a_store_many_times_the_cache)
{
	io_env *env;
	strata_node_id *ids;
	strata_store *s = written_store(&env, &ids);
	assert_bounded(s);
	test_rng r = {42};
	for (int pass = 0; pass < 2; pass++) {
		for (uint32_t i = 0; i < 4 * NNODES; i++) {
			read_check(s, ids, (uint32_t)rng_below(&r, NNODES), 1);
			if (i % 997 == 0)
				assert_bounded(s);
		}
		strata_store_stats st = test_stats(s);
		cr_assert_gt(st.cache_misses, NNODES, "the store does not fit: most reads miss");
		cr_assert_gt(st.cache_evictions, NNODES);
		cr_assert_gt(st.cache_hits, 0);
		cr_assert_gt(st.cache_bytes_read, 10ull * CAP);
		cr_assert_eq(strata_check(s, test_report, NULL), 0);
		/* Again after a reopen: nothing read yet, same answers. */
		cr_assert_eq(strata_close(s), 0);
		s = open_sim(env, CAP);
		cr_assert_eq(test_stats(s).cache_misses, 0);
	}
	cr_assert_eq(strata_close(s), 0);
	free(ids);
	io_sim_free(env);
}

Test(cache, a_snapshot_keeps_what_it_read_until_it_closes)
{
	io_env *env;
	strata_node_id *ids;
	strata_store *s = written_store(&env, &ids);
	/* Node 5 (not the root's node, which every commit reads: hot). */
	strata_snapshot *old;
	cr_assert_eq(strata_snapshot_open(s, &old), 0);
	const void *p5;
	cr_assert_eq(strata_resolve(old, ids[5], &p5, NULL), 0);
	uint64_t ev = test_stats(s).cache_evictions;
	for (uint32_t k = 6; k < NNODES; k++)
		read_check(s, ids, k, 1);
	strata_store_stats st = test_stats(s);
	cr_assert_gt(st.cache_evictions, ev + NNODES / 2);
	cr_assert_gt(st.cache_grace_bytes, 0, "the old snapshot holds what was unlinked since");
	cr_assert(holds(p5, 5, 1, size_of(5)), "an evicted image stays valid for its snapshot");
	/* Read once, then the cache turned over many times: node 5 was
	 * evicted, a new read loads it again; the old pointer is unchanged. */
	uint64_t miss = test_stats(s).cache_misses;
	read_check(s, ids, 5, 1);
	cr_assert_eq(test_stats(s).cache_misses, miss + 1, "misses %" PRIu64 " -> %" PRIu64, miss,
		     test_stats(s).cache_misses);
	cr_assert(holds(p5, 5, 1, size_of(5)));
	strata_snapshot_close(old);
	cr_assert_eq(strata_checkpoint(s), 0); /* trims: grace ends with the snapshot */
	cr_assert_eq(test_stats(s).cache_grace_bytes, 0);
	assert_bounded(s);
	cr_assert_eq(strata_close(s), 0);
	free(ids);
	io_sim_free(env);
}

/* 2Q: nodes read twice get into the main ring; a scan of the whole store
 * (13x the cache) passes through probation without displacing them. */
Test(cache, a_scan_does_not_flush_the_hot_set)
{
	io_env *env;
	strata_node_id *ids;
	strata_store *s = written_store(&env, &ids);
	enum { HOT = 60 }; /* ~66 KB: a quarter of the cache */
	for (int round = 0; round < 3; round++) {
		for (uint32_t k = 0; k < HOT; k++)
			for (int twice = 0; twice < 2; twice++)
				read_check(s, ids, k, 1);
		for (uint32_t k = HOT; k < HOT + 400; k++) /* pushes probation along */
			read_check(s, ids, k, 1);
	}
	for (uint32_t k = 0; k < HOT; k++)
		read_check(s, ids, k, 1); /* mark them hit */
	for (uint32_t k = HOT; k < NNODES; k++)
		read_check(s, ids, k, 1); /* the scan */
	uint64_t miss = test_stats(s).cache_misses;
	for (uint32_t k = 0; k < HOT; k++)
		read_check(s, ids, k, 1);
	uint64_t lost = test_stats(s).cache_misses - miss;
	cr_assert_leq(lost, HOT / 10, "%" PRIu64 " of %d hot nodes were flushed by the scan", lost, HOT);
	cr_assert_eq(strata_close(s), 0);
	free(ids);
	io_sim_free(env);
}

static uint64_t ckpt_gen_of(strata_store *s)
{
	sb_state sb;
	sb_load(&s->dur->sbc, &sb);
	return sb.ckpt_gen;
}

/* Dirty images cannot be evicted: once they fill half the cache the
 * coordinator checkpoints (no other trigger is set), and they go. */
Test(cache, dirty_images_start_a_checkpoint)
{
	io_env *env = test_sim_env();
	strata_options o = cached_opts("db", CAP);
	o.async_interval_ms = 5;
	strata_store *s;
	cr_assert_eq(store_open_env(&o, env, &s), 0);
	uint64_t gen0 = ckpt_gen_of(s);
	const char *rname = "r";
	uint32_t k = 0;
	for (; test_stats(s).cache_dirty_bytes <= CAP / 2 && ckpt_gen_of(s) == gen0; k++) {
		strata_txn *t;
		cr_assert_eq(strata_txn_begin(s, &rname, 1, STRATA_TXN_SYNC, &t), 0);
		strata_node_id id;
		void *p;
		cr_assert_eq(strata_txn_alloc(t, size_of(k), 1, &id, &p), 0);
		fill(p, k, 1, size_of(k));
		cr_assert_eq(strata_txn_set_root(t, rname, id), 0);
		cr_assert_eq(strata_txn_commit(t, NULL), 0);
	}
	for (int i = 0; i < 3000 && ckpt_gen_of(s) == gen0; i++) /* up to 30 s under load */
		usleep(10000);
	cr_assert_gt(ckpt_gen_of(s), gen0, "no checkpoint after %u dirty nodes", k);
	for (int i = 0; i < 3000 && test_stats(s).cache_dirty_bytes > CAP / 2; i++)
		usleep(10000);
	cr_assert_leq(test_stats(s).cache_dirty_bytes, CAP / 2);
	cr_assert_eq(strata_close(s), 0);
	io_sim_free(env);
}

Test(cache, a_damaged_image_is_an_error)
{
	io_env *env = test_sim_env();
	strata_store *s = open_sim(env, CAP);
	strata_node_id *ids = calloc(NNODES, sizeof *ids);
	write_nodes(s, 200, ids);
	cr_assert_eq(strata_close(s), 0);
	/* Node 7's place in `data`: recorded in its entry once loaded. */
	s = open_sim(env, CAP);
	read_check(s, ids, 7, 1);
	ot_entry *e = ot_entry_of(&s->ot, ids[7]);
	const void *slot = loc_slot(atomic_load(&e->loc));
	uint64_t off = (uint64_t)seg_no_of(slot) * SEG_SIZE + seg_offset_of(slot);
	cr_assert_eq(strata_close(s), 0);
	cr_assert_eq(io_sim_flip_bit(env, "db/data", off + 100, 3), 0);
	s = open_sim(env, CAP);
	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	const void *p;
	cr_assert_eq(strata_resolve(snap, ids[7], &p, NULL), STRATA_ECORRUPT);
	cr_assert_eq(strata_resolve(snap, ids[7], &p, NULL), STRATA_ECORRUPT, "never served later");
	strata_snapshot_close(snap);
	for (uint32_t k = 0; k < 200; k++)
		if (k != 7)
			read_check(s, ids, k, 1);
	cr_assert_eq(strata_close(s), 0);
	free(ids);
	io_sim_free(env);
}

/* The CRC lives in the halves of the entry's birth and retire stamps:
 * retiring a node (and a checkpoint after) must keep it, so an old
 * snapshot still reads an evicted retired image back intact, and a damaged
 * one as ECORRUPT. */
Test(cache, a_retired_image_keeps_its_checksum)
{
	io_env *env;
	strata_node_id *ids;
	strata_store *s = written_store(&env, &ids);
	strata_snapshot *old;
	cr_assert_eq(strata_snapshot_open(s, &old), 0);
	const char *rname = "r";
	strata_txn *t;
	cr_assert_eq(strata_txn_begin(s, &rname, 1, STRATA_TXN_SYNC, &t), 0);
	cr_assert_eq(strata_txn_free(t, ids[7]), 0);
	cr_assert_eq(strata_txn_free(t, ids[8]), 0);
	cr_assert_eq(strata_txn_commit(t, NULL), 0);
	cr_assert_eq(strata_checkpoint(s), 0, "%s", strata_last_error());
	ot_entry *e = ot_entry_of(&s->ot, ids[7]);
	cr_assert_eq(OT_META_STATE(atomic_load(&e->meta)), OT_RETIRED);
	const void *slot = loc_slot(atomic_load(&e->loc));
	uint64_t off = (uint64_t)seg_no_of(slot) * SEG_SIZE + seg_offset_of(slot);
	for (uint32_t k = 9; k < NNODES; k++) /* 13x the cache: 7 and 8 are evicted */
		read_check(s, ids, k, 1);
	cr_assert_eq(io_sim_flip_bit(env, "db/data", off + 100, 3), 0);
	uint64_t miss = test_stats(s).cache_misses;
	const void *p;
	uint32_t size;
	cr_assert_eq(strata_resolve(old, ids[8], &p, &size), 0, "%s", strata_last_error());
	cr_assert(size == size_of(8) && holds(p, 8, 1, size), "the intact retired image reads back");
	cr_assert_eq(strata_resolve(old, ids[7], &p, NULL), STRATA_ECORRUPT);
	cr_assert_eq(test_stats(s).cache_misses, miss + 1, "both came from `data`");
	strata_snapshot_close(old);
	cr_assert_eq(strata_close(s), 0);
	free(ids);
	io_sim_free(env);
}

/* live_bytes is exact once nothing waits for readers or checkpoints;
 * freeing half the nodes halves it while the data file keeps its size. */
Test(cache, space_is_reported)
{
	io_env *env;
	strata_node_id *ids;
	strata_store *s = written_store(&env, &ids);
	uint64_t all = 0, kept = 0;
	for (uint32_t k = 0; k < NNODES; k++) {
		all += size_of(k);
		kept += k % 2 == 0 ? size_of(k) : 0;
	}
	strata_store_stats st = test_stats(s);
	cr_assert_eq(st.live_bytes, all);
	cr_assert_geq(st.file_bytes, all);
	/* Small: each of the ~15 size classes used has a 2 MiB segment. */
	cr_assert(st.space_amplification >= 1.0, "%.2f", st.space_amplification);
	const char *rname = "r";
	strata_txn *t;
	cr_assert_eq(strata_txn_begin(s, &rname, 1, 0, &t), 0);
	for (uint32_t k = 1; k < NNODES; k += 2)
		cr_assert_eq(strata_txn_free(t, ids[k]), 0);
	cr_assert_eq(strata_txn_commit(t, NULL), 0);
	strata_reclaim(s);
	cr_assert_eq(strata_checkpoint(s), 0); /* the freed slots leave limbo */
	strata_store_stats st2 = test_stats(s);
	cr_assert_eq(st2.live_bytes, kept);
	cr_assert_geq(st2.file_bytes, st.file_bytes, "nothing gives the space back (yet)");
	double ratio = st2.space_amplification / st.space_amplification;
	cr_assert(ratio > 1.9 && ratio < 2.1, "amplification %.2f -> %.2f", st.space_amplification,
		  st2.space_amplification);
	cr_assert_eq(strata_close(s), 0);
	s = open_sim(env, CAP);
	cr_assert_eq(test_stats(s).live_bytes, kept, "the same after a reopen (from the checkpoint)");
	cr_assert_eq(strata_close(s), 0);
	free(ids);
	io_sim_free(env);
}

/* ---- readers and a writer ------------------------------------------------------------ */
/* Root "r" names an index node: NIDX ids of nodes (k at some version).
 * The writer rewrites random nodes (copy-on-write: new id, version + 1)
 * and the index; readers check that every node the index names holds
 * its own k, at any version. Eviction runs all the time. */
#define NIDX 600u

typedef struct shared {
	strata_store *s;
	_Atomic bool stop;
	_Atomic uint64_t reads, bad;
	/* The first failure, for the assertion's message. */
	_Atomic int first_set;
	char first[160];
} shared;

static void reader_bad(shared *sh, const char *what, int rc, uint32_t k)
{
	atomic_fetch_add(&sh->bad, 1);
	int z = 0;
	if (atomic_compare_exchange_strong(&sh->first_set, &z, 1))
		snprintf(sh->first, sizeof sh->first, "%s (k %u): %s", what, k,
			 rc ? strata_strerror(rc) : "wrong bytes");
}

static void *reader(void *arg)
{
	shared *sh = arg;
	test_rng r = {(uint64_t)(uintptr_t)&r};
	while (!atomic_load(&sh->stop)) {
		strata_snapshot *snap;
		if (strata_snapshot_open(sh->s, &snap))
			continue;
		strata_node_id rid;
		const strata_node_id *idx;
		int rc = strata_snapshot_root(snap, "r", &rid);
		if (rc || (rc = strata_resolve(snap, rid, (const void **)&idx, NULL))) {
			reader_bad(sh, "index node", rc, 0);
			strata_snapshot_close(snap);
			continue;
		}
		for (int i = 0; i < 20; i++) {
			uint32_t k = (uint32_t)rng_below(&r, NIDX), size, v;
			const uint8_t *p;
			if ((rc = strata_resolve(snap, idx[k], (const void **)&p, &size))) {
				reader_bad(sh, "resolve", rc, k);
				continue;
			}
			memcpy(&v, p + 4, 4);
			if (size != size_of(k) || !holds(p, k, v, size))
				reader_bad(sh, size != size_of(k) ? "size" : "bytes", 0, k);
			atomic_fetch_add(&sh->reads, 1);
		}
		strata_snapshot_close(snap);
	}
	return NULL;
}

Test(cache, readers_and_a_writer_with_constant_eviction, .timeout = 120)
{
	io_env *env = test_sim_env();
	strata_store *s = open_sim(env, 64u << 10);
	const char *rname = "r";
	strata_txn *t;
	strata_node_id ridx, ids[NIDX];
	uint32_t ver[NIDX];
	cr_assert_eq(strata_txn_begin(s, &rname, 1, 0, &t), 0);
	for (uint32_t k = 0; k < NIDX; k++) {
		void *p;
		cr_assert_eq(strata_txn_alloc(t, size_of(k), 1, &ids[k], &p), 0);
		fill(p, k, ver[k] = 1, size_of(k));
	}
	void *ip;
	cr_assert_eq(strata_txn_alloc(t, sizeof ids, 2, &ridx, &ip), 0);
	memcpy(ip, ids, sizeof ids);
	cr_assert_eq(strata_txn_set_root(t, rname, ridx), 0);
	cr_assert_eq(strata_txn_commit(t, NULL), 0);
	cr_assert_eq(strata_checkpoint(s), 0);

	shared sh = {.s = s};
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, reader, &sh), 0);
	/* 300 commits, then more until the readers have read during them (on a
	 * loaded machine 300 commits can pass before they were scheduled). */
	test_rng r = {7};
	double until = test_now_s() + 60;
	for (uint32_t c = 1; c <= 300 || (atomic_load(&sh.reads) <= 1000 && test_now_s() < until);
	     c++) {
		cr_assert_eq(strata_txn_begin(s, &rname, 1, STRATA_TXN_ASYNC, &t), 0);
		strata_node_id nidx;
		cr_assert_eq(strata_txn_write(t, ridx, &nidx, &ip, NULL), 0);
		for (int j = 0; j < 5; j++) {
			uint32_t k = (uint32_t)rng_below(&r, NIDX);
			void *p;
			const void *old;
			strata_node_id nid;
			cr_assert_eq(strata_txn_rewrite(t, ids[k], 0, &nid, &p, &old, NULL), 0);
			fill(p, k, ++ver[k], size_of(k));
			ids[k] = nid;
		}
		memcpy(ip, ids, sizeof ids);
		ridx = nidx;
		cr_assert_eq(strata_txn_set_root(t, rname, ridx), 0);
		cr_assert_eq(strata_txn_commit(t, NULL), 0);
		if (c % 25 == 0)
			cr_assert_eq(strata_checkpoint(s), 0, "%s", strata_last_error());
	}
	atomic_store(&sh.stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	cr_assert_eq(atomic_load(&sh.bad), 0, "%llu bad reads, the first: %s",
		     (unsigned long long)atomic_load(&sh.bad), sh.first);
	cr_assert_gt(atomic_load(&sh.reads), 1000);
	cr_assert_gt(test_stats(s).cache_evictions, 0);
	cr_assert_eq(strata_check(s, test_report, NULL), 0);
	for (uint32_t k = 0; k < NIDX; k++)
		read_check(s, ids, k, ver[k]);
	cr_assert_eq(strata_close(s), 0);
	io_sim_free(env);
}

/* ---- resident memory ---------------------------------------------------------------- */
static uint64_t rss_bytes(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	uint64_t kb = 0;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %" SCNu64, &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb << 10;
}

#define RSS_NODES 12000u /* 4000-byte nodes: 48 MB of images */
#define RSS_CAP (8u << 20)

/* In a child (its own address space): opens the store with `cap`, reads
 * every node twice in random order, and reports the growth of VmRSS. */
static uint64_t rss_growth(const char *dir, uint64_t cap, const strata_node_id *ids)
{
	int fd[2];
	cr_assert_eq(pipe(fd), 0);
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		uint64_t before = rss_bytes(), growth = UINT64_MAX;
		strata_options o = cached_opts(dir, cap);
		strata_store *s;
		if (strata_open(&o, &s) == 0) {
			test_rng r = {3};
			strata_snapshot *snap;
			bool ok = strata_snapshot_open(s, &snap) == 0;
			for (uint32_t i = 0; ok && i < 2 * RSS_NODES; i++) {
				const void *p;
				uint32_t k = (uint32_t)rng_below(&r, RSS_NODES), size;
				ok = strata_resolve(snap, ids[k], &p, &size) == 0 &&
				     holds(p, k, 1, size);
				if (i % 64 == 63) { /* short snapshots: grace can end */
					strata_snapshot_close(snap);
					ok = ok && strata_snapshot_open(s, &snap) == 0;
				}
			}
			if (ok) {
				strata_snapshot_close(snap);
				growth = rss_bytes() - before;
			}
			strata_close(s);
		}
		ssize_t w = write(fd[1], &growth, sizeof growth);
		_exit(w == (ssize_t)sizeof growth ? 0 : 1);
	}
	close(fd[1]);
	uint64_t growth = UINT64_MAX;
	cr_assert_eq(read(fd[0], &growth, sizeof growth), (ssize_t)sizeof growth);
	close(fd[0]);
	int st;
	waitpid(pid, &st, 0);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	cr_assert_neq(growth, UINT64_MAX, "the child could not read the store back");
	return growth;
}

static int write_rss_store(const char *dir, strata_node_id *ids)
{
	strata_options o = cached_opts(dir, RSS_CAP);
	o.checkpoint_wal_bytes = 16u << 20;
	strata_store *s;
	if (strata_open(&o, &s))
		return 1;
	const char *rname = "r";
	for (uint32_t k = 0; k < RSS_NODES;) {
		strata_txn *t;
		if (strata_txn_begin(s, &rname, 1, STRATA_TXN_NONE, &t))
			return 1;
		for (uint32_t j = 0; j < 500 && k < RSS_NODES; j++, k++) {
			void *p;
			if (strata_txn_alloc(t, 4000, 1, &ids[k], &p))
				return 1;
			fill(p, k, 1, 4000);
		}
		if (strata_txn_set_root(t, rname, ids[0]) || strata_txn_commit(t, NULL))
			return 1;
	}
	return strata_close(s) ? 1 : 0;
}

Test(cache, resident_memory_stays_under_the_cap, .timeout = 300)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	cr_skip_test("sanitizer builds use libc malloc with shadow memory: RSS means nothing");
#endif
	char dir[] = "/tmp/strata-cache-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	/* Written by a child too: the readers fork from a process whose heap
	 * never held the images (fork would hand them resident pages). */
	strata_node_id *ids = mmap(NULL, RSS_NODES * sizeof *ids, PROT_READ | PROT_WRITE,
				   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(ids, MAP_FAILED);
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0)
		_exit(write_rss_store(dir, ids));
	int st;
	waitpid(pid, &st, 0);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "writing the store failed");
	uint64_t bounded = rss_growth(dir, RSS_CAP, ids);
	uint64_t unbounded = rss_growth(dir, 0, ids);
	/* Overhead (design/ARCHITECTURE.md): object-table chunk and CRC cells
	 * (~0.6 MB here), segment headers, the WAL buffer, allocator slack. */
	cr_log_info("RSS growth: cap %u MiB: %.1f MiB; no cap: %.1f MiB", RSS_CAP >> 20,
		    bounded / 1048576.0, unbounded / 1048576.0);
	cr_assert_leq(bounded, RSS_CAP + (6u << 20), "RSS grew %" PRIu64 " bytes", bounded);
	cr_assert_gt(unbounded, 40u << 20, "without a cap every image stays: the test measures");
	munmap(ids, RSS_NODES * sizeof *ids);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}
