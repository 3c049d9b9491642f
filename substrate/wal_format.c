/*
 * wal_format.c — see wal_format.h and design/FORMAT.md ("WAL files").
 *
 * A frame is trusted only when its length fits what is readable, its LSN
 * equals where it was found, its salt equals the file's, and the CRC over
 * header and payload checks; only then are its fields used. Payload decoders
 * re-check every length against the frame, so a frame that is valid but
 * malformed (a bug, or a CRC collision) is corruption, not a crash.
 */
#include <string.h>

#include "crc32c.h"
#include "internal.h"
#include "le.h"
#include "wal_format.h"


void walf_header_encode(const wal_file_header *h, uint8_t out[WAL_FILE_HDR])
{
	memset(out, 0, WAL_FILE_HDR);
	put32(out, WAL_MAGIC);
	put16(out + 4, WAL_VERSION);
	put16(out + 6, WAL_FILE_HDR);
	memcpy(out + 8, h->uuid, 16);
	put64(out + 24, h->seq);
	put64(out + 32, h->file_size);
	put32(out + 40, h->salt);
	put32(out + 60, strata_crc32c(0, out, 60));
}

int walf_header_decode(const uint8_t in[WAL_FILE_HDR], wal_file_header *h)
{
	if (get32(in) != WAL_MAGIC || get16(in + 6) != WAL_FILE_HDR)
		return STRATA_EFORMAT;
	if (strata_crc32c(0, in, 60) != get32(in + 60))
		return STRATA_ECORRUPT;
	if (get16(in + 4) != WAL_VERSION)
		return STRATA_EFORMAT;
	memcpy(h->uuid, in + 8, 16);
	h->seq = get64(in + 24);
	h->file_size = get64(in + 32);
	h->salt = get32(in + 40);
	/* wal.c never writes salt 0 (it means "no salt yet" there): appending
	 * to such a file would stamp frames with a salt its header lacks. */
	return h->salt ? 0 : STRATA_ECORRUPT;
}

static uint32_t frame_crc(const uint8_t *hdr, const void *payload, uint32_t len)
{
	return strata_crc32c(strata_crc32c(0, hdr, 20), payload, len);
}

void walf_frame_encode(uint8_t *dst, uint16_t type, uint64_t lsn, uint32_t salt,
		       const void *payload, uint32_t len)
{
	put32(dst, len);
	put16(dst + 4, type);
	put16(dst + 6, 0);
	put64(dst + 8, lsn);
	put32(dst + 16, salt);
	if (len && dst + WAL_FRAME_HDR != (const uint8_t *)payload)
		memmove(dst + WAL_FRAME_HDR, payload, len);
	put32(dst + 20, frame_crc(dst, dst + WAL_FRAME_HDR, len));
	size_t pad = walf_frame_size(len) - WAL_FRAME_HDR - len;
	memset(dst + WAL_FRAME_HDR + len, 0, pad);
}

int walf_frame_check(const uint8_t *p, size_t avail, uint64_t lsn, uint32_t salt, wal_frame *out)
{
	if (avail < WAL_FRAME_HDR)
		return STRATA_ECORRUPT;
	uint32_t len = get32(p);
	if (len > avail - WAL_FRAME_HDR || walf_frame_size(len) > avail)
		return STRATA_ECORRUPT;
	if (get64(p + 8) != lsn || get32(p + 16) != salt)
		return STRATA_ECORRUPT;
	if (frame_crc(p, p + WAL_FRAME_HDR, len) != get32(p + 20))
		return STRATA_ECORRUPT;
	uint16_t type = get16(p + 4);
	if (type < WAL_NODE || type > WAL_SKIP || get16(p + 6) != 0)
		return STRATA_ECORRUPT;
	out->type = type;
	out->len = len;
	out->lsn = lsn;
	out->payload = p + WAL_FRAME_HDR;
	out->size = walf_frame_size(len);
	return 0;
}

uint32_t walf_node_encode(uint8_t *dst, uint64_t id, uint8_t kind, const void *bytes, uint32_t size)
{
	if (dst) {
		put64(dst, id);
		put32(dst + 8, size);
		dst[12] = kind;
		memset(dst + 13, 0, 3);
		memcpy(dst + 16, bytes, size);
	}
	return 16 + size;
}

int walf_node_decode(const wal_frame *f, wal_node_rec *r)
{
	if (f->type != WAL_NODE || f->len < 16)
		return STRATA_ECORRUPT;
	r->id = get64(f->payload);
	r->size = get32(f->payload + 8);
	r->kind = f->payload[12];
	r->bytes = f->payload + 16;
	if (r->size != f->len - 16 || r->size == 0 || r->size > STRATA_NODE_MAX || r->id == 0)
		return STRATA_ECORRUPT;
	return 0;
}

uint32_t walf_retire_encode(uint8_t *dst, uint64_t id)
{
	if (dst)
		put64(dst, id);
	return 8;
}

int walf_retire_decode(const wal_frame *f, uint64_t *id)
{
	if (f->type != WAL_RETIRE || f->len != 8)
		return STRATA_ECORRUPT;
	*id = get64(f->payload);
	return *id ? 0 : STRATA_ECORRUPT;
}

uint32_t walf_root_encode(uint8_t *dst, uint64_t id, const char *name, uint16_t len)
{
	if (dst) {
		put64(dst, id);
		put16(dst + 8, len);
		memcpy(dst + 10, name, len);
	}
	return 10u + len;
}

int walf_root_decode(const wal_frame *f, wal_root_rec *r)
{
	if (f->type != WAL_ROOT || f->len < 10)
		return STRATA_ECORRUPT;
	r->id = get64(f->payload);
	r->name_len = get16(f->payload + 8);
	r->name = (const char *)f->payload + 10;
	if (r->name_len == 0 || r->name_len > STRATA_ROOT_NAME_MAX || f->len != 10u + r->name_len ||
	    memchr(r->name, 0, r->name_len))
		return STRATA_ECORRUPT;
	return 0;
}

uint32_t walf_commit_encode(uint8_t *dst, uint64_t epoch, uint32_t frames, uint64_t batch_lsn)
{
	if (dst) {
		put64(dst, epoch);
		put32(dst + 8, frames);
		put32(dst + 12, 0);
		put64(dst + 16, batch_lsn);
	}
	return 24;
}

int walf_commit_decode(const wal_frame *f, wal_commit_rec *r)
{
	if (f->type != WAL_COMMIT || f->len != 24 || get32(f->payload + 12) != 0)
		return STRATA_ECORRUPT;
	r->epoch = get64(f->payload);
	r->frames = get32(f->payload + 8);
	r->batch_lsn = get64(f->payload + 16);
	/* Epochs at or above EPOCH_PENDING are in-memory transaction markers. */
	return r->epoch && r->epoch < EPOCH_PENDING && r->batch_lsn < f->lsn ? 0 : STRATA_ECORRUPT;
}
