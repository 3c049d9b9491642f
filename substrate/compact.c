/*
 * compact.c — compaction of `data` (strata_compact; a round per checkpoint
 * of the coordinator when the file has grown too sparse).
 *
 * A round runs under the checkpoint lock, just before a checkpoint:
 *   1. victims: in each size class whose segments are at most
 *      compact_live_fraction full, the live slots fit in the lowest-
 *      numbered ones; every other segment of the class holding nodes is a
 *      victim (so nodes move towards the start of the file, and the end
 *      empties); victims are marked draining (never allocated from);
 *   2. with reclamation held off (rec.run) and a pin of our own, every live
 *      node in a victim gets a new slot: its bytes are copied there (and
 *      written to `data` at the new place), and its entry is repointed —
 *      NodeIDs never change; readers holding the old bytes keep them;
 *   3. the checkpoint that follows records the new places (it is forced
 *      even if no commit happened). Until it is durable the old places are
 *      what the durable checkpoint names, so the old slots are released
 *      only then (moved_old), and only to the allocator once no snapshot
 *      pinned before that may still read them (the pin generation, as for
 *      cached images: slot_grace);
 *   4. emptied segments at the end of the numbering are released and the
 *      data file truncated to the rest (seg_trim_tail); emptied ones in
 *      the middle go back to their class.
 * A crash anywhere leaves the durable checkpoint naming complete images:
 * the old ones (untouched until a newer checkpoint is durable) or the new
 * ones (written and synced before the checkpoint naming them).
 *
 * A round loads the whole object table (it must find every node of a
 * victim): compaction is maintenance, not part of a lazy open.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "durable.h"

typedef struct round {
	strata_store *s;
	durable *d;
	uint8_t *victim; /* by segment number */
	uint32_t nsegs;
	uint64_t budget, moved_bytes, moved_nodes;
	void *buf; /* a lazy image on its way */
	int rc;
} round;

/* ---- victims ----------------------------------------------------------------------- */
/* Per class: its live slots fit in the `need` lowest-numbered of its
 * segments; the class qualifies if its fill is at most the live fraction,
 * and then every other segment holding nodes is a victim (highest numbers
 * first, up to the budget). Kept segments can take every victim's nodes,
 * so nodes move down the file and never back and forth. */
static void pick_class(round *r, const seg_usage_row *u, unsigned cls, uint64_t *planned)
{
	uint64_t used = 0, slots = 0, nseg = 0, per = 0;
	for (uint32_t i = 0; i < r->nsegs; i++)
		if (u[i].cls == cls) {
			used += u[i].nslots - u[i].nfree;
			slots += u[i].nslots;
			per = u[i].nslots;
			nseg++;
		}
	if (!used || (double)used > r->s->opts.compact_live_fraction * (double)slots)
		return;
	uint64_t need = (used + per - 1) / per, kept = 0;
	if (need >= nseg)
		return; /* no segment would empty */
	for (uint32_t i = 0; i < r->nsegs; i++) {
		if (u[i].cls != cls)
			continue;
		if (kept < need) { /* lowest numbers: kept */
			kept++;
			continue;
		}
		uint32_t n = u[i].nslots - u[i].nfree;
		if (n && *planned < r->budget) {
			r->victim[i] = 1;
			*planned += (uint64_t)n * seg_class_size(cls);
		}
	}
}

static int pick_victims(round *r)
{
	strata_store *s = r->s;
	uint32_t n = atomic_load(&s->seg.nsegs);
	seg_usage_row *u = strata_mem_alloc((n ? n : 1) * sizeof *u);
	r->victim = strata_mem_calloc(n ? n : 1, 1);
	if (!u || !r->victim) {
		strata_mem_free(u, 0);
		return STRATA_ENOMEM;
	}
	int got = seg_usage(&s->seg, u, n);
	if (got < 0) {
		strata_mem_free(u, 0);
		return got;
	}
	r->nsegs = (uint32_t)got;
	uint64_t planned = 0;
	for (unsigned cls = 0; cls < STRATA_NUM_CLASSES; cls++)
		pick_class(r, u, cls, &planned);
	for (uint32_t i = 0; i < r->nsegs; i++)
		if (r->victim[i])
			seg_drain(&s->seg, i, true);
	strata_mem_free(u, (n ? n : 1) * sizeof *u);
	return 0;
}

static void end_draining(round *r)
{
	for (uint32_t i = 0; i < r->nsegs; i++)
		if (r->victim[i])
			seg_drain(&r->s->seg, i, false);
}

/* ---- moving one node ------------------------------------------------------------------ */
static uint64_t data_off(const void *slot)
{
	return (uint64_t)seg_no_of(slot) * SEG_SIZE + seg_offset_of(slot);
}

static int moved_push(durable *d, void *slot, uint32_t size)
{
	pthread_mutex_lock(&d->limbo_lock);
	int rc = 0;
	if (d->nmoved == d->moved_cap) {
		size_t cap = d->moved_cap ? d->moved_cap * 2 : 256;
		limbo_item *m = strata_mem_realloc(d->moved, d->moved_cap * sizeof *m, cap * sizeof *m);
		if (m) {
			d->moved = m;
			d->moved_cap = cap;
		} else {
			rc = STRATA_ENOMEM;
		}
	}
	if (!rc)
		d->moved[d->nmoved++] = (limbo_item){slot, size};
	pthread_mutex_unlock(&d->limbo_lock);
	return rc;
}

/* Its image, wherever it is now: memory (a slot or a cache node) or, for a
 * node not read since open, `data` (read into r->buf, checked). */
static int image_of(round *r, const ot_entry *e, uint64_t loc, uint32_t size, const void **img)
{
	if (!(loc & LAZY_BIT)) {
		*img = loc_image(loc);
		return 0;
	}
	const void *old = loc_slot(loc);
	int rc = io_pread(r->d->data, r->buf, size, data_off(old));
	if (!rc && strata_crc32c(0, r->buf, size) != ot_crc(e))
		rc = STRATA_ECORRUPT; /* damaged: it stays where it is, an error for readers */
	*img = r->buf;
	return rc;
}

/* Points entry e (holding loc) at `fresh` instead of its old slot. Cache
 * nodes keep their image: only their slot changes (under the cache lock,
 * which eviction and frees take too). */
static bool repoint(round *r, ot_entry *e, uint64_t loc, void *fresh)
{
	if (LOC_CACHED(loc)) {
		pthread_mutex_lock(&r->d->cache.lock);
		uint64_t now = atomic_load(&e->loc);
		bool ok = true;
		if (now == loc)
			cache_move_slot(loc, fresh);
		else if (now == ((uint64_t)(uintptr_t)loc_slot(loc) | LAZY_BIT)) /* evicted meanwhile */
			ok = atomic_compare_exchange_strong(&e->loc, &now, (uint64_t)(uintptr_t)fresh | LAZY_BIT);
		else
			ok = false;
		pthread_mutex_unlock(&r->d->cache.lock);
		return ok;
	}
	uint64_t want = (loc & LAZY_BIT) ? (uint64_t)(uintptr_t)fresh | LAZY_BIT : (uint64_t)(uintptr_t)fresh;
	return atomic_compare_exchange_strong(&e->loc, &loc, want);
}

static void move_one(round *r, ot_entry *e, strata_node_id id, uint32_t size)
{
	strata_store *s = r->s;
	/* The load lock: no reader loads this image while we move it. */
	pthread_mutex_t *lk = &r->d->load_locks[STRATA_NODEID_INDEX(id) % LOAD_LOCKS];
	pthread_mutex_lock(lk);
	uint64_t loc = atomic_load(&e->loc);
	void *old = loc_slot(loc);
	const void *img;
	void *fresh = NULL;
	int rc = image_of(r, e, loc, size, &img);
	if (!rc && !(fresh = seg_alloc_node_raw(&s->seg, size)))
		rc = STRATA_ENOMEM;
	if (!rc && !s->seg.headers_only && !LOC_CACHED(loc))
		memcpy(fresh, img, size); /* a slot in memory: readers of the new place */
	if (!rc && (rc = io_pwrite(r->d->data, img, size, data_off(fresh))))
		durable_poison(s, rc);
	if (!rc && !repoint(r, e, loc, fresh))
		rc = STRATA_EBUSY; /* changed under us: left for a later round */
	if (!rc && (rc = moved_push(r->d, old, size)))
		/* no room to remember the old slot: leak it, never reuse early */
		rc = 0;
	pthread_mutex_unlock(lk);
	if (rc) {
		if (fresh)
			seg_free_node(&s->seg, fresh, size);
		if (rc == STRATA_EIO || rc == STRATA_ENOMEM || rc < 0)
			r->rc = r->rc ? r->rc : rc;
		return;
	}
	r->moved_nodes++;
	r->moved_bytes += size;
}

/* Every live node whose slot is in a victim. Retired and reserved ones are
 * left: reclamation or their transaction frees them, and the victim empties. */
static void move_all(round *r)
{
	strata_store *s = r->s;
	for (uint32_t sh = 0; sh < s->ot.shards_max && !r->rc; sh++) {
		for (uint32_t i = 0; i < s->ot.shards[sh].next_index && !r->rc; i++) {
			ot_entry *e = ot_entry_peek(&s->ot, sh, i);
			if (!e) {
				i |= OT_CHUNK - 1;
				continue;
			}
			uint32_t m = atomic_load(&e->meta);
			uint32_t size = OT_INFO_SIZE(atomic_load(&e->info));
			if (OT_META_STATE(m) != OT_LIVE || ot_retire(e) != EPOCH_INF ||
			    seg_class_of(size) == STRATA_CLASS_LARGE)
				continue;
			uint32_t segno = seg_no_of(loc_slot(atomic_load(&e->loc)));
			if (segno < r->nsegs && r->victim[segno])
				move_one(r, e, ot_make_id(sh, i, OT_META_TAG(m)), size);
		}
	}
}

/* ---- after the checkpoint ------------------------------------------------------------- */
/* The checkpoint naming the new places is durable: the old slots wait only
 * for readers pinned before now. Called with limbo_lock held. */
void compact_moved_release(strata_store *s)
{
	durable *d = s->dur;
	for (size_t i = 0; i < d->nmoved; i++) {
		if (d->nsgrace == d->sgrace_cap) {
			size_t cap = d->sgrace_cap ? d->sgrace_cap * 2 : 256;
			slot_wait *w = strata_mem_realloc(d->sgrace, d->sgrace_cap * sizeof *w, cap * sizeof *w);
			if (!w)
				break; /* the rest leak: never reused early */
			d->sgrace = w;
			d->sgrace_cap = cap;
		}
		d->sgrace[d->nsgrace++] =
			(slot_wait){d->moved[i].p, d->moved[i].size, atomic_fetch_add(&s->pins.gen, 1)};
	}
	d->nmoved = 0;
}

/* Frees the old slots no pinned reader can still hold. */
void compact_sweep(strata_store *s)
{
	durable *d = s->dur;
	uint64_t oldest = pin_oldest_gen(&s->pins);
	pthread_mutex_lock(&d->free_lock); /* strata_check sees them listed or free */
	pthread_mutex_lock(&d->limbo_lock);
	size_t k = 0;
	slot_wait *done = NULL;
	size_t ndone = 0;
	for (size_t i = 0; i < d->nsgrace; i++) {
		if (d->sgrace[i].gen < oldest) {
			if (!done)
				done = strata_mem_alloc(d->nsgrace * sizeof *done);
			if (done) {
				done[ndone++] = d->sgrace[i];
				continue;
			}
		}
		d->sgrace[k++] = d->sgrace[i];
	}
	d->nsgrace = k;
	pthread_mutex_unlock(&d->limbo_lock);
	for (size_t i = 0; i < ndone; i++)
		seg_free_node(&s->seg, done[i].p, done[i].size);
	pthread_mutex_unlock(&d->free_lock);
	strata_mem_free(done, 0);
}

/* Cuts emptied segments off the end of `data` (checkpoint lock held). */
static int trim_file(strata_store *s)
{
	durable *d = s->dur;
	uint32_t before = atomic_load(&s->seg.nsegs);
	uint32_t n = seg_trim_tail(&s->seg);
	if (n == before)
		return 0;
	atomic_fetch_add(&d->compact_segments_freed, before - n);
	uint64_t size;
	int rc = io_size(d->data, &size);
	if (!rc && size > (uint64_t)n * SEG_SIZE)
		rc = io_truncate(d->data, (uint64_t)n * SEG_SIZE);
	return rc;
}

/* ---- a round, and strata_compact ---------------------------------------------------- */
/* Moves up to `budget` bytes out of sparse segments; *moved gets the bytes
 * moved. The caller holds ckpt_lock and checkpoints (forced) afterwards. */
int compact_round(strata_store *s, uint64_t budget, uint64_t *moved)
{
	round r = {.s = s, .d = s->dur, .budget = budget};
	*moved = 0;
	int rc = ot_load_all(&s->ot);
	if (rc)
		return rc;
	if (!(r.buf = strata_mem_alloc(SMALL_MAX)))
		return STRATA_ENOMEM;
	struct strata_snapshot *pin = pin_acquire(&s->pins, &s->epoch_current, PIN_CHECKPOINT);
	if (!pin) {
		strata_mem_free(r.buf, SMALL_MAX);
		return STRATA_EFULL;
	}
	if (!(rc = pick_victims(&r))) {
		pthread_mutex_lock(&s->rec.run); /* nothing is freed while we move it */
		move_all(&r);
		pthread_mutex_unlock(&s->rec.run);
		end_draining(&r);
		rc = r.rc;
	}
	pin_release(&s->pins, pin);
	strata_mem_free(r.victim, 0);
	strata_mem_free(r.buf, SMALL_MAX);
	*moved = r.moved_bytes;
	atomic_fetch_add(&s->dur->compact_rounds, 1);
	atomic_fetch_add(&s->dur->compact_moved_nodes, r.moved_nodes);
	atomic_fetch_add(&s->dur->compact_moved_bytes, r.moved_bytes);
	return rc;
}

int compact_finish(strata_store *s)
{
	compact_sweep(s);
	return trim_file(s);
}
