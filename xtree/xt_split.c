/*
 * xt_split.c — splitting an overflowing node's entries into two groups.
 *
 * Leaves: the R*-tree topological split (Beckmann et al. 1990). For every
 * axis and both sorts (by lower, by upper bound) the M-2m+2 distributions
 * are scored from prefix and suffix MBR sweeps — O(n·d) per sort instead of
 * re-unioning every group. The axis with the least margin sum wins; on it,
 * the distribution with the least overlap, then the least area. The
 * margin sweeps keep only the running MBR (and the suffixes' margins); the
 * chosen axis's two orders are swept once more, the suffix sweep keeping
 * its MBRs, the prefix sweep scoring overlap and area against them. A
 * prefix sweep stops at entry n-m and a suffix sweep at entry m: no
 * distribution needs more.
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
 *
 * Every score is a finite number: coordinates are any finite doubles, and
 * where the entries are so far apart that a volume, an area sum or a
 * margin sum could overflow (2-D boxes 1e200 wide have area inf, and
 * inf * 0 or inf - inf is NaN, which fails every comparison and once left
 * a split with an empty group), the scores are taken on a copy of the
 * entries scaled by a power of two into (-1, 1) (scores_finite,
 * scale_into). That scaling is exact but for underflow, so it ranks the
 * distributions, and the overlap ratio the supernode decision reads, as
 * unbounded doubles would; the groups are the same indexes either way.
 * Entries whose scores fit are scored as they are, bit for bit as before.
 */
#include <float.h>
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

/* The ALWAYS_INLINE helpers take d as an argument and are called with d
 * constant in 2-D and 3-D (the common cases), so their loops unroll. */
#define ALWAYS_INLINE inline __attribute__((always_inline))

/* The running MBR of a sweep: box_add extends it by entry i with the
 * running bound as dmin/dmax's first operand, so every sweep makes the
 * same doubles. */
static ALWAYS_INLINE void box_empty(double *lo, double *hi, uint32_t d)
{
	for (uint32_t k = 0; k < d; k++)
		lo[k] = INFINITY, hi[k] = -INFINITY;
}

static ALWAYS_INLINE void box_add(double *lo, double *hi, const xt_ents *e, uint32_t i,
				  uint32_t d)
{
	const double *el = e->lo + (size_t)i * d, *eh = e->hi + (size_t)i * d;
	for (uint32_t k = 0; k < d; k++) {
		lo[k] = dmin(lo[k], el[k]);
		hi[k] = dmax(hi[k], eh[k]);
	}
}

/* xt_volume, xt_margin and xt_overlap_vol (xt_geom.c) over plain arrays,
 * the same operations in the same order (so the same doubles). */
static ALWAYS_INLINE double vol(const double *lo, const double *hi, uint32_t d)
{
	double v = 1.0;
	for (uint32_t k = 0; k < d; k++)
		v *= hi[k] - lo[k];
	return v;
}

static ALWAYS_INLINE double margin(const double *lo, const double *hi, uint32_t d)
{
	double m = 0.0;
	for (uint32_t k = 0; k < d; k++)
		m += hi[k] - lo[k];
	return m;
}

static ALWAYS_INLINE double overlap_vol(const double *alo, const double *ahi, const double *blo,
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

/* Distribution k of an order puts order[0..k) in group A, order[k..n) in
 * B. Only k in [lo_k, hi_k] (1 <= lo_k <= hi_k < n) is ever scored, so a
 * suffix sweep stops at entry lo_k and a prefix sweep at entry hi_k - 1. */

/* Sum over distributions k in [m, n-m] of the margins of both groups,
 * added in k order as margin(A) + margin(B). suf: n-2m+1 doubles of
 * scratch for B's margins, the suffix sweep being the first. */
static ALWAYS_INLINE double margin_sum_d(const xt_ents *e, const uint32_t *o, uint32_t m,
					 double *suf, uint32_t d)
{
	uint32_t n = e->n, j = n;
	double lo[XT_MAXD], hi[XT_MAXD], sum = 0;
	box_empty(lo, hi, d);
	while (j > n - m + 1)
		box_add(lo, hi, e, o[--j], d);
	while (j > m) {
		box_add(lo, hi, e, o[--j], d);
		suf[j - m] = margin(lo, hi, d);
	}
	box_empty(lo, hi, d);
	for (j = 0; j + 1 < m; j++)
		box_add(lo, hi, e, o[j], d);
	for (; j < n - m; j++) {
		box_add(lo, hi, e, o[j], d);
		sum += margin(lo, hi, d) + suf[j + 1 - m];
	}
	return sum;
}

static double margin_sum(const xt_ents *e, const uint32_t *o, uint32_t m, double *suf)
{
	if (e->d == 2)
		return margin_sum_d(e, o, m, suf, 2);
	if (e->d == 3)
		return margin_sum_d(e, o, m, suf, 3);
	return margin_sum_d(e, o, m, suf, e->d);
}

/* Group B's box (order[k..n)) of every distribution k in [lo_k, hi_k] of
 * one order, at index k - lo_k: the suffix sweep's output, which the
 * prefix sweep scores against its running box (group A). */
typedef struct sweep {
	uint32_t lo_k, hi_k;
	double *blo, *bhi;
	double *heap;       /* blo and bhi when they did not fit in `small` */
	double small[1024]; /* 8 KiB: a default-sized node's topological split needs no malloc */
} sweep;

static int sweep_init(sweep *s, uint32_t d, uint32_t lo_k, uint32_t hi_k)
{
	size_t per = (size_t)(hi_k - lo_k + 1) * d;
	bool fits = 2 * per <= sizeof s->small / sizeof s->small[0];
	s->lo_k = lo_k;
	s->hi_k = hi_k;
	s->heap = fits ? NULL : malloc(2 * per * sizeof(double));
	s->blo = s->heap ? s->heap : s->small;
	s->bhi = s->blo + per;
	return fits || s->heap ? 0 : STRATA_ENOMEM;
}

static void sweep_free(sweep *s)
{
	free(s->heap);
}

static ALWAYS_INLINE void suffix_boxes_d(sweep *s, const xt_ents *e, const uint32_t *o, uint32_t d)
{
	uint32_t j = e->n, lo_k = s->lo_k;
	double lo[XT_MAXD], hi[XT_MAXD];
	box_empty(lo, hi, d);
	while (j > s->hi_k + 1)
		box_add(lo, hi, e, o[--j], d);
	while (j > lo_k) {
		box_add(lo, hi, e, o[--j], d);
		for (uint32_t k = 0; k < d; k++) {
			s->blo[(size_t)(j - lo_k) * d + k] = lo[k];
			s->bhi[(size_t)(j - lo_k) * d + k] = hi[k];
		}
	}
}

/* Best distribution of order o: least overlap (as ratio if `ratio`, else
 * volume), then least area sum; the first of equals. */
static ALWAYS_INLINE uint32_t best_split_d(sweep *s, const xt_ents *e, const uint32_t *o,
					  bool ratio, double *ov_out, double *area_out, uint32_t d)
{
	uint32_t lo_k = s->lo_k, best = lo_k, j;
	double lo[XT_MAXD], hi[XT_MAXD], bo = INFINITY, ba = INFINITY;
	suffix_boxes_d(s, e, o, d);
	box_empty(lo, hi, d);
	for (j = 0; j + 1 < lo_k; j++)
		box_add(lo, hi, e, o[j], d);
	for (; j < s->hi_k; j++) {
		box_add(lo, hi, e, o[j], d);
		const double *bl = s->blo + (size_t)(j + 1 - lo_k) * d;
		const double *bh = s->bhi + (size_t)(j + 1 - lo_k) * d;
		double ov = ratio ? overlap_ratio(lo, hi, bl, bh, d)
				  : overlap_vol(lo, hi, bl, bh, d);
		double ar = vol(lo, hi, d) + vol(bl, bh, d);
		if (ov < bo || (ov == bo && ar < ba)) {
			bo = ov;
			ba = ar;
			best = j + 1;
		}
	}
	*ov_out = bo;
	*area_out = ba;
	return best;
}

static uint32_t best_split(sweep *s, const xt_ents *e, const uint32_t *o, bool ratio, double *ov,
			   double *ar)
{
	if (e->d == 2)
		return best_split_d(s, e, o, ratio, ov, ar, 2);
	if (e->d == 3)
		return best_split_d(s, e, o, ratio, ov, ar, 3);
	return best_split_d(s, e, o, ratio, ov, ar, e->d);
}

/* The overlap ratio of distribution k of order o, swept last into s. */
static double split_ratio(const sweep *s, const xt_ents *e, const uint32_t *o, uint32_t k)
{
	uint32_t d = e->d;
	size_t x = (size_t)(k - s->lo_k) * d;
	double lo[XT_MAXD], hi[XT_MAXD];
	box_empty(lo, hi, d);
	for (uint32_t j = 0; j < k; j++)
		box_add(lo, hi, e, o[j], d);
	return overlap_ratio(lo, hi, s->blo + x, s->bhi + x, d);
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

/* An entry's sort key and index: 16 bytes to move. The other bound
 * breaks ties only, so it is read from the entries then. */
typedef struct skey {
	double k;
	uint32_t i;
} skey;

/* a before b, their keys being equal: by the other bound, then index. */
static bool tie_less(const skey *a, const skey *b, const double *q, uint32_t d, uint32_t axis)
{
	double qa = q[(size_t)a->i * d + axis], qb = q[(size_t)b->i * d + axis];
	if (qa != qb)
		return qa < qb;
	return a->i < b->i;
}

/* Insertion sort of entries (hint ? hint[j] : j) into t[1..n]; t[0] is a
 * sentinel below every key (coordinates are finite), so the shifting loop
 * needs no bound check. Equal keys, rare, leave it for the full order. */
static ALWAYS_INLINE void insert_all(skey *t, uint32_t n, const double *p, const double *q,
				     uint32_t d, uint32_t axis, const uint32_t *hint)
{
	t[0].k = -INFINITY;
	for (uint32_t j = 1; j <= n; j++) {
		uint32_t i = hint ? hint[j - 1] : j - 1;
		skey x = {p[(size_t)i * d + axis], i}, *at = t + j;
		for (; x.k < at[-1].k; at--)
			at[0] = at[-1];
		for (; x.k == at[-1].k && tie_less(&x, &at[-1], q, d, axis); at--)
			at[0] = at[-1];
		*at = x;
	}
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
	skey t[SMALL + 1];
	if (hint)
		insert_all(t, n, p, q, d, axis, hint);
	else
		insert_all(t, n, p, q, d, axis, NULL);
	for (uint32_t j = 0; j < n; j++)
		order[j] = t[j + 1].i;
}

/* Whether every score of every split of n entries whose union is [lo,
 * hi] is a finite number. The union bounds every group's and every
 * intersection's extents, volume and margin (rounding is monotone, and an
 * infinity, once there, stays or turns NaN), so where twice its volume
 * and 8n times its margin (the margin sums: two orders of up to n
 * distributions, two groups each) are finite, no product, sum or
 * difference a sweep makes overflows, and none is NaN (that takes
 * inf * 0 or inf - inf). */
static bool scores_finite(const double *lo, const double *hi, uint32_t d, uint32_t n)
{
	double v = 1.0, mg = 0.0;
	for (uint32_t k = 0; k < d; k++) {
		double x = hi[k] - lo[k];
		v *= x;
		mg += x;
	}
	return 2 * v <= DBL_MAX && mg * 8.0 * n <= DBL_MAX;
}

/* *tmp: e's boxes (union [lo, hi]) times the power of two that puts
 * every coordinate in (-1, 1), so every extent is at most 2, a volume at
 * most 2^32 and every score finite. Multiplying by a power of two is
 * exact but for underflow and keeps every lo <= hi. */
static int scale_into(const xt_ents *e, const double *lo, const double *hi, xt_ents *tmp)
{
	double f = xt_unit_scale(lo, hi, e->d);
	int rc = xt_ents_reserve(tmp, e->d, e->n);
	if (rc)
		return rc;
	size_t nd = (size_t)e->n * e->d;
	tmp->n = e->n;
	memcpy(tmp->ids, e->ids, e->n * sizeof *e->ids);
	memcpy(tmp->hist, e->hist, e->n * sizeof *e->hist);
	for (size_t i = 0; i < nd; i++) {
		tmp->lo[i] = e->lo[i] * f;
		tmp->hi[i] = e->hi[i] * f;
	}
	return 0;
}

/* The R* topological split with groups of at least m entries (2m <= n);
 * also the overlap ratio of the result if `ratio` is not NULL. The
 * entries are sorted as they are; where their scores could overflow
 * (scores_finite), the scores are taken on *tmp, a scaled copy
 * (scale_into, tmp->n set; the caller frees it), and the orders sorted on
 * e serve it as well: any order of the entries is a valid one. */
static int topological(const xt_ents *e, uint32_t m, xt_split *out, double *ratio, xt_ents *tmp)
{
	enum { SMALL = 1024 };
	uint32_t n = e->n, d = e->d;
	sweep s;
	/* Every axis's two sort orders are kept: the chosen axis's are needed
	 * again, and sorting was most of a split's instructions. */
	size_t no = (size_t)2 * d * n;
	uint32_t ostack[SMALL], *ord = no <= SMALL ? ostack : malloc(no * sizeof *ord);
	int rc = sweep_init(&s, d, m, n - m);
	if (rc || !ord) {
		rc = STRATA_ENOMEM;
		goto err;
	}
	uint32_t axis = 0;
	double best = INFINITY, ulo[XT_MAXD], uhi[XT_MAXD];
	for (uint32_t a = 0; a < d; a++) {
		for (int hi = 0; hi < 2; hi++) { /* one call: sort_order inlines */
			uint32_t *o = ord + (size_t)(2 * a + (uint32_t)hi) * n;
			sort_order(e, a, hi, hi ? o - n : NULL, o);
		}
		/* the union: the first lower bound, the last upper one */
		ulo[a] = e->lo[(size_t)ord[(size_t)2 * a * n] * d + a];
		uhi[a] = e->hi[(size_t)ord[(size_t)(2 * a + 2) * n - 1] * d + a];
	}
	if (!scores_finite(ulo, uhi, d, n)) {
		if ((rc = scale_into(e, ulo, uhi, tmp)))
			goto err;
		e = tmp;
	}
	for (uint32_t a = 0; a < d; a++) {
		double sum = 0;
		for (int hi = 0; hi < 2; hi++) {
			uint32_t *o = ord + (size_t)(2 * a + (uint32_t)hi) * n;
			sum += margin_sum(e, o, m, s.blo); /* the sweep is free till below */
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
		uint32_t k = best_split(&s, e, o, false, &ov, &ar);
		/* the first order always sets out (scores are finite: it would anyway) */
		if (!hi || ov < bo || (ov == bo && ar < ba)) {
			bo = ov, ba = ar;
			memcpy(out->order, o, (size_t)n * sizeof *o);
			out->k = k;
			if (ratio)
				*ratio = split_ratio(&s, e, o, k);
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
	xt_ents tmp = {0};
	int rc = topological(e, min_group(m, e->n, m->o.min_fill_pct, true), s, NULL, &tmp);
	xt_ents_free(&tmp);
	return rc;
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
	int rc = sweep_init(&s, e->d, f, n - f);
	if (rc || !tmp) {
		rc = STRATA_ENOMEM;
		goto err;
	}
	for (uint32_t a = 0; a < e->d; a++) {
		if (!(common >> a & 1))
			continue;
		double ov, ar;
		sort_order(e, a, false, NULL, tmp);
		uint32_t k = best_split(&s, e, tmp, true, &ov, &ar);
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
	xt_ents tmp = {0};
	int rc = topological(e, min_group(m, e->n, m->o.min_fill_pct, false), s, &ratio, &tmp);
	if (rc || ratio <= max)
		goto out;
	if ((rc = overlap_minimal(m, tmp.n ? &tmp : e, s, &ratio)))
		goto out;
	s->ok = ratio <= max;
out:
	xt_ents_free(&tmp);
	return rc;
}
