/*
 * reclaim.c — the queue of retired nodes and the reclamation rule.
 *
 * Each commit that retires nodes appends one batch stamped with its epoch E.
 * Commits append under the commit lock, so the queue is ordered by E. A
 * batch is freed when min(current epoch, every pin) >= E: a reader at s sees
 * a node retired at E only if s < E, and every later reader has s >= E.
 * Freeing bumps each handle's tag, so the NodeIDs in the batch turn stale.
 * Only one reclamation runs at a time (`run`); writers never wait for it
 * unless they ask to (strata_reclaim). Nodes are freed in runs of up to
 * SEG_FREE_RUN, each allocator and object-table lock taken once per run
 * (store_free_nodes), so none is held for long.
 */
#include <stdlib.h>

#include "internal.h"

int reclaim_init(reclaimer *r)
{
	r->head = r->tail = NULL;
	if (pthread_mutex_init(&r->qlock, NULL) || pthread_mutex_init(&r->run, NULL))
		return STRATA_ENOMEM;
	return 0;
}

static void batch_free(reclaim_batch *b)
{
	strata_mem_free(b, sizeof *b + sizeof(strata_node_id) * b->n);
}

void reclaim_enqueue(reclaimer *r, reclaim_batch *b)
{
	b->next = NULL;
	pthread_mutex_lock(&r->qlock);
	if (r->tail)
		r->tail->next = b;
	else
		r->head = b;
	r->tail = b;
	atomic_fetch_add_explicit(&r->pending_nodes, b->n, memory_order_relaxed);
	atomic_fetch_add_explicit(&r->pending_bytes, b->bytes, memory_order_relaxed);
	pthread_mutex_unlock(&r->qlock);
}

void reclaim_held_back(reclaimer *r, uint64_t oldest, uint64_t *nodes, uint64_t *bytes)
{
	uint64_t ready_n = 0, ready_b = 0;
	pthread_mutex_lock(&r->qlock);
	/* The queue is in epoch order: the reclaimable batches are its head. */
	for (reclaim_batch *b = r->head; b && b->epoch <= oldest; b = b->next) {
		ready_n += b->n;
		ready_b += b->bytes;
	}
	*nodes = atomic_load_explicit(&r->pending_nodes, memory_order_relaxed) - ready_n;
	*bytes = atomic_load_explicit(&r->pending_bytes, memory_order_relaxed) - ready_b;
	pthread_mutex_unlock(&r->qlock);
}

/* Detaches the batches with epoch <= oldest. */
static reclaim_batch *take_ready(reclaimer *r, uint64_t oldest)
{
	pthread_mutex_lock(&r->qlock);
	reclaim_batch *first = r->head, *last = NULL;
	for (reclaim_batch *b = r->head; b && b->epoch <= oldest; b = b->next)
		last = b;
	if (!last) {
		pthread_mutex_unlock(&r->qlock);
		return NULL;
	}
	r->head = last->next;
	if (!r->head)
		r->tail = NULL;
	last->next = NULL;
	for (reclaim_batch *b = first; b; b = b->next) {
		atomic_fetch_sub_explicit(&r->pending_nodes, b->n, memory_order_relaxed);
		atomic_fetch_sub_explicit(&r->pending_bytes, b->bytes, memory_order_relaxed);
	}
	pthread_mutex_unlock(&r->qlock);
	return first;
}

/* Bytes of batches retired after epoch e: what a reader at e keeps. */
static uint64_t retained_after(reclaimer *r, uint64_t e, uint64_t *nodes)
{
	uint64_t n, b;
	reclaim_held_back(r, e, &n, &b);
	if (nodes)
		*nodes = n;
	return b;
}

/* Marks snapshots past a cap (strata_options.snapshot_max_*). They give
 * up their pins themselves, at their next call: see snapshot.c. */
static void expire_check(strata_store *s)
{
	uint64_t max_age = s->opts.snapshot_max_age_ms, max_bytes = s->opts.snapshot_max_retained_bytes;
	if (!max_age && !max_bytes)
		return;
	uint64_t now = pin_now_ns();
	bool heavy = max_bytes && atomic_load_explicit(&s->rec.pending_bytes, memory_order_relaxed) +
					  store_grace_bytes(s) > max_bytes;
	uint32_t h = atomic_load(&s->pins.hwm);
	for (uint32_t i = 0; i < h; i++) {
		struct strata_snapshot *p = &s->pins.slots[i];
		uint64_t e = atomic_load(&p->pin);
		if (!e || e == PIN_EXPIRED || atomic_load_explicit(&p->kind, memory_order_relaxed) != PIN_SNAPSHOT ||
		    atomic_load_explicit(&p->expire, memory_order_relaxed))
			continue;
		uint64_t age = now - atomic_load_explicit(&p->opened_ns, memory_order_relaxed);
		bool old = max_age && age / 1000000u >= max_age;
		bool fat = heavy && retained_after(&s->rec, e, NULL) + store_grace_held(s, p) > max_bytes;
		if (old || fat)
			atomic_store_explicit(&p->expire, 1, memory_order_relaxed);
	}
}

/* Freeing touches cold lines per node: its object-table entry, then (in
 * memory) its segment's header and bitmap word, found through the entry.
 * Entries are asked for PF_ENTRY nodes ahead; a run's segment lines while
 * its entries are read, before the run frees any of them. */
#define PF_ENTRY 16u
static void prefetch_entry(strata_store *s, const reclaim_batch *b, uint32_t i)
{
	if (i + PF_ENTRY < b->n) {
		const ot_entry *e = ot_entry_loaded(&s->ot, b->ids[i + PF_ENTRY]);
		if (e)
			__builtin_prefetch(e, 1);
	}
}

/* Frees b->ids[i, i + n), n <= SEG_FREE_RUN: store_free_nodes takes each
 * lock once for the run, not once per node. */
static void free_run(strata_store *s, const reclaim_batch *b, uint32_t i, uint32_t n)
{
	strata_node_id ids[SEG_FREE_RUN];
	ot_entry *es[SEG_FREE_RUN];
	uint32_t k = 0;
	for (uint32_t j = i; j < i + n; j++) {
		prefetch_entry(s, b, j);
		ot_entry *e = ot_entry_of(&s->ot, b->ids[j]);
		if (!e)
			continue;
		if (!s->dur)
			seg_prefetch_free(&s->seg, entry_data(e),
					  OT_INFO_SIZE(atomic_load_explicit(&e->info, memory_order_relaxed)));
		ids[k] = b->ids[j];
		es[k++] = e;
	}
	store_free_nodes(s, ids, es, k);
}

int64_t reclaim_run(strata_store *s, bool wait)
{
	reclaimer *r = &s->rec;
	if (wait)
		pthread_mutex_lock(&r->run);
	else if (pthread_mutex_trylock(&r->run))
		return 0;
	expire_check(s);
	uint64_t oldest = pin_oldest(&s->pins, &s->epoch_current);
	int64_t freed = 0;
	reclaim_batch *b = take_ready(r, oldest);
	while (b) {
		reclaim_batch *next = b->next;
		for (uint32_t i = 0; i < b->n; i += SEG_FREE_RUN)
			free_run(s, b, i, b->n - i < SEG_FREE_RUN ? b->n - i : SEG_FREE_RUN);
		freed += b->n;
		atomic_fetch_sub_explicit(&s->nodes_retired, b->n, memory_order_relaxed);
		atomic_fetch_add_explicit(&r->freed_nodes, b->n, memory_order_relaxed);
		atomic_fetch_add_explicit(&r->freed_bytes, b->bytes, memory_order_relaxed);
		batch_free(b);
		b = next;
	}
	/* Old root versions are a few bytes each, and trimming walks every
	 * root: 4 % of the time of 64 SYNC committers at one trim per commit.
	 * Every 64th run (and every run that strata_reclaim asks for) is
	 * plenty. */
	if (wait || atomic_load_explicit(&r->runs, memory_order_relaxed) % 64 == 0)
		catalog_trim(&s->cat, oldest);
	atomic_fetch_add_explicit(&r->runs, 1, memory_order_relaxed);
	pthread_mutex_unlock(&r->run);
	return freed;
}

static int info_cmp(const void *a, const void *b)
{
	uint64_t x = ((const strata_snapshot_info *)a)->epoch, y = ((const strata_snapshot_info *)b)->epoch;
	return x < y ? -1 : x > y;
}

int strata_snapshot_list(strata_store *s, strata_snapshot_info *out, size_t max, size_t *n)
{
	if (!s || !n || (max && !out))
		return STRATA_EINVAL;
	uint64_t now = pin_now_ns();
	size_t k = 0;
	uint32_t h = atomic_load(&s->pins.hwm);
	for (uint32_t i = 0; i < h; i++) {
		struct strata_snapshot *p = &s->pins.slots[i];
		uint64_t e = atomic_load(&p->pin);
		if (!e)
			continue;
		if (k < max) {
			strata_snapshot_info *o = &out[k];
			bool gone = e == PIN_EXPIRED;
			o->epoch = snap_epoch(p);
			o->age_ms = (now - atomic_load_explicit(&p->opened_ns, memory_order_relaxed)) / 1000000u;
			o->retained_bytes = gone ? 0 : retained_after(&s->rec, e, &o->retained_nodes);
			if (gone)
				o->retained_nodes = 0;
			o->cache_bytes_held = gone ? 0 : store_grace_held(s, p);
			o->kind = atomic_load_explicit(&p->kind, memory_order_relaxed);
			o->expired = gone || atomic_load_explicit(&p->expire, memory_order_relaxed);
		}
		k++;
	}
	if (k && max)
		qsort(out, k < max ? k : max, sizeof *out, info_cmp);
	*n = k;
	return 0;
}

/* At close: nothing is pinned, free the queue's memory (node memory goes
 * with the segments). */
void reclaim_destroy(strata_store *s)
{
	reclaimer *r = &s->rec;
	reclaim_batch *b = r->head;
	while (b) {
		reclaim_batch *next = b->next;
		batch_free(b);
		b = next;
	}
	r->head = r->tail = NULL;
	pthread_mutex_destroy(&r->qlock);
	pthread_mutex_destroy(&r->run);
}
