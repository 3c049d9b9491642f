/*
 * test_segpool.c — the process-wide segment pool and its prefault thread
 * (substrate/segpool.c): a closed store's segments reach the next store;
 * the bound holds (and lowering it frees); stores in several threads share
 * the pool with the prefault thread running; the statistics move; the last
 * close joins the thread, and a fork child does not inherit it; a failed
 * segment acquisition is STRATA_ENOMEM with nothing changed; under ASan,
 * pooled memory is poisoned. Criterion runs each test in its own process,
 * so each starts with an empty pool.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "strata/bptree.h"
#include "support/model.h"

TestSuite(segpool, .fini = test_leak_check);

#if defined(__SANITIZE_THREAD__)
#define SEGPOOL_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SEGPOOL_TEST_TSAN 1
#endif
#endif

#define BIG 65536u /* the largest class: 31 nodes fill a segment */
#define PER_SEG ((SEG_SIZE - 4224u) / BIG)
#define MIB (1024u * 1024u)

static uintptr_t seg_base(const void *p)
{
	return (uintptr_t)p & ~(uintptr_t)(SEG_SIZE - 1);
}

/* Commits n nodes of BIG bytes, each filled with `fill`; bases[] (if not
 * NULL) gets each node's segment address. */
static void fill_nodes(strata_store *s, unsigned n, int fill, uintptr_t *bases)
{
	strata_txn *t;
	cr_assert_eq(strata_txn_begin(s, NULL, 0, 0, &t), 0);
	for (unsigned i = 0; i < n; i++) {
		strata_node_id id;
		void *p;
		cr_assert_eq(strata_txn_alloc_uninit(t, BIG, 0, &id, &p), 0);
		memset(p, fill, BIG);
		if (bases)
			bases[i] = seg_base(p);
	}
	cr_assert_eq(strata_txn_commit(t, NULL), 0);
}

static uint64_t pooled_bytes(void)
{
	uint64_t pf, bytes;
	segpool_stats(&pf, &bytes, NULL);
	return bytes;
}

static bool thread_running(void)
{
	uint64_t pf, bytes;
	bool run;
	segpool_stats(&pf, &bytes, &run);
	return run;
}

/* Whether task `name` of this process is exiting or gone: pthread_join
 * returns once the kernel has cleared the thread's tid, which it does while
 * the thread exits (PF_EXITING set in its flags, state still R), so the
 * joined thread can still be listed for a moment. A detached thread that
 * had not yet begun to exit would not have the flag. */
static bool task_dead(const char *name)
{
	char path[300], buf[512];
	snprintf(path, sizeof path, "/proc/self/task/%s/stat", name);
	FILE *f = fopen(path, "r");
	if (!f)
		return true; /* gone between readdir and here */
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	const char *p = strrchr(buf, ')'); /* the name may hold spaces and parentheses */
	char state;
	unsigned long flags;
	if (!p || sscanf(p + 1, " %c %*d %*d %*d %*d %*d %lu", &state, &flags) != 2)
		return false;
	return state == 'Z' || state == 'X' || (flags & 0x4) /* PF_EXITING */;
}

/* Threads of this process that have not exited. */
static int task_count(void)
{
	DIR *d = opendir("/proc/self/task");
	int n = 0;
	for (struct dirent *e; d && (e = readdir(d));)
		n += e->d_name[0] != '.' && !task_dead(e->d_name);
	if (d)
		closedir(d);
	return n;
}

/* Polls until the pool holds at least `bytes` (the prefault thread's work). */
static bool wait_pooled(uint64_t bytes)
{
	for (int i = 0; i < 30000 && pooled_bytes() < bytes; i++) /* 30 s under load */
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	return pooled_bytes() >= bytes;
}

Test(segpool, closed_store_segments_reach_the_next_store)
{
	strata_segment_pool_set(64 * MIB);
	uintptr_t a[2 * PER_SEG], b[2 * PER_SEG];
	strata_store *s = test_open(NULL);
	fill_nodes(s, 2 * PER_SEG, 0x11, a);
	cr_assert_eq(test_stats(s).pool_hits, 0, "the pool starts empty");
	test_close(s);
	cr_assert_geq(pooled_bytes(), 2 * SEG_SIZE);

	s = test_open(NULL);
	fill_nodes(s, 2 * PER_SEG, 0x22, b);
	strata_store_stats st = test_stats(s);
	cr_assert_geq(st.pool_hits, 2);
	cr_assert_eq(st.pool_misses, 0);
	for (unsigned i = 0; i < 2 * PER_SEG; i++) {
		bool found = false;
		for (unsigned j = 0; j < 2 * PER_SEG && !found; j++)
			found = b[i] == a[j];
		cr_assert(found, "node %u of the second store is not in a segment of the first", i);
	}
	test_close(s);
}

Test(segpool, segments_emptied_inside_a_store_are_reused)
{
	strata_segment_pool_set(64 * MIB);
	strata_store *s = test_open(NULL);
	for (int round = 0; round < 4; round++) {
		strata_txn *t;
		strata_node_id ids[3 * PER_SEG];
		cr_assert_eq(strata_txn_begin(s, NULL, 0, 0, &t), 0);
		for (unsigned i = 0; i < 3 * PER_SEG; i++) {
			void *p;
			cr_assert_eq(strata_txn_alloc(t, BIG, 0, &ids[i], &p), 0);
		}
		cr_assert_eq(strata_txn_commit(t, NULL), 0);
		cr_assert_eq(strata_txn_begin(s, NULL, 0, 0, &t), 0);
		for (unsigned i = 0; i < 3 * PER_SEG; i++)
			cr_assert_eq(strata_txn_free(t, ids[i]), 0);
		cr_assert_eq(strata_txn_commit(t, NULL), 0);
		strata_reclaim(s); /* emptied segments (all but the current) go to the pool */
	}
	strata_store_stats st = test_stats(s);
	cr_assert_geq(st.pool_hits, 3, "emptied segments came back (hits %llu, misses %llu)",
		      (unsigned long long)st.pool_hits, (unsigned long long)st.pool_misses);
	cr_assert_leq(st.pool_misses, 3, "only the first round needed fresh memory");
	test_close(s);
}

Test(segpool, bound_is_respected_and_lowering_it_frees)
{
	size_t def = strata_segment_pool_set(4 * MIB + 123);
	cr_assert(def > 0 && def <= 256 * MIB && def % SEG_SIZE == 0, "default %zu", def);
	cr_assert_eq(strata_segment_pool_set(4 * MIB), 4 * MIB, "rounded down to whole segments");
	strata_store *s = test_open(NULL);
	fill_nodes(s, 5 * PER_SEG, 0x33, NULL);
	test_close(s);
	cr_assert_eq(pooled_bytes(), 4 * MIB, "5 segments released, 2 kept");
	cr_assert_eq(strata_segment_pool_set(2 * MIB), 4 * MIB);
	cr_assert_eq(pooled_bytes(), 2 * MIB);
	cr_assert_eq(strata_segment_pool_set(0), 2 * MIB);
	cr_assert_eq(pooled_bytes(), 0);

	s = test_open(NULL);
	fill_nodes(s, PER_SEG, 0x44, NULL);
	strata_store_stats st = test_stats(s);
	cr_assert_eq(st.pool_hits, 0, "a pool of 0 bytes keeps nothing");
	cr_assert_geq(st.pool_misses, 1);
	cr_assert_eq(st.pool_bytes, 0);
	test_close(s);
	cr_assert_eq(pooled_bytes(), 0);
}

/* ---- several stores in several threads ---------------------------------------- */
typedef struct worker {
	int fill;
	bool ok;
} worker;

/* Rounds of: open, commit nodes over several segments, check each byte,
 * free them (segments empty and go to the pool), close. */
static void *worker_main(void *arg)
{
	worker *w = arg;
	w->ok = true;
	for (int round = 0; round < 6 && w->ok; round++) {
		strata_store *s;
		if (strata_open(NULL, &s)) {
			w->ok = false;
			break;
		}
		strata_txn *t;
		strata_node_id ids[2 * PER_SEG];
		w->ok = strata_txn_begin(s, NULL, 0, 0, &t) == 0;
		for (unsigned i = 0; w->ok && i < 2 * PER_SEG; i++) {
			void *p;
			w->ok = strata_txn_alloc_uninit(t, BIG, 0, &ids[i], &p) == 0;
			if (w->ok)
				memset(p, w->fill + round, BIG);
		}
		w->ok = w->ok && strata_txn_commit(t, NULL) == 0;
		strata_snapshot *snap;
		w->ok = w->ok && strata_snapshot_open(s, &snap) == 0;
		for (unsigned i = 0; w->ok && i < 2 * PER_SEG; i++) {
			const void *d;
			uint32_t len;
			w->ok = strata_resolve(snap, ids[i], &d, &len) == 0 && len == BIG;
			for (size_t k = 0; w->ok && k < BIG; k += 509)
				w->ok = ((const unsigned char *)d)[k] == (unsigned char)(w->fill + round);
		}
		if (w->ok)
			strata_snapshot_close(snap);
		w->ok = w->ok && strata_txn_begin(s, NULL, 0, 0, &t) == 0;
		for (unsigned i = 0; w->ok && i < 2 * PER_SEG; i++)
			w->ok = strata_txn_free(t, ids[i]) == 0;
		w->ok = w->ok && strata_txn_commit(t, NULL) == 0;
		strata_reclaim(s);
		w->ok = w->ok && strata_check(s, NULL, NULL) == 0;
		w->ok = strata_close(s) == 0 && w->ok;
	}
	return NULL;
}

Test(segpool, stores_in_threads_share_the_pool, .timeout = 120)
{
	strata_segment_pool_set(8 * MIB); /* small: pushes beyond the bound free */
	strata_segment_prefault_set(2);
	strata_store *keep = test_open(NULL); /* keeps the prefault thread up */
	enum { N = 4 };
	pthread_t tid[N];
	worker w[N];
	for (int i = 0; i < N; i++) {
		w[i] = (worker){.fill = 0x10 * (i + 1)};
		cr_assert_eq(pthread_create(&tid[i], NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < N; i++) {
		pthread_join(tid[i], NULL);
		cr_assert(w[i].ok, "worker %d failed", i);
	}
	cr_assert_leq(pooled_bytes(), 8 * MIB);
	test_close(keep);
	cr_assert_not(thread_running());
	strata_segment_prefault_set(0);
}

/* ---- statistics and the prefault thread ---------------------------------------- */
Test(segpool, stats_count_hits_misses_and_prefaulted, .timeout = 60)
{
	strata_segment_pool_set(64 * MIB);
	cr_assert_eq(strata_segment_prefault_set(3), 0, "off by default");
	strata_store *s = test_open(NULL);
	cr_assert(wait_pooled(3 * SEG_SIZE), "the prefault thread filled the pool");
	strata_store_stats st = test_stats(s);
	cr_assert_geq(st.pool_prefaulted, 3);
	cr_assert_geq(st.pool_bytes, 3 * SEG_SIZE);
	fill_nodes(s, 2 * PER_SEG, 0x55, NULL);
	st = test_stats(s);
	cr_assert_geq(st.pool_hits, 2, "prefaulted segments were used");
	cr_assert(wait_pooled(3 * SEG_SIZE), "and the thread refilled the pool");
	cr_assert_geq(test_stats(s).pool_prefaulted, 5);
	test_close(s);

	cr_assert_eq(strata_segment_prefault_set(0), 3);
	strata_segment_pool_set(0);
	s = test_open(NULL);
	fill_nodes(s, 2 * PER_SEG, 0x66, NULL);
	st = test_stats(s);
	cr_assert_eq(st.pool_hits, 0);
	cr_assert_geq(st.pool_misses, 2);
	test_close(s);
}

Test(segpool, last_close_joins_the_prefault_thread, .timeout = 60)
{
	int tasks = task_count();
	strata_segment_prefault_set(2);
	cr_assert_not(thread_running(), "no store open: no thread");
	strata_store *a = test_open(NULL), *b = test_open(NULL);
	cr_assert(thread_running());
	cr_assert_eq(task_count(), tasks + 1);
	test_close(a);
	cr_assert(thread_running(), "one store still open");
	test_close(b);
	cr_assert_not(thread_running());
	cr_assert_eq(task_count(), tasks, "the thread is gone, not detached");

	a = test_open(NULL); /* starts again; turning the watermark off stops it */
	cr_assert(thread_running());
	strata_segment_prefault_set(0);
	cr_assert_not(thread_running());
	cr_assert_eq(task_count(), tasks);
	test_close(a);
}

Test(segpool, fork_child_does_not_inherit_the_thread, .timeout = 60)
{
	strata_segment_prefault_set(2);
	strata_store *s = test_open(NULL);
	cr_assert(wait_pooled(2 * SEG_SIZE));
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) { /* a second store, then both closed: the last close must not hang */
		int bad = thread_running();
#ifdef SEGPOOL_TEST_TSAN /* TSan cannot start threads in a multi-threaded fork's child */
		strata_segment_prefault_set(0);
#endif
		strata_store *c;
		bad = bad || strata_open(NULL, &c);
		if (!bad) {
			fill_nodes(c, PER_SEG, 0x77, NULL);
#ifndef SEGPOOL_TEST_TSAN
			bad = !thread_running(); /* the child's own thread */
#endif
			bad = bad || strata_close(c) || strata_close(s) || thread_running();
		}
		_exit(bad);
	}
	int status = 0;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
	test_close(s);
}

/* ---- failure ------------------------------------------------------------------ */
Test(segpool, failed_segment_is_enomem_and_changes_nothing)
{
	strata_store *s = test_open(NULL);
	strata_txn *t;
	cr_assert_eq(strata_txn_begin(s, NULL, 0, 0, &t), 0);
	strata_node_id id;
	void *p;
	segpool_fail_in(0);
	cr_assert_eq(strata_txn_alloc(t, BIG, 0, &id, &p), STRATA_ENOMEM);
	cr_assert_eq(strata_txn_alloc(t, BIG, 0, &id, &p), 0, "the hook fails one acquisition");
	strata_txn_abort(t);

	const char *name = "kv";
	cr_assert_eq(strata_txn_begin(s, &name, 1, 0, &t), 0);
	cr_assert_eq(strata_bpt_create(t, name, NULL), 0);
	cr_assert_eq(strata_bpt_put(t, name, "k", 1, "v", 1, 0), 0);
	cr_assert_eq(strata_txn_commit(t, NULL), 0);
	/* A value in a new class needs a new segment: it fails, tree intact. */
	static char big[40000];
	cr_assert_eq(strata_txn_begin(s, &name, 1, 0, &t), 0);
	segpool_fail_in(0);
	cr_assert_eq(strata_bpt_put(t, name, "k2", 2, big, sizeof big, 0), STRATA_ENOMEM);
	segpool_fail_in(-1);
	cr_assert_eq(strata_txn_commit(t, NULL), 0);
	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	const void *v;
	size_t vl;
	cr_assert_eq(strata_bpt_get(snap, name, "k", 1, &v, &vl), 0);
	cr_assert_eq(vl, 1);
	cr_assert_eq(strata_bpt_get(snap, name, "k2", 2, &v, &vl), STRATA_ENOTFOUND);
	strata_snapshot_close(snap);
	test_close(s);
}

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
Test(segpool, pooled_memory_is_poisoned_under_asan)
{
	strata_segment_pool_set(64 * MIB);
	uintptr_t a[PER_SEG];
	strata_store *s = test_open(NULL);
	fill_nodes(s, PER_SEG, 0x11, a);
	test_close(s);
	cr_assert(__asan_address_is_poisoned((void *)(a[0] + 4224)), "a released segment is poisoned");
	s = test_open(NULL);
	fill_nodes(s, PER_SEG, 0x22, a);
	cr_assert_not(__asan_address_is_poisoned((void *)(a[0] + 4224)), "and unpoisoned when reused");
	test_close(s);
}
#endif

/* Default prefault: no thread until the process has made 32 segments from
 * fresh memory for image-holding stores, then one keeping 32; an explicit
 * setting (0 too) wins. */
Test(segpool, prefault_starts_once_a_process_grows, .timeout = 120)
{
	strata_segment_pool_set(0); /* every segment fresh */
	strata_store *s = test_open(NULL);
	fill_nodes(s, 31 * PER_SEG, 0x11, NULL);
	cr_assert_not(thread_running(), "31 fresh segments: no thread yet");
	fill_nodes(s, PER_SEG, 0x22, NULL);
	cr_assert(thread_running(), "the 32nd fresh segment starts it");
	cr_assert_eq(strata_segment_prefault_set(0), 32, "it keeps 32");
	cr_assert_not(thread_running());
	fill_nodes(s, 40 * PER_SEG, 0x33, NULL);
	cr_assert_not(thread_running(), "an explicit 0 stays 0");
	test_close(s);
}
