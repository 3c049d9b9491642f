/*
 * peer_spatial.h — the spatial peers of the xtree suite, each behind a
 * small C interface so bench_xtree.c stays C: Boost.Geometry's rtree
 * (rstar<16>, insert-built, and its packing constructor; 2-D and 3-D boxes;
 * peer_boost.cpp), libspatialindex's R*-tree (insert-built, or STR
 * bulk-loaded; peer_sidx.c) and SQLite's R*Tree module
 * (peer_sqlite_rtree.c). Each query returns what the suite
 * cross-checks against its brute-force scan: a hit count, or the sum of the
 * kNN result ids.
 *
 * Boxes are passed as lo[n*d] / hi[n*d], entry after entry.
 */
#ifndef STRATA_BENCH_PEER_SPATIAL_H
#define STRATA_BENCH_PEER_SPATIAL_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Boost.Geometry (STRATA_BENCH_HAVE_BOOST) ---- */
typedef struct peer_boost peer_boost;
/* d: 2 or 3 (else NULL). packed: the bulk (packing) constructor; else one
 * insert per entry. */
peer_boost *peer_boost_build(uint32_t d, const double *lo, const double *hi, const uint64_t *ids,
			     size_t n, int packed);
/* The hits' ids collected into a vector reused across queries (as the
 * X-tree side collects its blocks of ids); returns their count. */
uint64_t peer_boost_window(peer_boost *b, const double *lo, const double *hi);
uint64_t peer_boost_knn(peer_boost *b, const double *pt, unsigned k);
/* The same query; the sum of the k result distances (L2, point to box). */
double peer_boost_knn_dist(peer_boost *b, const double *pt, unsigned k);
void peer_boost_free(peer_boost *b);

/* ---- libspatialindex (STRATA_BENCH_HAVE_SIDX) ---- */
typedef struct peer_sidx peer_sidx;
/* One Index_InsertData per entry (R* variant); NULL on failure. */
peer_sidx *peer_sidx_build(uint32_t d, const double *lo, const double *hi, const uint64_t *ids,
			   size_t n);
/* STR bulk load through Index_CreateWithStream (the library's defaults:
 * capacity 100, fill factor 0.7, R* variant); NULL on failure. */
peer_sidx *peer_sidx_build_str(uint32_t d, const double *lo, const double *hi,
			       const uint64_t *ids, size_t n);
uint64_t peer_sidx_window(peer_sidx *s, const double *lo, const double *hi);
/* Sum of the ids of the k nearest (libspatialindex returns ties beyond k:
 * only the first k are summed; *count gets how many it returned). */
uint64_t peer_sidx_knn(peer_sidx *s, const double *pt, unsigned k, uint64_t *count);
void peer_sidx_free(peer_sidx *s);

/* ---- SQLite R*Tree (STRATA_BENCH_HAVE_SQLITE), d <= 5 ---- */
typedef struct peer_sqlrt peer_sqlrt;
peer_sqlrt *peer_sqlrt_build(uint32_t d, const double *lo, const double *hi, const uint64_t *ids,
			     size_t n);
uint64_t peer_sqlrt_window(peer_sqlrt *q, const double *lo, const double *hi);
void peer_sqlrt_free(peer_sqlrt *q);

#ifdef __cplusplus
}
#endif
#endif
