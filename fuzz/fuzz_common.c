/*
 * fuzz_common.c — see fuzz_common.h.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crc32c.h"
#include "fuzz_common.h"
#include "internal.h"
#include "io_sim.h"
#include "superblock.h"

#if defined(__SANITIZE_ADDRESS__)
#define FZ_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FZ_ASAN 1
#endif
#endif
#ifdef FZ_ASAN
#include <sanitizer/asan_interface.h>
#endif

const uint8_t fz_uuid[16] = {0x5f, 0x75, 0x7a, 0x7a, 0x53, 0x74, 0x72, 0x61,
			     0x74, 0x61, 0x46, 0x75, 0x7a, 0x7a, 0x21, 0x01};

void fz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
	fprintf(stderr, "%s:%d: invariant failed: %s\n  ", file, line, cond);
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

/* ---- input cursor ---------------------------------------------------------- */
uint8_t fz_u8(fz_cursor *c)
{
	if (!c->n)
		return 0;
	c->n--;
	return *c->p++;
}

uint16_t fz_u16(fz_cursor *c)
{
	uint16_t lo = fz_u8(c);
	return (uint16_t)(lo | fz_u8(c) << 8);
}

uint32_t fz_u32(fz_cursor *c)
{
	uint32_t lo = fz_u16(c);
	return lo | (uint32_t)fz_u16(c) << 16;
}

size_t fz_take(fz_cursor *c, size_t want, const uint8_t **out)
{
	size_t n = want < c->n ? want : c->n;
	*out = c->p;
	c->p += n;
	c->n -= n;
	return n;
}

uint64_t fz_fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

/* ---- simulated store directory ------------------------------------------------ */
io_env *fz_sim_dir(const char *dir)
{
	io_env *env = io_sim_new();
	FZ_CHECK(env, "io_sim_new failed");
	int rc = io_mkdir(env, dir);
	if (!rc)
		rc = io_sync_dir(env, ".");
	FZ_CHECK(!rc, "making the store directory: %d", rc);
	return env;
}

io_env *fz_sim_store(void)
{
	return fz_sim_dir(FZ_DIR);
}

int fz_put(io_env *env, const char *path, uint64_t off, const void *buf, size_t len)
{
	io_file *f;
	int rc = io_open(env, path, IO_CREATE, &f);
	if (rc)
		return rc;
	if (len)
		rc = io_pwrite(f, buf, len, off);
	io_close(f);
	return rc;
}

int fz_extend(io_env *env, const char *path, uint64_t size)
{
	io_file *f;
	int rc = io_open(env, path, IO_CREATE, &f);
	if (rc)
		return rc;
	rc = io_allocate(f, 0, size);
	io_close(f);
	return rc;
}

void fz_guard(io_env *env, const char *path, bool on)
{
#ifdef FZ_ASAN
	io_file *f;
	uint64_t size;
	const void *p;
	if (io_open(env, path, IO_RDONLY, &f))
		return;
	if (!io_size(f, &size) && size && !io_map(f, 0, (size_t)size, &p)) {
		uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
		uintptr_t end = (uintptr_t)p + (uintptr_t)size;
		size_t tail = (size_t)((end + page - 1) / page * page - end);
		if (on)
			ASAN_POISON_MEMORY_REGION((const void *)end, tail);
		else
			ASAN_UNPOISON_MEMORY_REGION((const void *)end, tail);
		io_unmap(f, p, (size_t)size);
	}
	io_close(f);
#else
	(void)env, (void)path, (void)on;
#endif
}

/* ---- WAL images ---------------------------------------------------------------- */
void fz_wal_path(const wal_config *cfg, uint64_t seq, char *out, size_t n)
{
	snprintf(out, n, "%s/wal.%016llx", cfg->dir, (unsigned long long)seq);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

void fz_wal_seal_frame(uint8_t *p)
{
	uint32_t crc = strata_crc32c(strata_crc32c(0, p, 20), p + WAL_FRAME_HDR, get32(p));
	memcpy(p + 20, &crc, 4);
}

void fz_wal_reseal(uint8_t *buf, size_t len, uint64_t off, uint64_t seq, uint64_t F)
{
	if (off == 0 && len >= WAL_FILE_HDR) {
		uint32_t crc = strata_crc32c(0, buf, 60);
		memcpy(buf + 60, &crc, 4);
	}
	/* Frames start 8-aligned and after the header. */
	uint64_t pos = off < WAL_FILE_HDR ? WAL_FILE_HDR : (off + 7) & ~7ull;
	while (pos - off + WAL_FRAME_HDR <= len) {
		uint8_t *p = buf + (pos - off);
		uint32_t plen = get32(p);
		size_t room = len - (size_t)(pos - off) - WAL_FRAME_HDR;
		if (get64(p + 8) != seq * F + pos || plen > room) {
			pos += 8;
			continue;
		}
		fz_wal_seal_frame(p);
		pos += walf_frame_size(plen);
	}
}

/* One extent as the input has it: file byte, offset, bytes. */
typedef struct fz_extent {
	uint8_t file;
	uint32_t off;
	const uint8_t *p;
	size_t n;
} fz_extent;

static void read_extent(fz_cursor *c, fz_extent *x)
{
	x->file = fz_u8(c);
	x->off = fz_u32(c);
	size_t want = fz_u16(c);
	x->n = fz_take(c, want, &x->p);
}

/* Writes an extent's bytes into WAL file i of the image. */
static int put_wal(io_env *env, const wal_config *cfg, fz_wal_image *img, unsigned i,
		   const fz_extent *x)
{
	uint64_t F = cfg->file_size, off = x->off % F;
	size_t n = x->n < F - off ? x->n : (size_t)(F - off);
	uint8_t *copy = malloc(n ? n : 1);
	FZ_CHECK(copy, "out of memory");
	memcpy(copy, x->p, n);
	if (img->reseal)
		fz_wal_reseal(copy, n, off, img->base_seq + i, F);
	char path[256];
	fz_wal_path(cfg, img->base_seq + i, path, sizeof path);
	int rc = fz_put(env, path, off, copy, n);
	free(copy);
	img->made |= (uint8_t)(1u << i);
	if (off + n > img->hi[i])
		img->hi[i] = off + n;
	return rc;
}

/* The preallocation of every file made, if asked. */
static int wal_finish(io_env *env, const wal_config *cfg, const fz_wal_image *img)
{
	int rc = 0;
	for (unsigned i = 0; !rc && img->full && i < FZ_WAL_FILES; i++) {
		if (!(img->made & (1u << i)))
			continue;
		char path[256];
		fz_wal_path(cfg, img->base_seq + i, path, sizeof path);
		rc = fz_extend(env, path, cfg->file_size);
	}
	return rc;
}

int fz_wal_build(io_env *env, const wal_config *cfg, fz_cursor *c, fz_wal_image *img)
{
	img->made = 0;
	memset(img->hi, 0, sizeof img->hi);
	int rc = 0;
	while (!rc && c->n) {
		fz_extent x;
		read_extent(c, &x);
		rc = put_wal(env, cfg, img, x.file % FZ_WAL_FILES, &x);
	}
	return rc ? rc : wal_finish(env, cfg, img);
}

enum fz_file_state fz_wal_file_state(io_env *env, const wal_config *cfg, uint64_t seq)
{
	static const uint8_t zero[WAL_FILE_HDR];
	char path[256];
	io_file *f;
	uint8_t b[WAL_FILE_HDR];
	wal_file_header h;
	fz_wal_path(cfg, seq, path, sizeof path);
	if (io_open(env, path, IO_RDONLY, &f))
		return FZ_FILE_ABSENT;
	int rc = io_pread(f, b, sizeof b, 0);
	io_close(f);
	if (rc || !memcmp(b, zero, sizeof b))
		return FZ_FILE_UNHEADED;
	if (walf_header_decode(b, &h) || memcmp(h.uuid, cfg->uuid, 16) || h.seq != seq ||
	    h.file_size != cfg->file_size)
		return FZ_FILE_OTHER;
	return FZ_FILE_STREAM;
}

bool fz_wal_hole(io_env *env, const wal_config *cfg, const fz_wal_image *img, uint64_t start_seq)
{
	uint64_t seq = start_seq; /* files exist only up to base_seq + 7: bounded */
	while (fz_wal_file_state(env, cfg, seq) == FZ_FILE_STREAM)
		seq++;
	for (unsigned i = 0; i < FZ_WAL_FILES; i++)
		if ((img->made & (1u << i)) && img->base_seq + i > seq)
			return true;
	return false;
}

void fz_wal_guard(io_env *env, const wal_config *cfg, const fz_wal_image *img, bool on)
{
	for (unsigned i = 0; i < FZ_WAL_FILES; i++) {
		if (!(img->made & (1u << i)))
			continue;
		char path[256];
		fz_wal_path(cfg, img->base_seq + i, path, sizeof path);
		fz_guard(env, path, on);
	}
}

/* ---- whole store directories ------------------------------------------------ */
#define CK_HDR 4096u
#define CK_SECTIONS 6 /* entries, segments, bitmaps, chunks, roots, large */
#define CK_SEC_AT 88u /* section i: u64 offset, u64 length, u32 CRC at 88 + 24 i */
#define CK_SEC_ENTRIES 0
#define CK_SEC_SEGMENTS 1
#define CK_SEC_BITMAPS 2
#define CK_SEC_CHUNKS 3
#define CK_CHUNK_REC 48u
#define CK_SEG_REC 12u /* format 3: class, 3 zero, u32 used, u32 CRC of its words */

void fz_ckpt_path(const char *dir, uint64_t gen, char *out, size_t n)
{
	snprintf(out, n, "%s/ckpt.%016llx", dir, (unsigned long long)gen);
}

static bool ck_section(const uint8_t *buf, size_t len, unsigned i, uint64_t *off, uint64_t *n)
{
	const uint8_t *sec = buf + CK_SEC_AT + 24 * i;
	*off = get64(sec);
	*n = get64(sec + 8);
	return *off >= CK_HDR && *off <= len && *n <= len - *off;
}

/* Each chunk-index record's CRC over the records it names, so mutated
 * entries reach the checks made when a chunk is loaded. */
static void reseal_chunks(uint8_t *buf, size_t len)
{
	uint64_t off, n;
	if (!ck_section(buf, len, CK_SEC_CHUNKS, &off, &n))
		return;
	for (uint64_t at = off; at + CK_CHUNK_REC <= off + n; at += CK_CHUNK_REC) {
		uint8_t *rec = buf + at;
		uint64_t coff = get64(rec + 8), clen = (uint64_t)get32(rec + 4) * 32;
		if (coff < CK_HDR || coff > len || clen > len - coff)
			continue;
		uint32_t crc = strata_crc32c(0, buf + coff, (size_t)clen);
		memcpy(rec + 16, &crc, 4);
	}
}

/* Format 3: each segment record's CRC over the words it names (its count
 * stays as it is), so mutated words reach the checks made when a
 * segment's header is built. */
static void reseal_segments(uint8_t *buf, size_t len)
{
	uint64_t off, n, boff, bn, w = 0;
	if ((get32(buf + 4) & 0xffff) != 3 || !ck_section(buf, len, CK_SEC_SEGMENTS, &off, &n) ||
	    !ck_section(buf, len, CK_SEC_BITMAPS, &boff, &bn))
		return;
	for (uint64_t at = off; at + CK_SEG_REC <= off + n; at += CK_SEG_REC) {
		uint8_t cls = buf[at];
		if (cls >= STRATA_NUM_CLASSES)
			return;
		uint64_t words = seg_used_words(cls);
		if ((w + words) * 8 > bn)
			return;
		uint32_t crc = strata_crc32c(0, buf + boff + w * 8, (size_t)words * 8);
		memcpy(buf + at + 8, &crc, 4);
		w += words;
	}
}

void fz_ckpt_reseal(uint8_t *buf, size_t len)
{
	if (len < CK_HDR)
		return;
	reseal_chunks(buf, len);
	reseal_segments(buf, len);
	for (unsigned i = 0; i < CK_SECTIONS; i++) {
		uint64_t off, n;
		if (i == CK_SEC_ENTRIES || !ck_section(buf, len, i, &off, &n))
			continue; /* the entries' CRCs are per chunk */
		uint32_t crc = strata_crc32c(0, buf + off, (size_t)n);
		memcpy(buf + CK_SEC_AT + 24 * i + 16, &crc, 4);
	}
	uint32_t crc = strata_crc32c(0, buf, CK_HDR - 4);
	memcpy(buf + CK_HDR - 4, &crc, 4);
}

void fz_super_reseal_slot(uint8_t *slot)
{
	uint32_t crc = strata_crc32c(0, slot, SB_SLOT - 4);
	memcpy(slot + SB_SLOT - 4, &crc, 4);
}

/* The whole file, or NULL (*n = 0) if there is none. */
static uint8_t *read_whole(io_env *env, const char *path, size_t *n)
{
	io_file *f;
	uint64_t size = 0;
	*n = 0;
	if (io_open(env, path, IO_RDONLY, &f))
		return NULL;
	uint8_t *buf = NULL;
	if (!io_size(f, &size) && (buf = malloc(size ? (size_t)size : 1)) &&
	    io_pread(f, buf, (size_t)size, 0)) {
		free(buf);
		buf = NULL;
	}
	io_close(f);
	FZ_CHECK(buf || !size, "reading %s back from the simulator", path);
	*n = (size_t)size;
	return buf;
}

static int reseal_ckpts(io_env *env, const char *dir, const fz_store_image *img)
{
	int rc = 0;
	for (unsigned i = 0; !rc && i < FZ_CKPT_FILES; i++) {
		if (!(img->ckpts & (1u << i)))
			continue;
		char path[256];
		size_t n;
		fz_ckpt_path(dir, img->ckpt_gen + i, path, sizeof path);
		uint8_t *b = read_whole(env, path, &n);
		if (n >= CK_HDR) {
			fz_ckpt_reseal(b, n);
			rc = fz_put(env, path, 0, b, CK_HDR);
		}
		free(b);
	}
	return rc;
}

/* The checkpoint fields of a slot from the file it names, if there is one. */
static void sync_slot(io_env *env, const char *dir, uint8_t *slot)
{
	char path[256];
	size_t n;
	fz_ckpt_path(dir, get64(slot + 32), path, sizeof path);
	uint8_t *b = read_whole(env, path, &n);
	if (n >= CK_HDR) {
		uint64_t size = n;
		memcpy(slot + 40, b + 32, 8);          /* epoch */
		memcpy(slot + 48, &size, 8);           /* file size */
		memcpy(slot + 56, b + CK_HDR - 4, 4);  /* header CRC */
	}
	free(b);
}

static int reseal_super(io_env *env, const char *dir, const fz_store_image *img)
{
	char path[256];
	size_t n;
	snprintf(path, sizeof path, "%s/SUPER", dir);
	uint8_t *b = read_whole(env, path, &n);
	for (size_t at = 0; at + SB_SLOT <= n && at < 2 * SB_SLOT; at += SB_SLOT) {
		if (img->sync_super)
			sync_slot(env, dir, b + at);
		if (img->reseal_super)
			fz_super_reseal_slot(b + at);
	}
	int rc = n ? fz_put(env, path, 0, b, n < 2 * SB_SLOT ? n : 2 * SB_SLOT) : 0;
	free(b);
	return rc;
}

static int put_store_extent(io_env *env, const wal_config *cfg, fz_store_image *img,
			    const fz_extent *x)
{
	unsigned i = x->file & 7;
	uint32_t cap;
	char path[256];
	switch ((x->file >> 3) & 3) {
	case FZ_KIND_WAL:
		return put_wal(env, cfg, &img->wal, i, x);
	case FZ_KIND_SUPER:
		snprintf(path, sizeof path, "%s/SUPER", cfg->dir);
		cap = FZ_SUPER_CAP;
		break;
	case FZ_KIND_CKPT:
		fz_ckpt_path(cfg->dir, img->ckpt_gen + i, path, sizeof path);
		img->ckpts |= (uint8_t)(1u << i);
		cap = FZ_CKPT_CAP;
		break;
	default:
		snprintf(path, sizeof path, "%s/data", cfg->dir);
		cap = FZ_DATA_CAP;
	}
	uint32_t off = x->off % cap;
	return fz_put(env, path, off, x->p, x->n < cap - off ? x->n : cap - off);
}

int fz_store_build(io_env *env, const wal_config *cfg, fz_cursor *c, fz_store_image *img)
{
	img->wal.made = img->ckpts = 0;
	memset(img->wal.hi, 0, sizeof img->wal.hi);
	int rc = 0;
	while (!rc && c->n) {
		fz_extent x;
		read_extent(c, &x);
		rc = put_store_extent(env, cfg, img, &x);
	}
	if (!rc)
		rc = wal_finish(env, cfg, &img->wal);
	if (!rc && img->reseal_ckpt)
		rc = reseal_ckpts(env, cfg->dir, img);
	if (!rc && (img->sync_super || img->reseal_super))
		rc = reseal_super(env, cfg->dir, img);
	return rc;
}
