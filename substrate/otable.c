/*
 * otable.c — the sharded object table: NodeID -> 32-byte entry.
 *
 * Each shard owns a directory of OT_DIR chunk pointers (a slice of one
 * anonymous mapping for all shards: untouched pages cost nothing) and chunks
 * of OT_CHUNK entries, allocated as the shard grows and never moved or freed
 * before close. So readers resolve without locks: directory slot (acquire)
 * -> entry.
 *
 * Writers (issue and free of handles) take the shard's mutex. Shards are
 * activated progressively: a store starts with ot_shards_initial active
 * shards and doubles the count (up to ot_shards_max) when a shard's lock is
 * found contended CONTENTION_LIMIT times, or when a shard runs out of
 * indexes. Resolving never depends on the active count.
 *
 * Entry invariants:
 *   - the tag in meta only grows, by exactly one at each free; a handle whose
 *     tag would pass OT_TAG_MAX is never reused (counted in `dead`);
 *   - a FREE entry's index is on its shard's free stack exactly once (unless
 *     dead); the tag of a never-issued entry is 0, so it matches no NodeID;
 *   - a chunk a DURABLE open left on disk (lazy) has a NULL directory slot
 *     and a pending state byte (lstate; its ot_lazy record is described
 *     from the checkpoint when first needed, so an open writes one byte
 *     per chunk, not 40); the first access faults it in
 *     (ot_fault, under lazy_lock) and publishes it with release, so the
 *     resolve path pays nothing for laziness. Its FREE entries go on the
 *     free stack at that moment, collected before publication (an entry
 *     freed after it was published is pushed by ot_free, never twice);
 *   - writers change meta before the other fields, which they store with
 *     release; readers load the fields with acquire and then re-read meta,
 *     so a reader that sees any new field sees the new tag (a seqlock
 *     without fences: free on x86, and TSan understands it).
 */
#include <string.h>

#include "internal.h"

#define CONTENTION_LIMIT 64

static _Thread_local uint32_t tl_shard_seed;
static _Atomic uint32_t shard_seed_next = 1;

static uint32_t my_seed(void)
{
	if (!tl_shard_seed) {
		/* Fibonacci hashing spreads consecutive thread numbers. The +1
		 * keeps 0 free as "unset" without fixing the low bit (| 1 made
		 * every home shard odd: with two active shards all threads
		 * shared shard 1). */
		uint32_t n = atomic_fetch_add_explicit(&shard_seed_next, 1, memory_order_relaxed);
		tl_shard_seed = ((n * 2654435769u) >> 8) + 1;
	}
	return tl_shard_seed;
}

int ot_init(otable *ot, uint32_t shards_max, uint32_t shards_initial)
{
	memset(ot, 0, sizeof *ot);
	ot->shards = strata_mem_calloc(shards_max, sizeof *ot->shards);
	if (!ot->shards)
		return STRATA_ENOMEM;
	ot->shards_max = shards_max;
	/* All 64 shards' directories, whatever shards_max: a NodeID naming a
	 * shard past shards_max finds a NULL slot (stale) with no bound test
	 * on the resolve path. Untouched pages cost nothing. */
	ot->dirs = strata_mem_zmap(sizeof(*ot->dirs) * OT_DIR * OT_MAX_SHARDS);
	if (!ot->dirs) {
		strata_mem_free(ot->shards, sizeof(ot_shard) * shards_max);
		return STRATA_ENOMEM;
	}
	pthread_mutex_init(&ot->lazy_lock, NULL);
	for (uint32_t i = 0; i < shards_max; i++) {
		pthread_mutex_init(&ot->shards[i].lock, NULL);
		ot->shards[i].dir = ot->dirs + (size_t)i * OT_DIR;
	}
	atomic_store(&ot->shards_active, shards_initial);
	return 0;
}

void ot_destroy(otable *ot)
{
	if (!ot->shards)
		return;
	for (uint32_t i = 0; i < ot->shards_max; i++) {
		ot_shard *sh = &ot->shards[i];
		/* Chunks below next_index, some maybe never loaded (lazy). */
		for (uint64_t c = 0; c * OT_CHUNK < sh->next_index; c++) {
			ot_entry *chunk = atomic_load_explicit(&sh->dir[c], memory_order_relaxed);
			if (chunk)
				strata_mem_zunmap(chunk, sizeof(ot_entry) * OT_CHUNK);
		}
		strata_mem_free(sh->free_stack, sizeof(uint32_t) * sh->free_cap);
		strata_mem_free(sh->lazy_free, sizeof(uint32_t) * sh->lazy_free_cap);
		pthread_mutex_destroy(&sh->lock);
	}
	strata_mem_zunmap(ot->dirs, sizeof(*ot->dirs) * OT_DIR * OT_MAX_SHARDS);
	if (ot->lazy)
		strata_mem_zunmap(ot->lazy, sizeof(ot_lazy) * OT_DIR * OT_MAX_SHARDS);
	if (ot->lstate)
		strata_mem_zunmap((void *)ot->lstate, (size_t)OT_DIR * OT_MAX_SHARDS);
	pthread_mutex_destroy(&ot->lazy_lock);
	strata_mem_free(ot->shards, sizeof(ot_shard) * ot->shards_max);
	ot->shards = NULL;
}

static void grow_active(otable *ot, uint32_t seen)
{
	if (seen < ot->shards_max)
		atomic_compare_exchange_strong(&ot->shards_active, &seen, seen * 2);
}

static void lock_shard(otable *ot, ot_shard *sh, uint32_t active)
{
	if (pthread_mutex_trylock(&sh->lock) == 0)
		return;
	if (atomic_fetch_add_explicit(&sh->contention, 1, memory_order_relaxed) + 1 >=
	    CONTENTION_LIMIT) {
		atomic_store_explicit(&sh->contention, 0, memory_order_relaxed);
		grow_active(ot, active);
	}
	pthread_mutex_lock(&sh->lock);
}

#define TAKE_FAULT (UINT32_MAX - 2) /* *tag: a lazy chunk to fault in first */

/* Pops a handle off the shard's free stack (lock held, nfree > 0). */
static inline uint32_t pop_free(ot_shard *sh, uint32_t *tag)
{
	uint32_t idx = sh->free_stack[--sh->nfree];
	ot_entry *chunk = atomic_load_explicit(&sh->dir[idx >> OT_CHUNK_BITS], memory_order_relaxed);
	/* The next pop's entry is a cold line (freed long ago): ask for it
	 * now, while the caller builds this node. */
	if (sh->nfree) {
		uint32_t nx = sh->free_stack[sh->nfree - 1];
		const ot_entry *nc = atomic_load_explicit(&sh->dir[nx >> OT_CHUNK_BITS],
							  memory_order_relaxed);
		if (nc)
			__builtin_prefetch(&nc[nx & (OT_CHUNK - 1)], 1);
	}
	*tag = OT_META_TAG(atomic_load_explicit(&chunk[idx & (OT_CHUNK - 1)].meta, memory_order_relaxed));
	return idx;
}

/* Takes an index from the shard (lock held); UINT32_MAX if exhausted. */
static uint32_t take_index(const otable *ot, ot_shard *sh, uint32_t *tag)
{
	/* Handles on disk come before new ones: a reopened store reuses them. */
	while (!sh->nfree && sh->nlazy_free) {
		uint32_t c = sh->lazy_free[--sh->nlazy_free];
		if (ot_is_lazy(ot, (uint32_t)(sh - ot->shards) << OT_DIR_BITS | c)) {
			*tag = c;
			return TAKE_FAULT;
		}
	}
	if (sh->nfree)
		return pop_free(sh, tag);
	uint32_t idx = sh->next_index;
	if (idx >= (1u << STRATA_NODEID_INDEX_BITS))
		return UINT32_MAX;
	uint32_t c = idx >> OT_CHUNK_BITS;
	if (ot_is_lazy(ot, (uint32_t)(sh - ot->shards) << OT_DIR_BITS | c)) {
		*tag = c; /* the last chunk, partly issued, is still on disk */
		return TAKE_FAULT;
	}
	if (!atomic_load_explicit(&sh->dir[c], memory_order_relaxed)) {
		ot_entry *chunk = strata_mem_zmap(sizeof(ot_entry) * OT_CHUNK);
		if (!chunk)
			return UINT32_MAX - 1;
		atomic_store_explicit(&sh->dir[c], chunk, memory_order_release);
	}
	sh->next_index = idx + 1;
	*tag = 1;
	return idx;
}

/* Shard si's lock held: handle idx becomes a RESERVED entry with the given
 * fields, and the lock is released. */
static inline __attribute__((always_inline)) strata_node_id
issue(ot_shard *sh, uint32_t si, uint32_t idx, uint32_t tag, uint64_t birth, uint64_t loc, uint32_t info)
{
	ot_entry *e = &atomic_load_explicit(&sh->dir[idx >> OT_CHUNK_BITS],
					    memory_order_relaxed)[idx & (OT_CHUNK - 1)];
	/* meta first; the release stores after it let a reader that sees any
	 * new field also see the new tag on its re-check. */
	atomic_store_explicit(&e->meta, OT_META(tag, OT_RESERVED), memory_order_relaxed);
	ot_stamp_init(e, birth, EPOCH_INF, 0, memory_order_release);
	atomic_store_explicit(&e->loc, loc, memory_order_release);
	atomic_store_explicit(&e->info, info, memory_order_release);
	atomic_fetch_add_explicit(&sh->reserved, 1, memory_order_relaxed);
	pthread_mutex_unlock(&sh->lock);
	return ot_make_id(si, idx, tag);
}

/* ot_alloc when the home shard's free stack is empty (its lock held, at
 * the `active` seen): the shards in turn, faulting in chunks on disk,
 * activating more shards when all are out of indexes. */
static __attribute__((noinline)) int alloc_slow(otable *ot, uint32_t seed, uint32_t active,
						uint64_t birth, uint64_t loc, uint32_t info,
						strata_node_id *id)
{
	bool locked = true;
	for (;;) {
		for (uint32_t t = 0; t < active; t++) {
			uint32_t si = (seed + t) & (active - 1);
			ot_shard *sh = &ot->shards[si];
			if (!locked)
				lock_shard(ot, sh, active);
			locked = false;
			uint32_t tag;
			uint32_t idx = take_index(ot, sh, &tag);
			if (idx == TAKE_FAULT) {
				pthread_mutex_unlock(&sh->lock);
				ot_entry *chunk;
				/* A damaged or unreadable chunk gives no handle: the
				 * next shard is tried (a damaged one fails at once). */
				if (ot_fault(ot, si << OT_DIR_BITS | tag, &chunk) == 0)
					t--; /* loaded: the same shard again */
				continue;
			}
			if (idx == UINT32_MAX - 1) {
				pthread_mutex_unlock(&sh->lock);
				return STRATA_ENOMEM;
			}
			if (idx == UINT32_MAX) {
				pthread_mutex_unlock(&sh->lock);
				continue;
			}
			*id = issue(sh, si, idx, tag, birth, loc, info);
			return 0;
		}
		/* Every active shard is out of indexes. */
		if (active >= ot->shards_max)
			return STRATA_EFULL;
		grow_active(ot, active);
		active = atomic_load_explicit(&ot->shards_active, memory_order_relaxed);
	}
}

/* The common case, a handle off the home shard's free stack, is kept
 * apart from the loop over shards: ~20 fewer instructions per node. */
int ot_alloc(otable *ot, uint64_t birth, uint64_t loc, uint32_t info, strata_node_id *id)
{
	uint32_t seed = my_seed();
	uint32_t active = atomic_load_explicit(&ot->shards_active, memory_order_relaxed);
	uint32_t si = seed & (active - 1);
	ot_shard *sh = &ot->shards[si];
	lock_shard(ot, sh, active);
	if (STRATA_UNLIKELY(!sh->nfree))
		return alloc_slow(ot, seed, active, birth, loc, info, id);
	uint32_t tag;
	uint32_t idx = pop_free(sh, &tag);
	*id = issue(sh, si, idx, tag, birth, loc, info);
	return 0;
}

/* Shard lock held. */
static void free_locked(ot_shard *sh, strata_node_id id)
{
	uint32_t idx = STRATA_NODEID_INDEX(id);
	ot_entry *e = &atomic_load_explicit(&sh->dir[idx >> OT_CHUNK_BITS],
					    memory_order_relaxed)[idx & (OT_CHUNK - 1)];
	uint32_t m = atomic_load_explicit(&e->meta, memory_order_relaxed);
	uint32_t tag = OT_META_TAG(m);
	if (OT_META_STATE(m) == OT_RESERVED)
		atomic_fetch_sub_explicit(&sh->reserved, 1, memory_order_relaxed);
	if (tag >= OT_TAG_MAX) {
		/* Keep the exhausted tag: no NodeID can match a FREE entry, and the
		 * handle is never reissued, so old IDs stay stale forever. */
		atomic_store_explicit(&e->meta, OT_META(tag, OT_FREE), memory_order_relaxed);
		sh->dead++;
	} else {
		atomic_store_explicit(&e->meta, OT_META(tag + 1, OT_FREE), memory_order_relaxed);
		if (sh->nfree == sh->free_cap) {
			uint32_t cap = sh->free_cap ? sh->free_cap * 2 : 256;
			uint32_t *ns = strata_mem_realloc(sh->free_stack, sizeof(uint32_t) * sh->free_cap,
							  sizeof(uint32_t) * cap);
			if (!ns) {
				/* Cannot record the handle: leak it rather than risk reuse. */
				sh->dead++;
				goto out;
			}
			sh->free_stack = ns;
			sh->free_cap = cap;
		}
		sh->free_stack[sh->nfree++] = idx;
	}
out:
	atomic_store_explicit(&e->loc, 0, memory_order_release);
}

void ot_free(otable *ot, strata_node_id id)
{
	ot_shard *sh = &ot->shards[STRATA_NODEID_SHARD(id)];
	pthread_mutex_lock(&sh->lock);
	free_locked(sh, id);
	pthread_mutex_unlock(&sh->lock);
}

/* Each shard's lock once for its handles among the (at most 64) given;
 * within a shard in the callers' order, so its free stack ends as n
 * calls of ot_free leave it. */
static void free_run(otable *ot, const strata_node_id *ids, uint32_t n)
{
	uint64_t left = n < 64 ? (1ull << n) - 1 : UINT64_MAX;
	bool mixed = false;
	for (uint32_t i = 1; i < n; i++)
		mixed |= STRATA_NODEID_SHARD(ids[i]) != STRATA_NODEID_SHARD(ids[0]);
	if (n && !mixed) { /* the usual run: one shard */
		ot_shard *sh = &ot->shards[STRATA_NODEID_SHARD(ids[0])];
		pthread_mutex_lock(&sh->lock);
		for (uint32_t i = 0; i < n; i++)
			free_locked(sh, ids[i]);
		pthread_mutex_unlock(&sh->lock);
		return;
	}
	while (left) {
		uint32_t si = STRATA_NODEID_SHARD(ids[__builtin_ctzll(left)]);
		ot_shard *sh = &ot->shards[si];
		pthread_mutex_lock(&sh->lock);
		for (uint64_t m = left; m; m &= m - 1) {
			uint32_t i = (uint32_t)__builtin_ctzll(m);
			if (STRATA_NODEID_SHARD(ids[i]) != si)
				continue;
			free_locked(sh, ids[i]);
			left &= ~(1ull << i);
		}
		pthread_mutex_unlock(&sh->lock);
	}
}

void ot_free_ids(otable *ot, const strata_node_id *ids, size_t n)
{
	for (size_t i = 0; i < n; i += 64)
		free_run(ot, ids + i, n - i < 64 ? (uint32_t)(n - i) : 64);
}

ot_entry *ot_entry_peek(const otable *ot, uint32_t shard, uint32_t index)
{
	if (shard >= ot->shards_max)
		return NULL;
	ot_entry *chunk = atomic_load_explicit(&ot->shards[shard].dir[index >> OT_CHUNK_BITS],
					       memory_order_acquire);
	return chunk ? &chunk[index & (OT_CHUNK - 1)] : NULL;
}

int ot_entry_get(const otable *ot, uint32_t shard, uint32_t index, ot_entry **e)
{
	*e = NULL;
	if (shard >= ot->shards_max)
		return 0;
	uint32_t slot = shard << OT_DIR_BITS | index >> OT_CHUNK_BITS;
	ot_entry *chunk = atomic_load_explicit(&ot->dirs[slot], memory_order_acquire);
	if (STRATA_UNLIKELY(!chunk)) {
		int rc = ot_fault(ot, slot, &chunk);
		if (rc || !chunk)
			return rc;
	}
	*e = &chunk[index & (OT_CHUNK - 1)];
	return 0;
}

ot_entry *ot_entry_at(const otable *ot, uint32_t shard, uint32_t index)
{
	ot_entry *e;
	return ot_entry_get(ot, shard, index, &e) ? NULL : e;
}

ot_entry *ot_entry_of_fault(const otable *ot, strata_node_id id)
{
	ot_entry *e = ot_entry_at(ot, STRATA_NODEID_SHARD(id), STRATA_NODEID_INDEX(id));
	return e ? ot_entry_match(e, id) : NULL;
}

void ot_counts(otable *ot, uint64_t *reserved, uint64_t *free, uint64_t *total)
{
	uint64_t r = 0, f = 0, t = 0;
	for (uint32_t i = 0; i < ot->shards_max; i++) {
		ot_shard *sh = &ot->shards[i];
		pthread_mutex_lock(&sh->lock);
		r += atomic_load_explicit(&sh->reserved, memory_order_relaxed);
		f += sh->nfree;
		t += sh->next_index;
		pthread_mutex_unlock(&sh->lock);
	}
	*reserved = r;
	*free = f;
	*total = t;
}

/* ---- recovery ----------------------------------------------------------------- */
int ot_extend(otable *ot, uint32_t shard, uint32_t n)
{
	ot_shard *sh = &ot->shards[shard];
	if (n > (1u << STRATA_NODEID_INDEX_BITS))
		return STRATA_EINVAL;
	for (uint32_t c = 0; c * OT_CHUNK < n; c++) {
		/* lazy first: its byte is written already, while reading the
		 * directory would fault in its untouched zero pages */
		if (ot_is_lazy(ot, shard << OT_DIR_BITS | c) ||
		    atomic_load_explicit(&sh->dir[c], memory_order_relaxed))
			continue;
		ot_entry *chunk = strata_mem_zmap(sizeof(ot_entry) * OT_CHUNK);
		if (!chunk)
			return STRATA_ENOMEM;
		atomic_store_explicit(&sh->dir[c], chunk, memory_order_release);
	}
	if (n > sh->next_index)
		sh->next_index = n;
	return 0;
}

/* Pushes a FREE entry's handle (shard lock held, or single-threaded). */
static int push_free(ot_shard *sh, uint32_t idx)
{
	if (sh->nfree == sh->free_cap) {
		uint32_t cap = sh->free_cap ? sh->free_cap * 2 : 256;
		uint32_t *p = strata_mem_realloc(sh->free_stack, sizeof(uint32_t) * sh->free_cap,
						 sizeof(uint32_t) * cap);
		if (!p)
			return STRATA_ENOMEM;
		sh->free_stack = p;
		sh->free_cap = cap;
	}
	sh->free_stack[sh->nfree++] = idx;
	return 0;
}

/* Bumps a FREE entry past the tag its last occupant had (so no NodeID
 * issued before a crash names a new node); false: tag exhausted, the
 * handle is retired for good. */
static bool bump_free(ot_entry *e)
{
	uint32_t m = atomic_load_explicit(&e->meta, memory_order_relaxed);
	if (OT_META_TAG(m) >= OT_TAG_MAX)
		return false;
	atomic_store_explicit(&e->meta, OT_META(OT_META_TAG(m) + 1, OT_FREE), memory_order_relaxed);
	return true;
}

static int lazy_free_push(ot_shard *sh, uint32_t c)
{
	if (sh->nlazy_free == sh->lazy_free_cap) {
		uint32_t cap = sh->lazy_free_cap ? sh->lazy_free_cap * 2 : 64;
		uint32_t *p = strata_mem_realloc(sh->lazy_free, sizeof(uint32_t) * sh->lazy_free_cap,
						 sizeof(uint32_t) * cap);
		if (!p)
			return STRATA_ENOMEM;
		sh->lazy_free = p;
		sh->lazy_free_cap = cap;
	}
	sh->lazy_free[sh->nlazy_free++] = c;
	return 0;
}

/* After a checkpoint load and WAL replay (single-threaded): every FREE
 * entry of a loaded chunk goes on its shard's free stack, bumped; lazy
 * chunks holding FREE entries are listed, and do the same when faulted. */
static int rebuild_shard(otable *ot, uint32_t s)
{
	ot_shard *sh = &ot->shards[s];
	sh->nfree = 0;
	sh->dead = 0;
	sh->nlazy_free = 0;
	for (uint32_t i = 0; i < sh->next_index; i++) {
		uint32_t slot = s << OT_DIR_BITS | i >> OT_CHUNK_BITS;
		if (ot_is_lazy(ot, slot)) {
			bool has_free = atomic_load_explicit(&ot->lstate[slot], memory_order_relaxed) &
					OT_LZ_HAS_FREE;
			int rc = has_free ? lazy_free_push(sh, i >> OT_CHUNK_BITS) : 0;
			if (rc)
				return rc;
			i |= OT_CHUNK - 1; /* next chunk */
			continue;
		}
		ot_entry *e = ot_entry_peek(ot, s, i);
		if (OT_META_STATE(atomic_load_explicit(&e->meta, memory_order_relaxed)) != OT_FREE)
			continue;
		if (!bump_free(e)) {
			sh->dead++;
			continue;
		}
		int rc = push_free(sh, i);
		if (rc)
			return rc;
	}
	/* Low indexes on top: reused first, like a fresh table. */
	for (uint32_t a = 0, b = sh->nfree; b > a + 1; a++, b--) {
		uint32_t t = sh->free_stack[a];
		sh->free_stack[a] = sh->free_stack[b - 1];
		sh->free_stack[b - 1] = t;
	}
	for (uint32_t a = 0, b = sh->nlazy_free; b > a + 1; a++, b--) {
		uint32_t t = sh->lazy_free[a];
		sh->lazy_free[a] = sh->lazy_free[b - 1];
		sh->lazy_free[b - 1] = t;
	}
	return 0;
}

int ot_rebuild_free(otable *ot)
{
	for (uint32_t s = 0; s < ot->shards_max; s++) {
		int rc = rebuild_shard(ot, s);
		if (rc)
			return rc;
	}
	ot->lazy_live = true;
	return 0;
}

/* ---- lazy chunks ---------------------------------------------------------------- */
int ot_set_lazy(otable *ot, uint32_t shard, uint32_t chunk, bool has_free)
{
	if (!ot->lazy && !(ot->lazy = strata_mem_zmap(sizeof(ot_lazy) * OT_DIR * OT_MAX_SHARDS)))
		return STRATA_ENOMEM;
	if (!ot->lstate && !(ot->lstate = strata_mem_zmap((size_t)OT_DIR * OT_MAX_SHARDS)))
		return STRATA_ENOMEM;
	atomic_store_explicit(&ot->lstate[shard << OT_DIR_BITS | chunk],
			      OT_LZ_PENDING | (has_free ? OT_LZ_HAS_FREE : 0), memory_order_release);
	atomic_fetch_add_explicit(&ot->chunks_lazy, 1, memory_order_relaxed);
	return 0;
}

ot_lazy *ot_lazy_locked(otable *ot, uint32_t slot, int *rc)
{
	ot_lazy *l = &ot->lazy[slot];
	*rc = 0;
	if (atomic_load_explicit(&ot->lstate[slot], memory_order_relaxed) & OT_LZ_DESCRIBED)
		return l;
	*rc = ot->describe ? ot->describe(ot->fault_ctx, slot >> OT_DIR_BITS, slot & (OT_DIR - 1), l)
			   : STRATA_ECORRUPT;
	if (*rc)
		return NULL;
	atomic_fetch_or_explicit(&ot->lstate[slot], OT_LZ_DESCRIBED, memory_order_relaxed);
	return l;
}

int ot_lazy_get(otable *ot, uint32_t slot, ot_lazy *out)
{
	int rc;
	pthread_mutex_lock(&ot->lazy_lock);
	const ot_lazy *l = ot_lazy_locked(ot, slot, &rc);
	if (l)
		*out = *l;
	pthread_mutex_unlock(&ot->lazy_lock);
	return rc;
}

/* After the fault, outside lazy_lock: the FREE entries found in the chunk
 * (collected before it was published) join the free stack. */
static void adopt_free(otable *ot, uint32_t shard, uint32_t base, const uint16_t *fr, uint32_t n,
		       uint32_t dead)
{
	ot_shard *sh = &ot->shards[shard];
	pthread_mutex_lock(&sh->lock);
	sh->dead += dead;
	for (uint32_t i = 0; i < n; i++)
		if (push_free(sh, base + fr[i]))
			sh->dead++; /* cannot record it: leak the handle, never reuse it early */
	pthread_mutex_unlock(&sh->lock);
}

/* Under lazy_lock: loads slot's chunk. Once recovery is over, FREE entries
 * are bumped (as ot_rebuild_free does) and listed in fr[]. */
static int fault_locked(otable *ot, uint32_t slot, ot_entry **out, uint16_t *fr, uint32_t *nfr,
			uint32_t *dead)
{
	ot_entry *chunk = strata_mem_zmap(sizeof(ot_entry) * OT_CHUNK);
	if (!chunk)
		return STRATA_ENOMEM;
	int rc = STRATA_ECORRUPT; /* damaged: checked once, no I/O for every touch */
	const ot_lazy *l = NULL;
	if (!(atomic_load_explicit(&ot->lstate[slot], memory_order_relaxed) & OT_LZ_DAMAGED) &&
	    (l = ot_lazy_locked(ot, slot, &rc)))
		rc = ot->fault(ot->fault_ctx, slot >> OT_DIR_BITS, slot & (OT_DIR - 1), l, chunk);
	if (rc) {
		if (rc == STRATA_ECORRUPT)
			atomic_fetch_or_explicit(&ot->lstate[slot], OT_LZ_DAMAGED, memory_order_relaxed);
		strata_mem_zunmap(chunk, sizeof(ot_entry) * OT_CHUNK);
		return rc;
	}
	for (uint32_t i = 0; ot->lazy_live && i < l->nrec; i++) {
		if (OT_META_STATE(atomic_load_explicit(&chunk[i].meta, memory_order_relaxed)) != OT_FREE)
			continue;
		if (bump_free(&chunk[i]))
			fr[(*nfr)++] = (uint16_t)i;
		else
			(*dead)++;
	}
	atomic_store_explicit(&ot->dirs[slot], chunk, memory_order_release);
	atomic_fetch_and_explicit(&ot->lstate[slot], (uint8_t)~OT_LZ_PENDING, memory_order_release);
	atomic_fetch_sub_explicit(&ot->chunks_lazy, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&ot->chunks_faulted, 1, memory_order_relaxed);
	*out = chunk;
	return 0;
}

/* The table is logically const to readers: loading a chunk changes what is
 * cached, not what it says. */
int ot_fault(const otable *cot, uint32_t slot, ot_entry **out)
{
	otable *ot = (otable *)cot;
	*out = atomic_load_explicit(&ot->dirs[slot], memory_order_acquire);
	if (*out || !ot_is_lazy(ot, slot))
		return 0;
	_Static_assert(OT_CHUNK <= 65536, "free list of a chunk holds 16-bit offsets");
	uint16_t *fr = strata_mem_alloc(sizeof(uint16_t) * OT_CHUNK);
	if (!fr)
		return STRATA_ENOMEM;
	uint32_t nfr = 0, dead = 0;
	int rc = 0;
	pthread_mutex_lock(&ot->lazy_lock);
	*out = atomic_load_explicit(&ot->dirs[slot], memory_order_acquire);
	if (!*out && ot_is_lazy(ot, slot))
		rc = fault_locked(ot, slot, out, fr, &nfr, &dead);
	pthread_mutex_unlock(&ot->lazy_lock);
	if (nfr || dead)
		adopt_free(ot, slot >> OT_DIR_BITS, (slot & (OT_DIR - 1)) << OT_CHUNK_BITS, fr, nfr, dead);
	strata_mem_free(fr, sizeof(uint16_t) * OT_CHUNK);
	return rc;
}

int ot_load_all(otable *ot)
{
	for (uint32_t s = 0; ot->lazy && s < ot->shards_max; s++) {
		for (uint64_t c = 0; c * OT_CHUNK < ot->shards[s].next_index; c++) {
			ot_entry *chunk;
			int rc = ot_fault(ot, s << OT_DIR_BITS | (uint32_t)c, &chunk);
			if (rc)
				return rc;
		}
	}
	return 0;
}
