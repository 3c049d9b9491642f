/*
 * crc32c.c — CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) for every
 * on-disk checksum.
 *
 * Two implementations with identical results:
 *   - hardware: the SSE4.2 crc32 instruction, 8 bytes per instruction once
 *     the pointer is 8-byte aligned. Compiled with a per-function target
 *     attribute (not -msse4.2 for the whole library), so the library still
 *     runs on x86-64 CPUs without SSE4.2;
 *   - table: slicing-by-8, eight 256-entry tables, 8 bytes per step, for
 *     other CPUs and other architectures.
 *
 * Invariants: strata_crc32c dispatches through `impl`, which is resolved once
 * (first call) and only ever holds one of the two functions; every thread
 * that races on the first call computes and stores the same value, so a
 * relaxed atomic is enough. The tables are built exactly once (pthread_once)
 * before any table lookup.
 *
 * Both functions take and return the finished CRC (pre- and post-inverted
 * inside), so crc(a || b) == crc32c(crc32c(0, a), b).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "crc32c.h"
#include "internal.h"

#if defined(__x86_64__)
#include <nmmintrin.h>
#define CRC_HAVE_SSE42 1
#endif

#define CRC32C_POLY 0x82F63B78u

/* ---- table version: slicing-by-8 ------------------------------------------- */

/* tab[0] is the classic byte-at-a-time table; tab[k][b] is the CRC of byte b
 * followed by k zero bytes, so eight lookups advance the CRC by 8 bytes. */
static uint32_t tab[8][256];
static pthread_once_t tab_once = PTHREAD_ONCE_INIT;

static void tab_build(void)
{
	for (uint32_t b = 0; b < 256; b++) {
		uint32_t c = b;
		for (int i = 0; i < 8; i++)
			c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1u)));
		tab[0][b] = c;
	}
	for (int k = 1; k < 8; k++)
		for (uint32_t b = 0; b < 256; b++)
			tab[k][b] = (tab[k - 1][b] >> 8) ^ tab[0][tab[k - 1][b] & 0xffu];
}

/* Little-endian loads byte by byte: correct on any byte order, and compilers
 * turn them into one load where that is legal. */
static inline uint32_t load_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t sw_bytes(uint32_t c, const unsigned char *p, size_t len)
{
	while (len--)
		c = (c >> 8) ^ tab[0][(c ^ *p++) & 0xffu];
	return c;
}

uint32_t strata_crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&tab_once, tab_build);
	const unsigned char *p = buf;
	uint32_t c = ~crc;
	for (; len >= 8; p += 8, len -= 8) {
		uint32_t lo = load_le32(p) ^ c, hi = load_le32(p + 4);
		c = tab[7][lo & 0xff] ^ tab[6][(lo >> 8) & 0xff] ^ tab[5][(lo >> 16) & 0xff] ^
		    tab[4][lo >> 24] ^ tab[3][hi & 0xff] ^ tab[2][(hi >> 8) & 0xff] ^
		    tab[1][(hi >> 16) & 0xff] ^ tab[0][hi >> 24];
	}
	return ~sw_bytes(c, p, len);
}

/* ---- hardware version ------------------------------------------------------- */

#ifdef CRC_HAVE_SSE42
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint32_t c = ~crc;
	/* Bytes up to an 8-byte boundary, so the main loop's loads never split
	 * a cache line. */
	for (; len && ((uintptr_t)p & 7u); len--)
		c = _mm_crc32_u8(c, *p++);
	uint64_t c64 = c;
	for (; len >= 8; p += 8, len -= 8) {
		uint64_t w;
		memcpy(&w, p, sizeof w); /* aligned here; memcpy keeps it strictly legal C */
		c64 = _mm_crc32_u64(c64, w);
	}
	c = (uint32_t)c64;
	for (; len; len--)
		c = _mm_crc32_u8(c, *p++);
	return ~c;
}
#endif

/* ---- dispatch --------------------------------------------------------------- */

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);
static _Atomic(crc_fn) impl;

static crc_fn resolve(void)
{
#ifdef CRC_HAVE_SSE42
	/* Needed when we run before the CPU-model constructor (from another
	 * constructor); harmless otherwise. */
	__builtin_cpu_init();
	if (__builtin_cpu_supports("sse4.2"))
		return crc32c_hw;
#endif
	return strata_crc32c_sw;
}

static crc_fn get_impl(void)
{
	crc_fn f = atomic_load_explicit(&impl, memory_order_relaxed);
	if (STRATA_UNLIKELY(!f)) {
		f = resolve();
		atomic_store_explicit(&impl, f, memory_order_relaxed);
	}
	return f;
}

uint32_t strata_crc32c(uint32_t crc, const void *buf, size_t len)
{
	return get_impl()(crc, buf, len);
}

const char *strata_crc32c_impl(void)
{
	return get_impl() == strata_crc32c_sw ? "table" : "sse4.2";
}
