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

int xt_ents_reserve(xt_ents *e, uint32_t d, uint32_t n)
{
	e->d = d;
	if (n <= e->cap)
		return 0;
	uint32_t cap = e->cap ? e->cap : 64;
	while (cap < n)
		cap *= 2;
	uint64_t *ids = realloc(e->ids, (size_t)cap * sizeof *ids);
	if (ids)
		e->ids = ids;
	uint32_t *hist = realloc(e->hist, (size_t)cap * sizeof *hist);
	if (hist)
		e->hist = hist;
	double *lo = realloc(e->lo, (size_t)cap * d * sizeof *lo);
	if (lo)
		e->lo = lo;
	double *hi = realloc(e->hi, (size_t)cap * d * sizeof *hi);
	if (hi)
		e->hi = hi;
	if (!ids || !hist || !lo || !hi)
		return STRATA_ENOMEM;
	e->cap = cap;
	return 0;
}

void xt_ents_free(xt_ents *e)
{
	if (e->ids || e->hist || e->lo || e->hi) { /* most operations never used theirs */
		free(e->ids);
		free(e->hist);
		free(e->lo);
		free(e->hi);
	}
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

void xt_ents_push_node(xt_ents *e, const xt_view *v, uint32_t i)
{
	uint32_t j = e->n++, d = e->d, cap = v->h->cap;
	e->ids[j] = v->ids[i];
	e->hist[j] = v->hist ? v->hist[i] : 0;
	for (uint32_t k = 0; k < d; k++) {
		e->lo[(size_t)j * d + k] = v->lo[(size_t)k * cap + i];
		e->hi[(size_t)j * d + k] = v->hi[(size_t)k * cap + i];
	}
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
 * cannot tell the box from the entries). */
void xt_box_of_ents(const xt_ents *e, const uint32_t *idx, uint32_t from, uint32_t to, xt_box *out)
{
	uint32_t d = e->d;
	for (uint32_t k = 0; k < d; k++) {
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
