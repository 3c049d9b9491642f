/*
 * check.c — the substrate's invariant checker, shared by the test suites and
 * `strata check`. Every violation is reported with what was found and where;
 * the function returns STRATA_ECORRUPT if there was any, so it can sit inside
 * an assert()-style check.
 *
 * Checked: each object-table entry's state against its epochs (birth <=
 * retire; LIVE: born, not retired; RETIRED: retired at or before the current
 * epoch; RESERVED: none, as no write transaction is open); every non-free
 * entry's memory is an in-use slot of the right class; per-class used-slot
 * counts and the live/retired counters equal what the table holds; each
 * shard's handles add up (free + dead + in use == issued); the newest version of
 * every root names a node visible at the current epoch; allocator bitmaps.
 *
 * Write transactions allocate and free their own nodes outside the commit
 * lock, so a check first closes the transaction gate (txn.c): it waits for
 * the open ones to end, new ones wait for it. Then it holds the reclamation
 * lock and the commit lock, so commits, reclamation and checkpoints wait;
 * snapshot readers go on (they change no slot or entry).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "durable.h"
#include "internal.h"

/* How long a check waits for open write transactions to end. */
#define CHECK_WAIT_MS 10000u

typedef struct check_ctx {
	strata_report_fn report;
	void *ctx;
	int problems;
} check_ctx;

static void problem(check_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(check_ctx *c, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	c->problems++;
	if (c->report)
		c->report(c->ctx, msg);
}

typedef struct tally {
	uint64_t live, retired, reserved, large;
	uint64_t used[STRATA_NUM_CLASSES];
} tally;

/* A cache node belongs to its entry: same NodeID and size, not unlinked. */
static void check_cached(check_ctx *c, strata_node_id id, uint64_t loc, uint32_t size)
{
	const cnode *n = (const cnode *)(uintptr_t)(loc & ~LOC_BITS);
	if (n->id != id || n->size != size || n->state > 1 || !n->image)
		problem(c, "node %#" PRIx64 ": its cache node names %#" PRIx64 " (%u bytes, state %u)",
			id, n->id, n->size, n->state);
}

static void check_entry(strata_store *s, check_ctx *c, uint32_t sh, uint32_t i, uint64_t cur,
			tally *t)
{
	ot_entry *e = ot_entry_peek(&s->ot, sh, i);
	if (!e) /* its chunk failed to load: reported by strata_check */
		return;
	uint32_t m = atomic_load(&e->meta);
	uint64_t b = ot_birth(e), r = ot_retire(e);
	uint32_t size = OT_INFO_SIZE(atomic_load(&e->info));
	strata_node_id id = ot_make_id(sh, i, OT_META_TAG(m));
	switch (OT_META_STATE(m)) {
	case OT_FREE:
		return;
	case OT_RESERVED:
		/* Only an open write transaction holds reservations, and the
		 * gate lets none stay open during a check: this one leaked. */
		t->reserved++;
		problem(c, "node %#" PRIx64 ": reserved, but no write transaction is open", id);
		if (!(b & EPOCH_PENDING))
			problem(c, "node %#" PRIx64 ": reserved but birth %" PRIu64 " is an epoch", id, b);
		break;
	case OT_LIVE:
		t->live++;
		if ((b & EPOCH_PENDING) || b > cur)
			problem(c, "node %#" PRIx64 ": live with birth %" PRIu64 " > current %" PRIu64, id,
				b, cur);
		if (r != EPOCH_INF && !(r & EPOCH_PENDING))
			problem(c, "node %#" PRIx64 ": live but retired at %" PRIu64, id, r);
		break;
	case OT_RETIRED:
		t->retired++;
		if (b > r || r > cur)
			problem(c, "node %#" PRIx64 ": birth %" PRIu64 " retire %" PRIu64 " current %" PRIu64,
				id, b, r, cur);
		break;
	}
	if (size == 0 || size > STRATA_NODE_MAX)
		problem(c, "node %#" PRIx64 ": size %u out of range", id, size);
	unsigned cls = seg_class_of(size);
	if (cls == STRATA_CLASS_LARGE)
		t->large++;
	else
		t->used[cls]++;
	uint64_t loc = atomic_load_explicit(&e->loc, memory_order_relaxed);
	if ((loc & LAZY_BIT) && cls == STRATA_CLASS_LARGE)
		return; /* DURABLE, not loaded: an offset in the checkpoint file */
	if LOC_CACHED(loc) /* bounded cache: the cache lock is held */
		check_cached(c, id, loc, size);
	if (!seg_slot_in_use(&s->seg, loc_slot(loc), size))
		problem(c, "node %#" PRIx64 ": memory %p is not an allocated slot of its class", id,
			loc_slot(loc));
}

static void check_shard(strata_store *s, check_ctx *c, uint32_t sh, uint64_t cur, tally *t)
{
	ot_shard *shard = &s->ot.shards[sh];
	pthread_mutex_lock(&shard->lock);
	uint64_t before = t->live + t->retired + t->reserved;
	for (uint32_t i = 0; i < shard->next_index; i++)
		check_entry(s, c, sh, i, cur, t);
	uint64_t in_use = t->live + t->retired + t->reserved - before;
	if (in_use + shard->nfree + shard->dead != shard->next_index)
		problem(c, "shard %u: %" PRIu64 " in use + %u free + %" PRIu64 " dead != %u issued", sh,
			in_use, shard->nfree, shard->dead, shard->next_index);
	pthread_mutex_unlock(&shard->lock);
}

static void check_counts(strata_store *s, check_ctx *c, const tally *t)
{
	if (t->live != atomic_load(&s->nodes_live))
		problem(c, "live counter %" PRIu64 " but %" PRIu64 " live entries",
			(uint64_t)atomic_load(&s->nodes_live), t->live);
	if (t->retired != atomic_load(&s->nodes_retired))
		problem(c, "retired counter %" PRIu64 " but %" PRIu64 " retired entries",
			(uint64_t)atomic_load(&s->nodes_retired), t->retired);
	if (t->large != atomic_load(&s->seg.large_objects))
		problem(c, "%" PRIu64 " large objects counted, %" PRIu64 " in the table",
			(uint64_t)atomic_load(&s->seg.large_objects), t->large);
	for (unsigned k = 0; k < STRATA_NUM_CLASSES; k++)
		if (t->used[k] != atomic_load(&s->seg.classes[k].slots_used))
			problem(c, "class %u: %" PRIu64 " slots used, %" PRIu64 " entries", k,
				(uint64_t)atomic_load(&s->seg.classes[k].slots_used), t->used[k]);
}

static void check_roots(strata_store *s, check_ctx *c, uint64_t cur)
{
	pthread_mutex_lock(&s->cat.lock);
	root_dir *d = atomic_load(&s->cat.dir);
	for (uint32_t i = 0; i < d->n; i++) {
		const root *r = d->roots[i];
		const root_version *v = root_version_at(r, cur);
		uint64_t prev = EPOCH_INF;
		for (const root_version *x = atomic_load(&r->head); x; x = atomic_load(&x->next)) {
			if (x->epoch >= prev)
				problem(c, "root '%s': versions not newest-first", r->name);
			prev = x->epoch;
		}
		if (!v || v->id == STRATA_NODE_NULL)
			continue;
		ot_entry *e = ot_entry_of(&s->ot, v->id);
		uint64_t b = e ? ot_birth(e) : 0, rt = e ? ot_retire(e) : 0;
		if (!e || !(b <= cur && (cur < rt)))
			problem(c, "root '%s' names node %#" PRIx64 ", not visible at epoch %" PRIu64,
				r->name, v->id, cur);
	}
	pthread_mutex_unlock(&s->cat.lock);
}

int strata_check(strata_store *s, strata_report_fn report, void *ctx)
{
	if (!s)
		return STRATA_EINVAL;
	int rc = txn_gate_close(s, CHECK_WAIT_MS);
	if (rc)
		return rc;
	check_ctx c = {report, ctx, 0};
	tally t = {0};
	/* Chunks still on disk (DURABLE open) are read and checked first: the
	 * counts below need every entry. */
	rc = ot_load_all(&s->ot);
	if (rc)
		problem(&c, "object table: a chunk on disk cannot be loaded: %s (%s)", strata_strerror(rc),
			strata_last_error());
	pthread_mutex_lock(&s->rec.run);
	pthread_mutex_lock(&s->commit_lock);
	uint64_t cur = atomic_load(&s->epoch_current);
	/* The cache lock keeps cache nodes from being evicted and freed under
	 * us (it is a leaf: nothing below takes another lock). */
	bool cached = s->dur && s->dur->cache.cap;
	if (cached)
		pthread_mutex_lock(&s->dur->cache.lock);
	for (uint32_t sh = 0; sh < s->ot.shards_max; sh++)
		check_shard(s, &c, sh, cur, &t);
	if (cached)
		pthread_mutex_unlock(&s->dur->cache.lock);
	if (s->dur) { /* slots in limbo, or left by compaction, are used by no entry */
		durable *d = s->dur;
		pthread_mutex_lock(&d->free_lock); /* until the used slots are read */
		pthread_mutex_lock(&d->limbo_lock);
		for (size_t i = 0; i < d->nlimbo; i++)
			t.used[seg_class_of(d->limbo[i].size)]++;
		for (size_t i = 0; i < d->nmoved; i++)
			t.used[seg_class_of(d->moved[i].size)]++;
		for (size_t i = 0; i < d->nsgrace; i++)
			t.used[seg_class_of(d->sgrace[i].size)]++;
		pthread_mutex_unlock(&d->limbo_lock);
	}
	check_counts(s, &c, &t);
	if (s->dur)
		pthread_mutex_unlock(&s->dur->free_lock);
	check_roots(s, &c, cur);
	if (seg_check(&s->seg, report, ctx))
		c.problems++;
	pthread_mutex_unlock(&s->commit_lock);
	pthread_mutex_unlock(&s->rec.run);
	txn_gate_open(s);
	return c.problems ? STRATA_ECORRUPT : 0;
}
