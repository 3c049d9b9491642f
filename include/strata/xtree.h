/*
 * xtree.h — the X-tree: a d-dimensional (1..32) spatial index over the
 * Strata substrate (Berchtold, Keim, Kriegel, VLDB 1996), with R*-tree
 * insertion, supernodes, STR bulk loading and best-first k-nearest-neighbour
 * search. design/XTREE.md explains the layout and every parameter.
 *
 * A tree lives under a root name of a strata_store. Writes take a
 * strata_txn that named that root when it began (one transaction may change
 * several trees, and other roots); every change is copy-on-write, so the
 * tree runs unchanged IN_MEMORY and DURABLE and becomes visible atomically
 * at commit. Queries take a strata_snapshot and never block writers.
 *
 * Entries are boxes (min <= max in every dimension) or points (min == max)
 * with a 64-bit id chosen by the caller. Duplicates (same box and id) are
 * allowed; delete removes one of them.
 *
 * Errors common to every function (besides those of strata.h that the
 * substrate returns, e.g. STRATA_ENOMEM, STRATA_ENOTLOCKED):
 *   STRATA_EINVAL       NULL argument or bad option
 *   STRATA_ENOTFOUND    no such root name (snapshot functions)
 *   STRATA_EWRONGINDEX  the root is empty or holds something else than an X-tree
 *   STRATA_ESTALE       the root's node no longer exists (stale NodeID)
 *   STRATA_EDIMS        `dims` is not the tree's dimension count
 *   STRATA_ECOORD       a NaN or infinite coordinate, or min > max
 *   STRATA_EFULL        (writes) the tree would grow past STRATA_XT_LEVELS_MAX
 *                       levels (far beyond any real data set)
 * Bad input is detected before anything is changed: the tree is untouched.
 * A substrate failure in the middle of a write (STRATA_ENOMEM, STRATA_EFULL,
 * STRATA_EIO) may leave the transaction's copy of the tree half changed:
 * abort the transaction then.
 */
#ifndef STRATA_XTREE_H
#define STRATA_XTREE_H

#include <stddef.h>
#include <stdint.h>

#include "strata/strata.h"

#ifdef __cplusplus
extern "C" {
#endif

#define STRATA_XT_DIMS_MAX 32
#define STRATA_XT_LEVELS_MAX 32

/* Tree parameters, fixed at creation. 0 in a field means its default. */
typedef struct strata_xt_options {
	uint32_t node_size;       /* bytes of one block (a normal node); a power of two
				     in 512..65536; default: 1024 in 1-3 dimensions,
				     else 4096, or more so a directory node holds at
				     least 32 entries */
	uint32_t min_fill_pct;    /* R* minimum fill m, % of capacity; default 40 */
	uint32_t reinsert_pct;    /* R* forced reinsert share p, %; default 30 */
	uint32_t choose_p;        /* R* nearly-minimum-overlap candidates; default 32 */
	uint32_t max_overlap_pct; /* X-tree MAX_OVERLAP, %; default 20 */
	uint32_t min_fanout_pct;  /* X-tree MIN_FANOUT, %; default 35 */
	uint32_t bulk_fill_pct;   /* STR bulk load fill, %; default 100 */
} strata_xt_options;

/* Creates an empty X-tree of `dims` dimensions under root `name`, which txn
 * named at begin and which must be empty. opts may be NULL (defaults).
 * Errors: STRATA_EEXIST (the root already holds something), STRATA_EDIMS
 *         (dims not in 1..32), STRATA_EINVAL (bad option). */
STRATA_API int strata_xt_create(strata_txn *txn, const char *name, uint32_t dims,
				const strata_xt_options *opts);

/* Inserts the box [min, max] (max NULL: the point min) with `id`. */
STRATA_API int strata_xt_insert(strata_txn *txn, const char *name, uint32_t dims,
				const double *min, const double *max, uint64_t id);

/* Deletes one entry equal to box [min, max] (max NULL: a point) and id.
 * Errors: STRATA_ENOTFOUND (no such entry; nothing changed). */
STRATA_API int strata_xt_delete(strata_txn *txn, const char *name, uint32_t dims,
				const double *min, const double *max, uint64_t id);

/* Moves entry id from box [omin, omax] to [nmin, nmax] (a NULL max: a
 * point): delete + insert in one step. Errors: STRATA_ENOTFOUND (no such
 * entry; nothing changed). */
STRATA_API int strata_xt_move(strata_txn *txn, const char *name, uint32_t dims,
			      const double *omin, const double *omax, const double *nmin,
			      const double *nmax, uint64_t id);

/* Bulk-loads n entries into an empty tree by Sort-Tile-Recursive packing.
 * mins and maxs hold n * dims coordinates, entry after entry (maxs NULL:
 * points); ids holds n ids. The arrays are only read during the call.
 * Errors: STRATA_EINVAL (the tree is not empty, or n == 0). */
STRATA_API int strata_xt_bulk_load(strata_txn *txn, const char *name, uint32_t dims, size_t n,
				   const double *mins, const double *maxs, const uint64_t *ids);

/* Number of entries, as of the snapshot. */
STRATA_API int strata_xt_count(const strata_snapshot *snap, const char *name, uint64_t *count);
/* The same as the transaction sees it (its own changes included). */
STRATA_API int strata_xt_txn_count(strata_txn *txn, const char *name, uint64_t *count);
/* The tree's dimension count (so a tool can parse input for it). */
STRATA_API int strata_xt_dims(const strata_snapshot *snap, const char *name, uint32_t *dims);

typedef struct strata_xt_stats {
	uint32_t dims;
	uint32_t height;            /* levels; 0 for an empty tree, 1: the root is a leaf */
	uint64_t count;             /* entries */
	uint32_t node_size;         /* bytes per block */
	uint32_t leaf_capacity;     /* entries in a one-block leaf */
	uint32_t dir_capacity;      /* entries in a one-block directory node */
	uint64_t nodes;             /* all levels */
	uint64_t nodes_per_level[STRATA_XT_LEVELS_MAX]; /* [0]: leaves */
	uint64_t supernodes;        /* directory nodes of more than one block */
	uint64_t supernode_blocks;  /* their blocks, together */
	uint32_t supernode_max_blocks;
	uint64_t bytes;             /* node bytes, all levels */
	double leaf_fill;           /* mean entries / capacity over leaves */
	double dir_fill;            /* the same over directory nodes */
	double overlap;             /* mean over directory nodes of the summed pairwise
				       intersection volume of their entries divided by
				       the node's own volume (0: no overlap) */
} strata_xt_stats;

STRATA_API int strata_xt_stats_get(const strata_snapshot *snap, const char *name,
				   strata_xt_stats *st);

/* ---- window queries ------------------------------------------------------- */
typedef enum strata_xt_pred {
	STRATA_XT_INTERSECTS = 0, /* entries sharing at least one point with the box
				     (boxes are closed: touching counts) */
	STRATA_XT_CONTAINS = 1,   /* entries that contain the query box */
	STRATA_XT_WITHIN = 2      /* entries that lie within the query box */
} strata_xt_pred;

/* Called once per hit with the entry's id and box (dims coordinates each,
 * valid during the call only). Return 0 to go on, anything else to stop the
 * query, which then returns that value. */
typedef int (*strata_xt_hit_fn)(void *ctx, uint64_t id, const double *min, const double *max);

/* Reports every entry matching `pred` against [min, max] (max NULL: a
 * point), in no particular order. Errors: STRATA_EINVAL (bad pred). */
STRATA_API int strata_xt_query(const strata_snapshot *snap, const char *name, uint32_t dims,
			       strata_xt_pred pred, const double *min, const double *max,
			       strata_xt_hit_fn fn, void *ctx);

/* ---- nearest neighbours ----------------------------------------------------
 * The distance of an entry is the distance from the query point to the
 * nearest point of its box (0 inside). Results come nearest first; among
 * equal distances, by ascending id. That order is total, so the first k
 * results are exactly determined: kNN returns exactly min(k, count) of them. */
typedef enum strata_xt_metric {
	STRATA_XT_L2 = 0,  /* Euclidean */
	STRATA_XT_L1 = 1,  /* Manhattan */
	STRATA_XT_LINF = 2 /* Chebyshev (maximum) */
} strata_xt_metric;

/* Called with each result in order (min, max valid during the call only);
 * return nonzero to stop (returned). */
typedef int (*strata_xt_knn_fn)(void *ctx, uint64_t id, double dist, const double *min,
				const double *max);

/* The k nearest entries to `point`. Errors: STRATA_EINVAL (k == 0, bad metric). */
STRATA_API int strata_xt_knn(const strata_snapshot *snap, const char *name, uint32_t dims,
			     const double *point, uint32_t k, strata_xt_metric metric,
			     strata_xt_knn_fn fn, void *ctx);

/* Distance browsing: a cursor that yields entries nearest first, as many as
 * asked for, doing only the work each result needs. It borrows the snapshot,
 * which must stay open until the cursor is closed. */
typedef struct strata_xt_cursor strata_xt_cursor;

/* On any error *out is NULL (when out is not). */
STRATA_API int strata_xt_cursor_open(const strata_snapshot *snap, const char *name, uint32_t dims,
				     const double *point, strata_xt_metric metric,
				     strata_xt_cursor **out);
/* The next result: 0 and *id, *dist (and the entry's box in *min, *max,
 * optional, valid until the next call on the cursor); STRATA_ENOTFOUND when
 * every entry was returned; STRATA_ENOMEM; STRATA_ECORRUPT. */
STRATA_API int strata_xt_cursor_next(strata_xt_cursor *cur, uint64_t *id, double *dist,
				     const double **min, const double **max);
/* Nodes read so far (for measurements). */
STRATA_API uint64_t strata_xt_cursor_nodes(const strata_xt_cursor *cur);
/* NULL is accepted. */
STRATA_API void strata_xt_cursor_close(strata_xt_cursor *cur);

/* ---- query handles -----------------------------------------------------------
 * A handle is a tree opened once as of one snapshot: the root name looked
 * up, the meta node resolved and checked, so each query through it starts
 * at the top node. The by-name functions above open the tree on every call
 * (a catalog lookup of the name and the meta node: about 390 instructions,
 * more than a small window query's own work); they are thin wrappers over
 * these.
 *
 * Lifetime (as LMDB states its pointer rules):
 *  - A handle borrows its snapshot. It is valid until strata_xt_handle_close()
 *    or strata_snapshot_close() of that snapshot, whichever comes first. After
 *    the snapshot is closed, the only valid call on the handle is
 *    strata_xt_handle_close() (which never touches the snapshot), so closing
 *    the two in either order is fine.
 *  - It sees the tree exactly as of the snapshot's epoch, never a later
 *    commit: for newer data open a new snapshot and a new handle.
 *  - It is used by one thread at a time, like its snapshot (it only reads,
 *    but the snapshot's rule applies to everything that borrows it).
 *  - A cursor opened through a handle borrows the snapshot, not the handle:
 *    the handle may be closed while the cursor stays open.
 *  - Boxes passed to callbacks are valid during the call only, as above. */
typedef struct strata_xt_handle strata_xt_handle;

/* Errors: STRATA_ENOTFOUND, STRATA_EWRONGINDEX, STRATA_ESTALE (as by name),
 *         STRATA_ENOMEM. */
STRATA_API int strata_xt_handle_open(const strata_snapshot *snap, const char *name,
				     strata_xt_handle **out);
/* NULL is accepted. */
STRATA_API void strata_xt_handle_close(strata_xt_handle *h);
/* The tree's dimension count and entry count as of the handle's snapshot. */
STRATA_API uint32_t strata_xt_handle_dims(const strata_xt_handle *h);
STRATA_API uint64_t strata_xt_handle_count(const strata_xt_handle *h);

/* strata_xt_query, strata_xt_knn and strata_xt_cursor_open through a handle:
 * the same arguments, results and errors. */
STRATA_API int strata_xt_handle_query(const strata_xt_handle *h, uint32_t dims,
				      strata_xt_pred pred, const double *min, const double *max,
				      strata_xt_hit_fn fn, void *ctx);
STRATA_API int strata_xt_handle_knn(const strata_xt_handle *h, uint32_t dims, const double *point,
				    uint32_t k, strata_xt_metric metric, strata_xt_knn_fn fn,
				    void *ctx);
STRATA_API int strata_xt_handle_cursor(const strata_xt_handle *h, uint32_t dims,
				       const double *point, strata_xt_metric metric,
				       strata_xt_cursor **out);

/* Hits in blocks: called with n >= 1 ids of matching entries, at most one
 * leaf's worth (and at most 64) per call, in no particular order. `ids` is
 * valid during the call only (it may point into the tree's own node). Return
 * 0 to go on, anything else to stop the query, which then returns that
 * value. */
typedef int (*strata_xt_ids_fn)(void *ctx, const uint64_t *ids, size_t n);

/* strata_xt_handle_query reporting ids only, a block per call instead of
 * one call per hit: no box is gathered and no call made per hit (about a
 * third of the instructions of a window with ~1000 hits, 100k 2-D boxes).
 * The same hits as strata_xt_handle_query with the same arguments.
 * Errors (as strata_xt_handle_query): STRATA_EINVAL (h or fn NULL, bad
 * pred), STRATA_EDIMS, STRATA_ECOORD; from reading the nodes
 * STRATA_ESTALE, STRATA_ECORRUPT; or the callback's nonzero value. */
STRATA_API int strata_xt_handle_query_ids(const strata_xt_handle *h, uint32_t dims,
					  strata_xt_pred pred, const double *min,
					  const double *max, strata_xt_ids_fn fn, void *ctx);

/* ---- the invariant checker --------------------------------------------------
 * Checks the tree as of the snapshot: node kinds, levels (all leaves at
 * level 0), every directory MBR exactly the union of its child's entries,
 * fanout bounds, supernode sizes (whole blocks, directory nodes only), split
 * histories (non-empty, only the tree's dimensions), finite coordinates with
 * min <= max, and the entry count. Each problem goes to `report` (may be
 * NULL). Returns 0 if clean, STRATA_ECORRUPT if not, or the error that kept
 * it from reading the tree. */
STRATA_API int strata_xt_check(const strata_snapshot *snap, const char *name,
			       strata_report_fn report, void *ctx);

/* Visits every node (parents before children) with its level (0: leaf),
 * size in blocks, entry count and MBR (dims coordinates each, valid during
 * the call). Return nonzero from fn to stop (returned). For drawing and
 * inspection tools. */
typedef int (*strata_xt_node_fn)(void *ctx, uint32_t level, uint32_t blocks, uint32_t count,
				 const double *min, const double *max);
STRATA_API int strata_xt_nodes(const strata_snapshot *snap, const char *name,
			       strata_xt_node_fn fn, void *ctx);

/* True if the node `id` (as of the snapshot) is an X-tree meta node: how
 * `strata check` finds the roots it should hand to strata_xt_check. */
STRATA_API int strata_xt_is_tree(const strata_snapshot *snap, strata_node_id id);

#ifdef __cplusplus
}
#endif
#endif /* STRATA_XTREE_H */
