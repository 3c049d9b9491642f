/*
 * check.c — strata_bpt_check (the invariant checker shared by the tests and
 * `strata check`) and strata_bpt_stats_get, one walk over the whole tree.
 *
 * The walk carries each subtree's key range [lo, hi) down from the
 * separators and validates, per node: size, header, slot and cell bounds
 * (cells + garbage account for the heap exactly), strictly increasing keys
 * inside the range, key and value sizes, the fill bound of non-top nodes,
 * subtree counts against what the children really hold, and the level
 * (so every leaf is at depth height - 1). Leaves are visited in order and
 * each one's first key must follow the previous leaf's last key: with no
 * sibling links, that in-order sequence is the "leaf chain".
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "bpt.h"

typedef struct ck {
	bpt_rd r;
	bpt_meta m;
	strata_report_fn report;
	void *ctx;
	uint64_t problems;
	strata_bpt_stats *st;
	uint64_t leaf_used, branch_used;
	uint8_t *last; /* last key of the previous leaf */
	size_t lastlen;
	bool have_last;
} ck;

__attribute__((format(printf, 3, 4))) static void ck_fail(ck *c, strata_node_id id,
							   const char *fmt, ...)
{
	c->problems++;
	if (!c->report)
		return;
	char msg[256];
	int n = snprintf(msg, sizeof msg, "bptree node %#" PRIx64 ": ", id);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
	va_end(ap);
	c->report(c->ctx, msg);
}

typedef struct range {
	const uint8_t *lo, *hi; /* NULL: unbounded */
	size_t lolen, hilen;
} range;

static bool in_range(const range *rg, const uint8_t *k, size_t klen)
{
	return (!rg->lo || key_cmp(k, klen, rg->lo, rg->lolen) >= 0) &&
	       (!rg->hi || key_cmp(k, klen, rg->hi, rg->hilen) < 0);
}

/* The prefix and the slot hints (cells already inside the node): every key
 * (separators 1.. of a branch) starts with the node's p prefix bytes, the
 * prefix of a node with no such key is empty, and each hint is its key's. */
static bool ck_hints(ck *c, strata_node_id id, const uint8_t *n, unsigned level)
{
	unsigned cnt = n_count(n), p = n_pfx(n), first = level ? 1 : 0;
	if (p > c->m.key_max || (cnt <= first && p)) {
		ck_fail(c, id, "prefix length %u with %u entries", p, cnt);
		return false;
	}
	if (level && cnt && n_hint(n, 0) != 0)
		ck_fail(c, id, "entry 0: hint %#x, want 0", n_hint(n, 0));
	const uint8_t *pk = NULL;
	for (unsigned i = first; i < cnt; i++) {
		const uint8_t *cell = n + n_slot(n, i);
		const uint8_t *k = level ? bc_key(cell) : lc_key(cell);
		size_t kl = level ? bc_klen(cell) : lc_klen(cell);
		if (!pk)
			pk = k;
		if (kl < p || memcmp(k, pk, p) != 0) {
			ck_fail(c, id, "slot %u: key without the node's %u-byte prefix", i, p);
			return false;
		}
		if (n_hint(n, i) != bpt_hint(k, kl, p))
			ck_fail(c, id, "slot %u: hint %#x, key gives %#x", i, n_hint(n, i),
				bpt_hint(k, kl, p));
	}
	return true;
}

/* Header, slots and cells of a branch/leaf node; false if unusable. */
static bool ck_layout(ck *c, strata_node_id id, const uint8_t *n, uint32_t size, unsigned level)
{
	unsigned kind = level ? STRATA_BPT_KIND_BRANCH : STRATA_BPT_KIND_LEAF;
	if (size != c->m.node_size || ld16(n) != BPT_MAGIC || n_kind(n) != kind ||
	    n_level(n) != level) {
		ck_fail(c, id, "bad header (size %u, kind %#x, level %u; want kind %#x level %u)",
			size, size >= BPT_HDR ? n_kind(n) : 0u, size >= BPT_HDR ? n_level(n) : 0u,
			kind, level);
		return false;
	}
	unsigned cnt = n_count(n), heap = n_heap(n);
	if (BPT_HDR + BPT_SLOT * cnt > heap || heap > size) {
		ck_fail(c, id, "count %u / heap %u out of bounds", cnt, heap);
		return false;
	}
	uint32_t cells = 0;
	for (unsigned i = 0; i < cnt; i++) {
		unsigned off = n_slot(n, i);
		uint32_t hdr = level ? BPT_BRANCH_CELL : BPT_LEAF_CELL;
		if (off < heap || off + hdr > size ||
		    off + (level ? bc_size(n + off) : lc_size(n + off)) > size) {
			ck_fail(c, id, "slot %u: cell at %u outside [%u, %u)", i, off, heap, size);
			return false;
		}
		cells += level ? bc_size(n + off) : lc_size(n + off);
	}
	if (cells + n_garbage(n) != size - heap) {
		ck_fail(c, id, "cells %u + garbage %u != heap bytes %u", cells, n_garbage(n),
			size - heap);
		return false;
	}
	return ck_hints(c, id, n, level);
}

static void ck_fill(ck *c, strata_node_id id, const uint8_t *n, unsigned level, bool top)
{
	uint32_t used = n_used(n, c->m.node_size), cap = bpt_cap(c->m.node_size);
	uint32_t emax = bpt_emax(c->m.node_size);
	/* design/BPTREE.md: a non-top leaf keeps cap/2 - emax/2, a branch
	 * cap/2 - emax (its entry 0 key moves up when it splits). */
	uint32_t min = cap / 2 - (level ? emax : emax / 2);
	if (!top && used < min)
		ck_fail(c, id, "level %u: %u bytes used, under the fill bound %u", level, used,
			min);
	if (level && n_count(n) < 2)
		ck_fail(c, id, "%s branch with %u children", top ? "top" : "a", n_count(n));
	if (level)
		c->branch_used += used;
	else
		c->leaf_used += used;
}

static uint64_t ck_leaf(ck *c, strata_node_id id, const uint8_t *n, const range *rg)
{
	unsigned cnt = n_count(n);
	for (unsigned i = 0; i < cnt; i++) {
		const uint8_t *cell = leaf_cell(n, i);
		const uint8_t *k = lc_key(cell);
		size_t kl = lc_klen(cell);
		if (kl == 0 || kl > c->m.key_max)
			ck_fail(c, id, "slot %u: key length %zu", i, kl);
		if (!in_range(rg, k, kl))
			ck_fail(c, id, "slot %u: key outside the range its separators give", i);
		if (i > 0) {
			const uint8_t *pc = leaf_cell(n, i - 1);
			if (key_cmp(lc_key(pc), lc_klen(pc), k, kl) >= 0)
				ck_fail(c, id, "slot %u: keys not increasing", i);
		} else if (c->have_last && key_cmp(c->last, c->lastlen, k, kl) >= 0) {
			ck_fail(c, id, "first key not after the previous leaf's last key");
		}
		const void *v;
		size_t vl;
		int rc = bpt_rd_value(&c->r, cell, &v, &vl);
		if (rc)
			ck_fail(c, id, "slot %u: value unreadable: %s", i, strata_strerror(rc));
		bool ovf = lc_flags(cell) & BPT_F_OVERFLOW;
		if (lc_flags(cell) & ~BPT_F_OVERFLOW)
			ck_fail(c, id, "slot %u: unknown flags %#x", i, lc_flags(cell));
		if (ovf == bpt_inline(c->m.node_size, kl, lc_vlen(cell)))
			ck_fail(c, id, "slot %u: value of %u bytes %s", i, lc_vlen(cell),
				ovf ? "in an overflow node but fits inline" : "inline but too big");
		if (c->st) {
			c->st->key_bytes += kl;
			c->st->value_bytes += lc_vlen(cell);
			c->st->overflow_nodes += ovf;
			c->st->bytes += ovf ? BPT_HDR + lc_vlen(cell) : 0;
		}
	}
	if (cnt) {
		const uint8_t *lcell = leaf_cell(n, cnt - 1);
		memcpy(c->last, lc_key(lcell), lc_klen(lcell) <= c->m.key_max ? lc_klen(lcell) : 0);
		c->lastlen = lc_klen(lcell) <= c->m.key_max ? lc_klen(lcell) : 0;
		c->have_last = true;
	}
	return cnt;
}

static uint64_t ck_node(ck *c, strata_node_id id, unsigned level, const range *rg, bool top);

static uint64_t ck_branch(ck *c, strata_node_id id, const uint8_t *n, unsigned level,
			  const range *rg)
{
	unsigned cnt = n_count(n);
	uint64_t total = 0;
	if (cnt && bc_klen(br_cell(n, 0)) != 0)
		ck_fail(c, id, "entry 0 has a key");
	for (unsigned i = 0; i < cnt; i++) {
		const uint8_t *cell = br_cell(n, i);
		range sub = *rg;
		if (i > 0) {
			sub.lo = bc_key(cell);
			sub.lolen = bc_klen(cell);
			if (sub.lolen == 0 || sub.lolen > c->m.key_max)
				ck_fail(c, id, "separator %u: length %zu", i, sub.lolen);
			if (!in_range(rg, sub.lo, sub.lolen) ||
			    (rg->lo && key_cmp(sub.lo, sub.lolen, rg->lo, rg->lolen) == 0))
				ck_fail(c, id, "separator %u outside the node's range", i);
			const uint8_t *pc = br_cell(n, i - 1);
			if (i > 1 && key_cmp(bc_key(pc), bc_klen(pc), sub.lo, sub.lolen) >= 0)
				ck_fail(c, id, "separator %u not increasing", i);
		}
		if (i + 1 < cnt) {
			const uint8_t *nc = br_cell(n, i + 1);
			sub.hi = bc_key(nc);
			sub.hilen = bc_klen(nc);
		}
		uint64_t got = ck_node(c, bc_child(cell), level - 1, &sub, false);
		if (got != bc_count(cell))
			ck_fail(c, id, "entry %u: count %" PRIu64 ", subtree holds %" PRIu64, i,
				bc_count(cell), got);
		total += got;
		if (c->st)
			c->st->separator_bytes += bc_klen(cell);
	}
	return total;
}

/* Returns the keys the subtree holds (as found). */
static uint64_t ck_node(ck *c, strata_node_id id, unsigned level, const range *rg, bool top)
{
	const uint8_t *n;
	uint32_t size;
	int rc = bpt_rd_node(&c->r, id, &n, &size);
	if (rc) {
		ck_fail(c, id, "level %u: unreadable: %s", level, strata_strerror(rc));
		return 0;
	}
	if (size < BPT_HDR || !ck_layout(c, id, n, size, level))
		return 0;
	ck_fill(c, id, n, level, top);
	if (c->st) {
		c->st->bytes += size;
		if (level)
			c->st->branch_nodes++;
		else
			c->st->leaf_nodes++;
	}
	return level ? ck_branch(c, id, n, level, rg) : ck_leaf(c, id, n, rg);
}

static int ck_run(const strata_snapshot *snap, const char *name, strata_report_fn report,
		  void *ctx, strata_bpt_stats *st)
{
	if (!snap || !name)
		return STRATA_EINVAL;
	ck c = {.r = {.snap = snap}, .report = report, .ctx = ctx, .st = st};
	strata_node_id mid;
	int rc = bpt_rd_meta(&c.r, name, &mid, &c.m);
	if (rc)
		return rc;
	if (!(c.last = malloc(c.m.key_max + 1)))
		return STRATA_ENOMEM;
	if (st) {
		memset(st, 0, sizeof *st);
		st->count = c.m.count;
		st->height = c.m.height;
		st->node_size = c.m.node_size;
		st->key_max = c.m.key_max;
		st->bytes = BPT_META_SIZE;
	}
	range all = {0};
	uint64_t got = ck_node(&c, c.m.top, c.m.height - 1, &all, true);
	if (got != c.m.count)
		ck_fail(&c, mid, "meta count %" PRIu64 ", tree holds %" PRIu64, c.m.count, got);
	if (st) {
		uint32_t cap = bpt_cap(c.m.node_size);
		st->leaf_fill = st->leaf_nodes ? (double)c.leaf_used / ((double)cap * st->leaf_nodes) : 0;
		st->branch_fill =
			st->branch_nodes ? (double)c.branch_used / ((double)cap * st->branch_nodes) : 0;
	}
	free(c.last);
	return c.problems ? STRATA_ECORRUPT : 0;
}

int strata_bpt_check(const strata_snapshot *snap, const char *name, strata_report_fn report,
		     void *ctx)
{
	return ck_run(snap, name, report, ctx, NULL);
}

int strata_bpt_stats_get(const strata_snapshot *snap, const char *name, strata_bpt_stats *st)
{
	if (!st)
		return STRATA_EINVAL;
	return ck_run(snap, name, NULL, NULL, st);
}

int strata_bpt_is_bptree(const strata_snapshot *snap, const char *name)
{
	if (!snap || !name)
		return 0;
	bpt_rd r = {.snap = snap};
	strata_node_id mid;
	bpt_meta m;
	return bpt_rd_meta(&r, name, &mid, &m) == 0;
}
