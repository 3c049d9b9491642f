/*
 * internal.h — structures shared by the substrate's files. Not installed.
 *
 * Ownership map (one file per component):
 *   mem.c       the allocation funnel (jemalloc or libc)
 *   segment.c   size-classed segments, bitmaps, large objects
 *   otable.c    sharded object table: NodeID -> entry
 *   pin.c       the reader table: snapshot/transaction epoch pins
 *   catalog.c   root names -> versioned NodeIDs
 *   txn.c       write transactions and commit
 *   snapshot.c  snapshots and the resolve hot path
 *   reclaim.c   retired-node queue and reclamation
 *   store.c     open/close, statistics, invariant checker
 *
 * The MVCC rule, used everywhere: a node with birth b and retire r is visible
 * to a reader at epoch s iff b <= s < r. Values with EPOCH_PENDING set are
 * transaction markers ("born/retired by open transaction T"), larger than any
 * epoch, so they read as "not yet born" / "not yet retired" to every reader
 * but T. Epochs and markers are 48-bit values (epochs below 2^47): an
 * object-table entry keeps b and r as stamps, value << 16 | half of the
 * image's CRC32C, so a DURABLE store needs no CRC beside its 32 B entries.
 */
#ifndef STRATA_INTERNAL_H
#define STRATA_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strata/strata.h"

#define STRATA_LIKELY(x) __builtin_expect(!!(x), 1)
#define STRATA_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define CACHELINE 64

/* Epochs stop at EPOCH_PENDING (commit returns STRATA_EFULL): 1.4e14
 * commits, 4.5 years at a sustained million a second. */
#define EPOCH_INF ((1ull << 48) - 1)
#define EPOCH_PENDING (1ull << 47)

/* ---- allocation funnel (mem.c) ------------------------------------------- */
void *strata_mem_alloc(size_t size);
void *strata_mem_calloc(size_t n, size_t size);
void *strata_mem_realloc(void *p, size_t old_size, size_t new_size);
void *strata_mem_aligned(size_t align, size_t size); /* not zeroed */
void strata_mem_free(void *p, size_t size);          /* size may be 0 (unknown) */
void *strata_mem_zmap(size_t size);                  /* zero pages, lazily backed */
void strata_mem_zunmap(void *p, size_t size);
const char *strata_mem_backend(void);

/* ---- segment allocator (segment.c) --------------------------------------- */
#define SEG_SHIFT 21
#define SEG_SIZE (1u << SEG_SHIFT) /* 2 MiB, segments are aligned to it */
#define SEG_MAX_SLOTS (SEG_SIZE / 64)
#define SMALL_MAX 65536u

typedef struct seg_class {
	pthread_mutex_t lock;
	uint32_t slot_size;
	struct segment *current; /* allocate here first */
	struct segment *partial; /* doubly linked: segments with free slots */
	struct segment *all;     /* every segment of the class (with a header) */
	/* Segments of this class an open left without a header that have
	 * free slots: allocation builds them (last first) before making new. */
	uint32_t *cand, ncand;
	_Atomic uint64_t segments, slots_total, slots_used, bytes_requested;
} seg_class;

#define SEG_PAGES (SEG_SIZE / 4096u)
typedef struct seg_pages {
	_Atomic uint64_t bits[SEG_PAGES / 64]; /* page i touched by a load */
	_Atomic uint32_t n;                    /* bits set */
} seg_pages;

typedef struct seg_alloc {
	seg_class classes[STRATA_NUM_CLASSES];
	_Atomic uint64_t large_objects, large_bytes;
	/* DURABLE: segment n is bytes [n * SEG_SIZE, (n+1) * SEG_SIZE) of the
	 * data file. Segments are numbered as they are made and never released
	 * (an emptied one is reused for its class), so numbers stay stable. */
	bool durable;
	/* Bounded cache: no image is ever written to segment memory, only
	 * the header is touched; a huge page would make it 2 MiB resident. */
	bool headers_only;
	pthread_mutex_t nos_lock;
	struct segment **by_no; /* segment number -> segment (NULL: no header yet) */
	_Atomic uint32_t nsegs;
	uint32_t nos_cap;
	/* Lazy headers (segment.c, "Open"): segments [0, lazy_n) of an open
	 * sit in one mapping, lazy_block; segment i gets its header when first
	 * needed, from class lazy_cls[i] and the checkpoint's used-slot words
	 * at lazy_used + lazy_word[i], which stay mapped until seg_build_all. */
	char *lazy_block;
	uint8_t *lazy_cls;
	uint64_t *lazy_word;
	const uint64_t *lazy_used;
	/* Version-3 checkpoints: each segment's used count and the CRC of its
	 * words, checked when its header is built (NULL: checked at the load). */
	struct seg_summary *lazy_sum;
	uint32_t lazy_n;
	_Atomic uint32_t lazy_left; /* segments still without a header */
	_Atomic uint32_t bad_segs;  /* headers built from words that failed their check */
	/* Segments made from the process's pool / from fresh memory (segpool.c). */
	_Atomic uint64_t pool_hits, pool_misses;
	/* Pages of each segment of the open's mapping that loaded images
	 * touched, and the segments asked to become huge pages (segment.c,
	 * "Huge pages after an open"). Kept until the allocator is destroyed. */
	struct seg_pages *loads;
	uint32_t loads_n;
	_Atomic uint32_t collapses;
} seg_alloc;

int seg_init(seg_alloc *a);
void seg_destroy(seg_alloc *a);
/* size -> class index, or STRATA_CLASS_LARGE */
unsigned seg_class_of(uint32_t size);
uint32_t seg_class_size(unsigned cls);
/* Returns zeroed memory of at least `size` bytes, NULL on ENOMEM. */
void *seg_alloc_node(seg_alloc *a, uint32_t size);
/* The same, not zeroed: for callers that overwrite all `size` bytes at
 * once (WAL replay copies each image in whole). */
void *seg_alloc_node_raw(seg_alloc *a, uint32_t size);
void seg_free_node(seg_alloc *a, void *p, uint32_t size);
/* seg_free_node for each of n nodes, taking a class's lock once per run of
 * up to SEG_FREE_RUN of them (so no lock is held for long). */
#define SEG_FREE_RUN 64u
void seg_free_nodes(seg_alloc *a, void *const *p, const uint32_t *size, size_t n);
/* Asks for the header and bitmap lines seg_free_node(a, p, size) will
 * write, so a loop freeing many nodes overlaps their misses. */
void seg_prefetch_free(const seg_alloc *a, const void *p, uint32_t size);
/* Debug: is p the start of an allocated slot of the class for `size`? */
bool seg_slot_in_use(seg_alloc *a, const void *p, uint32_t size);
/* Checks every segment's bitmaps and counters; reports problems. */
int seg_check(seg_alloc *a, strata_report_fn report, void *ctx);
/* ---- DURABLE mode ---- */
void seg_set_durable(seg_alloc *a);
/* A live IN_MEMORY allocator turns DURABLE: every segment gets a number. */
int seg_number_all(seg_alloc *a);
/* Compaction: one row per segment number (at most max; returns how many). */
typedef struct seg_usage_row {
	uint8_t cls;
	bool current;
	uint32_t nslots, nfree;
} seg_usage_row;
int seg_usage(seg_alloc *a, seg_usage_row *out, uint32_t max);
/* A draining segment is never allocated from (compaction is emptying it). */
void seg_drain(seg_alloc *a, uint32_t segno, bool on);
/* Releases the empty segments at the end of the numbering; returns the new
 * segment count (data beyond nsegs * SEG_SIZE holds nothing). The caller
 * holds the checkpoint lock. */
uint32_t seg_trim_tail(seg_alloc *a);
/* Segment number and offset inside it of a small node's slot. */
uint32_t seg_no_of(const void *p);
static inline uint32_t seg_offset_of(const void *p)
{
	return (uint32_t)((uintptr_t)p & (SEG_SIZE - 1));
}
/* Slots of a segment of class cls, and the 64-bit words of its used map. */
uint32_t seg_nslots(unsigned cls);
static inline uint32_t seg_used_words(unsigned cls)
{
	return (seg_nslots(cls) + 63) / 64;
}
/* A segment as a version-3 checkpoint summarises it: slots in use, and the
 * CRC32C of its used-slot words as stored (little-endian bytes). */
typedef struct seg_summary {
	uint32_t used, crc;
} seg_summary;
/* Loading a checkpoint: makes segments 0..n-1 with the given classes;
 * used holds each segment's used-slot bitmap, seg_used_words(class) words
 * each, one after the other. lazy: headers are built when first needed,
 * and `used` must stay readable until seg_build_all().
 * sum (lazy only; NULL otherwise): the counters come from sum[i].used and
 * the words are not read at the load; each segment's words are checked
 * against sum[i] when its header is built, and a segment that fails is
 * built with no free slot and marked bad (seg_is_bad): never allocated
 * from, seg_slot_at refuses it, seg_check reports it. Without sum, the
 * counters and checks of `used` are complete at the load.
 * Errors: STRATA_ECORRUPT (a class, count or bit out of range), STRATA_ENOMEM. */
int seg_load_segments(seg_alloc *a, const uint8_t *classes, uint32_t n, const uint64_t *used,
		      const seg_summary *sum, bool lazy);
/* Was segment segno built from words that failed their check? */
bool seg_is_bad(seg_alloc *a, uint32_t segno);
/* Builds every header a lazy load left; `used` is not read after it. */
void seg_build_all(seg_alloc *a);
/* Loading a checkpoint: bytes requested by the live nodes of class cls. */
void seg_load_requested(seg_alloc *a, unsigned cls, uint64_t bytes);
/* Slot number at `offset` in a segment of class cls; UINT32_MAX if none. */
uint32_t seg_slot_index(uint32_t offset, unsigned cls);
/* An image of `size` bytes was just read into p (a slot of the open's
 * mapping): counts it, and turns its segment into a huge page once half
 * of the segment holds loaded images. */
void seg_note_loaded(seg_alloc *a, const void *p, uint32_t size);
/* Pointer to the slot at (segno, offset) for a node of `size` if that is a
 * used slot of the right class, else NULL. */
void *seg_slot_at(seg_alloc *a, uint32_t segno, uint32_t offset, uint32_t size);
/* Class of segment n (255 if none), for writing checkpoints. */
uint8_t seg_class_at(seg_alloc *a, uint32_t segno);

/* ---- segment pool (segpool.c) ------------------------------------------- */
#define SEGPOOL_HIT 1u    /* came from the pool (faulted in already, not zero) */
#define SEGPOOL_MAPPED 2u /* free it with munmap, not the funnel */
/* A free 2 MiB-aligned segment, from the pool first, else fresh from the
 * funnel; NULL on ENOMEM. *flags: SEGPOOL_* bits. */
void *segpool_get(unsigned *flags);
/* Gives a segment back: kept in the pool within its bound, else freed. */
void segpool_put(void *mem, bool mapped);
/* Every store's open and close: the prefault thread runs only while a
 * store is open (the last close joins it). */
/* A segment for node images came from fresh memory (not the pool): the
 * PREFAULT_AUTO_AFTER-th starts the prefault thread unless the application
 * chose a watermark. */
void segpool_note_fresh(void);
void segpool_store_opened(void);
void segpool_store_closed(void);
void segpool_stats(uint64_t *prefaulted, uint64_t *pooled_bytes, bool *thread_running);
/* Test hook: the n-th next segpool_get (0: the next) returns NULL; -1: off. */
void segpool_fail_in(long n);

/* ---- object table (otable.c) --------------------------------------------- */
enum ot_state { OT_FREE = 0, OT_RESERVED = 1, OT_LIVE = 2, OT_RETIRED = 3 };

/* 32 bytes. meta = tag << 4 | state; info = size (24 bits) | kind << 24.
 * bstamp / rstamp: birth / retire << STAMP_SHIFT | the high / low half of
 * the CRC32C of the image at loc (DURABLE, once written to a file; else 0).
 * Only the value halves decide visibility; the CRC halves change only by
 * ot_set_crc, and every other writer keeps them (ot_stamp_* below). */
typedef struct ot_entry {
	_Atomic uint64_t loc; /* node bytes (IN_MEMORY: a pointer) */
	_Atomic uint64_t bstamp;
	_Atomic uint64_t rstamp;
	_Atomic uint32_t meta;
	_Atomic uint32_t info;
} ot_entry;
_Static_assert(sizeof(ot_entry) == 32, "an object-table entry is 32 bytes");

#define STAMP_SHIFT 16
#define STAMP_LOW 0xffffull
static inline uint64_t stamp_val(uint64_t stamp)
{
	return stamp >> STAMP_SHIFT;
}
/* A reader at epoch s tests b <= s < r on stamps as bstamp <= key < rstamp
 * with key = s << 16 | 0xffff: no shift or mask on the hot path. */
static inline uint64_t stamp_key(uint64_t epoch)
{
	return epoch << STAMP_SHIFT | STAMP_LOW;
}
static inline uint64_t ot_birth(const ot_entry *e)
{
	return stamp_val(atomic_load_explicit(&((ot_entry *)e)->bstamp, memory_order_acquire));
}
static inline uint64_t ot_retire(const ot_entry *e)
{
	return stamp_val(atomic_load_explicit(&((ot_entry *)e)->rstamp, memory_order_acquire));
}
/* A fresh occupant (ot_alloc, chunk load): value halves set, CRC 0 or
 * `crc`; birth first, both release (snapshot.c: "Why no re-check"). */
static inline void ot_stamp_init(ot_entry *e, uint64_t birth, uint64_t retire, uint32_t crc,
				 memory_order mo)
{
	atomic_store_explicit(&e->bstamp, birth << STAMP_SHIFT | crc >> 16, mo);
	atomic_store_explicit(&e->rstamp, retire << STAMP_SHIFT | (crc & STAMP_LOW), mo);
}
/* Replaces a stamp's value half, keeping its CRC half (a checkpoint may be
 * setting that at the same time). */
static inline void ot_stamp_set(_Atomic uint64_t *w, uint64_t value)
{
	uint64_t old = atomic_load_explicit(w, memory_order_relaxed);
	while (!atomic_compare_exchange_weak_explicit(w, &old, value << STAMP_SHIFT | (old & STAMP_LOW),
						      memory_order_acq_rel, memory_order_relaxed))
		;
}
/* Value half `expect` -> `value`, CRC half kept; false if it was not `expect`. */
static inline bool ot_stamp_cas(_Atomic uint64_t *w, uint64_t expect, uint64_t value)
{
	uint64_t old = atomic_load_explicit(w, memory_order_relaxed);
	do {
		if (stamp_val(old) != expect)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(w, &old, value << STAMP_SHIFT | (old & STAMP_LOW),
							memory_order_acq_rel, memory_order_relaxed));
	return true;
}
static inline uint32_t ot_crc(const ot_entry *e)
{
	uint64_t b = atomic_load_explicit(&((ot_entry *)e)->bstamp, memory_order_acquire);
	uint64_t r = atomic_load_explicit(&((ot_entry *)e)->rstamp, memory_order_acquire);
	return (uint32_t)((b & STAMP_LOW) << 16 | (r & STAMP_LOW));
}
/* Records the CRC32C of the image at loc; before anything may read the
 * image back from a file (the caller orders that, e.g. cache_clean). */
static inline void ot_set_crc(ot_entry *e, uint32_t crc)
{
	uint64_t b = atomic_load_explicit(&e->bstamp, memory_order_relaxed);
	while (!atomic_compare_exchange_weak_explicit(&e->bstamp, &b, (b & ~STAMP_LOW) | crc >> 16,
						      memory_order_release, memory_order_relaxed))
		;
	uint64_t r = atomic_load_explicit(&e->rstamp, memory_order_relaxed);
	while (!atomic_compare_exchange_weak_explicit(&e->rstamp, &r, (r & ~STAMP_LOW) | (crc & STAMP_LOW),
						      memory_order_release, memory_order_relaxed))
		;
}

#define OT_META(tag, st) (((uint32_t)(tag) << 4) | (uint32_t)(st))
#define OT_META_TAG(m) ((m) >> 4)
#define OT_META_STATE(m) ((m) & 3u)
#define OT_INFO(size, kind) (((uint32_t)(size) & 0xffffffu) | ((uint32_t)(kind) << 24))
#define OT_INFO_SIZE(i) ((i) & 0xffffffu)
#define OT_INFO_KIND(i) ((uint8_t)((i) >> 24))
#define OT_TAG_MAX ((1u << STRATA_NODEID_TAG_BITS) - 1)

#define OT_CHUNK_BITS 14 /* 16384 entries = 512 KiB per chunk */
#define OT_CHUNK (1u << OT_CHUNK_BITS)
#define OT_DIR_BITS (STRATA_NODEID_INDEX_BITS - OT_CHUNK_BITS)
#define OT_DIR (1u << OT_DIR_BITS)
#define OT_MAX_SHARDS 64

/* A chunk a DURABLE open left on disk: where the checkpoint keeps its
 * records. The object table only stores it; the fault function reads it.
 * Described on first use (ot_describe_fn), not at open: an open writes one
 * state byte per chunk (otable.lstate), not this record. */
typedef struct ot_lazy {
	uint64_t off;  /* file offset of the chunk's records */
	uint32_t crc;  /* CRC32C of those records */
	uint32_t nrec; /* records: entries of the chunk issued at least once */
	uint32_t nfree, nlive, nlarge; /* free + live == nrec */
	uint64_t large_bytes;
} ot_lazy;

/* otable.lstate bits of a chunk */
enum {
	OT_LZ_PENDING = 1,   /* on disk, not loaded yet */
	OT_LZ_DAMAGED = 2,   /* failed its CRC: never loaded, never reused */
	OT_LZ_DESCRIBED = 4, /* otable.lazy[slot] is filled in */
	OT_LZ_HAS_FREE = 8,  /* holds FREE entries (the checkpoint said so) */
};

/* Fills `out` (a zeroed chunk) from `src`; 0 or a status. Called with
 * otable.lazy_lock held. */
typedef int (*ot_fault_fn)(void *ctx, uint32_t shard, uint32_t chunk, const ot_lazy *src,
			   ot_entry *out);
/* Fills `out` with where chunk `chunk` of `shard` is on disk; 0 or a
 * status. Called with otable.lazy_lock held. */
typedef int (*ot_describe_fn)(void *ctx, uint32_t shard, uint32_t chunk, ot_lazy *out);

typedef struct ot_shard {
	pthread_mutex_t lock;
	uint32_t next_index; /* entries [0, next_index) were issued at least once */
	uint32_t nfree;      /* handles on the free stack */
	uint32_t free_cap;
	uint32_t *free_stack;
	_Atomic uint64_t reserved; /* entries in state RESERVED */
	uint64_t dead;       /* handles retired for good (tag exhausted) */
	_Atomic uint32_t contention;
	_Atomic(ot_entry *) *dir; /* this shard's OT_DIR slice of otable.dirs */
	uint32_t *lazy_free; /* lazy chunks holding FREE entries: faulted in when */
	uint32_t nlazy_free, lazy_free_cap; /* the free stack runs dry */
} __attribute__((aligned(CACHELINE))) ot_shard;

typedef struct otable {
	/* Every shard's chunk directory in one zero-mapped region of
	 * OT_MAX_SHARDS slices, shard s at [s * OT_DIR, (s+1) * OT_DIR):
	 * resolve indexes it with bits of the NodeID, one load instead of
	 * shard -> directory, and no bound test (unused slices stay NULL). */
	_Atomic(ot_entry *) *dirs;
	ot_shard *shards; /* shards_max of them, fixed at open */
	uint32_t shards_max;
	_Atomic uint32_t shards_active;
	/* Lazy chunks (DURABLE): a NULL directory slot whose lstate[slot] is
	 * pending is on disk; ot_fault loads it under lazy_lock. lazy[slot]
	 * is described (under lazy_lock) when first needed. */
	_Atomic uint8_t *lstate; /* OT_MAX_SHARDS * OT_DIR, zero-mapped; NULL if never lazy */
	ot_lazy *lazy;           /* the same, records */
	pthread_mutex_t lazy_lock;
	ot_fault_fn fault;
	void *fault_ctx;
	ot_describe_fn describe; /* with fault_ctx */
	bool lazy_live; /* recovery done: a fault bumps and frees FREE entries */
	_Atomic uint64_t chunks_lazy, chunks_faulted;
} otable;

int ot_init(otable *ot, uint32_t shards_max, uint32_t shards_initial);
void ot_destroy(otable *ot);
/* Issues a handle in state RESERVED with the given fields. */
int ot_alloc(otable *ot, uint64_t birth, uint64_t loc, uint32_t info, strata_node_id *id);
/* Frees the handle (tag bump; the handle is reused later). The entry must be
 * RESERVED or RETIRED and invisible to every reader. */
void ot_free(otable *ot, strata_node_id id);
/* ot_free for each of n handles, taking a shard's lock once per run of up
 * to 64 of them. */
void ot_free_ids(otable *ot, const strata_node_id *ids, size_t n);
/* Entry by raw position, for scans (NULL if never issued, or its lazy
 * chunk failed to load). Faults the chunk in. */
ot_entry *ot_entry_at(const otable *ot, uint32_t shard, uint32_t index);
/* The same with the fault's status: 0 and *e (NULL: never issued), or
 * STRATA_ECORRUPT / -errno / STRATA_ENOMEM from loading the chunk. */
int ot_entry_get(const otable *ot, uint32_t shard, uint32_t index, ot_entry **e);
/* Entry by raw position without faulting: NULL if not issued or not loaded. */
ot_entry *ot_entry_peek(const otable *ot, uint32_t shard, uint32_t index);
/* Loads directory slot `slot` if it is lazy; *chunk: the chunk or NULL. */
int ot_fault(const otable *ot, uint32_t slot, ot_entry **chunk);
/* Loads every lazy chunk (checks that scan the whole table). */
int ot_load_all(otable *ot);
/* Recovery: chunk `chunk` of `shard` is on disk (before ot_extend); its
 * record comes from ot->describe when first needed. */
int ot_set_lazy(otable *ot, uint32_t shard, uint32_t chunk, bool has_free);
static inline bool ot_is_lazy(const otable *ot, uint32_t slot)
{
	return ot->lstate &&
	       (atomic_load_explicit(&ot->lstate[slot], memory_order_acquire) & OT_LZ_PENDING);
}
/* slot's record, described now if it was not (lazy_lock held); NULL if
 * the description failed (the status in *rc). */
ot_lazy *ot_lazy_locked(otable *ot, uint32_t slot, int *rc);
/* A copy of slot's record, taking lazy_lock; 0 or a status. */
int ot_lazy_get(otable *ot, uint32_t slot, ot_lazy *out);
void ot_counts(otable *ot, uint64_t *reserved, uint64_t *free, uint64_t *total);
/* Entry of id's position if its chunk is in memory, else NULL (never
 * faults; no tag check). One directory load: every shard's slice of
 * `dirs` exists, so no bound test either. */
_Static_assert(sizeof(ot_entry) << 1 == 1u << STRATA_NODEID_SHARD_BITS,
	       "ot_entry_loaded: the index sits one bit above its entry's byte offset");
static inline ot_entry *ot_entry_loaded(const otable *ot, strata_node_id id)
{
	/* Straight from the NodeID's bits (~20 M lookups per 1M X-tree
	 * inserts): the slot is shard << OT_DIR_BITS | the index's chunk, and
	 * the index's low bits * 32, the entry's byte offset in its chunk, are
	 * the id shifted right by one, masked. */
	uint32_t slot = STRATA_NODEID_SHARD(id) << OT_DIR_BITS |
			((uint32_t)(id >> (STRATA_NODEID_SHARD_BITS + OT_CHUNK_BITS)) & (OT_DIR - 1));
	char *chunk = (char *)atomic_load_explicit(&ot->dirs[slot], memory_order_acquire);
	uint64_t off = (id >> 1) & ((uint64_t)(OT_CHUNK - 1) * sizeof(ot_entry));
	return chunk ? (ot_entry *)(chunk + off) : NULL;
}
/* e if it holds id (tag matches, any state but FREE), else NULL. */
static inline ot_entry *ot_entry_match(ot_entry *e, strata_node_id id)
{
	uint32_t m = atomic_load_explicit(&e->meta, memory_order_acquire);
	return OT_META_TAG(m) == STRATA_NODEID_TAG(id) && OT_META_STATE(m) != OT_FREE ? e : NULL;
}
/* ot_entry_of's way when id's chunk is not in memory: faults it in. */
ot_entry *ot_entry_of_fault(const otable *ot, strata_node_id id);
/* Entry for id if its tag matches (any state but FREE), else NULL. No
 * visibility check: callers apply the MVCC rule. Inline: commit and
 * reclamation resolve every node they stamp or free (~4 per copied node). */
static inline ot_entry *ot_entry_of(const otable *ot, strata_node_id id)
{
	ot_entry *e = ot_entry_loaded(ot, id);
	if (STRATA_UNLIKELY(!e))
		return ot_entry_of_fault(ot, id);
	return ot_entry_match(e, id);
}
/* Recovery (single-threaded): entries [0, n) of a shard exist. */
int ot_extend(otable *ot, uint32_t shard, uint32_t n);
/* Recovery: free stacks from the FREE entries, tags bumped. */
int ot_rebuild_free(otable *ot);
/* Directory slot of a NodeID in otable.dirs. */
static inline uint32_t ot_dir_slot(strata_node_id id)
{
	return (STRATA_NODEID_SHARD(id) << OT_DIR_BITS) | (STRATA_NODEID_INDEX(id) >> OT_CHUNK_BITS);
}
static inline strata_node_id ot_make_id(uint32_t shard, uint32_t index, uint32_t tag)
{
	return ((uint64_t)tag << 36) | ((uint64_t)index << 6) | shard;
}

/* ---- pins: the reader table (pin.c) -------------------------------------- */
/* A snapshot is one slot of the reader table; a transaction holds one too.
 * `pin` is what reclamation reads (0 = slot free); `epoch` is the reader's
 * own copy. */
struct strata_snapshot {
	_Atomic uint64_t pin;
	uint64_t key; /* stamp_key(pinned epoch): compared with entry stamps */
	_Atomic uint64_t cgen; /* pin_table.gen when pinned (the cache's grace) */
	/* Copy of otable.dirs: resolve reads nothing but this cache line,
	 * the directory slot and the entry. */
	_Atomic(ot_entry *) *dirs;
	strata_store *store;
	uint32_t index;
	_Atomic uint8_t kind; /* PIN_SNAPSHOT, PIN_TXN, PIN_CHECKPOINT: set before the pin */
	/* Set by reclamation when the snapshot passed a cap; its next call
	 * gives up the pin and returns STRATA_ESNAPSHOT_TOO_OLD (snapshot.c). */
	_Atomic uint8_t expire;
	_Atomic uint64_t opened_ns; /* CLOCK_MONOTONIC_COARSE at open */
	_Atomic uint64_t hits; /* bounded-cache hits; written by the owner only */
} __attribute__((aligned(CACHELINE)));

static inline uint64_t snap_epoch(const struct strata_snapshot *s)
{
	return stamp_val(s->key);
}

enum { PIN_SNAPSHOT = 0, PIN_TXN = 1, PIN_CHECKPOINT = 2 };
/* An expired snapshot's pin: not free (its slot stays its own until close),
 * and above every epoch, so it holds nothing back. */
#define PIN_EXPIRED UINT64_MAX

typedef struct pin_table {
	struct strata_snapshot *slots;
	uint32_t nslots;
	_Atomic uint32_t hwm; /* slots at or above hwm were never claimed */
	/* Bumped by every unlinking of a cached image (cache.c): an image
	 * unlinked at g may be held by slots pinned with cgen <= g. */
	_Atomic uint64_t gen;
	_Atomic uint64_t hits_closed; /* hits of slots since released */
} pin_table;

/* A bounded-cache hit by the owner of slot s: a plain increment (a relaxed
 * load and store; only the owner writes it), no locked instruction. */
static inline void pin_count_hit(struct strata_snapshot *s)
{
	atomic_store_explicit(&s->hits, atomic_load_explicit(&s->hits, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}
/* Hits of every slot, open or released. */
uint64_t pin_hits(pin_table *pt);

int pin_init(pin_table *pt, strata_store *store, const otable *ot, uint32_t nslots);
void pin_destroy(pin_table *pt);
/* Claims a slot and pins the current epoch (see pin.c for why it is safe). */
struct strata_snapshot *pin_acquire(pin_table *pt, _Atomic uint64_t *epoch_current, uint8_t kind);
/* Gives up the pin of an expired snapshot (its slot stays claimed). */
void pin_expire(struct strata_snapshot *s);
uint64_t pin_now_ns(void);
void pin_release(pin_table *pt, struct strata_snapshot *s);
/* min(gen + 1, cgen of every pinned slot): images unlinked below it are
 * unreachable. */
uint64_t pin_oldest_gen(pin_table *pt);
/* min(current epoch, every pinned epoch). */
uint64_t pin_oldest(pin_table *pt, _Atomic uint64_t *epoch_current);
/* Slots in use (snapshots + transactions). A scan: no shared counter is
 * written on the open/close path. */
uint32_t pin_count(pin_table *pt);

/* ---- root catalog (catalog.c) -------------------------------------------- */
typedef struct root_version {
	uint64_t epoch;
	strata_node_id id;
	struct root_version *_Atomic next; /* older */
} root_version;

typedef struct root {
	pthread_mutex_t lock; /* held by the transaction that names this root */
	root_version *_Atomic head; /* newest first; NULL: never committed */
	size_t name_len;
	char name[];
} root;

typedef struct root_dir {
	uint32_t n;
	root *roots[]; /* sorted by name */
} root_dir;

typedef struct catalog {
	pthread_mutex_t lock; /* serializes creation of names */
	root_dir *_Atomic dir;
} catalog;

int catalog_init(catalog *c);
void catalog_destroy(catalog *c);
int catalog_name_ok(const char *name, size_t *len);
root *catalog_find(catalog *c, const char *name, size_t len);
int catalog_get_or_create(catalog *c, const char *name, size_t len, root **out);
/* Newest version with epoch <= e, or NULL. */
const root_version *root_version_at(const root *r, uint64_t e);
int root_publish(root *r, uint64_t epoch, strata_node_id id);
/* Frees versions no reader at epoch >= oldest can reach. */
void catalog_trim(catalog *c, uint64_t oldest);

/* ---- reclamation (reclaim.c) --------------------------------------------- */
typedef struct reclaim_batch {
	struct reclaim_batch *next;
	uint64_t epoch; /* retire epoch of every node in it */
	uint64_t bytes;
	uint32_t n;
	strata_node_id ids[];
} reclaim_batch;

typedef struct reclaimer {
	pthread_mutex_t qlock;  /* the queue */
	pthread_mutex_t run;    /* one reclamation at a time */
	reclaim_batch *head, *tail;
	_Atomic uint64_t pending_nodes, pending_bytes;
	_Atomic uint64_t runs, freed_nodes, freed_bytes;
} reclaimer;

int reclaim_init(reclaimer *r);
void reclaim_destroy(strata_store *s);
void reclaim_enqueue(reclaimer *r, reclaim_batch *b);
int64_t reclaim_run(strata_store *s, bool wait);
/* Bounded cache (cache.c; 0 without one): images waiting for grace, all of
 * them, and those a pinned slot may still hold. */
uint64_t store_grace_bytes(strata_store *s);
uint64_t store_grace_held(strata_store *s, struct strata_snapshot *p);
/* Retired nodes/bytes queued whose epoch is above `oldest`: what pins hold. */
void reclaim_held_back(reclaimer *r, uint64_t oldest, uint64_t *nodes, uint64_t *bytes);

/* ---- the store ------------------------------------------------------------ */
struct strata_store {
	strata_options opts;
	_Atomic uint64_t epoch_current; /* last published epoch; starts at 1 */
	_Atomic uint64_t next_txn;      /* transaction markers */
	pthread_mutex_t commit_lock;    /* orders publication of epochs */
	otable ot;
	seg_alloc seg;
	pin_table pins;
	catalog cat;
	reclaimer rec;
	/* DURABLE mode state; NULL IN_MEMORY. Atomic: strata_make_durable sets
	 * it on a live store (under the commit lock). */
	struct durable *_Atomic dur;
	_Atomic uint64_t nodes_live, nodes_retired;
	_Atomic uint64_t commits, aborts, commits_since_reclaim;
	_Atomic uint64_t snapshots_expired;
	_Atomic uint32_t txns_open;
	/* strata_check's gate: checks in progress (new write transactions wait
	 * while it is non-zero) and the condition both sides wait on. */
	_Atomic uint32_t gate_closed;
	pthread_mutex_t gate_lock;
	pthread_cond_t gate_cond;
};

/* Closes the gate: new write transactions wait (STRATA_TXN_NOWAIT ones
 * get STRATA_EBUSY), and this waits until none is open, at most wait_ms.
 * STRATA_EBUSY, gate open again, if they did not all end in time. */
int txn_gate_close(strata_store *s, unsigned wait_ms);
void txn_gate_open(strata_store *s);

/* Node bytes of every allocated slot and large image. */
uint64_t store_requested_bytes(strata_store *s);
/* Frees a node's memory and its handle (reclaim and abort paths). */
void store_free_node(strata_store *s, strata_node_id id, ot_entry *e);
/* store_free_node for n (at most SEG_FREE_RUN) nodes, e[i] holding ids[i]:
 * the allocator's and the object table's locks once per run, not per node. */
void store_free_nodes(strata_store *s, const strata_node_id *ids, ot_entry *const *e, uint32_t n);
/* Node memory for an entry (IN_MEMORY: the pointer itself). */
static inline void *entry_data(const ot_entry *e)
{
	return (void *)(uintptr_t)atomic_load_explicit(&e->loc, memory_order_relaxed);
}

/* TSan cannot see the ordering liburcu establishes inside its
 * uninstrumented code; these tell it. No-ops in other builds. */
#if defined(__SANITIZE_THREAD__)
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define TSAN_ACQUIRE(a) __tsan_acquire((void *)(a))
#define TSAN_RELEASE(a) __tsan_release((void *)(a))
#else
#define TSAN_ACQUIRE(a) ((void)0)
#define TSAN_RELEASE(a) ((void)0)
#endif

#endif /* STRATA_INTERNAL_H */
