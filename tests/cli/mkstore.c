/*
 * mkstore.c — test helper for tests/cli: writes the on-disk pieces of a
 * store that `strata info` and `strata wal` inspect, through the real
 * codecs (sb_write, wal_open/wal_append/wal_sync_to on io_env_posix()),
 * real DURABLE stores for `strata check` and `strata checkpoint` (through
 * the public API; the internals only to say where node images lie), and
 * flips bits in them to make damaged stores.
 *
 *   mkstore build DIR        creates DIR with SUPER (generation 1 in slot 1,
 *                            then generation 2 in slot 0), four WAL commits
 *                            (epochs 2..5, each synced on its own), an empty
 *                            4096-byte ckpt.0000000000000001 and an 8192-byte
 *                            data file; prints "commit EPOCH START END" per
 *                            commit (LSNs; with one WAL file, LSN = offset)
 *   mkstore flip FILE OFF    XORs bit 4 of the byte at offset OFF of FILE
 *   mkstore durable DIR      creates a real DURABLE store in DIR through the
 *                            public API (see durable_commit: roots list,
 *                            blob, leaf; 5 live nodes, one > 64 KiB; epochs
 *                            2 and 3), closes it, then reopens it and prints
 *                            where each root's node image lies on disk:
 *                            "image ROOT ID FILE OFFSET SIZE" (FILE: data or
 *                            ckpt.<gen>; read-only, the store is unchanged)
 *   mkstore durable-crash DIR
 *                            commits 1, a checkpoint, commits 2 and 3 (root
 *                            blob2 gets a second large node), then _exit(0)
 *                            without closing: recovery replays 2 commits
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
#include <unistd.h>

#include "durable.h"
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

/* ---- a real DURABLE store ------------------------------------------------- */

#define LARGE_SIZE 100000u /* > 64 KiB: a large object */
static const char *const durable_roots[] = {"list", "blob", "leaf", "blob2"};
#define NDROOTS 4

static int open_durable(const char *dir, unsigned flags, strata_store **s)
{
	strata_options o;
	strata_options_init(&o);
	o.mode = STRATA_DURABLE;
	o.path = dir;
	o.flags = flags;
	o.wal_file_size = WAL_FILE;
	o.checkpoint_interval_ms = 0;
	int rc = strata_open(&o, s);
	if (rc)
		fprintf(stderr, "mkstore: %s\n", strata_last_error());
	return rc;
}

/* A node of `size` bytes: `next` in its first 8, then a pattern. */
static int put_node(strata_txn *t, uint32_t size, strata_node_id next, strata_node_id *id)
{
	uint8_t *p;
	int rc = strata_txn_alloc(t, size, 7, id, (void **)&p);
	if (rc)
		return rc;
	memcpy(p, &next, sizeof next);
	for (uint32_t i = sizeof next; i < size; i++)
		p[i] = (uint8_t)(i * 31 + size);
	return 0;
}

/* Commit k of the workload:
 *   1  list -> a chain of three small nodes; blob -> a large node;
 *      leaf -> a small node
 *   2  leaf copied on write (the old version retired)
 *   3  blob2 -> a second large node */
static int durable_commit(strata_store *s, int k)
{
	strata_txn *t;
	strata_node_id a, b, c, id;
	void *p;
	int rc = strata_txn_begin(s, durable_roots, NDROOTS, 0, &t);
	if (rc)
		return rc;
	if (k == 1 && !(rc = put_node(t, 48, 0, &c)) && !(rc = put_node(t, 512, c, &b)) &&
	    !(rc = put_node(t, 2000, b, &a)) && !(rc = strata_txn_set_root(t, "list", a)) &&
	    !(rc = put_node(t, LARGE_SIZE, 0, &id)) && !(rc = strata_txn_set_root(t, "blob", id)) &&
	    !(rc = put_node(t, 200, 0, &id)))
		rc = strata_txn_set_root(t, "leaf", id);
	if (k == 2 && !(rc = strata_txn_get_root(t, "leaf", &a)) &&
	    !(rc = strata_txn_write(t, a, &id, &p, NULL)))
		rc = strata_txn_set_root(t, "leaf", id);
	if (k == 3 && !(rc = put_node(t, LARGE_SIZE + 1000, 0, &id)))
		rc = strata_txn_set_root(t, "blob2", id);
	if (rc) {
		strata_txn_abort(t);
		return rc;
	}
	return strata_txn_commit(t, NULL);
}

/* "image ROOT ID FILE OFFSET SIZE" for each root whose image is on disk
 * and not loaded: a small node's slot in data, a large one's place in the
 * checkpoint file. */
static void print_image(strata_store *s, const char *name, strata_node_id id)
{
	ot_entry *e = ot_entry_of(&s->ot, id);
	uint64_t loc = e ? atomic_load(&e->loc) : 0;
	uint32_t size = e ? OT_INFO_SIZE(atomic_load(&e->info)) : 0;
	if (!(loc & LAZY_BIT))
		return;
	if (seg_class_of(size) == STRATA_CLASS_LARGE) {
		printf("image %s %#" PRIx64 " ckpt.%016" PRIx64 " %" PRIu64 " %u\n", name, id,
		       s->dur->sb.ckpt_gen, loc >> 1, size);
		return;
	}
	const void *p = (const void *)(uintptr_t)(loc & ~LAZY_BIT);
	printf("image %s %#" PRIx64 " data %" PRIu64 " %u\n", name, id,
	       (uint64_t)seg_no_of(p) * SEG_SIZE + seg_offset_of(p), size);
}

static int print_images(const char *dir)
{
	strata_store *s;
	strata_snapshot *snap;
	int rc = open_durable(dir, 0, &s);
	if (rc)
		return rc;
	if (!(rc = strata_snapshot_open(s, &snap))) {
		for (int i = 0; i < NDROOTS; i++) {
			strata_node_id id;
			if (!strata_snapshot_root(snap, durable_roots[i], &id) && id)
				print_image(s, durable_roots[i], id);
		}
		strata_snapshot_close(snap);
	}
	int crc = strata_close(s);
	return rc ? rc : crc;
}

static int make_durable(const char *dir, bool crash)
{
	strata_store *s;
	int rc = open_durable(dir, STRATA_OPEN_CREATE, &s);
	if (rc)
		return fail(dir, rc);
	if (!(rc = durable_commit(s, 1)) && crash)
		rc = strata_checkpoint(s);
	if (!rc)
		rc = durable_commit(s, 2);
	if (!rc && crash && !(rc = durable_commit(s, 3)))
		_exit(0); /* SYNC commits are durable; nothing else is written */
	int crc = strata_close(s);
	if (rc || crc)
		return fail("durable store", rc ? rc : crc);
	return (rc = print_images(dir)) ? fail("reopening the store", rc) : 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "build") == 0)
		return build(argv[2]);
	if (argc == 4 && strcmp(argv[1], "flip") == 0)
		return flip(argv[2], argv[3]);
	if (argc == 3 && strcmp(argv[1], "durable") == 0)
		return make_durable(argv[2], false);
	if (argc == 3 && strcmp(argv[1], "durable-crash") == 0)
		return make_durable(argv[2], true);
	fprintf(stderr, "usage: mkstore build DIR | mkstore flip FILE OFFSET |\n"
			"       mkstore durable DIR | mkstore durable-crash DIR\n");
	return 2;
}
