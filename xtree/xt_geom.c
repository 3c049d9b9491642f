/*
 * xt_geom.c — box arithmetic for the X-tree: unions, volumes, margins,
 * overlaps, and the point-to-box distance that kNN orders by. Boxes are
 * closed; a box with lo == hi in some dimension has volume 0.
 *
 * xt_mindist is monotone under rounding: for box B inside box A, every
 * per-dimension gap to A is <= the gap to B and the terms are combined in
 * the same order, so mindist(A) <= mindist(B) holds for the computed
 * doubles too. Best-first kNN relies on that to be exact.
 */
#include <math.h>
#include <stdlib.h>

#include "xt_internal.h"

/* The four arrays share one block (ids, lo, hi, then hist, so each is
 * aligned): an overflow's entries and a reinsertion queue cost one
 * malloc and one free instead of four of each. */
int xt_ents_reserve(xt_ents *e, uint32_t d, uint32_t n)
{
	e->d = d;
	if (n <= e->cap)
		return 0;
	uint32_t cap = e->cap ? e->cap : 64;
	while (cap < n)
		cap *= 2;
	size_t nb = (size_t)cap * d;
	char *b = malloc((size_t)cap * (sizeof(uint64_t) + sizeof(uint32_t)) + 2 * nb * sizeof(double));
	if (!b)
		return STRATA_ENOMEM;
	uint64_t *ids = (uint64_t *)b;
	double *lo = (double *)(ids + cap), *hi = lo + nb;
	uint32_t *hist = (uint32_t *)(hi + nb);
	if (e->n) {
		memcpy(ids, e->ids, e->n * sizeof *ids);
		memcpy(lo, e->lo, (size_t)e->n * d * sizeof *lo);
		memcpy(hi, e->hi, (size_t)e->n * d * sizeof *hi);
		memcpy(hist, e->hist, e->n * sizeof *hist);
	}
	free(e->ids);
	*e = (xt_ents){.n = e->n, .cap = cap, .d = d, .ids = ids, .hist = hist, .lo = lo, .hi = hi};
	return 0;
}

void xt_ents_free(xt_ents *e)
{
	if (e->ids)
		free(e->ids); /* the block */
	memset(e, 0, sizeof *e);
}

void xt_ents_push(xt_ents *e, uint64_t id, uint32_t hist, const double *lo, const double *hi)
{
	uint32_t i = e->n++, d = e->d;
	e->ids[i] = id;
	e->hist[i] = hist;
	memcpy(e->lo + (size_t)i * d, lo, d * sizeof(double));
	memcpy(e->hi + (size_t)i * d, hi, d * sizeof(double));
}

/* Every entry of v, in order: array by array, so the transposition of
 * the node's columns into rows is one strided store per coordinate (the
 * entry-at-a-time copy it replaced was ~2 % of a 1M insert build). */
void xt_ents_push_all(xt_ents *e, const xt_view *v)
{
	uint32_t j0 = e->n, n = v->h->count, d = e->d, cap = v->h->cap;
	memcpy(e->ids + j0, v->ids, n * sizeof *e->ids);
	if (v->hist)
		memcpy(e->hist + j0, v->hist, n * sizeof *e->hist);
	else
		memset(e->hist + j0, 0, n * sizeof *e->hist);
	for (uint32_t k = 0; k < d; k++) {
		const double *l = v->lo + (size_t)k * cap, *h = v->hi + (size_t)k * cap;
		double *el = e->lo + (size_t)j0 * d + k, *eh = e->hi + (size_t)j0 * d + k;
		for (uint32_t i = 0; i < n; i++)
			el[(size_t)i * d] = l[i], eh[(size_t)i * d] = h[i];
	}
	e->n = j0 + n;
}

/* Two entries a step (minpd/maxpd: coordinates are never NaN), the odd
 * last one against itself: a node's box is recomputed on every level of
 * the path after a reinsert or split, and the scalar min/max chains were
 * one dependent compare per entry. */
void xt_box_of_node(const xt_view *v, uint32_t d, xt_box *out)
{
	uint32_t n = v->h->count, cap = v->h->cap;
	for (uint32_t k = 0; k < d; k++) {
		const double *lo = v->lo + (size_t)k * cap, *hi = v->hi + (size_t)k * cap;
		xt_vd a = xt_splat(INFINITY), b = xt_splat(-INFINITY);
		uint32_t i = 0;
		for (; i + XT_LANES <= n; i += XT_LANES)
			a = xt_min(a, xt_load(lo + i)), b = xt_max(b, xt_load(hi + i));
		if (i < n)
			a = xt_min(a, xt_load_tail(lo + i, n - i)), b = xt_max(b, xt_load_tail(hi + i, n - i));
		out->lo[k] = a[0] < a[1] ? a[0] : a[1];
		out->hi[k] = b[0] > b[1] ? b[0] : b[1];
	}
}

/* Dimension by dimension, the bounds in registers: extending a box in
 * memory entry by entry stored and reloaded both every time (the compiler
 * cannot tell the box from the entries). Without idx (a reinsert's
 * union), two dimensions a step: an entry's coordinates lie side by side,
 * and minpd(x, a) is `x < a ? x : a` exactly as the scalar loop's (the
 * same doubles, signed zeros included): half the instructions in 2-D. */
void xt_box_of_ents(const xt_ents *e, const uint32_t *idx, uint32_t from, uint32_t to, xt_box *out)
{
	uint32_t d = e->d, k0 = 0;
	for (; !idx && k0 + XT_LANES <= d; k0 += XT_LANES) {
		xt_vd a = xt_splat(INFINITY), b = xt_splat(-INFINITY);
		for (uint32_t j = from; j < to; j++) {
			a = xt_min(xt_load(e->lo + (size_t)j * d + k0), a);
			b = xt_max(xt_load(e->hi + (size_t)j * d + k0), b);
		}
		memcpy(out->lo + k0, &a, sizeof a);
		memcpy(out->hi + k0, &b, sizeof b);
	}
	for (uint32_t k = k0; k < d; k++) {
		double a = INFINITY, b = -INFINITY;
		for (uint32_t j = from; j < to; j++) {
			size_t at = (size_t)(idx ? idx[j] : j) * d + k;
			a = e->lo[at] < a ? e->lo[at] : a;
			b = e->hi[at] > b ? e->hi[at] : b;
		}
		out->lo[k] = a;
		out->hi[k] = b;
	}
}

void xt_box_get(const xt_view *v, uint32_t d, uint32_t i, xt_box *out)
{
	uint32_t cap = v->h->cap;
	for (uint32_t k = 0; k < d; k++) {
		out->lo[k] = v->lo[(size_t)k * cap + i];
		out->hi[k] = v->hi[(size_t)k * cap + i];
	}
}

void xt_box_set(xt_view *v, uint32_t d, uint32_t i, const xt_box *b)
{
	uint32_t cap = v->h->cap;
	for (uint32_t k = 0; k < d; k++) {
		v->lo[(size_t)k * cap + i] = b->lo[k];
		v->hi[(size_t)k * cap + i] = b->hi[k];
	}
}

void xt_box_extend(xt_box *a, const double *lo, const double *hi, uint32_t d)
{
	for (uint32_t k = 0; k < d; k++) {
		a->lo[k] = lo[k] < a->lo[k] ? lo[k] : a->lo[k];
		a->hi[k] = hi[k] > a->hi[k] ? hi[k] : a->hi[k];
	}
}

double xt_unit_scale(const double *lo, const double *hi, uint32_t d)
{
	double top = 0;
	for (uint32_t k = 0; k < d; k++) {
		top = fabs(lo[k]) > top ? fabs(lo[k]) : top;
		top = fabs(hi[k]) > top ? fabs(hi[k]) : top;
	}
	/* 2^-x, x <= 1024: a subnormal at the least, still a power of two */
	return ldexp(1.0, top >= 1 ? -(ilogb(top) + 1) : 0);
}

double xt_volume(const xt_box *b, uint32_t d)
{
	double v = 1.0;
	for (uint32_t k = 0; k < d; k++)
		v *= b->hi[k] - b->lo[k];
	return v;
}

double xt_margin(const xt_box *b, uint32_t d)
{
	double m = 0.0;
	for (uint32_t k = 0; k < d; k++)
		m += b->hi[k] - b->lo[k];
	return m;
}

double xt_overlap_vol(const xt_box *a, const xt_box *b, uint32_t d)
{
	double v = 1.0;
	for (uint32_t k = 0; k < d; k++) {
		double lo = a->lo[k] > b->lo[k] ? a->lo[k] : b->lo[k];
		double hi = a->hi[k] < b->hi[k] ? a->hi[k] : b->hi[k];
		if (hi < lo)
			return 0.0;
		v *= hi - lo;
	}
	return v;
}

bool xt_box_eq(const xt_box *a, const xt_box *b, uint32_t d)
{
	for (uint32_t k = 0; k < d; k++)
		if (a->lo[k] != b->lo[k] || a->hi[k] != b->hi[k])
			return false;
	return true;
}

/* Distance from pt to the box whose dimension k is lo[k*stride], hi[k*stride]. */
double xt_mindist(const double *pt, const double *lo, const double *hi, size_t stride, uint32_t d,
		  strata_xt_metric m)
{
	double acc = 0.0;
	for (uint32_t k = 0; k < d; k++) {
		double l = lo[k * stride], h = hi[k * stride], x = pt[k];
		double g = x < l ? l - x : (x > h ? x - h : 0.0);
		if (m == STRATA_XT_L2)
			acc += g * g;
		else if (m == STRATA_XT_L1)
			acc += g;
		else
			acc = g > acc ? g : acc;
	}
	return m == STRATA_XT_L2 ? sqrt(acc) : acc;
}
