/*
 * reclaim.c — the queue of retired nodes and the reclamation rule.
 *
 * Each commit that retires nodes appends one batch stamped with its epoch E.
 * Commits append under the commit lock, so the queue is ordered by E. A
 * batch is freed when min(current epoch, every pin) >= E: a reader at s sees
 * a node retired at E only if s < E, and every later reader has s >= E.
 * Freeing bumps each handle's tag, so the NodeIDs in the batch turn stale.
 * Only one reclamation runs at a time (`run`); writers never wait for it
 * unless they ask to (strata_reclaim).
 */
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

int64_t reclaim_run(strata_store *s, bool wait)
{
	reclaimer *r = &s->rec;
	if (wait)
		pthread_mutex_lock(&r->run);
	else if (pthread_mutex_trylock(&r->run))
		return 0;
	uint64_t oldest = pin_oldest(&s->pins, &s->epoch_current);
	int64_t freed = 0;
	reclaim_batch *b = take_ready(r, oldest);
	while (b) {
		reclaim_batch *next = b->next;
		for (uint32_t i = 0; i < b->n; i++) {
			ot_entry *e = ot_entry_of(&s->ot, b->ids[i]);
			if (e)
				store_free_node(s, b->ids[i], e);
		}
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
