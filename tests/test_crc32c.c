/*
 * test_crc32c.c — CRC-32C: published check values (the "123456789" check and
 * the RFC 3720 appendix B.4 vectors) for both implementations, chaining, and
 * the hardware and table versions agreeing on every length 0..1024 at every
 * start alignment 0..15, plus a few large buffers.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "crc32c.h"
#include "support/model.h"

TestSuite(crc32c, .fini = test_leak_check);

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);
static const crc_fn impls[] = {strata_crc32c, strata_crc32c_sw};
static const char *const impl_names[] = {"dispatch", "table"};

static void check_vector(const void *buf, size_t len, uint32_t want, const char *what)
{
	for (int i = 0; i < 2; i++) {
		uint32_t got = impls[i](0, buf, len);
		cr_assert_eq(got, want, "%s (%s): got 0x%08x want 0x%08x", what, impl_names[i], got, want);
	}
}

Test(crc32c, check_value)
{
	check_vector("123456789", 9, 0xE3069283u, "123456789");
}

Test(crc32c, empty_is_identity)
{
	cr_assert_eq(strata_crc32c(0, NULL, 0), 0);
	cr_assert_eq(strata_crc32c_sw(0, NULL, 0), 0);
	cr_assert_eq(strata_crc32c(0xdeadbeef, "x", 0), 0xdeadbeef);
	cr_assert_eq(strata_crc32c_sw(0xdeadbeef, "x", 0), 0xdeadbeef);
}

Test(crc32c, rfc3720_vectors)
{
	unsigned char b[32];
	memset(b, 0, sizeof b);
	check_vector(b, 32, 0x8A9136AAu, "32 zero bytes");
	memset(b, 0xff, sizeof b);
	check_vector(b, 32, 0x62A8AB43u, "32 0xFF bytes");
	for (int i = 0; i < 32; i++)
		b[i] = (unsigned char)i;
	check_vector(b, 32, 0x46DD794Eu, "32 incrementing bytes");
	for (int i = 0; i < 32; i++)
		b[i] = (unsigned char)(31 - i);
	check_vector(b, 32, 0x113FDB5Cu, "32 decrementing bytes");
	static const unsigned char read_pdu[48] = {
		0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
		0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
	check_vector(read_pdu, sizeof read_pdu, 0xD9963A56u, "iSCSI read PDU");
}

static void fill_random(unsigned char *p, size_t n, uint64_t seed)
{
	test_rng r = {seed};
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)rng_next(&r);
}

Test(crc32c, chaining_equals_whole)
{
	unsigned char buf[777];
	fill_random(buf, sizeof buf, 42);
	for (int i = 0; i < 2; i++) {
		uint32_t whole = impls[i](0, buf, sizeof buf);
		for (size_t cut = 0; cut <= sizeof buf; cut += 37) {
			uint32_t c = impls[i](0, buf, cut);
			c = impls[i](c, buf + cut, sizeof buf - cut);
			cr_assert_eq(c, whole, "%s: split at %zu", impl_names[i], cut);
		}
		/* three pieces, the middle one empty */
		uint32_t c = impls[i](impls[i](impls[i](0, buf, 100), buf + 100, 0), buf + 100, 677);
		cr_assert_eq(c, whole, "%s: three pieces", impl_names[i]);
	}
}

Test(crc32c, hardware_equals_table_every_length_and_alignment)
{
	enum { MAXLEN = 1024, MAXALIGN = 16 };
	/* 8-byte aligned base, so offset k is alignment k mod 8 (and 16). */
	static uint64_t store[(MAXLEN + MAXALIGN) / 8 + 1];
	unsigned char *base = (unsigned char *)store;
	fill_random(base, sizeof store, 7);
	for (size_t a = 0; a < MAXALIGN; a++)
		for (size_t len = 0; len <= MAXLEN; len++) {
			uint32_t seed_crc = (uint32_t)(a * 2654435761u + len);
			uint32_t hw = strata_crc32c(seed_crc, base + a, len);
			uint32_t sw = strata_crc32c_sw(seed_crc, base + a, len);
			cr_assert_eq(hw, sw, "align %zu len %zu: 0x%08x vs 0x%08x", a, len, hw, sw);
		}
}

Test(crc32c, hardware_equals_table_large)
{
	static const size_t sizes[] = {4096, 65536 + 3, 1u << 20, (3u << 20) + 5};
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		size_t n = sizes[i];
		unsigned char *b = malloc(n + 1);
		cr_assert_not_null(b);
		fill_random(b, n + 1, 100 + i);
		cr_assert_eq(strata_crc32c(0, b, n), strata_crc32c_sw(0, b, n), "size %zu", n);
		cr_assert_eq(strata_crc32c(0, b + 1, n), strata_crc32c_sw(0, b + 1, n), "size %zu +1", n);
		free(b);
	}
}

Test(crc32c, detects_single_bit_flip)
{
	unsigned char b[256];
	fill_random(b, sizeof b, 9);
	uint32_t good = strata_crc32c(0, b, sizeof b);
	for (size_t bit = 0; bit < sizeof b * 8; bit += 13) {
		b[bit / 8] ^= (unsigned char)(1u << (bit % 8));
		cr_assert_neq(strata_crc32c(0, b, sizeof b), good, "bit %zu", bit);
		b[bit / 8] ^= (unsigned char)(1u << (bit % 8));
	}
	cr_assert_eq(strata_crc32c(0, b, sizeof b), good);
}

Test(crc32c, impl_name_matches_cpu)
{
	const char *impl = strata_crc32c_impl();
#if defined(__x86_64__)
	__builtin_cpu_init();
	const char *want = __builtin_cpu_supports("sse4.2") ? "sse4.2" : "table";
#else
	const char *want = "table";
#endif
	cr_assert_str_eq(impl, want);
	cr_log_info("crc32c implementation: %s", impl);
}
