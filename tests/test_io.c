/*
 * test_io.c — the I/O layer. The same behavioural tests run against the
 * real file system (in a mkdtemp directory under /tmp, removed afterwards)
 * and the simulator: whole reads and writes, sizes, truncate, allocate,
 * open flags, rename/unlink/exists/list/mkdir, maps that see later writes,
 * lock exclusivity, reads past end of file. Then the simulator alone: what
 * each power-loss mode keeps (data and directory entries), crash and
 * failure injection by step, bit flips, stale handles.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io.h"
#include "io_sim.h"
#include "support/model.h"

TestSuite(io_posix, .fini = test_leak_check);
TestSuite(io_sim, .fini = test_leak_check);
TestSuite(io_sim_crash, .fini = test_leak_check);

/* ---- fixture: one env and a base directory per test ------------------------ */

static io_env *E;
static char base[64];

static void posix_setup(void)
{
	E = io_env_posix();
	snprintf(base, sizeof base, "/tmp/strata-io-XXXXXX");
	cr_assert_not_null(mkdtemp(base), "mkdtemp: %s", strerror(errno));
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st, (void)type, (void)ftw;
	return remove(path);
}

static void posix_teardown(void)
{
	nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void sim_setup(void)
{
	E = io_sim_new();
	cr_assert_not_null(E);
	snprintf(base, sizeof base, "/sim");
	cr_assert_eq(io_mkdir(E, base), 0);
	cr_assert_eq(io_sync_dir(E, "/"), 0);
}

static void sim_teardown(void)
{
	io_sim_free(E);
	E = NULL;
}

/* base/name, in one of a few rotating buffers (several live at once). */
static const char *P(const char *name)
{
	static char bufs[4][256];
	static int next;
	char *b = bufs[next++ & 3];
	snprintf(b, sizeof bufs[0], "%s/%s", base, name);
	return b;
}

/* A test body run once per env. */
#define BOTH(name)                                                                   \
	static void body_##name(void);                                               \
	Test(io_posix, name, .init = posix_setup, .fini = posix_teardown) { body_##name(); } \
	Test(io_sim, name, .init = sim_setup, .fini = sim_teardown) { body_##name(); }       \
	static void body_##name(void)

#define SIM(name) Test(io_sim, name, .init = sim_setup, .fini = sim_teardown)

static io_file *open_ok(const char *path, unsigned flags)
{
	io_file *f = NULL;
	int rc = io_open(E, path, flags, &f);
	cr_assert_eq(rc, 0, "open %s: %s", path, strata_strerror(rc));
	cr_assert_not_null(f);
	return f;
}

static void write_ok(io_file *f, const void *b, size_t n, uint64_t off)
{
	int rc = io_pwrite(f, b, n, off);
	cr_assert_eq(rc, 0, "pwrite %zu at %llu: %s", n, (unsigned long long)off, strata_strerror(rc));
}

static void fill_ok(io_file *f, int c, size_t n, uint64_t off)
{
	unsigned char *b = malloc(n ? n : 1);
	cr_assert_not_null(b);
	memset(b, c, n);
	write_ok(f, b, n, off);
	free(b);
}

static uint64_t size_of(io_file *f)
{
	uint64_t s = 12345;
	cr_assert_eq(io_size(f, &s), 0);
	return s;
}

/* Asserts that [off, off+n) of f is all byte c. */
static void expect_fill(io_file *f, int c, size_t n, uint64_t off)
{
	unsigned char *b = malloc(n ? n : 1);
	cr_assert_not_null(b);
	cr_assert_eq(io_pread(f, b, n, off), 0, "pread %zu at %llu", n, (unsigned long long)off);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(b[i], (unsigned char)c, "byte %llu is 0x%02x, want 0x%02x",
			     (unsigned long long)(off + i), b[i], (unsigned char)c);
	free(b);
}

static void pattern(unsigned char *b, size_t n, uint64_t seed)
{
	test_rng r = {seed};
	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)rng_next(&r);
}

/* ---- both envs ------------------------------------------------------------------ */

BOTH(write_read_size)
{
	io_file *f = open_ok(P("a"), IO_CREATE);
	cr_assert_eq(size_of(f), 0);
	unsigned char w[10000], r[10000];
	pattern(w, sizeof w, 1);
	write_ok(f, w, sizeof w, 0);
	cr_assert_eq(size_of(f), sizeof w);
	memset(r, 0, sizeof r);
	cr_assert_eq(io_pread(f, r, sizeof r, 0), 0);
	cr_assert_arr_eq(r, w, sizeof w);
	/* overwrite in the middle, then extend with a gap that reads as zeros */
	write_ok(f, "hello", 5, 4000);
	write_ok(f, "tail", 4, 20000);
	cr_assert_eq(size_of(f), 20004);
	cr_assert_eq(io_pread(f, r, 5, 4000), 0);
	cr_assert_arr_eq(r, "hello", 5);
	expect_fill(f, 0, 10000, 10000);
	cr_assert_eq(io_pread(f, r, 4, 20000), 0);
	cr_assert_arr_eq(r, "tail", 4);
	cr_assert_eq(io_sync(f), 0);
	cr_assert_eq(io_close(f), 0);
	/* reopened read-only: same bytes */
	f = open_ok(P("a"), IO_RDONLY);
	cr_assert_eq(size_of(f), 20004);
	cr_assert_eq(io_pread(f, r, 100, 0), 0);
	cr_assert_arr_eq(r, w, 100);
	cr_assert_eq(io_close(f), 0);
	cr_assert_eq(io_close(NULL), 0);
}

BOTH(pread_past_eof_is_truncated)
{
	io_file *f = open_ok(P("a"), IO_CREATE);
	fill_ok(f, 7, 100, 0);
	unsigned char b[200];
	cr_assert_eq(io_pread(f, b, 1, 100), STRATA_ETRUNCATED);
	cr_assert_eq(io_pread(f, b, 50, 60), STRATA_ETRUNCATED, "straddling the end");
	cr_assert_eq(io_pread(f, b, 200, 0), STRATA_ETRUNCATED);
	cr_assert_eq(io_pread(f, b, 10, 1u << 20), STRATA_ETRUNCATED);
	cr_assert_eq(io_pread(f, b, 40, 60), 0, "ending exactly at the end");
	cr_assert_eq(io_pread(f, b, 0, 100), 0, "empty read at the end");
	cr_assert_eq(io_close(f), 0);
}

BOTH(truncate_shrinks_and_grows_with_zeros)
{
	io_file *f = open_ok(P("a"), IO_CREATE);
	fill_ok(f, 0xab, 8192, 0);
	cr_assert_eq(io_truncate(f, 1000), 0);
	cr_assert_eq(size_of(f), 1000);
	expect_fill(f, 0xab, 1000, 0);
	unsigned char b;
	cr_assert_eq(io_pread(f, &b, 1, 1000), STRATA_ETRUNCATED);
	cr_assert_eq(io_truncate(f, 9000), 0);
	cr_assert_eq(size_of(f), 9000);
	expect_fill(f, 0xab, 1000, 0);
	expect_fill(f, 0, 8000, 1000); /* the old bytes do not come back */
	cr_assert_eq(io_truncate(f, 0), 0);
	cr_assert_eq(size_of(f), 0);
	cr_assert_eq(io_close(f), 0);
}

BOTH(allocate_zero_fills_and_keeps_data)
{
	io_file *f = open_ok(P("a"), IO_CREATE);
	fill_ok(f, 0x5a, 3000, 0);
	/* overlapping the data: the data stays, the rest is zeros */
	cr_assert_eq(io_allocate(f, 1000, 1 << 20), 0);
	cr_assert_eq(size_of(f), 1000 + (1 << 20));
	expect_fill(f, 0x5a, 3000, 0);
	expect_fill(f, 0, 1000 + (1 << 20) - 3000, 3000);
	/* past the end with a gap: size is off+len, everything new reads zero */
	uint64_t off = 3 << 20;
	cr_assert_eq(io_allocate(f, off, 5000), 0);
	cr_assert_eq(size_of(f), off + 5000);
	expect_fill(f, 0, off + 5000 - 3000, 3000);
	/* inside the file: nothing changes */
	cr_assert_eq(io_allocate(f, 0, 100), 0);
	cr_assert_eq(io_allocate(f, 10, 0), 0);
	cr_assert_eq(size_of(f), off + 5000);
	expect_fill(f, 0x5a, 3000, 0);
	cr_assert_eq(io_close(f), 0);
}

BOTH(open_flags)
{
	io_file *f = NULL;
	cr_assert_eq(io_open(E, P("missing"), 0, &f), -ENOENT);
	cr_assert_null(f);
	cr_assert_eq(io_open(E, P("missing"), IO_RDONLY, &f), -ENOENT);
	cr_assert_eq(io_open(E, P("nodir/x"), IO_CREATE, &f), -ENOENT);
	f = open_ok(P("a"), IO_CREATE | IO_EXCL);
	write_ok(f, "abc", 3, 0);
	cr_assert_eq(io_close(f), 0);
	cr_assert_eq(io_open(E, P("a"), IO_CREATE | IO_EXCL, &f), -EEXIST);
	cr_assert_eq(io_open(E, P("a/x"), IO_CREATE, &f), -ENOTDIR);
	f = open_ok(P("a"), IO_CREATE); /* exists: opened, not truncated */
	cr_assert_eq(size_of(f), 3);
	cr_assert_eq(io_close(f), 0);
	f = open_ok(P("a"), IO_RDONLY);
	cr_assert_eq(io_pwrite(f, "x", 1, 0), -EBADF);
	cr_assert_eq(io_truncate(f, 0), -EINVAL); /* ftruncate(2) on a read-only fd */
	cr_assert_eq(io_allocate(f, 0, 10), -EBADF);
	cr_assert_eq(io_lock(f), -EBADF);
	char b[3];
	cr_assert_eq(io_pread(f, b, 3, 0), 0);
	cr_assert_arr_eq(b, "abc", 3);
	cr_assert_eq(io_close(f), 0);
	cr_assert_eq(io_open(E, base, IO_CREATE, &f), -EISDIR);
}

BOTH(rename_unlink_exists)
{
	io_file *f = open_ok(P("a"), IO_CREATE);
	write_ok(f, "first", 5, 0);
	cr_assert_eq(io_close(f), 0);
	f = open_ok(P("b"), IO_CREATE);
	write_ok(f, "second!", 7, 0);
	cr_assert_eq(io_close(f), 0);
	cr_assert_eq(io_exists(E, P("a")), 1);
	cr_assert_eq(io_exists(E, P("c")), 0);
	cr_assert_eq(io_exists(E, P("a/under-a-file")), 0);
	cr_assert_eq(io_exists(E, base), 1);
	/* plain rename */
	cr_assert_eq(io_rename(E, P("a"), P("c")), 0);
	cr_assert_eq(io_exists(E, P("a")), 0);
	cr_assert_eq(io_exists(E, P("c")), 1);
	/* rename over an existing file replaces it */
	cr_assert_eq(io_rename(E, P("c"), P("b")), 0);
	cr_assert_eq(io_exists(E, P("c")), 0);
	f = open_ok(P("b"), IO_RDONLY);
	cr_assert_eq(size_of(f), 5);
	char buf[5];
	cr_assert_eq(io_pread(f, buf, 5, 0), 0);
	cr_assert_arr_eq(buf, "first", 5);
	/* unlink while open: the name goes, the open file stays readable */
	cr_assert_eq(io_unlink(E, P("b")), 0);
	cr_assert_eq(io_exists(E, P("b")), 0);
	cr_assert_eq(io_pread(f, buf, 5, 0), 0);
	cr_assert_arr_eq(buf, "first", 5);
	cr_assert_eq(io_close(f), 0);
	cr_assert_eq(io_unlink(E, P("b")), -ENOENT);
	cr_assert_eq(io_rename(E, P("b"), P("d")), -ENOENT);
	cr_assert_eq(io_sync_dir(E, base), 0);
}

typedef struct names {
	int n, stop_at;
	char v[16][32];
} names;

static int collect(void *ctx, const char *name)
{
	names *ns = ctx;
	cr_assert_lt(ns->n, 16);
	snprintf(ns->v[ns->n++], 32, "%s", name);
	return ns->n == ns->stop_at ? 42 : 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(a, b);
}

BOTH(mkdir_list)
{
	cr_assert_eq(io_mkdir(E, P("d")), 0);
	cr_assert_eq(io_mkdir(E, P("d")), -EEXIST);
	cr_assert_eq(io_mkdir(E, P("x/y")), -ENOENT);
	cr_assert_eq(io_sync_dir(E, P("d")), 0);
	cr_assert_eq(io_sync_dir(E, P("nope")), -ENOENT);
	const char *files[] = {"d/one", "d/two", "d/three", "top"};
	for (int i = 0; i < 4; i++)
		cr_assert_eq(io_close(open_ok(P(files[i]), IO_CREATE)), 0);
	cr_assert_eq(io_mkdir(E, P("d/sub")), 0);
	cr_assert_eq(io_close(open_ok(P("d/sub/deep"), IO_CREATE)), 0);
	names ns = {0};
	cr_assert_eq(io_list(E, P("d"), collect, &ns), 0);
	cr_assert_eq(ns.n, 4, "entries of d: %d", ns.n);
	qsort(ns.v, (size_t)ns.n, sizeof ns.v[0], by_name);
	const char *want[] = {"one", "sub", "three", "two"};
	for (int i = 0; i < 4; i++)
		cr_assert_str_eq(ns.v[i], want[i]);
	names top = {0};
	cr_assert_eq(io_list(E, base, collect, &top), 0);
	cr_assert_eq(top.n, 2, "d and top");
	names early = {.stop_at = 2};
	cr_assert_eq(io_list(E, P("d"), collect, &early), 42, "callback's value comes back");
	cr_assert_eq(early.n, 2, "listing stopped");
	names none = {0};
	cr_assert_eq(io_list(E, P("nope"), collect, &none), -ENOENT);
	cr_assert_eq(io_list(E, P("top"), collect, &none), -ENOTDIR);
	cr_assert_eq(io_unlink(E, P("d")), -EISDIR);
}

BOTH(map_sees_later_writes)
{
	io_file *f = open_ok(P("a"), IO_CREATE);
	unsigned char w[20000];
	pattern(w, sizeof w, 3);
	write_ok(f, w, sizeof w, 0);
	const void *m = NULL;
	/* an offset that is not page-aligned */
	cr_assert_eq(io_map(f, 100, 10000, &m), 0);
	cr_assert_not_null(m);
	cr_assert_arr_eq(m, w + 100, 10000);
	write_ok(f, "CHANGED", 7, 5000);
	cr_assert_arr_eq((const char *)m + 4900, "CHANGED", 7);
	/* a second map of another range at the same time */
	const void *m2 = NULL;
	cr_assert_eq(io_map(f, 4096, 4096, &m2), 0);
	cr_assert_arr_eq((const char *)m2 + (5000 - 4096), "CHANGED", 7);
	cr_assert_eq(io_unmap(f, m2, 4096), 0);
	cr_assert_eq(io_unmap(f, m, 10000), 0);
	/* the range must be inside the file */
	cr_assert_eq(io_map(f, 19000, 2000, &m), STRATA_ETRUNCATED);
	cr_assert_null(m);
	cr_assert_eq(io_map(f, 0, 0, &m), -EINVAL);
	cr_assert_eq(io_close(f), 0);
}

BOTH(lock_is_exclusive)
{
	io_file *a = open_ok(P("LOCK"), IO_CREATE);
	io_file *b = open_ok(P("LOCK"), 0);
	cr_assert_eq(io_lock(a), 0);
	cr_assert_eq(io_lock(a), 0, "relocking one's own lock");
	cr_assert_eq(io_lock(b), STRATA_EBUSY);
	io_file *c = open_ok(P("LOCK"), 0);
	cr_assert_eq(io_lock(c), STRATA_EBUSY);
	cr_assert_eq(io_close(c), 0);
	cr_assert_eq(io_lock(b), STRATA_EBUSY, "closing another handle does not drop the lock");
	cr_assert_eq(io_close(a), 0);
	cr_assert_eq(io_lock(b), 0, "released on close");
	cr_assert_eq(io_close(b), 0);
}

static int unlink_each(void *ctx, const char *name)
{
	(void)ctx;
	char path[64];
	snprintf(path, sizeof path, "d/%.32s", name);
	cr_assert_eq(io_unlink(E, P(path)), 0, "unlink %s from inside list", name);
	return 0;
}

BOTH(list_callback_may_use_the_env)
{
	cr_assert_eq(io_mkdir(E, P("d")), 0);
	for (int i = 0; i < 5; i++) {
		char name[16];
		snprintf(name, sizeof name, "d/f%d", i);
		cr_assert_eq(io_close(open_ok(P(name), IO_CREATE)), 0);
	}
	cr_assert_eq(io_list(E, P("d"), unlink_each, NULL), 0);
	names ns = {0};
	cr_assert_eq(io_list(E, P("d"), collect, &ns), 0);
	cr_assert_eq(ns.n, 0, "every entry unlinked");
}

typedef struct worker {
	int id;
	int rc;
} worker;

/* Each thread writes, reads back and syncs its own file. */
static void *work(void *arg)
{
	worker *w = arg;
	char name[16];
	snprintf(name, sizeof name, "t%d", w->id);
	io_file *f = NULL;
	char path[128];
	snprintf(path, sizeof path, "%s/%s", base, name);
	if ((w->rc = io_open(E, path, IO_CREATE, &f)) != 0)
		return NULL;
	unsigned char b[512], r[512];
	for (int i = 0; i < 200 && !w->rc; i++) {
		memset(b, w->id * 16 + i % 16, sizeof b);
		w->rc = io_pwrite(f, b, sizeof b, (uint64_t)(i % 32) * 512);
		if (!w->rc)
			w->rc = io_pread(f, r, sizeof r, (uint64_t)(i % 32) * 512);
		if (!w->rc && memcmp(b, r, sizeof b))
			w->rc = -1000;
		if (!w->rc && i % 50 == 0)
			w->rc = io_sync(f);
	}
	int rc = io_close(f);
	w->rc = w->rc ? w->rc : rc;
	return NULL;
}

BOTH(threads_on_separate_files)
{
	pthread_t t[4];
	worker w[4];
	for (int i = 0; i < 4; i++) {
		w[i] = (worker){.id = i};
		cr_assert_eq(pthread_create(&t[i], NULL, work, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		cr_assert_eq(w[i].rc, 0, "thread %d: %s", i, strata_strerror(w[i].rc));
	}
	names ns = {0};
	cr_assert_eq(io_list(E, base, collect, &ns), 0);
	cr_assert_eq(ns.n, 4);
}

/* ---- posix only -------------------------------------------------------------------- */

Test(io_posix, allocate_fills_holes_for_real, .init = posix_setup, .fini = posix_teardown)
{
	io_file *f = open_ok(P("a"), IO_CREATE);
	write_ok(f, "keep", 4, 8192);
	cr_assert_eq(io_truncate(f, 4 << 20), 0); /* mostly a hole */
	struct stat st;
	cr_assert_eq(stat(P("a"), &st), 0);
	blkcnt_t before = st.st_blocks;
	cr_assert_eq(io_allocate(f, 0, 4 << 20), 0);
	cr_assert_eq(stat(P("a"), &st), 0);
	cr_assert_geq((uint64_t)st.st_blocks * 512, 4u << 20, "blocks before %lld after %lld",
		      (long long)before, (long long)st.st_blocks);
	cr_assert_eq(size_of(f), 4 << 20);
	char b[4];
	cr_assert_eq(io_pread(f, b, 4, 8192), 0);
	cr_assert_arr_eq(b, "keep", 4);
	expect_fill(f, 0, 8192, 0);
	expect_fill(f, 0, (4 << 20) - 8196, 8196);
	cr_assert_eq(io_close(f), 0);
}

/* ---- simulator: durability -------------------------------------------------------- */

/* A file whose name is durable, with `n` bytes of `c` synced. */
static io_file *durable_file(const char *name, int c, size_t n)
{
	io_file *f = open_ok(P(name), IO_CREATE);
	fill_ok(f, c, n, 0);
	cr_assert_eq(io_sync(f), 0);
	cr_assert_eq(io_sync_dir(E, base), 0);
	return f;
}

static uint64_t sim_size(const char *name)
{
	uint64_t s = 0;
	cr_assert_eq(io_sim_file_size(E, P(name), &s), 0);
	return s;
}

SIM(drop_all_keeps_only_synced)
{
	io_file *f = durable_file("a", 'A', 4096);
	fill_ok(f, 'B', 1000, 100);  /* unsynced overwrite */
	fill_ok(f, 'C', 5000, 4096); /* unsynced extension */
	cr_assert_eq(io_truncate(f, 9000), 0);
	cr_assert_eq(sim_size("a"), 9000);
	io_sim_power_loss(E, IO_SIM_DROP_ALL, 1);
	cr_assert_eq(io_close(f), 0);
	cr_assert_eq(sim_size("a"), 4096);
	f = open_ok(P("a"), 0);
	expect_fill(f, 'A', 4096, 0);
	cr_assert_eq(io_close(f), 0);
}

SIM(keep_all_keeps_everything)
{
	io_file *f = durable_file("a", 'A', 4096);
	fill_ok(f, 'B', 1000, 100);
	fill_ok(f, 'C', 5000, 4096);
	io_sim_power_loss(E, IO_SIM_KEEP_ALL, 1);
	cr_assert_eq(io_close(f), 0);
	f = open_ok(P("a"), 0);
	cr_assert_eq(size_of(f), 9096);
	expect_fill(f, 'A', 100, 0);
	expect_fill(f, 'B', 1000, 100);
	expect_fill(f, 'A', 4096 - 1100, 1100);
	expect_fill(f, 'C', 5000, 4096);
	cr_assert_eq(io_close(f), 0);
}

SIM(sync_makes_it_survive)
{
	io_file *f = durable_file("a", 'A', 4096);
	fill_ok(f, 'B', 4096, 4096);
	cr_assert_eq(io_sync(f), 0);
	cr_assert_eq(io_truncate(f, 10), 0);
	cr_assert_eq(io_sync(f), 0);
	fill_ok(f, 'Z', 100, 0); /* unsynced: gone */
	io_sim_power_loss(E, IO_SIM_DROP_ALL, 9);
	cr_assert_eq(io_close(f), 0);
	f = open_ok(P("a"), 0);
	cr_assert_eq(size_of(f), 10);
	expect_fill(f, 'A', 10, 0);
	cr_assert_eq(io_close(f), 0);
}

/* TEAR_LAST: earlier unsynced writes survive whole; the last one survives as
 * new bytes up to a sector boundary (or its start or end) and old bytes
 * after it. */
SIM(tear_last_keeps_sector_prefix)
{
	enum { OFF = 300, LEN = 3000, OLD = 8192 };
	bool seen[OFF + LEN + 1] = {0};
	int distinct = 0;
	io_close(durable_file("a", 'o', OLD));
	for (uint64_t seed = 0; seed < 24; seed++) {
		io_file *f = open_ok(P("a"), 0);
		fill_ok(f, 'e', 100, 6000); /* an earlier write: must survive */
		fill_ok(f, 'N', LEN, OFF);
		io_sim_power_loss(E, IO_SIM_TEAR_LAST, seed);
		cr_assert_eq(io_close(f), 0);
		f = open_ok(P("a"), 0);
		cr_assert_eq(size_of(f), OLD);
		unsigned char b[OLD];
		cr_assert_eq(io_pread(f, b, OLD, 0), 0);
		size_t cut = OFF;
		while (cut < OFF + LEN && b[cut] == 'N')
			cut++;
		cr_assert(cut == OFF || cut == OFF + LEN || cut % 512 == 0, "seed %llu: cut at %zu",
			  (unsigned long long)seed, cut);
		for (size_t i = 0; i < OLD; i++) {
			int want = i >= OFF && i < cut ? 'N' : (i >= 6000 && i < 6100 ? 'e' : 'o');
			cr_assert_eq(b[i], want, "seed %llu: byte %zu", (unsigned long long)seed, i);
		}
		distinct += !seen[cut];
		seen[cut] = true;
		/* back to the old content, durably, for the next seed */
		fill_ok(f, 'o', OLD, 0);
		cr_assert_eq(io_sync(f), 0);
		cr_assert_eq(io_close(f), 0);
	}
	cr_assert_geq(distinct, 3, "tear points seen: %d", distinct);
}

SIM(tear_last_of_an_extending_write)
{
	io_file *f = durable_file("a", 'o', 1024);
	fill_ok(f, 'N', 2048, 1024);
	io_sim_power_loss(E, IO_SIM_TEAR_LAST, 5);
	cr_assert_eq(io_close(f), 0);
	f = open_ok(P("a"), 0);
	uint64_t s = size_of(f);
	cr_assert(s == 1024 || s == 1536 || s == 2048 || s == 2560 || s == 3072, "size %llu",
		  (unsigned long long)s);
	expect_fill(f, 'o', 1024, 0);
	expect_fill(f, 'N', s - 1024, 1024);
	cr_assert_eq(io_close(f), 0);
}

/* One fresh env per run: 16 unsynced 512-byte blocks, then KEEP_RANDOM.
 * Returns which blocks survived, checking each is all old or all new. */
static uint32_t keep_random_outcome(uint64_t seed)
{
	io_env *saved = E;
	E = io_sim_new();
	cr_assert_eq(io_mkdir(E, base), 0);
	cr_assert_eq(io_sync_dir(E, "/"), 0);
	io_file *f = durable_file("a", 'o', 16 * 512);
	for (int i = 0; i < 16; i++)
		fill_ok(f, 'a' + i, 512, (uint64_t)i * 512);
	io_sim_power_loss(E, IO_SIM_KEEP_RANDOM, seed);
	cr_assert_eq(io_close(f), 0);
	f = open_ok(P("a"), 0);
	unsigned char b[16 * 512];
	cr_assert_eq(io_pread(f, b, sizeof b, 0), 0);
	uint32_t mask = 0;
	for (int i = 0; i < 16; i++) {
		bool kept = b[i * 512] == 'a' + i;
		for (int j = 0; j < 512; j++)
			cr_assert_eq(b[i * 512 + j], kept ? 'a' + i : 'o', "seed %llu block %d byte %d",
				     (unsigned long long)seed, i, j);
		mask |= (uint32_t)kept << i;
	}
	cr_assert_eq(io_close(f), 0);
	io_sim_free(E);
	E = saved;
	return mask;
}

SIM(keep_random_is_deterministic_and_varies)
{
	uint32_t first = keep_random_outcome(0);
	bool varied = false;
	for (uint64_t seed = 0; seed < 8; seed++) {
		uint32_t m = keep_random_outcome(seed);
		cr_assert_eq(keep_random_outcome(seed), m, "seed %llu replays", (unsigned long long)seed);
		varied |= m != first;
		cr_assert(m != 0 && m != 0xffff, "seed %llu kept %s", (unsigned long long)seed,
			  m ? "all" : "none"); /* 2^-16 each: effectively never */
	}
	cr_assert(varied, "different seeds give different outcomes");
}

SIM(creation_needs_sync_dir)
{
	io_file *f = open_ok(P("new"), IO_CREATE);
	fill_ok(f, 'x', 100, 0);
	cr_assert_eq(io_sync(f), 0); /* data synced, name not */
	cr_assert_eq(io_close(f), 0);
	io_sim_power_loss(E, IO_SIM_DROP_ALL, 1);
	cr_assert_eq(io_exists(E, P("new")), 0);
	f = open_ok(P("new"), IO_CREATE);
	fill_ok(f, 'x', 100, 0);
	cr_assert_eq(io_sync(f), 0);
	cr_assert_eq(io_sync_dir(E, base), 0);
	cr_assert_eq(io_close(f), 0);
	io_sim_power_loss(E, IO_SIM_DROP_ALL, 1);
	cr_assert_eq(io_exists(E, P("new")), 1);
	cr_assert_eq(sim_size("new"), 100);
}

SIM(rename_needs_sync_dir)
{
	io_close(durable_file("a", 'A', 100));
	io_close(durable_file("b", 'B', 200));
	cr_assert_eq(io_rename(E, P("a"), P("b")), 0);
	cr_assert_eq(io_exists(E, P("a")), 0);
	io_sim_power_loss(E, IO_SIM_DROP_ALL, 1);
	cr_assert_eq(io_exists(E, P("a")), 1, "rename undone");
	cr_assert_eq(sim_size("a"), 100);
	cr_assert_eq(sim_size("b"), 200, "the old target is back");
	cr_assert_eq(io_rename(E, P("a"), P("b")), 0);
	cr_assert_eq(io_sync_dir(E, base), 0);
	io_sim_power_loss(E, IO_SIM_DROP_ALL, 1);
	cr_assert_eq(io_exists(E, P("a")), 0, "rename kept");
	cr_assert_eq(sim_size("b"), 100);
}

SIM(unlink_needs_sync_dir)
{
	io_close(durable_file("a", 'A', 100));
	cr_assert_eq(io_unlink(E, P("a")), 0);
	io_sim_power_loss(E, IO_SIM_DROP_ALL, 1);
	cr_assert_eq(io_exists(E, P("a")), 1);
	cr_assert_eq(io_unlink(E, P("a")), 0);
	cr_assert_eq(io_sync_dir(E, base), 0);
	io_sim_power_loss(E, IO_SIM_DROP_ALL, 1);
	cr_assert_eq(io_exists(E, P("a")), 0);
}

SIM(directory_ops_follow_the_loss_mode)
{
	cr_assert_eq(io_close(open_ok(P("x"), IO_CREATE)), 0);
	cr_assert_eq(io_mkdir(E, P("d")), 0);
	cr_assert_eq(io_close(open_ok(P("d/y"), IO_CREATE)), 0);
	io_sim_power_loss(E, IO_SIM_KEEP_ALL, 1);
	cr_assert_eq(io_exists(E, P("x")), 1);
	cr_assert_eq(io_exists(E, P("d/y")), 1);
	/* TEAR_LAST: all but the last pending directory op */
	cr_assert_eq(io_close(open_ok(P("p"), IO_CREATE)), 0);
	cr_assert_eq(io_close(open_ok(P("q"), IO_CREATE)), 0);
	io_sim_power_loss(E, IO_SIM_TEAR_LAST, 1);
	cr_assert_eq(io_exists(E, P("p")), 1);
	cr_assert_eq(io_exists(E, P("q")), 0);
}

SIM(sync_dir_covers_only_its_directory)
{
	cr_assert_eq(io_mkdir(E, P("d1")), 0);
	cr_assert_eq(io_mkdir(E, P("d2")), 0);
	cr_assert_eq(io_sync_dir(E, base), 0);
	cr_assert_eq(io_close(open_ok(P("d1/x"), IO_CREATE)), 0);
	cr_assert_eq(io_close(open_ok(P("d2/y"), IO_CREATE)), 0);
	cr_assert_eq(io_sync_dir(E, P("d1")), 0);
	io_sim_power_loss(E, IO_SIM_DROP_ALL, 1);
	cr_assert_eq(io_exists(E, P("d1/x")), 1);
	cr_assert_eq(io_exists(E, P("d2/y")), 0);
}

SIM(sync_dir_of_new_directory_keeps_it)
{
	/* a file in a new directory: syncing the directory also makes the
	 * directory itself durable (its entries depend on it) */
	cr_assert_eq(io_mkdir(E, P("d")), 0);
	cr_assert_eq(io_close(open_ok(P("d/x"), IO_CREATE)), 0);
	cr_assert_eq(io_sync_dir(E, P("d")), 0);
	io_sim_power_loss(E, IO_SIM_DROP_ALL, 1);
	cr_assert_eq(io_exists(E, P("d")), 1);
	cr_assert_eq(io_exists(E, P("d/x")), 1);
}

/* Renames chained a -> b -> c, then KEEP_RANDOM: whatever is kept, the file
 * has exactly one of the three names (a dropped rename stays dropped, and a
 * later one cannot act on a name that never came to be). */
SIM(keep_random_rename_chain_keeps_one_name)
{
	bool seen[3] = {0};
	for (uint64_t seed = 0; seed < 32; seed++) {
		io_close(durable_file("a", 'A', 10));
		cr_assert_eq(io_rename(E, P("a"), P("b")), 0);
		cr_assert_eq(io_rename(E, P("b"), P("c")), 0);
		io_sim_power_loss(E, IO_SIM_KEEP_RANDOM, seed);
		int where = -1, count = 0;
		const char *n3[] = {"a", "b", "c"};
		for (int i = 0; i < 3; i++)
			if (io_exists(E, P(n3[i])) == 1) {
				where = i;
				count++;
			}
		cr_assert_eq(count, 1, "seed %llu: %d names", (unsigned long long)seed, count);
		cr_assert_eq(sim_size(n3[where]), 10);
		seen[where] = true;
		cr_assert_eq(io_unlink(E, P(n3[where])), 0);
		cr_assert_eq(io_sync_dir(E, base), 0);
	}
	cr_assert(seen[0] && seen[2], "both the oldest and the newest name occur");
}

SIM(map_pointer_stable_across_growth)
{
	io_file *f = open_ok(P("a"), IO_CREATE);
	fill_ok(f, 1, 4096, 0);
	const void *m;
	cr_assert_eq(io_map(f, 0, 4096, &m), 0);
	fill_ok(f, 2, 8 << 20, 4096); /* grows the image a lot */
	fill_ok(f, 3, 10, 0);
	cr_assert_eq(((const unsigned char *)m)[0], 3);
	cr_assert_eq(((const unsigned char *)m)[10], 1);
	/* shrinking a large image and growing it again gives zeros */
	cr_assert_eq(io_truncate(f, 100), 0);
	cr_assert_eq(io_truncate(f, 8 << 20), 0);
	expect_fill(f, 3, 10, 0);
	expect_fill(f, 1, 90, 10);
	expect_fill(f, 0, (8 << 20) - 100, 100);
	cr_assert_eq(((const unsigned char *)m)[200], 0);
	cr_assert_eq(io_unmap(f, m, 4096), 0);
	cr_assert_eq(io_pwrite(f, "x", 1, 1ull << 30), -EFBIG);
	cr_assert_eq(io_truncate(f, (1ull << 30) + 1), -EFBIG);
	cr_assert_eq(io_close(f), 0);
}

SIM(file_size_and_flip_bit)
{
	io_file *f = durable_file("a", 0x55, 1000);
	uint64_t s;
	cr_assert_eq(io_sim_file_size(E, P("nope"), &s), -ENOENT);
	cr_assert_eq(sim_size("a"), 1000);
	cr_assert_eq(io_sim_flip_bit(E, P("a"), 100, 3), 0);
	unsigned char b[1000];
	cr_assert_eq(io_pread(f, b, 1000, 0), 0);
	for (int i = 0; i < 1000; i++)
		cr_assert_eq(b[i], i == 100 ? (0x55 ^ 8) : 0x55, "byte %d", i);
	cr_assert_eq(io_sim_flip_bit(E, P("a"), 1000, 0), STRATA_ETRUNCATED);
	cr_assert_eq(io_sim_flip_bit(E, P("nope"), 0, 0), -ENOENT);
	cr_assert_eq(io_sim_flip_bit(E, P("a"), 0, 8), STRATA_EINVAL);
	/* the flip is on the medium: it survives a power loss */
	io_sim_power_loss(E, IO_SIM_DROP_ALL, 1);
	cr_assert_eq(io_close(f), 0);
	f = open_ok(P("a"), 0);
	cr_assert_eq(io_pread(f, b, 1000, 0), 0);
	for (int i = 0; i < 1000; i++)
		cr_assert_eq(b[i], i == 100 ? (0x55 ^ 8) : 0x55, "after power loss, byte %d", i);
	/* flipping back restores it */
	cr_assert_eq(io_sim_flip_bit(E, P("a"), 100, 3), 0);
	expect_fill(f, 0x55, 1000, 0);
	cr_assert_eq(io_close(f), 0);
}

SIM(flip_bit_hits_unsynced_bytes_too)
{
	io_file *f = durable_file("a", 0x55, 1000);
	fill_ok(f, 0x66, 10, 500);
	cr_assert_eq(io_sim_flip_bit(E, P("a"), 505, 0), 0);
	io_sim_power_loss(E, IO_SIM_KEEP_ALL, 1);
	cr_assert_eq(io_close(f), 0);
	f = open_ok(P("a"), 0);
	unsigned char b;
	cr_assert_eq(io_pread(f, &b, 1, 505), 0);
	cr_assert_eq(b, 0x67);
	cr_assert_eq(io_close(f), 0);
}

/* ---- simulator: steps, crashes, failures -------------------------------------------- */

Test(io_sim_crash, every_mutation_is_a_step, .init = sim_setup, .fini = sim_teardown)
{
	uint64_t s0 = io_sim_steps(E);
	cr_assert_eq(s0, 2, "mkdir and sync_dir of the fixture");
	io_file *f = open_ok(P("a"), IO_CREATE); /* creating is a step */
	cr_assert_eq(io_sim_steps(E), s0 + 1);
	io_file *g = open_ok(P("a"), IO_CREATE); /* opening is not */
	cr_assert_eq(io_close(g), 0);
	cr_assert_eq(io_sim_steps(E), s0 + 1);
	write_ok(f, "x", 1, 0);
	cr_assert_eq(io_sync(f), 0);
	cr_assert_eq(io_truncate(f, 10), 0);
	cr_assert_eq(io_allocate(f, 0, 100), 0);
	cr_assert_eq(io_rename(E, P("a"), P("b")), 0);
	cr_assert_eq(io_mkdir(E, P("d")), 0);
	cr_assert_eq(io_sync_dir(E, base), 0);
	cr_assert_eq(io_unlink(E, P("b")), 0);
	cr_assert_eq(io_sim_steps(E), s0 + 9);
	/* reads and queries are not */
	char c;
	uint64_t sz;
	cr_assert_eq(io_pread(f, &c, 1, 0), 0);
	cr_assert_eq(io_size(f, &sz), 0);
	cr_assert_eq(io_exists(E, P("d")), 1);
	const void *m;
	cr_assert_eq(io_map(f, 0, 1, &m), 0);
	cr_assert_eq(io_unmap(f, m, 1), 0);
	cr_assert_eq(io_lock(f), 0);
	cr_assert_eq(io_sim_steps(E), s0 + 9);
	cr_assert_eq(io_close(f), 0);
}

Test(io_sim_crash, crash_after_stops_everything, .init = sim_setup, .fini = sim_teardown)
{
	io_file *f = durable_file("a", 'A', 1000);
	uint64_t n = io_sim_steps(E);
	io_sim_crash_after(E, n + 1);
	fill_ok(f, 'B', 10, 0); /* step n+1: done */
	cr_assert_not(io_sim_crashed(E));
	cr_assert_eq(io_pwrite(f, "CC", 2, 20), -EIO, "step n+2 crashes");
	cr_assert(io_sim_crashed(E));
	cr_assert_eq(io_sim_steps(E), n + 1);
	/* nothing changed, reads still work, every mutation fails */
	expect_fill(f, 'B', 10, 0);
	expect_fill(f, 'A', 990, 10);
	cr_assert_eq(io_sync(f), -EIO);
	cr_assert_eq(io_truncate(f, 0), -EIO);
	cr_assert_eq(io_allocate(f, 0, 5000), -EIO);
	cr_assert_eq(io_mkdir(E, P("d")), -EIO);
	cr_assert_eq(io_rename(E, P("a"), P("b")), -EIO);
	cr_assert_eq(io_unlink(E, P("a")), -EIO);
	cr_assert_eq(io_sync_dir(E, base), -EIO);
	io_file *g = NULL;
	cr_assert_eq(io_open(E, P("new"), IO_CREATE, &g), -EIO);
	cr_assert_eq(sim_size("a"), 1000);
	cr_assert_eq(io_exists(E, P("a")), 1);
	cr_assert_eq(io_exists(E, P("d")), 0);
	/* power comes back: the unsynced write is dropped, handles are dead */
	io_sim_power_loss(E, IO_SIM_DROP_ALL, 1);
	cr_assert_not(io_sim_crashed(E));
	cr_assert_eq(io_sim_steps(E), 0);
	char c;
	cr_assert_eq(io_pread(f, &c, 1, 0), -EIO, "stale handle");
	cr_assert_eq(io_pwrite(f, "x", 1, 0), -EIO);
	cr_assert_eq(io_sync(f), -EIO);
	cr_assert_eq(io_close(f), 0);
	f = open_ok(P("a"), 0);
	expect_fill(f, 'A', 1000, 0);
	fill_ok(f, 'D', 10, 0); /* the env works again; the crash is disarmed */
	cr_assert_eq(io_sim_steps(E), 1);
	cr_assert_eq(io_close(f), 0);
}

Test(io_sim_crash, crash_before_first_step_changes_nothing, .init = sim_setup, .fini = sim_teardown)
{
	io_file *f = durable_file("a", 'A', 1000);
	io_sim_crash_after(E, io_sim_steps(E));
	cr_assert_eq(io_pwrite(f, "B", 1, 0), -EIO);
	cr_assert(io_sim_crashed(E));
	expect_fill(f, 'A', 1000, 0);
	io_sim_power_loss(E, IO_SIM_KEEP_ALL, 1);
	cr_assert_eq(io_close(f), 0);
	f = open_ok(P("a"), 0);
	expect_fill(f, 'A', 1000, 0);
	cr_assert_eq(io_close(f), 0);
}

Test(io_sim_crash, fail_step_fails_once, .init = sim_setup, .fini = sim_teardown)
{
	io_file *f = durable_file("a", 'A', 1000);
	uint64_t n = io_sim_steps(E);
	io_sim_fail_step(E, n + 2, -ENOSPC);
	fill_ok(f, 'B', 10, 0);
	cr_assert_eq(io_pwrite(f, "CCCC", 4, 2000), -ENOSPC);
	cr_assert_eq(size_of(f), 1000, "the failed write left no trace");
	expect_fill(f, 'B', 10, 0);
	fill_ok(f, 'C', 4, 2000);
	cr_assert_eq(size_of(f), 2004);
	cr_assert_eq(io_sim_steps(E), n + 3);
	cr_assert_not(io_sim_crashed(E));
	/* a failed sync makes nothing durable */
	io_sim_fail_step(E, io_sim_steps(E) + 1, -EIO);
	cr_assert_eq(io_sync(f), -EIO);
	io_sim_power_loss(E, IO_SIM_DROP_ALL, 1);
	cr_assert_eq(io_close(f), 0);
	cr_assert_eq(sim_size("a"), 1000);
	/* directory ops and creation fail the same way */
	io_sim_fail_step(E, 1, -ENOSPC);
	io_file *g = NULL;
	cr_assert_eq(io_open(E, P("b"), IO_CREATE, &g), -ENOSPC);
	cr_assert_null(g);
	cr_assert_eq(io_exists(E, P("b")), 0);
	io_sim_fail_step(E, 2, -EIO);
	cr_assert_eq(io_rename(E, P("a"), P("c")), -EIO);
	cr_assert_eq(io_exists(E, P("a")), 1);
	cr_assert_eq(io_rename(E, P("a"), P("c")), 0);
	cr_assert_eq(io_exists(E, P("c")), 1);
}

Test(io_sim_crash, power_loss_releases_locks, .init = sim_setup, .fini = sim_teardown)
{
	io_file *a = durable_file("LOCK", 0, 0);
	cr_assert_eq(io_lock(a), 0);
	io_sim_power_loss(E, IO_SIM_KEEP_ALL, 1);
	cr_assert_eq(io_lock(a), -EIO);
	io_file *b = open_ok(P("LOCK"), 0);
	cr_assert_eq(io_lock(b), 0, "the dead process's lock is gone");
	cr_assert_eq(io_close(a), 0);
	cr_assert_eq(io_close(b), 0);
}

/* Opens files and leaves them open; noinline, so no pointer to a handle is
 * left in the test's own frame for the leak check to mistake for a use. */
__attribute__((noinline)) static void leave_open(io_env *e)
{
	for (int i = 0; i < 3; i++) {
		io_file *f = NULL;
		char path[16];
		snprintf(path, sizeof path, "/f%d", i);
		cr_assert_eq(io_open(e, path, IO_CREATE, &f), 0);
		cr_assert_eq(io_pwrite(f, "abc", 3, 0), 0);
		f = NULL;
	}
}

Test(io_sim_crash, free_closes_open_files)
{
	io_env *e = io_sim_new();
	leave_open(e);
	cr_assert_eq(io_mkdir(e, "/d"), 0);
	io_sim_free(e); /* the leak check in .fini sees what this missed */
}

/* Relative paths and spellings of the same path name one file. */
Test(io_sim, path_spellings, .init = sim_setup, .fini = sim_teardown)
{
	io_file *f = open_ok("/sim//a/", IO_CREATE);
	cr_assert_eq(io_close(f), 0);
	cr_assert_eq(io_exists(E, "/sim/./a"), 1);
	cr_assert_eq(io_exists(E, "/sim/a"), 1);
	cr_assert_eq(io_close(open_ok("rel", IO_CREATE)), 0);
	cr_assert_eq(io_exists(E, "./rel"), 1);
	names ns = {0};
	cr_assert_eq(io_list(E, ".", collect, &ns), 0);
	cr_assert_eq(ns.n, 1);
	cr_assert_str_eq(ns.v[0], "rel");
}
