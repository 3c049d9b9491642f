/*
 * xt_check.c — the X-tree invariant checker (strata_xt_check, shared by the
 * tests and `strata check`) and the statistics walk (strata_xt_stats_get).
 * Both visit every node once through a snapshot; the checker reports every
 * problem it finds and goes on where it can, so one report shows all of
 * them. What it checks is listed in xtree.h.
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include "xt_internal.h"

typedef struct ck {
	const xt_rd *rd;
	strata_report_fn report;
	void *ctx;
	uint64_t problems;
	uint64_t entries;
	strata_xt_stats *st;
	double fill[2]; /* summed fill: [0] leaves, [1] directory nodes */
	uint64_t overlap_nodes;
} ck;

__attribute__((format(printf, 2, 3))) static void problem(ck *c, const char *fmt, ...)
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

static void check_header(ck *c, strata_node_id id, const xt_view *v, uint32_t size, uint32_t level,
			 bool root)
{
	const xt_meta *m = c->rd->m;
	const xt_hdr *h = v->h;
	uint8_t want = level == 0 ? XT_KIND_LEAF : h->blocks > 1 ? XT_KIND_SUPER : XT_KIND_DIR;
	strata_node_info info;
	if (strata_node_stat(c->rd->snap, id, &info) == 0 && info.kind != h->kind)
		problem(c, "node %#" PRIx64 ": substrate kind %#x, header kind %#x", id, info.kind,
			h->kind);
	if (h->kind != want)
		problem(c, "node %#" PRIx64 ": kind %#x, expected %#x", id, h->kind, want);
	if (h->level != level)
		problem(c, "node %#" PRIx64 ": level %u, expected %u", id, h->level, level);
	if (h->blocks == 0 || size != (uint32_t)h->blocks * m->o.node_size)
		problem(c, "node %#" PRIx64 ": %u bytes is not %u whole blocks of %u", id, size,
			h->blocks, m->o.node_size);
	if (level == 0 && h->blocks != 1)
		problem(c, "leaf %#" PRIx64 ": %u blocks (only directory nodes grow)", id, h->blocks);
	if (h->cap != xt_cap_of(size, m->dims, level == 0))
		problem(c, "node %#" PRIx64 ": capacity %u, expected %u", id, h->cap,
			xt_cap_of(size, m->dims, level == 0));
	if (h->blocks > 1 && h->count <= xt_cap_of((h->blocks - 1u) * m->o.node_size, m->dims, false))
		problem(c, "supernode %#" PRIx64 ": %u entries fit in fewer than %u blocks", id,
			h->count, h->blocks);
	uint32_t min = root ? (level ? 2 : 1) : xt_min_count(m, level == 0);
	if (h->count < min)
		problem(c, "node %#" PRIx64 " (level %u%s): %u entries, minimum %u", id, level,
			root ? ", root" : "", h->count, min);
}

static void check_entries(ck *c, strata_node_id id, const xt_view *v)
{
	uint32_t d = c->rd->m->dims, cap = v->h->cap;
	for (uint32_t i = 0; i < v->h->count; i++) {
		for (uint32_t k = 0; k < d; k++) {
			double lo = v->lo[(size_t)k * cap + i], hi = v->hi[(size_t)k * cap + i];
			if (!isfinite(lo) || !isfinite(hi) || lo > hi) {
				problem(c, "node %#" PRIx64 " entry %u: bad box in dimension %u", id, i,
					k);
				break;
			}
		}
		if (!v->hist)
			continue;
		uint32_t h = v->hist[i];
		if (h == 0 || (d < 32 && (h >> d) != 0))
			problem(c, "node %#" PRIx64 " entry %u: split history %#x (dims %u)", id, i, h,
				d);
	}
}

/* Box b with every coordinate multiplied by f. */
static void box_scaled(xt_box *b, uint32_t d, double f)
{
	for (uint32_t k = 0; k < d; k++)
		b->lo[k] *= f, b->hi[k] *= f;
}

/* The volume of directory node v's box `all` and the summed overlap of
 * its entries' boxes, every coordinate multiplied by f (1.0: as they
 * are). Boxes of finite but huge coordinates have volumes of inf, and
 * inf / inf or inf * 0 is NaN: add_stats then takes f, a power of two
 * that puts the coordinates in (-1, 1), which scales both alike (exactly
 * but for underflow) and leaves both finite. */
static void node_overlap(const xt_view *v, uint32_t d, const xt_box *all, double f, double *vol,
			 double *ov)
{
	xt_box u = *all;
	box_scaled(&u, d, f);
	*vol = xt_volume(&u, d);
	*ov = 0;
	for (uint32_t i = 0; i < v->h->count; i++)
		for (uint32_t j = i + 1; j < v->h->count; j++) {
			xt_box a, b;
			xt_box_get(v, d, i, &a);
			xt_box_get(v, d, j, &b);
			box_scaled(&a, d, f);
			box_scaled(&b, d, f);
			*ov += xt_overlap_vol(&a, &b, d);
		}
}

static void add_stats(ck *c, const xt_view *v, uint32_t size)
{
	strata_xt_stats *st = c->st;
	const xt_hdr *h = v->h;
	uint32_t d = c->rd->m->dims;
	st->nodes++;
	st->nodes_per_level[h->level]++;
	st->bytes += size;
	c->fill[h->level > 0] += (double)h->count / h->cap;
	if (h->blocks > 1) {
		st->supernodes++;
		st->supernode_blocks += h->blocks;
		if (h->blocks > st->supernode_max_blocks)
			st->supernode_max_blocks = h->blocks;
	}
	if (!h->level)
		return;
	xt_box all;
	xt_box_of_node(v, d, &all);
	double vol, ov;
	node_overlap(v, d, &all, 1.0, &vol, &ov);
	if (!isfinite(vol) || !isfinite(ov)) /* see node_overlap */
		node_overlap(v, d, &all, xt_unit_scale(all.lo, all.hi, d), &vol, &ov);
	if (vol > 0) {
		st->overlap += ov / vol;
		c->overlap_nodes++;
	}
}

/* Walks node `id` at `level`; *box gets its tight MBR. */
static int walk(ck *c, strata_node_id id, uint32_t level, bool root, xt_box *box)
{
	xt_view v;
	uint32_t size, d = c->rd->m->dims;
	int rc = xt_rd_node(c->rd, id, &v, &size);
	if (rc) {
		problem(c, "node %#" PRIx64 " (level %u): %s", id, level, strata_strerror(rc));
		return rc == STRATA_ECORRUPT ? 0 : rc;
	}
	if (c->report)
		check_header(c, id, &v, size, level, root);
	if (c->report)
		check_entries(c, id, &v);
	xt_box_of_node(&v, d, box);
	if (v.h->level != level)
		return 0; /* reported; its children's levels would only echo it */
	if (c->st)
		add_stats(c, &v, size);
	if (level == 0) {
		c->entries += v.h->count;
		return 0;
	}
	for (uint32_t i = 0; i < v.h->count; i++) {
		xt_box child, entry;
		if ((rc = walk(c, v.ids[i], level - 1, false, &child)))
			return rc;
		xt_box_get(&v, d, i, &entry);
		if (c->report && !xt_box_eq(&child, &entry, d))
			problem(c, "node %#" PRIx64 " entry %u: box is not the exact MBR of child %#" PRIx64,
				id, i, v.ids[i]);
	}
	return 0;
}

static int run(const strata_snapshot *snap, const char *name, ck *c, xt_rd *rd)
{
	int rc = xt_rd_open(snap, name, rd);
	if (rc)
		return rc;
	c->rd = rd;
	const xt_meta *m = rd->m;
	if (m->height == 0) {
		if (m->count || m->top)
			problem(c, "empty tree with count %" PRIu64 " and top %#" PRIx64, m->count, m->top);
		return 0;
	}
	xt_box b;
	if ((rc = walk(c, m->top, m->height - 1, true, &b)))
		return rc;
	if (c->entries != m->count)
		problem(c, "tree holds %" PRIu64 " entries, meta node says %" PRIu64, c->entries,
			m->count);
	return 0;
}

static void no_report(void *ctx, const char *msg)
{
	(void)ctx, (void)msg;
}

STRATA_API int strata_xt_check(const strata_snapshot *snap, const char *name,
			       strata_report_fn report, void *ctx)
{
	ck c = {.report = report ? report : no_report, .ctx = ctx};
	xt_rd rd;
	int rc = run(snap, name, &c, &rd);
	if (rc)
		return rc;
	return c.problems ? STRATA_ECORRUPT : 0;
}

STRATA_API int strata_xt_stats_get(const strata_snapshot *snap, const char *name,
				   strata_xt_stats *st)
{
	if (!st)
		return STRATA_EINVAL;
	memset(st, 0, sizeof *st);
	ck c = {.st = st};
	xt_rd rd;
	int rc = run(snap, name, &c, &rd);
	if (rc)
		return rc;
	const xt_meta *m = rd.m;
	st->dims = m->dims;
	st->height = m->height;
	st->count = m->count;
	st->node_size = m->o.node_size;
	st->leaf_capacity = xt_cap_of(m->o.node_size, m->dims, true);
	st->dir_capacity = xt_cap_of(m->o.node_size, m->dims, false);
	uint64_t dirs = st->nodes - st->nodes_per_level[0];
	st->leaf_fill = st->nodes_per_level[0] ? c.fill[0] / st->nodes_per_level[0] : 0;
	st->dir_fill = dirs ? c.fill[1] / dirs : 0;
	st->overlap = c.overlap_nodes ? st->overlap / c.overlap_nodes : 0;
	return 0;
}

static int visit_nodes(const xt_rd *rd, strata_node_id id, uint32_t level, strata_xt_node_fn fn,
		       void *ctx)
{
	xt_view v;
	int rc = xt_rd_node(rd, id, &v, NULL);
	if (rc)
		return rc;
	if (v.h->level != level)
		return STRATA_ECORRUPT;
	xt_box b;
	xt_box_of_node(&v, rd->m->dims, &b);
	if ((rc = fn(ctx, level, v.h->blocks, v.h->count, b.lo, b.hi)))
		return rc;
	for (uint32_t i = 0; level && i < v.h->count; i++)
		if ((rc = visit_nodes(rd, v.ids[i], level - 1, fn, ctx)))
			return rc;
	return 0;
}

STRATA_API int strata_xt_nodes(const strata_snapshot *snap, const char *name,
			       strata_xt_node_fn fn, void *ctx)
{
	xt_rd rd;
	int rc = xt_rd_open(snap, name, &rd);
	if (rc)
		return rc;
	if (!fn)
		return STRATA_EINVAL;
	return rd.m->height ? visit_nodes(&rd, rd.m->top, rd.m->height - 1, fn, ctx) : 0;
}
