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
 *   k_store(p, x) KL doubles to p
 *   k_pad(x, t, y)  x with the lanes from t on (0 < t < KL) set to y
 *   k_splat(x), k_min(a, b), k_max(a, b)  minpd/maxpd semantics
 *   k_eq_bits(a, b)  bit i set where lane i of a equals that of b
 *   k_gt_bits(a, b)  bit i set where lane i of a exceeds that of b
 */

/* The overlap of [alo, ahi] and [blo, bhi] along one dimension, 0 when
 * they are apart: the one term both the overlap growth and its lower
 * bound multiply, in this operand order, so they get the same doubles. */
static inline KATTR KV KN(overlap_1d)(KV alo, KV ahi, KV blo, KV bhi)
{
	return k_max(k_min(ahi, bhi) - k_max(alo, blo), k_splat(0));
}

/* Areas of entries [at, at + KL) (tail > 0: only `tail` of them) of a
 * node whose arrays start at vlo, vhi (cap entries a dimension), and
 * their areas once enlarged by [lo, hi], dimension by dimension. */
static inline KATTR void KN(area_lane)(const double *vlo, const double *vhi, size_t cap,
				       uint32_t d, uint32_t at, uint32_t tail, const double *lo,
				       const double *hi, KV *area, KV *grown)
{
	KV a = k_splat(1), g = k_splat(1);
	for (uint32_t k = 0; k < d; k++) {
		KV l = k_load(vlo + k * cap + at, tail);
		KV h = k_load(vhi + k * cap + at, tail);
		a *= h - l;
		g *= k_max(h, k_splat(hi[k])) - k_min(l, k_splat(lo[k]));
	}
	*area = a;
	*grown = g;
}

/* One step of areas_d: entries [at, at + KL) (tail > 0: only `tail` of
 * them) into area[], enl[], the running minimum *least and the running sum
 * of the enlarged areas *grown. */
static inline KATTR void KN(area_step)(const double *vlo, const double *vhi, size_t cap,
				       uint32_t d, uint32_t at, uint32_t tail, const double *lo,
				       const double *hi, double *area, double *enl, KV *least,
				       KV *grown)
{
	KV a, g;
	KN(area_lane)(vlo, vhi, cap, d, at, tail, lo, hi, &a, &g);
	KV e = g - a;
	k_store(area + at, a);
	k_store(enl + at, e);
	*least = k_min(tail ? k_pad(e, tail, INFINITY) : e, *least);
	*grown += g;
}

/* area_lane over all n entries of v into area[], enl[] (grown - area),
 * whole vectors (a tail store of single lanes was a memcpy call). Returns
 * the least enlargement that is a number (+inf if none): k_min(x, m)
 * passes a NaN x by.
 * From KL entries on, the last step takes the last KL entries, overlapping
 * the step before where n is no multiple of KL: it computes the same
 * doubles for those again, stores them again, and the minimum takes them
 * again, which changes nothing (and needs no masked load). Fewer than KL
 * entries take one masked step, the lanes past n +inf for the minimum;
 * the arrays hold KL at least, and nothing reads those lanes as entries.
 * The node's geometry is read into locals first: the stores may alias
 * anything, and it was read again every step.
 * *grown gets a sum of the enlarged areas, every entry's at least once (the
 * overlapping step's twice, a short node's lanes past n too): every area,
 * enlargement and overlap sum of this choice is at most that, so where it
 * is finite none of them overflowed; +inf or NaN where one might have.
 * (One add a step, ~1 % of an insert build's instructions; carrying "in
 * range" down the descent, to check at the root only, cost more.) */
static inline KATTR double KN(areas_d)(const xt_view *v, uint32_t d, uint32_t n, const double *lo,
				       const double *hi, double *area, double *enl, double *grown)
{
	const double *vlo = v->lo, *vhi = v->hi;
	size_t cap = v->h->cap;
	KV least = k_splat(INFINITY), gs = k_splat(0);
	if (n < KL) {
		KN(area_step)(vlo, vhi, cap, d, 0, n, lo, hi, area, enl, &least, &gs);
	} else {
		uint32_t j = 0;
		for (; j + KL <= n; j += KL)
			KN(area_step)(vlo, vhi, cap, d, j, 0, lo, hi, area, enl, &least, &gs);
		if (j < n)
			KN(area_step)(vlo, vhi, cap, d, n - KL, 0, lo, hi, area, enl, &least, &gs);
	}
	double me = least[0], g = gs[0];
	for (uint32_t t = 1; t < KL; t++) {
		me = least[t] < me ? least[t] : me;
		g += gs[t];
	}
	*grown = g;
	return me;
}

/* g with lane `own` and the lanes outside [from, to) set to +0.0: the
 * terms that are no other entry's, or were added already. */
static inline KATTR KV KN(drop)(KV g, uint32_t own, uint32_t from, uint32_t to)
{
	KV lane;
	for (uint32_t t = 0; t < KL; t++)
		lane[t] = t;
	__typeof__(lane != lane) keep = lane != k_splat(own);
	if (from)
		keep &= lane >= k_splat(from);
	if (to < KL)
		keep &= lane < k_splat(to);
	return (KV)((__typeof__(keep))g & keep);
}

/* Per entry of [at, at + KL) (tail > 0: only `tail` of them), how much its
 * overlap with the box [il, ih] grows when that is enlarged to [el, eh]
 * (splats, a dimension each): the product over the dimensions in order. */
static inline KATTR KV KN(growth_step)(const double *vlo, const double *vhi, size_t cap,
				       uint32_t d, uint32_t at, uint32_t tail, const KV *il,
				       const KV *ih, const KV *el, const KV *eh)
{
	KV before = k_splat(1.0), after = k_splat(1.0);
	for (uint32_t k = 0; k < d; k++) {
		KV l = k_load(vlo + k * cap + at, tail);
		KV h = k_load(vhi + k * cap + at, tail);
		after *= KN(overlap_1d)(el[k], eh[k], l, h);
		before *= KN(overlap_1d)(il[k], ih[k], l, h);
	}
	return after - before;
}

/* The sum with g's lanes added in order. */
static inline KATTR double KN(add_lanes)(double sum, KV g)
{
	for (uint32_t t = 0; t < KL; t++)
		sum += g[t];
	return sum;
}

/* How much the overlap of entry i with every other entry grows when i is
 * enlarged by [lo, hi]: per entry j, overlap(i enlarged, j) - overlap(i, j),
 * the product over the dimensions in order. The growths are summed in
 * entry order, i's own skipped. Every term is >= 0, so the partial sums
 * only grow: once one exceeds `bound` the entry cannot beat or tie the
 * best so far, and the sum stops there (tested after every step: at 1M
 * entries a losing candidate stops after a third of its entries),
 * returning what it has.
 * A step adds all its lanes, i's own set to +0.0 (drop) instead of a test
 * per lane, and so are those of entries added already where the last step
 * is the last KL entries (as in areas_d), or those past n where there are
 * fewer: adding +0.0 changes no sum, because the sum starts at +0.0 and is
 * never -0.0 (under round-to-nearest a sum is -0.0 only when both addends
 * are), and a NaN or infinite sum stays what it is. */
static inline KATTR double KN(overlap_growth_d)(const xt_view *v, uint32_t d, uint32_t i,
						const double *lo, const double *hi, double bound)
{
	const double *vlo = v->lo, *vhi = v->hi;
	size_t cap = v->h->cap;
	uint32_t n = v->h->count, j = 0;
	KV il[XT_MAXD], ih[XT_MAXD], el[XT_MAXD], eh[XT_MAXD];
	for (uint32_t k = 0; k < d; k++) {
		double a = vlo[k * cap + i], b = vhi[k * cap + i];
		il[k] = k_splat(a), ih[k] = k_splat(b);
		el[k] = k_splat(a < lo[k] ? a : lo[k]), eh[k] = k_splat(b > hi[k] ? b : hi[k]);
	}
	if (n < KL) {
		KV g = KN(growth_step)(vlo, vhi, cap, d, 0, n, il, ih, el, eh);
		return KN(add_lanes)(0, KN(drop)(g, i, 0, n));
	}
	double sum = 0;
	for (; j + KL <= n; j += KL) {
		KV g = KN(growth_step)(vlo, vhi, cap, d, j, 0, il, ih, el, eh);
		sum = KN(add_lanes)(sum, i - j < KL ? KN(drop)(g, i - j, 0, KL) : g);
		if (sum > bound)
			return sum;
	}
	if (j < n) {
		KV g = KN(growth_step)(vlo, vhi, cap, d, n - KL, 0, il, ih, el, eh);
		sum = KN(add_lanes)(sum, KN(drop)(g, i - (n - KL), KL - (n - j), KL));
	}
	return sum;
}

/* A lower bound of every entry's overlap growth: out[i] is the term entry
 * f adds to entry i's sum (out[f] = 0), the same doubles overlap_growth_d
 * adds for that pair; whole vectors, the last step overlapping as in
 * areas_d (out holds KL at least). Terms are >= 0 and the sums are taken
 * in order with round-to-nearest, so entry i's computed growth is at least
 * out[i]. */
static inline KATTR void KN(growth_lb_d)(const xt_view *v, uint32_t d, uint32_t f,
					 const double *lo, const double *hi, double *out)
{
	const double *vlo = v->lo, *vhi = v->hi;
	size_t cap = v->h->cap;
	uint32_t n = v->h->count;
	KV fl[XT_MAXD], fh[XT_MAXD];
	for (uint32_t k = 0; k < d; k++)
		fl[k] = k_splat(vlo[k * cap + f]), fh[k] = k_splat(vhi[k * cap + f]);
	for (uint32_t j = 0; j < n; j += KL) {
		uint32_t at = j, tail = 0;
		if (n - j < KL)
			at = n < KL ? j : n - KL, tail = n < KL ? n : 0;
		KV before = k_splat(1.0), after = k_splat(1.0);
		for (uint32_t k = 0; k < d; k++) {
			KV il = k_load(vlo + k * cap + at, tail);
			KV ih = k_load(vhi + k * cap + at, tail);
			KV el = k_min(il, k_splat(lo[k])), eh = k_max(ih, k_splat(hi[k]));
			after *= KN(overlap_1d)(el, eh, fl[k], fh[k]);
			before *= KN(overlap_1d)(il, ih, fl[k], fh[k]);
		}
		k_store(out + at, after - before);
	}
	out[f] = 0;
}

/* The bits of the entries [at, at + m) (m <= 64) whose x equals v (gt:
 * exceeds v), a whole vector at a time. As in areas_d, the last step is
 * the last KL entries of the chunk, overlapping the one before (its bits
 * again) or the chunk before (shifted out); only a node of fewer than KL
 * entries has lanes past n, masked off. */
static inline KATTR uint64_t KN(cmp_bits)(const double *x, uint32_t at, uint32_t m, double v,
					  bool gt)
{
	KV vs = k_splat(v);
	uint64_t bits = 0;
	uint32_t j = 0;
#define CMP(p) ((uint64_t)(gt ? k_gt_bits(k_load(p, 0), vs) : k_eq_bits(k_load(p, 0), vs)))
	for (; j + KL <= m; j += KL)
		bits |= CMP(x + at + j) << j;
	if (j < m) {
		if (at + m >= KL) {
			uint64_t b = CMP(x + at + m - KL);
			bits |= m >= KL ? b << (m - KL) : b >> (KL - m);
		} else {
			bits = CMP(x) & ((1u << m) - 1);
		}
	}
#undef CMP
	return bits;
}

/* The first of the entries in bits (offset by at) of least area, best
 * (UINT32_MAX: none yet) the first of least area before them. */
static inline uint32_t KN(least_area)(const double *area, uint32_t at, uint64_t bits, uint32_t best)
{
	if (best == UINT32_MAX)
		best = at + (uint32_t)__builtin_ctzll(bits), bits &= bits - 1;
	for (; bits; bits &= bits - 1) {
		uint32_t i = at + (uint32_t)__builtin_ctzll(bits);
		if (area[i] < area[best])
			best = i;
	}
	return best;
}

/* The first entry of least (enl, area) in pair_before's order among n,
 * me their least enlargement that is a number (areas_d): a mask of the
 * entries that have it, usually one, 64 at a time; else the least area
 * among them (the first of equals). None (every enlargement NaN) is
 * least_scan's case. The scalar scan it replaces mispredicted its
 * branches. */
static inline KATTR uint32_t KN(least_pair)(const double *enl, const double *area, uint32_t n,
					    double me)
{
	uint32_t best = UINT32_MAX;
	if (n <= 64) { /* every node but a supernode */
		uint64_t bits = KN(cmp_bits)(enl, 0, n, me, false);
		if (bits)
			best = KN(least_area)(area, 0, bits, best);
	} else {
		for (uint32_t at = 0; at < n; at += 64) {
			uint64_t bits = KN(cmp_bits)(enl, at, n - at < 64 ? n - at : 64, me, false);
			if (bits)
				best = KN(least_area)(area, at, bits, best);
		}
	}
	return best != UINT32_MAX ? best : least_scan(enl, area, n);
}

/* The kernels with d constant in 2-D and 3-D (the per-dimension splats
 * leave the lane loop, which unrolls). areas goes into choose; the others
 * (KFATTR: this width's target) are calls, made in about 1 choice in 9
 * (1M 2-D entries). */
static inline KATTR double KN(areas)(const xt_view *v, uint32_t d, uint32_t n, const double *lo,
				     const double *hi, double *area, double *enl, double *grown)
{
	if (d == 2)
		return KN(areas_d)(v, 2, n, lo, hi, area, enl, grown);
	if (d == 3)
		return KN(areas_d)(v, 3, n, lo, hi, area, enl, grown);
	return KN(areas_d)(v, d, n, lo, hi, area, enl, grown);
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
/* least_overlap's step for candidate i: skipped when its lower bound
 * exceeds the least growth so far, or that is 0 and i comes after *best in
 * cand_before order; else its growth summed with that bound. */
static inline KATTR void KN(candidate)(const xt_view *v, uint32_t d, const cands *c,
				       const double *lo, const double *hi, const double *lb,
				       uint32_t i, double *least, uint32_t *best)
{
	if (lb[i] > *least || (!(*least > 0) && !cand_before(c, i, *best)))
		return;
	double inc = KN(overlap_growth)(v, d, i, lo, hi, *least);
	if (inc < *least || (inc == *least && cand_before(c, i, *best)))
		*least = inc, *best = i;
}

static __attribute__((noinline)) KFATTR int KN(least_overlap)(const xt_view *v, uint32_t d,
							      uint32_t p, const cands *c,
							      const double *lo, const double *hi,
							      double *lb, uint32_t *top,
							      uint32_t *best)
{
	uint32_t n = c->n, first = *best, nt = 0;
	double least = KN(overlap_growth)(v, d, first, lo, hi, INFINITY);
	if (!(least > 0))
		return 0;
	uint32_t *tbig = NULL;
	if (n > p && p > CHOOSE_SMALL && !(top = tbig = malloc((size_t)p * sizeof *top)))
		return STRATA_ENOMEM;
	KN(growth_lb)(v, d, first, lo, hi, lb);
	if (n > p) { /* the p candidates of least (enlargement, area) */
		for (uint32_t i = 0; i < n; i++)
			top_insert(c, top, &nt, p, i);
		for (uint32_t j = 0; j < nt; j++)
			if (top[j] != first)
				KN(candidate)(v, d, c, lo, hi, lb, top[j], &least, best);
		if (tbig)
			free(tbig);
		return 0;
	}
	/* Every entry, in order; a mask of those whose bound does not exceed
	 * the least growth found first (it only decreases, so no other can
	 * pass later) saves testing the others one by one. */
	for (uint32_t at = 0; at < n; at += 64) {
		uint32_t m = n - at < 64 ? n - at : 64;
		uint64_t bits = ~KN(cmp_bits)(lb, at, m, least, true);
		if (m < 64)
			bits &= ((uint64_t)1 << m) - 1;
		if (first - at < 64)
			bits &= ~((uint64_t)1 << (first - at));
		for (; bits; bits &= bits - 1)
			KN(candidate)(v, d, c, lo, hi, lb, at + (uint32_t)__builtin_ctzll(bits),
				      &least, best);
	}
	return 0;
}

static __attribute__((noinline)) KFATTR int KN(choose_scaled)(const xt_meta *m, const xt_view *v,
							      uint32_t d, const double *lo,
							      const double *hi, bool child_leaf,
							      strata_txn *pf, uint32_t *out);

/* R* ChooseSubtree at this width (xt_choose) with arrays of n entries
 * rounded up to KL (lb: the overlap lower bounds) and top of CHOOSE_SMALL.
 * scaled: v and [lo, hi] are choose_scaled's copy, in range. */
static inline KATTR int KN(choose_in)(const xt_meta *m, const xt_view *v, uint32_t d,
				      const double *lo, const double *hi, bool child_leaf,
				      strata_txn *pf, double *area, double *enl, double *lb,
				      uint32_t *top, bool scaled, uint32_t *out)
{
	uint32_t n = v->h->count, best = 0;
	int rc = 0;
	if (n) {
		double grown;
		double me = KN(areas)(v, d, n, lo, hi, area, enl, &grown);
		if (__builtin_expect(!(grown < INFINITY), 0) && !scaled)
			return KN(choose_scaled)(m, v, d, lo, hi, child_leaf, pf, out);
		best = KN(least_pair)(enl, area, n, me);
	}
	/* The first candidate is the final choice ~9 times in 10 (at 1M
	 * entries), and its leaf's object-table entry is usually a miss:
	 * fetched while the overlap sums run, not after. */
	if (child_leaf && n && pf)
		strata_txn_prefetch(pf, v->ids[best]);
	if (child_leaf && n && enl[best] > 0) {
		cands c = {enl, area, n};
		rc = KN(least_overlap)(v, d, m->o.choose_p, &c, lo, hi, lb, top, &best);
	}
	*out = best;
	return rc;
}

/* Supernodes of more entries than choose's arrays hold, and
 * choose_scaled's copies (scaled). */
static __attribute__((noinline)) KFATTR int KN(choose_big)(const xt_meta *m, const xt_view *v,
							   uint32_t d, const double *lo,
							   const double *hi, bool child_leaf,
							   strata_txn *pf, bool scaled,
							   uint32_t *out)
{
	size_t np = ((size_t)v->h->count + KL - 1) / KL * KL;
	double *area = malloc(3 * np * sizeof *area);
	uint32_t top[CHOOSE_SMALL];
	if (!area)
		return STRATA_ENOMEM;
	int rc = KN(choose_in)(m, v, d, lo, hi, child_leaf, pf, area, area + np, area + 2 * np,
			       top, scaled, out);
	free(area);
	return rc;
}

/* The choice where an area, enlargement or overlap sum might overflow
 * (boxes of 1e300 by 1e300), taken on a copy of the node and the box times
 * the power of two that puts all their coordinates in (-1, 1), where every
 * one is finite. Scaling by a power of two is exact but for underflow, and
 * every comparison the choice makes gives what it gives on the data scaled
 * down, so huge coordinates grow the tree their scaled-down copies grow
 * (test a_power_of_two_scale_grows_the_same_tree). Where a node mixes
 * 1e300 with units, the units' areas underflow in the copy: the choice is
 * then a valid one, not R*'s. */
static __attribute__((noinline)) KFATTR int KN(choose_scaled)(const xt_meta *m, const xt_view *v,
							      uint32_t d, const double *lo,
							      const double *hi, bool child_leaf,
							      strata_txn *pf, uint32_t *out)
{
	uint32_t n = v->h->count;
	size_t cap = v->h->cap;
	xt_box all;
	xt_box_of_node(v, d, &all);
	xt_box_extend(&all, lo, hi, d);
	double f = xt_unit_scale(all.lo, all.hi, d), slo[XT_MAXD], shi[XT_MAXD];
	double *g = malloc(2 * (size_t)n * d * sizeof *g);
	if (!g)
		return STRATA_ENOMEM;
	xt_hdr h = *v->h;
	h.cap = n;
	xt_view sv = {&h, v->ids, g, g + (size_t)n * d, v->hist};
	for (uint32_t k = 0; k < d; k++) {
		slo[k] = lo[k] * f, shi[k] = hi[k] * f;
		for (uint32_t i = 0; i < n; i++) {
			sv.lo[(size_t)k * n + i] = v->lo[k * cap + i] * f;
			sv.hi[(size_t)k * n + i] = v->hi[k * cap + i] * f;
		}
	}
	int rc = KN(choose_big)(m, &sv, d, slo, shi, child_leaf, pf, true, out);
	free(g);
	return rc;
}

static __attribute__((noinline)) KFATTR int KN(choose)(const xt_meta *m, const xt_view *v,
							uint32_t d, const double *lo,
							const double *hi, bool child_leaf,
							strata_txn *pf, uint32_t *out)
{
	if (v->h->count > CHOOSE_SMALL)
		return KN(choose_big)(m, v, d, lo, hi, child_leaf, pf, false, out);
	double area[CHOOSE_SMALL], enl[CHOOSE_SMALL], lb[CHOOSE_SMALL];
	uint32_t top[CHOOSE_SMALL];
	return KN(choose_in)(m, v, d, lo, hi, child_leaf, pf, area, enl, lb, top, false, out);
}
