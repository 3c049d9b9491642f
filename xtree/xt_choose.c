/*
 * xt_choose.c — R* ChooseSubtree (Beckmann et al. 1990) for the X-tree's
 * insertion: which entry of a directory node the new entry goes under.
 *
 * Above the leaves: least area enlargement, then least area. For leaves as
 * children: among the choose_p entries of least area enlargement ("nearly
 * minimum overlap"), least overlap enlargement; an entry that already
 * covers the new one (enlargement 0) adds no overlap and wins at once.
 * Areas and enlargements are computed into two arrays (vectorised, whole
 * vectors, the last overlapping the one before), the least enlargement on
 * the way; the candidate order reads them by index. Ties go to the first
 * entry in (enlargement, area, index) order, so the choice is a function
 * of the node and the box alone.
 *
 * The kernels (xt_choose_lanes.h) take two entries a step on the x86-64
 * baseline and four where the CPU has AVX2, picked at run time like the
 * window tests' (xt_use_avx2); both give the same doubles and so the same
 * tree. ChooseSubtree was about a third of a 100k-entry insert build's
 * instructions in 2-D and 3-D (callgrind), a quarter since its kernels
 * were trimmed (whole-vector steps, no per-lane tests).
 */
#include <math.h>
#include <stdlib.h>

#include "xt_internal.h"

/* The entries a node may have for ChooseSubtree's per-entry arrays to be
 * on the stack (a multiple of every lane count; supernodes past it
 * allocate). */
enum { CHOOSE_SMALL = 128 };

/* ChooseSubtree's candidates: entry i's area enlargement and area. */
typedef struct cands {
	const double *enl, *area;
	uint32_t n;
} cands;

/* Candidate order: least enlargement, then least area, then index. */
static inline bool cand_before(const cands *c, uint32_t a, uint32_t b)
{
	if (c->enl[a] != c->enl[b])
		return c->enl[a] < c->enl[b];
	if (c->area[a] != c->area[b])
		return c->area[a] < c->area[b];
	return a < b;
}

/* Keeps the p best candidates sorted in top[0..*n): insertion, since p is
 * small (32) and most candidates fall out at the first comparison. */
static void top_insert(const cands *c, uint32_t *top, uint32_t *n, uint32_t p, uint32_t i)
{
	if (*n == p && !cand_before(c, i, top[p - 1]))
		return;
	uint32_t j = *n < p ? (*n)++ : p - 1;
	while (j > 0 && cand_before(c, i, top[j - 1])) {
		top[j] = top[j - 1];
		j--;
	}
	top[j] = i;
}

/* (e, a) before (be, ba) in the (enlargement, area) order. An entry
 * whose area overflows (1e300 by 1e300) has enlargement inf - inf = NaN:
 * a NaN enlargement comes after every number, and the NaNs tie. */
static inline bool pair_before(double e, double a, double be, double ba)
{
	if (e < be || (be != be && e == e))
		return true;
	return (e == be || (e != e && be != be)) && a < ba;
}

/* The first of least (enl, area) among more than 64 entries (supernodes:
 * least_pair's mask holds 64), or where every enlargement is NaN. */
static uint32_t least_scan(const double *enl, const double *area, uint32_t n)
{
	uint32_t best = 0;
	double be = n ? enl[0] : 0, ba = n ? area[0] : 0;
	for (uint32_t j = 1; j < n; j++) {
		double e = enl[j], a = area[j];
		if (pair_before(e, a, be, ba))
			best = j, be = e, ba = a;
	}
	return best;
}

/* ---- two entries a step: SSE2 (GCC vector extensions elsewhere) ---- */
static inline void store2(double *p, xt_vd x)
{
	memcpy(p, &x, sizeof x);
}

#define KV xt_vd
#define KL XT_LANES
#define KN(name) name##_2
#define KATTR __attribute__((always_inline))
#define KFATTR
#define k_load(p, t) ((t) ? xt_load_tail((p), (t)) : xt_load(p))
#define k_store(p, x) store2((p), (x))
#define k_pad(x, t, y) ((void)(t), (xt_vd){(x)[0], (y)}) /* t is 1 */
#define k_splat(x) xt_splat(x)
#define k_min(a, b) xt_min((a), (b))
#define k_max(a, b) xt_max((a), (b))
#define k_eq_bits(a, b) xt_mask_bits((xt_vi)((a) == (b)))
#define k_gt_bits(a, b) xt_mask_bits((xt_vi)((a) > (b)))
#include "xt_choose_lanes.h"
#undef KV
#undef KL
#undef KN
#undef KATTR
#undef KFATTR
#undef k_load
#undef k_store
#undef k_pad
#undef k_splat
#undef k_min
#undef k_max
#undef k_eq_bits
#undef k_gt_bits

/* ---- four entries a step: AVX2 ---- */
#ifdef XT_HAVE_AVX2
typedef double xt_vd4 __attribute__((vector_size(32)));

/* The first t (1..3) lanes set: from tail_mask + 4 - t. */
static const int64_t tail_mask[8] = {-1, -1, -1, -1, 0, 0, 0, 0};

static inline __attribute__((always_inline, target("avx2"))) __m256i first4(uint32_t t)
{
	return _mm256_loadu_si256((const __m256i *)(tail_mask + 4 - t));
}

/* t > 0: only the first t lanes, through a mask (masked lanes read
 * nothing, so a node's end is never crossed; they hold 0.0). */
static inline __attribute__((always_inline, target("avx2"))) xt_vd4 ld4(const double *p,
									uint32_t t)
{
	if (!t)
		return (xt_vd4)_mm256_loadu_pd(p);
	return (xt_vd4)_mm256_maskload_pd(p, first4(t));
}

#define KV xt_vd4
#define KL 4u
#define KN(name) name##_4
#define KATTR __attribute__((always_inline, target("avx2")))
#define KFATTR __attribute__((target("avx2")))
#define k_load(p, t) ld4((p), (t))
#define k_store(p, x) _mm256_storeu_pd((p), (__m256d)(x))
#define k_pad(x, t, y) \
	((xt_vd4)_mm256_blendv_pd(_mm256_set1_pd(y), (__m256d)(x), (__m256d)first4(t)))
#define k_splat(x) ((xt_vd4)_mm256_set1_pd(x))
#define k_min(a, b) ((xt_vd4)_mm256_min_pd((__m256d)(a), (__m256d)(b)))
#define k_max(a, b) ((xt_vd4)_mm256_max_pd((__m256d)(a), (__m256d)(b)))
#define k_eq_bits(a, b) \
	((uint32_t)_mm256_movemask_pd(_mm256_cmp_pd((__m256d)(a), (__m256d)(b), _CMP_EQ_OQ)))
#define k_gt_bits(a, b) \
	((uint32_t)_mm256_movemask_pd(_mm256_cmp_pd((__m256d)(a), (__m256d)(b), _CMP_GT_OQ)))
#include "xt_choose_lanes.h"
#endif

/* xt_choose's way the first time, or without AVX2: asks the CPU. */
static __attribute__((noinline)) int choose_asking(const xt_meta *m, const xt_view *v, uint32_t d,
						   const double *lo, const double *hi,
						   bool child_leaf, strata_txn *pf, uint32_t *out)
{
#ifdef XT_HAVE_AVX2
	if (xt_use_avx2())
		return choose_4(m, v, d, lo, hi, child_leaf, pf, out);
#endif
	return choose_2(m, v, d, lo, hi, child_leaf, pf, out);
}

/* A jump to the kernels when AVX2 is known to be there: with
 * xt_use_avx2's first-time call inline, this frame saved registers and
 * could not jump. */
int xt_choose(const xt_meta *m, const xt_view *v, uint32_t d, const double *lo, const double *hi,
	      bool child_leaf, strata_txn *pf, uint32_t *out)
{
#ifdef XT_HAVE_AVX2
	if (__atomic_load_n(&xt_query_avx2, __ATOMIC_RELAXED) > 0)
		return choose_4(m, v, d, lo, hi, child_leaf, pf, out);
#endif
	return choose_asking(m, v, d, lo, hi, child_leaf, pf, out);
}
