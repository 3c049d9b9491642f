/*
 * verify.c — strata_verify_images (see verify.h): every node image the
 * store holds is read back and checked, then every root is resolved.
 *
 * Where a CRC comes from: a checkpoint records the CRC32C of every image
 * visible at its epoch C (ot_crc: the halves in its stamps). An image not loaded yet
 * (LAZY_BIT) is checked against it by durable_load as it is read. An image
 * already in memory is checked against it only if the node was visible at
 * the durable checkpoint (birth <= C < retire): for other nodes the cell is
 * not written yet and may hold a former occupant's CRC. Committed images
 * never change in place (copy-on-write), so a mismatch is damage.
 *
 * Why the reclamation lock suffices: a live or retired entry is freed only
 * by reclamation (abort and strata_txn_free free reserved entries only), so
 * while `rec.run` is held no entry we look at changes hands. Entries that
 * appear meanwhile (commits go on) are seen or not; either is fine.
 * CRC cells and the checkpoint epoch are read under the checkpoint lock,
 * taken for batches of entries. Lock order: rec.run -> ckpt_lock -> the
 * leaves (limbo_lock, load locks); nothing takes rec.run under ckpt_lock.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "crc32c.h"
#include "durable.h"
#include "internal.h"
#include "verify.h"

#define VERIFY_BATCH 1024u /* entries per hold of the checkpoint lock */

typedef struct verify_ctx {
	strata_store *s;
	durable *d;          /* NULL: IN_MEMORY */
	uint64_t ckpt_epoch; /* DURABLE: the durable checkpoint's epoch (ckpt_lock) */
	strata_report_fn report;
	void *ctx;
	uint64_t checked;
	int problems;
} verify_ctx;

static void problem(verify_ctx *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(verify_ctx *v, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	v->problems++;
	if (v->report)
		v->report(v->ctx, msg);
}

/* Where an image not loaded yet lies on disk, for messages. */
static void image_place(uint64_t loc, uint32_t size, char *buf, size_t n)
{
	if (seg_class_of(size) == STRATA_CLASS_LARGE) {
		snprintf(buf, n, "checkpoint file offset %" PRIu64, loc >> 1);
		return;
	}
	const void *p = loc_slot(loc);
	snprintf(buf, n, "data offset %" PRIu64,
		 (uint64_t)seg_no_of(p) * SEG_SIZE + seg_offset_of(p));
}

static void verify_lazy(verify_ctx *v, ot_entry *e, strata_node_id id, uint64_t loc,
			uint32_t size)
{
	char place[64];
	image_place(loc, size, place, sizeof place);
	const void *p;
	int rc = durable_load(v->s, e, id, &p);
	if (rc)
		problem(v, "node %#" PRIx64 ": image (%u bytes at %s) not readable: %s", id, size,
			place, strata_strerror(rc));
}

/* An image in memory: against the CRC its checkpoint recorded, if any. */
static void verify_loaded(verify_ctx *v, ot_entry *e, strata_node_id id, const void *p,
			  uint32_t size)
{
	if (!p) {
		problem(v, "node %#" PRIx64 ": no image at all", id);
		return;
	}
	if (!v->d)
		return;
	uint64_t b = ot_birth(e), r = ot_retire(e);
	if (!(b <= v->ckpt_epoch && v->ckpt_epoch < r))
		return; /* not in the durable checkpoint: no recorded CRC */
	if (strata_crc32c(0, p, size) != ot_crc(e))
		problem(v, "node %#" PRIx64 ": image in memory (%u bytes) differs from the one "
			   "checkpointed at epoch %" PRIu64 ": %s",
			id, size, v->ckpt_epoch, strata_strerror(STRATA_ECORRUPT));
}

static void verify_entry(verify_ctx *v, uint32_t sh, uint32_t i)
{
	ot_entry *e;
	int rc = ot_entry_get(&v->s->ot, sh, i, &e);
	if (rc || !e) {
		if (rc && (i & (OT_CHUNK - 1)) == 0) /* once per chunk */
			problem(v, "object-table chunk %u/%u cannot be loaded: %s (%s)", sh,
				i >> OT_CHUNK_BITS, strata_strerror(rc), strata_last_error());
		return;
	}
	uint32_t m = atomic_load(&e->meta);
	if (OT_META_STATE(m) != OT_LIVE && OT_META_STATE(m) != OT_RETIRED)
		return;
	strata_node_id id = ot_make_id(sh, i, OT_META_TAG(m));
	uint32_t size = OT_INFO_SIZE(atomic_load(&e->info));
	uint64_t loc = atomic_load(&e->loc);
	v->checked++;
	if (v->d && (loc & LAZY_BIT))
		verify_lazy(v, e, id, loc, size);
	else
		verify_loaded(v, e, id, loc_image(loc), size);
}

/* Entries [from, to) of a shard. DURABLE: under the checkpoint lock, as
 * CRC cells are written only by checkpoints (a large node's cell is
 * rewritten by each one); batches let checkpoints run in between. */
static void verify_batch(verify_ctx *v, uint32_t sh, uint32_t from, uint32_t to)
{
	if (v->d) {
		pthread_mutex_lock(&v->d->ckpt_lock);
		pthread_mutex_lock(&v->d->limbo_lock);
		v->ckpt_epoch = v->d->ckpt_epoch; /* fixed while ckpt_lock is held */
		pthread_mutex_unlock(&v->d->limbo_lock);
	}
	for (uint32_t i = from; i < to; i++)
		verify_entry(v, sh, i);
	if (v->d)
		pthread_mutex_unlock(&v->d->ckpt_lock);
}

static void verify_shards(verify_ctx *v)
{
	otable *ot = &v->s->ot;
	for (uint32_t sh = 0; sh < ot->shards_max; sh++) {
		pthread_mutex_lock(&ot->shards[sh].lock);
		uint32_t n = ot->shards[sh].next_index;
		pthread_mutex_unlock(&ot->shards[sh].lock);
		/* Chunks of issued entries stay until close: no shard lock needed. */
		for (uint32_t i = 0; i < n; i += VERIFY_BATCH)
			verify_batch(v, sh, i, n - i < VERIFY_BATCH ? n : i + VERIFY_BATCH);
	}
}

/* Every root's node as of the pinned epoch resolves (image and all). */
static void verify_roots(verify_ctx *v)
{
	strata_snapshot *snap;
	int rc = strata_snapshot_open(v->s, &snap);
	if (rc) {
		problem(v, "roots not checked: no snapshot: %s", strata_strerror(rc));
		return;
	}
	catalog *cat = &v->s->cat;
	pthread_mutex_lock(&cat->lock); /* no new names: the directory stays */
	root_dir *dir = atomic_load(&cat->dir);
	for (uint32_t i = 0; i < dir->n; i++) {
		const root_version *rv = root_version_at(dir->roots[i], snap_epoch(snap));
		const void *p;
		uint32_t size;
		if (!rv || rv->id == STRATA_NODE_NULL)
			continue;
		if ((rc = strata_resolve(snap, rv->id, &p, &size)))
			problem(v, "root '%s': node %#" PRIx64 " does not resolve at epoch %" PRIu64 ": %s",
				dir->roots[i]->name, rv->id, snap_epoch(snap), strata_strerror(rc));
	}
	pthread_mutex_unlock(&cat->lock);
	strata_snapshot_close(snap);
}

int strata_verify_images(strata_store *s, strata_report_fn report, void *ctx, uint64_t *checked)
{
	if (!s)
		return STRATA_EINVAL;
	verify_ctx v = {.s = s, .d = s->dur, .report = report, .ctx = ctx};
	/* A pin keeps the cache nodes we read from being freed (cache.c). */
	strata_snapshot *pin;
	int rc = strata_snapshot_open(s, &pin);
	if (rc)
		return rc;
	pthread_mutex_lock(&s->rec.run);
	verify_shards(&v);
	pthread_mutex_unlock(&s->rec.run);
	strata_snapshot_close(pin);
	verify_roots(&v);
	if (checked)
		*checked = v.checked;
	return v.problems ? STRATA_ECORRUPT : 0;
}
