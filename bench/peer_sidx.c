/*
 * peer_sidx.c — libspatialindex's R*-tree (C API, memory storage) as a
 * peer of the xtree suite: built by one insert per entry, or by the
 * library's STR bulk load (Index_CreateWithStream, which calls
 * RTree::createAndBulkLoadNewRTree with BLM_STR). Not thread-safe (global
 * error state, and the stream callback takes no context: it reads a static
 * cursor): the suite uses it from one thread.
 */
#include "peer_spatial.h"

#ifdef STRATA_BENCH_HAVE_SIDX
#include <stddef.h> /* sidx_api.h needs it first */
#include <stdlib.h>
#include <spatialindex/capi/sidx_api.h>

struct peer_sidx {
	IndexH idx;
	uint32_t d;
};

peer_sidx *peer_sidx_build(uint32_t d, const double *lo, const double *hi, const uint64_t *ids,
			   size_t n)
{
	IndexPropertyH p = IndexProperty_Create();
	IndexProperty_SetIndexType(p, RT_RTree);
	IndexProperty_SetIndexVariant(p, RT_Star);
	IndexProperty_SetIndexStorage(p, RT_Memory);
	IndexProperty_SetDimension(p, d);
	peer_sidx *s = malloc(sizeof *s);
	s->idx = Index_Create(p);
	s->d = d;
	IndexProperty_Destroy(p);
	if (!s->idx) {
		free(s);
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		if (Index_InsertData(s->idx, (int64_t)ids[i], (double *)lo + i * d,
				     (double *)hi + i * d, d, NULL, 0) != RT_None) {
			peer_sidx_free(s);
			return NULL;
		}
	return s;
}

/* The entries the STR stream hands out next (the callback has no context). */
static struct {
	uint32_t d;
	const double *lo, *hi;
	const uint64_t *ids;
	size_t n, next;
} str_src;

static int str_next(int64_t *id, double **lo, double **hi, uint32_t *d, const uint8_t **data,
		    size_t *len)
{
	if (str_src.next == str_src.n)
		return 1; /* done */
	size_t i = str_src.next++;
	*id = (int64_t)str_src.ids[i];
	*lo = (double *)str_src.lo + i * str_src.d;
	*hi = (double *)str_src.hi + i * str_src.d;
	*d = str_src.d;
	*data = NULL;
	*len = 0;
	return 0;
}

peer_sidx *peer_sidx_build_str(uint32_t d, const double *lo, const double *hi,
			       const uint64_t *ids, size_t n)
{
	IndexPropertyH p = IndexProperty_Create();
	IndexProperty_SetIndexType(p, RT_RTree);
	IndexProperty_SetIndexStorage(p, RT_Memory);
	IndexProperty_SetDimension(p, d);
	str_src.d = d, str_src.lo = lo, str_src.hi = hi, str_src.ids = ids;
	str_src.n = n, str_src.next = 0;
	peer_sidx *s = malloc(sizeof *s);
	s->idx = n ? Index_CreateWithStream(p, str_next) : NULL;
	s->d = d;
	IndexProperty_Destroy(p);
	if (!s->idx) {
		free(s);
		return NULL;
	}
	return s;
}

uint64_t peer_sidx_window(peer_sidx *s, const double *lo, const double *hi)
{
	uint64_t n = 0;
	Index_Intersects_count(s->idx, (double *)lo, (double *)hi, s->d, &n);
	return n;
}

uint64_t peer_sidx_knn(peer_sidx *s, const double *pt, unsigned k, uint64_t *count)
{
	int64_t *ids = NULL;
	uint64_t n = k, sum = 0;
	Index_NearestNeighbors_id(s->idx, (double *)pt, (double *)pt, s->d, &ids, &n);
	for (uint64_t i = 0; i < n && i < k; i++)
		sum += (uint64_t)ids[i];
	*count = n;
	Index_Free(ids);
	return sum;
}

void peer_sidx_free(peer_sidx *s)
{
	if (!s)
		return;
	Index_Destroy(s->idx);
	free(s);
}
#endif
