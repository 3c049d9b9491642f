/*
 * bpt.h — B+tree internals shared by the bptree/ sources: the node formats, reading
 * nodes through a snapshot or a transaction, and searching within a node.
 *
 * Every B+tree node starts with a 16-byte header (little-endian fields):
 *   0  u16 magic 0x5442     2  u8 kind (STRATA_BPT_KIND_*)   3  u8 level
 *   4  u16 count            6  u16 heap (offset of the lowest cell)
 *   8  u16 garbage (bytes of dead cells)
 *   10 u16 prefix length p: every key of the node (every separator 1..count-1
 *          of a branch) starts with the same p bytes   12..15 zero
 * Overflow nodes use bytes 8..15 for the value length instead.
 * Branch and leaf nodes are slotted pages of the tree's node_size: a slot
 * array in key order grows up from byte 16, cells grow down from the end.
 * A slot is 6 bytes: u16 cell offset, u32 hint = the key's bytes p..p+3 as
 * a big-endian number (zero past the key's end; 0 for branch entry 0), so
 * hint order is key order wherever two hints differ and most search probes
 * read the slot array only. Invariant: 16 + 6*count <= heap <= node_size,
 * and every cell lies in [heap, node_size).
 *   leaf cell:   u16 klen, u16 flags, u32 vlen, key, value (inline) or the
 *                u64 NodeID of an overflow node (flags & BPT_F_OVERFLOW)
 *   branch cell: u64 child, u64 subtree key count, u16 klen, key
 * A branch's entry 0 has an empty key (it stands for the lower bound the
 * parent gives); entry i > 0 holds separator s_i: child i-1 keys < s_i <=
 * child i keys.
 * The meta node (root -> meta) holds the tree's constants and its top:
 *   0 u16 magic, 2 u8 kind META, 3 u8 version, 4 u32 node_size,
 *   8 u32 key_max, 12 u32 height, 16 u64 top, 24 u64 count, 32..63 zero.
 */
#ifndef STRATA_BPTREE_BPT_H
#define STRATA_BPTREE_BPT_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "strata/bptree.h"
#include "strata/strata.h"

#define BPT_MAGIC 0x5442u
#define BPT_VERSION 2u /* 2: 6-byte slots with key hints */
#define BPT_HDR 16u
#define BPT_META_SIZE 64u
#define BPT_MAX_HEIGHT 48
#define BPT_F_OVERFLOW 1u
#define BPT_LEAF_CELL 8u    /* leaf cell bytes before the key */
#define BPT_BRANCH_CELL 18u /* branch cell bytes before the key */
#define BPT_SLOT 6u         /* slot bytes: u16 cell offset, u32 key hint */

static inline uint16_t ld16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return v;
}
static inline uint32_t ld32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}
static inline uint64_t ld64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}
static inline void st16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static inline void st32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static inline void st64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

/* ---- header fields ---- */
static inline unsigned n_kind(const uint8_t *n) { return n[2]; }
static inline unsigned n_level(const uint8_t *n) { return n[3]; }
static inline unsigned n_count(const uint8_t *n) { return ld16(n + 4); }
static inline unsigned n_heap(const uint8_t *n) { return ld16(n + 6); }
/* Asks for the lines of node n (ns bytes) a copy or a walk of it reads:
 * the slot array (from `from`) and the cells, not the free gap between. */
static inline void n_prefetch_used(const uint8_t *n, uint32_t ns, uint32_t from)
{
	for (uint32_t o = from, slots = BPT_HDR + BPT_SLOT * n_count(n); o < slots; o += 64)
		__builtin_prefetch(n + o);
	for (uint32_t o = n_heap(n) & ~63u; o < ns; o += 64)
		__builtin_prefetch(n + o);
}
static inline unsigned n_garbage(const uint8_t *n) { return ld16(n + 8); }
static inline unsigned n_pfx(const uint8_t *n) { return ld16(n + 10); }
static inline unsigned n_slot(const uint8_t *n, unsigned i)
{
	return ld16(n + BPT_HDR + BPT_SLOT * i);
}
static inline uint32_t n_hint(const uint8_t *n, unsigned i)
{
	return ld32(n + BPT_HDR + BPT_SLOT * i + 2);
}
static inline void n_set_slot(uint8_t *n, unsigned i, unsigned off, uint32_t hint)
{
	st16(n + BPT_HDR + BPT_SLOT * i, (uint16_t)off);
	st32(n + BPT_HDR + BPT_SLOT * i + 2, hint);
}

/* ---- cells ---- */
static inline const uint8_t *leaf_cell(const uint8_t *n, unsigned i) { return n + n_slot(n, i); }
static inline unsigned lc_klen(const uint8_t *c) { return ld16(c); }
static inline unsigned lc_flags(const uint8_t *c) { return ld16(c + 2); }
static inline uint32_t lc_vlen(const uint8_t *c) { return ld32(c + 4); }
static inline const uint8_t *lc_key(const uint8_t *c) { return c + BPT_LEAF_CELL; }
static inline const uint8_t *lc_val(const uint8_t *c) { return c + BPT_LEAF_CELL + lc_klen(c); }
static inline uint32_t lc_size(const uint8_t *c)
{
	return BPT_LEAF_CELL + lc_klen(c) + ((lc_flags(c) & BPT_F_OVERFLOW) ? 8u : lc_vlen(c));
}
static inline const uint8_t *br_cell(const uint8_t *n, unsigned i) { return n + n_slot(n, i); }
static inline strata_node_id bc_child(const uint8_t *c) { return ld64(c); }
static inline uint64_t bc_count(const uint8_t *c) { return ld64(c + 8); }
static inline unsigned bc_klen(const uint8_t *c) { return ld16(c + 16); }
static inline const uint8_t *bc_key(const uint8_t *c) { return c + BPT_BRANCH_CELL; }
static inline uint32_t bc_size(const uint8_t *c) { return BPT_BRANCH_CELL + bc_klen(c); }

/* 8 bytes as a big-endian number: memcmp order of 8-byte strings. */
static inline uint64_t be64(const uint8_t *p)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return __builtin_bswap64(ld64(p));
#else
	return ld64(p);
#endif
}

/* memcmp order, a prefix first. Inline 8-byte big-endian steps: keys are
 * short and a libc call per probe showed in profiles of the search. */
static inline int key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen, i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t x = be64(a + i), y = be64(b + i);
		if (x != y)
			return x < y ? -1 : 1;
	}
	for (; i < n; i++)
		if (a[i] != b[i])
			return a[i] < b[i] ? -1 : 1;
	return alen < blen ? -1 : alen > blen;
}

/* The hint of a key in a node with prefix length p: bytes p..p+3 as a
 * big-endian number, zero past the key's end. For keys that share the
 * prefix, a < b implies hint(a) <= hint(b), and hint(a) < hint(b) implies
 * a < b. */
static inline uint32_t bpt_hint(const uint8_t *k, size_t klen, unsigned p)
{
	if (klen >= (size_t)p + 4)
		return (uint32_t)k[p] << 24 | (uint32_t)k[p + 1] << 16 | (uint32_t)k[p + 2] << 8 |
		       k[p + 3];
	uint32_t h = 0;
	for (unsigned i = 0; i < 4; i++)
		h = h << 8 | ((size_t)p + i < klen ? (uint32_t)k[p + i] : 0u);
	return h;
}

/* Length of the common prefix of two keys. */
static inline unsigned bpt_lcp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen, i = 0;
	while (i < n && a[i] == b[i])
		i++;
	return (unsigned)i;
}

/* ---- the meta node, decoded ---- */
typedef struct bpt_meta {
	uint32_t node_size;
	uint32_t key_max;
	uint32_t height;
	strata_node_id top;
	uint64_t count;
} bpt_meta;

/* Derived limits of a tree with node size ns. */
static inline uint32_t bpt_cap(uint32_t ns) { return ns - BPT_HDR; }
/* Largest footprint (cell + slot) of one entry: a quarter of the capacity,
 * so a split of an overfull node always yields two valid halves. */
static inline uint32_t bpt_emax(uint32_t ns) { return bpt_cap(ns) / 4; }
uint32_t bpt_key_max(uint32_t node_size);
/* Whether a value of vlen stays in the leaf next to a key of klen. */
static inline bool bpt_inline(uint32_t ns, size_t klen, size_t vlen)
{
	return BPT_SLOT + BPT_LEAF_CELL + klen + vlen <= bpt_emax(ns);
}
/* Used bytes of a branch/leaf node (slots + live cells). */
static inline uint32_t n_used(const uint8_t *n, uint32_t ns)
{
	return BPT_SLOT * n_count(n) + (ns - n_heap(n)) - n_garbage(n);
}
/* The fill bound every non-top node keeps (design/BPTREE.md). */
static inline bool bpt_underfull(uint32_t used, uint32_t ns)
{
	return used < bpt_cap(ns) / 2;
}

void bpt_meta_decode(const uint8_t *p, bpt_meta *m);
void bpt_meta_encode(uint8_t *p, const bpt_meta *m);

/* ---- reading nodes through a snapshot or a transaction ---- */
typedef struct bpt_rd {
	const strata_snapshot *snap; /* exactly one of snap, txn */
	strata_txn *txn;
} bpt_rd;

/* own (optional): set to whether a transaction reader owns the node (born
 * in it: *p is then writable in place, strata_txn_read_own); always 0 for
 * a snapshot. One lookup either way. */
int bpt_rd_node_own(const bpt_rd *r, strata_node_id id, const uint8_t **p, uint32_t *size,
		    int *own);
static inline int bpt_rd_node(const bpt_rd *r, strata_node_id id, const uint8_t **p,
			      uint32_t *size)
{
	return bpt_rd_node_own(r, id, p, size, NULL);
}
/* Root name -> meta: STRATA_EWRONGINDEX if empty or not a B+tree meta.
 * mp, own (optional): the meta node's bytes and whether the reader owns it. */
int bpt_rd_meta_own(const bpt_rd *r, const char *name, strata_node_id *meta_id, bpt_meta *m,
		    const uint8_t **mp, int *own);
static inline int bpt_rd_meta(const bpt_rd *r, const char *name, strata_node_id *meta_id,
			      bpt_meta *m)
{
	return bpt_rd_meta_own(r, name, meta_id, m, NULL, NULL);
}
/* Reads a branch/leaf node and checks its header against the level the
 * path expects: STRATA_ECORRUPT on mismatch. own as bpt_rd_node_own. */
int bpt_rd_tree_node_own(const bpt_rd *r, const bpt_meta *m, strata_node_id id, unsigned level,
			 const uint8_t **p, int *own);
static inline int bpt_rd_tree_node(const bpt_rd *r, const bpt_meta *m, strata_node_id id,
				   unsigned level, const uint8_t **p)
{
	return bpt_rd_tree_node_own(r, m, id, level, p, NULL);
}
/* The value bytes of a leaf cell (resolving an overflow node). */
int bpt_rd_value(const bpt_rd *r, const uint8_t *cell, const void **val, size_t *vlen);

/* ---- searching within a node ---- */
/* First slot whose key is >= key; *found if equal. */
unsigned bpt_leaf_search(const uint8_t *n, const uint8_t *key, size_t klen, bool *found);
/* The child whose range holds key: the last entry i with s_i <= key. */
unsigned bpt_branch_search(const uint8_t *n, const uint8_t *key, size_t klen);

/* ---- building nodes from entry lists (write.c, bulk.c) ---- */
typedef struct bpt_ent {
	const uint8_t *key;
	uint32_t klen;
	/* leaf entries */
	const uint8_t *val; /* inline bytes, or 8 bytes of overflow NodeID */
	uint32_t vlen;
	uint16_t flags;
	/* branch entries */
	strata_node_id child;
	uint64_t count;
} bpt_ent;

static inline uint32_t ent_size(const bpt_ent *e, bool leaf)
{
	if (leaf)
		return BPT_SLOT + BPT_LEAF_CELL + e->klen +
		       ((e->flags & BPT_F_OVERFLOW) ? 8u : e->vlen);
	return BPT_SLOT + BPT_BRANCH_CELL + e->klen;
}
/* Entries of node n into out (room for n_count(n)); pointers into n. */
void bpt_gather(const uint8_t *n, bpt_ent *out);
/* Writes a node of ns bytes holding e[0..cnt) into dst (which must not
 * overlap the entries' bytes). The caller checks they fit. */
/* The prefix length a node built from e[0..cnt) gets. */
unsigned bpt_prefix_of(const bpt_ent *e, unsigned cnt, bool leaf);
void bpt_build(uint8_t *dst, uint32_t ns, unsigned kind, unsigned level, const bpt_ent *e,
	       unsigned cnt);
void bpt_hdr_init(uint8_t *n, unsigned kind, unsigned level);
/* Writes one entry's cell at c; returns its bytes (without the slot). */
uint32_t bpt_put_cell(uint8_t *c, const bpt_ent *e, bool leaf);
/* Bytes e[0..cnt) take in a node (slots included). */
uint32_t bpt_list_size(const bpt_ent *e, unsigned cnt, bool leaf);
/* Where to cut e[0..cnt) (total > cap) into two nodes of at most cap
 * bytes each, as equal as the entry sizes allow (branch pieces keep two
 * entries at least): the first index of the right piece, or 0 if no cut
 * fits. */
unsigned bpt_best_cut(const bpt_ent *e, unsigned cnt, bool leaf, uint32_t cap);
/* Fills a new overflow node (BPT_HDR + vlen bytes, NodeID id) with val and
 * points leaf entry e at it through ref (8 bytes that must outlive e). */
void bpt_overflow_fill(void *node, strata_node_id id, const void *val, size_t vlen, bpt_ent *e,
		       uint8_t ref[8]);
/* Copies node src of ns bytes into dst but for the free gap between its
 * slots and its cells (dst's gap keeps whatever it held). */
void bpt_copy_used(uint8_t *dst, const uint8_t *src, uint32_t ns);
/* Length of the shortest separator s with a < s <= b (a < b). */
uint32_t bpt_sep_len(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);
/* Subtree key count of a node's entries. */
uint64_t bpt_ent_total(const bpt_ent *e, unsigned cnt, bool leaf);

/* Test hook (not exported): when set, separators are full keys instead of
 * the shortest separator, so the bench can measure what truncation wins. */
extern bool bpt_full_separators;

#endif /* STRATA_BPTREE_BPT_H */
