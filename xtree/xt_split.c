/*
 * xt_split.c — splitting an overflowing node's entries into two groups.
 *
 * Leaves: the R*-tree topological split (Beckmann et al. 1990). For every
 * axis and both sorts (by lower, by upper bound) the M-2m+2 distributions
 * are scored from prefix and suffix MBR sweeps — O(n·d) per sort instead of
 * re-unioning every group. The axis with the least margin sum wins; on it,
 * the distribution with the least overlap, then the least area.
 *
 * Directory nodes: the X-tree split (Berchtold et al. 1996). The
 * topological split first; if its overlap exceeds MAX_OVERLAP, the
 * overlap-minimal split along a dimension in every entry's split history;
 * if that one is not under MAX_OVERLAP with both halves at or above
 * MIN_FANOUT either, no split: the caller grows a supernode.
 *
 * Overlap ratio of groups A and B is vol(A∩B) / vol(A∪B), computed with
 * every dimension scaled by the extent of A∪B so 32 small factors do not
 * underflow; a degenerate union (volume 0) counts as no overlap.
 */
#include <math.h>
#include <stdlib.h>

#include "xt_internal.h"

/* Coordinates are never NaN (checked at the API): plain comparisons, which
 * inline, instead of libm's fmin/fmax calls. */
static inline double dmin(double a, double b)
{
	return a < b ? a : b;
}

static inline double dmax(double a, double b)
{
	return a > b ? a : b;
}

typedef struct sweep {
	uint32_t n, d;
	double *plo, *phi; /* prefix k (1..n): MBR of order[0..k) */
	double *slo, *shi; /* suffix k (0..n-1): MBR of order[k..n) */
} sweep;

static int sweep_init(sweep *s, uint32_t n, uint32_t d)
{
	size_t sz = (size_t)(n + 1) * d * sizeof(double);
	s->n = n;
	s->d = d;
	s->plo = malloc(sz);
	s->phi = malloc(sz);
	s->slo = malloc(sz);
	s->shi = malloc(sz);
	return s->plo && s->phi && s->slo && s->shi ? 0 : STRATA_ENOMEM;
}

static void sweep_free(sweep *s)
{
	free(s->plo);
	free(s->phi);
	free(s->slo);
	free(s->shi);
}

static void sweep_fill(sweep *s, const xt_ents *e, const uint32_t *order)
{
	uint32_t n = s->n, d = s->d;
	for (uint32_t k = 0; k < d; k++) {
		double lo = INFINITY, hi = -INFINITY;
		for (uint32_t j = 0; j < n; j++) {
			const uint32_t i = order[j];
			lo = dmin(lo, e->lo[(size_t)i * d + k]);
			hi = dmax(hi, e->hi[(size_t)i * d + k]);
			s->plo[(size_t)(j + 1) * d + k] = lo;
			s->phi[(size_t)(j + 1) * d + k] = hi;
		}
		lo = INFINITY, hi = -INFINITY;
		for (uint32_t j = n; j-- > 0;) {
			const uint32_t i = order[j];
			lo = dmin(lo, e->lo[(size_t)i * d + k]);
			hi = dmax(hi, e->hi[(size_t)i * d + k]);
			s->slo[(size_t)j * d + k] = lo;
			s->shi[(size_t)j * d + k] = hi;
		}
	}
}

static void sweep_box(const sweep *s, bool prefix, uint32_t k, xt_box *b)
{
	const double *lo = prefix ? s->plo : s->slo, *hi = prefix ? s->phi : s->shi;
	memcpy(b->lo, lo + (size_t)k * s->d, s->d * sizeof(double));
	memcpy(b->hi, hi + (size_t)k * s->d, s->d * sizeof(double));
}

/* Overlap ratio, scale-free (see the file comment). */
static double overlap_ratio(const xt_box *a, const xt_box *b, uint32_t d)
{
	double va = 1, vb = 1, vi = 1;
	for (uint32_t k = 0; k < d; k++) {
		double ul = dmin(a->lo[k], b->lo[k]), uh = dmax(a->hi[k], b->hi[k]);
		double u = uh - ul;
		if (u <= 0)
			continue;
		double il = dmax(a->lo[k], b->lo[k]), ih = dmin(a->hi[k], b->hi[k]);
		vi *= ih > il ? (ih - il) / u : 0.0;
		va *= (a->hi[k] - a->lo[k]) / u;
		vb *= (b->hi[k] - b->lo[k]) / u;
	}
	double un = va + vb - vi;
	return un > 0 ? vi / un : 0.0;
}

typedef struct sort_key {
	const xt_ents *e;
	uint32_t axis;
	bool by_hi;
} sort_key;

static int cmp_ent(const void *pa, const void *pb, void *ctx)
{
	const sort_key *sk = ctx;
	uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb, d = sk->e->d;
	const double *p = sk->by_hi ? sk->e->hi : sk->e->lo, *q = sk->by_hi ? sk->e->lo : sk->e->hi;
	double ka = p[(size_t)a * d + sk->axis], kb = p[(size_t)b * d + sk->axis];
	if (ka != kb)
		return ka < kb ? -1 : 1;
	ka = q[(size_t)a * d + sk->axis], kb = q[(size_t)b * d + sk->axis];
	if (ka != kb)
		return ka < kb ? -1 : 1;
	return a < b ? -1 : a > b;
}

typedef struct skey {
	double k1, k2;
	uint32_t i;
} skey;

static inline bool skey_less(const skey *a, const skey *b)
{
	if (a->k1 != b->k1)
		return a->k1 < b->k1;
	if (a->k2 != b->k2)
		return a->k2 < b->k2;
	return a->i < b->i;
}

/* Entries by (key, other bound, index) along axis: a strict total order,
 * so the result does not depend on the sort. A node that overflowed holds
 * a few dozen entries: an insertion sort of the keys copied out beats
 * qsort_r's callback per comparison; supernodes take qsort_r. */
static void sort_order(const xt_ents *e, uint32_t axis, bool by_hi, uint32_t *order)
{
	enum { SMALL = 64 };
	sort_key sk = {e, axis, by_hi};
	uint32_t n = e->n, d = e->d;
	if (n > SMALL) {
		for (uint32_t i = 0; i < n; i++)
			order[i] = i;
		qsort_r(order, n, sizeof *order, cmp_ent, &sk);
		return;
	}
	const double *p = by_hi ? e->hi : e->lo, *q = by_hi ? e->lo : e->hi;
	skey t[SMALL];
	for (uint32_t i = 0; i < n; i++) {
		skey x = {p[(size_t)i * d + axis], q[(size_t)i * d + axis], i};
		uint32_t j = i;
		for (; j > 0 && skey_less(&x, &t[j - 1]); j--)
			t[j] = t[j - 1];
		t[j] = x;
	}
	for (uint32_t i = 0; i < n; i++)
		order[i] = t[i].i;
}

/* Best distribution k in [lo_k, hi_k] of the swept order: least overlap
 * (as ratio if `ratio`, else volume), then least area sum. */
static uint32_t best_index(const sweep *s, uint32_t lo_k, uint32_t hi_k, bool ratio, double *ov_out,
			   double *area_out)
{
	uint32_t best = lo_k;
	double bo = INFINITY, ba = INFINITY;
	for (uint32_t k = lo_k; k <= hi_k; k++) {
		xt_box a, b;
		sweep_box(s, true, k, &a);
		sweep_box(s, false, k, &b);
		double ov = ratio ? overlap_ratio(&a, &b, s->d) : xt_overlap_vol(&a, &b, s->d);
		double ar = xt_volume(&a, s->d) + xt_volume(&b, s->d);
		if (ov < bo || (ov == bo && ar < ba)) {
			bo = ov;
			ba = ar;
			best = k;
		}
	}
	*ov_out = bo;
	*area_out = ba;
	return best;
}

static double margin_sum(const sweep *s, uint32_t m)
{
	double sum = 0;
	for (uint32_t k = m; k <= s->n - m; k++) {
		xt_box a, b;
		sweep_box(s, true, k, &a);
		sweep_box(s, false, k, &b);
		sum += xt_margin(&a, s->d) + xt_margin(&b, s->d);
	}
	return sum;
}

/* The R* topological split with groups of at least m entries; also the
 * overlap ratio of the result. */
static int topological(const xt_ents *e, uint32_t m, xt_split *out, double *ratio)
{
	uint32_t n = e->n, d = e->d;
	sweep s;
	uint32_t *tmp = malloc((size_t)n * sizeof *tmp);
	int rc = sweep_init(&s, n, d);
	if (rc || !tmp) {
		rc = STRATA_ENOMEM;
		goto err;
	}
	uint32_t axis = 0;
	double best = INFINITY;
	for (uint32_t a = 0; a < d; a++) {
		double sum = 0;
		for (int hi = 0; hi < 2; hi++) {
			sort_order(e, a, hi, tmp);
			sweep_fill(&s, e, tmp);
			sum += margin_sum(&s, m);
		}
		if (sum < best) {
			best = sum;
			axis = a;
		}
	}
	double bo = INFINITY, ba = INFINITY;
	for (int hi = 0; hi < 2; hi++) {
		double ov, ar;
		sort_order(e, axis, hi, tmp);
		sweep_fill(&s, e, tmp);
		uint32_t k = best_index(&s, m, n - m, false, &ov, &ar);
		if (ov < bo || (ov == bo && ar < ba)) {
			bo = ov, ba = ar;
			memcpy(out->order, tmp, (size_t)n * sizeof *tmp);
			out->k = k;
			xt_box a, b;
			sweep_box(&s, true, k, &a);
			sweep_box(&s, false, k, &b);
			*ratio = overlap_ratio(&a, &b, d);
		}
	}
	out->axis = axis;
	out->ok = true;
err:
	sweep_free(&s);
	free(tmp);
	return rc;
}

static uint32_t min_group(const xt_meta *m, uint32_t n, uint32_t pct, bool leaf)
{
	uint32_t g = (n - 1) * pct / 100, floor_ = xt_min_count(m, leaf);
	g = g > floor_ ? g : floor_;
	return g ? g : 1;
}

int xt_split_leaf(const xt_meta *m, const xt_ents *e, xt_split *s)
{
	double ratio;
	return topological(e, min_group(m, e->n, m->o.min_fill_pct, true), s, &ratio);
}

/* The overlap-minimal split along one of the dimensions every entry was
 * split on before. */
static int overlap_minimal(const xt_meta *m, const xt_ents *e, xt_split *out, double *ratio)
{
	uint32_t common = ~0u, n = e->n;
	for (uint32_t i = 0; i < n; i++)
		common &= e->hist[i];
	*ratio = INFINITY;
	if (!common)
		return 0;
	uint32_t f = min_group(m, n, m->o.min_fanout_pct, false);
	if (2 * f > n)
		return 0;
	sweep s;
	uint32_t *tmp = malloc((size_t)n * sizeof *tmp);
	int rc = sweep_init(&s, n, e->d);
	if (rc || !tmp) {
		rc = STRATA_ENOMEM;
		goto err;
	}
	for (uint32_t a = 0; a < e->d; a++) {
		if (!(common >> a & 1))
			continue;
		double ov, ar;
		sort_order(e, a, false, tmp);
		sweep_fill(&s, e, tmp);
		uint32_t k = best_index(&s, f, n - f, true, &ov, &ar);
		if (ov < *ratio) {
			*ratio = ov;
			memcpy(out->order, tmp, (size_t)n * sizeof *tmp);
			out->k = k;
			out->axis = a;
		}
	}
err:
	sweep_free(&s);
	free(tmp);
	return rc;
}

int xt_split_dir(const xt_meta *m, const xt_ents *e, xt_split *s)
{
	double ratio, max = m->o.max_overlap_pct / 100.0;
	int rc = topological(e, min_group(m, e->n, m->o.min_fill_pct, false), s, &ratio);
	if (rc || ratio <= max)
		return rc;
	if ((rc = overlap_minimal(m, e, s, &ratio)))
		return rc;
	s->ok = ratio <= max;
	return 0;
}
