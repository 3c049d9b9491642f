/*
 * durable.h — DURABLE mode: what a store keeps besides the in-memory
 * substrate (files, WAL, publication queue, checkpoint state, limbo).
 *
 *   durable.c     open/create, recovery, close, the commit hook, the
 *                 coordinator thread (ASYNC syncs, checkpoint policy),
 *                 lazy loading of node images
 *   checkpoint.c  writing and loading checkpoint files (design/FORMAT.md)
 *
 * Publication: in DURABLE mode an epoch is assigned and stamped at commit
 * but published (made visible to snapshots) in order, and a SYNC commit only
 * once its WAL frames are durable. The queue `pq` holds assigned, not yet
 * published commits.
 *
 * Limbo: a slot whose node the durable checkpoint references must not be
 * overwritten before a newer checkpoint is durable, or a crash during that
 * newer checkpoint would find the old one pointing at foreign bytes. Such
 * slots wait in `limbo` and return to the allocator when the next
 * checkpoint completes.
 */
#ifndef STRATA_DURABLE_H
#define STRATA_DURABLE_H
#include "internal.h"
#include "io.h"
#include "superblock.h"
#include "wal.h"

#define LOAD_LOCKS 64
#define LAZY_BIT 1ull   /* in ot_entry.loc: image not loaded yet */
#define CACHED_BIT 2ull /* in ot_entry.loc: a cache node (bounded cache, cache.c) */
#define LOC_BITS 3ull
/* Only with LAZY_BIT clear: a large image on disk is (offset << 1) | 1,
 * and its offset may be odd. */
#define LOC_CACHED(loc) (((loc) & LOC_BITS) == CACHED_BIT)

/* cache.c: an image in the bounded cache (see cache.c for the states). */
typedef struct cnode {
	void *image;
	strata_node_id id;
	uint64_t slot; /* its place in `data` (a segment memory address) */
	uint64_t gen;  /* GONE: the pin generation it was unlinked at */
	uint32_t size;
	_Atomic uint8_t ref; /* hit since the hand last looked */
	uint8_t state, queue;
} cnode;

typedef struct ncache {
	uint64_t cap; /* cache_bytes; 0: no bound (images stay in their slots) */
	pthread_mutex_t lock; /* queues, grace, cnode states; a leaf lock */
	cnode **a1; /* probation FIFO (a ring) */
	size_t a1_head, a1_n, a1_cap;
	uint64_t a1_bytes;
	cnode **am; /* main CLOCK ring */
	size_t am_n, am_cap, am_hand;
	cnode **grace; /* unlinked, waiting for older pins to go */
	size_t grace_head, grace_n, grace_cap; /* live part: [grace_head, grace_n) */
	_Atomic uint64_t used, dirty, grace_bytes;
	_Atomic uint64_t misses, evictions, bytes_read;
} ncache;

typedef struct pub_entry {
	uint64_t epoch;
	uint64_t start_lsn, end_lsn;
	bool sync;
	bool ready; /* the commit's stamps and root versions are in place */
} pub_entry;

typedef struct limbo_item {
	void *p;
	uint32_t size;
} limbo_item;

/* compact.c: an old slot waiting for readers pinned before `gen`. */
typedef struct slot_wait {
	void *p;
	uint32_t size;
	uint64_t gen;
} slot_wait;

typedef struct durable {
	io_env *env;
	char *dir;
	io_file *lock_file, *super, *data, *ckpt;
	sb_cell sbc;      /* the current superblock, for in-process readers */
	sb_state sb;      /* what the last superblock write holds */
	wal *wal;
	wal_config wcfg;
	strata_durability default_durability;
	_Atomic int poisoned; /* first I/O error; every later write fails */

	/* publication (pub_lock) */
	pthread_mutex_t pub_lock;
	pthread_cond_t pub_cond;
	pub_entry *pq;
	size_t pq_head, pq_n, pq_cap;
	uint64_t epoch_assigned; /* under the commit lock */

	/* checkpoints (ckpt_lock: one at a time) */
	pthread_mutex_t ckpt_lock;
	/* Read-modify-write of `sb` and its write to SUPER (checkpoint flips,
	 * the clean flag); taken after ckpt_lock or commit_lock, never before. */
	pthread_mutex_t sb_lock;
	/* Opened after a clean close, nothing appended yet: the first commit
	 * clears SB_FLAG_CLEAN first (wal.h WAL_REPLAY_CLEAN). commit_lock. */
	bool clean_pending;
	/* read by committers and the coordinator without ckpt_lock */
	_Atomic uint64_t ckpt_lsn; /* WAL start of the durable checkpoint */
	_Atomic uint64_t ckpt_ns;  /* when it completed (CLOCK_MONOTONIC) */
	/* The current checkpoint file `ckpt`, which chunks and large images
	 * still on disk are read from: these fields change only under
	 * otable.lazy_lock (ckpt_load, ckpt_adopt). */
	uint64_t ckpt_large_off; /* its large section */
	uint64_t ckpt_size, ckpt_file_epoch;
	bool ckpt_copying; /* a checkpoint is copying chunks out of it */
	/* Its chunk index, mapped: lazy chunks are described from it when
	 * first needed (ckpt_describe_chunk); record ci_first[s] + c is chunk
	 * c of shard s, for c < ci_n[s]. Dropped at the first adoption (which
	 * has described every chunk still lazy) or at close. */
	const uint8_t *ckpt_ci;
	uint64_t ckpt_ci_len;
	uint32_t ci_first[OT_MAX_SHARDS], ci_n[OT_MAX_SHARDS];
	/* The open's used-slot bitmaps, mapped from `ckpt` while segments
	 * lack headers (segment.c "Open"); ckpt_drop_bitmaps ends it. */
	const void *lazy_bm;
	uint64_t lazy_bm_len;
	/* read: a lazy large image is being read from `ckpt`; write: ckpt_adopt
	 * changes the file and re-addresses such images */
	pthread_rwlock_t file_lock;

	/* Held while slots leave limbo, `moved` or `sgrace` and are freed
	 * (limbo_release, compact_sweep), and by strata_check while it counts
	 * those lists and the classes' used slots: it sees a slot in a list or
	 * free, never taken out of one and not yet freed (which read as a slot
	 * used by no entry, "class k: n+1 slots used, n entries", in 2 of ~4400
	 * crash-campaign recoveries, whose open checkpoints in the
	 * background). Taken before limbo_lock and the class locks. */
	pthread_mutex_t free_lock;
	/* limbo (limbo_lock); ckpt_epoch read under it */
	pthread_mutex_t limbo_lock;
	uint64_t ckpt_epoch; /* nodes born at or before it are in `data` */
	limbo_item *limbo;
	size_t nlimbo, limbo_cap;
	/* compaction (compact.c), also under limbo_lock: old slots of moved
	 * nodes until the checkpoint naming the new ones is durable, then
	 * until no reader pinned before that can hold them */
	limbo_item *moved;
	size_t nmoved, moved_cap;
	slot_wait *sgrace;
	size_t nsgrace, sgrace_cap;
	_Atomic uint64_t compact_rounds, compact_moved_nodes, compact_moved_bytes,
		compact_segments_freed;

	/* lazy loading, and the bounded cache (cache.cap > 0) */
	pthread_mutex_t load_locks[LOAD_LOCKS];
	ncache cache;

	/* the coordinator thread */
	pthread_t thread;
	bool thread_running, stop;
	bool kicked; /* a wake-up not yet seen (wake_lock): none is lost */
	pthread_mutex_t wake_lock;
	pthread_cond_t wake;
	uint32_t async_ms, ckpt_ms;
	uint64_t ckpt_wal_bytes, ckpt_dirty;
	_Atomic uint64_t dirty; /* nodes logged since the last checkpoint began */
	char report[512]; /* what recovery did */
	struct root *replay_root; /* recovery: the root the last ROOT frame named */
} durable;

/* store.c calls these for STRATA_DURABLE. */
int durable_open(strata_store *s, const strata_options *o);
int durable_open_env(strata_store *s, const strata_options *o, io_env *env);
/* strata_open / strata_make_durable with a given file system (tests use
 * the simulator). */
int store_open_env(const strata_options *opts, io_env *env, strata_store **out);
int make_durable_env(strata_store *s, const char *dir, io_env *env);
int durable_close(strata_store *s); /* final checkpoint, files closed */
void durable_free(strata_store *s); /* memory only (after a failed open too) */

/* The commit path (txn.c), commit lock held: log the transaction's changes
 * for epoch E. On error nothing was logged and nothing may be stamped. */
int durable_log_commit(strata_store *s, const wal_rec *recs, size_t n, uint64_t E,
		       strata_durability d, uint64_t *end_lsn);
/* Still under the commit lock, once E's nodes are stamped and its root
 * versions published: E may now be published (never before). */
void durable_commit_ready(strata_store *s, uint64_t E);
/* Tests only (NULL otherwise): called by a DURABLE commit between its WAL
 * append and its stamps, the window no publication may cross. */
extern void (*txn_test_after_log)(strata_store *s, uint64_t E);
/* Tests: called by limbo_release between taking the slots out of limbo and
 * freeing them (free_lock held). */
extern void (*durable_test_limbo_out)(strata_store *s);
/* After the commit lock is released: wait as the durability asks, and
 * until E is published. Returns the commit's status. */
int durable_finish_commit(strata_store *s, uint64_t E, uint64_t end_lsn, strata_durability d);

/* A node's image, loading it on first use (resolve's slow path). */
int durable_load(strata_store *s, ot_entry *e, strata_node_id id, const void **data);
/* Memory for a new node (bounded cache: a slot plus a dirty cache image). */
int durable_new_image(strata_store *s, uint32_t size, uint64_t *loc, void **image);
/* Frees a node's slot, through limbo if the durable checkpoint has it. */
void durable_free_slot(strata_store *s, void *p, uint32_t size, uint64_t birth, uint64_t retire);
/* CRC cell of an entry (create: allocate its chunk). NULL if absent. */

void durable_poison(strata_store *s, int err);
/* strata_stats: live_bytes, file_bytes, space_amplification. requested:
 * node bytes of every allocated slot and large image. */
void durable_space(strata_store *s, uint64_t requested, strata_store_stats *st);

/* compact.c (ckpt_lock held) */
int compact_round(strata_store *s, uint64_t budget, uint64_t *moved);
int compact_finish(strata_store *s); /* frees what grace allows, trims `data` */
void compact_moved_release(strata_store *s); /* limbo_lock held */
void compact_sweep(strata_store *s);

/* cache.c */
int cache_init(ncache *c, uint64_t cap);
void cache_destroy(ncache *c);
void cache_free_dirty(ncache *c, uint64_t loc);
/* A new node's image (its slot allocated): DIRTY until a checkpoint writes
 * it. *loc: the entry's location; set the NodeID with cache_set_id. */
int cache_new_dirty(strata_store *s, void *slot, uint32_t size, uint64_t *loc, void **image);
void cache_set_id(uint64_t loc, strata_node_id id);
int cache_load(strata_store *s, ot_entry *e, strata_node_id id, uint64_t loc, uint32_t size,
	       const void **out);
const void *cache_hit(uint64_t loc); /* sets the hit byte */
void *cache_image(uint64_t loc);
uint64_t cache_slot(uint64_t loc);
void cache_move_slot(uint64_t loc, void *slot); /* cache lock held */
void cache_clean(strata_store *s, uint64_t loc);
uint64_t cache_drop(strata_store *s, ot_entry *e);
void cache_trim(strata_store *s);
void cache_stats(const ncache *c, strata_store_stats *st);

/* An entry's image in memory (loc not LAZY), and its slot (small nodes). */
static inline void *loc_image(uint64_t loc)
{
	return LOC_CACHED(loc) ? cache_image(loc) : (void *)(uintptr_t)(loc & ~LOC_BITS);
}
static inline void *loc_slot(uint64_t loc)
{
	return (void *)(uintptr_t)(LOC_CACHED(loc) ? cache_slot(loc) : loc & ~LOC_BITS);
}
/* The location to free for entry e (drops its cnode in a bounded cache). */
static inline uint64_t durable_loc_for_free(strata_store *s, ot_entry *e)
{
	return s->dur->cache.cap ? cache_drop(s, e) : atomic_load(&e->loc);
}
int durable_checkpoint(strata_store *s);

/* checkpoint.c */
/* One object-table chunk of a checkpoint file (its chunk index row). */
typedef struct ckpt_chunk {
	uint32_t slot; /* directory slot: shard << OT_DIR_BITS | chunk */
	uint32_t nrec, crc, nfree, nlive, nlarge;
	uint64_t off, large_bytes;
	bool copied; /* copied from the previous file: it was still on disk */
} ckpt_chunk;

/* A large image copied from the previous file: where its entry points. */
typedef struct ckpt_reloc {
	strata_node_id id;
	uint64_t old_loc; /* the entry's lazy location when copied */
	uint64_t new_off; /* its offset in the new large section */
} ckpt_reloc;

typedef struct ckpt_written {
	uint64_t size, epoch, large_off;
	uint32_t header_crc;
	ckpt_chunk *chunks; /* for ckpt_adopt */
	uint32_t nchunks;
	ckpt_reloc *reloc;
	size_t nreloc, reloc_cap;
} ckpt_written;
int ckpt_write(strata_store *s, uint64_t gen, uint64_t epoch, uint64_t wal_lsn, uint64_t prev_epoch,
	       ckpt_written *out);
/* After the superblock names the checkpoint `w` (file f, open read-only):
 * it becomes the file chunks and large images on disk are read from. */
void ckpt_adopt(strata_store *s, ckpt_written *w, io_file *f);
void ckpt_drop_bitmaps(strata_store *s, io_file *f, bool build);
void ckpt_written_free(ckpt_written *w);
/* Opens checkpoint `gen` of the store read-only. */
int ckpt_open_read(durable *d, uint64_t gen, io_file **f);
int ckpt_load(strata_store *s, const sb_state *sb);
/* Format version ckpt_write writes (3; tests set 2 to make older files). */
extern uint32_t ckpt_write_version;
/* otable describe function (ot_describe_fn): a lazy chunk's record from
 * the mapped chunk index. */
int ckpt_describe_chunk(void *ctx, uint32_t shard, uint32_t chunk, ot_lazy *out);
void ckpt_drop_index(durable *d, io_file *f);
/* otable fault function (ot_fault_fn): reads and checks one chunk. */
int ckpt_fault_chunk(void *ctx, uint32_t shard, uint32_t chunk, const ot_lazy *src, ot_entry *out);

/* A thread-local message for strata_last_error(). */
void store_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#endif
