/*
 * cache.c — the bounded node cache of DURABLE mode (option cache_bytes).
 *
 * Without a bound a node's image, once read, stays in its slot of the
 * in-memory segment for good, so memory grows with the store. With
 * cache_bytes set, no image lives in segment memory: segments only allocate
 * places in `data`, and every image in memory is a cache node (cnode) that
 * the object-table entry points at, tagged: loc = cnode | CACHED_BIT. An
 * entry's location is therefore one of
 *   slot | LAZY_BIT     on disk only (read on first use, CRC checked)
 *   cnode | CACHED_BIT  in memory; cnode->slot is its place in `data`
 *
 * States of a cnode (changed under `lock` only):
 *   DIRTY  born since the last checkpoint began to write it: not in `data`
 *          yet, never evicted; in no queue.
 *   CLEAN  its bytes are in `data`: in a queue, evictable.
 *   GONE   unlinked (evicted, or its node freed): waits in `grace`.
 *
 * Eviction is 2Q with CLOCK (design/ARCHITECTURE.md, "Bounded cache"): a
 * node read from disk or cleaned by a checkpoint enters the probation FIFO
 * (a1); when it leaves a1 it is evicted unless it was hit meanwhile, in
 * which case it moves to the main CLOCK ring (am). A scan touches each node
 * once, so it flows through a1 and never displaces the hot set in am.
 * Hits only set a byte (no lock, no queue move).
 *
 * Grace: a reader may hold an image pointer for its snapshot's life. Every
 * pin slot records the cache generation at open (pin.c); a cnode unlinked
 * at generation g is freed only when no pinned slot has a generation <= g.
 * So eviction never waits for, and never blocks, a reader; a long-lived
 * snapshot holds the nodes unlinked during its life (reported per
 * snapshot, and what the snapshot caps act on).
 */
#include <inttypes.h>
#include <string.h>

#include "crc32c.h"
#include "durable.h"

enum { CN_DIRTY = 0, CN_CLEAN = 1, CN_GONE = 2 };
enum { CQ_NONE = 0, CQ_A1 = 1, CQ_AM = 2 };

#define A1_SHARE 4 /* probation holds at most 1/4 of the cache */

static cnode *cn_of(uint64_t loc)
{
	return (cnode *)(uintptr_t)(loc & ~LOC_BITS);
}

int cache_init(ncache *c, uint64_t cap)
{
	memset(c, 0, sizeof *c);
	c->cap = cap;
	return pthread_mutex_init(&c->lock, NULL) ? STRATA_ENOMEM : 0;
}

static void cn_free(ncache *c, cnode *n)
{
	atomic_fetch_sub_explicit(&c->used, n->size, memory_order_relaxed);
	strata_mem_free(n->image, n->size);
	strata_mem_free(n, sizeof *n);
}

/* At close: every cnode still reachable from a queue, dirty ones from
 * their entries (the caller walks those), and the grace list. */
void cache_destroy(ncache *c)
{
	for (size_t i = 0; i < c->a1_n; i++)
		cn_free(c, c->a1[(c->a1_head + i) % c->a1_cap]);
	for (size_t i = 0; i < c->am_n; i++)
		cn_free(c, c->am[i]);
	for (size_t i = c->grace_head; i < c->grace_n; i++)
		cn_free(c, c->grace[i]);
	strata_mem_free(c->a1, c->a1_cap * sizeof *c->a1);
	strata_mem_free(c->am, c->am_cap * sizeof *c->am);
	strata_mem_free(c->grace, c->grace_cap * sizeof *c->grace);
	pthread_mutex_destroy(&c->lock);
}

/* Frees a DIRTY cnode an entry still points at (close: the entries go). */
void cache_free_dirty(ncache *c, uint64_t loc)
{
	cnode *n = cn_of(loc);
	if (n->state == CN_DIRTY && n->queue == CQ_NONE) {
		atomic_fetch_sub_explicit(&c->dirty, n->size, memory_order_relaxed);
		cn_free(c, n);
	}
}

/* ---- the queues (lock held) ------------------------------------------------------ */
static int grow(void *pv, size_t *cap, size_t n)
{
	cnode ***p = pv;
	if (n < *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 256;
	cnode **np = strata_mem_alloc(ncap * sizeof *np);
	if (!np)
		return STRATA_ENOMEM;
	if (*p)
		memcpy(np, *p, *cap * sizeof *np);
	strata_mem_free(*p, *cap * sizeof *np);
	*p = np;
	*cap = ncap;
	return 0;
}

static int a1_push(ncache *c, cnode *n)
{
	if (c->a1_n == c->a1_cap) { /* unroll the ring into a bigger one */
		size_t cap = c->a1_cap ? c->a1_cap * 2 : 256;
		cnode **np = strata_mem_alloc(cap * sizeof *np);
		if (!np)
			return STRATA_ENOMEM;
		for (size_t i = 0; i < c->a1_n; i++)
			np[i] = c->a1[(c->a1_head + i) % c->a1_cap];
		strata_mem_free(c->a1, c->a1_cap * sizeof *np);
		c->a1 = np;
		c->a1_cap = cap;
		c->a1_head = 0;
	}
	c->a1[(c->a1_head + c->a1_n++) % c->a1_cap] = n;
	c->a1_bytes += n->size;
	n->queue = CQ_A1;
	return 0;
}

static cnode *a1_pop(ncache *c)
{
	cnode *n = c->a1[c->a1_head];
	c->a1_head = (c->a1_head + 1) % c->a1_cap;
	c->a1_n--;
	c->a1_bytes -= n->size;
	n->queue = CQ_NONE;
	return n;
}

static int am_push(ncache *c, cnode *n)
{
	if (grow(&c->am, &c->am_cap, c->am_n))
		return STRATA_ENOMEM;
	c->am[c->am_n++] = n;
	n->queue = CQ_AM;
	return 0;
}

/* Removes am[i] (the last one takes its place: CLOCK order is approximate). */
static cnode *am_take(ncache *c, size_t i)
{
	cnode *n = c->am[i];
	c->am[i] = c->am[--c->am_n];
	n->queue = CQ_NONE;
	return n;
}

/* Unlinked: freed once no pinned slot predates this generation. If the
 * grace list cannot grow the cnode is leaked, never freed early. */
static void grace_push(strata_store *s, cnode *n)
{
	ncache *c = &s->dur->cache;
	n->state = CN_GONE;
	n->queue = CQ_NONE;
	n->gen = atomic_fetch_add(&s->pins.gen, 1); /* seq_cst: after the unlink */
	if (grow(&c->grace, &c->grace_cap, c->grace_n) == 0) {
		c->grace[c->grace_n++] = n;
		atomic_fetch_add_explicit(&c->grace_bytes, n->size, memory_order_relaxed);
	}
}

/* The list is in generation order (appended under the lock as gen grows),
 * so what may go is a prefix: freeing it costs what it frees, not the
 * list's length (a long snapshot made the whole-list walk quadratic). */
static void grace_collect(strata_store *s)
{
	ncache *c = &s->dur->cache;
	if (c->grace_head == c->grace_n)
		return;
	uint64_t oldest = pin_oldest_gen(&s->pins);
	while (c->grace_head < c->grace_n && c->grace[c->grace_head]->gen < oldest) {
		cnode *n = c->grace[c->grace_head++];
		atomic_fetch_sub_explicit(&c->grace_bytes, n->size, memory_order_relaxed);
		cn_free(c, n);
	}
	if (c->grace_head == c->grace_n) {
		c->grace_head = c->grace_n = 0;
	} else if (c->grace_head > 1024 && c->grace_head > c->grace_n / 2) {
		memmove(c->grace, c->grace + c->grace_head, (c->grace_n - c->grace_head) * sizeof *c->grace);
		c->grace_n -= c->grace_head;
		c->grace_head = 0;
	}
}

/* ---- eviction (lock held) ----------------------------------------------------------- */
/* Points the entry back at its slot on disk. False if the entry no longer
 * names this cnode (cannot happen while the lock is held; checked anyway). */
static bool evict_one(strata_store *s, cnode *n)
{
	ot_entry *e = ot_entry_peek(&s->ot, STRATA_NODEID_SHARD(n->id), STRATA_NODEID_INDEX(n->id));
	uint64_t want = (uint64_t)(uintptr_t)n | CACHED_BIT;
	if (!e || !atomic_compare_exchange_strong(&e->loc, &want, n->slot | LAZY_BIT))
		return false;
	atomic_fetch_add_explicit(&s->dur->cache.evictions, 1, memory_order_relaxed);
	grace_push(s, n);
	return true;
}

/* One step of the probation FIFO: evict its head, or promote it if hit. */
static void a1_step(strata_store *s)
{
	ncache *c = &s->dur->cache;
	cnode *n = a1_pop(c);
	if (n->state == CN_GONE) /* freed while queued */
		grace_push(s, n);
	else if (atomic_exchange_explicit(&n->ref, 0, memory_order_relaxed)) {
		if (am_push(c, n))
			(void)a1_push(c, n); /* no room in am: another round in a1 */
	} else if (!evict_one(s, n))
		(void)a1_push(c, n);
}

/* One step of the main CLOCK hand. */
static void am_step(strata_store *s)
{
	ncache *c = &s->dur->cache;
	if (c->am_hand >= c->am_n)
		c->am_hand = 0;
	cnode *n = c->am[c->am_hand];
	if (n->state == CN_GONE) {
		grace_push(s, am_take(c, c->am_hand));
	} else if (atomic_exchange_explicit(&n->ref, 0, memory_order_relaxed)) {
		c->am_hand++;
	} else {
		am_take(c, c->am_hand);
		if (!evict_one(s, n))
			(void)am_push(c, n);
	}
}

static void evict_locked(strata_store *s)
{
	ncache *c = &s->dur->cache;
	grace_collect(s);
	/* Every queued cnode is looked at most twice (once to clear its hit). */
	size_t budget = 2 * (c->a1_n + c->am_n) + 2;
	while (budget-- && atomic_load_explicit(&c->used, memory_order_relaxed) -
				   atomic_load_explicit(&c->grace_bytes, memory_order_relaxed) >
			       c->cap) {
		if (c->a1_n && (c->a1_bytes * A1_SHARE > c->cap || !c->am_n))
			a1_step(s);
		else if (c->am_n)
			am_step(s);
		else
			break; /* all dirty: a checkpoint must clean them first */
	}
	grace_collect(s);
}

/* ---- the entry points ------------------------------------------------------------------ */
static int cn_new(ncache *c, uint64_t slot, uint32_t size, cnode **out)
{
	cnode *n = strata_mem_calloc(1, sizeof *n);
	void *img = n ? strata_mem_alloc(size) : NULL;
	if (!img) {
		strata_mem_free(n, sizeof *n);
		return STRATA_ENOMEM;
	}
	n->image = img;
	n->slot = slot;
	n->size = size;
	atomic_fetch_add_explicit(&c->used, size, memory_order_relaxed);
	*out = n;
	return 0;
}

int cache_new_dirty(strata_store *s, void *slot, uint32_t size, uint64_t *loc, void **image)
{
	ncache *c = &s->dur->cache;
	cnode *n;
	int rc = cn_new(c, (uint64_t)(uintptr_t)slot, size, &n);
	if (rc)
		return rc;
	n->state = CN_DIRTY;
	atomic_fetch_add_explicit(&c->dirty, size, memory_order_relaxed);
	*loc = (uint64_t)(uintptr_t)n | CACHED_BIT;
	*image = n->image;
	if (atomic_load_explicit(&c->used, memory_order_relaxed) > c->cap &&
	    pthread_mutex_trylock(&c->lock) == 0) { /* a writer never waits for eviction */
		evict_locked(s);
		pthread_mutex_unlock(&c->lock);
	}
	return 0;
}

void cache_set_id(uint64_t loc, strata_node_id id)
{
	cn_of(loc)->id = id;
}

/* Hits are counted by the reader's pin slot (pin_count_hit): a shared
 * counter, even striped, cost more than the rest of the hit. */
const void *cache_hit(uint64_t loc)
{
	cnode *n = cn_of(loc);
	if (!atomic_load_explicit(&n->ref, memory_order_relaxed))
		atomic_store_explicit(&n->ref, 1, memory_order_relaxed);
	return n->image;
}

void *cache_image(uint64_t loc)
{
	return cn_of(loc)->image;
}

uint64_t cache_slot(uint64_t loc)
{
	return cn_of(loc)->slot;
}

void cache_move_slot(uint64_t loc, void *slot)
{
	cn_of(loc)->slot = (uint64_t)(uintptr_t)slot;
}

/* The image of a small node on disk (loc: slot | LAZY_BIT) into a new
 * cnode, checked against its CRC, then published in its entry. The caller
 * holds the entry's load lock, so no other thread loads it meanwhile. */
int cache_load(strata_store *s, ot_entry *e, strata_node_id id, uint64_t loc, uint32_t size,
	       const void **out)
{
	durable *d = s->dur;
	ncache *c = &d->cache;
	void *slot = (void *)(uintptr_t)(loc & ~LAZY_BIT);
	cnode *n;
	int rc = cn_new(c, (uint64_t)(uintptr_t)slot, size, &n);
	if (rc)
		return rc;
	n->id = id;
	n->state = CN_CLEAN;
	rc = io_pread(d->data, n->image, size, (uint64_t)seg_no_of(slot) * SEG_SIZE + seg_offset_of(slot));
	if (rc == STRATA_ETRUNCATED || (!rc && strata_crc32c(0, n->image, size) != ot_crc(e))) {
		store_set_error("node %#" PRIx64 ": image %s (data file)", id,
				rc ? "lies past the end of its file" : "fails its checksum");
		rc = STRATA_ECORRUPT;
	}
	if (rc) {
		cn_free(c, n);
		return rc;
	}
	atomic_fetch_add_explicit(&c->misses, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->bytes_read, size, memory_order_relaxed);
	pthread_mutex_lock(&c->lock);
	if ((rc = a1_push(c, n))) {
		pthread_mutex_unlock(&c->lock);
		cn_free(c, n);
		return rc;
	}
	atomic_store_explicit(&e->loc, (uint64_t)(uintptr_t)n | CACHED_BIT, memory_order_release);
	if (atomic_load_explicit(&c->used, memory_order_relaxed) > c->cap)
		evict_locked(s);
	pthread_mutex_unlock(&c->lock);
	/* Even if it was evicted again at once it stays valid: our pin
	 * predates its unlinking. */
	*out = n->image;
	return 0;
}

/* The checkpoint wrote this node's image to `data`: it may be evicted. */
void cache_clean(strata_store *s, uint64_t loc)
{
	ncache *c = &s->dur->cache;
	cnode *n = cn_of(loc);
	pthread_mutex_lock(&c->lock);
	if (n->state == CN_DIRTY) {
		atomic_fetch_sub_explicit(&c->dirty, n->size, memory_order_relaxed);
		n->state = CN_CLEAN;
		if (a1_push(c, n)) /* no memory for the queue: it stays dirty */
			n->state = CN_DIRTY, atomic_fetch_add(&c->dirty, n->size);
	}
	pthread_mutex_unlock(&c->lock);
}

/* The node of entry e is being freed: unlinks its cnode if it has one and
 * returns the location durable_free_slot wants (a cached node's is its
 * slot | LAZY_BIT: nothing of it is in segment memory). */
uint64_t cache_drop(strata_store *s, ot_entry *e)
{
	ncache *c = &s->dur->cache;
	pthread_mutex_lock(&c->lock);
	uint64_t loc = atomic_load_explicit(&e->loc, memory_order_acquire);
	if LOC_CACHED(loc) {
		cnode *n = cn_of(loc);
		if (n->state == CN_DIRTY)
			atomic_fetch_sub_explicit(&c->dirty, n->size, memory_order_relaxed);
		if (n->queue == CQ_NONE)
			grace_push(s, n);
		else
			n->state = CN_GONE; /* the hand unlinks it */
		loc = n->slot | LAZY_BIT;
		atomic_store_explicit(&e->loc, loc, memory_order_release);
	}
	pthread_mutex_unlock(&c->lock);
	return loc;
}

/* Frees what grace allows and evicts down to the cap (the coordinator calls
 * it after checkpoints, which make dirty nodes evictable). */
void cache_trim(strata_store *s)
{
	ncache *c = &s->dur->cache;
	pthread_mutex_lock(&c->lock);
	evict_locked(s);
	pthread_mutex_unlock(&c->lock);
}

void cache_stats(const ncache *c, strata_store_stats *st)
{
	st->cache_bytes_max = c->cap;
	st->cache_bytes = atomic_load_explicit(&c->used, memory_order_relaxed);
	st->cache_dirty_bytes = atomic_load_explicit(&c->dirty, memory_order_relaxed);
	st->cache_grace_bytes = atomic_load_explicit(&c->grace_bytes, memory_order_relaxed);
	st->cache_misses = atomic_load_explicit(&c->misses, memory_order_relaxed);
	st->cache_evictions = atomic_load_explicit(&c->evictions, memory_order_relaxed);
	st->cache_bytes_read = atomic_load_explicit(&c->bytes_read, memory_order_relaxed);
}

uint64_t store_grace_bytes(strata_store *s)
{
	durable *d = s->dur;
	return d && d->cache.cap ? atomic_load_explicit(&d->cache.grace_bytes, memory_order_relaxed) : 0;
}

uint64_t store_grace_held(strata_store *s, struct strata_snapshot *p)
{
	durable *d = s->dur;
	if (!d || !d->cache.cap)
		return 0;
	uint64_t g = atomic_load_explicit(&p->cgen, memory_order_relaxed), sum = 0;
	pthread_mutex_lock(&d->cache.lock);
	for (size_t i = d->cache.grace_head; i < d->cache.grace_n; i++)
		if (d->cache.grace[i]->gen >= g)
			sum += d->cache.grace[i]->size;
	pthread_mutex_unlock(&d->cache.lock);
	return sum;
}
