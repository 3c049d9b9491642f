/*
 * durable.c — DURABLE mode (see durable.h for the pieces and their locks).
 *
 * Commit: under the commit lock the transaction's changes are appended to
 * the WAL (epoch order = WAL order) and queued for publication, not ready;
 * still under the lock the transaction stamps its nodes and publishes its
 * root versions, then marks the entry ready (durable_commit_ready). After
 * the lock, SYNC waits for its frames to be durable (group commit), then
 * publication advances: epochs become visible in order, a SYNC one only when
 * durable, none before it is ready. (Without the ready mark, any syncer's
 * on_durable could publish E between the append and the stamps: a
 * snapshot at E then found E's retire stamps without E's root version, or
 * E-1's nodes without E's, and reclamation could free what it read.) The
 * transaction keeps its root locks until its epoch is visible, so the next
 * writer of those roots reads it.
 *
 * Lock order: commit lock -> pub_lock; ckpt_lock -> commit lock -> pub_lock;
 * ckpt_lock -> free_lock -> limbo_lock, and free_lock -> the allocator's
 * class locks (slots leaving limbo are freed under it); limbo_lock and
 * load locks are leaves.
 *
 * Fail-stop: the first failed write or sync (WAL, data, checkpoint,
 * superblock) poisons the store: commits and checkpoints return STRATA_EIO
 * from then on, reads of committed data go on.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "crc32c.h"
#include "durable.h"

/* ---- messages --------------------------------------------------------------- */
static _Thread_local char last_error[512];

void store_set_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(last_error, sizeof last_error, fmt, ap);
	va_end(ap);
}

const char *strata_last_error(void)
{
	return last_error;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void durable_poison(strata_store *s, int err)
{
	int zero = 0;
	if (atomic_compare_exchange_strong(&s->dur->poisoned, &zero, err ? err : STRATA_EIO)) {
		pthread_mutex_lock(&s->dur->pub_lock);
		pthread_cond_broadcast(&s->dur->pub_cond); /* waiters must fail */
		pthread_mutex_unlock(&s->dur->pub_lock);
	}
}

/* Bounded cache: dirty images cannot be evicted, so a checkpoint is due
 * once they fill half of it. */
static bool cache_dirty_high(durable *d)
{
	return d->cache.cap && atomic_load_explicit(&d->cache.dirty, memory_order_relaxed) > d->cache.cap / 2;
}

/* ---- lazy loading ------------------------------------------------------------------ */
static int load_image(strata_store *s, const ot_entry *e, strata_node_id id, uint64_t loc,
		      uint32_t size, void **out)
{
	durable *d = s->dur;
	bool large = seg_class_of(size) == STRATA_CLASS_LARGE;
	void *p = large ? strata_mem_alloc(size) : (void *)(uintptr_t)(loc & ~LAZY_BIT);
	if (!p)
		return STRATA_ENOMEM;
	int rc = large ? io_pread(d->ckpt, p, size, loc >> 1)
		       : io_pread(d->data, p, size,
				  (uint64_t)seg_no_of(p) * SEG_SIZE + seg_offset_of(p));
	/* An image past the end of its file is damage like a bad checksum. */
	if (rc == STRATA_ETRUNCATED || (!rc && strata_crc32c(0, p, size) != ot_crc(e))) {
		store_set_error("node %#" PRIx64 ": image %s (%s)", id,
				rc ? "lies past the end of its file" : "fails its checksum",
				large ? "checkpoint large section" : "data file");
		rc = STRATA_ECORRUPT;
	}
	if (rc && large)
		strata_mem_free(p, size);
	if (!rc && !large)
		seg_note_loaded(&s->seg, p, size);
	*out = rc ? NULL : p;
	return rc;
}

int durable_load(strata_store *s, ot_entry *e, strata_node_id id, const void **data)
{
	uint64_t loc = atomic_load_explicit(&e->loc, memory_order_acquire);
	if LOC_CACHED(loc) { /* bounded cache: a hit */
		*data = cache_hit(loc);
		return 0;
	}
	if (!(loc & LAZY_BIT)) {
		*data = (const void *)(uintptr_t)loc;
		return 0;
	}
	pthread_mutex_t *lk = &s->dur->load_locks[STRATA_NODEID_INDEX(id) % LOAD_LOCKS];
	pthread_mutex_lock(lk);
	uint32_t size = OT_INFO_SIZE(atomic_load_explicit(&e->info, memory_order_relaxed));
	bool large = seg_class_of(size) == STRATA_CLASS_LARGE;
	if (large) /* its location names a place in `ckpt`, which ckpt_adopt changes */
		pthread_rwlock_rdlock(&s->dur->file_lock);
	loc = atomic_load_explicit(&e->loc, memory_order_acquire);
	int rc = 0;
	const void *img = NULL;
	if LOC_CACHED(loc) { /* loaded by another reader meanwhile */
		img = cache_hit(loc);
	} else if (!(loc & LAZY_BIT)) {
		img = (const void *)(uintptr_t)loc;
	} else if (!large && s->dur->cache.cap) {
		rc = cache_load(s, e, id, loc, size, &img);
	} else {
		void *p;
		if (!(rc = load_image(s, e, id, loc, size, &p))) {
			atomic_store_explicit(&e->loc, (uint64_t)(uintptr_t)p, memory_order_release);
			img = p;
		}
	}
	if (large)
		pthread_rwlock_unlock(&s->dur->file_lock);
	pthread_mutex_unlock(lk);
	*data = img;
	return rc;
}

/* A new node's memory: its slot in segment memory, or (bounded cache, small
 * nodes) its slot for `data` plus a dirty cache image. *loc is what the
 * entry holds; *image (optional) where to write the bytes. Unzeroed. */
int durable_new_image(strata_store *s, uint32_t size, uint64_t *loc, void **image)
{
	void *p = seg_alloc_node_raw(&s->seg, size);
	if (!p)
		return STRATA_ENOMEM;
	if (!s->dur->cache.cap || seg_class_of(size) == STRATA_CLASS_LARGE) {
		*loc = (uint64_t)(uintptr_t)p;
		if (image)
			*image = p;
		return 0;
	}
	void *img;
	int rc = cache_new_dirty(s, p, size, loc, &img);
	if (rc) {
		seg_free_node(&s->seg, p, size);
		return rc;
	}
	if (image)
		*image = img;
	return 0;
}

/* ---- limbo --------------------------------------------------------------------------- */
/* The durable checkpoint (epoch ckpt_epoch) names a node's slot iff the
 * node was visible then: born at or before it, retired after it. Only such
 * slots wait in limbo; one retired by then was in no checkpoint since. */
void durable_free_slot(strata_store *s, void *p, uint32_t size, uint64_t birth, uint64_t retire)
{
	durable *d = s->dur;
	bool large = seg_class_of(size) == STRATA_CLASS_LARGE;
	if ((uintptr_t)p & LAZY_BIT) {
		if (large) { /* never loaded: nothing in memory */
			atomic_fetch_sub(&s->seg.large_objects, 1);
			atomic_fetch_sub(&s->seg.large_bytes, size);
			return;
		}
		p = (void *)((uintptr_t)p & ~LAZY_BIT);
	}
	pthread_mutex_lock(&d->limbo_lock);
	bool named = birth <= d->ckpt_epoch && retire > d->ckpt_epoch;
	if (large || !named || d->nlimbo == d->limbo_cap) {
		/* Large images live in the checkpoint file, not in slots; a node
		 * the durable checkpoint does not name is not in it. */
		bool grow = !large && named;
		size_t cap = d->limbo_cap ? d->limbo_cap * 2 : 256;
		limbo_item *l = grow ? strata_mem_realloc(d->limbo, d->limbo_cap * sizeof *l,
							  cap * sizeof *l)
				     : NULL;
		if (!grow || !l) {
			pthread_mutex_unlock(&d->limbo_lock);
			if (!grow)
				seg_free_node(&s->seg, p, size);
			/* else: out of memory for limbo: leak the slot, never reuse it early */
			return;
		}
		d->limbo = l;
		d->limbo_cap = cap;
	}
	d->limbo[d->nlimbo++] = (limbo_item){p, size};
	pthread_mutex_unlock(&d->limbo_lock);
}

void (*durable_test_limbo_out)(strata_store *s);

/* The checkpoint of epoch C is durable: what waited for it is free. */
static void limbo_release(strata_store *s, uint64_t C)
{
	durable *d = s->dur;
	pthread_mutex_lock(&d->free_lock);
	pthread_mutex_lock(&d->limbo_lock);
	limbo_item *l = d->limbo;
	size_t n = d->nlimbo, cap = d->limbo_cap;
	d->limbo = NULL;
	d->nlimbo = d->limbo_cap = 0;
	d->ckpt_epoch = C;
	compact_moved_release(s);
	pthread_mutex_unlock(&d->limbo_lock);
	if (STRATA_UNLIKELY(durable_test_limbo_out != NULL))
		durable_test_limbo_out(s);
	for (size_t i = 0; i < n; i++)
		seg_free_node(&s->seg, l[i].p, l[i].size);
	pthread_mutex_unlock(&d->free_lock);
	strata_mem_free(l, cap * sizeof *l);
}

/* ---- publication ---------------------------------------------------------------------- */
/* Room for one more queued commit (pub_lock). */
static int pq_reserve(durable *d)
{
	if (d->pq_n == d->pq_cap) {
		size_t cap = d->pq_cap ? d->pq_cap * 2 : 64;
		pub_entry *q = strata_mem_alloc(cap * sizeof *q);
		if (!q)
			return STRATA_ENOMEM;
		for (size_t i = 0; i < d->pq_n; i++)
			q[i] = d->pq[(d->pq_head + i) % d->pq_cap];
		strata_mem_free(d->pq, d->pq_cap * sizeof *d->pq);
		d->pq = q;
		d->pq_cap = cap;
		d->pq_head = 0;
	}
	return 0;
}

/* Publishes, in order, every queued epoch that may be seen (pub_lock). */
static void advance_locked(strata_store *s)
{
	durable *d = s->dur;
	uint64_t durable_lsn = wal_durable(d->wal);
	bool moved = false;
	while (d->pq_n) {
		pub_entry *h = &d->pq[d->pq_head];
		if (!h->ready || (h->sync && durable_lsn < h->end_lsn))
			break;
		atomic_store_explicit(&s->epoch_current, h->epoch, memory_order_release);
		d->pq_head = (d->pq_head + 1) % d->pq_cap;
		d->pq_n--;
		moved = true;
	}
	if (moved)
		pthread_cond_broadcast(&d->pub_cond);
}

static int dur_status(durable *d)
{
	return atomic_load(&d->poisoned) ? STRATA_EIO : 0;
}

static int set_clean_flag(strata_store *s, bool clean);

int durable_log_commit(strata_store *s, const wal_rec *recs, size_t n, uint64_t E,
		       strata_durability dm, uint64_t *end_lsn)
{
	durable *d = s->dur;
	int rc = dur_status(d);
	if (rc)
		return rc;
	/* A crash after this commit must not find the clean flag (wal.h
	 * WAL_REPLAY_CLEAN): one superblock write per open, before any frame. */
	if (d->clean_pending) {
		if ((rc = set_clean_flag(s, false)))
			return rc;
		d->clean_pending = false;
	}
	pub_entry p = {.epoch = E, .start_lsn = wal_end(d->wal), .sync = dm == STRATA_SYNC};
	pthread_mutex_lock(&d->pub_lock);
	rc = pq_reserve(d); /* room first: nothing may fail after the append */
	if (!rc && !(rc = wal_append(d->wal, recs, n, E, &p.end_lsn))) {
		d->pq[(d->pq_head + d->pq_n++) % d->pq_cap] = p;
		*end_lsn = p.end_lsn;
	}
	size_t nodes = 0;
	for (size_t i = 0; !rc && i < n; i++)
		nodes += recs[i].type == WAL_NODE;
	atomic_fetch_add_explicit(&d->dirty, nodes, memory_order_relaxed);
	pthread_mutex_unlock(&d->pub_lock);
	return rc;
}

void durable_commit_ready(strata_store *s, uint64_t E)
{
	durable *d = s->dur;
	pthread_mutex_lock(&d->pub_lock);
	/* The commit lock is held since the append, and an entry that is not
	 * ready is never published: E's entry is still the last one. */
	if (d->pq_n) {
		pub_entry *p = &d->pq[(d->pq_head + d->pq_n - 1) % d->pq_cap];
		if (p->epoch == E)
			p->ready = true;
	}
	pthread_mutex_unlock(&d->pub_lock);
}

/* The WAL hook: the caller's sync made the log durable further; publish
 * what it covers before the other committers wake. */
static void on_durable(void *ctx)
{
	strata_store *s = ctx;
	pthread_mutex_lock(&s->dur->pub_lock);
	advance_locked(s);
	pthread_mutex_unlock(&s->dur->pub_lock);
}

int durable_finish_commit(strata_store *s, uint64_t E, uint64_t end_lsn, strata_durability dm)
{
	durable *d = s->dur;
	int rc = 0;
	if (dm == STRATA_SYNC && (rc = wal_sync_to(d->wal, end_lsn))) {
		durable_poison(s, rc);
		return rc;
	}
	/* Usually published already: by the sync's leader (on_durable), or at
	 * once for ASYNC/NONE behind published commits. */
	if (atomic_load_explicit(&s->epoch_current, memory_order_acquire) < E) {
		pthread_mutex_lock(&d->pub_lock);
		advance_locked(s);
		while (atomic_load(&s->epoch_current) < E && !(rc = dur_status(d)))
			pthread_cond_wait(&d->pub_cond, &d->pub_lock);
		pthread_mutex_unlock(&d->pub_lock);
	}
	/* ASYNC: the coordinator syncs within async_ms anyway; a crossed
	 * checkpoint threshold should not wait for its next round. */
	if (!rc && (atomic_load(&d->dirty) >= d->ckpt_dirty || cache_dirty_high(d) ||
		    wal_end(d->wal) - d->ckpt_lsn >= d->ckpt_wal_bytes)) {
		pthread_mutex_lock(&d->wake_lock);
		d->kicked = true;
		pthread_cond_signal(&d->wake);
		pthread_mutex_unlock(&d->wake_lock);
	}
	return rc;
}

/* ---- checkpoints ---------------------------------------------------------------------- */
/* Fixes the checkpoint's epoch C and WAL start L, and pins C: with the
 * commit lock and pub_lock held nothing is assigned or published meanwhile,
 * so L is exactly where the first commit after C begins. */
static int ckpt_begin(strata_store *s, uint64_t *C, uint64_t *L, struct strata_snapshot **pin)
{
	durable *d = s->dur;
	pthread_mutex_lock(&s->commit_lock);
	pthread_mutex_lock(&d->pub_lock);
	*C = atomic_load(&s->epoch_current);
	*L = d->pq_n ? d->pq[d->pq_head].start_lsn : wal_end(d->wal);
	atomic_store(&d->dirty, 0); /* approximately: queued commits count again later */
	*pin = pin_acquire(&s->pins, &s->epoch_current, PIN_CHECKPOINT);
	pthread_mutex_unlock(&d->pub_lock);
	pthread_mutex_unlock(&s->commit_lock);
	return *pin ? 0 : STRATA_EFULL;
}

static void remove_old_ckpt(durable *d, uint64_t gen)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/ckpt.%016" PRIx64, d->dir, gen);
	if (io_unlink(d->env, path) == 0)
		io_sync_dir(d->env, d->dir);
}

/* The durable checkpoint is current: only the superblock changes. */
static int set_clean_flag(strata_store *s, bool clean)
{
	durable *d = s->dur;
	pthread_mutex_lock(&d->sb_lock);
	int rc = 0;
	if (!(d->sb.flags & SB_FLAG_CLEAN) != !clean) {
		sb_state nsb = d->sb;
		nsb.generation++;
		nsb.flags = clean ? SB_FLAG_CLEAN : 0;
		if (!(rc = sb_write(d->super, &nsb))) {
			/* Only these two fields: a checkpoint reads the others
			 * under ckpt_lock alone, and they do not change here. */
			d->sb.generation = nsb.generation;
			d->sb.flags = nsb.flags;
			sb_publish(&d->sbc, &nsb);
		}
	}
	pthread_mutex_unlock(&d->sb_lock);
	if (rc)
		durable_poison(s, rc);
	return rc;
}

/* Writes a checkpoint; clean: the store is closing and the WAL is empty
 * after it; force: even if no commit happened (compaction moved nodes).
 * Caller holds ckpt_lock. */
static int checkpoint_locked(strata_store *s, bool clean, bool force)
{
	durable *d = s->dur;
	int rc = dur_status(d);
	uint64_t C, L;
	struct strata_snapshot *pin;
	if (rc || (rc = ckpt_begin(s, &C, &L, &pin)))
		return rc;
	if (!force && C == d->sb.ckpt_epoch && L == d->sb.wal_start_lsn && d->sb.ckpt_gen) {
		pin_release(&s->pins, pin); /* nothing new: at close, the clean flag */
		return clean ? set_clean_flag(s, true) : 0; /* a no-op when it is set */
	}
	ckpt_written w;
	io_file *nf = NULL;
	uint64_t gen = d->sb.ckpt_gen + 1, old_gen = d->sb.ckpt_gen; /* ckpt_lock: ours */
	if (!(rc = ckpt_write(s, gen, C, L, d->ckpt_epoch, &w)) && !(rc = ckpt_open_read(d, gen, &nf))) {
		pthread_mutex_lock(&d->sb_lock);
		sb_state nsb = d->sb;
		nsb.generation++;
		nsb.ckpt_gen = gen;
		nsb.ckpt_epoch = C;
		nsb.ckpt_size = w.size;
		nsb.ckpt_crc = w.header_crc;
		nsb.flags = clean ? SB_FLAG_CLEAN : 0;
		nsb.wal_start_lsn = L;
		nsb.last_epoch = C;
		if (!(rc = sb_write(d->super, &nsb))) {
			d->sb = nsb;
			sb_publish(&d->sbc, &nsb);
		}
		pthread_mutex_unlock(&d->sb_lock);
	}
	if (rc) {
		io_close(nf);
		ckpt_written_free(&w);
		pin_release(&s->pins, pin);
		durable_poison(s, rc);
		store_set_error("checkpoint %" PRIu64 " failed: %s", gen, strata_strerror(rc));
		return rc;
	}
	/* What was still on disk is read from the new file from now on: the
	 * old one is unused. */
	ckpt_adopt(s, &w, nf);
	limbo_release(s, C);
	pin_release(&s->pins, pin);
	if (old_gen)
		remove_old_ckpt(d, old_gen);
	d->ckpt_lsn = L;
	d->ckpt_ns = now_ns();
	return wal_recycle(d->wal, L);
}

/* A compaction round of up to `budget` bytes, then the checkpoint that
 * records it, then what it freed (ckpt_lock held). */
static int compact_locked(strata_store *s, uint64_t budget, uint64_t *moved)
{
	int rc = compact_round(s, budget, moved);
	int crc = checkpoint_locked(s, false, *moved > 0);
	rc = rc ? rc : crc;
	return rc ? rc : compact_finish(s);
}

/* Background compaction: the file is big and sparse enough (options). */
static bool compact_due(strata_store *s)
{
	const strata_options *o = &s->opts;
	if (o->compact_amplification <= 0)
		return false;
	strata_store_stats st = {0};
	durable_space(s, store_requested_bytes(s), &st);
	return st.file_bytes > o->compact_min_file_bytes &&
	       st.space_amplification > o->compact_amplification;
}

int durable_checkpoint(strata_store *s)
{
	pthread_mutex_lock(&s->dur->ckpt_lock);
	int rc = checkpoint_locked(s, false, false);
	pthread_mutex_unlock(&s->dur->ckpt_lock);
	if (s->dur->cache.cap) /* what it cleaned may go now */
		cache_trim(s);
	compact_sweep(s);
	return rc;
}

/* The coordinator's checkpoint: with a compaction round when due. */
static int background_checkpoint(strata_store *s)
{
	if (!compact_due(s))
		return durable_checkpoint(s);
	uint64_t moved;
	pthread_mutex_lock(&s->dur->ckpt_lock);
	int rc = compact_locked(s, s->opts.compact_bytes_per_round, &moved);
	pthread_mutex_unlock(&s->dur->ckpt_lock);
	if (s->dur->cache.cap)
		cache_trim(s);
	return rc;
}

int strata_compact(strata_store *s, uint64_t *moved)
{
	if (!s || !s->dur)
		return STRATA_EINVAL;
	durable *d = s->dur;
	uint64_t total = 0, m = 0;
	/* Slots still counted as used make classes look full: first free
	 * what no reader needs (a background checkpoint's pin may have held
	 * it at the last commit's reclamation), then a checkpoint releases
	 * the slots in limbo. */
	reclaim_run(s, true);
	pthread_mutex_lock(&d->ckpt_lock);
	pthread_mutex_lock(&d->limbo_lock);
	bool limbo = d->nlimbo > 0;
	pthread_mutex_unlock(&d->limbo_lock);
	int rc = checkpoint_locked(s, false, limbo);
	/* Rounds until nothing qualifies; a bound in case readers keep the
	 * old slots (a round then finds the victims not empty yet). */
	for (int i = 0; i < 64 && !rc; i++) {
		rc = compact_locked(s, UINT64_MAX, &m);
		total += m;
		if (!m)
			break;
	}
	pthread_mutex_unlock(&d->ckpt_lock);
	if (d->cache.cap)
		cache_trim(s);
	if (moved)
		*moved = total;
	return rc;
}

int strata_checkpoint(strata_store *s)
{
	if (!s)
		return STRATA_EINVAL;
	return s->dur ? durable_checkpoint(s) : STRATA_EINVAL;
}

void durable_space(strata_store *s, uint64_t requested, strata_store_stats *st)
{
	durable *d = s->dur;
	uint64_t limbo = 0, data = 0;
	pthread_mutex_lock(&d->limbo_lock);
	for (size_t i = 0; i < d->nlimbo; i++)
		limbo += d->limbo[i].size;
	pthread_mutex_unlock(&d->limbo_lock);
	uint64_t waiting = atomic_load(&s->rec.pending_bytes) + limbo;
	st->live_bytes = requested > waiting ? requested - waiting : 0;
	pthread_mutex_lock(&s->ot.lazy_lock); /* ckpt_size changes under it */
	uint64_t ckpt = d->ckpt_size;
	pthread_mutex_unlock(&s->ot.lazy_lock);
	if (io_size(d->data, &data))
		data = 0;
	st->file_bytes = data + ckpt;
	st->space_amplification = st->live_bytes ? (double)st->file_bytes / (double)st->live_bytes : 0;
}

/* ---- the coordinator thread ------------------------------------------------------------ */
static bool ckpt_due(strata_store *s)
{
	durable *d = s->dur;
	uint64_t wal_bytes = wal_end(d->wal) - d->ckpt_lsn;
	if (wal_bytes >= d->ckpt_wal_bytes || atomic_load(&d->dirty) >= d->ckpt_dirty ||
	    cache_dirty_high(d))
		return true;
	sb_state sb;
	sb_load(&d->sbc, &sb); /* d->sb belongs to the checkpointer */
	return d->ckpt_ms && atomic_load(&s->epoch_current) > sb.ckpt_epoch &&
	       now_ns() - d->ckpt_ns >= (uint64_t)d->ckpt_ms * 1000000u;
}

static void *coordinator(void *arg)
{
	strata_store *s = arg;
	durable *d = s->dur;
	pthread_mutex_lock(&d->wake_lock);
	while (!d->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)d->async_ms * 1000000u;
		ts.tv_sec += (time_t)(ns / 1000000000u);
		ts.tv_nsec = (long)(ns % 1000000000u);
		if (!d->kicked)
			pthread_cond_timedwait(&d->wake, &d->wake_lock, &ts);
		d->kicked = false;
		if (d->stop || dur_status(d))
			continue;
		pthread_mutex_unlock(&d->wake_lock);
		uint64_t end = wal_end(d->wal);
		int rc = end > wal_durable(d->wal) ? wal_sync_to(d->wal, end) : 0;
		if (rc)
			durable_poison(s, rc);
		if (!rc && ckpt_due(s))
			background_checkpoint(s);
		else if (d->cache.cap) /* what grace allows now */
			cache_trim(s);
		compact_sweep(s); /* old places of moved nodes whose readers left */
		pthread_mutex_lock(&d->wake_lock);
	}
	pthread_mutex_unlock(&d->wake_lock);
	return NULL;
}

/* ---- recovery: applying WAL commits ------------------------------------------------- */
/* Recovery is single-threaded and the store is handed to the caller only
 * when it is over (thread creation and return order everything), so the
 * entries are written with plain relaxed stores: seq_cst stores and locked
 * counter updates were a third of the replay loop. */
#define SET(field, v) atomic_store_explicit(&(field), (v), memory_order_relaxed)
#define GET(field) atomic_load_explicit(&(field), memory_order_relaxed)

static void count_add(_Atomic uint64_t *c, int64_t d)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + (uint64_t)d,
			      memory_order_relaxed);
}

static int apply_node(strata_store *s, const wal_frame *f, uint64_t E)
{
	wal_node_rec n;
	int rc = walf_node_decode(f, &n);
	uint32_t sh = STRATA_NODEID_SHARD(n.id), idx = STRATA_NODEID_INDEX(n.id);
	if (rc || sh >= s->ot.shards_max || !STRATA_NODEID_TAG(n.id))
		return STRATA_ECORRUPT;
	if (idx >= s->ot.shards[sh].next_index && (rc = ot_extend(&s->ot, sh, idx + 1)))
		return rc;
	ot_entry *e;
	if ((rc = ot_entry_get(&s->ot, sh, idx, &e)) || !e)
		return rc ? rc : STRATA_ECORRUPT; /* its chunk on disk is damaged */
	uint32_t m = GET(e->meta), tag = STRATA_NODEID_TAG(n.id);
	if (OT_META_TAG(m) > tag || (OT_META_STATE(m) != OT_FREE && OT_META_TAG(m) == tag))
		return STRATA_ECORRUPT; /* tags only grow; a live handle is not reissued */
	if (OT_META_STATE(m) == OT_LIVE || OT_META_STATE(m) == OT_RESERVED)
		return STRATA_ECORRUPT; /* reused without being retired first */
	if (OT_META_STATE(m) == OT_RETIRED) { /* reclaimed, then reused */
		durable_free_slot(s, (void *)(uintptr_t)durable_loc_for_free(s, e),
				  OT_INFO_SIZE(GET(e->info)), ot_birth(e), ot_retire(e));
		count_add(&s->nodes_retired, -1);
	}
	uint64_t loc;
	if ((rc = durable_new_image(s, n.size, &loc, NULL)))
		return rc;
	memcpy(loc_image(loc), n.bytes, n.size); /* overwritten in whole */
	if LOC_CACHED(loc)
		cache_set_id(loc, n.id);
	SET(e->loc, loc);
	ot_stamp_init(e, E, EPOCH_INF, 0, memory_order_relaxed); /* its CRC: at the next checkpoint */
	SET(e->info, OT_INFO(n.size, n.kind));
	SET(e->meta, OT_META(tag, OT_LIVE));
	count_add(&s->nodes_live, 1);
	return 0;
}

static int apply_retire(strata_store *s, const wal_frame *f, uint64_t E)
{
	uint64_t id;
	if (walf_retire_decode(f, &id))
		return STRATA_ECORRUPT;
	ot_entry *e = ot_entry_of(&s->ot, id);
	if (!e || OT_META_STATE(GET(e->meta)) != OT_LIVE)
		return STRATA_ECORRUPT;
	ot_stamp_set(&e->rstamp, E);
	SET(e->meta, OT_META(STRATA_NODEID_TAG(id), OT_RETIRED));
	count_add(&s->nodes_live, -1);
	count_add(&s->nodes_retired, 1);
	return 0;
}

static int apply_root(strata_store *s, const wal_frame *f, uint64_t E)
{
	wal_root_rec r;
	root *rt;
	if (walf_root_decode(f, &r))
		return STRATA_ECORRUPT;
	/* Commits mostly name the root the previous one named. */
	root *last = s->dur->replay_root;
	int rc = 0;
	if (last && last->name_len == r.name_len && !memcmp(last->name, r.name, r.name_len))
		rt = last;
	else if ((rc = catalog_get_or_create(&s->cat, r.name, r.name_len, &rt)))
		return rc;
	s->dur->replay_root = rt;
	/* No snapshot exists during recovery, and after_replay keeps only the
	 * newest version anyway: overwrite it rather than allocate one per
	 * commit (a million commits made a million versions). */
	root_version *head = atomic_load_explicit(&rt->head, memory_order_relaxed);
	if (!head)
		return root_publish(rt, E, r.id);
	head->epoch = E;
	head->id = r.id;
	return 0;
}

static int apply_commit(void *ctx, const wal_commit_view *c)
{
	strata_store *s = ctx;
	if (c->epoch <= atomic_load(&s->epoch_current))
		return STRATA_ECORRUPT; /* epochs grow along the log */
	for (size_t i = 0; i < c->nframes; i++) {
		const wal_frame *f = &c->frames[i];
		int rc = f->type == WAL_NODE	 ? apply_node(s, f, c->epoch)
			 : f->type == WAL_RETIRE ? apply_retire(s, f, c->epoch)
			 : f->type == WAL_ROOT	 ? apply_root(s, f, c->epoch)
						 : STRATA_ECORRUPT;
		if (rc)
			return rc;
	}
	SET(s->epoch_current, c->epoch);
	s->dur->epoch_assigned = c->epoch;
	return 0;
}
#undef SET
#undef GET

/* No snapshot exists yet: retired nodes go at once (their slots through
 * limbo when the loaded checkpoint holds them). */
static int after_replay(strata_store *s)
{
	for (uint32_t sh = 0; sh < s->ot.shards_max; sh++) {
		for (uint32_t i = 0; i < s->ot.shards[sh].next_index; i++) {
			/* A chunk still on disk holds no retired entry: the
			 * checkpoint keeps live and free ones, replay loaded
			 * every chunk it retired something in. */
			ot_entry *e = ot_entry_peek(&s->ot, sh, i);
			if (!e) {
				i |= OT_CHUNK - 1;
				continue;
			}
			uint32_t m = atomic_load(&e->meta);
			if (OT_META_STATE(m) != OT_RETIRED)
				continue;
			durable_free_slot(s, (void *)(uintptr_t)durable_loc_for_free(s, e),
					  OT_INFO_SIZE(atomic_load(&e->info)), ot_birth(e), ot_retire(e));
			atomic_store(&e->meta, OT_META(OT_META_TAG(m), OT_FREE));
			atomic_fetch_sub(&s->nodes_retired, 1);
		}
	}
	catalog_trim(&s->cat, atomic_load(&s->epoch_current));
	return ot_rebuild_free(&s->ot);
}

/* ---- open ---------------------------------------------------------------------------------- */
static void path_of(const durable *d, const char *name, char *out, size_t n)
{
	snprintf(out, n, "%s/%s", d->dir, name);
}

static int open_file(durable *d, const char *name, unsigned flags, io_file **f)
{
	char path[4096];
	path_of(d, name, path, sizeof path);
	return io_open(d->env, path, flags, f);
}

/* The files of a new store but SUPER: `data`, and SUPER.new (open in
 * d->super) which becomes SUPER by rename once its first slot is written. */
static int create_files(durable *d, uint64_t wal_file_size)
{
	memset(&d->sb, 0, sizeof d->sb);
	d->sb.wal_file_size = wal_file_size;
	while (getrandom(d->sb.uuid, sizeof d->sb.uuid, 0) != (ssize_t)sizeof d->sb.uuid)
		;
	memcpy(d->wcfg.uuid, d->sb.uuid, 16);
	d->wcfg.file_size = wal_file_size;
	int rc = open_file(d, "data", IO_CREATE, &d->data);
	if (!rc)
		rc = io_truncate(d->data, 0);
	if (!rc)
		rc = io_sync(d->data);
	if (!rc)
		rc = open_file(d, "SUPER.new", IO_CREATE, &d->super);
	return rc ? rc : io_truncate(d->super, 0);
}

/* SUPER.new (with its slot written and synced) becomes SUPER. */
static int publish_super(durable *d)
{
	char tmp[4096], fin[4096];
	path_of(d, "SUPER.new", tmp, sizeof tmp);
	path_of(d, "SUPER", fin, sizeof fin);
	int rc = io_rename(d->env, tmp, fin);
	return rc ? rc : io_sync_dir(d->env, d->dir);
}

static int create_store(strata_store *s, const strata_options *o)
{
	durable *d = s->dur;
	sb_state sb = {.generation = 1, .ckpt_epoch = 1, .wal_file_size = o->wal_file_size};
	/* SUPER marks a store, so it appears whole or not at all: written
	 * and synced as SUPER.new, then renamed. A crash before the rename
	 * leaves a directory with no store, which the next create redoes. */
	int rc = create_files(d, o->wal_file_size);
	if (rc)
		return rc;
	memcpy(sb.uuid, d->sb.uuid, 16);
	if ((rc = sb_write(d->super, &sb)) || (rc = publish_super(d)))
		return rc;
	d->sb = sb;
	d->ckpt_epoch = d->epoch_assigned = sb.ckpt_epoch; /* the empty store: epoch 1 */
	store_set_error("created a new store in %s", d->dir);
	return 0;
}

static int read_super(durable *d)
{
	sb_read_report rep;
	int rc = open_file(d, "SUPER", 0, &d->super);
	if (!rc)
		rc = sb_read(d->super, &d->sb, &rep);
	if (rc) {
		store_set_error("%s/SUPER: %s (slot 0: %s; slot 1: %s)", d->dir, strata_strerror(rc),
				strata_strerror(rep.slot_status[0]), strata_strerror(rep.slot_status[1]));
		return rc;
	}
	uint64_t F = d->sb.wal_file_size, L = d->sb.wal_start_lsn;
	/* LSNs stay below WAL_LSN_MAX (near 2^64 the writer's file arithmetic
	 * would wrap: the first commit spun forever). */
	if (F < WAL_MIN_FILE || F > (1ull << 40) || (F & (F - 1)) || !d->sb.ckpt_epoch ||
	    (L % F && L % F < WAL_FILE_HDR) || L % 8 || L >= WAL_LSN_MAX ||
	    d->sb.ckpt_epoch >= EPOCH_PENDING) { /* sb_decode refuses these already */
		store_set_error("%s/SUPER: impossible WAL file size, start LSN or epoch", d->dir);
		return STRATA_ECORRUPT;
	}
	return 0;
}

static int recover(strata_store *s, bool salvage, wal_replay_result *res)
{
	durable *d = s->dur;
	int rc = read_super(d);
	if (rc)
		return rc;
	memcpy(d->wcfg.uuid, d->sb.uuid, 16);
	d->wcfg.file_size = d->sb.wal_file_size;
	if ((rc = open_file(d, "data", 0, &d->data))) {
		store_set_error("%s/data: %s", d->dir, strata_strerror(rc));
		return rc == -ENOENT ? STRATA_ECORRUPT : rc;
	}
	if (d->sb.ckpt_gen && (rc = ckpt_load(s, &d->sb)))
		return rc;
	d->ckpt_epoch = d->sb.ckpt_epoch;
	atomic_store(&s->epoch_current, d->sb.ckpt_epoch);
	d->epoch_assigned = d->sb.ckpt_epoch;
	unsigned flags = (salvage ? WAL_REPLAY_SALVAGE : 0) |
			 (d->sb.flags & SB_FLAG_CLEAN ? WAL_REPLAY_CLEAN : 0);
	rc = wal_replay(&d->wcfg, d->sb.wal_start_lsn, flags, apply_commit, s, res);
	if (rc) {
		store_set_error("%s: WAL replay: %s%s%s", d->dir, strata_strerror(rc),
				res->message[0] ? ": " : "", res->message);
		return rc;
	}
	if (res->end_lsn >= WAL_LSN_MAX) {
		store_set_error("%s: WAL replay: the log ends at LSN %" PRIu64 ", past 2^63", d->dir,
				res->end_lsn);
		return STRATA_ECORRUPT;
	}
	if (res->cut_to > res->cut_from && (rc = wal_cut_tail(&d->wcfg, res)))
		return rc;
	return after_replay(s);
}

static void durable_release(durable *d, const otable *ot);

/* A durable state for `o` (not attached to a store yet). */
static int durable_new(const strata_options *o, io_env *env, durable **out)
{
	durable *d = strata_mem_calloc(1, sizeof *d);
	if (!d)
		return STRATA_ENOMEM;
	*out = d;
	d->env = env;
	size_t n = strlen(o->path);
	if (!(d->dir = strata_mem_alloc(n + 1)))
		return STRATA_ENOMEM;
	memcpy(d->dir, o->path, n + 1);
	pthread_mutex_init(&d->pub_lock, NULL);
	pthread_cond_init(&d->pub_cond, NULL);
	pthread_mutex_init(&d->ckpt_lock, NULL);
	pthread_mutex_init(&d->sb_lock, NULL);
	pthread_mutex_init(&d->free_lock, NULL);
	pthread_mutex_init(&d->limbo_lock, NULL);
	pthread_mutex_init(&d->wake_lock, NULL);
	pthread_cond_init(&d->wake, NULL);
	for (int i = 0; i < LOAD_LOCKS; i++)
		pthread_mutex_init(&d->load_locks[i], NULL);
	pthread_rwlock_init(&d->file_lock, NULL);
	if (cache_init(&d->cache, o->cache_bytes))
		return STRATA_ENOMEM;
	d->default_durability = o->durability;
	d->async_ms = o->async_interval_ms ? o->async_interval_ms : 10;
	d->ckpt_ms = o->checkpoint_interval_ms;
	d->ckpt_wal_bytes = o->checkpoint_wal_bytes;
	d->ckpt_dirty = o->checkpoint_dirty_nodes ? o->checkpoint_dirty_nodes : UINT64_MAX;
	d->wcfg = (wal_config){.env = env, .dir = d->dir};
	return 0;
}

static int durable_init(strata_store *s, const strata_options *o, io_env *env)
{
	durable *d = NULL;
	int rc = durable_new(o, env, &d);
	s->dur = d; /* durable_free cleans up after a failure */
	seg_set_durable(&s->seg);
	s->seg.headers_only = o->cache_bytes != 0;
	return rc;
}

/* The directory exists (created if asked), and it is ours (LOCK). */
static int claim_dir(durable *d, bool create)
{
	int rc = io_exists(d->env, d->dir);
	if (rc < 0)
		return rc;
	if (!rc && !create) {
		store_set_error("%s: no such directory", d->dir);
		return -ENOENT;
	}
	if (!rc && (rc = io_mkdir(d->env, d->dir)) && rc != -EEXIST)
		return rc;
	if ((rc = open_file(d, "LOCK", IO_CREATE, &d->lock_file)))
		return rc;
	if ((rc = io_lock(d->lock_file)))
		store_set_error("%s: opened for writing by another process", d->dir);
	return rc == -EBADF ? STRATA_EBUSY : rc;
}

static int open_dir(strata_store *s, const strata_options *o, io_env *env)
{
	int rc = durable_init(s, o, env);
	if (rc)
		return rc;
	durable *d = s->dur;
	if ((rc = claim_dir(d, o->flags & STRATA_OPEN_CREATE)))
		return rc;
	char path[4096];
	path_of(d, "SUPER", path, sizeof path);
	int exists = io_exists(env, path);
	wal_replay_result res = {0};
	if (exists < 0)
		return exists;
	if (!exists && !(o->flags & STRATA_OPEN_CREATE)) {
		store_set_error("%s: not a Strata store (no SUPER file)", d->dir);
		return STRATA_EFORMAT;
	}
	rc = exists ? recover(s, o->flags & STRATA_OPEN_SALVAGE, &res) : create_store(s, o);
	if (rc)
		return rc;
	memcpy(d->wcfg.uuid, d->sb.uuid, 16);
	d->wcfg.file_size = d->sb.wal_file_size;
	uint64_t end = exists ? res.end_lsn : 0;
	if ((rc = wal_open_keep(&d->wcfg, end, exists ? d->sb.wal_start_lsn : 0, &d->wal))) {
		store_set_error("%s/wal.%016" PRIx64 ", where the log continues: %s", d->dir,
				end / d->wcfg.file_size, strata_strerror(rc));
		return rc;
	}
	wal_set_on_durable(d->wal, on_durable, s);
	/* Cleared by the first commit, before its frames: an open that appends
	 * nothing (strata check, info) leaves the store as it found it. */
	d->clean_pending = exists && (d->sb.flags & SB_FLAG_CLEAN);
	sb_publish(&d->sbc, &d->sb);
	d->ckpt_lsn = d->sb.wal_start_lsn;
	d->ckpt_ns = now_ns();
	if (exists)
		store_set_error("%s: recovered epoch %" PRIu64 " (checkpoint %" PRIu64
				" at epoch %" PRIu64 ", %" PRIu64 " commits replayed)%s%s",
				d->dir, atomic_load(&s->epoch_current), d->sb.ckpt_gen,
				d->sb.ckpt_epoch, res.commits, res.message[0] ? "; " : "", res.message);
	if (pthread_create(&d->thread, NULL, coordinator, s))
		return STRATA_ENOMEM;
	d->thread_running = true;
	return 0;
}

/* A failed open leaves a message of its own for strata_last_error(),
 * never one from an earlier open. */
int durable_open_env(strata_store *s, const strata_options *o, io_env *env)
{
	store_set_error("%s", "");
	int rc = open_dir(s, o, env);
	if (rc && !last_error[0])
		store_set_error("%s: %s", o->path, strata_strerror(rc));
	return rc;
}

int durable_open(strata_store *s, const strata_options *o)
{
	return durable_open_env(s, o, io_env_posix());
}

/* ---- close -------------------------------------------------------------------------------- */
static void stop_thread(durable *d)
{
	if (!d->thread_running)
		return;
	pthread_mutex_lock(&d->wake_lock);
	d->stop = true;
	pthread_cond_signal(&d->wake);
	pthread_mutex_unlock(&d->wake_lock);
	pthread_join(d->thread, NULL);
	d->thread_running = false;
}

int durable_close(strata_store *s)
{
	durable *d = s->dur;
	stop_thread(d);
	int rc = dur_status(d);
	if (!rc && d->wal) {
		pthread_mutex_lock(&d->ckpt_lock);
		rc = checkpoint_locked(s, true, false);
		pthread_mutex_unlock(&d->ckpt_lock);
	}
	return rc;
}

void durable_free(strata_store *s)
{
	durable_release(s->dur, &s->ot);
	s->dur = NULL;
}

/* Dirty cache nodes are reachable only from their entries. */
static void free_dirty_images(durable *d, const otable *ot)
{
	for (uint32_t sh = 0; ot && d->cache.cap && sh < ot->shards_max; sh++) {
		for (uint32_t i = 0; i < ot->shards[sh].next_index; i++) {
			ot_entry *e = ot_entry_peek(ot, sh, i);
			if (!e) {
				i |= OT_CHUNK - 1;
				continue;
			}
			uint64_t loc = atomic_load_explicit(&e->loc, memory_order_relaxed);
			if (LOC_CACHED(loc) &&
			    OT_META_STATE(atomic_load_explicit(&e->meta, memory_order_relaxed)) != OT_FREE)
				cache_free_dirty(&d->cache, loc);
		}
	}
}

/* ot: the store's object table (NULL: d was never attached to a store,
 * so it has no dirty cache nodes). */
static void durable_release(durable *d, const otable *ot)
{
	if (!d)
		return;
	stop_thread(d);
	free_dirty_images(d, ot);
	cache_destroy(&d->cache);
	wal_close(d->wal);
	io_close(d->data);
	if (d->lazy_bm) /* headers never built stay unbuilt: seg_destroy unmaps them */
		io_unmap(d->ckpt, d->lazy_bm, d->lazy_bm_len);
	ckpt_drop_index(d, d->ckpt);
	io_close(d->ckpt);
	io_close(d->super);
	io_close(d->lock_file); /* releases the lock */
	strata_mem_free(d->limbo, d->limbo_cap * sizeof *d->limbo);
	strata_mem_free(d->moved, d->moved_cap * sizeof *d->moved);
	strata_mem_free(d->sgrace, d->sgrace_cap * sizeof *d->sgrace);
	strata_mem_free(d->pq, d->pq_cap * sizeof *d->pq);
	if (d->dir)
		strata_mem_free(d->dir, strlen(d->dir) + 1);
	strata_mem_free(d, sizeof *d);
}

/* ---- make durable ---------------------------------------------------------------------- */
/* Files first (the store stays IN_MEMORY if any of this fails). */
static int prepare_dir(durable *d, uint64_t wal_file_size)
{
	int rc = claim_dir(d, true);
	if (rc)
		return rc;
	char path[4096];
	path_of(d, "SUPER", path, sizeof path);
	if ((rc = io_exists(d->env, path)) != 0) {
		store_set_error("%s: already holds a store", d->dir);
		return rc < 0 ? rc : -EEXIST;
	}
	if ((rc = create_files(d, wal_file_size)))
		return rc;
	return wal_open(&d->wcfg, 0, &d->wal);
}

/* The fence: under the commit lock no epoch is assigned, so every commit
 * after it goes to the WAL and every one before it is in the checkpoint. */
static int switch_to(strata_store *s, durable *d)
{
	pthread_mutex_lock(&s->commit_lock);
	int rc = seg_number_all(&s->seg);
	if (!rc) {
		d->epoch_assigned = atomic_load(&s->epoch_current);
		d->ckpt_epoch = 0; /* nothing is in `data` yet */
		s->dur = d;
		wal_set_on_durable(d->wal, on_durable, s);
	}
	pthread_mutex_unlock(&s->commit_lock);
	return rc;
}

int strata_make_durable(strata_store *s, const char *dir)
{
	return make_durable_env(s, dir, io_env_posix());
}

int make_durable_env(strata_store *s, const char *dir, io_env *env)
{
	if (!s || !dir || !*dir || s->dur)
		return STRATA_EINVAL;
	strata_options o = s->opts;
	o.mode = STRATA_DURABLE;
	o.path = dir;
	/* Its nodes live in segment memory: no bound until it is reopened. */
	o.cache_bytes = 0;
	uint64_t F = o.wal_file_size;
	if (F < WAL_MIN_FILE || (F & (F - 1)))
		return STRATA_EINVAL;
	durable *d = NULL;
	int rc = durable_new(&o, env, &d);
	if (!rc)
		rc = prepare_dir(d, F);
	if (!rc)
		rc = switch_to(s, d);
	if (rc) {
		durable_release(d, NULL);
		return rc;
	}
	pthread_mutex_lock(&d->ckpt_lock);
	rc = checkpoint_locked(s, false, false); /* every node: prev epoch 0 */
	pthread_mutex_unlock(&d->ckpt_lock);
	if (!rc)
		rc = publish_super(d);
	if (rc) {
		durable_poison(s, rc);
		return rc;
	}
	sb_publish(&d->sbc, &d->sb);
	d->ckpt_ns = now_ns();
	s->opts.mode = STRATA_DURABLE;
	if (pthread_create(&d->thread, NULL, coordinator, s))
		return STRATA_ENOMEM;
	d->thread_running = true;
	return 0;
}
