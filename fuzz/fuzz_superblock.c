/*
 * fuzz_superblock.c — the input is the bytes of a SUPER file, any length.
 *
 * sb_read must return a decoded slot or one of its documented errors, and
 * what it says must agree with sb_decode run on each slot by hand. A slot
 * it accepts must survive sb_encode/sb_decode unchanged, and writing the
 * next generation over the file must make that one current (the writer's
 * half of recovery: open, then the first checkpoint). The input is also
 * run with every slot's CRC recomputed, so mutations of the fields behind
 * the CRC reach the decoder's later checks, and sb_decode runs directly on
 * 4096-byte windows at other offsets (unaligned ones too).
 */
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "fuzz_common.h"
#include "internal.h"
#include "io_sim.h"
#include "superblock.h"

#define WINDOWS 16 /* sb_decode calls per input, beyond the slots */

static bool decode_error(int rc)
{
	return rc == STRATA_EFORMAT || rc == STRATA_ECORRUPT;
}

static void check_round_trip(const sb_state *s, const uint8_t *slot)
{
	uint8_t *again = malloc(SB_SLOT);
	FZ_CHECK(again, "out of memory");
	sb_state t;
	sb_encode(s, again);
	int rc = sb_decode(again, &t);
	FZ_CHECK(rc == 0, "sb_decode of sb_encode output: %d", rc);
	FZ_CHECK(!memcmp(s, &t, sizeof t), "sb_encode/sb_decode changed the state");
	/* The fields are all in [0, 88); the reserved bytes after them are not
	 * checked by the reader, so only the fields must come back bytewise. */
	FZ_CHECK(!slot || !memcmp(again, slot, 88), "sb_encode wrote the fields differently");
	free(again);
}

/* sb_decode on one 4096-byte window, copied to the end of a buffer of its
 * own (so ASan bounds the read) at `shift` bytes past an aligned address. */
static int decode_window(const uint8_t *p, size_t shift, sb_state *out)
{
	uint8_t *buf = malloc(SB_SLOT + shift);
	FZ_CHECK(buf, "out of memory");
	uint8_t *w = buf + shift;
	memcpy(w, p, SB_SLOT);
	int rc = sb_decode(w, out);
	FZ_CHECK(rc == 0 || decode_error(rc), "sb_decode returned %d", rc);
	if (!rc)
		check_round_trip(out, w);
	free(buf);
	return rc;
}

static void check_windows(const uint8_t *data, size_t size)
{
	if (size < SB_SLOT)
		return;
	size_t span = size - SB_SLOT, step = span / WINDOWS + 1;
	sb_state s;
	for (size_t off = 0; off <= span; off += step)
		decode_window(data + off, off % 8, &s);
	if (span)
		decode_window(data + 1, 1, &s);
}

/* What sb_read reported must match decoding the slots by hand. */
static void check_report(const uint8_t *data, size_t size, int rc, const sb_state *got,
			 const sb_read_report *rep)
{
	sb_state s[2];
	int st[2];
	for (int i = 0; i < 2; i++) {
		st[i] = size < (size_t)(i + 1) * SB_SLOT ? STRATA_ETRUNCATED
							 : decode_window(data + i * SB_SLOT, 0, &s[i]);
		/* sb_write puts generation g in slot g % 2; sb_read refuses a
		 * slot holding the other parity. */
		if (!st[i] && s[i].generation % 2 != (uint64_t)i)
			st[i] = STRATA_ECORRUPT;
	}
	for (int i = 0; i < 2; i++)
		FZ_CHECK(rep->slot_status[i] == st[i], "slot %d: sb_read says %d, sb_decode %d", i,
			 rep->slot_status[i], st[i]);
	if (st[0] && st[1]) {
		FZ_CHECK(rc && rep->chosen < 0, "no valid slot, yet sb_read returned %d", rc);
		FZ_CHECK(rc == STRATA_ETRUNCATED || decode_error(rc), "sb_read returned %d", rc);
		return;
	}
	int want = st[0] ? 1 : st[1] ? 0 : s[1].generation > s[0].generation;
	FZ_CHECK(rc == 0 && rep->chosen == want, "sb_read: rc %d chose %d, expected slot %d", rc,
		 rep->chosen, want);
	FZ_CHECK(!memcmp(got, &s[want], sizeof *got), "sb_read returned another state");
}

/* The first write after recovery: generation + 1 becomes current, and
 * when the current slot is the one its generation names (always, for
 * SUPER files sb_write made), it still holds the current state: a torn
 * write would have fallen back to it. */
static void check_next_write(io_file *f, const sb_state *cur, int chosen)
{
	if (cur->generation == UINT64_MAX)
		return; /* no next generation to write */
	sb_state next = *cur, got;
	next.generation++;
	next.last_epoch++;
	int rc = sb_write(f, &next);
	FZ_CHECK(rc == 0, "sb_write: %d", rc);
	rc = sb_read(f, &got, NULL);
	FZ_CHECK(rc == 0 && !memcmp(&got, &next, sizeof got),
		 "after sb_write of generation %llu, sb_read returned %d / generation %llu",
		 (unsigned long long)next.generation, rc, (unsigned long long)got.generation);
	if (cur->generation % 2 != (uint64_t)chosen)
		return;
	uint8_t *slot = malloc(SB_SLOT);
	FZ_CHECK(slot, "out of memory");
	rc = io_pread(f, slot, SB_SLOT, (uint64_t)chosen * SB_SLOT);
	FZ_CHECK(rc == 0 && sb_decode(slot, &got) == 0 && !memcmp(&got, cur, sizeof got),
		 "sb_write of generation %llu overwrote the slot of the current state",
		 (unsigned long long)next.generation);
	free(slot);
}

static void run_one(const uint8_t *data, size_t size)
{
	io_env *env = fz_sim_store();
	io_file *f;
	int rc = fz_put(env, FZ_DIR "/SUPER", 0, data, size);
	if (!rc)
		rc = io_open(env, FZ_DIR "/SUPER", 0, &f);
	FZ_CHECK(!rc, "writing SUPER into the simulator: %d", rc);
	sb_state got;
	sb_read_report rep = {{0, 0}, -2};
	rc = sb_read(f, &got, &rep);
	check_report(data, size, rc, &got, &rep);
	if (!rc) {
		check_round_trip(&got, NULL);
		check_next_write(f, &got, rep.chosen);
	}
	io_close(f);
	io_sim_free(env);
}

/* The same bytes with each whole slot's CRC made right. */
static void run_resealed(const uint8_t *data, size_t size)
{
	if (size < SB_SLOT)
		return;
	uint8_t *copy = malloc(size);
	FZ_CHECK(copy, "out of memory");
	memcpy(copy, data, size);
	for (size_t i = 0; i < 2 && (i + 1) * SB_SLOT <= size; i++) {
		uint8_t *slot = copy + i * SB_SLOT;
		uint32_t crc = strata_crc32c(0, slot, SB_SLOT - 4);
		memcpy(slot + SB_SLOT - 4, &crc, 4);
	}
	run_one(copy, size);
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	run_one(data, size);
	run_resealed(data, size);
	check_windows(data, size);
	return 0;
}
