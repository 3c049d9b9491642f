/*
 * store.c — opening and closing a store, statistics, and the invariant
 * checker shared by tests and `strata check`.
 *
 * Epochs start at 1 (the empty store); every commit that changes something
 * publishes current+1. The store owns one of each component (see
 * internal.h); close refuses while a snapshot or transaction is open, so no
 * reader can outlive the memory it reads.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "durable.h"
#include "internal.h"

void strata_options_init(strata_options *o)
{
	if (!o)
		return;
	memset(o, 0, sizeof *o);
	o->mode = STRATA_IN_MEMORY;
	o->ot_shards_max = OT_MAX_SHARDS;
	o->ot_shards_initial = 1;
	o->max_snapshots = 1024;
	o->reclaim_interval = 1;
	o->durability = STRATA_SYNC;
	o->async_interval_ms = 10;
	o->wal_file_size = 64u << 20;
	o->checkpoint_wal_bytes = 64u << 20;
	o->checkpoint_interval_ms = 60000;
	o->checkpoint_dirty_nodes = 1000000;
	o->compact_live_fraction = 0.8;
	o->compact_amplification = 1.5;
	o->compact_min_file_bytes = 64u << 20;
	o->compact_bytes_per_round = 16u << 20;
}

static bool pow2(uint32_t x)
{
	return x && !(x & (x - 1));
}

static int options_check(const strata_options *o)
{
	if (o->mode != STRATA_IN_MEMORY && o->mode != STRATA_DURABLE)
		return STRATA_EINVAL;
	if (!pow2(o->ot_shards_max) || o->ot_shards_max > OT_MAX_SHARDS)
		return STRATA_EINVAL;
	if (!pow2(o->ot_shards_initial) || o->ot_shards_initial > o->ot_shards_max)
		return STRATA_EINVAL;
	if (o->max_snapshots == 0 || o->max_snapshots > (1u << 20) || o->reclaim_interval == 0)
		return STRATA_EINVAL;
	if (o->mode == STRATA_DURABLE) {
		uint64_t F = o->wal_file_size;
		if (!o->path || !*o->path || F < (1u << 20) || (F & (F - 1)) ||
		    (unsigned)o->durability > STRATA_NONE ||
		    (o->flags & ~(unsigned)(STRATA_OPEN_CREATE | STRATA_OPEN_SALVAGE)))
			return STRATA_EINVAL;
	}
	return 0;
}

static void store_destroy(strata_store *s);

int strata_open(const strata_options *opts, strata_store **out)
{
	return store_open_env(opts, io_env_posix(), out);
}

int store_open_env(const strata_options *opts, io_env *env, strata_store **out)
{
	if (!out)
		return STRATA_EINVAL;
	*out = NULL;
	strata_options o;
	if (opts)
		o = *opts;
	else
		strata_options_init(&o);
	int rc = options_check(&o);
	if (rc)
		return rc;
	strata_store *s = strata_mem_aligned(CACHELINE, sizeof *s);
	if (!s)
		return STRATA_ENOMEM;
	memset(s, 0, sizeof *s);
	s->opts = o;
	s->opts.path = NULL; /* not owned; DURABLE copies it when it arrives */
	atomic_store(&s->epoch_current, 1);
	atomic_store(&s->next_txn, 1);
	pthread_mutex_init(&s->commit_lock, NULL);
	pthread_mutex_init(&s->gate_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* the check's deadline */
	pthread_cond_init(&s->gate_cond, &ca);
	pthread_condattr_destroy(&ca);
	if ((rc = ot_init(&s->ot, o.ot_shards_max, o.ot_shards_initial)))
		goto err_ot;
	if ((rc = seg_init(&s->seg)))
		goto err_seg;
	segpool_store_opened();
	if ((rc = pin_init(&s->pins, s, &s->ot, o.max_snapshots)))
		goto err_pin;
	if ((rc = catalog_init(&s->cat)))
		goto err_cat;
	if ((rc = reclaim_init(&s->rec)))
		goto err_rec;
	if (o.mode == STRATA_DURABLE && (rc = durable_open_env(s, &o, env))) {
		store_destroy(s);
		return rc;
	}
	*out = s;
	return 0;
err_rec:
	catalog_destroy(&s->cat);
err_cat:
	pin_destroy(&s->pins);
err_pin:
	seg_destroy(&s->seg);
	segpool_store_closed();
err_seg:
	ot_destroy(&s->ot);
err_ot:
	pthread_mutex_destroy(&s->commit_lock);
	pthread_mutex_destroy(&s->gate_lock);
	pthread_cond_destroy(&s->gate_cond);
	strata_mem_free(s, sizeof *s);
	return rc;
}

/* Large objects are separate allocations; segments go wholesale. */
static void free_large_objects(strata_store *s)
{
	for (uint32_t sh = 0; sh < s->ot.shards_max; sh++) {
		uint32_t n = s->ot.shards[sh].next_index;
		for (uint32_t i = 0; i < n; i++) {
			ot_entry *e = ot_entry_peek(&s->ot, sh, i);
			if (!e) { /* a chunk never loaded: nothing in memory */
				i |= OT_CHUNK - 1;
				continue;
			}
			uint32_t m = atomic_load_explicit(&e->meta, memory_order_relaxed);
			uint32_t size = OT_INFO_SIZE(atomic_load_explicit(&e->info, memory_order_relaxed));
			uint64_t loc = atomic_load_explicit(&e->loc, memory_order_relaxed);
			if (OT_META_STATE(m) != OT_FREE && seg_class_of(size) == STRATA_CLASS_LARGE &&
			    !(loc & 1)) /* a lazy one was never loaded */
				seg_free_node(&s->seg, entry_data(e), size);
		}
	}
}

/* Snapshots or transactions of the caller still open? A checkpoint in
 * progress pins an epoch of its own: wait for it (it cannot start another
 * while we hold ckpt_lock), so that pin is not taken for the caller's. */
static bool store_busy(strata_store *s)
{
	struct durable *d = s->dur;
	if (d)
		pthread_mutex_lock(&d->ckpt_lock);
	bool busy = pin_count(&s->pins) || atomic_load(&s->txns_open);
	if (d)
		pthread_mutex_unlock(&d->ckpt_lock);
	return busy;
}

int strata_close(strata_store *s)
{
	if (!s)
		return 0;
	if (store_busy(s))
		return STRATA_EBUSY;
	int rc = s->dur ? durable_close(s) : 0;
	store_destroy(s);
	return rc;
}

static void store_destroy(strata_store *s)
{
	durable_free(s);
	free_large_objects(s);
	reclaim_destroy(s);
	catalog_destroy(&s->cat);
	pin_destroy(&s->pins);
	seg_destroy(&s->seg);
	segpool_store_closed(); /* the last store's close joins the prefault thread */
	ot_destroy(&s->ot);
	pthread_mutex_destroy(&s->commit_lock);
	pthread_mutex_destroy(&s->gate_lock);
	pthread_cond_destroy(&s->gate_cond);
	strata_mem_free(s, sizeof *s);
}

void store_free_node(strata_store *s, strata_node_id id, ot_entry *e)
{
	uint32_t size = OT_INFO_SIZE(atomic_load_explicit(&e->info, memory_order_relaxed));
	if (s->dur)
		durable_free_slot(s, (void *)(uintptr_t)durable_loc_for_free(s, e), size,
				  ot_birth(e), ot_retire(e));
	else
		seg_free_node(&s->seg, entry_data(e), size);
	ot_free(&s->ot, id);
}

void store_free_nodes(strata_store *s, const strata_node_id *ids, ot_entry *const *e, uint32_t n)
{
	void *p[SEG_FREE_RUN];
	uint32_t size[SEG_FREE_RUN];
	for (uint32_t i = 0; i < n; i++) {
		size[i] = OT_INFO_SIZE(atomic_load_explicit(&e[i]->info, memory_order_relaxed));
		if (s->dur)
			durable_free_slot(s, (void *)(uintptr_t)durable_loc_for_free(s, e[i]), size[i],
					  ot_birth(e[i]), ot_retire(e[i]));
		else
			p[i] = entry_data(e[i]);
	}
	if (!s->dur)
		seg_free_nodes(&s->seg, p, size, n);
	ot_free_ids(&s->ot, ids, n);
}

int64_t strata_reclaim(strata_store *s)
{
	return s ? reclaim_run(s, true) : STRATA_EINVAL;
}

uint64_t store_requested_bytes(strata_store *s)
{
	uint64_t r = atomic_load(&s->seg.large_bytes);
	for (unsigned i = 0; i < STRATA_NUM_CLASSES; i++)
		r += atomic_load(&s->seg.classes[i].bytes_requested);
	return r;
}

int strata_stats(strata_store *s, strata_store_stats *st)
{
	if (!s || !st)
		return STRATA_EINVAL;
	memset(st, 0, sizeof *st);
	st->nodes_live = atomic_load(&s->nodes_live);
	st->nodes_retired = atomic_load(&s->nodes_retired);
	ot_counts(&s->ot, &st->nodes_reserved, &st->handles_free, &st->handles_total);
	st->shards_active = atomic_load(&s->ot.shards_active);
	st->shards_max = s->ot.shards_max;
	st->epoch_current = atomic_load(&s->epoch_current);
	st->epoch_oldest_pinned = pin_oldest(&s->pins, &s->epoch_current);
	st->snapshots_open = pin_count(&s->pins);
	reclaim_held_back(&s->rec, st->epoch_oldest_pinned, &st->pinned_retired_nodes,
			  &st->pinned_retired_bytes);
	st->reclaim_runs = atomic_load(&s->rec.runs);
	st->reclaimed_nodes = atomic_load(&s->rec.freed_nodes);
	st->reclaimed_bytes = atomic_load(&s->rec.freed_bytes);
	st->commits = atomic_load(&s->commits);
	st->aborts = atomic_load(&s->aborts);
	st->large_objects = atomic_load(&s->seg.large_objects);
	st->large_bytes = atomic_load(&s->seg.large_bytes);
	st->chunks_loaded = atomic_load(&s->ot.chunks_faulted);
	st->chunks_on_disk = atomic_load(&s->ot.chunks_lazy);
	st->segments_unbuilt = atomic_load(&s->seg.lazy_left);
	uint64_t requested = st->large_bytes;
	for (unsigned i = 0; i < STRATA_NUM_CLASSES; i++) {
		seg_class *c = &s->seg.classes[i];
		strata_class_stats *cs = &st->classes[i];
		cs->slot_size = c->slot_size;
		cs->segments = atomic_load(&c->segments);
		cs->slots_total = atomic_load(&c->slots_total);
		cs->slots_used = atomic_load(&c->slots_used);
		cs->bytes_used = cs->slots_used * c->slot_size;
		cs->bytes_requested = atomic_load(&c->bytes_requested);
		st->segment_bytes += cs->segments * SEG_SIZE;
		requested += cs->bytes_requested;
	}
	struct durable *d = s->dur;
	if (d) {
		cache_stats(&d->cache, st);
		st->cache_hits = pin_hits(&s->pins);
	}
	st->snapshots_expired = atomic_load(&s->snapshots_expired);
	if (d) {
		st->compact_rounds = atomic_load(&d->compact_rounds);
		st->compact_moved_nodes = atomic_load(&d->compact_moved_nodes);
		st->compact_moved_bytes = atomic_load(&d->compact_moved_bytes);
		st->compact_segments_freed = atomic_load(&d->compact_segments_freed);
	}
	st->pool_hits = atomic_load(&s->seg.pool_hits);
	st->pool_misses = atomic_load(&s->seg.pool_misses);
	segpool_stats(&st->pool_prefaulted, &st->pool_bytes, NULL);
	uint64_t held = st->segment_bytes + st->large_bytes;
	if (d)
		durable_space(s, requested, st);
	st->fragmentation = held ? 1.0 - (double)requested / (double)held : 0.0;
	return 0;
}
