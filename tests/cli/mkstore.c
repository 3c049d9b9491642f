/*
 * mkstore.c — test helper for tests/cli: writes the on-disk pieces of a
 * store that `strata info` and `strata wal` inspect, through the real
 * codecs (sb_write, wal_open/wal_append/wal_sync_to on io_env_posix()),
 * and flips bits in them to make damaged stores.
 *
 *   mkstore build DIR        creates DIR with SUPER (generation 1 in slot 1,
 *                            then generation 2 in slot 0), four WAL commits
 *                            (epochs 2..5, each synced on its own), an empty
 *                            4096-byte ckpt.0000000000000001 and an 8192-byte
 *                            data file; prints "commit EPOCH START END" per
 *                            commit (LSNs; with one WAL file, LSN = offset)
 *   mkstore flip FILE OFF    XORs bit 4 of the byte at offset OFF of FILE
 *
 * Built only with the tests; never installed.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io.h"
#include "strata/strata.h"
#include "superblock.h"
#include "wal.h"

#define WAL_FILE (1u << 20)
#define ID_A UINT64_C(0x0000001000000040)
#define ID_B UINT64_C(0x0000001000000080)
#define ID_C UINT64_C(0x00000020000000c0)
#define ID_D UINT64_C(0x0000003000000101)

static int fail(const char *what, int rc)
{
	fprintf(stderr, "mkstore: %s: %s\n", what, strata_strerror(rc));
	return 1;
}

static void path_of(char *buf, size_t len, const char *dir, const char *name)
{
	snprintf(buf, len, "%s/%s", dir, name);
}

static void test_uuid(uint8_t uuid[16])
{
	for (int i = 0; i < 16; i++)
		uuid[i] = (uint8_t)(i * 0x11);
}

/* ---- SUPER -------------------------------------------------------------- */

static int write_super(const char *dir)
{
	char path[PATH_MAX];
	path_of(path, sizeof path, dir, "SUPER");
	io_file *f;
	int rc = io_open(io_env_posix(), path, IO_CREATE | IO_EXCL, &f);
	if (rc)
		return rc;
	sb_state s = {.generation = 1, .wal_file_size = WAL_FILE, .last_epoch = 1};
	test_uuid(s.uuid);
	rc = sb_write(f, &s);
	s.generation = 2;
	s.ckpt_gen = 1;
	s.ckpt_epoch = 1;
	s.ckpt_size = 4096;
	s.ckpt_crc = 0xdeadbeefu;
	s.last_epoch = 5;
	if (!rc)
		rc = sb_write(f, &s);
	io_close(f);
	return rc;
}

/* ---- WAL ---------------------------------------------------------------- */

static const uint8_t bytes[100] = {1, 2, 3, 4, 5, 6, 7, 8};

/* Commit k of the four (epoch k + 2). */
static size_t commit_recs(int k, wal_rec r[3])
{
	switch (k) {
	case 0:
		r[0] = (wal_rec){.type = WAL_NODE, .kind = 1, .id = ID_A, .bytes = bytes, .len = 16};
		r[1] = (wal_rec){.type = WAL_NODE, .kind = 2, .id = ID_B, .bytes = bytes, .len = 24};
		r[2] = (wal_rec){.type = WAL_ROOT, .id = ID_A, .bytes = "main", .len = 4};
		return 3;
	case 1:
		r[0] = (wal_rec){.type = WAL_NODE, .kind = 1, .id = ID_C, .bytes = bytes, .len = 16};
		r[1] = (wal_rec){.type = WAL_RETIRE, .id = ID_A};
		r[2] = (wal_rec){.type = WAL_ROOT, .id = ID_C, .bytes = "main", .len = 4};
		return 3;
	case 2:
		r[0] = (wal_rec){.type = WAL_RETIRE, .id = ID_B};
		r[1] = (wal_rec){.type = WAL_ROOT, .id = 0, .bytes = "aux", .len = 3};
		return 2;
	default:
		r[0] = (wal_rec){.type = WAL_NODE, .kind = 3, .id = ID_D, .bytes = bytes, .len = 100};
		r[1] = (wal_rec){.type = WAL_ROOT, .id = ID_D, .bytes = "aux", .len = 3};
		return 2;
	}
}

static int append_synced(wal *w, int k)
{
	wal_rec r[3];
	size_t n = commit_recs(k, r);
	uint64_t start = wal_end(w), end;
	if (start % WAL_FILE == 0)
		start += WAL_FILE_HDR;
	int rc = wal_append(w, r, n, (uint64_t)k + 2, &end);
	if (!rc)
		rc = wal_sync_to(w, end);
	if (!rc)
		printf("commit %d %" PRIu64 " %" PRIu64 "\n", k + 2, start, end);
	return rc;
}

static int write_wal(const char *dir)
{
	wal_config cfg = {.env = io_env_posix(), .dir = dir, .file_size = WAL_FILE};
	test_uuid(cfg.uuid);
	wal *w = NULL;
	int rc = wal_open(&cfg, 0, &w);
	for (int k = 0; k < 4 && !rc; k++)
		rc = append_synced(w, k);
	if (w)
		wal_close(w);
	return rc;
}

/* ---- other files --------------------------------------------------------- */

static int write_plain(const char *dir, const char *name, uint64_t size)
{
	char path[PATH_MAX];
	path_of(path, sizeof path, dir, name);
	io_file *f;
	int rc = io_open(io_env_posix(), path, IO_CREATE | IO_EXCL, &f);
	if (rc)
		return rc;
	rc = io_truncate(f, size);
	if (!rc)
		rc = io_sync(f);
	io_close(f);
	return rc;
}

static int build(const char *dir)
{
	if (mkdir(dir, 0777))
		return fail(dir, -errno);
	int rc = write_super(dir);
	if (rc)
		return fail("SUPER", rc);
	if ((rc = write_wal(dir)))
		return fail("WAL", rc);
	if ((rc = write_plain(dir, "ckpt.0000000000000001", 4096)) ||
	    (rc = write_plain(dir, "data", 8192)))
		return fail("checkpoint and data files", rc);
	return 0;
}

static int flip(const char *path, const char *offset)
{
	char *end;
	uint64_t off = strtoull(offset, &end, 0);
	if (*end || !*offset)
		return fail(offset, STRATA_EINVAL);
	io_file *f;
	uint8_t b;
	int rc = io_open(io_env_posix(), path, 0, &f);
	if (rc)
		return fail(path, rc);
	rc = io_pread(f, &b, 1, off);
	b ^= 0x10;
	if (!rc)
		rc = io_pwrite(f, &b, 1, off);
	if (!rc)
		rc = io_sync(f);
	io_close(f);
	return rc ? fail(path, rc) : 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "build") == 0)
		return build(argv[2]);
	if (argc == 4 && strcmp(argv[1], "flip") == 0)
		return flip(argv[2], argv[3]);
	fprintf(stderr, "usage: mkstore build DIR | mkstore flip FILE OFFSET\n");
	return 2;
}
