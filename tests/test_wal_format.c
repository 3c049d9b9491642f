/*
 * test_wal_format.c — WAL file headers and frames: round trips, every
 * single-bit flip detected, zero fill and stale frames (wrong LSN or salt)
 * refused, malformed payloads refused by their decoders, and a random
 * stream of frames read back exactly.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "support/model.h"
#include "wal_format.h"

TestSuite(wal_format, .fini = test_leak_check);

Test(wal_format, header_round_trip_and_flips)
{
	wal_file_header h = {.seq = 77, .file_size = 1u << 26, .salt = 0x12345678u}, g;
	for (int i = 0; i < 16; i++)
		h.uuid[i] = (uint8_t)i;
	uint8_t b[WAL_FILE_HDR];
	walf_header_encode(&h, b);
	cr_assert_eq(walf_header_decode(b, &g), 0);
	cr_assert_eq(memcmp(h.uuid, g.uuid, 16), 0);
	cr_assert_eq(g.seq, 77);
	cr_assert_eq(g.file_size, 1u << 26);
	cr_assert_eq(g.salt, 0x12345678u);
	for (unsigned bit = 0; bit < WAL_FILE_HDR * 8; bit++) {
		b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		int rc = walf_header_decode(b, &g);
		b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		cr_assert(rc == STRATA_ECORRUPT || rc == STRATA_EFORMAT, "bit %u accepted", bit);
	}
}

static size_t put_frame(uint8_t *buf, uint16_t type, uint64_t lsn, uint32_t salt,
			const uint8_t *payload, uint32_t len)
{
	walf_frame_encode(buf, type, lsn, salt, payload, len);
	return walf_frame_size(len);
}

Test(wal_format, frame_round_trip_each_type)
{
	static uint8_t buf[4096], pl[512];
	uint8_t bytes[100];
	memset(bytes, 0x5a, sizeof bytes);
	wal_frame f;
	uint32_t n = walf_node_encode(pl, 0x1000000040ull, 9, bytes, 100);
	size_t sz = put_frame(buf, WAL_NODE, 4096, 7, pl, n);
	cr_assert_eq(sz % 8, 0);
	cr_assert_eq(walf_frame_check(buf, sizeof buf, 4096, 7, &f), 0);
	cr_assert_eq(f.size, sz);
	wal_node_rec nr;
	cr_assert_eq(walf_node_decode(&f, &nr), 0);
	cr_assert_eq(nr.id, 0x1000000040ull);
	cr_assert_eq(nr.size, 100);
	cr_assert_eq(nr.kind, 9);
	cr_assert_eq(memcmp(nr.bytes, bytes, 100), 0);

	n = walf_retire_encode(pl, 0x2000000080ull);
	put_frame(buf, WAL_RETIRE, 8, 7, pl, n);
	cr_assert_eq(walf_frame_check(buf, sizeof buf, 8, 7, &f), 0);
	uint64_t id;
	cr_assert_eq(walf_retire_decode(&f, &id), 0);
	cr_assert_eq(id, 0x2000000080ull);

	n = walf_root_encode(pl, 0x3000000000ull, "orders", 6);
	put_frame(buf, WAL_ROOT, 16, 7, pl, n);
	cr_assert_eq(walf_frame_check(buf, sizeof buf, 16, 7, &f), 0);
	wal_root_rec rr;
	cr_assert_eq(walf_root_decode(&f, &rr), 0);
	cr_assert_eq(rr.id, 0x3000000000ull);
	cr_assert_eq(rr.name_len, 6);
	cr_assert_eq(memcmp(rr.name, "orders", 6), 0);

	n = walf_commit_encode(pl, 99, 3, 8);
	put_frame(buf, WAL_COMMIT, 24, 7, pl, n);
	cr_assert_eq(walf_frame_check(buf, sizeof buf, 24, 7, &f), 0);
	wal_commit_rec cm;
	cr_assert_eq(walf_commit_decode(&f, &cm), 0);
	cr_assert_eq(cm.epoch, 99);
	cr_assert_eq(cm.frames, 3);
	cr_assert_eq(cm.batch_lsn, 8);
	cr_assert_eq(walf_node_decode(&f, &nr), STRATA_ECORRUPT, "type checked by decoders");
}

Test(wal_format, stale_zero_and_short_frames_refused)
{
	static uint8_t buf[256], pl[64];
	wal_frame f;
	uint32_t n = walf_commit_encode(pl, 5, 0, 64);
	put_frame(buf, WAL_COMMIT, 800, 3, pl, n);
	cr_assert_eq(walf_frame_check(buf, sizeof buf, 808, 3, &f), STRATA_ECORRUPT, "wrong LSN");
	cr_assert_eq(walf_frame_check(buf, sizeof buf, 800, 4, &f), STRATA_ECORRUPT, "old salt");
	cr_assert_eq(walf_frame_check(buf, 20, 800, 3, &f), STRATA_ECORRUPT, "header cut");
	cr_assert_eq(walf_frame_check(buf, 30, 800, 3, &f), STRATA_ECORRUPT, "payload cut");
	static const uint8_t zero[256];
	for (uint64_t lsn = 0; lsn < 4096; lsn += 8)
		cr_assert_eq(walf_frame_check(zero, sizeof zero, lsn, 0, &f), STRATA_ECORRUPT,
			     "zero fill at %llu", (unsigned long long)lsn);
}

Test(wal_format, every_bit_flip_in_a_frame_is_detected)
{
	static uint8_t buf[512], pl[256];
	uint8_t bytes[200];
	for (int i = 0; i < 200; i++)
		bytes[i] = (uint8_t)(i * 7);
	uint32_t n = walf_node_encode(pl, 0x1000000040ull, 1, bytes, 200);
	size_t sz = put_frame(buf, WAL_NODE, 4096 + 64, 0xabcdef01u, pl, n);
	wal_frame f;
	for (unsigned bit = 0; bit < sz * 8; bit++) {
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		int rc = walf_frame_check(buf, sizeof buf, 4096 + 64, 0xabcdef01u, &f);
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		size_t pad_start = WAL_FRAME_HDR + n;
		if (bit / 8 >= pad_start)
			continue; /* padding is not covered: it is never read */
		cr_assert_eq(rc, STRATA_ECORRUPT, "bit %u accepted", bit);
	}
	cr_assert_eq(walf_frame_check(buf, sizeof buf, 4096 + 64, 0xabcdef01u, &f), 0);
}

Test(wal_format, malformed_payloads_refused)
{
	static uint8_t buf[256], pl[64];
	wal_frame f;
	wal_node_rec nr;
	wal_root_rec rr;
	memset(pl, 0, sizeof pl);
	put_frame(buf, WAL_NODE, 8, 1, pl, 15); /* shorter than the node header */
	cr_assert_eq(walf_frame_check(buf, sizeof buf, 8, 1, &f), 0);
	cr_assert_eq(walf_node_decode(&f, &nr), STRATA_ECORRUPT);
	uint32_t n = walf_node_encode(pl, 0x1000000000ull, 0, "abcd", 4);
	pl[8] = 5; /* size says 5, frame holds 4 */
	put_frame(buf, WAL_NODE, 8, 1, pl, n);
	cr_assert_eq(walf_frame_check(buf, sizeof buf, 8, 1, &f), 0);
	cr_assert_eq(walf_node_decode(&f, &nr), STRATA_ECORRUPT);
	n = walf_root_encode(pl, 1, "ab", 2);
	pl[11] = 0; /* NUL inside a name */
	put_frame(buf, WAL_ROOT, 8, 1, pl, n);
	cr_assert_eq(walf_frame_check(buf, sizeof buf, 8, 1, &f), 0);
	cr_assert_eq(walf_root_decode(&f, &rr), STRATA_ECORRUPT);
	memset(pl, 0, 24);
	put_frame(buf, WAL_COMMIT, 8, 1, pl, 24); /* epoch 0 */
	cr_assert_eq(walf_frame_check(buf, sizeof buf, 8, 1, &f), 0);
	wal_commit_rec cm;
	cr_assert_eq(walf_commit_decode(&f, &cm), STRATA_ECORRUPT);
	walf_commit_encode(pl, 3, 0, 8); /* its batch cannot begin at or after it */
	put_frame(buf, WAL_COMMIT, 8, 1, pl, 24);
	cr_assert_eq(walf_frame_check(buf, sizeof buf, 8, 1, &f), 0);
	cr_assert_eq(walf_commit_decode(&f, &cm), STRATA_ECORRUPT);
	/* Epochs end below EPOCH_PENDING (2^47): above are transaction markers. */
	walf_commit_encode(pl, EPOCH_PENDING, 0, 1);
	put_frame(buf, WAL_COMMIT, 8, 1, pl, 24);
	cr_assert_eq(walf_frame_check(buf, sizeof buf, 8, 1, &f), 0);
	cr_assert_eq(walf_commit_decode(&f, &cm), STRATA_ECORRUPT, "an epoch of 2^47 is damage");
	walf_commit_encode(pl, EPOCH_PENDING - 1, 0, 1);
	put_frame(buf, WAL_COMMIT, 8, 1, pl, 24);
	cr_assert_eq(walf_frame_check(buf, sizeof buf, 8, 1, &f), 0);
	cr_assert_eq(walf_commit_decode(&f, &cm), 0, "the last epoch is one");
	cr_assert_eq(cm.epoch, EPOCH_PENDING - 1);
	put_frame(buf, 9, 8, 1, pl, 16); /* unknown type */
	cr_assert_eq(walf_frame_check(buf, sizeof buf, 8, 1, &f), STRATA_ECORRUPT);
}

/* A random stream of frames, written back to back, reads back exactly. */
Test(wal_format, random_stream_reads_back)
{
	const size_t cap = 1u << 20;
	uint8_t *buf = calloc(1, cap), *pl = malloc(70000);
	test_rng rng = {2024};
	uint64_t base = 5u << 20, lsn = base;
	uint32_t lens[2000];
	uint16_t types[2000];
	int count = 0;
	while (count < 2000) {
		uint32_t len = (uint32_t)rng_below(&rng, rng_below(&rng, 10) ? 300 : 65000);
		if ((lsn - base) + walf_frame_size(len) > cap)
			break;
		for (uint32_t i = 0; i < len; i++)
			pl[i] = (uint8_t)(len + i);
		types[count] = (uint16_t)(1 + rng_below(&rng, 4));
		lens[count] = len;
		lsn += put_frame(buf + (lsn - base), types[count], lsn, 42, pl, len);
		count++;
	}
	uint64_t at = base;
	for (int i = 0; i < count; i++) {
		wal_frame f;
		cr_assert_eq(walf_frame_check(buf + (at - base), cap - (at - base), at, 42, &f), 0,
			     "frame %d", i);
		cr_assert_eq(f.type, types[i]);
		cr_assert_eq(f.len, lens[i]);
		for (uint32_t k = 0; k < f.len; k++)
			cr_assert_eq(f.payload[k], (uint8_t)(f.len + k));
		at += f.size;
	}
	cr_assert_eq(at, lsn);
	wal_frame f;
	cr_assert_eq(walf_frame_check(buf + (at - base), cap - (at - base), at, 42, &f),
		     STRATA_ECORRUPT, "the zero tail ends the stream");
	cr_log_info("wal_format: %d frames, %llu bytes", count, (unsigned long long)(lsn - base));
	free(buf);
	free(pl);
}

/* Burst errors in a frame: all bursts of 2..32 bits, and sampled random
 * byte bursts, are refused (the CRC covers header and payload). */
Test(wal_format, bursts_are_detected)
{
	static uint8_t buf[512], copy[512], pl[256];
	uint8_t bytes[200];
	for (int i = 0; i < 200; i++)
		bytes[i] = (uint8_t)(i * 5);
	uint32_t n = walf_node_encode(pl, 0x1000000040ull, 1, bytes, 200);
	walf_frame_encode(buf, WAL_NODE, 4096 + 64, 0x5a5a5a5au, pl, n);
	size_t covered = (WAL_FRAME_HDR + n) * 8; /* padding is never read */
	wal_frame f;
	unsigned bursts = 0;
	test_rng rng = {99};
	for (unsigned len = 2; len <= 32; len++) {
		for (unsigned start = 0; start + len <= covered; start += 7) {
			memcpy(copy, buf, sizeof buf);
			for (unsigned i = start; i < start + len; i++)
				copy[i / 8] ^= (uint8_t)(1u << (i % 8));
			cr_assert_eq(walf_frame_check(copy, sizeof copy, 4096 + 64, 0x5a5a5a5au, &f),
				     STRATA_ECORRUPT, "burst %u at bit %u accepted", len, start);
			bursts++;
		}
	}
	for (unsigned k = 0; k < 2000; k++) {
		memcpy(copy, buf, sizeof buf);
		size_t at = rng_below(&rng, WAL_FRAME_HDR + n - 8), m = 2 + rng_below(&rng, 6);
		for (size_t i = 0; i < m && at + i < WAL_FRAME_HDR + n; i++)
			copy[at + i] ^= (uint8_t)(1 + rng_below(&rng, 255));
		cr_assert_eq(walf_frame_check(copy, sizeof copy, 4096 + 64, 0x5a5a5a5au, &f),
			     STRATA_ECORRUPT, "random burst at %zu accepted", at);
		bursts++;
	}
	cr_log_info("wal_format: %u bursts refused", bursts);
}
