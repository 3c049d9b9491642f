/*
 * test_wal.c — the WAL writer and replay on the simulated file system:
 * round trips across file boundaries, group commit from several threads,
 * simulated power loss at every step of scripted workloads (acknowledged
 * commits always come back, as a prefix, never flagged as corruption),
 * corruption in the middle detected (and salvaged), torn tails cut so they
 * never resurface, and fail-stop on I/O errors.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "io_sim.h"
#include "support/model.h"
#include "wal.h"

TestSuite(wal, .fini = test_leak_check);

#define SMALL_FILE (1u << 20)

static wal_config config(io_env *env, uint64_t file_size)
{
	wal_config c = {.env = env, .dir = "store", .file_size = file_size};
	for (int i = 0; i < 16; i++)
		c.uuid[i] = (uint8_t)(i * 17 + 1);
	return c;
}

static io_env *sim_with_dir(void)
{
	io_env *env = io_sim_new();
	cr_assert_eq(io_mkdir(env, "store"), 0);
	cr_assert_eq(io_sync_dir(env, "."), 0);
	return env;
}

/* ---- a model of what was committed --------------------------------------- */
/* Commit k (epoch k+2) holds one NODE of size_of(k) bytes with id k+1 and
 * bytes derived from k, one RETIRE of id k, and one ROOT "r<k%3>". */
static uint32_t size_of(uint64_t k, uint32_t max)
{
	return 1 + (uint32_t)((k * 2654435761u) % max);
}

static void fill(uint8_t *b, uint64_t k, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		b[i] = (uint8_t)(k * 31 + i);
}

static int append_commit(wal *w, uint64_t k, uint32_t max, uint8_t *scratch, uint64_t *end)
{
	uint32_t n = size_of(k, max);
	fill(scratch, k, n);
	char name[8];
	int nl = snprintf(name, sizeof name, "r%d", (int)(k % 3));
	wal_rec r[3] = {
		{.type = WAL_NODE, .kind = (uint8_t)k, .id = k + 1, .bytes = scratch, .len = n},
		{.type = WAL_RETIRE, .id = k + 1000000},
		{.type = WAL_ROOT, .id = k + 1, .bytes = name, .len = (uint32_t)nl},
	};
	return wal_append(w, r, 3, k + 2, end);
}

typedef struct check_ctx {
	uint32_t max;
	uint64_t next_k;
	int bad;
} check_ctx;

/* Replay callback: commits must be exactly 0, 1, 2, ... in order. */
static int check_commit(void *arg, const wal_commit_view *c)
{
	check_ctx *x = arg;
	uint64_t k = x->next_k++;
	wal_node_rec n;
	wal_root_rec r;
	uint64_t rid;
	uint8_t *want = malloc(x->max);
	uint32_t sz = size_of(k, x->max);
	fill(want, k, sz);
	bool ok = c->epoch == k + 2 && c->nframes == 3 && !walf_node_decode(&c->frames[0], &n) &&
		  n.id == k + 1 && n.size == sz && n.kind == (uint8_t)k && !memcmp(n.bytes, want, sz) &&
		  !walf_retire_decode(&c->frames[1], &rid) && rid == k + 1000000 &&
		  !walf_root_decode(&c->frames[2], &r) && r.id == k + 1 && r.name_len == 2;
	free(want);
	if (!ok)
		x->bad++;
	return ok ? 0 : STRATA_ECORRUPT;
}

static uint64_t replay_count(io_env *env, uint64_t fsize, uint32_t max, uint64_t start,
			     wal_replay_result *res, int *rc)
{
	wal_config c = config(env, fsize);
	check_ctx x = {.max = max};
	*rc = wal_replay(&c, start, false, check_commit, &x, res);
	cr_assert_eq(x.bad, 0, "a replayed commit differs from what was appended");
	return x.next_k;
}

Test(wal, round_trip_across_files)
{
	io_env *env = sim_with_dir();
	wal_config c = config(env, SMALL_FILE);
	wal *w;
	cr_assert_eq(wal_open(&c, 0, &w), 0);
	uint8_t *scratch = malloc(200000);
	uint64_t end = 0;
	const uint32_t max = 150000; /* big frames: many SKIPs over 1 MiB files */
	for (uint64_t k = 0; k < 60; k++) {
		cr_assert_eq(append_commit(w, k, max, scratch, &end), 0);
		if (k % 7 == 6)
			cr_assert_eq(wal_sync_to(w, end), 0);
	}
	cr_assert_eq(wal_sync_to(w, end), 0);
	cr_assert_eq(wal_durable(w), end);
	cr_assert_gt(end / SMALL_FILE, 3, "the stream must cross several files");
	wal_close(w);
	wal_replay_result res;
	int rc;
	cr_assert_eq(replay_count(env, SMALL_FILE, max, 0, &res, &rc), 60);
	cr_assert_eq(rc, 0);
	cr_assert_eq(res.end_lsn, end);
	cr_assert_eq(res.last_epoch, 61);
	cr_assert_eq(res.cut_to, 0, "a clean log has nothing to cut");
	free(scratch);
	io_sim_free(env);
}

Test(wal, too_big_frame_is_refused_and_leaves_nothing)
{
	io_env *env = sim_with_dir();
	wal_config c = config(env, SMALL_FILE);
	wal *w;
	cr_assert_eq(wal_open(&c, 0, &w), 0);
	uint8_t *big = calloc(1, SMALL_FILE);
	wal_rec r = {.type = WAL_NODE, .id = 1, .bytes = big, .len = SMALL_FILE - 100};
	uint64_t end;
	cr_assert_eq(wal_append(w, &r, 1, 2, &end), STRATA_ETOOBIG);
	cr_assert_eq(wal_end(w), 0, "a refused commit stages nothing");
	wal_close(w);
	free(big);
	io_sim_free(env);
}

/* ---- group commit ------------------------------------------------------------ */
typedef struct gc_ctx {
	wal *w;
	pthread_mutex_t order; /* epochs are assigned and appended in order */
	uint64_t next_k;
	uint8_t scratch[4096];
	_Atomic int failures;
} gc_ctx;

static void *gc_thread(void *arg)
{
	gc_ctx *g = arg;
	for (int i = 0; i < 200; i++) {
		uint64_t end;
		pthread_mutex_lock(&g->order);
		int rc = append_commit(g->w, g->next_k++, 3000, g->scratch, &end);
		pthread_mutex_unlock(&g->order);
		if (rc || wal_sync_to(g->w, end) || wal_durable(g->w) < end)
			atomic_fetch_add(&g->failures, 1);
	}
	return NULL;
}

Test(wal, group_commit_from_threads)
{
	io_env *env = sim_with_dir();
	wal_config c = config(env, SMALL_FILE);
	static gc_ctx g;
	memset(&g, 0, sizeof g);
	pthread_mutex_init(&g.order, NULL);
	cr_assert_eq(wal_open(&c, 0, &g.w), 0);
	uint64_t steps0 = io_sim_steps(env);
	pthread_t th[8];
	for (int i = 0; i < 8; i++)
		pthread_create(&th[i], NULL, gc_thread, &g);
	for (int i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	cr_assert_eq(atomic_load(&g.failures), 0);
	uint64_t steps = io_sim_steps(env) - steps0;
	wal_close(g.w);
	pthread_mutex_destroy(&g.order);
	wal_replay_result res;
	int rc;
	cr_assert_eq(replay_count(env, SMALL_FILE, 3000, 0, &res, &rc), 1600);
	cr_assert_eq(rc, 0);
	cr_log_info("group commit: 1600 commits in %llu I/O steps", (unsigned long long)steps);
	io_sim_free(env);
}

/* ---- crashes --------------------------------------------------------------- */
/* Workload: commits of up to `max` bytes, a sync after every `every`-th.
 * Returns how many commits were acknowledged (their sync returned 0). */
static uint64_t workload(io_env *env, uint64_t fsize, uint64_t start, uint64_t k0, uint64_t n,
			 uint32_t max, int every)
{
	wal_config c = config(env, fsize);
	wal *w;
	if (wal_open(&c, start, &w))
		return k0;
	uint8_t *scratch = malloc(max);
	uint64_t acked = k0, end;
	for (uint64_t k = k0; k < k0 + n; k++) {
		if (append_commit(w, k, max, scratch, &end))
			break;
		if ((k - k0) % every == (uint64_t)every - 1 || k == k0 + n - 1) {
			if (wal_sync_to(w, end))
				break;
			acked = k + 1;
		}
	}
	wal_close(w);
	free(scratch);
	return acked;
}

Test(wal, power_loss_at_every_step, .timeout = 600)
{
	const io_sim_loss modes[] = {IO_SIM_DROP_ALL, IO_SIM_KEEP_RANDOM, IO_SIM_TEAR_LAST,
				     IO_SIM_KEEP_ALL};
	/* Steps of the whole workload without a crash. */
	io_env *probe = sim_with_dir();
	uint64_t s0 = io_sim_steps(probe);
	workload(probe, SMALL_FILE, 0, 0, 40, 60000, 3);
	uint64_t total = io_sim_steps(probe) - s0;
	io_sim_free(probe);
	unsigned checked = 0, cut = 0;
	for (uint64_t crash = 1; crash <= total; crash++) {
		for (unsigned m = 0; m < 4; m++) {
			io_env *env = sim_with_dir();
			io_sim_crash_after(env, io_sim_steps(env) + crash);
			uint64_t acked = workload(env, SMALL_FILE, 0, 0, 40, 60000, 3);
			io_sim_power_loss(env, modes[m], crash * 4 + m);
			wal_replay_result res;
			int rc;
			uint64_t got = replay_count(env, SMALL_FILE, 60000, 0, &res, &rc);
			cr_assert_eq(rc, 0, "crash %llu mode %u: %s", (unsigned long long)crash, m,
				     res.message);
			cr_assert_geq(got, acked, "crash %llu mode %u: acknowledged commits lost",
				      (unsigned long long)crash, m);
			cut += res.cut_to > res.cut_from;
			checked++;
			io_sim_free(env);
		}
	}
	cr_log_info("wal: %u crash states over %llu steps, %u with a torn tail cut", checked,
		    (unsigned long long)total, cut);
	cr_assert_gt(total, 20);
	cr_assert_gt(cut, 0, "some crash states must leave a torn tail");
}

/* After a torn tail is cut and new commits are written, a second crash
 * never turns the old tail into 'corruption' or lost commits. */
Test(wal, cut_tail_never_resurfaces, .timeout = 300)
{
	unsigned rounds = 0;
	for (uint64_t seed = 1; seed <= 40; seed++) {
		io_env *env = sim_with_dir();
		io_sim_crash_after(env, io_sim_steps(env) + 10 + seed % 17);
		workload(env, SMALL_FILE, 0, 0, 30, 50000, 4);
		io_sim_power_loss(env, IO_SIM_KEEP_RANDOM, seed);
		wal_config c = config(env, SMALL_FILE);
		wal_replay_result res;
		int rc;
		uint64_t got = replay_count(env, SMALL_FILE, 50000, 0, &res, &rc);
		cr_assert_eq(rc, 0, "%s", res.message);
		cr_assert_eq(wal_cut_tail(&c, &res), 0);
		/* Reopen at the end, write a few small commits, crash again. */
		io_sim_crash_after(env, io_sim_steps(env) + 3 + seed % 5);
		uint64_t acked = workload(env, SMALL_FILE, res.end_lsn, got, 5, 50000, 1);
		io_sim_power_loss(env, IO_SIM_KEEP_RANDOM, seed + 1000);
		wal_replay_result res2;
		uint64_t got2 = replay_count(env, SMALL_FILE, 50000, 0, &res2, &rc);
		cr_assert_eq(rc, 0, "seed %llu: %s", (unsigned long long)seed, res2.message);
		cr_assert_geq(got2, acked > got ? acked : got, "seed %llu", (unsigned long long)seed);
		rounds++;
		io_sim_free(env);
	}
	cr_assert_eq(rounds, 40);
}

/* ---- corruption ---------------------------------------------------------------- */
Test(wal, bad_frame_before_later_synced_commits_is_corruption)
{
	io_env *env = sim_with_dir();
	cr_assert_eq(workload(env, SMALL_FILE, 0, 0, 30, 2000, 1), 30);
	/* Flip a payload bit of an early, acknowledged commit. */
	wal_replay_result res;
	int rc;
	cr_assert_eq(replay_count(env, SMALL_FILE, 2000, 0, &res, &rc), 30);
	char path[64];
	snprintf(path, sizeof path, "store/wal.%016llx", 0ull);
	/* Byte 30 of the stream's first frame (the NODE of commit 0). */
	cr_assert_eq(io_sim_flip_bit(env, path, WAL_FILE_HDR + 30, 2), 0);
	wal_config c = config(env, SMALL_FILE);
	check_ctx x = {.max = 2000};
	rc = wal_replay(&c, 0, false, check_commit, &x, &res);
	cr_assert_eq(rc, STRATA_ECORRUPT, "a bad frame followed by synced commits");
	cr_assert_eq(x.next_k, 0, "the first commit is the bad one");
	cr_assert_eq(res.bad_lsn, WAL_FILE_HDR, "bad frame reported at the first frame, not %llu: %s",
		     (unsigned long long)res.bad_lsn, res.message);
	cr_assert(strstr(res.message, "wal.0000000000000000") && strstr(res.message, "offset 64"),
		  "message names file and offset: %s", res.message);
	/* Salvage stops before it. */
	check_ctx y = {.max = 2000};
	cr_assert_eq(wal_replay(&c, 0, true, check_commit, &y, &res), 0);
	cr_assert_eq(y.next_k, 0);
	cr_assert_eq(res.end_lsn, 0);
	/* WAL_REPLAY_CLEAN is the caller's word that nothing was appended
	 * after start_lsn (the superblock's clean flag, which the store clears
	 * before its first append): then the files are not scanned, and the
	 * log is empty. That is why the store must clear it: this log has
	 * synced commits the scan would have proved lost. */
	check_ctx z = {.max = 2000};
	cr_assert_eq(wal_replay(&c, 0, WAL_REPLAY_CLEAN, check_commit, &z, &res), 0);
	cr_assert(z.next_k == 0 && res.end_lsn == 0 && res.cut_to == 0 && !res.message[0]);
	io_sim_free(env);
}

Test(wal, every_bit_of_an_acknowledged_commit_is_checked, .timeout = 300)
{
	io_env *env = sim_with_dir();
	cr_assert_eq(workload(env, SMALL_FILE, 0, 0, 4, 300, 1), 4);
	wal_replay_result res;
	int rc;
	cr_assert_eq(replay_count(env, SMALL_FILE, 300, 0, &res, &rc), 4);
	uint64_t end = res.end_lsn;
	/* Flip each bit of commits 0..2 (commit 3 is the tail: a flip there is
	 * indistinguishable from a tear and must be cut, not served). */
	wal_config c = config(env, SMALL_FILE);
	unsigned corrupt = 0, cut = 0;
	for (uint64_t off = WAL_FILE_HDR; off < end; off++) {
		for (unsigned bit = 0; bit < 8; bit += 3) {
			cr_assert_eq(io_sim_flip_bit(env, "store/wal.0000000000000000", off, bit), 0);
			check_ctx x = {.max = 300};
			rc = wal_replay(&c, 0, false, check_commit, &x, &res);
			cr_assert_eq(io_sim_flip_bit(env, "store/wal.0000000000000000", off, bit), 0);
			cr_assert_eq(x.bad, 0, "a flipped commit was served (offset %llu)",
				     (unsigned long long)off);
			if (rc == STRATA_ECORRUPT)
				corrupt++;
			else if (x.next_k < 4) {
				cr_assert_eq(rc, 0);
				cut++;
			} /* else: padding, never read */
		}
	}
	cr_log_info("wal: %u flips reported as corruption, %u as a cut tail", corrupt, cut);
	cr_assert_gt(corrupt, 0);
	cr_assert_gt(cut, 0);
	io_sim_free(env);
}

/* ---- fail-stop ------------------------------------------------------------------ */
Test(wal, io_error_poisons)
{
	io_env *env = sim_with_dir();
	wal_config c = config(env, SMALL_FILE);
	wal *w;
	cr_assert_eq(wal_open(&c, 0, &w), 0);
	uint8_t scratch[100];
	uint64_t end;
	cr_assert_eq(append_commit(w, 0, 100, scratch, &end), 0);
	cr_assert_eq(wal_sync_to(w, end), 0);
	cr_assert_eq(append_commit(w, 1, 100, scratch, &end), 0);
	io_sim_fail_step(env, io_sim_steps(env) + 2, -EIO); /* the sync after the write */
	cr_assert_eq(wal_sync_to(w, end), -EIO);
	cr_assert_eq(wal_error(w), -EIO);
	cr_assert_eq(append_commit(w, 2, 100, scratch, &end), STRATA_EIO, "poisoned for good");
	cr_assert_eq(wal_sync_to(w, end), STRATA_EIO);
	wal_close(w);
	io_sim_free(env);
}

Test(wal, enospc_on_a_new_file_fails_the_commit)
{
	io_env *env = sim_with_dir();
	wal_config c = config(env, SMALL_FILE);
	wal *w;
	cr_assert_eq(wal_open(&c, 0, &w), 0);
	uint8_t scratch[100];
	uint64_t end;
	cr_assert_eq(append_commit(w, 0, 100, scratch, &end), 0);
	io_sim_fail_step(env, io_sim_steps(env) + 2, -ENOSPC); /* create, then allocate */
	cr_assert_eq(wal_sync_to(w, end), -ENOSPC);
	cr_assert_eq(wal_durable(w), 0);
	wal_close(w);
	io_sim_free(env);
}

/* Commits k, k+1, ... (up to 90000 bytes each) until the log reaches
 * `until`, then synced. */
static void append_until(wal *w, uint64_t until, uint8_t *scratch, uint64_t *end, uint64_t *k)
{
	while (*end < until)
		cr_assert_eq(append_commit(w, (*k)++, 90000, scratch, end), 0);
	cr_assert_eq(wal_sync_to(w, *end), 0);
}

Test(wal, recycled_files_never_replay_old_frames)
{
	io_env *env = sim_with_dir();
	wal_config c = config(env, SMALL_FILE);
	wal *w;
	cr_assert_eq(wal_open(&c, 0, &w), 0);
	uint8_t *scratch = malloc(100000);
	uint64_t end = 0, k = 0;
	append_until(w, 3 * (uint64_t)SMALL_FILE, scratch, &end, &k);
	/* A checkpoint made everything before the current file unnecessary. */
	uint64_t keep_from = (end / SMALL_FILE) * SMALL_FILE;
	cr_assert_eq(wal_recycle(w, keep_from), 0);
	uint64_t first_after = k;
	while (end < 6 * (uint64_t)SMALL_FILE)
		cr_assert_eq(append_commit(w, k++, 90000, scratch, &end), 0);
	cr_assert_eq(wal_sync_to(w, end), 0);
	wal_close(w);
	/* Replay from the first commit at or after keep_from: only newer
	 * commits, in order, ending at the end. */
	wal_replay_result res;
	check_ctx x = {.max = 90000};
	int rc = wal_replay(&c, end, false, check_commit, &x, &res);
	cr_assert_eq(rc, 0);
	cr_assert_eq(x.next_k, 0, "nothing after the end");
	cr_assert_eq(wal_replay(&c, keep_from, false, NULL, NULL, &res), 0);
	cr_assert_eq(res.end_lsn, end);
	cr_assert_gt(res.commits, k - first_after);
	uint64_t files = 0;
	for (uint64_t s = 0; s < 8; s++) {
		char path[64];
		snprintf(path, sizeof path, "store/wal.%016llx", (unsigned long long)s);
		files += io_exists(env, path) == 1;
	}
	cr_assert_leq(files, 4, "old files were reused, not multiplied (%llu files)",
		      (unsigned long long)files);
	free(scratch);
	io_sim_free(env);
}

/* Recycling renames a pooled file for the next seq, then writes its new
 * header. Killed in between, the file wal.N holds an older file's header;
 * replay ends the log at its start. Where the last commit ended exactly at
 * N's start, the writer's open adopted wal.N, found the old header and
 * refused the store (STRATA_EFORMAT: "where the log continues"; the
 * process-kill campaign met it once in ~4000 cycles). The state is made
 * here by hand: wal.2 a copy of wal.0, the log ending at file 2's start.
 * The open must take it, give the file a fresh header on the first flush,
 * and the old frames in it must never replay. */
Test(wal, renamed_file_without_its_new_header_is_reused)
{
	io_env *env = sim_with_dir();
	wal_config c = config(env, SMALL_FILE);
	wal *w;
	cr_assert_eq(wal_open(&c, 0, &w), 0);
	uint8_t *scratch = malloc(100000);
	uint64_t end = 0, k = 0;
	append_until(w, (uint64_t)SMALL_FILE + 1000, scratch, &end, &k);
	wal_close(w);
	io_file *from, *to;
	cr_assert_eq(io_open(env, "store/wal.0000000000000000", IO_RDONLY, &from), 0);
	cr_assert_eq(io_open(env, "store/wal.0000000000000002", IO_CREATE, &to), 0);
	uint8_t *buf = malloc(SMALL_FILE);
	cr_assert_eq(io_pread(from, buf, SMALL_FILE, 0), 0);
	cr_assert_eq(io_pwrite(to, buf, SMALL_FILE, 0), 0);
	cr_assert_eq(io_sync(to), 0);
	io_close(from);
	io_close(to);
	uint64_t start = 2 * (uint64_t)SMALL_FILE;
	int rc = wal_open_keep(&c, start, SMALL_FILE, &w);
	cr_assert_eq(rc, 0, "open at the start of the renamed file: %s", strata_strerror(rc));
	uint64_t k0 = k;
	cr_assert_eq(append_commit(w, k++, 90000, scratch, &end), 0);
	cr_assert_eq(wal_sync_to(w, end), 0);
	wal_close(w);
	wal_replay_result res;
	check_ctx x = {.max = 90000, .next_k = k0};
	cr_assert_eq(wal_replay(&c, start, false, check_commit, &x, &res), 0);
	cr_assert_eq(x.next_k, k0 + 1, "exactly the new commit replays (%llu)",
		     (unsigned long long)(x.next_k - k0));
	cr_assert_eq(res.end_lsn, end);
	free(buf);
	free(scratch);
	io_sim_free(env);
}

/* A commit larger than a batch may span is refused up front; many commits
 * that together span more files than that are written out as they come
 * (backpressure), and all replay. Neither wedges the WAL. */
Test(wal, huge_batches_never_wedge, .timeout = 300)
{
	io_env *env = sim_with_dir();
	wal_config c = config(env, SMALL_FILE);
	wal *w;
	cr_assert_eq(wal_open(&c, 0, &w), 0);
	uint8_t *big = calloc(1, 1000000);
	wal_rec recs[70];
	for (int i = 0; i < 70; i++)
		recs[i] = (wal_rec){.type = WAL_NODE, .id = (uint64_t)(i + 1) << 36, .bytes = big,
				    .len = 1000000};
	uint64_t end;
	cr_assert_eq(wal_append(w, recs, 70, 2, &end), STRATA_ETOOBIG);
	cr_assert_eq(wal_error(w), 0, "refusing a commit does not poison");
	/* 40 commits of 1 MB each: 40 files, no sync in between. */
	for (uint64_t k = 0; k < 40; k++)
		cr_assert_eq(wal_append(w, &recs[0], 1, 2 + k, &end), 0, "commit %llu",
			     (unsigned long long)k);
	cr_assert_eq(wal_sync_to(w, end), 0);
	wal_close(w);
	wal_replay_result res;
	cr_assert_eq(wal_replay(&c, 0, false, NULL, NULL, &res), 0, "%s", res.message);
	cr_assert_eq(res.commits, 40);
	cr_assert_eq(res.end_lsn, end);
	free(big);
	io_sim_free(env);
}

/* A WAL file missing from the middle of the log is corruption (a later
 * file holds commits synced after it), not a quiet end of the log. */
Test(wal, missing_middle_file_is_corruption)
{
	io_env *env = sim_with_dir();
	cr_assert_eq(workload(env, SMALL_FILE, 0, 0, 60, 150000, 2), 60);
	wal_config c = config(env, SMALL_FILE);
	wal_replay_result res;
	cr_assert_eq(wal_replay(&c, 0, false, NULL, NULL, &res), 0);
	cr_assert_gt(res.end_lsn / SMALL_FILE, 2, "the log spans several files");
	cr_assert_eq(io_unlink(env, "store/wal.0000000000000001"), 0);
	int rc = wal_replay(&c, 0, false, NULL, NULL, &res);
	cr_assert_eq(rc, STRATA_ECORRUPT, "%s", res.message);
	cr_assert(strstr(res.message, "wal.0000000000000001 is missing"), "%s", res.message);
	cr_assert_eq(wal_replay(&c, 0, true, NULL, NULL, &res), 0, "salvage keeps file 0");
	cr_assert_gt(res.commits, 0);
	cr_assert_lt(res.end_lsn, SMALL_FILE);
	io_sim_free(env);
}
