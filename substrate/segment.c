/*
 * segment.c — the size-class allocator for node memory.
 *
 * Nodes up to 64 KiB live in 2 MiB segments, each dedicated to one size
 * class and aligned to 2 MiB so a node pointer finds its segment header by
 * masking. Nodes above 64 KiB are large objects straight from the funnel.
 *
 * Segment layout:  [header (bitmaps) | pad to 64 B | slot 0 | slot 1 | ...]
 *
 * Free slots are found in O(1) by a three-level bitmap (1 = free):
 *   l0[w] bit b   slot w*64+b is free
 *   l1[k] bit j   l0[k*64+j] != 0
 *   l2    bit k   l1[k] != 0
 * so the first free slot is three count-trailing-zeros away.
 *
 * Invariants (checked by seg_check): nfree == popcount(l0); the summaries
 * match l0; bits at or above nslots are 0; a segment is on its class's
 * partial list iff it is not `current`, not draining and 0 < nfree; a
 * completely free segment that is not current is returned to the funnel
 * (IN_MEMORY; DURABLE keeps it for its class, or compaction cuts it off
 * the end of `data`).
 * Each class has its own lock; classes never share segments.
 *
 * Open (DURABLE): the segments a checkpoint names get their 2 MiB of
 * address space in one mapping, but no header: a header is two pages to
 * fault in and clear, and at 100M nodes (3052 segments) those faults were
 * most of the open. Counters are set from the checkpoint's bitmaps at once;
 * a header is built when first needed (lazy_build, under the class lock):
 * by seg_slot_at (loading an entry whose image is there), by allocation
 * (the class's candidates, lazy segments with free slots, before a new
 * segment), or by seg_build_all (check, compaction, checkpoint adoption,
 * which then lets go of the checkpoint's bitmaps). A lazy segment cannot
 * change before its header exists: freeing needs a pointer into it, which
 * only seg_slot_at or allocation hands out.
 *
 * A version-3 checkpoint also gives each segment's used count and the CRC
 * of its words: the open then reads ~9 bytes per segment instead of every
 * bitmap word (12.5 MB at 100M nodes), and each segment's words are checked
 * when its header is built. A segment whose words fail is built with every
 * slot taken and marked bad: it is never allocated from (its live slots
 * are unknown, so nothing may be overwritten), seg_slot_at refuses its
 * slots (their nodes read as ECORRUPT, never served) and seg_check reports
 * it. The next checkpoint derives its bitmap from the entries again.
 */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "crc32c.h"
#include "internal.h"

#define SEG_MAGIC 0x53474d31u /* "SGM1" */
#define L0_WORDS (SEG_MAX_SLOTS / 64)
#define L1_WORDS (L0_WORDS / 64)

typedef struct segment {
	uint32_t magic;
	uint16_t cls;
	bool in_partial;
	bool draining; /* compaction empties it: never allocated from */
	uint32_t segno; /* DURABLE: its place in the data file */
	uint32_t nslots, nfree;
	bool mapped; /* carved from one mapping at open: munmap, not the funnel */
	bool bad;    /* built from checkpoint words that failed their check */
	struct segment *prev, *next;         /* partial list */
	struct segment *all_prev, *all_next; /* every segment of the class */
	uint64_t l2;
	uint64_t l1[L1_WORDS];
	uint64_t l0[L0_WORDS];
} segment;

/* Geometric classes, about four per doubling above 512 B. */
static const uint32_t class_sizes[STRATA_NUM_CLASSES] = {
	64, 128, 192, 256, 320, 384, 448, 512, 640, 768, 1024, 1280,
	1536, 2048, 3072, 4096, 6144, 8192, 12288, 16384, 24576, 32768, 49152, 65536,
};

_Static_assert(sizeof(segment) < SEG_SIZE / 8, "segment header too large");

unsigned seg_class_of(uint32_t size)
{
	if (size <= 512)
		return size ? (size + 63) / 64 - 1 : 0;
	if (size > SMALL_MAX)
		return STRATA_CLASS_LARGE;
	unsigned c = 8;
	while (class_sizes[c] < size)
		c++;
	return c;
}

uint32_t seg_class_size(unsigned cls)
{
	return cls < STRATA_NUM_CLASSES ? class_sizes[cls] : 0;
}

/* Counters change only under the class lock and are read without it by
 * statistics: a relaxed load and store (no locked instruction) is enough. */
static inline void counter_add(_Atomic uint64_t *c, uint64_t d)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + d,
			      memory_order_relaxed);
}

static inline segment *seg_of(const void *p)
{
	return (segment *)((uintptr_t)p & ~(uintptr_t)(SEG_SIZE - 1));
}

/* ---- bitmap --------------------------------------------------------------- */
static void bm_set_free(segment *g, uint32_t i)
{
	uint32_t w = i / 64, k = w / 64;
	g->l0[w] |= 1ull << (i % 64);
	g->l1[k] |= 1ull << (w % 64);
	g->l2 |= 1ull << k;
}

static void bm_set_used(segment *g, uint32_t i)
{
	uint32_t w = i / 64, k = w / 64;
	g->l0[w] &= ~(1ull << (i % 64));
	if (!g->l0[w]) {
		g->l1[k] &= ~(1ull << (w % 64));
		if (!g->l1[k])
			g->l2 &= ~(1ull << k);
	}
}

static uint32_t bm_take_first(segment *g)
{
	uint32_t k = (uint32_t)__builtin_ctzll(g->l2);
	uint32_t w = k * 64 + (uint32_t)__builtin_ctzll(g->l1[k]);
	uint32_t i = w * 64 + (uint32_t)__builtin_ctzll(g->l0[w]);
	bm_set_used(g, i);
	return i;
}

static bool bm_is_free(const segment *g, uint32_t i)
{
	return (g->l0[i / 64] >> (i % 64)) & 1;
}

/* ---- lists ---------------------------------------------------------------- */
static void partial_push(seg_class *c, segment *g)
{
	g->prev = NULL;
	g->next = c->partial;
	if (c->partial)
		c->partial->prev = g;
	c->partial = g;
	g->in_partial = true;
}

static void partial_remove(seg_class *c, segment *g)
{
	if (g->prev)
		g->prev->next = g->next;
	else
		c->partial = g->next;
	if (g->next)
		g->next->prev = g->prev;
	g->in_partial = false;
	g->prev = g->next = NULL;
}

/* DURABLE: gives g the next segment number. */
static int number_segment(seg_alloc *a, segment *g)
{
	pthread_mutex_lock(&a->nos_lock);
	uint32_t n = atomic_load_explicit(&a->nsegs, memory_order_relaxed);
	if (n == a->nos_cap) {
		uint32_t cap = a->nos_cap ? a->nos_cap * 2 : 64;
		segment **p = strata_mem_realloc(a->by_no, a->nos_cap * sizeof *p, cap * sizeof *p);
		if (!p) {
			pthread_mutex_unlock(&a->nos_lock);
			return STRATA_ENOMEM;
		}
		memset(p + a->nos_cap, 0, (cap - a->nos_cap) * sizeof *p);
		a->by_no = p;
		a->nos_cap = cap;
	}
	g->segno = n;
	a->by_no[n] = g;
	atomic_store_explicit(&a->nsegs, n + 1, memory_order_release);
	pthread_mutex_unlock(&a->nos_lock);
	return 0;
}

/* Where slot 0 begins in a segment, in memory and in `data`: part of the
 * file format (design/FORMAT.md), so a constant, never derived from the
 * header's size (adding a field must not move every slot of every store). */
#define SEG_DATA_OFF 4224u
_Static_assert(sizeof(segment) <= SEG_DATA_OFF, "segment header overlaps slot 0");
_Static_assert(SEG_DATA_OFF % 64 == 0, "slots are 64-byte aligned");

static uint32_t data_offset(void)
{
	return SEG_DATA_OFF;
}

uint32_t seg_nslots(unsigned cls)
{
	return cls < STRATA_NUM_CLASSES ? (SEG_SIZE - data_offset()) / class_sizes[cls] : 0;
}

/* Every slot free, word by word (a slot at a time was 32k steps). */
static void bm_fill(segment *g)
{
	uint32_t full = g->nslots / 64, rest = g->nslots % 64;
	memset(g->l0, 0xff, full * sizeof(uint64_t));
	if (rest)
		g->l0[full] = (1ull << rest) - 1;
	uint32_t words = full + (rest != 0);
	for (uint32_t w = 0; w < words; w += 64) {
		uint32_t n = words - w < 64 ? words - w : 64;
		g->l1[w / 64] = n == 64 ? UINT64_MAX : (1ull << n) - 1;
		g->l2 |= 1ull << (w / 64);
	}
}

/* huge: back the segment with one transparent huge page where the kernel
 * offers them (THP "madvise" mode): one fault and one 2 MiB clear instead
 * of 512. Asked only for a class's second and later segments made to
 * allocate into (they fill from the start, so no memory is wasted), never
 * for segments a checkpoint load makes (their images arrive one by one,
 * lazily). WAL replay of 256 MiB of 1 KiB nodes: 0.92 -> 1.29 GB/s. */
static void seg_unmap(segment *g)
{
	/* To the process-wide pool, where any store's next segment comes from
	 * first; beyond its bound it frees g (munmap or the funnel, by mapped). */
	segpool_put(g, g->mapped);
}

/* A header with every slot free. mapped: g is fresh anonymous memory
 * (zero already: writing it would only fault it in). */
static void header_init(segment *g, const seg_class *c, unsigned cls, bool mapped)
{
	if (!mapped)
		memset(g, 0, sizeof *g);
	g->mapped = mapped;
	g->magic = SEG_MAGIC;
	g->cls = (uint16_t)cls;
	g->nslots = (SEG_SIZE - SEG_DATA_OFF) / c->slot_size;
	g->nfree = g->nslots;
	bm_fill(g);
}

static void class_link(seg_class *c, segment *g)
{
	g->all_next = c->all;
	if (g->all_next)
		g->all_next->all_prev = g;
	c->all = g;
}

/* mem: the segment's 2 MiB (aligned) from a fresh anonymous mapping (zero),
 * or NULL to get it from the segment pool (segpool.c: a free segment of
 * the process, else fresh from the funnel). */
static segment *seg_new_at(seg_alloc *a, seg_class *c, unsigned cls, bool huge, void *mem)
{
	unsigned from = 0;
	segment *g = mem ? mem : segpool_get(&from);
	if (!g)
		return NULL;
	if (!mem)
		atomic_fetch_add_explicit(from & SEGPOOL_HIT ? &a->pool_hits : &a->pool_misses, 1,
					  memory_order_relaxed);
	if (!mem && !(from & SEGPOOL_HIT) && !a->headers_only)
		segpool_note_fresh();
#ifdef MADV_HUGEPAGE
	/* A pooled segment is faulted in already: advising it now would only
	 * take the address-space lock against other threads' faults. */
	if (huge && !a->headers_only && !(from & SEGPOOL_HIT))
		(void)madvise(g, SEG_SIZE, MADV_HUGEPAGE); /* a hint: failure changes nothing */
#endif
	header_init(g, c, cls, mem != NULL);
	g->mapped |= (from & SEGPOOL_MAPPED) != 0; /* pooled, but first carved from a mapping */
	/* Numbered last: numbering publishes the segment to checkpoints
	 * (seg_class_at), which must find its header complete. */
	if (a->durable && number_segment(a, g)) {
		seg_unmap(g);
		return NULL;
	}
	class_link(c, g);
	counter_add(&c->segments, 1);
	counter_add(&c->slots_total, g->nslots);
	return g;
}

static segment *seg_new(seg_alloc *a, seg_class *c, unsigned cls, bool huge)
{
	return seg_new_at(a, c, cls, huge, NULL);
}

static void seg_release(seg_class *c, segment *g)
{
	if (g->all_prev)
		g->all_prev->all_next = g->all_next;
	else
		c->all = g->all_next;
	if (g->all_next)
		g->all_next->all_prev = g->all_prev;
	counter_add(&c->segments, (uint64_t)-1);
	counter_add(&c->slots_total, -(uint64_t)g->nslots);
	g->magic = 0;
	seg_unmap(g);
}

/* ---- public (internal) API ------------------------------------------------ */
int seg_init(seg_alloc *a)
{
	memset(a, 0, sizeof *a);
	pthread_mutex_init(&a->nos_lock, NULL);
	for (unsigned i = 0; i < STRATA_NUM_CLASSES; i++) {
		if (pthread_mutex_init(&a->classes[i].lock, NULL))
			return STRATA_ENOMEM;
		a->classes[i].slot_size = class_sizes[i];
	}
	return 0;
}

static void lazy_release(seg_alloc *a);

void seg_destroy(seg_alloc *a)
{
	lazy_release(a);
	for (unsigned i = 0; i < STRATA_NUM_CLASSES; i++) {
		seg_class *c = &a->classes[i];
		while (c->all)
			seg_release(c, c->all);
		c->current = c->partial = NULL;
		pthread_mutex_destroy(&c->lock);
	}
	strata_mem_free(a->by_no, a->nos_cap * sizeof *a->by_no);
	strata_mem_free(a->loads, a->loads_n * sizeof *a->loads);
	pthread_mutex_destroy(&a->nos_lock);
}

/* ---- DURABLE mode ------------------------------------------------------------ */
void seg_set_durable(seg_alloc *a)
{
	a->durable = true;
}

int seg_number_all(seg_alloc *a)
{
	for (unsigned i = 0; i < STRATA_NUM_CLASSES; i++)
		pthread_mutex_lock(&a->classes[i].lock);
	int rc = 0;
	for (unsigned i = 0; i < STRATA_NUM_CLASSES && !rc; i++)
		for (segment *g = a->classes[i].all; g && !rc; g = g->all_next)
			rc = number_segment(a, g);
	if (!rc)
		a->durable = true; /* under every class lock: no seg_new in between */
	for (unsigned i = 0; i < STRATA_NUM_CLASSES; i++)
		pthread_mutex_unlock(&a->classes[i].lock);
	return rc;
}

uint32_t seg_no_of(const void *p)
{
	return seg_of(p)->segno;
}

uint8_t seg_class_at(seg_alloc *a, uint32_t segno)
{
	if (segno >= atomic_load_explicit(&a->nsegs, memory_order_acquire))
		return 255;
	pthread_mutex_lock(&a->nos_lock);
	segment *g = a->by_no[segno];
	pthread_mutex_unlock(&a->nos_lock);
	if (!g && segno < a->lazy_n) /* no header yet; lazy_cls never changes */
		return a->lazy_cls[segno];
	return g ? (uint8_t)g->cls : 255;
}

/* Set bits in w[0..n). The x86-64 baseline has no POPCNT instruction, and
 * the library call per word was 6 % of opening a 100M-node store. Chosen
 * at run time by a plain test, not an ifunc (target_clones): an ifunc
 * resolver runs before the sanitizers' runtimes and crashed TSan builds. */
#if defined(__x86_64__)
__attribute__((target("popcnt"))) static uint32_t popcount_hw(const uint64_t *w, uint32_t n)
{
	uint32_t t = 0;
	for (uint32_t i = 0; i < n; i++)
		t += (uint32_t)__builtin_popcountll(w[i]);
	return t;
}
#endif

static uint32_t popcount_words(const uint64_t *w, uint32_t n)
{
#if defined(__x86_64__)
	static _Atomic int hw = -1;
	int h = atomic_load_explicit(&hw, memory_order_relaxed);
	if (h < 0)
		atomic_store_explicit(&hw, h = __builtin_cpu_supports("popcnt") ? 1 : 0, memory_order_relaxed);
	if (h)
		return popcount_hw(w, n);
#endif
	uint32_t t = 0;
	for (uint32_t i = 0; i < n; i++)
		t += (uint32_t)__builtin_popcountll(w[i]);
	return t;
}

/* used[] (seg_used_words(cls) words) may not mark slots past the last. */
static bool used_valid(unsigned cls, const uint64_t *used)
{
	uint32_t nslots = seg_nslots(cls), words = seg_used_words(cls);
	return !(nslots % 64 && used[words - 1] >> (nslots % 64));
}

/* Marks the slots set in used[] as taken; returns how many. */
static uint32_t used_apply(segment *g, const uint64_t *used)
{
	uint32_t words = (g->nslots + 63) / 64;
	for (uint32_t w = 0; w < words; w++) {
		g->l0[w] &= ~used[w];
		if (!g->l0[w])
			g->l1[w / 64] &= ~(1ull << (w % 64));
	}
	for (uint32_t k = 0; k < (words + 63) / 64; k++)
		if (!g->l1[k])
			g->l2 &= ~(1ull << k);
	uint32_t taken = popcount_words(used, words);
	g->nfree = g->nslots - taken;
	return taken;
}

/* n segments' worth of 2 MiB-aligned address space in one mapping (NULL
 * if the system refuses): an open of 3000 segments spent a third of its
 * time in one funnel allocation (an mmap) per segment. Each segment is
 * unmapped on its own when released. */
static char *map_segments(uint32_t n)
{
	size_t len = (size_t)n * SEG_SIZE;
	char *p = mmap(NULL, len + SEG_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		       -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	uintptr_t start = ((uintptr_t)p + SEG_SIZE - 1) & ~(uintptr_t)(SEG_SIZE - 1);
	size_t head = start - (uintptr_t)p;
	if (head)
		munmap(p, head);
	if (SEG_SIZE - head)
		munmap((char *)start + len, SEG_SIZE - head);
	return (char *)start;
}

/* Do segment segno's words match its summary (CRC, count, no bit past
 * the last slot)? */
static bool lazy_words_ok(const seg_alloc *a, uint32_t segno, const uint64_t *used)
{
	unsigned cls = a->lazy_cls[segno];
	uint32_t words = seg_used_words(cls);
	const seg_summary *m = &a->lazy_sum[segno];
	return strata_crc32c(0, used, (size_t)words * 8) == m->crc && used_valid(cls, used) &&
	       popcount_words(used, words) == m->used;
}

/* Every slot taken, none known: the load counted `counted` of them used. */
static void build_bad(seg_alloc *a, seg_class *c, segment *g, uint32_t counted)
{
	memset(g->l0, 0, sizeof g->l0);
	memset(g->l1, 0, sizeof g->l1);
	g->l2 = 0;
	g->nfree = 0;
	g->bad = true;
	counter_add(&c->slots_used, g->nslots - counted);
	atomic_fetch_add_explicit(&a->bad_segs, 1, memory_order_relaxed);
}

/* Segment segno's header from the load's bitmaps, under c's lock (c is
 * its class); its counters were added at the load. */
static segment *lazy_build(seg_alloc *a, seg_class *c, uint32_t segno)
{
	pthread_mutex_lock(&a->nos_lock);
	segment *g = a->by_no[segno];
	pthread_mutex_unlock(&a->nos_lock);
	if (g)
		return g;
	g = (segment *)(a->lazy_block + (size_t)segno * SEG_SIZE);
	header_init(g, c, a->lazy_cls[segno], true);
	g->segno = segno;
	const uint64_t *used = a->lazy_used + a->lazy_word[segno];
	if (!a->lazy_sum || lazy_words_ok(a, segno, used))
		used_apply(g, used);
	else
		build_bad(a, c, g, a->lazy_sum[segno].used);
	class_link(c, g);
	if (g->nfree)
		partial_push(c, g);
	pthread_mutex_lock(&a->nos_lock);
	a->by_no[segno] = g;
	pthread_mutex_unlock(&a->nos_lock);
	atomic_fetch_sub_explicit(&a->lazy_left, 1, memory_order_release);
	return g;
}

/* Allocation found no partial segment: build candidates until one has
 * room (under c's lock). Once every header is built, candidates are stale
 * (seg_trim_tail may have released one since): never built again. */
static segment *lazy_take(seg_alloc *a, seg_class *c)
{
	while (!c->partial && c->ncand && atomic_load_explicit(&a->lazy_left, memory_order_acquire))
		lazy_build(a, c, c->cand[--c->ncand]);
	return c->partial;
}

/* A segment number that may still lack its header: build it. */
static segment *lazy_get(seg_alloc *a, uint32_t segno)
{
	if (!atomic_load_explicit(&a->lazy_left, memory_order_acquire) || segno >= a->lazy_n)
		return NULL;
	seg_class *c = &a->classes[a->lazy_cls[segno]];
	pthread_mutex_lock(&c->lock);
	segment *g = lazy_build(a, c, segno);
	pthread_mutex_unlock(&c->lock);
	return g;
}

void seg_build_all(seg_alloc *a)
{
	if (!atomic_load_explicit(&a->lazy_left, memory_order_acquire))
		return;
	for (uint32_t i = 0; i < a->lazy_n; i++)
		lazy_get(a, i);
	for (unsigned k = 0; k < STRATA_NUM_CLASSES; k++) {
		pthread_mutex_lock(&a->classes[k].lock);
		a->classes[k].ncand = 0;
		pthread_mutex_unlock(&a->classes[k].lock);
	}
}

/* Close: segments never built give back their address space. */
static void lazy_release(seg_alloc *a)
{
	for (uint32_t i = 0; i < a->lazy_n && atomic_load(&a->lazy_left); i++)
		if (!a->by_no[i])
			munmap(a->lazy_block + (size_t)i * SEG_SIZE, SEG_SIZE);
	for (unsigned k = 0; k < STRATA_NUM_CLASSES; k++) {
		strata_mem_free(a->classes[k].cand, 0);
		a->classes[k].cand = NULL;
		a->classes[k].ncand = 0;
	}
	strata_mem_free(a->lazy_cls, 0);
	strata_mem_free(a->lazy_word, 0);
	strata_mem_free(a->lazy_sum, 0);
	a->lazy_cls = NULL;
	a->lazy_word = NULL;
	a->lazy_sum = NULL;
	a->lazy_n = 0;
}

/* Checks classes and bitmaps, sets the counters, and lists each class's
 * segments with room (candidates, lowest number last: taken first). */
/* Slots segment i of class cls has in use, or UINT32_MAX if its record
 * (summary, or words when there is none) is out of range. */
static uint32_t plan_taken(const seg_alloc *a, uint32_t i, unsigned cls, const uint64_t *used)
{
	if (a->lazy_sum)
		return a->lazy_sum[i].used <= seg_nslots(cls) ? a->lazy_sum[i].used : UINT32_MAX;
	return used_valid(cls, used) ? popcount_words(used, seg_used_words(cls)) : UINT32_MAX;
}

static int lazy_plan(seg_alloc *a, const uint8_t *classes, uint32_t n, const uint64_t *used)
{
	uint32_t per[STRATA_NUM_CLASSES] = {0};
	uint64_t w = 0;
	bool *room = strata_mem_alloc(n);
	if (!room)
		return STRATA_ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		unsigned cls = classes[i];
		uint32_t taken = cls < STRATA_NUM_CLASSES ? plan_taken(a, i, cls, used + w) : UINT32_MAX;
		if (taken == UINT32_MAX) {
			strata_mem_free(room, n);
			return STRATA_ECORRUPT;
		}
		a->lazy_cls[i] = (uint8_t)cls;
		a->lazy_word[i] = w;
		seg_class *c = &a->classes[cls];
		counter_add(&c->segments, 1);
		counter_add(&c->slots_total, seg_nslots(cls));
		counter_add(&c->slots_used, taken);
		room[i] = taken < seg_nslots(cls);
		per[cls] += room[i];
		w += seg_used_words(cls);
	}
	int rc = 0;
	for (unsigned k = 0; k < STRATA_NUM_CLASSES && !rc; k++)
		if (per[k] && !(a->classes[k].cand = strata_mem_alloc(per[k] * sizeof(uint32_t))))
			rc = STRATA_ENOMEM;
	for (uint32_t i = n; !rc && i-- > 0;) {
		seg_class *c = &a->classes[classes[i]];
		if (room[i])
			c->cand[c->ncand++] = i;
	}
	strata_mem_free(room, n);
	return rc;
}

static int load_lazy(seg_alloc *a, const uint8_t *classes, uint32_t n, const uint64_t *used,
		     const seg_summary *sum)
{
	char *block = map_segments(n);
	strata_mem_free(a->by_no, a->nos_cap * sizeof *a->by_no);
	a->nos_cap = 0;
	a->by_no = strata_mem_calloc(n, sizeof *a->by_no);
	a->lazy_cls = strata_mem_alloc(n);
	a->lazy_word = strata_mem_alloc(n * sizeof *a->lazy_word);
	if (sum && (a->lazy_sum = strata_mem_alloc(n * sizeof *sum)))
		memcpy(a->lazy_sum, sum, n * sizeof *sum);
	if (!block || !a->by_no || !a->lazy_cls || !a->lazy_word || (sum && !a->lazy_sum)) {
		if (block)
			munmap(block, (size_t)n * SEG_SIZE);
		return STRATA_ENOMEM; /* the allocator is freed with its store */
	}
	a->nos_cap = n;
	a->loads = strata_mem_calloc(n, sizeof *a->loads); /* NULL: no huge pages, nothing else */
	a->loads_n = a->loads ? n : 0;
	a->lazy_block = block;
	a->lazy_used = used;
	a->lazy_n = n;
	atomic_store(&a->lazy_left, n);
	int rc = lazy_plan(a, classes, n, used);
	atomic_store_explicit(&a->nsegs, n, memory_order_release);
	return rc;
}

static int load_eager(seg_alloc *a, const uint8_t *classes, uint32_t n, const uint64_t *used)
{
	char *block = n ? map_segments(n) : NULL;
	int rc = 0;
	uint32_t i = 0;
	for (; i < n && !rc; i++) {
		if (classes[i] >= STRATA_NUM_CLASSES || !used_valid(classes[i], used)) {
			rc = STRATA_ECORRUPT;
			break;
		}
		seg_class *c = &a->classes[classes[i]];
		segment *g = seg_new_at(a, c, classes[i], false, block ? block + (size_t)i * SEG_SIZE : NULL);
		if (!g) {
			rc = STRATA_ENOMEM;
			i++; /* seg_new_at unmapped it */
			break;
		}
		if (g->segno != i) { /* numbering must start from an empty allocator */
			rc = STRATA_ECORRUPT;
			break;
		}
		counter_add(&c->slots_used, used_apply(g, used));
		used += seg_used_words(classes[i]);
		if (g->nfree)
			partial_push(c, g);
	}
	/* Made segments go with the allocator; the rest of the mapping now. */
	for (; block && i < n; i++)
		munmap(block + (size_t)i * SEG_SIZE, SEG_SIZE);
	return rc;
}

int seg_load_segments(seg_alloc *a, const uint8_t *classes, uint32_t n, const uint64_t *used,
		      const seg_summary *sum, bool lazy)
{
	if (sum && !lazy)
		return STRATA_EINVAL;
	if (atomic_load(&a->nsegs))
		return STRATA_ECORRUPT; /* numbering must start from an empty allocator */
	return lazy && n ? load_lazy(a, classes, n, used, sum) : load_eager(a, classes, n, used);
}

bool seg_is_bad(seg_alloc *a, uint32_t segno)
{
	if (!atomic_load_explicit(&a->bad_segs, memory_order_relaxed) ||
	    segno >= atomic_load(&a->nsegs))
		return false;
	pthread_mutex_lock(&a->nos_lock);
	segment *g = a->by_no[segno];
	pthread_mutex_unlock(&a->nos_lock);
	return g && g->bad;
}

/* ---- huge pages after an open ------------------------------------------------
 * The open's mapping (map_segments) is not advised for huge pages: a
 * reader touching one node per segment of a store larger than memory
 * would make every segment 2 MiB resident. But a segment whose images are
 * read back is then spread over 4 KiB pages, and a query over a tree
 * loaded that way missed the TLB on most nodes: DURABLE windows took
 * 4.6-7.5 % longer than on the same tree in memory (huge pages from the
 * start: -4.3 to -1.5 %). So once loads have touched half of a segment's
 * pages (its resident size at most doubles), it is advised and collapsed
 * (MADV_COLLAPSE, Linux 6.1; an older kernel refuses it, and khugepaged
 * may still collapse the advised range later). Each page is counted once
 * (the bit that a fetch_or sets first), so each segment reaches the half
 * once. */
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
void seg_note_loaded(seg_alloc *a, const void *p, uint32_t size)
{
	uint32_t no = seg_no_of(p);
	if (no >= a->loads_n || a->headers_only || !size)
		return;
	seg_pages *sp = &a->loads[no];
	uint32_t off = seg_offset_of(p), fresh = 0;
	for (uint32_t pg = off / 4096u; pg <= (off + size - 1) / 4096u && pg < SEG_PAGES; pg++) {
		uint64_t bit = 1ull << (pg % 64);
		fresh += !(atomic_fetch_or_explicit(&sp->bits[pg / 64], bit, memory_order_relaxed) & bit);
	}
	if (!fresh)
		return;
	uint32_t n = atomic_fetch_add_explicit(&sp->n, fresh, memory_order_relaxed);
	if (n >= SEG_PAGES / 2 || n + fresh < SEG_PAGES / 2)
		return;
	char *g = (char *)((uintptr_t)p & ~(uintptr_t)(SEG_SIZE - 1));
#ifdef MADV_HUGEPAGE
	(void)madvise(g, SEG_SIZE, MADV_HUGEPAGE); /* hints: a refusal changes nothing */
#endif
	(void)madvise(g, SEG_SIZE, MADV_COLLAPSE);
	atomic_fetch_add_explicit(&a->collapses, 1, memory_order_relaxed);
}

void seg_load_requested(seg_alloc *a, unsigned cls, uint64_t bytes)
{
	counter_add(&a->classes[cls].bytes_requested, bytes);
}

uint32_t seg_slot_index(uint32_t offset, unsigned cls)
{
	uint32_t off0 = data_offset();
	if (cls >= STRATA_NUM_CLASSES || offset < off0 || (offset - off0) % class_sizes[cls])
		return UINT32_MAX;
	uint32_t i = (offset - off0) / class_sizes[cls];
	return i < seg_nslots(cls) ? i : UINT32_MAX;
}

void *seg_slot_at(seg_alloc *a, uint32_t segno, uint32_t offset, uint32_t size)
{
	unsigned cls = seg_class_of(size);
	if (cls == STRATA_CLASS_LARGE || segno >= atomic_load(&a->nsegs))
		return NULL;
	pthread_mutex_lock(&a->nos_lock);
	segment *g = a->by_no[segno];
	pthread_mutex_unlock(&a->nos_lock);
	uint32_t i = seg_slot_index(offset, cls);
	if (!g && i != UINT32_MAX && segno < a->lazy_n && a->lazy_cls[segno] == cls)
		g = lazy_get(a, segno);
	if (!g || g->bad || g->cls != cls || i == UINT32_MAX)
		return NULL;
	seg_class *c = &a->classes[cls];
	pthread_mutex_lock(&c->lock);
	bool used = !bm_is_free(g, i);
	pthread_mutex_unlock(&c->lock);
	return used ? (char *)g + offset : NULL;
}

static void *alloc_node(seg_alloc *a, uint32_t size, bool zero);

void *seg_alloc_node(seg_alloc *a, uint32_t size)
{
	return alloc_node(a, size, true);
}

void *seg_alloc_node_raw(seg_alloc *a, uint32_t size)
{
	return alloc_node(a, size, false);
}

static void *alloc_node(seg_alloc *a, uint32_t size, bool zero)
{
	unsigned cls = seg_class_of(size);
	if (cls == STRATA_CLASS_LARGE) {
		void *p = zero ? strata_mem_calloc(1, size) : strata_mem_alloc(size);
		if (p) {
			atomic_fetch_add_explicit(&a->large_objects, 1, memory_order_relaxed);
			atomic_fetch_add_explicit(&a->large_bytes, size, memory_order_relaxed);
		}
		return p;
	}
	seg_class *c = &a->classes[cls];
	pthread_mutex_lock(&c->lock);
	segment *g = c->current;
	if (!g || !g->nfree) {
		g = c->partial ? c->partial : lazy_take(a, c);
		if (g)
			partial_remove(c, g);
		else if (!(g = seg_new(a, c, cls, atomic_load_explicit(&c->segments, memory_order_relaxed) > 0))) {
			pthread_mutex_unlock(&c->lock);
			return NULL;
		}
		c->current = g;
	}
	uint32_t i = bm_take_first(g);
	g->nfree--;
	counter_add(&c->slots_used, 1);
	counter_add(&c->bytes_requested, size);
	pthread_mutex_unlock(&c->lock);
	char *p = (char *)g + SEG_DATA_OFF + (size_t)i * c->slot_size;
	if (zero)
		memset(p, 0, size);
	return p;
}

void seg_prefetch_free(const seg_alloc *a, const void *p, uint32_t size)
{
	unsigned cls = seg_class_of(size);
	if (cls == STRATA_CLASS_LARGE)
		return;
	const segment *g = seg_of(p);
	uint32_t i = (uint32_t)((const char *)p - (const char *)g - SEG_DATA_OFF) /
		     a->classes[cls].slot_size;
	__builtin_prefetch(g, 1);
	__builtin_prefetch(&g->l0[i / 64], 1);
}

static void free_large(seg_alloc *a, void *p, uint32_t size)
{
	strata_mem_free(p, size);
	atomic_fetch_sub_explicit(&a->large_objects, 1, memory_order_relaxed);
	atomic_fetch_sub_explicit(&a->large_bytes, size, memory_order_relaxed);
}

/* Class lock held: p's slot is free again (the counters are the caller's). */
static void free_slot(seg_alloc *a, seg_class *c, void *p)
{
	segment *g = seg_of(p);
	/* Offsets fit 32 bits: a 32-bit divide is several times cheaper. */
	uint32_t i = (uint32_t)((char *)p - (char *)g - SEG_DATA_OFF) / c->slot_size;
	bm_set_free(g, i);
	g->nfree++;
	if (g != c->current) {
		if (g->nfree == g->nslots && !a->durable) {
			if (g->in_partial)
				partial_remove(c, g);
			seg_release(c, g);
		} else if (!g->in_partial && !g->draining) {
			partial_push(c, g);
		}
	}
}

void seg_free_node(seg_alloc *a, void *p, uint32_t size)
{
	unsigned cls = seg_class_of(size);
	if (cls == STRATA_CLASS_LARGE) {
		free_large(a, p, size);
		return;
	}
	seg_class *c = &a->classes[cls];
	pthread_mutex_lock(&c->lock);
	free_slot(a, c, p);
	counter_add(&c->slots_used, (uint64_t)-1);
	counter_add(&c->bytes_requested, -(uint64_t)size);
	pthread_mutex_unlock(&c->lock);
}

/* Up to 64 nodes: each class's lock is taken once for all of its nodes
 * among them (a lock and unlock per node were ~60 of the ~150
 * instructions of a free). Within a class the order is the callers', so
 * the bitmaps and partial lists end as n calls of seg_free_node leave
 * them. */
static void free_run(seg_alloc *a, void *const *p, const uint32_t *size, uint32_t n)
{
	uint8_t cls[SEG_FREE_RUN];
	uint64_t left = 0;
	bool mixed = false;
	for (uint32_t i = 0; i < n; i++) {
		cls[i] = (uint8_t)seg_class_of(size[i]);
		mixed |= cls[i] != cls[0];
		if (cls[i] == STRATA_CLASS_LARGE)
			free_large(a, p[i], size[i]);
		else
			left |= 1ull << i;
	}
	if (n && !mixed && cls[0] != STRATA_CLASS_LARGE) { /* the usual run: one class */
		seg_class *c = &a->classes[cls[0]];
		uint64_t bytes = 0;
		pthread_mutex_lock(&c->lock);
		for (uint32_t i = 0; i < n; i++) {
			free_slot(a, c, p[i]);
			bytes += size[i];
		}
		counter_add(&c->slots_used, -(uint64_t)n);
		counter_add(&c->bytes_requested, -bytes);
		pthread_mutex_unlock(&c->lock);
		return;
	}
	while (left) {
		unsigned k = cls[__builtin_ctzll(left)];
		seg_class *c = &a->classes[k];
		uint64_t freed = 0, bytes = 0;
		pthread_mutex_lock(&c->lock);
		for (uint64_t m = left; m; m &= m - 1) {
			uint32_t i = (uint32_t)__builtin_ctzll(m);
			if (cls[i] != k)
				continue;
			free_slot(a, c, p[i]);
			freed++;
			bytes += size[i];
			left &= ~(1ull << i);
		}
		counter_add(&c->slots_used, -freed);
		counter_add(&c->bytes_requested, -bytes);
		pthread_mutex_unlock(&c->lock);
	}
}

void seg_free_nodes(seg_alloc *a, void *const *p, const uint32_t *size, size_t n)
{
	for (size_t i = 0; i < n; i += SEG_FREE_RUN)
		free_run(a, p + i, size + i, n - i < SEG_FREE_RUN ? (uint32_t)(n - i) : SEG_FREE_RUN);
}

/* Under the class lock: the checker runs beside checkpoints, whose limbo
 * release frees slots (TSan). */
bool seg_slot_in_use(seg_alloc *a, const void *p, uint32_t size)
{
	unsigned cls = seg_class_of(size);
	if (cls == STRATA_CLASS_LARGE)
		return p != NULL;
	seg_class *c = &a->classes[cls];
	const segment *g = seg_of(p);
	bool used = false;
	pthread_mutex_lock(&c->lock);
	for (const segment *x = c->all; x; x = x->all_next) {
		if (x != g)
			continue;
		size_t off = (size_t)((const char *)p - (const char *)g);
		uint32_t ss = c->slot_size;
		if (off >= SEG_DATA_OFF && (off - SEG_DATA_OFF) % ss == 0) {
			uint32_t i = (uint32_t)((off - SEG_DATA_OFF) / ss);
			used = i < g->nslots && !bm_is_free(g, i);
		}
		break;
	}
	pthread_mutex_unlock(&c->lock);
	return used;
}

/* ---- compaction (DURABLE) -------------------------------------------------- */
/* Lock order is class lock -> nos_lock (seg_new numbers segments under
 * the class lock), so these read the numbering first, then lock classes.
 * Segments are freed only by seg_trim_tail, under the checkpoint lock that
 * every caller of these holds. */
int seg_usage(seg_alloc *a, seg_usage_row *out, uint32_t max)
{
	seg_build_all(a);
	pthread_mutex_lock(&a->nos_lock);
	uint32_t n = atomic_load_explicit(&a->nsegs, memory_order_relaxed);
	n = n < max ? n : max;
	segment **gs = strata_mem_alloc((n ? n : 1) * sizeof *gs);
	if (gs && n)
		memcpy(gs, a->by_no, n * sizeof *gs);
	pthread_mutex_unlock(&a->nos_lock);
	if (!gs)
		return STRATA_ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		segment *g = gs[i];
		seg_class *c = &a->classes[g->cls];
		pthread_mutex_lock(&c->lock);
		out[i] = (seg_usage_row){.cls = (uint8_t)g->cls, .nslots = g->nslots, .nfree = g->nfree,
					 .current = g == c->current};
		pthread_mutex_unlock(&c->lock);
	}
	strata_mem_free(gs, (n ? n : 1) * sizeof *gs);
	return (int)n;
}

static segment *by_no(seg_alloc *a, uint32_t segno)
{
	pthread_mutex_lock(&a->nos_lock);
	segment *g = segno < atomic_load(&a->nsegs) ? a->by_no[segno] : NULL;
	pthread_mutex_unlock(&a->nos_lock);
	return g;
}

void seg_drain(seg_alloc *a, uint32_t segno, bool on)
{
	segment *g = by_no(a, segno);
	if (!g)
		return;
	seg_class *c = &a->classes[g->cls];
	pthread_mutex_lock(&c->lock);
	g->draining = on;
	if (on) {
		if (g->in_partial)
			partial_remove(c, g);
		if (c->current == g)
			c->current = NULL; /* the next allocation takes a partial one */
	} else if (!g->in_partial && g != c->current && g->nfree) {
		partial_push(c, g);
	}
	pthread_mutex_unlock(&c->lock);
}

uint32_t seg_trim_tail(seg_alloc *a)
{
	seg_build_all(a); /* a segment without a header is not known empty */
	for (;;) {
		pthread_mutex_lock(&a->nos_lock);
		uint32_t n = atomic_load_explicit(&a->nsegs, memory_order_relaxed);
		segment *g = n ? a->by_no[n - 1] : NULL;
		pthread_mutex_unlock(&a->nos_lock);
		if (!g)
			return n;
		seg_class *c = &a->classes[g->cls];
		pthread_mutex_lock(&c->lock);
		bool cut = g->nfree == g->nslots;
		if (cut) {
			pthread_mutex_lock(&a->nos_lock);
			cut = atomic_load_explicit(&a->nsegs, memory_order_relaxed) == n; /* none made since */
			if (cut) {
				a->by_no[n - 1] = NULL;
				atomic_store_explicit(&a->nsegs, n - 1, memory_order_release);
			}
			pthread_mutex_unlock(&a->nos_lock);
		}
		if (cut) {
			if (g->in_partial)
				partial_remove(c, g);
			if (c->current == g)
				c->current = NULL;
			seg_release(c, g);
		}
		pthread_mutex_unlock(&c->lock);
		if (!cut)
			return n;
	}
}

static int check_one(const seg_class *c, const segment *g, unsigned cls, bool durable,
		     strata_report_fn report, void *ctx)
{
	char msg[200];
	int bad = 0;
#define SEG_BAD(...)                                               \
	do {                                                       \
		snprintf(msg, sizeof msg, __VA_ARGS__);            \
		if (report)                                        \
			report(ctx, msg);                          \
		bad = 1;                                           \
	} while (0)
	if (g->magic != SEG_MAGIC || g->cls != cls)
		SEG_BAD("segment %p of class %u: bad magic or class", (const void *)g, cls);
	if (g->bad)
		SEG_BAD("segment %u: its used-slot words in the checkpoint fail their CRC or count; "
			"none of its slots is reused", g->segno);
	uint32_t pop = 0;
	for (uint32_t w = 0; w < L0_WORDS; w++) {
		pop += (uint32_t)__builtin_popcountll(g->l0[w]);
		bool l1bit = (g->l1[w / 64] >> (w % 64)) & 1;
		if (l1bit != (g->l0[w] != 0))
			SEG_BAD("segment %p: l1 summary bit %u disagrees with l0", (const void *)g, w);
		if ((w + 1) * 64 > g->nslots && w * 64 < g->nslots + 64) {
			uint32_t first_bad = g->nslots > w * 64 ? g->nslots - w * 64 : 0;
			if (first_bad < 64 && (g->l0[w] >> first_bad))
				SEG_BAD("segment %p: free bits beyond nslots", (const void *)g);
		}
	}
	for (uint32_t k = 0; k < L1_WORDS; k++)
		if (((g->l2 >> k) & 1) != (g->l1[k] != 0))
			SEG_BAD("segment %p: l2 summary bit %u disagrees with l1", (const void *)g, k);
	if (pop != g->nfree)
		SEG_BAD("segment %p: nfree %u but %u free bits", (const void *)g, g->nfree, pop);
	bool want_partial = g != c->current && g->nfree > 0 && !g->draining;
	if (g->in_partial != want_partial)
		SEG_BAD("segment %p: partial-list membership wrong", (const void *)g);
	if (g != c->current && g->nfree == g->nslots && !durable)
		SEG_BAD("segment %p: empty segment kept", (const void *)g);
#undef SEG_BAD
	return bad;
}

int seg_check(seg_alloc *a, strata_report_fn report, void *ctx)
{
	int bad = 0;
	seg_build_all(a); /* counters include them: so must the walk */
	for (unsigned cls = 0; cls < STRATA_NUM_CLASSES; cls++) {
		seg_class *c = &a->classes[cls];
		pthread_mutex_lock(&c->lock);
		uint64_t nseg = 0, used = 0;
		for (segment *g = c->all; g; g = g->all_next) {
			bad |= check_one(c, g, cls, a->durable, report, ctx);
			nseg++;
			used += g->nslots - g->nfree;
		}
		if (nseg != atomic_load(&c->segments) || used != atomic_load(&c->slots_used)) {
			char msg[160];
			snprintf(msg, sizeof msg, "class %u: counters say %llu segments/%llu used, found %llu/%llu",
				 cls, (unsigned long long)atomic_load(&c->segments),
				 (unsigned long long)atomic_load(&c->slots_used),
				 (unsigned long long)nseg, (unsigned long long)used);
			if (report)
				report(ctx, msg);
			bad = 1;
		}
		pthread_mutex_unlock(&c->lock);
	}
	return bad ? STRATA_ECORRUPT : 0;
}
