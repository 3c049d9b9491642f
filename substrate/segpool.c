/*
 * segpool.c — the process-wide pool of free 2 MiB segments, and the
 * background thread that keeps some of them faulted in.
 *
 * Why: a segment is 2 MiB aligned to 2 MiB. Given back to jemalloc, it
 * comes back to the next store only once enough freed extents have
 * coalesced to place an aligned one, so a new store (or a growing one)
 * faults in fresh memory at about 3 ms per 2 MiB on the host the B+tree
 * was measured on (design/BPTREE.md, requests 4 and 5). Here a released
 * segment is kept, already faulted in, and the next segment of any store
 * of the process comes from here first.
 *
 * Owns: the ring of free segments (each a 2 MiB-aligned address and how it
 * must finally be freed: funnel or munmap), the bound, the prefault
 * watermark, the count of open stores, the prefault thread, the
 * process-wide counters and the test hook that makes acquisition fail.
 *
 * Invariants (under P.lock): n * SEG_SIZE <= bound; n <= cap; a segment is
 * either in the ring or owned by exactly one store; the prefault thread
 * runs only while watermark > 0 and at least one store is open, and is
 * joined (not detached) when either stops being true. Lock order:
 * life_lock (thread start and stop) before P.lock; the thread itself takes
 * only P.lock, so a join under life_lock cannot deadlock.
 *
 * AddressSanitizer: a pooled segment is poisoned as a whole and unpoisoned
 * when taken, so any access to memory a store released is still reported
 * (use-after-poison), and LeakSanitizer does not scan its stale pointers.
 * Under ASan the ring hands out its oldest segment first, keeping a freed
 * segment poisoned as long as the pool allows; otherwise the newest (the
 * likeliest still in cache).
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

#if defined(__SANITIZE_ADDRESS__)
#define SEGPOOL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SEGPOOL_ASAN 1
#endif
#endif
#ifdef SEGPOOL_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p) ASAN_POISON_MEMORY_REGION((p), SEG_SIZE)
#define UNPOISON(p) ASAN_UNPOISON_MEMORY_REGION((p), SEG_SIZE)
#else
#define POISON(p) ((void)(p))
#define UNPOISON(p) ((void)(p))
#endif

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14; older kernels answer EINVAL */
#endif

typedef struct pooled {
	void *mem;
	bool mapped; /* from a mapping (munmap), else from the funnel */
} pooled;

static struct {
	pthread_mutex_t lock;
	pthread_cond_t wake; /* the prefault thread: below the watermark, or stop */
	pooled *ring;
	size_t cap, head, n;
	size_t bound;       /* bytes; SIZE_MAX: not decided yet (default on first use) */
	unsigned watermark; /* segments the thread keeps in the ring; 0: no thread */
	bool stop;
} P = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0, 0, 0, SIZE_MAX, 0, false};

static pthread_mutex_t life_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_t prefault_tid;
static _Atomic bool prefault_running; /* written under life_lock */
static unsigned stores_open;  /* under life_lock */

static _Atomic uint64_t prefaulted;
/* The thread starts on its own once a process has made PREFAULT_AUTO_AFTER
 * segments from fresh memory for stores that write node images into them
 * (not bounded-cache stores, which touch only headers), unless
 * strata_segment_prefault_set was called: a one-shot command or a small
 * store never pays for it, a growing tree stops faulting in its memory on
 * the writer's path (design/BPTREE.md run 7: the 10M insert met its target
 * only with the thread). */
#define PREFAULT_AUTO_AFTER 32u
#define PREFAULT_AUTO 32u
static bool watermark_set;            /* under life_lock */
static _Atomic uint32_t fresh_made;
static _Atomic long fail_in = -1; /* test hook: acquisitions left before one fails */

/* ---- the bound ---------------------------------------------------------- */
/* 256 MiB, or a sixteenth of physical memory on a smaller machine: room for
 * the 1M-key B+tree (122 MiB) to move from one store to the next, without
 * letting a small container keep a large share idle. */
static size_t default_bound(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
	size_t want = (size_t)256 << 20;
	if (pages > 0 && psz > 0 && (size_t)pages / 16 < want / (size_t)psz)
		want = (size_t)pages / 16 * (size_t)psz;
	return want / SEG_SIZE * SEG_SIZE;
}

static size_t bound_locked(void)
{
	if (P.bound == SIZE_MAX)
		P.bound = default_bound();
	return P.bound;
}

/* ---- the ring (under P.lock) ------------------------------------------- */
static bool ring_grow(void)
{
	size_t cap = P.cap ? P.cap * 2 : 64;
	pooled *r = strata_mem_alloc(cap * sizeof *r);
	if (!r)
		return false;
	for (size_t i = 0; i < P.n; i++)
		r[i] = P.ring[(P.head + i) % P.cap];
	strata_mem_free(P.ring, P.cap * sizeof *r);
	P.ring = r;
	P.cap = cap;
	P.head = 0;
	return true;
}

/* False: no room (bound or memory); the caller keeps the segment. */
static bool ring_push(void *mem, bool mapped)
{
	if ((P.n + 1) * (size_t)SEG_SIZE > bound_locked())
		return false;
	if (P.n == P.cap && !ring_grow())
		return false;
	POISON(mem);
	P.ring[(P.head + P.n++) % P.cap] = (pooled){mem, mapped};
	return true;
}

static bool ring_pop(pooled *out)
{
	if (!P.n)
		return false;
#ifdef SEGPOOL_ASAN
	*out = P.ring[P.head];
	P.head = (P.head + 1) % P.cap;
#else
	*out = P.ring[(P.head + P.n - 1) % P.cap];
#endif
	P.n--;
	UNPOISON(out->mem);
	return true;
}

static void drop(void *mem, bool mapped)
{
	if (mapped)
		munmap(mem, SEG_SIZE);
	else
		strata_mem_free(mem, SEG_SIZE);
}

/* ---- acquisition and release ---------------------------------------------- */
static bool injected_failure(void)
{
	long left = atomic_load_explicit(&fail_in, memory_order_relaxed);
	while (left >= 0 && !atomic_compare_exchange_weak(&fail_in, &left, left - 1))
		;
	return left == 0;
}

void *segpool_get(unsigned *flags)
{
	*flags = 0;
	if (injected_failure())
		return NULL;
	pooled got;
	pthread_mutex_lock(&P.lock);
	bool hit = ring_pop(&got);
	if (P.n < P.watermark)
		pthread_cond_signal(&P.wake);
	pthread_mutex_unlock(&P.lock);
	if (hit) {
		*flags = SEGPOOL_HIT | (got.mapped ? SEGPOOL_MAPPED : 0);
		return got.mem;
	}
	return strata_mem_aligned(SEG_SIZE, SEG_SIZE);
}

void segpool_put(void *mem, bool mapped)
{
	pthread_mutex_lock(&P.lock);
	bool kept = ring_push(mem, mapped);
	pthread_mutex_unlock(&P.lock);
	if (!kept)
		drop(mem, mapped);
}

/* Frees what lies beyond the bound, outside the lock (munmap and the
 * funnel can take a while for many segments). */
static void trim_to_bound(void)
{
	for (;;) {
		pooled got;
		pthread_mutex_lock(&P.lock);
		bool over = P.n * (size_t)SEG_SIZE > bound_locked() && ring_pop(&got);
		pthread_mutex_unlock(&P.lock);
		if (!over)
			return;
		drop(got.mem, got.mapped);
	}
}

size_t strata_segment_pool_set(size_t bytes)
{
	bytes = bytes / SEG_SIZE * SEG_SIZE;
	pthread_mutex_lock(&P.lock);
	size_t old = bound_locked();
	P.bound = bytes;
	pthread_mutex_unlock(&P.lock);
	trim_to_bound();
	return old;
}

/* ---- the prefault thread ------------------------------------------------- */
/* Faults g in: one call where the kernel has MADV_POPULATE_WRITE, else a
 * write per page. Backed by a huge page where THP allows (madvise mode),
 * as seg_new_at asks for a class's busy segments. */
static void prefault(void *g)
{
#ifdef MADV_HUGEPAGE
	(void)madvise(g, SEG_SIZE, MADV_HUGEPAGE);
#endif
	if (madvise(g, SEG_SIZE, MADV_POPULATE_WRITE) == 0)
		return;
	for (size_t off = 0; off < SEG_SIZE; off += 4096)
		((volatile char *)g)[off] = 0;
}

static bool wants_more_locked(void)
{
	return P.n < P.watermark && (P.n + 1) * (size_t)SEG_SIZE <= bound_locked();
}

static void *prefault_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&P.lock);
	while (!P.stop) {
		if (!wants_more_locked()) {
			pthread_cond_wait(&P.wake, &P.lock);
			continue;
		}
		pthread_mutex_unlock(&P.lock);
		void *g = strata_mem_aligned(SEG_SIZE, SEG_SIZE);
		if (g)
			prefault(g);
		pthread_mutex_lock(&P.lock);
		if (!g) { /* out of memory: a writer's miss will wake us again */
			pthread_cond_wait(&P.wake, &P.lock);
			continue;
		}
		if (!P.stop && ring_push(g, false)) {
			atomic_fetch_add_explicit(&prefaulted, 1, memory_order_relaxed);
			continue;
		}
		pthread_mutex_unlock(&P.lock); /* stopping, or the bound moved */
		drop(g, false);
		pthread_mutex_lock(&P.lock);
	}
	pthread_mutex_unlock(&P.lock);
	return NULL;
}

/* Under life_lock. A thread that cannot start is no error: the pool works
 * without it (segments are then faulted in by the writer, as before). */
static void thread_sync_locked(void)
{
	bool want = stores_open > 0 && P.watermark > 0; /* watermark read under life_lock too */
	if (want && !prefault_running) {
		pthread_mutex_lock(&P.lock);
		P.stop = false;
		pthread_mutex_unlock(&P.lock);
		prefault_running = pthread_create(&prefault_tid, NULL, prefault_main, NULL) == 0;
	} else if (!want && prefault_running) {
		pthread_mutex_lock(&P.lock);
		P.stop = true;
		pthread_cond_signal(&P.wake);
		pthread_mutex_unlock(&P.lock);
		pthread_join(prefault_tid, NULL);
		prefault_running = false;
	}
}

/* fork(): the child has no prefault thread, and must not inherit a lock
 * some other thread held at the fork. */
static void fork_prepare(void)
{
	pthread_mutex_lock(&life_lock);
	pthread_mutex_lock(&P.lock);
}

static void fork_parent(void)
{
	pthread_mutex_unlock(&P.lock);
	pthread_mutex_unlock(&life_lock);
}

static void fork_child(void)
{
	pthread_cond_init(&P.wake, NULL); /* waiters of the parent do not exist here */
	prefault_running = false;
	P.stop = false;
	pthread_mutex_unlock(&P.lock);
	pthread_mutex_unlock(&life_lock);
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void atfork_register(void)
{
	(void)pthread_atfork(fork_prepare, fork_parent, fork_child);
}

unsigned strata_segment_prefault_set(unsigned segments)
{
	pthread_once(&atfork_once, atfork_register);
	pthread_mutex_lock(&life_lock);
	watermark_set = true;
	pthread_mutex_lock(&P.lock);
	unsigned old = P.watermark;
	P.watermark = segments;
	pthread_cond_signal(&P.wake);
	pthread_mutex_unlock(&P.lock);
	thread_sync_locked();
	pthread_mutex_unlock(&life_lock);
	return old;
}

void segpool_note_fresh(void)
{
	if (atomic_fetch_add_explicit(&fresh_made, 1, memory_order_relaxed) + 1 != PREFAULT_AUTO_AFTER)
		return;
	pthread_once(&atfork_once, atfork_register);
	pthread_mutex_lock(&life_lock);
	if (!watermark_set) {
		pthread_mutex_lock(&P.lock);
		P.watermark = PREFAULT_AUTO;
		pthread_mutex_unlock(&P.lock);
		thread_sync_locked();
	}
	pthread_mutex_unlock(&life_lock);
}

void segpool_store_opened(void)
{
	pthread_once(&atfork_once, atfork_register);
	pthread_mutex_lock(&life_lock);
	stores_open++;
	thread_sync_locked();
	pthread_mutex_unlock(&life_lock);
}

void segpool_store_closed(void)
{
	pthread_mutex_lock(&life_lock);
	if (stores_open)
		stores_open--;
	thread_sync_locked();
	pthread_mutex_unlock(&life_lock);
}

/* ---- statistics and the test hook ------------------------------------------- */
void segpool_stats(uint64_t *prefaulted_out, uint64_t *pooled_bytes, bool *thread_running)
{
	pthread_mutex_lock(&P.lock);
	*pooled_bytes = P.n * (uint64_t)SEG_SIZE;
	pthread_mutex_unlock(&P.lock);
	*prefaulted_out = atomic_load_explicit(&prefaulted, memory_order_relaxed);
	if (thread_running)
		*thread_running = atomic_load(&prefault_running);
}

void segpool_fail_in(long n)
{
	atomic_store_explicit(&fail_in, n, memory_order_relaxed);
}
