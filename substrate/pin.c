/*
 * pin.c — the reader table: every open snapshot and transaction owns one
 * cache-line slot holding the epoch it pins. Reclamation frees a node retired
 * at epoch E only when min(current, all pins) >= E.
 *
 * Why not liburcu read-side sections for snapshots: a snapshot lives as long
 * as the application wants, may move between threads, and must report its
 * epoch; an RCU read-side section must stay short and on one thread (a long
 * one stalls every grace period). A pin is the epoch itself, so the reclaim
 * rule can free everything a long reader cannot see.
 *
 * Pinning is safe without a lock (all four accesses are seq_cst):
 *   reader: s = load(cur); CAS(slot, 0 -> s); verify load(cur) == s, else
 *           store(slot, s' = the new value) and verify again;
 *   reclaimer: h = load(cur); m = min(h, every slot).
 * If the reclaimer's scan missed the reader's final store, that store comes
 * after the scan in the single total order, so the reader's verifying load
 * comes after the reclaimer's load of h, and s == cur >= h. Then no node the
 * reader can see (retire > s >= h >= m) is freed.
 *
 * The cache generation (cgen) follows the same pattern as the epoch: the
 * winner of the slot's CAS stores gen in cgen and stores it again until a
 * reload of gen agrees. An evictor unlinks an image, then bumps `gen`
 * (seq_cst), then scans. A reader whose final load of gen came after the
 * bump reads the entry after the unlink and cannot reach the image; if its
 * final load came before the bump, so did its cgen store, which the scan
 * (after the bump) then sees. A scan that finds a pinned slot whose cgen
 * is not stored yet reads UINT64_MAX (written at release, or 0 if the slot
 * never had an owner) and ignores it: that reader's reload of gen comes
 * after the scan's load, hence after the bump, and it stores the new gen.
 * Only the CAS winner writes cgen: when every contender stored cgen before
 * its CAS, a loser could overwrite the winner's value with a newer one
 * (a real window, closed 2026-11-22).
 * Freeing after a scan is ordered after the old owner's reads: release
 * writes cgen = UINT64_MAX with release before unpinning, the next owner's
 * CAS acquires that unpin and its cgen stores are seq_cst, and the scan's
 * load of cgen is seq_cst too (it must be in the total order for the
 * argument above; TSan once reported a reader's read against
 * grace_collect's free under the previous relaxed accesses).
 */
#include <string.h>
#include <time.h>

#include "internal.h"

static _Thread_local uint32_t tl_slot_hint;

int pin_init(pin_table *pt, strata_store *store, const otable *ot, uint32_t nslots)
{
	memset(pt, 0, sizeof *pt);
	pt->slots = strata_mem_aligned(CACHELINE, sizeof(*pt->slots) * nslots);
	if (!pt->slots)
		return STRATA_ENOMEM;
	memset(pt->slots, 0, sizeof(*pt->slots) * nslots);
	for (uint32_t i = 0; i < nslots; i++) {
		pt->slots[i].store = store;
		pt->slots[i].index = i;
		pt->slots[i].dirs = ot->dirs;
	}
	pt->nslots = nslots;
	return 0;
}

void pin_destroy(pin_table *pt)
{
	strata_mem_free(pt->slots, sizeof(*pt->slots) * pt->nslots);
	pt->slots = NULL;
}

static void raise_hwm(pin_table *pt, uint32_t i)
{
	uint32_t h = atomic_load_explicit(&pt->hwm, memory_order_relaxed);
	while (h <= i && !atomic_compare_exchange_weak(&pt->hwm, &h, i + 1))
		;
}

uint64_t pin_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts); /* a few ns: no system call */
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct strata_snapshot *pin_acquire(pin_table *pt, _Atomic uint64_t *cur, uint8_t kind)
{
	uint32_t n = pt->nslots;
	uint32_t start = tl_slot_hint < n ? tl_slot_hint : 0;
	for (uint32_t k = 0; k < n; k++) {
		uint32_t i = start + k < n ? start + k : start + k - n;
		struct strata_snapshot *s = &pt->slots[i];
		if (atomic_load_explicit(&s->pin, memory_order_relaxed))
			continue;
		uint64_t e = atomic_load(cur);
		atomic_store_explicit(&s->expire, 0, memory_order_relaxed);
		atomic_store_explicit(&s->opened_ns, pin_now_ns(), memory_order_relaxed);
		atomic_store_explicit(&s->kind, kind, memory_order_relaxed); /* published by the CAS */
		uint64_t zero = 0;
		if (!atomic_compare_exchange_strong(&s->pin, &zero, e))
			continue;
		raise_hwm(pt, i);
		for (uint64_t now; (now = atomic_load(cur)) != e;) {
			e = now;
			atomic_store(&s->pin, e);
		}
		for (uint64_t g = atomic_load(&pt->gen), now;; g = now) {
			atomic_store(&s->cgen, g);
			if ((now = atomic_load(&pt->gen)) == g)
				break;
		}
		s->key = stamp_key(e);
		tl_slot_hint = i;
		return s;
	}
	return NULL;
}

void pin_expire(struct strata_snapshot *s)
{
	atomic_store_explicit(&s->cgen, UINT64_MAX, memory_order_release);
	atomic_store_explicit(&s->pin, PIN_EXPIRED, memory_order_release);
}

void pin_release(pin_table *pt, struct strata_snapshot *s)
{
	uint64_t h = atomic_load_explicit(&s->hits, memory_order_relaxed);
	if (h) {
		atomic_fetch_add_explicit(&pt->hits_closed, h, memory_order_relaxed);
		atomic_store_explicit(&s->hits, 0, memory_order_relaxed);
	}
	atomic_store_explicit(&s->cgen, UINT64_MAX, memory_order_release);
	atomic_store_explicit(&s->pin, 0, memory_order_release);
}

uint64_t pin_hits(pin_table *pt)
{
	uint64_t n = atomic_load_explicit(&pt->hits_closed, memory_order_relaxed);
	uint32_t h = atomic_load(&pt->hwm);
	for (uint32_t i = 0; i < h; i++)
		n += atomic_load_explicit(&pt->slots[i].hits, memory_order_relaxed);
	return n;
}

uint32_t pin_count(pin_table *pt)
{
	uint32_t n = 0, h = atomic_load(&pt->hwm);
	for (uint32_t i = 0; i < h; i++)
		n += atomic_load_explicit(&pt->slots[i].pin, memory_order_acquire) != 0;
	return n;
}

uint64_t pin_oldest_gen(pin_table *pt)
{
	uint64_t m = atomic_load(&pt->gen) + 1;
	uint32_t h = atomic_load(&pt->hwm);
	for (uint32_t i = 0; i < h; i++) {
		if (!atomic_load(&pt->slots[i].pin))
			continue;
		uint64_t g = atomic_load(&pt->slots[i].cgen); /* seq_cst: see the header */
		if (g < m)
			m = g;
	}
	return m;
}

uint64_t pin_oldest(pin_table *pt, _Atomic uint64_t *cur)
{
	uint64_t m = atomic_load(cur);
	uint32_t h = atomic_load(&pt->hwm);
	for (uint32_t i = 0; i < h; i++) {
		uint64_t p = atomic_load(&pt->slots[i].pin);
		if (p && p < m)
			m = p;
	}
	return m;
}
