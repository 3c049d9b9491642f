/*
 * wal_format.h — the byte layout of WAL files and frames (design/FORMAT.md):
 * encoding, and validation that never trusts a field before its CRC.
 * No I/O here; wal.c (the writer and reader) builds on it.
 */
#ifndef STRATA_WAL_FORMAT_H
#define STRATA_WAL_FORMAT_H
#include <stddef.h>
#include <stdint.h>

#define WAL_MAGIC 0x57505553u /* "SUPW" */
#define WAL_VERSION 1u
#define WAL_FILE_HDR 64u
#define WAL_FRAME_HDR 24u
#define WAL_MIN_FILE (1u << 20)

enum wal_frame_type {
	WAL_NODE = 1,
	WAL_RETIRE = 2,
	WAL_ROOT = 3,
	WAL_COMMIT = 4,
	WAL_SKIP = 5
};

typedef struct wal_file_header {
	uint8_t uuid[16];
	uint64_t seq;
	uint64_t file_size;
	uint32_t salt;
} wal_file_header;

void walf_header_encode(const wal_file_header *h, uint8_t out[WAL_FILE_HDR]);
/* 0, STRATA_EFORMAT (not a WAL header, newer version) or STRATA_ECORRUPT. */
int walf_header_decode(const uint8_t in[WAL_FILE_HDR], wal_file_header *h);

/* Bytes a frame with `len` payload bytes occupies (header, payload, pad). */
static inline size_t walf_frame_size(uint32_t len)
{
	return (WAL_FRAME_HDR + (size_t)len + 7) & ~(size_t)7;
}
/* Writes the whole frame (header, payload, zero padding) at dst. */
void walf_frame_encode(uint8_t *dst, uint16_t type, uint64_t lsn, uint32_t salt,
		       const void *payload, uint32_t len);

typedef struct wal_frame {
	uint16_t type;
	uint32_t len;
	uint64_t lsn;
	const uint8_t *payload;
	size_t size; /* walf_frame_size(len) */
} wal_frame;

/* Validates the frame at p (avail bytes readable there) expected at `lsn`
 * in a file with `salt`: 0 and *out filled, or STRATA_ECORRUPT. */
int walf_frame_check(const uint8_t *p, size_t avail, uint64_t lsn, uint32_t salt, wal_frame *out);

/* Payload codecs. The encoders return the payload length they wrote (dst
 * may be NULL to ask for the length); the decoders return 0 or
 * STRATA_ECORRUPT if the payload does not have the type's shape. */
typedef struct wal_node_rec {
	uint64_t id;
	uint32_t size;
	uint8_t kind;
	const uint8_t *bytes;
} wal_node_rec;
typedef struct wal_root_rec {
	uint64_t id;
	uint16_t name_len;
	const char *name;
} wal_root_rec;
typedef struct wal_commit_rec {
	uint64_t epoch;
	uint32_t frames;
	uint64_t batch_lsn; /* every byte below it was synced before this frame was staged */
} wal_commit_rec;

uint32_t walf_node_encode(uint8_t *dst, uint64_t id, uint8_t kind, const void *bytes, uint32_t size);
int walf_node_decode(const wal_frame *f, wal_node_rec *r);
uint32_t walf_retire_encode(uint8_t *dst, uint64_t id);
int walf_retire_decode(const wal_frame *f, uint64_t *id);
uint32_t walf_root_encode(uint8_t *dst, uint64_t id, const char *name, uint16_t len);
int walf_root_decode(const wal_frame *f, wal_root_rec *r);
uint32_t walf_commit_encode(uint8_t *dst, uint64_t epoch, uint32_t frames, uint64_t batch_lsn);
int walf_commit_decode(const wal_frame *f, wal_commit_rec *r);
#endif
