/*
 * crc32c.h — CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the
 * checksum of every on-disk structure. Hardware (SSE4.2 crc32 instruction)
 * when the CPU has it, chosen once at run time; a table-driven portable
 * version otherwise. Both give identical results.
 *
 * strata_crc32c(0, "123456789", 9) == 0xE3069283. The pre- and
 * post-inversion are inside: chain calls by passing the previous result.
 */
#ifndef STRATA_CRC32C_H
#define STRATA_CRC32C_H
#include <stddef.h>
#include <stdint.h>

uint32_t strata_crc32c(uint32_t crc, const void *buf, size_t len);
/* The portable implementation, exposed for tests and benchmarks. */
uint32_t strata_crc32c_sw(uint32_t crc, const void *buf, size_t len);
/* "sse4.2" or "table": what strata_crc32c uses on this CPU. */
const char *strata_crc32c_impl(void);
#endif
