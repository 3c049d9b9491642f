/*
 * test_segment.c — the size-class allocator (white-box, on a bare
 * seg_alloc): class boundaries; a randomized differential test against a
 * model of live allocations (no overlap, alignment, zeroed memory, no
 * clobbering, counters equal to the model, seg_check clean after every
 * batch); segments handed back when they empty; large objects counted.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "internal.h"
#include "support/model.h"

/* Every test ends with a leak check in ASan builds (see model.h). */
TestSuite(segment, .fini = test_leak_check);

/* ---- class mapping ---------------------------------------------------------- */

Test(segment, class_boundaries)
{
	cr_assert_eq(seg_class_of(1), 0);
	cr_assert_eq(seg_class_of(64), 0);
	cr_assert_eq(seg_class_of(65), 1);
	cr_assert_eq(seg_class_of(128), 1);
	cr_assert_eq(seg_class_of(129), 2);
	cr_assert_eq(seg_class_of(512), 7);
	cr_assert_eq(seg_class_of(513), 8);
	cr_assert_eq(seg_class_of(640), 8);
	cr_assert_eq(seg_class_of(641), 9);
	cr_assert_eq(seg_class_of(65535), STRATA_NUM_CLASSES - 1);
	cr_assert_eq(seg_class_of(65536), STRATA_NUM_CLASSES - 1);
	cr_assert_eq(seg_class_of(65537), STRATA_CLASS_LARGE);
	cr_assert_eq(seg_class_of(STRATA_NODE_MAX), STRATA_CLASS_LARGE);
	cr_assert_eq(seg_class_of(UINT32_MAX), STRATA_CLASS_LARGE);
	cr_assert_eq(seg_class_size(0), 64);
	cr_assert_eq(seg_class_size(7), 512);
	cr_assert_eq(seg_class_size(8), 640);
	cr_assert_eq(seg_class_size(STRATA_NUM_CLASSES - 1), SMALL_MAX);
	cr_assert_eq(seg_class_size(STRATA_NUM_CLASSES), 0);
	cr_assert_eq(seg_class_size(STRATA_CLASS_LARGE), 0);
}

/* Slot positions are part of the file format (FORMAT.md: slot 0 at byte
 * 4224 of a segment): a header change must not move them. */
Test(segment, slot_layout_is_the_format)
{
	cr_assert_eq(seg_slot_index(4224, 0), 0);
	cr_assert_eq(seg_slot_index(4224 + 64, 0), 1);
	cr_assert_eq(seg_slot_index(4224 - 64, 0), UINT32_MAX);
	cr_assert_eq(seg_nslots(0), (2u * 1024 * 1024 - 4224) / 64);
	cr_assert_eq(seg_nslots(15), (2u * 1024 * 1024 - 4224) / 4096);
	cr_assert_eq(seg_slot_index(4224 + 3 * 4096, 15), 3);
}

Test(segment, every_size_maps_to_the_tightest_class)
{
	for (unsigned c = 0; c < STRATA_NUM_CLASSES; c++) {
		cr_assert_eq(seg_class_size(c) % 64, 0, "slot sizes keep 64-byte alignment");
		if (c)
			cr_assert_gt(seg_class_size(c), seg_class_size(c - 1));
	}
	for (uint32_t size = 1; size <= SMALL_MAX; size++) {
		unsigned c = seg_class_of(size);
		cr_assert_lt(c, STRATA_NUM_CLASSES, "size %u", size);
		cr_assert_geq(seg_class_size(c), size, "size %u does not fit class %u", size, c);
		if (c)
			cr_assert_lt(seg_class_size(c - 1), size, "size %u: class %u is not tightest", size, c);
	}
}

/* ---- the model -------------------------------------------------------------- */

typedef struct live_obj {
	unsigned char *p;
	uint32_t size;
	uint32_t tag; /* pattern seed */
} live_obj;

typedef struct model {
	live_obj *objs;
	size_t n, cap;
	uint64_t used[STRATA_NUM_CLASSES], requested[STRATA_NUM_CLASSES];
	uint64_t large_n, large_bytes;
	/* The segment of each class's latest allocation: the allocator's
	 * `current`, the one segment kept even when empty. */
	uintptr_t last_seg[STRATA_NUM_CLASSES];
	uint64_t prev_segs[STRATA_NUM_CLASSES];
	uint64_t releases; /* times a class's segment count went down */
	uint64_t seed;     /* for failure messages */
} model;

static uintptr_t seg_base(const void *p)
{
	return (uintptr_t)p & ~(uintptr_t)(SEG_SIZE - 1);
}

/* Objects are filled from one random buffer at an offset chosen by their
 * tag, so fill and verify are memcpy/memcmp (the suite stays fast). */
#define LARGE_TEST_MAX (SMALL_MAX + 200000u)
#define PATTERN_SPAN 4096u
static unsigned char pattern[PATTERN_SPAN + LARGE_TEST_MAX];
static unsigned char zeros[LARGE_TEST_MAX];

static void pattern_init(uint64_t seed)
{
	test_rng r = {seed ^ 0xa5a5a5a5ull};
	for (size_t i = 0; i < sizeof pattern; i++)
		pattern[i] = (unsigned char)rng_next(&r);
}

static const unsigned char *pattern_of(uint32_t tag)
{
	return pattern + (tag * 2654435761u) % PATTERN_SPAN;
}

static void fill(live_obj *o)
{
	memcpy(o->p, pattern_of(o->tag), o->size);
}

static void verify(const model *m, const live_obj *o)
{
	if (memcmp(o->p, pattern_of(o->tag), o->size))
		cr_assert_fail("seed %llu: object %p (size %u, tag %u) was clobbered",
			       (unsigned long long)m->seed, (void *)o->p, o->size, o->tag);
}

static void model_add(model *m, unsigned char *p, uint32_t size, uint32_t tag)
{
	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 256;
		m->objs = realloc(m->objs, sizeof *m->objs * m->cap);
	}
	m->objs[m->n++] = (live_obj){p, size, tag};
	unsigned c = seg_class_of(size);
	if (c == STRATA_CLASS_LARGE) {
		m->large_n++;
		m->large_bytes += size;
	} else {
		m->used[c]++;
		m->requested[c] += size;
	}
}

static void model_remove(model *m, size_t k)
{
	live_obj o = m->objs[k];
	m->objs[k] = m->objs[--m->n];
	unsigned c = seg_class_of(o.size);
	if (c == STRATA_CLASS_LARGE) {
		m->large_n--;
		m->large_bytes -= o.size;
	} else {
		m->used[c]--;
		m->requested[c] -= o.size;
	}
}

/* Mostly small nodes across all classes, some near class edges, a few large. */
static uint32_t random_size(test_rng *r)
{
	uint64_t k = rng_below(r, 100);
	if (k < 60)
		return 1 + (uint32_t)rng_below(r, 512);
	if (k < 75) {
		/* a class size, one below or one above (the next class) */
		uint32_t edge = seg_class_size((unsigned)rng_below(r, STRATA_NUM_CLASSES));
		return edge + (uint32_t)rng_below(r, 3) - 1;
	}
	if (k < 98)
		return 513 + (uint32_t)rng_below(r, SMALL_MAX - 512);
	return SMALL_MAX + 1 + (uint32_t)rng_below(r, LARGE_TEST_MAX - SMALL_MAX);
}

static void alloc_one(seg_alloc *a, model *m, test_rng *r, uint32_t tag)
{
	uint32_t size = random_size(r);
	unsigned char *p = seg_alloc_node(a, size);
	cr_assert_not_null(p, "seed %llu: alloc of %u failed", (unsigned long long)m->seed, size);
	unsigned c = seg_class_of(size);
	uintptr_t align = c == STRATA_CLASS_LARGE ? 16 : 64;
	cr_assert_eq((uintptr_t)p % align, 0, "seed %llu: %p misaligned (size %u)",
		     (unsigned long long)m->seed, (void *)p, size);
	if (memcmp(p, zeros, size))
		cr_assert_fail("seed %llu: new object of %u bytes not zeroed",
			       (unsigned long long)m->seed, size);
	cr_assert(seg_slot_in_use(a, p, size), "seed %llu", (unsigned long long)m->seed);
	if (c != STRATA_CLASS_LARGE)
		m->last_seg[c] = seg_base(p);
	model_add(m, p, size, tag);
	fill(&m->objs[m->n - 1]);
}

static void free_one(seg_alloc *a, model *m, size_t k)
{
	live_obj o = m->objs[k];
	verify(m, &o);
	model_remove(m, k);
	seg_free_node(a, o.p, o.size);
	if (seg_class_of(o.size) != STRATA_CLASS_LARGE)
		cr_assert_not(seg_slot_in_use(a, o.p, o.size), "seed %llu: freed slot still in use",
			      (unsigned long long)m->seed);
}

static uint32_t extent(const live_obj *o)
{
	unsigned c = seg_class_of(o->size);
	return c == STRATA_CLASS_LARGE ? o->size : seg_class_size(c);
}

static int obj_cmp(const void *x, const void *y)
{
	uintptr_t a = (uintptr_t)((const live_obj *)x)->p, b = (uintptr_t)((const live_obj *)y)->p;
	return a < b ? -1 : a > b;
}

static int base_cmp(const void *x, const void *y)
{
	uintptr_t a = *(const uintptr_t *)x, b = *(const uintptr_t *)y;
	return a < b ? -1 : a > b;
}

/* Segments a class must hold: those with a live slot, plus the current
 * one (it stays when empty); an emptied non-current one must be gone. */
static uint64_t model_segments(const model *m, unsigned c)
{
	uintptr_t *b = malloc(sizeof *b * (m->n + 1));
	size_t n = 0;
	for (size_t i = 0; i < m->n; i++)
		if (seg_class_of(m->objs[i].size) == c)
			b[n++] = seg_base(m->objs[i].p);
	if (m->last_seg[c])
		b[n++] = m->last_seg[c];
	qsort(b, n, sizeof *b, base_cmp);
	uint64_t distinct = 0;
	for (size_t i = 0; i < n; i++)
		distinct += i == 0 || b[i] != b[i - 1];
	free(b);
	return distinct;
}

/* Everything the model knows must match the allocator. */
static void check_against_model(seg_alloc *a, model *m)
{
	for (size_t i = 0; i < m->n; i++) {
		verify(m, &m->objs[i]);
		cr_assert(seg_slot_in_use(a, m->objs[i].p, m->objs[i].size), "seed %llu",
			  (unsigned long long)m->seed);
	}
	/* Whole slots (not just the requested bytes) must not overlap. */
	qsort(m->objs, m->n, sizeof *m->objs, obj_cmp);
	for (size_t i = 1; i < m->n; i++)
		cr_assert_leq((uintptr_t)m->objs[i - 1].p + extent(&m->objs[i - 1]), (uintptr_t)m->objs[i].p,
			      "seed %llu: slots %p and %p overlap", (unsigned long long)m->seed,
			      (void *)m->objs[i - 1].p, (void *)m->objs[i].p);
	for (unsigned c = 0; c < STRATA_NUM_CLASSES; c++) {
		seg_class *k = &a->classes[c];
		cr_assert_eq(atomic_load(&k->slots_used), m->used[c], "seed %llu class %u",
			     (unsigned long long)m->seed, c);
		cr_assert_eq(atomic_load(&k->bytes_requested), m->requested[c], "seed %llu class %u",
			     (unsigned long long)m->seed, c);
		uint64_t segs = atomic_load(&k->segments), total = atomic_load(&k->slots_total);
		cr_assert_geq(total, m->used[c], "seed %llu class %u", (unsigned long long)m->seed, c);
		if (segs) {
			/* Equal segments, each nearly filled by slots. */
			cr_assert_eq(total % segs, 0, "seed %llu class %u", (unsigned long long)m->seed, c);
			uint64_t per = total / segs;
			cr_assert(per * k->slot_size <= SEG_SIZE && (per + 1) * k->slot_size + 8192 > SEG_SIZE,
				  "seed %llu class %u: %llu slots a segment", (unsigned long long)m->seed, c,
				  (unsigned long long)per);
		}
		cr_assert_eq(segs, model_segments(m, c), "seed %llu class %u: segments",
			     (unsigned long long)m->seed, c);
		m->releases += segs < m->prev_segs[c];
		m->prev_segs[c] = segs;
	}
	cr_assert_eq(atomic_load(&a->large_objects), m->large_n, "seed %llu", (unsigned long long)m->seed);
	cr_assert_eq(atomic_load(&a->large_bytes), m->large_bytes, "seed %llu", (unsigned long long)m->seed);
	cr_assert_eq(seg_check(a, test_report, NULL), 0, "seed %llu", (unsigned long long)m->seed);
}

/* min_releases: how often segments must have been handed back, so the
 * run is known to have exercised that path. */
static void run_random(uint64_t seed, int batches, int batch_ops, size_t max_live,
		       uint64_t min_releases)
{
	seg_alloc a;
	cr_assert_eq(seg_init(&a), 0);
	model m = {.seed = seed};
	test_rng r = {seed};
	pattern_init(seed);
	uint32_t tag = 1;
	for (int b = 0; b < batches; b++) {
		/* Alternate growing and shrinking phases so segments both fill
		 * up and empty out. */
		unsigned grow = (b / 4) % 2 ? 35 : 65;
		for (int op = 0; op < batch_ops; op++) {
			if (m.n < max_live && (m.n == 0 || rng_below(&r, 100) < grow))
				alloc_one(&a, &m, &r, tag++);
			else
				free_one(&a, &m, (size_t)rng_below(&r, m.n));
		}
		check_against_model(&a, &m);
	}
	cr_assert_geq(m.releases, min_releases, "seed %llu: only %llu segment releases",
		      (unsigned long long)seed, (unsigned long long)m.releases);
	while (m.n)
		free_one(&a, &m, (size_t)rng_below(&r, m.n));
	check_against_model(&a, &m);
	for (unsigned c = 0; c < STRATA_NUM_CLASSES; c++)
		cr_assert_eq(atomic_load(&a.classes[c].segments), m.last_seg[c] ? 1 : 0,
			     "seed %llu: class %u kept empty segments", (unsigned long long)seed, c);
	seg_destroy(&a);
	free(m.objs);
}

Test(segment, random_against_model_seed_1, .timeout = 120)
{
	run_random(1, 40, 500, 3000, 3);
}

Test(segment, random_against_model_seed_2, .timeout = 120)
{
	run_random(0x5eed5eedull, 40, 500, 3000, 3);
}

Test(segment, random_against_model_small_live_set, .timeout = 120)
{
	/* Few live objects: segments empty often and must be handed back. */
	run_random(77, 60, 300, 40, 0);
}

/* ---- segments come and go ---------------------------------------------------- */

/* Slots per segment of a class, learned from the allocator's counters. */
static uint64_t slots_per_segment(seg_alloc *a, uint32_t size)
{
	void *p = seg_alloc_node(a, size);
	seg_class *c = &a->classes[seg_class_of(size)];
	uint64_t per = atomic_load(&c->slots_total) / atomic_load(&c->segments);
	seg_free_node(a, p, size);
	return per;
}

Test(segment, sequential_fill_uses_exact_segments_and_returns_empty_ones)
{
	const uint32_t size = 16000; /* class 16384: about 127 slots a segment */
	seg_alloc a;
	cr_assert_eq(seg_init(&a), 0);
	seg_class *c = &a.classes[seg_class_of(size)];
	uint64_t per = slots_per_segment(&a, size);
	cr_assert_gt(per, 100);
	size_t n = 3 * per + 1;
	void **p = calloc(n, sizeof *p);
	for (size_t i = 0; i < n; i++) {
		cr_assert_not_null(p[i] = seg_alloc_node(&a, size));
		/* Segments are added only when the previous ones are full. */
		cr_assert_eq(atomic_load(&c->segments), i / per + 1, "after %zu allocations", i + 1);
	}
	cr_assert_eq(seg_check(&a, test_report, NULL), 0);
	/* Free the first segment's slots: it is given back exactly when its
	 * last slot goes, not before. */
	for (size_t i = 0; i < per; i++) {
		cr_assert_eq(atomic_load(&c->segments), 4, "segment released early (slot %zu)", i);
		seg_free_node(&a, p[i], size);
		p[i] = NULL;
	}
	cr_assert_eq(atomic_load(&c->segments), 3, "an empty non-current segment must be released");
	cr_assert_eq(seg_check(&a, test_report, NULL), 0);
	/* Partly free the second: it stays, and is reused before a new one. */
	seg_free_node(&a, p[per], size);
	void *again = seg_alloc_node(&a, size);
	cr_assert_eq(atomic_load(&c->segments), 3);
	/* current (4th) still had room, so the hole is filled later */
	for (size_t i = per + 1; i < n; i++)
		seg_free_node(&a, p[i], size);
	seg_free_node(&a, again, size);
	cr_assert_eq(atomic_load(&c->slots_used), 0);
	cr_assert_leq(atomic_load(&c->segments), 1, "only the current segment may stay");
	cr_assert_eq(seg_check(&a, test_report, NULL), 0);
	free(p);
	seg_destroy(&a);
}

Test(segment, freed_slot_is_reused_before_a_new_segment)
{
	const uint32_t size = 60000; /* class 65536: 31 slots a segment */
	seg_alloc a;
	cr_assert_eq(seg_init(&a), 0);
	seg_class *c = &a.classes[seg_class_of(size)];
	uint64_t per = slots_per_segment(&a, size);
	void *p[64];
	cr_assert_leq(per, 63);
	for (uint64_t i = 0; i < per; i++)
		p[i] = seg_alloc_node(&a, size);
	cr_assert_eq(atomic_load(&c->segments), 1);
	seg_free_node(&a, p[5], size);
	void *q = seg_alloc_node(&a, size);
	cr_assert_eq(q, p[5], "the only free slot must be taken");
	cr_assert_eq(atomic_load(&c->segments), 1);
	p[5] = q;
	for (uint64_t i = 0; i < per; i++)
		seg_free_node(&a, p[i], size);
	cr_assert_eq(seg_check(&a, test_report, NULL), 0);
	seg_destroy(&a);
}

Test(segment, large_objects_are_counted)
{
	seg_alloc a;
	cr_assert_eq(seg_init(&a), 0);
	const uint32_t sizes[] = {SMALL_MAX + 1, 100000, 1u << 20};
	unsigned char *p[3];
	uint64_t bytes = 0;
	for (int i = 0; i < 3; i++) {
		cr_assert_not_null(p[i] = seg_alloc_node(&a, sizes[i]));
		for (uint32_t j = 0; j < sizes[i]; j += 4093)
			cr_assert_eq(p[i][j], 0);
		cr_assert_eq(p[i][sizes[i] - 1], 0);
		memset(p[i], 0xee, sizes[i]);
		bytes += sizes[i];
		cr_assert_eq(atomic_load(&a.large_objects), (uint64_t)i + 1);
		cr_assert_eq(atomic_load(&a.large_bytes), bytes);
	}
	for (unsigned c = 0; c < STRATA_NUM_CLASSES; c++)
		cr_assert_eq(atomic_load(&a.classes[c].segments), 0, "large objects use no segment");
	for (int i = 0; i < 3; i++)
		seg_free_node(&a, p[i], sizes[i]);
	cr_assert_eq(atomic_load(&a.large_objects), 0);
	cr_assert_eq(atomic_load(&a.large_bytes), 0);
	cr_assert_eq(seg_check(&a, test_report, NULL), 0);
	seg_destroy(&a);
}

Test(segment, slot_in_use_rejects_foreign_and_interior_pointers)
{
	seg_alloc a;
	cr_assert_eq(seg_init(&a), 0);
	char *p = seg_alloc_node(&a, 100);
	cr_assert(seg_slot_in_use(&a, p, 100));
	cr_assert_not(seg_slot_in_use(&a, p + 64, 100), "interior pointer");
	cr_assert_not(seg_slot_in_use(&a, p, 10), "wrong class for that slot");
	char *q = seg_alloc_node(&a, 100);
	cr_assert_eq(q - p, 128, "consecutive slots of one class");
	seg_free_node(&a, q, 100);
	cr_assert_not(seg_slot_in_use(&a, q, 100));
	seg_free_node(&a, p, 100);
	seg_destroy(&a);
}

/* ---- lazy headers (a checkpoint load) ---------------------------------------- */
#define BIG 60000u /* class 65536: 31 slots a segment, one bitmap word */

static void *slot_of(seg_alloc *a, uint32_t segno, uint32_t i)
{
	return seg_slot_at(a, segno, 4224u + i * 65536u, BIG);
}

/* Counters at once, a header only when something needs it, candidates
 * taken (lowest number first) before any new segment, used slots never
 * handed out, and seg_check (which builds the rest) clean. */
Test(segment, lazy_load_builds_headers_on_demand)
{
	seg_alloc a;
	cr_assert_eq(seg_init(&a), 0);
	seg_set_durable(&a);
	unsigned cls = seg_class_of(BIG);
	cr_assert_eq(seg_nslots(cls), 31);
	const uint8_t classes[4] = {cls, cls, cls, cls};
	const uint64_t full = (1ull << 31) - 1, used[4] = {full, (1u << 0) | (1u << 5), full, 0};
	cr_assert_eq(seg_load_segments(&a, classes, 4, used, NULL, true), 0);
	seg_class *c = &a.classes[cls];
	cr_assert_eq(atomic_load(&a.lazy_left), 4, "no header built by the load");
	cr_assert_eq(atomic_load(&c->segments), 4);
	cr_assert_eq(atomic_load(&c->slots_total), 124);
	cr_assert_eq(atomic_load(&c->slots_used), 64);
	cr_assert_eq(seg_class_at(&a, 2), cls, "the class is known without a header");

	cr_assert_null(seg_slot_at(&a, 0, 4224u, 100), "wrong class: nothing built");
	cr_assert_eq(atomic_load(&a.lazy_left), 4);
	void *s15 = slot_of(&a, 1, 5);
	cr_assert_not_null(s15, "a used slot");
	cr_assert_null(slot_of(&a, 1, 3), "a free slot");
	cr_assert_eq(atomic_load(&a.lazy_left), 3, "only segment 1 was built");
	void *s10 = slot_of(&a, 1, 0);

	void *p[60];
	for (int i = 0; i < 60; i++) {
		p[i] = seg_alloc_node(&a, BIG);
		cr_assert_not_null(p[i]);
		cr_assert(p[i] != s15 && p[i] != s10, "a used slot handed out");
		for (int j = 0; j < i; j++)
			cr_assert_neq(p[i], p[j]);
		uint32_t want = i < 29 ? 1 : 3; /* segment 1's 29 free slots, then 3's 31 */
		cr_assert_eq(seg_no_of(p[i]), want, "allocation %d went to segment %u", i,
			     seg_no_of(p[i]));
	}
	cr_assert_eq(atomic_load(&c->segments), 4, "no new segment while candidates had room");
	cr_assert_eq(atomic_load(&a.lazy_left), 2, "segments 0 and 2 (full) still unbuilt");
	void *q = seg_alloc_node(&a, BIG);
	cr_assert_eq(seg_no_of(q), 4, "then a new one");
	cr_assert_eq(seg_check(&a, test_report, NULL), 0);
	cr_assert_eq(atomic_load(&a.lazy_left), 0, "seg_check built the rest");
	cr_assert_not_null(slot_of(&a, 2, 30));
	seg_destroy(&a);
}

/* Loads into the open's mapping turn a segment into a huge page once they
 * touched half of its pages: exactly once per segment, never for a
 * segment touched less, a reload of the same image counting nothing. */
Test(segment, loads_collapse_a_segment_once_half_its_pages_are_touched)
{
	seg_alloc a;
	cr_assert_eq(seg_init(&a), 0);
	seg_set_durable(&a);
	unsigned cls = seg_class_of(BIG);
	const uint8_t classes[4] = {cls, cls, cls, cls};
	const uint64_t full = (1ull << 31) - 1, used[4] = {full, full, full, 0};
	cr_assert_eq(seg_load_segments(&a, classes, 4, used, NULL, true), 0);
	cr_assert_eq(a.loads_n, 4);
	bool page[SEG_PAGES] = {false};
	uint32_t touched = 0;
	for (uint32_t i = 0; i < 31; i++) {
		void *p = slot_of(&a, 2, i);
		cr_assert_not_null(p);
		uint32_t off = seg_offset_of(p);
		for (uint32_t pg = off / 4096u; pg <= (off + BIG - 1) / 4096u; pg++)
			touched += !page[pg], page[pg] = true;
		seg_note_loaded(&a, p, BIG);
		seg_note_loaded(&a, p, BIG); /* loaded again: no new page */
		cr_assert_eq(atomic_load(&a.loads[2].n), touched);
		cr_assert_eq(atomic_load(&a.collapses), touched >= SEG_PAGES / 2,
			     "slot %u: %u pages touched", i, touched);
	}
	void *s17 = slot_of(&a, 1, 7);
	seg_note_loaded(&a, s17, BIG);
	uint32_t off = seg_offset_of(s17);
	cr_assert_eq(atomic_load(&a.loads[1].n), (off + BIG - 1) / 4096u - off / 4096u + 1,
		     "every page the image lies on");
	cr_assert_eq(atomic_load(&a.collapses), 1, "segment 1 stays in small pages");
	void *fresh = seg_alloc_node(&a, BIG);
	cr_assert_eq(seg_no_of(fresh), 3);
	seg_destroy(&a);

	/* The bounded cache keeps images out of segment memory: nothing counted. */
	cr_assert_eq(seg_init(&a), 0);
	seg_set_durable(&a);
	a.headers_only = true;
	cr_assert_eq(seg_load_segments(&a, classes, 4, used, NULL, true), 0);
	for (uint32_t i = 0; i < 31; i++)
		seg_note_loaded(&a, slot_of(&a, 2, i), BIG);
	cr_assert_eq(atomic_load(&a.collapses), 0);
	seg_destroy(&a);
}

/* Once everything is built, a segment released by seg_trim_tail must not
 * come back as a stale candidate (it did: a header was written into the
 * released mapping, SIGSEGV in the crash campaign). */
Test(segment, lazy_candidates_go_stale_after_trim)
{
	seg_alloc a;
	cr_assert_eq(seg_init(&a), 0);
	seg_set_durable(&a);
	unsigned cls = seg_class_of(BIG);
	const uint8_t classes[2] = {cls, cls};
	const uint64_t used[2] = {1, 0};
	cr_assert_eq(seg_load_segments(&a, classes, 2, used, NULL, true), 0);
	cr_assert_eq(seg_trim_tail(&a), 1, "the empty last segment is cut");
	for (int i = 0; i < 31; i++) {
		void *p = seg_alloc_node(&a, BIG);
		cr_assert_not_null(p);
		cr_assert_eq(seg_no_of(p), i < 30 ? 0 : 1);
	}
	cr_assert_eq(atomic_load(&a.classes[cls].segments), 2);
	cr_assert_eq(seg_check(&a, test_report, NULL), 0);
	seg_destroy(&a);
}

/* A bitmap bit past the last slot is refused at the load, lazy or not. */
Test(segment, lazy_load_checks_every_bitmap)
{
	unsigned cls = seg_class_of(BIG);
	const uint8_t classes[2] = {cls, cls};
	const uint64_t used[2] = {0, 1ull << 40};
	for (int lazy = 0; lazy < 2; lazy++) {
		seg_alloc a;
		cr_assert_eq(seg_init(&a), 0);
		seg_set_durable(&a);
		cr_assert_eq(seg_load_segments(&a, classes, 2, used, NULL, lazy), STRATA_ECORRUPT);
		seg_destroy(&a);
	}
}

/* Version-3 checkpoints: the counters come from the summaries (the words
 * are not read at the load), each segment's words are checked when its
 * header is built, and a segment whose words fail is built bad: nothing
 * of it handed out, never allocated from, reported by seg_check. */
static seg_summary summary_of(const uint64_t *w)
{
	return (seg_summary){(uint32_t)__builtin_popcountll(*w), strata_crc32c(0, w, 8)};
}

Test(segment, summaries_give_counters_and_check_words_when_built)
{
	seg_alloc a;
	cr_assert_eq(seg_init(&a), 0);
	seg_set_durable(&a);
	unsigned cls = seg_class_of(BIG);
	const uint8_t classes[3] = {cls, cls, cls};
	uint64_t used[3] = {1u << 4, (1u << 2) | (1u << 7), 1};
	seg_summary sum[3] = {summary_of(&used[0]), summary_of(&used[1]), summary_of(&used[2])};
	used[1] |= 1u << 9; /* damage after the CRC: one more "used" slot */
	sum[2].used = 2;    /* a count that disagrees with its words */
	cr_assert_eq(seg_load_segments(&a, classes, 3, used, sum, true), 0);
	seg_class *c = &a.classes[cls];
	cr_assert_eq(atomic_load(&c->slots_used), 1 + 2 + 2, "counters from the summaries");
	cr_assert_not_null(slot_of(&a, 0, 4), "good words: the used slot resolves");
	cr_assert_null(slot_of(&a, 1, 2), "bad words: no slot of the segment is handed out");
	cr_assert(seg_is_bad(&a, 1));
	cr_assert_not(seg_is_bad(&a, 0));
	for (int i = 0; i < 40; i++) {
		void *p = seg_alloc_node(&a, BIG);
		cr_assert_not_null(p);
		cr_assert(seg_no_of(p) != 1 && seg_no_of(p) != 2, "allocated from a bad segment");
		cr_assert(p != slot_of(&a, 0, 4), "a used slot handed out");
	}
	cr_assert(seg_is_bad(&a, 2), "allocation built it, and its count failed");
	test_collect col = {0};
	cr_assert_eq(seg_check(&a, test_report_collect, &col), STRATA_ECORRUPT);
	cr_assert(strstr(col.all, "segment 1") && strstr(col.all, "segment 2"), "%s", col.all);
	cr_assert_null(strstr(col.all, "counters say"), "counters stay consistent: %s", col.all);
	cr_assert_eq(atomic_load(&a.bad_segs), 2);
	seg_destroy(&a);
}

/* A count above the class's slots is refused at the load; summaries are
 * for lazy loads only. */
Test(segment, summaries_out_of_range_are_refused)
{
	unsigned cls = seg_class_of(BIG);
	const uint8_t classes[1] = {cls};
	const uint64_t used[1] = {0};
	const seg_summary sum[1] = {{32, strata_crc32c(0, used, 8)}};
	seg_alloc a;
	cr_assert_eq(seg_init(&a), 0);
	seg_set_durable(&a);
	cr_assert_eq(seg_load_segments(&a, classes, 1, used, sum, true), STRATA_ECORRUPT);
	seg_destroy(&a);
	cr_assert_eq(seg_init(&a), 0);
	seg_set_durable(&a);
	cr_assert_eq(seg_load_segments(&a, classes, 1, used, sum, false), STRATA_EINVAL);
	seg_destroy(&a);
}

/* ---- batched frees ---------------------------------------------------------- */
/* seg_free_nodes over nodes of several classes (and large ones), or of one
 * class, more than one run of SEG_FREE_RUN, emptying segments on the way:
 * the allocator ends as seg_free_node of each in turn leaves it. */
static void free_nodes_vs_one_by_one(const uint32_t *sizes, int NS)
{
	enum { N = 300 };
	seg_alloc a, b;
	cr_assert_eq(seg_init(&a), 0);
	cr_assert_eq(seg_init(&b), 0);
	void *pa[N], *pb[N];
	uint32_t size[N];
	for (int i = 0; i < N; i++) {
		size[i] = sizes[i % NS];
		cr_assert_not_null(pa[i] = seg_alloc_node(&a, size[i]));
		cr_assert_not_null(pb[i] = seg_alloc_node(&b, size[i]));
	}
	/* Keep every 5th node; free the rest, most of the 60000-byte class
	 * (31 slots a segment): its emptied segments are released. */
	void *fa[N], *fb[N];
	uint32_t fs[N];
	int n = 0;
	for (int i = 0; i < N; i++) {
		if (i % 5 == 4 && size[i] != 60000)
			continue;
		fa[n] = pa[i];
		fb[n] = pb[i];
		fs[n++] = size[i];
	}
	cr_assert_gt(n, 2 * SEG_FREE_RUN);
	for (int i = 0; i < n; i++)
		seg_free_node(&a, fa[i], fs[i]);
	seg_free_nodes(&b, fb, fs, (size_t)n);
	cr_assert_eq(seg_check(&a, test_report, NULL), 0);
	cr_assert_eq(seg_check(&b, test_report, NULL), 0);
	cr_assert_eq(atomic_load(&a.large_objects), atomic_load(&b.large_objects));
	cr_assert_eq(atomic_load(&a.large_bytes), atomic_load(&b.large_bytes));
	for (unsigned c = 0; c < STRATA_NUM_CLASSES; c++) {
		cr_assert_eq(atomic_load(&a.classes[c].segments), atomic_load(&b.classes[c].segments), "class %u", c);
		cr_assert_eq(atomic_load(&a.classes[c].slots_used), atomic_load(&b.classes[c].slots_used));
		cr_assert_eq(atomic_load(&a.classes[c].bytes_requested),
			     atomic_load(&b.classes[c].bytes_requested));
	}
	/* The same holes are refilled in the same order. */
	for (int i = 0; i < n; i++) {
		fa[i] = seg_alloc_node(&a, fs[i]);
		fb[i] = seg_alloc_node(&b, fs[i]);
		if (seg_class_of(fs[i]) != STRATA_CLASS_LARGE)
			cr_assert_eq(seg_offset_of(fa[i]), seg_offset_of(fb[i]), "allocation %d", i);
	}
	for (int i = 0; i < n; i++) {
		seg_free_node(&a, fa[i], fs[i]);
		seg_free_node(&b, fb[i], fs[i]);
	}
	for (int i = 4; i < N; i += 5) /* the kept ones: large objects are no segment's */
		if (size[i] != 60000) {
			seg_free_node(&a, pa[i], size[i]);
			seg_free_node(&b, pb[i], size[i]);
		}
	seg_destroy(&a);
	seg_destroy(&b);
}

Test(segment, free_nodes_equals_freeing_one_by_one)
{
	const uint32_t mixed[] = {60000, 100, 3000, 60000, 70000, 100, 60000};
	const uint32_t one_class[] = {60000, 59000};
	free_nodes_vs_one_by_one(mixed, sizeof mixed / sizeof mixed[0]);
	free_nodes_vs_one_by_one(one_class, 2); /* every run of one class */
}
