/*
 * superblock.c — encoding, choosing and writing the two superblock slots,
 * and the seqlock that publishes the current one inside the process.
 *
 * Invariants: a slot is used only if magic, version and CRC check; the
 * newest valid generation wins, so a torn write of one slot (the one being
 * written is never the one holding the current state) falls back to the
 * other. The seqlock counter lives only in memory: nothing odd reaches disk.
 */
#include <string.h>

#include "crc32c.h"
#include "internal.h"
#include "le.h"
#include "superblock.h"

_Static_assert(sizeof(sb_state) % 8 == 0, "sb_state is copied by words");


void sb_encode(const sb_state *s, uint8_t slot[SB_SLOT])
{
	memset(slot, 0, SB_SLOT);
	put32(slot + 0, SB_MAGIC);
	put16(slot + 4, SB_VERSION);
	put16(slot + 6, SB_SLOT);
	put64(slot + 8, s->generation);
	memcpy(slot + 16, s->uuid, 16);
	put64(slot + 32, s->ckpt_gen);
	put64(slot + 40, s->ckpt_epoch);
	put64(slot + 48, s->ckpt_size);
	put32(slot + 56, s->ckpt_crc);
	put32(slot + 60, s->flags);
	put64(slot + 64, s->wal_start_lsn);
	put64(slot + 72, s->wal_file_size);
	put64(slot + 80, s->last_epoch);
	put32(slot + SB_SLOT - 4, strata_crc32c(0, slot, SB_SLOT - 4));
}

int sb_decode(const uint8_t slot[SB_SLOT], sb_state *out)
{
	if (get32(slot) != SB_MAGIC || get16(slot + 6) != SB_SLOT)
		return STRATA_EFORMAT;
	if (strata_crc32c(0, slot, SB_SLOT - 4) != get32(slot + SB_SLOT - 4))
		return STRATA_ECORRUPT;
	/* Checked after the CRC: a corrupt version field is corruption, a
	 * correctly checksummed newer one is a newer format. */
	if (get16(slot + 4) != SB_VERSION)
		return STRATA_EFORMAT;
	memset(out, 0, sizeof *out);
	out->generation = get64(slot + 8);
	memcpy(out->uuid, slot + 16, 16);
	out->ckpt_gen = get64(slot + 32);
	out->ckpt_epoch = get64(slot + 40);
	out->ckpt_size = get64(slot + 48);
	out->ckpt_crc = get32(slot + 56);
	out->flags = get32(slot + 60);
	out->wal_start_lsn = get64(slot + 64);
	out->wal_file_size = get64(slot + 72);
	out->last_epoch = get64(slot + 80);
	/* Epochs stay below the marker range (internal.h): a checksummed slot
	 * naming one above was not written by a working store. */
	if (out->ckpt_epoch >= EPOCH_PENDING || out->last_epoch >= EPOCH_PENDING)
		return STRATA_ECORRUPT;
	return 0;
}

static int read_slot(io_file *f, uint64_t size, int i, uint8_t *buf, sb_state *st)
{
	if (size < (uint64_t)(i + 1) * SB_SLOT)
		return STRATA_ETRUNCATED;
	int rc = io_pread(f, buf, SB_SLOT, (uint64_t)i * SB_SLOT);
	if (!rc)
		rc = sb_decode(buf, st);
	/* sb_write puts generation g in slot g % 2: a slot elsewhere was not
	 * written by us, and trusting it would let the next write overwrite
	 * the only current copy. */
	if (!rc && st->generation % 2 != (uint64_t)i)
		rc = STRATA_ECORRUPT;
	return rc;
}

/* The error to report when no slot is usable: the most telling one. */
static int no_slot_error(const int st[2])
{
	for (int i = 0; i < 2; i++)
		if (st[i] != STRATA_ETRUNCATED && st[i] != STRATA_EFORMAT && st[i] != STRATA_ECORRUPT)
			return st[i]; /* an I/O error */
	if (st[0] == STRATA_ECORRUPT || st[1] == STRATA_ECORRUPT)
		return STRATA_ECORRUPT;
	if (st[0] == STRATA_EFORMAT || st[1] == STRATA_EFORMAT)
		return STRATA_EFORMAT;
	return STRATA_ETRUNCATED;
}

int sb_read(io_file *f, sb_state *out, sb_read_report *rep)
{
	uint64_t size;
	int rc = io_size(f, &size);
	if (rc)
		return rc;
	uint8_t *buf = strata_mem_alloc(SB_SLOT);
	if (!buf)
		return STRATA_ENOMEM;
	sb_state s[2];
	int st[2];
	for (int i = 0; i < 2; i++)
		st[i] = read_slot(f, size, i, buf, &s[i]);
	strata_mem_free(buf, SB_SLOT);
	int pick = -1;
	if (!st[0] && !st[1])
		pick = s[1].generation > s[0].generation;
	else if (!st[0] || !st[1])
		pick = st[0] ? 1 : 0;
	if (rep) {
		rep->slot_status[0] = st[0];
		rep->slot_status[1] = st[1];
		rep->chosen = pick;
	}
	if (pick < 0)
		return no_slot_error(st);
	*out = s[pick];
	return 0;
}

int sb_write(io_file *f, const sb_state *s)
{
	uint8_t *buf = strata_mem_alloc(SB_SLOT);
	if (!buf)
		return STRATA_ENOMEM;
	sb_encode(s, buf);
	int rc = io_pwrite(f, buf, SB_SLOT, (s->generation % 2) * SB_SLOT);
	strata_mem_free(buf, SB_SLOT);
	return rc ? rc : io_sync(f);
}

/* Seqlock without fences (GCC's TSan rejects them): the writer stores the
 * words with release after making seq odd, so a reader that sees any new
 * word also sees the odd seq on its re-check; readers load with acquire so
 * the re-check cannot move before the word loads. */
void sb_publish(sb_cell *c, const sb_state *s)
{
	uint64_t w[SB_WORDS];
	memcpy(w, s, sizeof w);
	uint64_t q = atomic_load_explicit(&c->seq, memory_order_relaxed);
	atomic_store_explicit(&c->seq, q + 1, memory_order_relaxed);
	for (size_t i = 0; i < SB_WORDS; i++)
		atomic_store_explicit(&c->w[i], w[i], memory_order_release);
	atomic_store_explicit(&c->seq, q + 2, memory_order_release);
}

void sb_load(const sb_cell *c, sb_state *out)
{
	uint64_t w[SB_WORDS];
	for (;;) {
		uint64_t q = atomic_load_explicit(&c->seq, memory_order_acquire);
		if (q & 1)
			continue;
		for (size_t i = 0; i < SB_WORDS; i++)
			w[i] = atomic_load_explicit(&c->w[i], memory_order_acquire);
		if (atomic_load_explicit(&c->seq, memory_order_relaxed) == q)
			break;
	}
	memcpy(out, w, sizeof w);
}
