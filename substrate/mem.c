/*
 * mem.c — the allocation funnel. Every byte the substrate allocates comes
 * through here, so one switch (STRATA_HAVE_JEMALLOC) moves the whole library
 * between jemalloc and libc malloc; sanitizer builds use libc so ASan/TSan see
 * every allocation.
 *
 * jemalloc is used through its non-standard API (mallocx/sdallocx): sized
 * deallocation skips the size lookup on free, and MALLOCX_ALIGN gives the
 * segment alignment without over-allocation.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

#ifdef STRATA_HAVE_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

void *strata_mem_alloc(size_t size)
{
#ifdef STRATA_HAVE_JEMALLOC
	return size ? mallocx(size, 0) : NULL;
#else
	return malloc(size);
#endif
}

void *strata_mem_calloc(size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size)
		return NULL;
#ifdef STRATA_HAVE_JEMALLOC
	return (n && size) ? mallocx(n * size, MALLOCX_ZERO) : NULL;
#else
	return calloc(n, size);
#endif
}

void *strata_mem_realloc(void *p, size_t old_size, size_t new_size)
{
	(void)old_size;
#ifdef STRATA_HAVE_JEMALLOC
	if (!p)
		return strata_mem_alloc(new_size);
	return rallocx(p, new_size, 0);
#else
	return realloc(p, new_size);
#endif
}

void *strata_mem_aligned(size_t align, size_t size)
{
#ifdef STRATA_HAVE_JEMALLOC
	return mallocx(size, MALLOCX_ALIGN(align));
#else
	void *p = NULL;
	return posix_memalign(&p, align, size) == 0 ? p : NULL;
#endif
}

void strata_mem_free(void *p, size_t size)
{
	if (!p)
		return;
#ifdef STRATA_HAVE_JEMALLOC
	if (size)
		sdallocx(p, size, 0);
	else
		dallocx(p, 0);
#else
	(void)size;
	free(p);
#endif
}

/* Large tables that are mostly never touched (object-table directories):
 * anonymous mappings cost nothing until a page is written. */
void *strata_mem_zmap(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

void strata_mem_zunmap(void *p, size_t size)
{
	if (p)
		munmap(p, size);
}

const char *strata_mem_backend(void)
{
#ifdef STRATA_HAVE_JEMALLOC
	return "jemalloc";
#else
	return "libc";
#endif
}
