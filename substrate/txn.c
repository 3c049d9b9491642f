/*
 * txn.c — write transactions: copy-on-write, root changes, commit and abort.
 *
 * A transaction locks its roots (ordered by address, so two transactions
 * never wait on each other in a cycle), then pins the current epoch: it reads
 * the state of that epoch plus its own changes. Nodes it allocates carry its
 * marker (EPOCH_PENDING | sequence) as birth; nodes it retires carry the
 * marker as retire, claimed by CAS so two transactions cannot retire the
 * same node (the second gets STRATA_EBUSY).
 *
 * Commit takes the commit lock, stamps births and retires with E = current+1,
 * prepends root versions, then publishes E with a release store: a reader
 * that loads E sees every stamp; a reader below E sees markers or E, both
 * "not born"/"not retired" to it. Everything that can fail (memory for root
 * versions and the reclaim batch) is allocated before the lock, so a commit
 * either publishes all of its changes or none.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "durable.h"
#include "internal.h"

typedef struct idvec {
	strata_node_id *v;
	size_t n, cap;
} idvec;

typedef struct txn_root {
	root *r;
	strata_node_id pending;
	bool set;
} txn_root;

struct strata_txn {
	strata_store *s;
	struct strata_snapshot *pin;
	uint64_t marker;
	uint64_t base;
	size_t nroots, roots_cap, nlocked;
	txn_root *roots;
	idvec reserved, retired;
	idvec dropped; /* own nodes replaced by strata_txn_rewrite: freed at commit */
	uint64_t retired_bytes;
	strata_durability durability;
	uint64_t wal_end; /* DURABLE: where this commit's frames end in the WAL */
};

static int idvec_push(idvec *a, strata_node_id id)
{
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 16;
		strata_node_id *nv = strata_mem_realloc(a->v, a->cap * sizeof *nv, cap * sizeof *nv);
		if (!nv)
			return STRATA_ENOMEM;
		a->v = nv;
		a->cap = cap;
	}
	a->v[a->n++] = id;
	return 0;
}

static void idvec_free(idvec *a)
{
	strata_mem_free(a->v, a->cap * sizeof *a->v);
	a->v = NULL;
	a->n = a->cap = 0;
}

static int root_ptr_cmp(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)((const txn_root *)a)->r, y = (uintptr_t)((const txn_root *)b)->r;
	return x < y ? -1 : x > y;
}

static void unlock_roots(strata_txn *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		pthread_mutex_unlock(&t->roots[i].r->lock);
}

/* ---- strata_check's gate ---------------------------------------------------
 * A check needs a store without open write transactions: their allocations
 * and own frees change slots and entries outside the commit lock. Entering
 * counts the transaction, then looks at the gate; closing the gate sets it,
 * then looks at the count (both sequentially consistent): at least one of
 * the two sees the other, so once the closer has seen a zero count, every
 * later entrant sees the gate closed and leaves without touching anything.
 * Transactions may move between threads, so nothing here knows whose
 * transaction is whose: a thread that holds one while it begins another, or
 * calls strata_check, waits out the check's bound. */
static void txn_leave(strata_store *s)
{
	if (atomic_fetch_sub(&s->txns_open, 1) == 1 && atomic_load(&s->gate_closed)) {
		pthread_mutex_lock(&s->gate_lock);
		pthread_cond_broadcast(&s->gate_cond);
		pthread_mutex_unlock(&s->gate_lock);
	}
}

static int txn_enter(strata_store *s, unsigned flags)
{
	for (;;) {
		atomic_fetch_add(&s->txns_open, 1);
		if (STRATA_LIKELY(!atomic_load(&s->gate_closed)))
			return 0;
		txn_leave(s);
		if (flags & STRATA_TXN_NOWAIT)
			return STRATA_EBUSY;
		pthread_mutex_lock(&s->gate_lock);
		while (atomic_load(&s->gate_closed))
			pthread_cond_wait(&s->gate_cond, &s->gate_lock);
		pthread_mutex_unlock(&s->gate_lock);
	}
}

int txn_gate_close(strata_store *s, unsigned wait_ms)
{
	struct timespec dl;
	clock_gettime(CLOCK_MONOTONIC, &dl);
	long ns = dl.tv_nsec + (long)(wait_ms % 1000) * 1000000l;
	dl.tv_sec += wait_ms / 1000 + ns / 1000000000l;
	dl.tv_nsec = ns % 1000000000l;
	pthread_mutex_lock(&s->gate_lock);
	atomic_fetch_add(&s->gate_closed, 1);
	/* The load that ends the loop decides: a later one could see an
	 * entrant that is only passing through to leave again. */
	uint32_t open;
	for (int wrc = 0; (open = atomic_load(&s->txns_open)) && wrc != ETIMEDOUT;)
		wrc = pthread_cond_timedwait(&s->gate_cond, &s->gate_lock, &dl);
	pthread_mutex_unlock(&s->gate_lock);
	if (!open)
		return 0;
	txn_gate_open(s);
	store_set_error("strata_check: write transactions still open after %u ms (%u)", wait_ms, open);
	return STRATA_EBUSY;
}

void txn_gate_open(strata_store *s)
{
	pthread_mutex_lock(&s->gate_lock);
	if (atomic_fetch_sub(&s->gate_closed, 1) == 1)
		pthread_cond_broadcast(&s->gate_cond);
	pthread_mutex_unlock(&s->gate_lock);
}

static void txn_release(strata_txn *t)
{
	strata_store *s = t->s;
	unlock_roots(t, t->nlocked);
	if (t->pin)
		pin_release(&s->pins, t->pin);
	idvec_free(&t->reserved);
	idvec_free(&t->retired);
	idvec_free(&t->dropped);
	strata_mem_free(t->roots, sizeof *t->roots * t->roots_cap);
	strata_mem_free(t, sizeof *t);
	txn_leave(s);
}

/* Resolves the roots and sorts them, dropping duplicate names. */
static int collect_roots(strata_txn *t, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t len;
		int rc = catalog_name_ok(names[i], &len);
		if (rc)
			return rc;
		if ((rc = catalog_get_or_create(&t->s->cat, names[i], len, &t->roots[i].r)))
			return rc;
	}
	if (n) /* t->roots is NULL when n == 0; qsort's pointer must not be */
		qsort(t->roots, n, sizeof *t->roots, root_ptr_cmp);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (!k || t->roots[k - 1].r != t->roots[i].r)
			t->roots[k++] = t->roots[i];
	t->nroots = k;
	return 0;
}

static int lock_roots(strata_txn *t, unsigned flags)
{
	for (size_t i = 0; i < t->nroots; i++) {
		if (!(flags & STRATA_TXN_NOWAIT)) {
			pthread_mutex_lock(&t->roots[i].r->lock);
		} else if (pthread_mutex_trylock(&t->roots[i].r->lock)) {
			return STRATA_EBUSY;
		}
		t->nlocked = i + 1;
	}
	return 0;
}

int strata_txn_begin(strata_store *s, const char *const *names, size_t n, unsigned flags,
		     strata_txn **out)
{
	const unsigned dmask = STRATA_TXN_SYNC | STRATA_TXN_ASYNC | STRATA_TXN_NONE;
	if (!s || !out || (n && !names) || (flags & ~(STRATA_TXN_NOWAIT | dmask)) ||
	    __builtin_popcount(flags & dmask) > 1)
		return STRATA_EINVAL;
	*out = NULL;
	strata_txn *t = strata_mem_calloc(1, sizeof *t);
	if (!t)
		return STRATA_ENOMEM;
	t->s = s;
	t->durability = flags & STRATA_TXN_SYNC    ? STRATA_SYNC
			: flags & STRATA_TXN_ASYNC ? STRATA_ASYNC
			: flags & STRATA_TXN_NONE  ? STRATA_NONE
			: s->dur		   ? s->dur->default_durability
						   : STRATA_SYNC;
	int rc = txn_enter(s, flags);
	if (rc) {
		strata_mem_free(t, sizeof *t);
		return rc;
	}
	rc = STRATA_ENOMEM;
	if (n && !(t->roots = strata_mem_calloc(n, sizeof *t->roots)))
		goto err;
	t->roots_cap = n;
	if ((rc = collect_roots(t, names, n)) || (rc = lock_roots(t, flags)))
		goto err;
	rc = STRATA_EFULL;
	if (!(t->pin = pin_acquire(&s->pins, &s->epoch_current, PIN_TXN)))
		goto err;
	t->base = snap_epoch(t->pin);
	t->marker = EPOCH_PENDING |
		    (atomic_fetch_add_explicit(&s->next_txn, 1, memory_order_relaxed) & (EPOCH_PENDING - 1));
	*out = t;
	return 0;
err:
	txn_release(t);
	return rc;
}

uint64_t strata_txn_base_epoch(const strata_txn *t)
{
	return t ? t->base : 0;
}

/* How this transaction sees `id`. */
typedef struct txn_view {
	ot_entry *e;
	bool own;  /* born in this transaction: writable in place */
	void *data;
	uint32_t size;
	uint8_t kind;
} txn_view;

/* Inlined in each caller: the view then lives in registers, not in memory
 * behind a call (an X-tree insert looks up ~8 nodes: ~0.6 % of it). */
static inline __attribute__((always_inline)) int txn_lookup(const strata_txn *t, strata_node_id id,
							 txn_view *v)
{
	ot_entry *e = ot_entry_loaded(&t->s->ot, id);
	if (STRATA_UNLIKELY(!e)) { /* never issued, or (DURABLE) a chunk still on disk */
		ot_entry *f; /* not &e: e would live in memory, reloaded after each atomic */
		int frc = ot_entry_get(&t->s->ot, STRATA_NODEID_SHARD(id), STRATA_NODEID_INDEX(id), &f);
		if (frc) /* its object-table chunk is damaged or unreadable */
			return frc;
		if (!f)
			return STRATA_ESTALE;
		e = f;
	}
	uint32_t m = atomic_load_explicit(&e->meta, memory_order_acquire);
	if (OT_META_STATE(m) == OT_FREE)
		return STRATA_ESTALE;
	uint64_t b = ot_birth(e), r = ot_retire(e);
	uint32_t info = atomic_load_explicit(&e->info, memory_order_acquire);
	void *data = (void *)(uintptr_t)atomic_load_explicit(&e->loc, memory_order_acquire);
	if (OT_META_TAG(atomic_load_explicit(&e->meta, memory_order_relaxed)) != OT_META_TAG(m) ||
	    OT_META_TAG(m) != STRATA_NODEID_TAG(id))
		return STRATA_ESTALE;
	v->own = b == t->marker;
	if (!v->own && (r == t->marker || !(b <= t->base && t->base < r)))
		return STRATA_ENOTVISIBLE;
	v->e = e;
	v->data = data;
	v->size = OT_INFO_SIZE(info);
	v->kind = OT_INFO_KIND(info);
	if (STRATA_UNLIKELY((uintptr_t)data & LOC_BITS)) { /* DURABLE: not loaded yet, or cached */
		const void *p;
		if (LOC_CACHED((uint64_t)(uintptr_t)data))
			pin_count_hit(t->pin);
		int rc = durable_load(t->s, e, id, &p);
		v->data = (void *)(uintptr_t)p;
		return rc;
	}
	return 0;
}

/* Bounded cache: the image is a dirty cache node, the slot only a place in
 * `data` (durable_new_image). */
static int alloc_cached(strata_txn *t, uint32_t size, uint8_t kind, strata_node_id *id,
			void **data, bool zero)
{
	strata_store *s = t->s;
	uint64_t loc;
	void *img;
	int rc = durable_new_image(s, size, &loc, &img);
	if (rc)
		return rc;
	if ((rc = ot_alloc(&s->ot, t->marker, loc, OT_INFO(size, kind), id))) {
		durable_free_slot(s, (void *)(uintptr_t)(LOC_CACHED(loc) ? cache_slot(loc) | LAZY_BIT : loc),
				  size, t->marker, EPOCH_INF);
		if LOC_CACHED(loc)
			cache_free_dirty(&s->dur->cache, loc);
		return rc;
	}
	if LOC_CACHED(loc)
		cache_set_id(loc, *id);
	if ((rc = idvec_push(&t->reserved, *id))) {
		store_free_node(s, *id, ot_entry_of(&s->ot, *id));
		return rc;
	}
	if (zero)
		memset(img, 0, size);
	*data = img;
	return 0;
}

/* zero: the caller gets fresh bytes to fill; a copy-on-write copy is
 * overwritten in whole at once, and zeroing it first was 23 % of a B+tree
 * put. */
static int alloc_node(strata_txn *t, uint32_t size, uint8_t kind, strata_node_id *id, void **data,
		      bool zero)
{
	strata_store *s = t->s;
	durable *d = s->dur;
	if (d && d->cache.cap)
		return alloc_cached(t, size, kind, id, data, zero);
	void *p = zero ? seg_alloc_node(&s->seg, size) : seg_alloc_node_raw(&s->seg, size);
	if (!p)
		return STRATA_ENOMEM;
	int rc = ot_alloc(&s->ot, t->marker, (uint64_t)(uintptr_t)p, OT_INFO(size, kind), id);
	if (rc) {
		seg_free_node(&s->seg, p, size);
		return rc;
	}
	if ((rc = idvec_push(&t->reserved, *id))) {
		store_free_node(s, *id, ot_entry_of(&s->ot, *id));
		return rc;
	}
	*data = p;
	return 0;
}

static int alloc_checked(strata_txn *t, uint32_t size, uint8_t kind, strata_node_id *id,
			 void **data, bool zero)
{
	if (!t || !id || !data || size == 0)
		return STRATA_EINVAL;
	if (size > STRATA_NODE_MAX)
		return STRATA_ETOOBIG;
	return alloc_node(t, size, kind, id, data, zero);
}

int strata_txn_alloc(strata_txn *t, uint32_t size, uint8_t kind, strata_node_id *id, void **data)
{
	return alloc_checked(t, size, kind, id, data, true);
}

int strata_txn_alloc_uninit(strata_txn *t, uint32_t size, uint8_t kind, strata_node_id *id,
			    void **data)
{
	return alloc_checked(t, size, kind, id, data, false);
}

/* strata_txn_read and strata_txn_read_own (the out-pointers optional);
 * inlined in both, each a hot entry point of its own. */
static inline __attribute__((always_inline)) int read_view(strata_txn *t, strata_node_id id,
							   const void **data, uint32_t *size,
							   uint8_t *kind, int *owned)
{
	txn_view v;
	int rc = txn_lookup(t, id, &v);
	if (rc)
		return rc;
	*data = v.data;
	if (size)
		*size = v.size;
	if (kind)
		*kind = v.kind;
	if (owned)
		*owned = v.own;
	return 0;
}

int strata_txn_read_own(strata_txn *t, strata_node_id id, const void **data, uint32_t *size,
			int *owned)
{
	if (!t || !data || !owned)
		return STRATA_EINVAL;
	return read_view(t, id, data, size, NULL, owned);
}

/* Only the entry's address, from the chunk directory (small and hot): the
 * entry itself is what misses at 1M nodes (76 % of txn_lookup's time in an
 * X-tree insert, on the leaf's entry). ot_entry_loaded never faults a DURABLE
 * chunk in; a NodeID's index field cannot reach past the directory. */
void strata_txn_prefetch(const strata_txn *t, strata_node_id id)
{
	if (!t)
		return;
	const ot_entry *e = ot_entry_loaded(&t->s->ot, id);
	if (e)
		__builtin_prefetch(e);
}

int strata_txn_read(strata_txn *t, strata_node_id id, const void **data, uint32_t *size,
		    uint8_t *kind)
{
	if (!t || !data)
		return STRATA_EINVAL;
	return read_view(t, id, data, size, kind, NULL);
}

/* Our marker -> `to` in a retire stamp we claimed: one xor keeps the CRC
 * half that a checkpoint may be writing meanwhile. */
static void retire_flip(strata_txn *t, ot_entry *e, uint64_t to)
{
	atomic_fetch_xor_explicit(&e->rstamp, (t->marker ^ to) << STAMP_SHIFT, memory_order_release);
}

static void retire_undo(strata_txn *t, ot_entry *e)
{
	retire_flip(t, e, EPOCH_INF);
}

/* Claims the right to retire a committed node at this commit. */
static int retire_claim(strata_txn *t, strata_node_id id, ot_entry *e, uint32_t size)
{
	if (!ot_stamp_cas(&e->rstamp, EPOCH_INF, t->marker))
		return STRATA_EBUSY;
	if (idvec_push(&t->retired, id)) {
		retire_undo(t, e);
		return STRATA_ENOMEM;
	}
	t->retired_bytes += size;
	return 0;
}

static void retire_unclaim(strata_txn *t, ot_entry *e, uint32_t size)
{
	t->retired.n--;
	t->retired_bytes -= size;
	retire_undo(t, e);
}

int strata_txn_write(strata_txn *t, strata_node_id id, strata_node_id *new_id, void **data,
		     uint32_t *size)
{
	if (!t || !new_id || !data)
		return STRATA_EINVAL;
	txn_view v;
	int rc = txn_lookup(t, id, &v);
	if (rc)
		return rc;
	if (size)
		*size = v.size;
	if (v.own) {
		*new_id = id;
		*data = v.data;
		return 0;
	}
	if ((rc = retire_claim(t, id, v.e, v.size)))
		return rc;
	void *copy;
	if ((rc = alloc_node(t, v.size, v.kind, new_id, &copy, false))) {
		retire_unclaim(t, v.e, v.size);
		return rc;
	}
	memcpy(copy, v.data, v.size);
	*data = copy;
	return 0;
}

int strata_txn_rewrite(strata_txn *t, strata_node_id id, uint32_t new_size, strata_node_id *new_id,
		       void **data, const void **old_data, uint32_t *old_size)
{
	if (!t || !new_id || !data || !old_data)
		return STRATA_EINVAL;
	if (new_size > STRATA_NODE_MAX)
		return STRATA_ETOOBIG;
	txn_view v;
	int rc = txn_lookup(t, id, &v);
	if (rc)
		return rc;
	uint32_t size = new_size ? new_size : v.size;
	if (v.own) { /* replaced, not freed: the caller reads it while filling the new one */
		if ((rc = idvec_push(&t->dropped, id)))
			return rc;
		if ((rc = alloc_node(t, size, v.kind, new_id, data, false))) {
			t->dropped.n--;
			return rc;
		}
	} else {
		if ((rc = retire_claim(t, id, v.e, v.size)))
			return rc;
		if ((rc = alloc_node(t, size, v.kind, new_id, data, false))) {
			retire_unclaim(t, v.e, v.size);
			return rc;
		}
	}
	*old_data = v.data;
	if (old_size)
		*old_size = v.size;
	return 0;
}

int strata_txn_free(strata_txn *t, strata_node_id id)
{
	if (!t)
		return STRATA_EINVAL;
	txn_view v;
	int rc = txn_lookup(t, id, &v);
	if (rc)
		return rc;
	if (v.own) {
		/* Never visible to anyone: free now. Its entry in `reserved`
		 * turns stale and commit/abort skip it. */
		store_free_node(t->s, id, v.e);
		return 0;
	}
	return retire_claim(t, id, v.e, v.size);
}

/* Is `name` r's name? Byte by byte, reading name no further than its
 * terminator (a root's name holds no NUL, so a shorter name differs
 * there): no strnlen and memcmp calls for the short names roots have. */
static bool root_named(const root *r, const char *name)
{
	size_t i = 0;
	for (; i < r->name_len; i++)
		if (name[i] != r->name[i])
			return false;
	return name[i] == '\0';
}

/* Out of line, so find_root calls nothing on its way to a match. */
static __attribute__((noinline)) int root_missing(const char *name)
{
	size_t len;
	int rc = catalog_name_ok(name, &len);
	return rc ? rc : STRATA_ENOTLOCKED;
}

/* A root's name is valid, so a match needs no check of `name` first; only
 * a miss says why (ENAME or ENOTLOCKED). An X-tree insert asks for its
 * root once: this took ~90 instructions of it, ~40 now. */
static txn_root *find_root(strata_txn *t, const char *name, int *rc)
{
	*rc = 0;
	for (size_t i = 0; name && i < t->nroots; i++)
		if (root_named(t->roots[i].r, name))
			return &t->roots[i];
	*rc = root_missing(name);
	return NULL;
}

int strata_txn_get_root(strata_txn *t, const char *name, strata_node_id *id)
{
	if (!t || !id)
		return STRATA_EINVAL;
	int rc;
	txn_root *tr = find_root(t, name, &rc);
	if (!tr)
		return rc;
	if (tr->set) {
		*id = tr->pending;
	} else {
		/* We hold the root's lock: the head is the latest commit. */
		const root_version *v = atomic_load_explicit(&tr->r->head, memory_order_acquire);
		*id = v ? v->id : STRATA_NODE_NULL;
	}
	return 0;
}

int strata_txn_set_root(strata_txn *t, const char *name, strata_node_id id)
{
	if (!t)
		return STRATA_EINVAL;
	int rc;
	txn_root *tr = find_root(t, name, &rc);
	if (!tr)
		return rc;
	if (id != STRATA_NODE_NULL) {
		txn_view v;
		if ((rc = txn_lookup(t, id, &v)))
			return rc;
	}
	tr->pending = id;
	tr->set = true;
	return 0;
}

/* ---- commit / abort ------------------------------------------------------- */

static bool root_needs_version(const txn_root *tr)
{
	return tr->set || !atomic_load_explicit(&tr->r->head, memory_order_relaxed);
}

/* Reserved entries still owned (not freed inside the transaction).
 * ot_entry_of checks the tag: a handle freed inside the transaction and
 * issued to it again is owned by the newer NodeID only. */
static ot_entry *owned_entry(strata_txn *t, strata_node_id id)
{
	ot_entry *e = ot_entry_of(&t->s->ot, id);
	if (e && stamp_val(atomic_load_explicit(&e->bstamp, memory_order_relaxed)) == t->marker)
		return e;
	return NULL;
}

/* Own nodes that strata_txn_rewrite replaced: the caller may have read them
 * up to now, so they are freed only when the transaction ends. */
static void free_dropped(strata_txn *t)
{
	for (size_t i = 0; i < t->dropped.n; i++) {
		ot_entry *e = owned_entry(t, t->dropped.v[i]);
		if (e)
			store_free_node(t->s, t->dropped.v[i], e);
	}
	t->dropped.n = 0;
}

/* The entries stamped at commit were last touched while the transaction
 * built its nodes, long enough ago to be out of cache: look ahead. */
#define PF_STAMP 8u
static void prefetch_entry(const strata_txn *t, const strata_node_id *v, size_t n, size_t i)
{
	if (i + PF_STAMP < n) {
		const ot_entry *e = ot_entry_loaded(&t->s->ot, v[i + PF_STAMP]);
		if (e)
			__builtin_prefetch(e, 1);
	}
}

/* Births leave their shards' RESERVED counts one subtraction per run of a
 * shard, not one locked instruction per node. */
static void unreserve(strata_txn *t, uint32_t shard, uint64_t n)
{
	if (n)
		atomic_fetch_sub_explicit(&t->s->ot.shards[shard].reserved, n, memory_order_relaxed);
}

static void stamp_nodes(strata_txn *t, uint64_t E)
{
	uint64_t born = 0, run = 0;
	uint32_t run_shard = 0;
	for (size_t i = 0; i < t->reserved.n; i++) {
		prefetch_entry(t, t->reserved.v, t->reserved.n, i);
		strata_node_id id = t->reserved.v[i];
		ot_entry *e = owned_entry(t, id);
		if (!e)
			continue;
		/* release: resolve's no-re-check argument (snapshot.c). A plain
		 * store: nothing else writes the stamp of a node not yet born
		 * (its CRC half is still 0: checkpoints skip invisible nodes). */
		atomic_store_explicit(&e->bstamp, E << STAMP_SHIFT, memory_order_release);
		atomic_store_explicit(&e->meta, OT_META(STRATA_NODEID_TAG(id), OT_LIVE),
				      memory_order_relaxed);
		if (STRATA_NODEID_SHARD(id) != run_shard) {
			unreserve(t, run_shard, run);
			run_shard = STRATA_NODEID_SHARD(id);
			run = 0;
		}
		run++;
		born++;
	}
	unreserve(t, run_shard, run);
	for (size_t i = 0; i < t->retired.n; i++) {
		prefetch_entry(t, t->retired.v, t->retired.n, i);
		strata_node_id id = t->retired.v[i];
		ot_entry *e = ot_entry_of(&t->s->ot, id);
		retire_flip(t, e, E);
		atomic_store_explicit(&e->meta, OT_META(STRATA_NODEID_TAG(id), OT_RETIRED),
				      memory_order_relaxed);
	}
	atomic_fetch_add_explicit(&t->s->nodes_live, born - t->retired.n, memory_order_relaxed);
	atomic_fetch_add_explicit(&t->s->nodes_retired, t->retired.n, memory_order_relaxed);
}

/* Everything commit needs that can fail, allocated up front. */
typedef struct commit_prep {
	root_version **versions; /* one per root needing a version, else NULL */
	reclaim_batch *batch;
} commit_prep;

static void prep_free(strata_txn *t, commit_prep *p)
{
	if (p->versions) {
		for (size_t i = 0; i < t->nroots; i++)
			strata_mem_free(p->versions[i], sizeof(root_version));
		strata_mem_free(p->versions, sizeof(root_version *) * t->nroots);
	}
	if (p->batch)
		strata_mem_free(p->batch, sizeof *p->batch + sizeof(strata_node_id) * p->batch->n);
}

static int prep_alloc(strata_txn *t, commit_prep *p)
{
	memset(p, 0, sizeof *p);
	if (t->nroots && !(p->versions = strata_mem_calloc(t->nroots, sizeof(root_version *))))
		return STRATA_ENOMEM;
	for (size_t i = 0; i < t->nroots; i++)
		if (root_needs_version(&t->roots[i]) &&
		    !(p->versions[i] = strata_mem_alloc(sizeof(root_version))))
			goto nomem;
	if (t->retired.n) {
		p->batch = strata_mem_alloc(sizeof *p->batch + sizeof(strata_node_id) * t->retired.n);
		if (!p->batch)
			goto nomem;
		p->batch->n = (uint32_t)t->retired.n;
		p->batch->bytes = t->retired_bytes;
		memcpy(p->batch->ids, t->retired.v, sizeof(strata_node_id) * t->retired.n);
	}
	return 0;
nomem:
	prep_free(t, p);
	return STRATA_ENOMEM;
}

static void publish_roots(strata_txn *t, commit_prep *p, uint64_t E)
{
	for (size_t i = 0; i < t->nroots; i++) {
		root_version *v = p->versions[i];
		if (!v)
			continue;
		txn_root *tr = &t->roots[i];
		root_version *head = atomic_load_explicit(&tr->r->head, memory_order_relaxed);
		v->epoch = E;
		v->id = tr->set ? tr->pending : (head ? head->id : STRATA_NODE_NULL);
		atomic_store_explicit(&v->next, head, memory_order_relaxed);
		atomic_store_explicit(&tr->r->head, v, memory_order_release);
		p->versions[i] = NULL;
	}
}

static bool txn_changed(strata_txn *t)
{
	if (t->retired.n)
		return true;
	for (size_t i = 0; i < t->nroots; i++)
		if (root_needs_version(&t->roots[i]))
			return true;
	for (size_t i = 0; i < t->reserved.n; i++)
		if (owned_entry(t, t->reserved.v[i]))
			return true;
	return false;
}

/* DURABLE: the WAL records of this commit, built before the commit lock
 * (node bytes are referenced, not copied; the WAL copies them). */
static int build_recs(strata_txn *t, wal_rec **out, size_t *n)
{
	size_t cap = t->reserved.n + t->retired.n + t->nroots, k = 0;
	wal_rec *r = strata_mem_alloc((cap ? cap : 1) * sizeof *r);
	if (!r)
		return STRATA_ENOMEM;
	for (size_t i = 0; i < t->reserved.n; i++) {
		ot_entry *e = owned_entry(t, t->reserved.v[i]);
		if (!e)
			continue;
		uint32_t info = atomic_load_explicit(&e->info, memory_order_relaxed);
		r[k++] = (wal_rec){.type = WAL_NODE, .kind = OT_INFO_KIND(info), .id = t->reserved.v[i],
				   .bytes = loc_image(atomic_load_explicit(&e->loc, memory_order_relaxed)),
				   .len = OT_INFO_SIZE(info)};
	}
	for (size_t i = 0; i < t->retired.n; i++)
		r[k++] = (wal_rec){.type = WAL_RETIRE, .id = t->retired.v[i]};
	for (size_t i = 0; i < t->nroots; i++) {
		txn_root *tr = &t->roots[i];
		if (!root_needs_version(tr))
			continue;
		root_version *head = atomic_load_explicit(&tr->r->head, memory_order_relaxed);
		r[k++] = (wal_rec){.type = WAL_ROOT, .bytes = tr->r->name, .len = (uint32_t)tr->r->name_len,
				   .id = tr->set ? tr->pending : (head ? head->id : STRATA_NODE_NULL)};
	}
	*out = r;
	*n = k;
	return 0;
}

void (*txn_test_after_log)(strata_store *s, uint64_t E);

/* Under the commit lock: the epoch, the WAL append (DURABLE), the stamps.
 * Returns the epoch, or 0 and *rc if the WAL refused the commit. */
static uint64_t commit_locked(strata_txn *t, commit_prep *p, const wal_rec *recs, size_t nrecs,
			      int *rc)
{
	strata_store *s = t->s;
	uint64_t E = (s->dur ? s->dur->epoch_assigned
			     : atomic_load_explicit(&s->epoch_current, memory_order_relaxed)) + 1;
	if (E & EPOCH_PENDING) { /* epochs stay below 2^47: above are transaction markers */
		*rc = STRATA_EFULL;
		return 0;
	}
	if (s->dur) {
		if ((*rc = durable_log_commit(s, recs, nrecs, E, t->durability, &t->wal_end)))
			return 0;
		s->dur->epoch_assigned = E;
		if (STRATA_UNLIKELY(txn_test_after_log != NULL))
			txn_test_after_log(s, E);
	}
	stamp_nodes(t, E);
	publish_roots(t, p, E);
	if (p->batch) {
		p->batch->epoch = E;
		reclaim_enqueue(&s->rec, p->batch);
		p->batch = NULL;
	}
	if (s->dur) /* published by durable_finish_commit, or any syncer, from now */
		durable_commit_ready(s, E);
	else
		atomic_store_explicit(&s->epoch_current, E, memory_order_release);
	return E;
}

int strata_txn_commit(strata_txn *t, uint64_t *epoch)
{
	if (!t)
		return STRATA_EINVAL;
	strata_store *s = t->s;
	free_dropped(t);
	if (!txn_changed(t)) {
		if (epoch)
			*epoch = t->base;
		txn_release(t);
		return 0;
	}
	commit_prep p;
	wal_rec *recs = NULL;
	size_t nrecs = 0;
	int rc = s->dur ? build_recs(t, &recs, &nrecs) : 0;
	if (rc || prep_alloc(t, &p)) {
		strata_mem_free(recs, 0);
		strata_txn_abort(t);
		return rc ? rc : STRATA_ENOMEM;
	}
	pthread_mutex_lock(&s->commit_lock);
	/* strata_make_durable may have switched the store since we looked. */
	if (s->dur && !recs && (rc = build_recs(t, &recs, &nrecs))) {
		pthread_mutex_unlock(&s->commit_lock);
		prep_free(t, &p);
		strata_txn_abort(t);
		return rc;
	}
	uint64_t E = commit_locked(t, &p, recs, nrecs, &rc);
	pthread_mutex_unlock(&s->commit_lock);
	strata_mem_free(recs, 0);
	if (!E) {
		prep_free(t, &p);
		strata_txn_abort(t);
		return rc;
	}
	if (s->dur)
		rc = durable_finish_commit(s, E, t->wal_end, t->durability);
	prep_free(t, &p);
	if (rc) { /* not visible, and never will be: the store is poisoned */
		txn_release(t);
		return rc;
	}
	atomic_fetch_add_explicit(&s->commits, 1, memory_order_relaxed);
	if (epoch)
		*epoch = E;
	txn_release(t);
	if (atomic_fetch_add_explicit(&s->commits_since_reclaim, 1, memory_order_relaxed) + 1 >=
	    s->opts.reclaim_interval) {
		atomic_store_explicit(&s->commits_since_reclaim, 0, memory_order_relaxed);
		reclaim_run(s, false);
	}
	return 0;
}

void strata_txn_abort(strata_txn *t)
{
	if (!t)
		return;
	strata_store *s = t->s;
	for (size_t i = 0; i < t->reserved.n; i++) {
		ot_entry *e = owned_entry(t, t->reserved.v[i]);
		if (e)
			store_free_node(s, t->reserved.v[i], e);
	}
	for (size_t i = 0; i < t->retired.n; i++) {
		retire_undo(t, ot_entry_of(&s->ot, t->retired.v[i]));
	}
	atomic_fetch_add_explicit(&s->aborts, 1, memory_order_relaxed);
	txn_release(t);
}
