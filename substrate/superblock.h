/*
 * superblock.h — the store's root of trust: two checksummed 4096-byte slots
 * in SUPER (layout in design/FORMAT.md), and an in-process seqlock through
 * which threads read the current one without a lock and without tearing.
 */
#ifndef STRATA_SUPERBLOCK_H
#define STRATA_SUPERBLOCK_H
#include <stdatomic.h>
#include <stdint.h>

#include "io.h"

#define SB_SLOT 4096u
#define SB_MAGIC 0x53505553u /* "SUPS" */
#define SB_VERSION 1u
#define SB_FLAG_CLEAN 1u

/* Decoded slot. Plain data, a multiple of 8 bytes (the seqlock copies it
 * word by word). */
typedef struct sb_state {
	uint64_t generation;
	uint8_t uuid[16];
	uint64_t ckpt_gen;
	uint64_t ckpt_epoch;
	uint64_t ckpt_size;
	uint32_t ckpt_crc;
	uint32_t flags;
	uint64_t wal_start_lsn;
	uint64_t wal_file_size;
	uint64_t last_epoch;
} sb_state;

void sb_encode(const sb_state *s, uint8_t slot[SB_SLOT]);
/* 0, or STRATA_EFORMAT (not a superblock slot / newer version) or
 * STRATA_ECORRUPT (magic and version right, CRC wrong). */
int sb_decode(const uint8_t slot[SB_SLOT], sb_state *out);

/* Which slots were usable, for `strata info` and salvage messages. */
typedef struct sb_read_report {
	int slot_status[2]; /* sb_decode result per slot; STRATA_ETRUNCATED if missing */
	int chosen;         /* 0 or 1 */
} sb_read_report;

/* Reads SUPER and returns the valid slot with the highest generation.
 * Errors: STRATA_ETRUNCATED (file shorter than two slots and no slot valid),
 * STRATA_EFORMAT (no slot is a Strata superblock, or one is newer),
 * STRATA_ECORRUPT (both slots fail their checksum), I/O errors. */
int sb_read(io_file *f, sb_state *out, sb_read_report *rep);
/* Writes s (whose generation the caller has advanced) to slot
 * generation % 2 and syncs. */
int sb_write(io_file *f, const sb_state *s);

/* ---- in-process seqlock -------------------------------------------------- */
#define SB_WORDS (sizeof(sb_state) / 8)
typedef struct sb_cell {
	_Atomic uint64_t seq; /* odd while a writer is inside; memory only */
	_Atomic uint64_t w[SB_WORDS];
} sb_cell;

/* One writer at a time (the caller serializes). */
void sb_publish(sb_cell *c, const sb_state *s);
/* Lock-free, wait-free for writers; retries while a write is in progress. */
void sb_load(const sb_cell *c, sb_state *out);
#endif
