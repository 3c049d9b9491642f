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
#include "io_sim.h"

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
io_env *fz_sim_store(void)
{
	io_env *env = io_sim_new();
	FZ_CHECK(env, "io_sim_new failed");
	int rc = io_mkdir(env, FZ_DIR);
	if (!rc)
		rc = io_sync_dir(env, ".");
	FZ_CHECK(!rc, "making the store directory: %d", rc);
	return env;
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
		uint32_t crc = strata_crc32c(strata_crc32c(0, p, 20), p + WAL_FRAME_HDR, plen);
		memcpy(p + 20, &crc, 4);
		pos += walf_frame_size(plen);
	}
}

/* One extent: where it goes, then its bytes. */
static int put_extent(io_env *env, const wal_config *cfg, fz_cursor *c, fz_wal_image *img)
{
	uint64_t F = cfg->file_size;
	unsigned i = fz_u8(c) % FZ_WAL_FILES;
	uint64_t off = fz_u32(c) % F;
	size_t want = fz_u16(c);
	const uint8_t *src;
	size_t n = fz_take(c, want, &src);
	if (n > F - off)
		n = (size_t)(F - off);
	uint8_t *copy = malloc(n ? n : 1);
	FZ_CHECK(copy, "out of memory");
	memcpy(copy, src, n);
	if (img->reseal)
		fz_wal_reseal(copy, n, off, img->base_seq + i, F);
	char path[256];
	fz_wal_path(cfg, img->base_seq + i, path, sizeof path);
	int rc = fz_put(env, path, off, copy, n);
	free(copy);
	img->made |= (uint8_t)(1u << i);
	return rc;
}

int fz_wal_build(io_env *env, const wal_config *cfg, fz_cursor *c, fz_wal_image *img)
{
	img->made = 0;
	int rc = 0;
	while (!rc && c->n)
		rc = put_extent(env, cfg, c, img);
	for (unsigned i = 0; !rc && img->full && i < FZ_WAL_FILES; i++) {
		if (!(img->made & (1u << i)))
			continue;
		char path[256];
		fz_wal_path(cfg, img->base_seq + i, path, sizeof path);
		rc = fz_extend(env, path, cfg->file_size);
	}
	return rc;
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
