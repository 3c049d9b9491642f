/*
 * test_compact.c — compaction of `data` (compact.c): sparse stores shrink
 * and keep every NodeID and byte, with and without a bounded cache;
 * readers holding old places keep them until they close; writers and
 * readers run during compaction; a power loss at every I/O step of a
 * compaction (four loss modes) recovers a complete store.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "durable.h"
#include "io_sim.h"
#include "support/model.h"

TestSuite(compact, .fini = test_leak_check);

#define NODE 1000u /* class 1024: about 2040 nodes per 2 MiB segment */

static void fill(uint8_t *p, uint32_t k, uint32_t size)
{
	for (uint32_t i = 0; i < size; i++)
		p[i] = (uint8_t)(k * 131u + i * 7u + (i >> 8));
	memcpy(p, &k, 4);
}

static bool holds(const uint8_t *p, uint32_t k, uint32_t size)
{
	uint32_t got;
	memcpy(&got, p, 4);
	if (got != k)
		return false;
	for (uint32_t i = 4; i < size; i++)
		if (p[i] != (uint8_t)(k * 131u + i * 7u + (i >> 8)))
			return false;
	return true;
}

static strata_options opts(uint64_t cache)
{
	strata_options o = test_durable_options("db", true);
	o.cache_bytes = cache;
	o.compact_amplification = 0; /* only on demand here */
	return o;
}

static strata_store *open_sim(io_env *env, uint64_t cache)
{
	strata_options o = opts(cache);
	strata_store *s;
	int rc = store_open_env(&o, env, &s);
	cr_assert_eq(rc, 0, "open: %s: %s", strata_strerror(rc), strata_last_error());
	return s;
}

/* n nodes, then every one with keep(k) false freed: a sparse store.
 * live[k] says which remain. Checkpointed and reclaimed. */
static void sparse_store_r(strata_store *s, uint32_t n, strata_node_id *ids, bool *live,
			   uint32_t keep_every, bool reclaim)
{
	const char *rname = "r";
	for (uint32_t k = 0; k < n;) {
		strata_txn *t;
		cr_assert_eq(strata_txn_begin(s, &rname, 1, STRATA_TXN_NONE, &t), 0);
		for (uint32_t j = 0; j < 500 && k < n; j++, k++) {
			void *p;
			cr_assert_eq(strata_txn_alloc(t, NODE, 1, &ids[k], &p), 0);
			fill(p, k, NODE);
			live[k] = true;
		}
		cr_assert_eq(strata_txn_set_root(t, rname, ids[0]), 0);
		cr_assert_eq(strata_txn_commit(t, NULL), 0);
	}
	cr_assert_eq(strata_checkpoint(s), 0);
	strata_txn *t;
	cr_assert_eq(strata_txn_begin(s, &rname, 1, STRATA_TXN_SYNC, &t), 0);
	for (uint32_t k = 1; k < n; k++)
		if (k % keep_every) {
			cr_assert_eq(strata_txn_free(t, ids[k]), 0);
			live[k] = false;
		}
	cr_assert_eq(strata_txn_commit(t, NULL), 0);
	if (reclaim) {
		strata_reclaim(s);
		cr_assert_eq(strata_checkpoint(s), 0); /* limbo slots come back */
	}
}

static void sparse_store(strata_store *s, uint32_t n, strata_node_id *ids, bool *live,
			 uint32_t keep_every)
{
	sparse_store_r(s, n, ids, live, keep_every, true);
}

/* The end of a test: a clean close, then what it allocated. */
static void close_all(strata_store *s, io_env *env, strata_node_id *ids, bool *live)
{
	cr_assert_eq(strata_close(s), 0);
	free(ids);
	free(live);
	io_sim_free(env);
}

static void expect_all(strata_store *s, uint32_t n, const strata_node_id *ids, const bool *live)
{
	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	for (uint32_t k = 0; k < n; k++) {
		const void *p;
		uint32_t size;
		int rc = strata_resolve(snap, ids[k], &p, &size);
		if (!live[k]) {
			cr_assert_neq(rc, 0, "node %u was freed", k);
			continue;
		}
		cr_assert_eq(rc, 0, "node %u: %s (%s)", k, strata_strerror(rc), strata_last_error());
		cr_assert(size == NODE && holds(p, k, size), "node %u: wrong bytes", k);
	}
	strata_snapshot_close(snap);
}

static void shrinks(uint64_t cache)
{
	enum { N = 12000 }; /* six segments of class 1024 */
	io_env *env = test_sim_env();
	strata_store *s = open_sim(env, cache);
	strata_node_id *ids = calloc(N, sizeof *ids);
	bool *live = calloc(N, sizeof *live);
	sparse_store(s, N, ids, live, 3);
	strata_store_stats before = test_stats(s);
	cr_assert_gt(before.space_amplification, 2.5, "a third kept: %.2f", before.space_amplification);
	uint64_t moved = 0;
	cr_assert_eq(strata_compact(s, &moved), 0, "%s", strata_last_error());
	cr_assert_gt(moved, 0);
	strata_store_stats after = test_stats(s);
	cr_log_info("cache %" PRIu64 ": amplification %.2f -> %.2f, file %" PRIu64 " -> %" PRIu64
		    " B, moved %" PRIu64 " B in %" PRIu64 " rounds, %" PRIu64 " segments freed",
		    cache, before.space_amplification, after.space_amplification, before.file_bytes,
		    after.file_bytes, moved, after.compact_rounds, after.compact_segments_freed);
	cr_assert_eq(after.live_bytes, before.live_bytes, "compaction moves, never loses");
	cr_assert_lt(after.file_bytes, before.file_bytes / 2);
	cr_assert_leq(after.space_amplification, 1.5);
	cr_assert_gt(after.compact_segments_freed, 0);
	expect_all(s, N, ids, live);
	cr_assert_eq(strata_check(s, test_report, NULL), 0);
	cr_assert_eq(strata_close(s), 0);
	s = open_sim(env, cache);
	expect_all(s, N, ids, live);
	cr_assert_eq(strata_check(s, test_report, NULL), 0);
	cr_assert_lt(test_stats(s).file_bytes, before.file_bytes / 2, "smaller after reopen too");
	close_all(s, env, ids, live);
}

Test(compact, a_sparse_store_shrinks_and_keeps_every_node)
{
	shrinks(0);
}

Test(compact, the_same_through_a_bounded_cache)
{
	shrinks(256u << 10);
}

/* A snapshot that read nodes at their old places keeps those bytes until
 * it closes; the old segments are cut off only then. */
Test(compact, a_reader_keeps_the_old_places_until_it_closes)
{
	enum { N = 8000 };
	io_env *env = test_sim_env();
	strata_store *s = open_sim(env, 0);
	strata_node_id *ids = calloc(N, sizeof *ids);
	bool *live = calloc(N, sizeof *live);
	sparse_store(s, N, ids, live, 4);
	strata_snapshot *old;
	cr_assert_eq(strata_snapshot_open(s, &old), 0);
	const void *last;
	cr_assert_eq(strata_resolve(old, ids[N - 4], &last, NULL), 0); /* in the last segment */
	uint64_t moved;
	cr_assert_eq(strata_compact(s, &moved), 0);
	cr_assert_gt(moved, 0);
	cr_assert(holds(last, N - 4, NODE), "the old place is intact for its reader");
	uint64_t freed = test_stats(s).compact_segments_freed;
	cr_assert_eq(freed, 0, "nothing cut while the reader may read it");
	expect_all(s, N, ids, live);
	strata_snapshot_close(old);
	cr_assert_eq(strata_compact(s, &moved), 0);
	cr_assert_gt(test_stats(s).compact_segments_freed, 0);
	cr_assert_leq(test_stats(s).space_amplification, 1.5);
	expect_all(s, N, ids, live);
	cr_assert_eq(strata_check(s, test_report, NULL), 0);
	close_all(s, env, ids, live);
}

/* Slots of nodes retired before the durable checkpoint are in no
 * checkpoint: freed outright, not held for a next checkpoint that, with
 * no commit after, would never come (found by strata-bench scale: a long
 * reader's churn stayed "used" and compaction found nothing to do). */
Test(compact, slots_freed_after_a_long_reader_come_back)
{
	enum { N = 6000 };
	io_env *env = test_sim_env();
	strata_store *s = open_sim(env, 0);
	strata_node_id *ids = calloc(N, sizeof *ids);
	bool *live = calloc(N, sizeof *live);
	strata_snapshot *reader;
	cr_assert_eq(strata_snapshot_open(s, &reader), 0);
	sparse_store(s, N, ids, live, 3); /* its checkpoints come after the frees */
	unsigned cls = seg_class_of(NODE);
	uint64_t used_held = test_stats(s).classes[cls].slots_used;
	cr_assert_eq(used_held, N, "the reader holds every version");
	strata_snapshot_close(reader);
	strata_reclaim(s); /* no commit, no checkpoint after this */
	strata_store_stats st = test_stats(s);
	cr_assert_eq(st.classes[cls].slots_used, N / 3, "freed at once: %" PRIu64 " used",
		     st.classes[cls].slots_used);
	uint64_t moved;
	cr_assert_eq(strata_compact(s, &moved), 0);
	cr_assert_gt(moved, 0);
	cr_assert_leq(test_stats(s).space_amplification, 1.5);
	expect_all(s, N, ids, live);
	close_all(s, env, ids, live);
}

/* Nodes retired but not reclaimed yet (reclamation runs after commits;
 * a checkpoint's pin can hold it off) and slots in limbo made classes look
 * full: strata_compact frees what no reader needs and releases limbo
 * first (strata-bench scale: in-process compaction moved nothing in 4
 * runs of 5). */
Test(compact, compacts_what_reclamation_has_not_freed_yet)
{
	enum { N = 8000 };
	io_env *env = test_sim_env();
	strata_options o = opts(0);
	o.reclaim_interval = 1000000; /* commits never reclaim here */
	strata_store *s;
	cr_assert_eq(store_open_env(&o, env, &s), 0);
	strata_node_id *ids = calloc(N, sizeof *ids);
	bool *live = calloc(N, sizeof *live);
	sparse_store_r(s, N, ids, live, 4, false);
	cr_assert_gt(test_stats(s).nodes_retired, N / 2, "retired, not reclaimed");
	uint64_t moved;
	cr_assert_eq(strata_compact(s, &moved), 0);
	cr_assert_gt(moved, 0);
	cr_assert_eq(test_stats(s).nodes_retired, 0);
	cr_assert_leq(test_stats(s).space_amplification, 1.5);
	expect_all(s, N, ids, live);
	cr_assert_eq(strata_check(s, test_report, NULL), 0);
	close_all(s, env, ids, live);
}

/* ---- concurrent readers and writer ------------------------------------------------------ */
typedef struct shared {
	strata_store *s;
	uint32_t n;
	const strata_node_id *ids; /* written before the threads start */
	const bool *live;
	_Atomic bool stop, compacting;
	_Atomic uint64_t reads, reads_compacting, bad;
} shared;

static void *reader(void *arg)
{
	shared *sh = arg;
	test_rng r = {(uint64_t)(uintptr_t)&r};
	while (!atomic_load(&sh->stop)) {
		strata_snapshot *snap;
		if (strata_snapshot_open(sh->s, &snap))
			continue;
		for (int i = 0; i < 50; i++) {
			uint32_t k = (uint32_t)rng_below(&r, sh->n), size;
			if (!sh->live[k])
				continue;
			const void *p;
			if (strata_resolve(snap, sh->ids[k], &p, &size) || size != NODE || !holds(p, k, size))
				atomic_fetch_add(&sh->bad, 1);
			atomic_fetch_add(&sh->reads, 1);
			if (atomic_load(&sh->compacting))
				atomic_fetch_add(&sh->reads_compacting, 1);
		}
		strata_snapshot_close(snap);
	}
	return NULL;
}

static void *writer(void *arg)
{
	shared *sh = arg;
	const char *rname = "w";
	strata_node_id prev = 0;
	for (uint32_t c = 0; !atomic_load(&sh->stop); c++) {
		strata_txn *t;
		if (strata_txn_begin(sh->s, &rname, 1, STRATA_TXN_ASYNC, &t)) {
			atomic_fetch_add(&sh->bad, 1);
			break;
		}
		strata_node_id id;
		void *p;
		if (prev && strata_txn_free(t, prev))
			atomic_fetch_add(&sh->bad, 1);
		if (strata_txn_alloc(t, NODE, 3, &id, &p) == 0) {
			fill(p, 1000000 + c, NODE);
			strata_txn_set_root(t, rname, id);
		}
		if (strata_txn_commit(t, NULL))
			atomic_fetch_add(&sh->bad, 1);
		prev = id;
	}
	return NULL;
}

static void concurrent(uint64_t cache)
{
	enum { N = 10000 };
	io_env *env = test_sim_env();
	strata_store *s = open_sim(env, cache);
	strata_node_id *ids = calloc(N, sizeof *ids);
	bool *live = calloc(N, sizeof *live);
	sparse_store(s, N, ids, live, 3);
	shared sh = {.s = s, .n = N, .ids = ids, .live = live};
	pthread_t th[3];
	cr_assert_eq(pthread_create(&th[0], NULL, reader, &sh), 0);
	cr_assert_eq(pthread_create(&th[1], NULL, reader, &sh), 0);
	cr_assert_eq(pthread_create(&th[2], NULL, writer, &sh), 0);
	/* The readers must be running before compaction starts (on a loaded
	 * 2-core machine three rounds can end before they were scheduled):
	 * then whether they read during it is up to the scheduler, not to
	 * how fast compaction is. */
	while (atomic_load(&sh.reads) < 1000)
		sched_yield();
	/* Three rounds, then more (the writer keeps making garbage) until a
	 * read has run during one: a round takes ~30 ms, a time slice on a
	 * loaded 2-core machine about as long, so three rounds alone can pass
	 * without either reader on a core. */
	atomic_store(&sh.compacting, true);
	uint64_t total = 0;
	double until = test_now_s() + 60;
	for (int i = 0; i < 3 || (atomic_load(&sh.reads_compacting) == 0 && test_now_s() < until);
	     i++) {
		uint64_t moved;
		cr_assert_eq(strata_compact(s, &moved), 0, "%s", strata_last_error());
		total += moved;
	}
	atomic_store(&sh.compacting, false);
	atomic_store(&sh.stop, true);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	cr_assert_eq(atomic_load(&sh.bad), 0);
	cr_assert_gt(atomic_load(&sh.reads_compacting), 0, "no read ran during 60 s of compaction");
	cr_assert_gt(total, 0);
	expect_all(s, N, ids, live);
	cr_assert_eq(strata_check(s, test_report, NULL), 0);
	cr_assert_eq(strata_close(s), 0);
	s = open_sim(env, cache);
	expect_all(s, N, ids, live);
	close_all(s, env, ids, live);
}

Test(compact, readers_and_a_writer_during_compaction, .timeout = 120)
{
	concurrent(0);
}

Test(compact, readers_and_a_writer_during_compaction_cached, .timeout = 120)
{
	concurrent(128u << 10);
}

/* ---- power loss at every step ------------------------------------------------------------- */
enum { CN = 5000 }; /* three segments; a third kept: compaction moves ~1100 nodes */

static io_env *crash_base(strata_node_id *ids, bool *live)
{
	io_env *env = test_sim_env();
	strata_store *s = open_sim(env, 0);
	sparse_store(s, CN, ids, live, 3);
	cr_assert_eq(strata_close(s), 0);
	return env;
}

/* Steps of one compaction of the crash base, run without a crash. */
static uint64_t compaction_steps(strata_node_id *ids, bool *live)
{
	io_env *env = crash_base(ids, live);
	strata_store *s = open_sim(env, 0);
	uint64_t start = io_sim_steps(env), moved;
	cr_assert_eq(strata_compact(s, &moved), 0);
	cr_assert_gt(moved, 0);
	uint64_t n = io_sim_steps(env) - start;
	cr_assert_eq(strata_close(s), 0);
	io_sim_free(env);
	return n;
}

/* A power loss after step k of a compaction (k = 1..its last step - 1: every
 * one of the first and last 64, where the checkpoint, superblock and trim
 * are; every 11th of the node moves between), in four loss modes. */
Test(compact, power_loss_at_every_step, .timeout = 900)
{
	const io_sim_loss modes[] = {IO_SIM_DROP_ALL, IO_SIM_KEEP_RANDOM, IO_SIM_TEAR_LAST,
				     IO_SIM_KEEP_ALL};
	strata_node_id *ids = calloc(CN, sizeof *ids);
	bool *live = calloc(CN, sizeof *live);
	uint64_t total = compaction_steps(ids, live);
	unsigned checked = 0;
	for (uint64_t k = 1; k < total; k += (k < 64 || k + 64 >= total) ? 1 : 11) {
		io_env *env = crash_base(ids, live);
		strata_store *s = open_sim(env, 0);
		io_sim_crash_after(env, io_sim_steps(env) + k);
		uint64_t moved;
		(void)strata_compact(s, &moved);
		cr_assert(io_sim_crashed(env), "step %" PRIu64 " of %" PRIu64 " never came", k, total);
		strata_close(s); /* fails: the process "died" */
		io_sim_power_loss(env, modes[k % 4], k);
		s = open_sim(env, 0);
		expect_all(s, CN, ids, live);
		cr_assert_eq(strata_check(s, test_report, NULL), 0, "crash after step %" PRIu64, k);
		cr_assert_eq(strata_close(s), 0);
		io_sim_free(env);
		checked++;
	}
	cr_log_info("%u power-loss points checked over a compaction of %" PRIu64 " steps", checked,
		    total);
	cr_assert_gt(checked, 100);
	free(ids);
	free(live);
}
