/*
 * xt_bulk.c — Sort-Tile-Recursive bulk loading (Leutenegger, Lopez,
 * Edgington 1997) generalised to d dimensions, level by level.
 *
 * For n entries and b per node: P = ceil(n/b) nodes; S = ceil(P^(1/k))
 * slabs along the current dimension (k dimensions left), each sorted by
 * centre and tiled recursively over the next dimensions; the last dimension
 * is cut into runs. Slabs and runs are cut into near-equal parts (not "b,
 * b, ..., the rest"), so every node holds more than b/2 entries and no
 * node is left underfull: b is at least twice the minimum fill. Each
 * group's split history is the set of dimensions cut on its way down,
 * which is what an X-tree split would have recorded.
 */
#include <math.h>
#include <stdlib.h>

#include "xt_internal.h"

typedef struct group {
	size_t from, len;
	uint32_t hist;
} group;

typedef struct keyed {
	uint32_t key, idx;
} keyed;

typedef struct str_ctx {
	const xt_ents *e;
	uint32_t *idx;
	/* key[k][i]: entry i's centre along k as a 32-bit key (centre_keys),
	 * made when dimension k is first cut; flat bit k: every key along k
	 * is 0 (the centres are equal to within the scale), nothing to sort. */
	uint32_t *key[XT_MAXD];
	uint32_t flat;
	keyed *buf; /* 2 * e->n records: a sort's two buffers */
	size_t b;
	group *g;
	size_t ng, gcap;
} str_ctx;

static double half_centre(const xt_ents *e, uint32_t i, uint32_t dim)
{
	const size_t at = (size_t)i * e->d + dim;
	return e->lo[at] * 0.25 + e->hi[at] * 0.25; /* no overflow near DBL_MAX */
}

/* Every entry's centre along dim as a key: its place in [min, max] of the
 * level's centres scaled to 0..2^32-1, so the keys' order is the centres'
 * up to ties closer than (max - min) / 2^32, too close to matter for a
 * tile. Halves throughout (c/2 - min/2 over max/2 - min/2), so a range
 * that spans more than DBL_MAX stays finite. Made once per dimension and
 * level, read by every slab's sort: the sorts then gather 4-byte keys
 * from an array of 4n bytes instead of two doubles from 16dn, and do no
 * floating point. */
static int centre_keys(str_ctx *s, uint32_t dim)
{
	const xt_ents *e = s->e;
	size_t n = e->n;
	uint32_t *k = malloc(n * sizeof *k);
	if (!k)
		return STRATA_ENOMEM;
	double min = half_centre(e, 0, dim), max = min;
	for (size_t i = 1; i < n; i++) {
		double c = half_centre(e, (uint32_t)i, dim);
		min = c < min ? c : min;
		max = c > max ? c : max;
	}
	double scale = 4294967295.0 / (max - min);
	bool flat = !(max > min) || !isfinite(scale);
	for (size_t i = 0; i < n; i++) {
		double x = flat ? 0 : (half_centre(e, (uint32_t)i, dim) - min) * scale;
		k[i] = x < 4294967295.0 ? (uint32_t)x : UINT32_MAX;
	}
	s->key[dim] = k;
	s->flat |= (uint32_t)flat << dim;
	return 0;
}

/* Few records: insertion sort, stable like the radix sort, so both give
 * the same order. */
static void sort_few(keyed *a, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		keyed x = a[i];
		size_t j = i;
		for (; j > 0 && a[j - 1].key > x.key; j--)
			a[j] = a[j - 1];
		a[j] = x;
	}
}

/* An LSD radix sort of a[0..n) by key (t: scratch of n), R bits a digit:
 * one pass counts every digit, then one scatter per digit, skipped where
 * every key has the same digit. Stable. Returns the buffer that holds
 * the result. */
static inline __attribute__((always_inline)) keyed *radix_keys(keyed *a, keyed *t, size_t n,
								     unsigned R)
{
	enum { MAXP = 4, MAXB = 1u << 11 };
	unsigned passes = (32 + R - 1) / R, mask = (1u << R) - 1;
	uint32_t cnt[MAXP][MAXB];
	for (unsigned p = 0; p < passes; p++)
		memset(cnt[p], 0, (mask + 1) * sizeof cnt[p][0]);
	for (size_t i = 0; i < n; i++)
		for (unsigned p = 0; p < passes; p++)
			cnt[p][a[i].key >> (p * R) & mask]++;
	for (unsigned p = 0; p < passes; p++) {
		uint32_t *c = cnt[p];
		unsigned shift = p * R;
		if (c[a[0].key >> shift & mask] == n)
			continue; /* one bucket: this digit orders nothing */
		uint32_t sum = 0;
		for (unsigned b = 0; b <= mask; b++) {
			uint32_t x = c[b];
			c[b] = sum;
			sum += x;
		}
		for (size_t i = 0; i < n; i++)
			t[c[a[i].key >> shift & mask]++] = a[i];
		keyed *x = a;
		a = t, t = x;
	}
	return a;
}

/* Sorts idx[from, from+n) by centre along dim (by centre_keys' keys;
 * ties keep their order, so the result is deterministic). A comparison
 * sort through the index array spent most of a bulk load on cache misses
 * and callback calls; radix sorts of keys made per slab still spent ~250
 * instructions per entry and level. */
static int sort_by_center(str_ctx *s, size_t from, size_t n, uint32_t dim)
{
	enum { FEW = 48 };
	if (!s->key[dim]) {
		int rc = centre_keys(s, dim);
		if (rc)
			return rc;
	}
	if (s->flat >> dim & 1)
		return 0;
	uint32_t *idx = s->idx + from;
	const uint32_t *K = s->key[dim];
	keyed *a = s->buf, *t = s->buf + s->e->n;
	for (size_t i = 0; i < n; i++)
		a[i] = (keyed){K[idx[i]], idx[i]};
	if (n <= FEW)
		sort_few(a, n);
	else if (n >= 4096) /* 11-bit digits, 3 scatters: their 6k buckets pay off */
		a = radix_keys(a, t, n, 11);
	else
		a = radix_keys(a, t, n, 8);
	for (size_t i = 0; i < n; i++)
		idx[i] = a[i].idx;
	return 0;
}

static int emit(str_ctx *s, size_t from, size_t len, uint32_t hist)
{
	if (s->ng == s->gcap) {
		size_t cap = s->gcap ? 2 * s->gcap : 64;
		group *g = realloc(s->g, cap * sizeof *g);
		if (!g)
			return STRATA_ENOMEM;
		s->g = g;
		s->gcap = cap;
	}
	s->g[s->ng++] = (group){from, len, hist ? hist : 1u};
	return 0;
}

/* Tiles idx[from, from+n) over dimensions dim..d-1. */
static int tile(str_ctx *s, size_t from, size_t n, uint32_t dim, uint32_t hist)
{
	size_t P = (n + s->b - 1) / s->b;
	if (P <= 1)
		return emit(s, from, n, hist);
	uint32_t left = s->e->d - dim;
	size_t S = left == 1 ? P : (size_t)ceil(pow((double)P, 1.0 / left) - 1e-9);
	if (S <= 1)
		return tile(s, from, n, dim + 1, hist);
	int rc = sort_by_center(s, from, n, dim);
	for (size_t j = 0; !rc && j < S; j++) {
		size_t a = n * j / S, z = n * (j + 1) / S;
		rc = left == 1 ? emit(s, from + a, z - a, hist | 1u << dim)
			       : tile(s, from + a, z - a, dim + 1, hist | 1u << dim);
	}
	return rc;
}

/* Packs entries e (of level `level`) into nodes; their entries go to next. */
static int pack_level(xt_op *op, const xt_ents *e, uint32_t level, xt_ents *next)
{
	const xt_meta *m = op->m;
	size_t cap = xt_cap_of(m->o.node_size, m->dims, level == 0);
	size_t b = cap * m->o.bulk_fill_pct / 100, minb = 2 * (size_t)xt_min_count(m, level == 0);
	str_ctx s = {.e = e,
		     .idx = malloc(e->n * sizeof(uint32_t)),
		     .buf = malloc(2 * (size_t)e->n * sizeof(keyed)),
		     .b = b < minb ? minb : b};
	int rc = s.idx && s.buf ? 0 : STRATA_ENOMEM;
	for (uint32_t i = 0; !rc && i < e->n; i++)
		s.idx[i] = i;
	if (!rc)
		rc = tile(&s, 0, e->n, 0, 0);
	if (!rc)
		rc = xt_ents_reserve(next, m->dims, (uint32_t)s.ng);
	next->n = 0;
	for (size_t j = 0; !rc && j < s.ng; j++) {
		strata_node_id id;
		xt_view v;
		if ((rc = xt_node_new(op->t, m, level, 1, &id, &v)))
			break;
		xt_node_append_ents(&v, m->dims, e, s.idx + s.g[j].from, (uint32_t)s.g[j].len);
		xt_box box;
		xt_box_of_node(&v, m->dims, &box);
		xt_ents_push(next, id, s.g[j].hist, box.lo, box.hi);
	}
	free(s.idx);
	free(s.buf);
	for (uint32_t k = 0; k < m->dims; k++)
		free(s.key[k]);
	free(s.g);
	return rc;
}

static int load(xt_op *op, size_t n, const double *mins, const double *maxs, const uint64_t *ids)
{
	uint32_t d = op->d;
	/* The leaves are packed straight from the caller's arrays (the same
	 * layout, and leaves keep no split history): copying them first was
	 * 14 % of a 100k load's instructions and 44 bytes an entry of fresh
	 * memory. The view is only read. */
	const xt_ents in = {.n = (uint32_t)n, .d = d, .ids = (uint64_t *)ids,
			    .lo = (double *)mins, .hi = (double *)(maxs ? maxs : mins)};
	xt_ents a = {0}, b = {0};
	int rc = pack_level(op, &in, 0, &a);
	uint32_t level = 1;
	while (!rc && a.n > 1) {
		if (level == XT_MAXH) {
			rc = STRATA_EFULL;
			break;
		}
		if ((rc = pack_level(op, &a, level, &b)))
			break;
		level++;
		xt_ents t = a;
		a = b;
		b = t;
	}
	if (!rc) {
		op->m->top = a.ids[0];
		op->m->height = level;
		op->m->count = n;
	}
	xt_ents_free(&a);
	xt_ents_free(&b);
	return rc;
}

STRATA_API int strata_xt_bulk_load(strata_txn *txn, const char *name, uint32_t dims, size_t n,
				   const double *mins, const double *maxs, const uint64_t *ids)
{
	xt_op op;
	int rc = xt_op_begin(&op, txn, name, dims);
	if (rc)
		return rc;
	if (n == 0 || n > UINT32_MAX / 2 || !mins || !ids || op.m->height)
		return STRATA_EINVAL;
	if ((rc = xt_validate_boxes(dims, n, mins, maxs)))
		return rc;
	if ((rc = xt_op_write(&op)))
		return rc;
	return load(&op, n, mins, maxs, ids);
}
