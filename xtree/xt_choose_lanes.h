/*
 * xt_choose_lanes.h — ChooseSubtree's vector kernels, written once for
 * any lane count and included by xt_choose.c once per width: two doubles
 * a step (SSE2, the x86-64 baseline) and four (AVX2, chosen at run time).
 *
 * Every kernel does the same IEEE operations per entry in the same order
 * at either width, so both give the same doubles and the same choice (the
 * tests build the same tree on both). Only how many entries a step takes
 * differs, and with it when overlap_growth may stop early: it stops once
 * its sum exceeds the bound, which the caller reads as "loses" whenever it
 * stops, so where it stops does not change the winner.
 *
 * The includer defines, for a width of KL lanes:
 *   KV            the vector type
 *   KN(name)      the kernel's name for this width
 *   KATTR         the attributes of every kernel (always_inline, target)
 *   k_load(p, t)  KL doubles from p; t > 0: only the first t, no read past
 *   k_splat(x), k_min(a, b), k_max(a, b)  minpd/maxpd semantics
 *   k_eq_bits(a, b)  bit i set where lane i of a equals that of b
 */

/* The overlap of [alo, ahi] and [blo, bhi] along one dimension, 0 when
 * they are apart: the one term both the overlap growth and its lower
 * bound multiply, in this operand order, so they get the same doubles. */
static inline KATTR KV KN(overlap_1d)(KV alo, KV ahi, KV blo, KV bhi)
{
	return k_max(k_min(ahi, bhi) - k_max(alo, blo), k_splat(0));
}

/* Areas of entries [at, at + KL) (tail > 0: only `tail` of them), and
 * their areas once enlarged by [lo, hi], dimension by dimension. */
static inline KATTR void KN(area_lane)(const xt_view *v, uint32_t d, uint32_t at, uint32_t tail,
				       const double *lo, const double *hi, KV *area, KV *grown)
{
	uint32_t cap = v->h->cap;
	KV a = k_splat(1), g = k_splat(1);
	for (uint32_t k = 0; k < d; k++) {
		KV l = k_load(v->lo + (size_t)k * cap + at, tail);
		KV h = k_load(v->hi + (size_t)k * cap + at, tail);
		a *= h - l;
		g *= k_max(h, k_splat(hi[k])) - k_min(l, k_splat(lo[k]));
	}
	*area = a;
	*grown = g;
}

/* area_lane over all n entries of v into area[], enl[] (grown - area). */
static inline KATTR void KN(areas_d)(const xt_view *v, uint32_t d, const double *lo,
				     const double *hi, double *area, double *enl)
{
	uint32_t n = v->h->count, j = 0;
	for (; j + KL <= n; j += KL) {
		KV a, g;
		KN(area_lane)(v, d, j, 0, lo, hi, &a, &g);
		KV e = g - a;
		memcpy(area + j, &a, sizeof a);
		memcpy(enl + j, &e, sizeof e);
	}
	if (j < n) {
		KV a, g;
		KN(area_lane)(v, d, j, n - j, lo, hi, &a, &g);
		KV e = g - a;
		for (uint32_t t = 0; j + t < n; t++)
			area[j + t] = a[t], enl[j + t] = e[t];
	}
}

/* How much the overlap of entry i with every other entry grows when i is
 * enlarged by [lo, hi]: per entry j, overlap(i enlarged, j) - overlap(i, j),
 * the product over the dimensions in order. The growths are summed in
 * entry order, i's own skipped. Every term is >= 0, so the partial sums
 * only grow: once one exceeds `bound` the entry cannot beat or tie the
 * best so far, and the sum stops there (tested after every step: at 1M
 * entries a losing candidate stops after a third of its entries),
 * returning what it has. */
static inline KATTR double KN(overlap_growth_d)(const xt_view *v, uint32_t d, uint32_t i,
						const double *lo, const double *hi, double bound)
{
	uint32_t cap = v->h->cap, n = v->h->count;
	KV il[XT_MAXD], ih[XT_MAXD], el[XT_MAXD], eh[XT_MAXD];
	for (uint32_t k = 0; k < d; k++) {
		double a = v->lo[(size_t)k * cap + i], b = v->hi[(size_t)k * cap + i];
		il[k] = k_splat(a), ih[k] = k_splat(b);
		el[k] = k_splat(a < lo[k] ? a : lo[k]), eh[k] = k_splat(b > hi[k] ? b : hi[k]);
	}
	double sum = 0;
	for (uint32_t j = 0; j < n; j += KL) {
		uint32_t tail = n - j < KL ? n - j : 0, m = tail ? tail : KL;
		KV before = k_splat(1.0), after = k_splat(1.0);
		for (uint32_t k = 0; k < d; k++) {
			KV l = k_load(v->lo + (size_t)k * cap + j, tail);
			KV h = k_load(v->hi + (size_t)k * cap + j, tail);
			after *= KN(overlap_1d)(el[k], eh[k], l, h);
			before *= KN(overlap_1d)(il[k], ih[k], l, h);
		}
		KV g = after - before;
		for (uint32_t t = 0; t < m; t++)
			if (j + t != i)
				sum += g[t];
		if (sum > bound)
			break;
	}
	return sum;
}

/* A lower bound of every entry's overlap growth: out[i] is the term entry
 * f adds to entry i's sum (out[f] = 0), the same doubles overlap_growth_d
 * adds for that pair. Terms are >= 0 and the sums are taken in order with
 * round-to-nearest, so entry i's computed growth is at least out[i]. */
static inline KATTR void KN(growth_lb_d)(const xt_view *v, uint32_t d, uint32_t f,
					 const double *lo, const double *hi, double *out)
{
	uint32_t cap = v->h->cap, n = v->h->count;
	KV fl[XT_MAXD], fh[XT_MAXD];
	for (uint32_t k = 0; k < d; k++)
		fl[k] = k_splat(v->lo[(size_t)k * cap + f]), fh[k] = k_splat(v->hi[(size_t)k * cap + f]);
	for (uint32_t j = 0; j < n; j += KL) {
		uint32_t tail = n - j < KL ? n - j : 0, m = tail ? tail : KL;
		KV before = k_splat(1.0), after = k_splat(1.0);
		for (uint32_t k = 0; k < d; k++) {
			KV il = k_load(v->lo + (size_t)k * cap + j, tail);
			KV ih = k_load(v->hi + (size_t)k * cap + j, tail);
			KV el = k_min(il, k_splat(lo[k])), eh = k_max(ih, k_splat(hi[k]));
			after *= KN(overlap_1d)(el, eh, fl[k], fh[k]);
			before *= KN(overlap_1d)(il, ih, fl[k], fh[k]);
		}
		KV g = after - before;
		for (uint32_t t = 0; t < m; t++)
			out[j + t] = g[t];
	}
	out[f] = 0;
}

/* The first entry of least (enl, area) among n (1..64), in pair_before's
 * order: the least enlargement by a vector minimum, then a mask of the
 * entries that have it, usually one; else the least area among them (the
 * first of equals). The minimum passes NaNs by (k_min(x, m) is m where x
 * is NaN), so it is the least number at either width; none (every
 * enlargement NaN, no bit set) is least_scan's case. The scalar scan it
 * replaces mispredicted its branches. */
static inline KATTR uint32_t KN(least_pair)(const double *enl, const double *area, uint32_t n)
{
	KV m = k_splat(INFINITY);
	uint32_t j = 0;
	for (; j + KL <= n; j += KL)
		m = k_min(k_load(enl + j, 0), m);
	double me = m[0];
	for (uint32_t t = 1; t < KL; t++)
		me = m[t] < me ? m[t] : me;
	for (; j < n; j++)
		me = enl[j] < me ? enl[j] : me;
	uint64_t bits = 0;
	KV ms = k_splat(me);
	for (j = 0; j + KL <= n; j += KL)
		bits |= (uint64_t)k_eq_bits(k_load(enl + j, 0), ms) << j;
	for (; j < n; j++)
		bits |= (uint64_t)(enl[j] == me) << j;
	if (!bits)
		return least_scan(enl, area, n);
	uint32_t best = (uint32_t)__builtin_ctzll(bits);
	for (bits &= bits - 1; bits; bits &= bits - 1) {
		uint32_t i = (uint32_t)__builtin_ctzll(bits);
		if (area[i] < area[best])
			best = i;
	}
	return best;
}

/* The kernels with d constant in 2-D and 3-D (the per-dimension splats
 * leave the lane loop, which unrolls). KFATTR: this width's target, not
 * inlined. */
static KFATTR void KN(areas)(const xt_view *v, uint32_t d, const double *lo, const double *hi,
			     double *area, double *enl)
{
	if (d == 2)
		KN(areas_d)(v, 2, lo, hi, area, enl);
	else if (d == 3)
		KN(areas_d)(v, 3, lo, hi, area, enl);
	else
		KN(areas_d)(v, d, lo, hi, area, enl);
}

static KFATTR double KN(overlap_growth)(const xt_view *v, uint32_t d, uint32_t i,
					const double *lo, const double *hi, double bound)
{
	if (d == 2)
		return KN(overlap_growth_d)(v, 2, i, lo, hi, bound);
	if (d == 3)
		return KN(overlap_growth_d)(v, 3, i, lo, hi, bound);
	return KN(overlap_growth_d)(v, d, i, lo, hi, bound);
}

static KFATTR void KN(growth_lb)(const xt_view *v, uint32_t d, uint32_t f, const double *lo,
				 const double *hi, double *out)
{
	if (d == 2)
		KN(growth_lb_d)(v, 2, f, lo, hi, out);
	else if (d == 3)
		KN(growth_lb_d)(v, 3, f, lo, hi, out);
	else
		KN(growth_lb_d)(v, d, f, lo, hi, out);
}

/* Among the candidates (every entry when n <= p, else the p of least
 * (enlargement, area)), the one of least overlap growth; ties go to the
 * first in cand_before order. *best holds the first candidate on entry.
 * Its growth is computed first: 0 (55 % of the calls at 1M entries)
 * cannot be beaten. Otherwise the others need not be visited in
 * cand_before order (which took a sort or a pass per step): each one is
 * skipped when its lower bound (growth_lb) already exceeds the least so
 * far, else its growth is summed with that bound, and a tie is decided by
 * cand_before, which gives the same entry as the ordered visit. With a
 * growth of 0 found, only candidates before it in that order still can
 * win (with 0). */
static KFATTR int KN(least_overlap)(const xt_view *v, uint32_t d, uint32_t p, const cands *c,
				    const double *lo, const double *hi, uint32_t *best)
{
	enum { SMALL = 64 };
	uint32_t n = c->n, first = *best, nt = 0;
	double least = KN(overlap_growth)(v, d, first, lo, hi, INFINITY);
	if (!(least > 0))
		return 0;
	double lstack[SMALL], *lb = n <= SMALL ? lstack : malloc((size_t)n * sizeof *lb);
	uint32_t tstack[SMALL], *top = n <= p || p <= SMALL ? tstack : malloc((size_t)p * sizeof *top);
	int rc = lb && top ? 0 : STRATA_ENOMEM;
	if (rc)
		goto err;
	KN(growth_lb)(v, d, first, lo, hi, lb);
	if (n > p) /* the p candidates of least (enlargement, area) */
		for (uint32_t i = 0; i < n; i++)
			top_insert(c, top, &nt, p, i);
	for (uint32_t j = 0, m = n > p ? nt : n; j < m; j++) {
		uint32_t i = n > p ? top[j] : j;
		if (i == first || lb[i] > least || (!(least > 0) && !cand_before(c, i, *best)))
			continue;
		double inc = KN(overlap_growth)(v, d, i, lo, hi, least);
		if (inc < least || (inc == least && cand_before(c, i, *best)))
			least = inc, *best = i;
	}
err:
	if (lb != lstack)
		free(lb);
	if (top != tstack)
		free(top);
	return rc;
}

/* R* ChooseSubtree at this width (xt_choose). */
static KFATTR int KN(choose)(const xt_meta *m, const xt_view *v, uint32_t d, const double *lo,
			     const double *hi, bool child_leaf, strata_txn *pf, uint32_t *out)
{
	enum { SMALL = 128 };
	uint32_t n = v->h->count;
	double astack[SMALL], estack[SMALL];
	double *area = n <= SMALL ? astack : malloc((size_t)n * sizeof *area);
	double *enl = n <= SMALL ? estack : malloc((size_t)n * sizeof *enl);
	int rc = area && enl ? 0 : STRATA_ENOMEM;
	if (rc)
		goto err;
	for (uint32_t from = 0; from < n; from += SMALL) {
		xt_view part = *v;
		xt_hdr h = *v->h;
		h.count = n - from < SMALL ? n - from : SMALL;
		part.h = &h;
		part.lo += from, part.hi += from;
		KN(areas)(&part, d, lo, hi, area + from, enl + from);
	}
	uint32_t best = 0;
	if (n && n <= 64)
		best = KN(least_pair)(enl, area, n);
	else
		best = least_scan(enl, area, n);
	/* The first candidate is the final choice ~9 times in 10 (at 1M
	 * entries), and its leaf's object-table entry is usually a miss:
	 * fetched while the overlap sums run, not after. */
	if (child_leaf && n && pf)
		strata_txn_prefetch(pf, v->ids[best]);
	if (child_leaf && n && enl[best] > 0) {
		cands c = {enl, area, n};
		rc = KN(least_overlap)(v, d, m->o.choose_p, &c, lo, hi, &best);
	}
	*out = best;
err:
	if (area != astack)
		free(area);
	if (enl != estack)
		free(enl);
	return rc;
}
