/*
 * xt_internal.h — the X-tree's node formats and the helpers its files share.
 *
 * A tree is a meta node (kind XT_KIND_META) under the root name, pointing at
 * the top node. Every other node starts with xt_hdr and stores its entries
 * as structure-of-arrays, so a query tests one dimension of every entry in
 * one vectorisable loop:
 *
 *   xt_hdr | ids[cap] (u64) | lo[dims][cap] | hi[dims][cap] | hist[cap] (dir only)
 *
 * ids are object ids in leaves (level 0) and child NodeIDs in directory
 * nodes. hist[i] is the split history of child i: bit k set when the child
 * (or a node it was split from) was split along dimension k. A node holds
 * `blocks` blocks of node_size bytes; only directory nodes grow past one
 * block (supernodes, kind XT_KIND_SUPER). Entries are unordered; removal
 * moves the last entry into the hole.
 *
 * Invariants (xt_check.c verifies them): a directory entry's box is exactly
 * the union of its child's entries; all leaves at level 0; non-root nodes
 * hold at least xt_min_count entries; a directory root holds at least two.
 */
#ifndef STRATA_XT_INTERNAL_H
#define STRATA_XT_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
/* Four doubles a step in window tests and ChooseSubtree where the CPU has
 * AVX2, chosen at run time (xt_use_avx2): the library is built for the
 * x86-64 baseline. */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define XT_HAVE_AVX2 1
#endif

#include "strata/xtree.h"

enum {
	XT_KIND_META = 0x20,
	XT_KIND_DIR = 0x21,
	XT_KIND_LEAF = 0x22,
	XT_KIND_SUPER = 0x23
};

#define XT_MAGIC 0x31525458u /* "XTR1" */
#define XT_HDR_SIZE 16u
#define XT_MAXD STRATA_XT_DIMS_MAX
#define XT_MAXH STRATA_XT_LEVELS_MAX

typedef struct xt_hdr {
	uint8_t kind;
	uint8_t level;   /* 0: leaf */
	uint16_t blocks; /* node size / node_size */
	uint32_t count;
	uint32_t cap;    /* entries the node has room for */
	uint32_t pad;
} xt_hdr;

typedef struct xt_meta {
	xt_hdr h; /* kind XT_KIND_META; other fields unused */
	uint32_t magic;
	uint32_t dims;
	uint32_t height; /* 0: empty */
	uint32_t pad;
	uint64_t count;
	strata_node_id top;
	strata_xt_options o; /* every field resolved (no zeros) */
} xt_meta;

/* A node's arrays. */
typedef struct xt_view {
	xt_hdr *h;
	uint64_t *ids;
	double *lo; /* lo[k * cap + i] */
	double *hi;
	uint32_t *hist; /* NULL in leaves */
} xt_view;

static inline xt_view xt_view_of(const void *p, uint32_t d)
{
	xt_view v;
	v.h = (xt_hdr *)p;
	uint32_t cap = v.h->cap;
	v.ids = (uint64_t *)((uint8_t *)p + XT_HDR_SIZE);
	v.lo = (double *)(v.ids + cap);
	v.hi = v.lo + (size_t)d * cap;
	v.hist = v.h->level ? (uint32_t *)(v.hi + (size_t)d * cap) : NULL;
	return v;
}

/* ---- lanes (queries, ChooseSubtree) ---- */
/* Two doubles at a time through GCC/Clang vector extensions (one SSE2
 * register, the x86-64 baseline; 16 bytes also keeps the ABI warning-free
 * without -mavx): gcc 12 leaves these loops scalar at -O2 otherwise. */
#define XT_LANES 2
typedef double xt_vd __attribute__((vector_size(16)));
typedef int64_t xt_vi __attribute__((vector_size(16)));

static inline xt_vd xt_load(const double *p)
{
	xt_vd v;
	memcpy(&v, p, sizeof v);
	return v;
}

static inline xt_vd xt_splat(double x)
{
	return (xt_vd){x, x};
}

/* a > b ? a : b per lane; maxpd is exactly that (b when either is NaN or
 * both are zeros), one instruction where gcc builds the select from four. */
static inline xt_vd xt_max(xt_vd a, xt_vd b)
{
#if defined(__SSE2__)
	return (xt_vd)_mm_max_pd((__m128d)a, (__m128d)b);
#else
	xt_vi m = a > b;
	return (xt_vd)((m & (xt_vi)a) | (~m & (xt_vi)b));
#endif
}

/* a < b ? a : b per lane (minpd). */
static inline xt_vd xt_min(xt_vd a, xt_vd b)
{
#if defined(__SSE2__)
	return (xt_vd)_mm_min_pd((__m128d)a, (__m128d)b);
#else
	xt_vi m = a < b;
	return (xt_vd)((m & (xt_vi)a) | (~m & (xt_vi)b));
#endif
}

/* Both lanes' square roots, correctly rounded like sqrt() (sqrtpd). */
static inline xt_vd xt_sqrt(xt_vd a)
{
#if defined(__SSE2__)
	return (xt_vd)_mm_sqrt_pd((__m128d)a);
#else
	return (xt_vd){__builtin_sqrt(a[0]), __builtin_sqrt(a[1])};
#endif
}

/* A comparison mask's two lanes as bits 0 and 1 (movmskpd: one
 * instruction instead of two ands, a shift and an or). */
static inline uint32_t xt_mask_bits(xt_vi m)
{
#if defined(__SSE2__)
	return (uint32_t)_mm_movemask_pd((__m128d)m);
#else
	return (uint32_t)((m[0] & 1) | (m[1] & 2));
#endif
}

/* A partial last lane: the entries past len are filled with a copy of
 * the last one, so no load reads past the node's arrays. */
static inline xt_vd xt_load_tail(const double *p, uint32_t n)
{
	double t[XT_LANES];
	for (uint32_t i = 0; i < XT_LANES; i++)
		t[i] = p[i < n ? i : n - 1];
	return xt_load(t);
}

/* Entry bytes and capacity of a node of `size` bytes. */
static inline uint32_t xt_entry_bytes(uint32_t d, bool leaf)
{
	return 8u + 16u * d + (leaf ? 0u : 4u);
}
static inline uint32_t xt_cap_of(uint32_t size, uint32_t d, bool leaf)
{
	return (size - XT_HDR_SIZE) / xt_entry_bytes(d, leaf);
}

/* A box in a flat buffer: lo[0..d-1], hi[0..d-1]. */
typedef struct xt_box {
	double lo[XT_MAXD];
	double hi[XT_MAXD];
} xt_box;

/* Entries out of nodes (splits, reinsertion): entry i is ids[i], hist[i],
 * and its box at lo/hi + i*d. */
typedef struct xt_ents {
	uint32_t n, cap, d;
	uint64_t *ids;
	uint32_t *hist;
	double *lo, *hi;
} xt_ents;

int xt_ents_reserve(xt_ents *e, uint32_t d, uint32_t n);
void xt_ents_free(xt_ents *e);
void xt_ents_push_all(xt_ents *e, const xt_view *v); /* room reserved */
void xt_ents_push(xt_ents *e, uint64_t id, uint32_t hist, const double *lo, const double *hi);

/* ---- geometry (xt_geom.c) ---- */
void xt_box_of_node(const xt_view *v, uint32_t d, xt_box *out);
void xt_box_of_ents(const xt_ents *e, const uint32_t *idx, uint32_t from, uint32_t to, xt_box *out);
void xt_box_get(const xt_view *v, uint32_t d, uint32_t i, xt_box *out);
void xt_box_set(xt_view *v, uint32_t d, uint32_t i, const xt_box *b);
void xt_box_extend(xt_box *a, const double *lo, const double *hi, uint32_t d);
double xt_volume(const xt_box *b, uint32_t d);
/* The power of two that puts every coordinate of [lo, hi] in (-1, 1):
 * scores of boxes whose areas would overflow are taken on coordinates
 * times it (exact but for underflow; splits, reinsert, stats). */
double xt_unit_scale(const double *lo, const double *hi, uint32_t d);
double xt_margin(const xt_box *b, uint32_t d);
double xt_overlap_vol(const xt_box *a, const xt_box *b, uint32_t d);
bool xt_box_eq(const xt_box *a, const xt_box *b, uint32_t d);
double xt_mindist(const double *pt, const double *lo, const double *hi, size_t stride,
		  uint32_t d, strata_xt_metric m);

/* ---- node memory (xt_node.c) ---- */
uint32_t xt_min_count(const xt_meta *m, bool leaf);
uint32_t xt_blocks_for(const xt_meta *m, uint32_t count, bool leaf);
int xt_node_new(strata_txn *t, const xt_meta *m, uint32_t level, uint32_t blocks,
		strata_node_id *id, xt_view *v);
/* Reallocates node `*id` at `blocks` blocks (copy, free the old one). */
int xt_node_resize(strata_txn *t, const xt_meta *m, strata_node_id *id, xt_view *v,
		   uint32_t blocks);
void xt_node_remove(xt_view *v, uint32_t d, uint32_t i);
void xt_node_append(xt_view *v, uint32_t d, uint64_t id, uint32_t hist, const double *lo,
		    const double *hi);
void xt_node_append_ent(xt_view *v, uint32_t d, const xt_ents *e, uint32_t i);
void xt_node_append_ents(xt_view *v, uint32_t d, const xt_ents *e, const uint32_t *idx,
			 uint32_t n);

/* ---- a write operation (xt_write.c) ---- */
typedef struct xt_op {
	strata_txn *t;
	const char *name;
	xt_meta *m;        /* writable meta (after xt_op_write) */
	strata_node_id mid; /* the meta node as xt_op_begin found it */
	bool m_owned;      /* ... already this transaction's: m is writable */
	uint32_t d;
	/* The nodes this operation made writable, by level (bit L of own_mask:
	 * own_id[L] / own_p[L] hold one): a reinsertion's descent finds them
	 * without asking the substrate again. Forgotten (xt_op_forget)
	 * whenever a node is freed or reallocated. */
	uint32_t own_mask;
	uint32_t reinserted; /* bit L: overflow at level L was treated by reinsert */
	xt_ents pending;   /* entries waiting to be reinserted ... */
	uint8_t *plevel;   /* ... and the level each goes to */
	uint32_t plevel_cap;
	/* last, so xt_op_begin clears only what comes before */
	strata_node_id own_id[XT_MAXH];
	void *own_p[XT_MAXH];
} xt_op;

int xt_op_begin(xt_op *op, strata_txn *t, const char *name, uint32_t dims);
int xt_op_write(xt_op *op);
void xt_op_end(xt_op *op);
static inline void xt_op_forget(xt_op *op)
{
	op->own_mask = 0;
}
/* R* ChooseSubtree (xt_choose.c): *out gets the entry of directory node v
 * (child_leaf: its children are leaves) that the box [lo, hi] goes under.
 * pf (or NULL): the transaction that will read the chosen child, told
 * early which leaf is likely (strata_txn_prefetch). */
int xt_choose(const xt_meta *m, const xt_view *v, uint32_t d, const double *lo, const double *hi,
	      bool child_leaf, strata_txn *pf, uint32_t *out);
#ifdef XT_HAVE_AVX2
/* Whether the four-lane kernels run (xt_query.c): xt_query_avx2 < 0 until
 * the CPU is asked; tests set it to 0 or 1 to run either path. */
extern int xt_query_avx2;
static inline bool xt_use_avx2(void)
{
	int a = __atomic_load_n(&xt_query_avx2, __ATOMIC_RELAXED);
	if (__builtin_expect(a < 0, 0)) { /* idempotent: a race stores the same value */
		__builtin_cpu_init();
		a = __builtin_cpu_supports("avx2") != 0;
		__atomic_store_n(&xt_query_avx2, a, __ATOMIC_RELAXED);
	}
	return a;
}
#endif
int xt_insert_ent(xt_op *op, uint64_t id, uint32_t hist, const double *lo, const double *hi,
		  uint32_t level);
int xt_drain_pending(xt_op *op);
/* The reinsertion queue (op->pending): room for k more entries, then
 * entry i of e queued for `level` (no allocation). */
int xt_pending_reserve(xt_op *op, uint32_t k);
void xt_pending_push(xt_op *op, const xt_ents *e, uint32_t i, uint32_t level);
int xt_validate_box(uint32_t d, const double *lo, const double *hi);
int xt_validate_boxes(uint32_t d, size_t n, const double *lo, const double *hi);

/* ---- splits (xt_split.c) ---- */
typedef struct xt_split {
	uint32_t *order; /* entry indexes: group A = order[0..k), B = order[k..n) */
	uint32_t k;
	uint32_t axis;
	bool ok; /* false: no acceptable split (make a supernode) */
} xt_split;

int xt_split_leaf(const xt_meta *m, const xt_ents *e, xt_split *s);
int xt_split_dir(const xt_meta *m, const xt_ents *e, xt_split *s);

/* ---- reading (xt_meta.c) ---- */
typedef struct xt_rd {
	const strata_snapshot *snap;
	const xt_meta *m;
} xt_rd;
int xt_rd_open(const strata_snapshot *snap, const char *name, xt_rd *rd);

/* A query's dims, other arguments (bad_arg: refused) and box, in that
 * order, against an opened tree (xt_query.c). */
int xt_check_args(const xt_rd *rd, uint32_t dims, bool bad_arg, const double *min,
		  const double *max);
/* Distances (not squared) from pt to entries [from, from + len) of v, two
 * per vector; the same doubles as xt_mindist (xt_query.c). */
void xt_distances(const xt_view *v, uint32_t d, const double *pt, strata_xt_metric metric,
		  uint32_t from, uint32_t len, xt_vd *out);
#define XT_DIST_CHUNK 256 /* entries per xt_distances call at most (a multiple of XT_LANES) */

/* A tree opened once for many queries (xtree.h): nothing but the reader. */
struct strata_xt_handle {
	xt_rd rd;
};

/* Resolves node `id` and checks that its header fits its bytes: count <=
 * cap and cap entries within the node. Inline, and a multiplication
 * rather than xt_cap_of's division: it runs for every node a query reads. */
static inline int xt_rd_node(const xt_rd *rd, strata_node_id id, xt_view *v, uint32_t *size)
{
	const void *p;
	uint32_t sz;
	int rc = strata_resolve(rd->snap, id, &p, &sz);
	if (rc)
		return rc;
	const xt_hdr *h = p;
	uint32_t d = rd->m->dims;
	if (sz < XT_HDR_SIZE || h->count > h->cap ||
	    (uint64_t)h->cap * xt_entry_bytes(d, h->level == 0) > sz - XT_HDR_SIZE)
		return STRATA_ECORRUPT;
	*v = xt_view_of(p, d);
	if (size)
		*size = sz;
	return 0;
}

#endif
