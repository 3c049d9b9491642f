/*
 * test_superblock.c — the superblock: slot codec, every single-bit flip
 * detected, newest-valid selection with fallback, foreign/newer/truncated
 * files, writes surviving simulated power loss, and the in-process seqlock
 * never yielding a torn state.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <string.h>

#include "crc32c.h"
#include "internal.h"
#include "io_sim.h"
#include "superblock.h"
#include "support/model.h"

TestSuite(superblock, .fini = test_leak_check);

static sb_state sample(uint64_t gen)
{
	sb_state s;
	memset(&s, 0, sizeof s);
	s.generation = gen;
	for (int i = 0; i < 16; i++)
		s.uuid[i] = (uint8_t)(0xA0 + i);
	s.ckpt_gen = gen * 3;
	s.ckpt_epoch = gen * 5;
	s.ckpt_size = gen * 7;
	s.ckpt_crc = 0xDEADBEEFu ^ (uint32_t)gen;
	s.flags = SB_FLAG_CLEAN;
	s.wal_start_lsn = gen * 11;
	s.wal_file_size = 1u << 26;
	s.last_epoch = gen * 13;
	return s;
}

Test(superblock, encode_decode_round_trip)
{
	static uint8_t slot[SB_SLOT];
	sb_state a = sample(42), b;
	sb_encode(&a, slot);
	cr_assert_eq(sb_decode(slot, &b), 0);
	cr_assert_eq(memcmp(&a, &b, sizeof a), 0);
}

/* 100 % of single-bit flips are refused: the magic or size gives
 * EFORMAT, anything else ECORRUPT; none is ever decoded as valid. */
Test(superblock, every_bit_flip_is_detected)
{
	static uint8_t slot[SB_SLOT];
	sb_state a = sample(7), b;
	sb_encode(&a, slot);
	unsigned format = 0, corrupt = 0;
	for (unsigned bit = 0; bit < SB_SLOT * 8; bit++) {
		slot[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		int rc = sb_decode(slot, &b);
		slot[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		cr_assert(rc == STRATA_ECORRUPT || rc == STRATA_EFORMAT, "bit %u accepted (%d)", bit, rc);
		format += rc == STRATA_EFORMAT;
		corrupt += rc == STRATA_ECORRUPT;
	}
	cr_assert_eq(format, 48, "magic (32) and slot-size (16) bits say 'not a superblock'");
	cr_assert_eq(corrupt, SB_SLOT * 8 - 48);
	cr_assert_eq(sb_decode(slot, &b), 0, "restored slot decodes again");
}

Test(superblock, newer_version_with_good_crc_is_eformat)
{
	static uint8_t slot[SB_SLOT];
	sb_state a = sample(1), b;
	sb_encode(&a, slot);
	slot[4] = 2; /* version 2 */
	uint32_t crc = strata_crc32c(0, slot, SB_SLOT - 4);
	memcpy(slot + SB_SLOT - 4, &crc, 4);
	cr_assert_eq(sb_decode(slot, &b), STRATA_EFORMAT);
}

/* A slot with a good CRC but an epoch in the marker range (>= 2^47) was
 * not written by a working store: corruption, never adopted. */
Test(superblock, epoch_in_marker_range_is_ecorrupt)
{
	static uint8_t slot[SB_SLOT];
	sb_state a = sample(1), b;
	a.ckpt_epoch = EPOCH_PENDING - 1;
	a.last_epoch = EPOCH_PENDING - 1;
	sb_encode(&a, slot);
	cr_assert_eq(sb_decode(slot, &b), 0, "the last epoch is valid");
	a.last_epoch = EPOCH_PENDING;
	sb_encode(&a, slot);
	cr_assert_eq(sb_decode(slot, &b), STRATA_ECORRUPT);
	a.last_epoch = 3;
	a.ckpt_epoch = EPOCH_PENDING;
	sb_encode(&a, slot);
	cr_assert_eq(sb_decode(slot, &b), STRATA_ECORRUPT);
}

/* SUPER in the simulator; its directory entry made durable, as the
 * store does when it creates the file. */
static io_file *super_file(io_env *env)
{
	io_file *f;
	cr_assert_eq(io_open(env, "SUPER", IO_CREATE, &f), 0);
	cr_assert_eq(io_sync_dir(env, "."), 0);
	return f;
}

Test(superblock, read_takes_newest_and_falls_back)
{
	io_env *env = io_sim_new();
	io_file *f = super_file(env);
	sb_state a = sample(1), b = sample(2), got;
	sb_read_report rep;
	cr_assert_eq(sb_write(f, &a), 0);
	cr_assert_eq(sb_read(f, &got, &rep), 0, "one valid slot is enough");
	cr_assert_eq(got.generation, 1);
	cr_assert_eq(rep.chosen, 1);
	cr_assert_eq(rep.slot_status[0], STRATA_EFORMAT, "slot 0 is the zero gap before slot 1");
	cr_assert_eq(sb_write(f, &b), 0);
	cr_assert_eq(sb_read(f, &got, &rep), 0);
	cr_assert_eq(got.generation, 2);
	cr_assert_eq(rep.chosen, 0);
	/* Corrupt the newest (slot 0): fall back to generation 1. */
	cr_assert_eq(io_sim_flip_bit(env, "SUPER", 100, 3), 0);
	cr_assert_eq(sb_read(f, &got, &rep), 0);
	cr_assert_eq(got.generation, 1);
	cr_assert_eq(rep.slot_status[0], STRATA_ECORRUPT);
	/* Both corrupt: corruption, no state. */
	cr_assert_eq(io_sim_flip_bit(env, "SUPER", SB_SLOT + 100, 3), 0);
	cr_assert_eq(sb_read(f, &got, NULL), STRATA_ECORRUPT);
	io_close(f);
	io_sim_free(env);
}

Test(superblock, foreign_and_truncated_files)
{
	io_env *env = io_sim_new();
	io_file *f = super_file(env);
	sb_state got;
	cr_assert_eq(sb_read(f, &got, NULL), STRATA_ETRUNCATED, "empty file");
	static uint8_t junk[2 * SB_SLOT];
	memset(junk, 'x', sizeof junk);
	cr_assert_eq(io_pwrite(f, junk, sizeof junk, 0), 0);
	cr_assert_eq(sb_read(f, &got, NULL), STRATA_EFORMAT, "not a superblock");
	cr_assert_eq(io_truncate(f, 100), 0);
	cr_assert_eq(sb_read(f, &got, NULL), STRATA_ETRUNCATED);
	io_close(f);
	io_sim_free(env);
}

/* Power loss at every step of a sequence of superblock writes leaves a
 * readable superblock holding an acknowledged generation or the one being
 * written; never an error once the first write was acknowledged. */
Test(superblock, survives_power_loss_at_every_step)
{
	const io_sim_loss modes[] = {IO_SIM_DROP_ALL, IO_SIM_KEEP_RANDOM, IO_SIM_TEAR_LAST,
				     IO_SIM_KEEP_ALL};
	unsigned checked = 0;
	for (uint64_t crash = 1; crash <= 12; crash++) {
		for (unsigned m = 0; m < 4; m++) {
			for (uint64_t seed = 1; seed <= 3; seed++) {
				io_env *env = io_sim_new();
				io_file *f = super_file(env);
				io_sim_crash_after(env, io_sim_steps(env) + crash);
				uint64_t acked = 0;
				for (uint64_t g = 1; g <= 6; g++) {
					sb_state s = sample(g);
					if (sb_write(f, &s))
						break;
					acked = g;
				}
				io_close(f);
				io_sim_power_loss(env, modes[m], seed);
				f = super_file(env);
				sb_state got;
				int rc = sb_read(f, &got, NULL);
				if (acked) {
					cr_assert_eq(rc, 0, "crash %llu mode %u seed %llu",
						     (unsigned long long)crash, m, (unsigned long long)seed);
					cr_assert(got.generation == acked || got.generation == acked + 1,
						  "generation %llu after ack of %llu",
						  (unsigned long long)got.generation, (unsigned long long)acked);
					sb_state want = sample(got.generation);
					cr_assert_eq(memcmp(&got, &want, sizeof got), 0);
				}
				checked++;
				io_close(f);
				io_sim_free(env);
			}
		}
	}
	cr_log_info("superblock: %u crash states checked", checked);
	cr_assert_eq(checked, 12 * 4 * 3);
}

/* ---- seqlock ---------------------------------------------------------------- */
typedef struct seq_ctx {
	sb_cell cell;
	_Atomic int stop;
	_Atomic uint64_t reads, torn;
} seq_ctx;

static sb_state uniform(uint64_t v)
{
	sb_state s;
	memset(&s, 0, sizeof s);
	s.generation = s.ckpt_gen = s.ckpt_epoch = s.ckpt_size = v;
	s.wal_start_lsn = s.wal_file_size = s.last_epoch = v;
	s.ckpt_crc = s.flags = (uint32_t)v;
	memset(s.uuid, (int)(v & 0xff), 16);
	return s;
}

static bool is_uniform(const sb_state *s)
{
	sb_state u = uniform(s->generation);
	return memcmp(s, &u, sizeof u) == 0;
}

static void *seq_reader(void *arg)
{
	seq_ctx *c = arg;
	while (!atomic_load(&c->stop)) {
		sb_state s;
		sb_load(&c->cell, &s);
		if (!is_uniform(&s))
			atomic_fetch_add(&c->torn, 1);
		atomic_fetch_add(&c->reads, 1);
	}
	return NULL;
}

Test(superblock, seqlock_never_tears, .timeout = 120)
{
	static seq_ctx c;
	memset(&c, 0, sizeof c);
	sb_state s0 = uniform(0);
	sb_publish(&c.cell, &s0);
	pthread_t th[3];
	for (int i = 0; i < 3; i++)
		pthread_create(&th[i], NULL, seq_reader, &c);
	for (uint64_t v = 1; v <= 200000; v++) {
		sb_state s = uniform(v);
		sb_publish(&c.cell, &s);
	}
	while (atomic_load(&c.reads) < 1000)
		sched_yield();
	atomic_store(&c.stop, 1);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	cr_assert_eq(atomic_load(&c.torn), 0, "a reader saw a mix of two states");
	sb_state last;
	sb_load(&c.cell, &last);
	cr_assert_eq(last.generation, 200000);
	cr_assert_eq(atomic_load(&c.cell.seq) & 1, 0);
}

/* Burst errors: every burst of 2..32 consecutive flipped bits (CRC32C
 * catches all of them) at positions across the slot, and sampled longer
 * bursts of random bytes, are refused. */
Test(superblock, bursts_are_detected)
{
	static uint8_t slot[SB_SLOT], copy[SB_SLOT];
	sb_state a = sample(11), b;
	sb_encode(&a, slot);
	test_rng rng = {77};
	unsigned bursts = 0;
	for (unsigned len = 2; len <= 32; len++) {
		for (unsigned start = 0; start + len <= SB_SLOT * 8; start += 61) {
			memcpy(copy, slot, SB_SLOT);
			for (unsigned i = start; i < start + len; i++)
				copy[i / 8] ^= (uint8_t)(1u << (i % 8));
			cr_assert_neq(sb_decode(copy, &b), 0, "burst %u at bit %u accepted", len, start);
			bursts++;
		}
	}
	for (unsigned k = 0; k < 2000; k++) {
		memcpy(copy, slot, SB_SLOT);
		size_t at = rng_below(&rng, SB_SLOT - 64), n = 5 + rng_below(&rng, 60);
		for (size_t i = 0; i < n; i++)
			copy[at + i] ^= (uint8_t)(1 + rng_below(&rng, 255));
		cr_assert_neq(sb_decode(copy, &b), 0, "random burst at %zu accepted", at);
		bursts++;
	}
	cr_log_info("superblock: %u bursts refused", bursts);
}
