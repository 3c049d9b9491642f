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
	double *heap;      /* the four arrays when they did not fit in `small` */
	double small[1024]; /* 8 KiB: a 1 KiB 2-D or 4 KiB 3-D node needs no malloc */
} sweep;

static int sweep_init(sweep *s, uint32_t n, uint32_t d)
{
	size_t per = (size_t)(n + 1) * d;
	s->n = n;
	s->d = d;
	s->heap = 4 * per <= sizeof s->small / sizeof s->small[0] ? NULL
								   : malloc(4 * per * sizeof(double));
	double *m = s->heap ? s->heap : s->small;
	s->plo = m, s->phi = m + per, s->slo = m + 2 * per, s->shi = m + 3 * per;
	return s->heap || 4 * per <= sizeof s->small / sizeof s->small[0] ? 0 : STRATA_ENOMEM;
}

static void sweep_free(sweep *s)
{
	free(s->heap);
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

/* Prefix (order[0..k)) and suffix (order[k..n)) boxes of distribution k:
 * pointers into the sweep, no copies. */
static inline const double *pre_lo(const sweep *s, uint32_t k) { return s->plo + (size_t)k * s->d; }
static inline const double *pre_hi(const sweep *s, uint32_t k) { return s->phi + (size_t)k * s->d; }
static inline const double *suf_lo(const sweep *s, uint32_t k) { return s->slo + (size_t)k * s->d; }
static inline const double *suf_hi(const sweep *s, uint32_t k) { return s->shi + (size_t)k * s->d; }

/* xt_volume, xt_margin and xt_overlap_vol (xt_geom.c) over plain arrays,
 * the same operations in the same order (so the same doubles). */
static inline double vol(const double *lo, const double *hi, uint32_t d)
{
	double v = 1.0;
	for (uint32_t k = 0; k < d; k++)
		v *= hi[k] - lo[k];
	return v;
}

static inline double margin(const double *lo, const double *hi, uint32_t d)
{
	double m = 0.0;
	for (uint32_t k = 0; k < d; k++)
		m += hi[k] - lo[k];
	return m;
}

static inline double overlap_vol(const double *alo, const double *ahi, const double *blo,
				 const double *bhi, uint32_t d)
{
	double v = 1.0;
	for (uint32_t k = 0; k < d; k++) {
		double lo = alo[k] > blo[k] ? alo[k] : blo[k];
		double hi = ahi[k] < bhi[k] ? ahi[k] : bhi[k];
		if (hi < lo)
			return 0.0;
		v *= hi - lo;
	}
	return v;
}

/* Overlap ratio, scale-free (see the file comment). */
static double overlap_ratio(const double *alo, const double *ahi, const double *blo,
			    const double *bhi, uint32_t d)
{
	double va = 1, vb = 1, vi = 1;
	for (uint32_t k = 0; k < d; k++) {
		double ul = dmin(alo[k], blo[k]), uh = dmax(ahi[k], bhi[k]);
		double u = uh - ul;
		if (u <= 0)
			continue;
		double il = dmax(alo[k], blo[k]), ih = dmin(ahi[k], bhi[k]);
		vi *= ih > il ? (ih - il) / u : 0.0;
		va *= (ahi[k] - alo[k]) / u;
		vb *= (bhi[k] - blo[k]) / u;
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
 * so the result does not depend on the sort or on the order it starts
 * from. A node that overflowed holds a few dozen entries: an insertion
 * sort of the keys copied out beats qsort_r's callback per comparison;
 * supernodes take qsort_r. `hint` (or NULL): an order to start from; the
 * order by the lower bounds is nearly the order by the upper ones when
 * boxes are small against the node, and insertion sort is then ~linear. */
static void sort_order(const xt_ents *e, uint32_t axis, bool by_hi, const uint32_t *hint,
		       uint32_t *order)
{
	enum { SMALL = 128 };
	sort_key sk = {e, axis, by_hi};
	uint32_t n = e->n, d = e->d;
	if (n > SMALL) {
		for (uint32_t i = 0; i < n; i++)
			order[i] = hint ? hint[i] : i;
		qsort_r(order, n, sizeof *order, cmp_ent, &sk);
		return;
	}
	const double *p = by_hi ? e->hi : e->lo, *q = by_hi ? e->lo : e->hi;
	skey t[SMALL];
	for (uint32_t j = 0; j < n; j++) {
		uint32_t i = hint ? hint[j] : j;
		skey x = {p[(size_t)i * d + axis], q[(size_t)i * d + axis], i};
		uint32_t at = j;
		for (; at > 0 && skey_less(&x, &t[at - 1]); at--)
			t[at] = t[at - 1];
		t[at] = x;
	}
	for (uint32_t i = 0; i < n; i++)
		order[i] = t[i].i;
}

/* Best distribution k in [lo_k, hi_k] of the swept order: least overlap
 * (as ratio if `ratio`, else volume), then least area sum. */
static uint32_t best_index(const sweep *s, uint32_t lo_k, uint32_t hi_k, bool ratio, double *ov_out,
			   double *area_out)
{
	uint32_t best = lo_k, d = s->d;
	double bo = INFINITY, ba = INFINITY;
	for (uint32_t k = lo_k; k <= hi_k; k++) {
		const double *al = pre_lo(s, k), *ah = pre_hi(s, k), *bl = suf_lo(s, k), *bh = suf_hi(s, k);
		double ov = ratio ? overlap_ratio(al, ah, bl, bh, d) : overlap_vol(al, ah, bl, bh, d);
		double ar = vol(al, ah, d) + vol(bl, bh, d);
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
	for (uint32_t k = m; k <= s->n - m; k++)
		sum += margin(pre_lo(s, k), pre_hi(s, k), s->d) + margin(suf_lo(s, k), suf_hi(s, k), s->d);
	return sum;
}

/* The R* topological split with groups of at least m entries; also the
 * overlap ratio of the result. */
static int topological(const xt_ents *e, uint32_t m, xt_split *out, double *ratio)
{
	enum { SMALL = 1024 };
	uint32_t n = e->n, d = e->d;
	sweep s;
	/* Every axis's two sort orders are kept: the chosen axis's are needed
	 * again, and sorting was most of a split's instructions. */
	size_t no = (size_t)2 * d * n;
	uint32_t ostack[SMALL], *ord = no <= SMALL ? ostack : malloc(no * sizeof *ord);
	int rc = sweep_init(&s, n, d);
	if (rc || !ord) {
		rc = STRATA_ENOMEM;
		goto err;
	}
	uint32_t axis = 0;
	double best = INFINITY;
	for (uint32_t a = 0; a < d; a++) {
		double sum = 0;
		for (int hi = 0; hi < 2; hi++) {
			uint32_t *o = ord + (size_t)(2 * a + (uint32_t)hi) * n;
			sort_order(e, a, hi, hi ? o - n : NULL, o);
			sweep_fill(&s, e, o);
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
		const uint32_t *o = ord + (size_t)(2 * axis + (uint32_t)hi) * n;
		sweep_fill(&s, e, o);
		uint32_t k = best_index(&s, m, n - m, false, &ov, &ar);
		if (ov < bo || (ov == bo && ar < ba)) {
			bo = ov, ba = ar;
			memcpy(out->order, o, (size_t)n * sizeof *o);
			out->k = k;
			*ratio = overlap_ratio(pre_lo(&s, k), pre_hi(&s, k), suf_lo(&s, k), suf_hi(&s, k), d);
		}
	}
	out->axis = axis;
	out->ok = true;
err:
	sweep_free(&s);
	if (ord != ostack)
		free(ord);
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
		sort_order(e, a, false, NULL, tmp);
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
