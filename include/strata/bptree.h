/*
 * bptree.h — the B+tree: an ordered key-value index stored in Strata nodes.
 *
 * A B+tree lives under one root name. Keys are byte strings ordered by
 * memcmp (a shorter key that is a prefix of a longer one sorts first);
 * values are byte strings of any size up to STRATA_BPT_VALUE_MAX. Writes go
 * through a strata_txn that named the tree's root when it began; one
 * transaction may change several trees (B+trees and X-trees) and commits or
 * aborts them together. Reads go through a strata_snapshot (or, to see a
 * transaction's own writes, through that transaction).
 *
 * Status codes are those of strata.h. The bad-input codes — STRATA_EINVAL,
 * STRATA_EKEYSIZE, STRATA_EWRONGINDEX, STRATA_EEXIST, STRATA_ENOTFOUND,
 * STRATA_ENAME, STRATA_ENOTLOCKED — are found before anything is changed:
 * the tree is untouched and the transaction may go on. Any other error from
 * a write (STRATA_ENOMEM, STRATA_EFULL, STRATA_EBUSY, STRATA_ECORRUPT, ...)
 * may leave the transaction's view of the tree half-changed: abort it.
 *
 * Pointers returned by reads (values, cursor keys and values) stay valid
 * and unchanged until the snapshot is closed; read through a transaction,
 * until that transaction commits, aborts or next writes to the same tree.
 *
 * design/BPTREE.md explains the node formats and the decisions behind them.
 */
#ifndef STRATA_BPTREE_H
#define STRATA_BPTREE_H

#include <stddef.h>
#include <stdint.h>

#include "strata/export.h"
#include "strata/strata.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Node sizes a tree may be created with (bytes, power of two not required). */
#define STRATA_BPT_NODE_MIN 256u
#define STRATA_BPT_NODE_MAX 32768u
#define STRATA_BPT_NODE_DEFAULT 4096u
/* Longest key any tree accepts. A tree's own limit (strata_bpt_stats
 * key_max) is min(STRATA_BPT_KEY_MAX, (node_size - 16) / 4 - 24): 996
 * bytes with the default node size, 36 with the smallest. */
#define STRATA_BPT_KEY_MAX 1024u
/* Longest value: one overflow node holds it. */
#define STRATA_BPT_VALUE_MAX (STRATA_NODE_MAX - 16u)

/* Node kinds (strata_node_info.kind) a B+tree uses; 0x14..0x1F reserved. */
#define STRATA_BPT_KIND_META 0x10u
#define STRATA_BPT_KIND_BRANCH 0x11u
#define STRATA_BPT_KIND_LEAF 0x12u
#define STRATA_BPT_KIND_OVERFLOW 0x13u

typedef struct strata_bpt_options {
	uint32_t node_size; /* STRATA_BPT_NODE_MIN..STRATA_BPT_NODE_MAX; default 4096 */
} strata_bpt_options;

/* Fills *opts with defaults. */
STRATA_API void strata_bpt_options_init(strata_bpt_options *opts);

/* Creates an empty B+tree under root `name`, which txn must have named at
 * begin. opts may be NULL (defaults).
 * Errors: STRATA_EINVAL (NULL txn, bad node_size), STRATA_EEXIST (the root
 *         is not empty), STRATA_ENAME, STRATA_ENOTLOCKED, STRATA_ENOMEM. */
STRATA_API int strata_bpt_create(strata_txn *txn, const char *name, const strata_bpt_options *opts);

/* put flags */
#define STRATA_BPT_NOOVERWRITE 1u /* refuse to replace an existing key: STRATA_EEXIST */

/* Inserts key -> value, or replaces the value of an existing key.
 * val may be NULL only with vlen 0.
 * Errors: STRATA_EINVAL (NULL txn/name, NULL key or val with a length,
 *           unknown flag, vlen > STRATA_BPT_VALUE_MAX),
 *         STRATA_EKEYSIZE (klen 0 or above the tree's key_max),
 *         STRATA_EEXIST (NOOVERWRITE and the key exists),
 *         STRATA_EWRONGINDEX (the root is empty or holds no B+tree),
 *         STRATA_ENAME, STRATA_ENOTLOCKED, STRATA_ESTALE,
 *         then the abort-the-transaction errors (see the top of this file). */
STRATA_API int strata_bpt_put(strata_txn *txn, const char *name, const void *key, size_t klen,
			      const void *val, size_t vlen, unsigned flags);

/* Deletes key. Errors: as strata_bpt_put; STRATA_ENOTFOUND if absent. */
STRATA_API int strata_bpt_del(strata_txn *txn, const char *name, const void *key, size_t klen);

/* Looks key up: *val points at its bytes (zero-copy; valid as stated at the
 * top of this file), *vlen is their length. vlen may be NULL.
 * Errors: STRATA_ENOTFOUND (no such key, or no such root name at the
 *         snapshot), STRATA_EKEYSIZE, STRATA_EINVAL, STRATA_EWRONGINDEX,
 *         STRATA_ESTALE / STRATA_ENOTVISIBLE (a root from elsewhere),
 *         STRATA_ECORRUPT (a node fails its header check). */
STRATA_API int strata_bpt_get(const strata_snapshot *snap, const char *name, const void *key,
			      size_t klen, const void **val, size_t *vlen);
/* The same inside a write transaction: sees its own writes. */
STRATA_API int strata_bpt_txn_get(strata_txn *txn, const char *name, const void *key, size_t klen,
				  const void **val, size_t *vlen);

/* Number of keys k with lo <= k < hi, in O(height * fanout): branch entries
 * carry subtree counts. lo NULL (with lolen 0): from the first key; hi NULL
 * (with hilen 0): to the end. Errors: as strata_bpt_get (STRATA_EKEYSIZE
 * is not returned: bounds may be any length). */
STRATA_API int strata_bpt_count(const strata_snapshot *snap, const char *name, const void *lo,
				size_t lolen, const void *hi, size_t hilen, uint64_t *count);

/* ---- cursors ---------------------------------------------------------------
 * A cursor walks a tree in key order in either direction. It keeps the path
 * from the top to its leaf (there are no sibling links; design/BPTREE.md),
 * so next/prev are O(1) amortized. A cursor is positioned or unpositioned;
 * the move functions return STRATA_ENOTFOUND when they fall off an end (the
 * cursor is then unpositioned) or the tree is empty. */
typedef struct strata_bpt_cursor strata_bpt_cursor;

/* Opens an unpositioned cursor on tree `name` as of the snapshot, which
 * must stay open while the cursor is used. On any error *out is NULL (when
 * out is not).
 * Errors: STRATA_EINVAL, STRATA_ENOTFOUND (no such root name),
 *         STRATA_EWRONGINDEX, STRATA_ENOMEM, STRATA_ECORRUPT. */
STRATA_API int strata_bpt_cursor_open(const strata_snapshot *snap, const char *name,
				      strata_bpt_cursor **out);
/* The same through a transaction; a write to this tree in the transaction
 * invalidates the cursor (close it and open a new one). */
STRATA_API int strata_bpt_txn_cursor_open(strata_txn *txn, const char *name,
					  strata_bpt_cursor **out);
/* NULL is accepted. */
STRATA_API void strata_bpt_cursor_close(strata_bpt_cursor *cur);

/* Positions at the first key >= key (any length, NULL only with klen 0). */
STRATA_API int strata_bpt_cursor_seek(strata_bpt_cursor *cur, const void *key, size_t klen);
STRATA_API int strata_bpt_cursor_first(strata_bpt_cursor *cur);
STRATA_API int strata_bpt_cursor_last(strata_bpt_cursor *cur);
/* From an unpositioned cursor, next = first and prev = last. */
STRATA_API int strata_bpt_cursor_next(strata_bpt_cursor *cur);
STRATA_API int strata_bpt_cursor_prev(strata_bpt_cursor *cur);
/* The current entry (any out-pointer may be NULL). Errors: STRATA_ENOTFOUND
 * (unpositioned), STRATA_ECORRUPT, STRATA_ESTALE (overflow node). */
STRATA_API int strata_bpt_cursor_get(const strata_bpt_cursor *cur, const void **key, size_t *klen,
				     const void **val, size_t *vlen);

/* ---- bulk load ---------------------------------------------------------------
 * The source yields entries in strictly increasing key order: it returns 1
 * with an entry, 0 at the end, or a negative status to stop the load (which
 * then returns that status). Pointers it yields need only live until its
 * next call. */
typedef int (*strata_bpt_source_fn)(void *ctx, const void **key, size_t *klen, const void **val,
				    size_t *vlen);

/* Loads an empty tree bottom-up with full nodes (the last node of a level
 * shares with its neighbour so that it is at least half full).
 * Errors: STRATA_EINVAL (the tree is not empty, or a key is not greater
 *         than the one before: the tree is left empty and unchanged),
 *         STRATA_EKEYSIZE, STRATA_EWRONGINDEX, the source's own status,
 *         then the abort-the-transaction errors. */
STRATA_API int strata_bpt_load(strata_txn *txn, const char *name, strata_bpt_source_fn next,
			       void *ctx);

/* ---- statistics and the checker -------------------------------------------- */
typedef struct strata_bpt_stats {
	uint64_t count;          /* keys */
	uint32_t height;         /* levels; 1 = the top is a leaf */
	uint32_t node_size;
	uint32_t key_max;
	uint64_t branch_nodes;
	uint64_t leaf_nodes;
	uint64_t overflow_nodes;
	uint64_t bytes;          /* all node bytes: meta + branches + leaves + overflow */
	uint64_t key_bytes;      /* sum of key lengths in leaves */
	uint64_t value_bytes;    /* sum of value lengths */
	uint64_t separator_bytes; /* sum of separator key lengths in branches */
	double leaf_fill;        /* used bytes / capacity over all leaves (0..1) */
	double branch_fill;      /* the same over branches (0 when none) */
} strata_bpt_stats;

/* Walks the whole tree (the checker's walk, reporting nothing).
 * Errors: as strata_bpt_get; STRATA_ECORRUPT if the walk found damage
 * (*st then holds what the walk counted). */
STRATA_API int strata_bpt_stats_get(const strata_snapshot *snap, const char *name,
				    strata_bpt_stats *st);

/* Validates the tree as of the snapshot: every node's header and bounds,
 * key order within and across nodes (the in-order leaf sequence), each
 * separator bounding its subtree, uniform leaf depth, the fill bound of
 * every non-top node, overflow nodes (kind, length), subtree counts and the
 * total count. Each problem goes to `report` (may be NULL). Returns 0 if
 * clean, STRATA_ECORRUPT if not, STRATA_EWRONGINDEX / STRATA_ENOTFOUND if
 * the root holds no B+tree. Shared by the tests and `strata check`. */
STRATA_API int strata_bpt_check(const strata_snapshot *snap, const char *name,
				strata_report_fn report, void *ctx);

/* 1 if root `name` holds a B+tree at the snapshot, else 0. */
STRATA_API int strata_bpt_is_bptree(const strata_snapshot *snap, const char *name);

#ifdef __cplusplus
}
#endif
#endif /* STRATA_BPTREE_H */
