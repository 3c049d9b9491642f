/*
 * snapshot.c — snapshots and the resolve hot path.
 *
 * A snapshot is a pinned slot of the reader table (pin.c) and nothing more:
 * opening one allocates nothing. strata_resolve() applies the MVCC rule
 * (birth <= s < retire) to the object-table entry after checking the tag.
 * A node visible to the snapshot cannot be freed while it is open, so the
 * bytes returned stay valid until strata_snapshot_close().
 *
 * Why no re-check of the tag (no seqlock) on the hot path: the entry may be
 * freed and reused while we read it only if its occupant A is invisible to
 * every pin, ours included. A later occupant B is born after that free, so
 * B's birth (a transaction marker, then an epoch > current) is above our
 * epoch s. We load retire, then birth, both with acquire; writers store
 * them with release, birth before retire (ot_alloc, commit). If the retire
 * we read is A's, A is invisible, so either A's retire <= s or A's birth > s:
 * not visible. If it is B's (or later), the acquire makes the birth we read
 * B's or later: > s, not visible. So a mix of two occupants never passes
 * the visibility test, and a visible result is A, whose fields cannot change
 * while we are pinned. A free entry keeps its last occupant's epochs (or a
 * marker), which no pin can see: the state test only picks the error code.
 */
#include <string.h>

#include "durable.h"
#include "internal.h"

int strata_snapshot_open(strata_store *s, strata_snapshot **out)
{
	if (!s || !out)
		return STRATA_EINVAL;
	strata_snapshot *snap = pin_acquire(&s->pins, &s->epoch_current, PIN_SNAPSHOT);
	if (!snap) {
		*out = NULL;
		return STRATA_EFULL;
	}
	*out = snap;
	return 0;
}

void strata_snapshot_close(strata_snapshot *snap)
{
	if (snap)
		pin_release(&snap->store->pins, snap);
}

uint64_t strata_snapshot_epoch(const strata_snapshot *snap)
{
	return snap ? snap_epoch(snap) : 0;
}

typedef struct entry_read {
	uint64_t bstamp, rstamp; /* as read from the entry */
	uint32_t info;
	const void *data;
} entry_read;

static int read_faulted(const strata_snapshot *snap, strata_node_id id, entry_read *out);
static int read_image(const strata_snapshot *snap, ot_entry *e, strata_node_id id, entry_read *out);

/* A cap passed (reclaim.c asked): give the pin up now, while the caller is
 * inside the library and holds no pointer it is still reading (a snapshot
 * is used by one thread at a time). Every later call fails the same way. */
static __attribute__((noinline)) int snapshot_expired(const strata_snapshot *snap)
{
	strata_snapshot *s = (strata_snapshot *)snap; /* the slot is the caller's */
	if (atomic_load_explicit(&s->pin, memory_order_relaxed) != PIN_EXPIRED) {
		pin_expire(s);
		atomic_fetch_add_explicit(&s->store->snapshots_expired, 1, memory_order_relaxed);
	}
	return STRATA_ESNAPSHOT_TOO_OLD;
}

/* Reads the entry for `id` consistently and applies visibility at epoch e. */
static inline int read_visible(const strata_snapshot *snap, strata_node_id id, entry_read *out)
{
	if (STRATA_UNLIKELY(atomic_load_explicit(&snap->expire, memory_order_relaxed)))
		return snapshot_expired(snap);
	ot_entry *chunk = atomic_load_explicit(&snap->dirs[ot_dir_slot(id)], memory_order_acquire);
	if (STRATA_UNLIKELY(!chunk)) /* never issued, or on disk (DURABLE open) */
		return read_faulted(snap, id, out);
	ot_entry *e = &chunk[STRATA_NODEID_INDEX(id) & (OT_CHUNK - 1)];
	uint32_t m = atomic_load_explicit(&e->meta, memory_order_acquire);
	if (STRATA_UNLIKELY(OT_META_TAG(m) != STRATA_NODEID_TAG(id)))
		return STRATA_ESTALE;
	/* retire before birth, both acquire: see "Why no re-check" above.
	 * Stamps against the snapshot's key: b <= s < r (internal.h). */
	out->rstamp = atomic_load_explicit(&e->rstamp, memory_order_acquire);
	out->bstamp = atomic_load_explicit(&e->bstamp, memory_order_acquire);
	uint64_t k = snap->key;
	if (STRATA_UNLIKELY(!(out->bstamp <= k && k < out->rstamp)))
		return OT_META_STATE(m) == OT_FREE ? STRATA_ESTALE : STRATA_ENOTVISIBLE;
	out->info = atomic_load_explicit(&e->info, memory_order_relaxed);
	out->data = (const void *)(uintptr_t)atomic_load_explicit(&e->loc, memory_order_acquire);
	if (STRATA_UNLIKELY((uintptr_t)out->data & LOC_BITS)) /* DURABLE: first use, or cached */
		return read_image(snap, e, id, out);
	return 0;
}

/* A cached image (a hit, counted by the snapshot's slot) or one to load. */
static __attribute__((noinline)) int read_image(const strata_snapshot *snap, ot_entry *e,
						strata_node_id id, entry_read *out)
{
	uint64_t loc = (uint64_t)(uintptr_t)out->data;
	if (LOC_CACHED(loc)) {
		out->data = cache_hit(loc);
		pin_count_hit((strata_snapshot *)snap); /* the slot is the caller's */
		return 0;
	}
	return durable_load(snap->store, e, id, &out->data);
}

/* Off the hot path: the chunk is loaded (or found never issued), then the
 * read is retried once; a loaded chunk stays until close. */
static __attribute__((noinline)) int read_faulted(const strata_snapshot *snap, strata_node_id id,
						  entry_read *out)
{
	ot_entry *chunk;
	if (!STRATA_NODEID_TAG(id)) /* no node ever has tag 0 (NODE_NULL among them) */
		return STRATA_ESTALE;
	int rc = ot_fault(&snap->store->ot, ot_dir_slot(id), &chunk);
	if (rc)
		return rc;
	return chunk ? read_visible(snap, id, out) : STRATA_ESTALE;
}

int strata_resolve(const strata_snapshot *snap, strata_node_id id, const void **data,
		   uint32_t *size)
{
	if (STRATA_UNLIKELY(!snap || !data))
		return STRATA_EINVAL;
	entry_read r;
	int rc = read_visible(snap, id, &r);
	if (STRATA_UNLIKELY(rc))
		return rc;
	*data = r.data;
	if (size)
		*size = OT_INFO_SIZE(r.info);
	return 0;
}

int strata_node_stat(const strata_snapshot *snap, strata_node_id id, strata_node_info *info)
{
	if (!snap || !info)
		return STRATA_EINVAL;
	entry_read r;
	int rc = read_visible(snap, id, &r);
	if (rc)
		return rc;
	info->size = OT_INFO_SIZE(r.info);
	info->kind = OT_INFO_KIND(r.info);
	info->size_class = (uint8_t)seg_class_of(info->size);
	info->birth = stamp_val(r.bstamp);
	info->retire = stamp_val(r.rstamp) >= EPOCH_PENDING ? UINT64_MAX : stamp_val(r.rstamp);
	return 0;
}

int strata_snapshot_root(const strata_snapshot *snap, const char *name, strata_node_id *id)
{
	if (!snap || !id)
		return STRATA_EINVAL;
	if (STRATA_UNLIKELY(atomic_load_explicit(&snap->expire, memory_order_relaxed)))
		return snapshot_expired(snap);
	size_t len;
	int rc = catalog_name_ok(name, &len);
	if (rc)
		return rc;
	root *r = catalog_find(&snap->store->cat, name, len);
	const root_version *v = r ? root_version_at(r, snap_epoch(snap)) : NULL;
	if (!v)
		return STRATA_ENOTFOUND;
	*id = v->id;
	return 0;
}
