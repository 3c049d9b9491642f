/*
 * test_durable.c — DURABLE mode on the simulated file system: persistence
 * across close and crash, exhaustive power loss at every write/sync step of
 * scripted workloads (every acknowledged SYNC commit survives; the state is
 * exactly that after some commit; invariants hold), corruption in every
 * file detected and never served, fail-stop on I/O errors and ENOSPC, the
 * lock, and the open errors for foreign, newer and truncated stores.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crc32c.h"
#include "durable.h"
#include "io_sim.h"
#include "support/model.h"

TestSuite(durable, .fini = test_leak_check);

/* Under ThreadSanitizer (10-50x slower) the campaigns shrink: that build
 * looks for races, which a few hundred states exercise as well as all of
 * them; the normal and ASan builds run everything. */
#if defined(__SANITIZE_THREAD__)
#define TSAN_BUILD 1
#else
#define TSAN_BUILD 0
#endif

#define NROOTS 3
static const char *const root_names[NROOTS] = {"r0", "r1", "r2"};

/* Options with a deterministic coordinator: it never wakes on its own
 * (no timed syncs or checkpoints), so the I/O steps of a run repeat. */
static strata_options opts(void)
{
	return test_durable_options("db", true);
}

static int open_sim(io_env *env, strata_store **s)
{
	strata_options o = opts();
	return store_open_env(&o, env, s);
}

/* ---- the workload and its model ----------------------------------------------- */
/* Root i holds a node whose bytes are (commit number, root, fill...); its
 * size varies, sometimes large (a large object). 0 means the root is empty. */
typedef struct model {
	uint32_t val[NROOTS]; /* commit number last written to root i (0: none) */
} model;

static uint32_t node_size(uint32_t k)
{
	return k % 5 == 4 ? 70000 + k : 40 + (k * 37) % 900;
}

static void node_fill(uint8_t *p, uint32_t k, uint32_t size)
{
	for (uint32_t i = 0; i < size; i++)
		p[i] = (uint8_t)(k * 13 + i);
}

/* Commit number k (1-based): root k % 3 gets a new node (the old one is
 * freed); every fourth commit also copy-on-writes root (k+1) % 3's node
 * without changing its content; k % 7 == 0 empties root (k+2) % 3.
 * The model after commit k, from the model before it: */
static model model_next(uint32_t k, model m)
{
	m.val[k % NROOTS] = k;
	if (k % 7 == 0)
		m.val[(k + 2) % NROOTS] = 0;
	return m;
}

static bool quiet; /* state_is: mismatches are expected (corruption tests) */

static int do_commit(strata_store *s, uint32_t k, model *m)
{
	strata_txn *t;
	int rc = strata_txn_begin(s, (const char *const *)root_names, NROOTS, 0, &t);
	if (rc)
		return rc;
	uint32_t r = k % NROOTS;
	strata_node_id old, id;
	void *p;
	if ((rc = strata_txn_get_root(t, root_names[r], &old)) || (old && (rc = strata_txn_free(t, old))))
		goto fail;
	if ((rc = strata_txn_alloc(t, node_size(k), (uint8_t)k, &id, &p)))
		goto fail;
	node_fill(p, k, node_size(k));
	if ((rc = strata_txn_set_root(t, root_names[r], id)))
		goto fail;
	uint32_t r2 = (k + 1) % NROOTS;
	if (k % 4 == 0 && m->val[r2]) {
		strata_node_id o2, n2;
		uint32_t sz;
		if ((rc = strata_txn_get_root(t, root_names[r2], &o2)) ||
		    (rc = strata_txn_write(t, o2, &n2, &p, &sz)) ||
		    (rc = strata_txn_set_root(t, root_names[r2], n2)))
			goto fail;
	}
	uint32_t r3 = (k + 2) % NROOTS;
	if (k % 7 == 0 && m->val[r3]) {
		strata_node_id o3;
		if ((rc = strata_txn_get_root(t, root_names[r3], &o3)) || (rc = strata_txn_free(t, o3)) ||
		    (rc = strata_txn_set_root(t, root_names[r3], STRATA_NODE_NULL)))
			goto fail;
	}
	if ((rc = strata_txn_commit(t, NULL)))
		return rc;
	*m = model_next(k, *m);
	return 0;
fail:
	strata_txn_abort(t);
	return rc;
}

/* Does what the snapshot sees equal the model? */
static bool snapshot_is(strata_snapshot *snap, const model *m)
{
	bool same = true;
	for (int i = 0; i < NROOTS && same; i++) {
		strata_node_id id = 0;
		int rc = strata_snapshot_root(snap, root_names[i], &id);
		if (rc == STRATA_ENOTFOUND || !id) {
			same = m->val[i] == 0;
			continue;
		}
		const void *d;
		uint32_t size = 0;
		uint32_t k = m->val[i];
		rc = k ? strata_resolve(snap, id, &d, &size) : 0;
		if (!k || rc || size != node_size(k)) {
			if (!quiet)
				cr_log_info("root %s: model %u, store %#" PRIx64 " (%s, size %u)",
					    root_names[i], k, id, strata_strerror(rc), size);
			same = false;
			continue;
		}
		uint8_t *want = malloc(size);
		node_fill(want, k, size);
		same = memcmp(d, want, size) == 0;
		free(want);
	}
	return same;
}

/* Does the store's latest state equal the model? */
static bool state_is(strata_store *s, const model *m)
{
	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	bool same = snapshot_is(snap, m);
	strata_snapshot_close(snap);
	return same;
}

/* The script: commits 1..n, a checkpoint after commit ckpt_at (0: none),
 * then a clean close. Returns the number of acknowledged commits; hist[k]
 * is the model after commit k (hist[0] = empty), for every k <= n. */
static uint32_t script(io_env *env, uint32_t n, uint32_t ckpt_at, model *hist, bool *closed)
{
	strata_store *s;
	memset(&hist[0], 0, sizeof hist[0]);
	for (uint32_t k = 1; k <= n; k++)
		hist[k] = model_next(k, hist[k - 1]);
	*closed = false;
	if (open_sim(env, &s))
		return 0;
	uint32_t acked = 0;
	model m = hist[0];
	for (uint32_t k = 1; k <= n; k++) {
		if (do_commit(s, k, &m))
			break;
		acked = k;
		if (k == ckpt_at && strata_checkpoint(s))
			break;
	}
	*closed = strata_close(s) == 0 && acked == n;
	return acked;
}

static io_env *fresh_env(void)
{
	io_env *env = io_sim_new();
	cr_assert_eq(io_mkdir(env, "db"), 0);
	cr_assert_eq(io_sync_dir(env, "."), 0);
	return env;
}

/* ---- persistence --------------------------------------------------------------- */
/* A fresh store that ran script(n, ckpt_at) to a clean close, reopened. */
static strata_store *reopen_after_script(io_env *env, uint32_t n, uint32_t ckpt_at, model *hist)
{
	bool closed;
	cr_assert_eq(script(env, n, ckpt_at, hist, &closed), n);
	cr_assert(closed);
	strata_store *s;
	cr_assert_eq(open_sim(env, &s), 0, "%s", strata_last_error());
	return s;
}

Test(durable, state_survives_close_and_reopen)
{
	io_env *env = fresh_env();
	model hist[21];
	strata_store *s = reopen_after_script(env, 20, 9, hist);
	cr_assert(state_is(s, &hist[20]));
	cr_assert_eq(strata_check(s, test_report, NULL), 0);
	/* Go on writing after recovery, then crash without close. */
	model m = hist[20];
	for (uint32_t k = 21; k <= 30; k++)
		cr_assert_eq(do_commit(s, k, &m), 0);
	io_sim_crash_after(env, io_sim_steps(env));
	strata_close(s); /* its writes fail: the process "died" */
	io_sim_power_loss(env, IO_SIM_DROP_ALL, 1);
	cr_assert_eq(open_sim(env, &s), 0, "%s", strata_last_error());
	cr_assert(state_is(s, &m), "SYNC commits after recovery survive a power loss");
	cr_assert_eq(strata_check(s, test_report, NULL), 0);
	cr_assert_eq(strata_close(s), 0);
	io_sim_free(env);
}

/* After a clean close the superblock's clean flag lets recovery skip the
 * scan past the end of the log (wal.h WAL_REPLAY_CLEAN). The first commit
 * after a reopen must clear it before its frames: otherwise a damaged first
 * frame would end the log quietly, and the synced commits after it would
 * be lost without a word. An open that commits nothing writes nothing. */
Test(durable, clean_flag_is_cleared_before_the_first_append)
{
	io_env *env = fresh_env();
	model hist[11];
	strata_store *s = reopen_after_script(env, 10, 4, hist);
	cr_assert(s->dur->sb.flags & SB_FLAG_CLEAN);
	uint64_t gen = s->dur->sb.generation, start = s->dur->sb.wal_start_lsn;
	uint64_t fsize = s->dur->sb.wal_file_size;
	cr_assert_eq(strata_close(s), 0);
	cr_assert_eq(open_sim(env, &s), 0, "%s", strata_last_error());
	cr_assert_eq(s->dur->sb.generation, gen, "open + close without a commit wrote a superblock");
	model m = hist[10];
	for (uint32_t k = 11; k <= 15; k++)
		cr_assert_eq(do_commit(s, k, &m), 0);
	cr_assert(!(s->dur->sb.flags & SB_FLAG_CLEAN), "the first commit cleared the flag");
	io_sim_crash_after(env, io_sim_steps(env));
	strata_close(s); /* the process "died" */
	io_sim_power_loss(env, IO_SIM_DROP_ALL, 1);
	char path[64];
	snprintf(path, sizeof path, "db/wal.%016llx", (unsigned long long)(start / fsize));
	uint64_t off = start % fsize ? start % fsize : WAL_FILE_HDR; /* the first frame after it */
	cr_assert_eq(io_sim_flip_bit(env, path, off + 30, 1), 0);
	cr_assert_eq(open_sim(env, &s), STRATA_ECORRUPT,
		     "synced commits after a damaged frame are reported, not dropped: %s",
		     strata_last_error());
	io_sim_free(env);
}

/* A transaction that frees one of its own nodes and is issued the same
 * handle again, then replaces that node with strata_txn_rewrite, must log
 * only the last NodeID: recovery refuses a second image of a live handle
 * as corruption. */
Test(durable, reissued_and_rewritten_nodes_replay)
{
	io_env *env = fresh_env();
	strata_store *s;
	cr_assert_eq(open_sim(env, &s), 0, "%s", strata_last_error());
	const char *name = "r0";
	strata_txn *t;
	cr_assert_eq(strata_txn_begin(s, &name, 1, STRATA_TXN_SYNC, &t), 0);
	strata_node_id a, b, c;
	void *p;
	const void *old;
	cr_assert_eq(strata_txn_alloc(t, 100, 1, &a, &p), 0);
	cr_assert_eq(strata_txn_free(t, a), 0);
	cr_assert_eq(strata_txn_alloc(t, 100, 2, &b, &p), 0);
	cr_assert(STRATA_NODEID_INDEX(a) == STRATA_NODEID_INDEX(b) && a != b,
		  "the freed handle is reissued under a new tag");
	memset(p, 0x5a, 100);
	cr_assert_eq(strata_txn_rewrite(t, b, 120, &c, &p, &old, NULL), 0);
	memcpy(p, old, 100);
	memset((uint8_t *)p + 100, 0xa5, 20);
	cr_assert_eq(strata_txn_set_root(t, name, c), 0);
	cr_assert_eq(strata_txn_commit(t, NULL), 0);
	io_sim_crash_after(env, io_sim_steps(env));
	strata_close(s); /* no final checkpoint: recovery replays the WAL */
	io_sim_power_loss(env, IO_SIM_DROP_ALL, 1);
	cr_assert_eq(open_sim(env, &s), 0, "%s", strata_last_error());
	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	strata_node_id got;
	const void *d;
	uint32_t n;
	cr_assert_eq(strata_snapshot_root(snap, name, &got), 0);
	cr_assert_eq(got, c);
	cr_assert_eq(strata_resolve(snap, c, &d, &n), 0);
	cr_assert(n == 120 && ((const uint8_t *)d)[99] == 0x5a && ((const uint8_t *)d)[119] == 0xa5);
	cr_assert_eq(strata_resolve(snap, a, &d, &n), STRATA_ESTALE);
	cr_assert_eq(strata_resolve(snap, b, &d, &n), STRATA_ESTALE);
	strata_snapshot_close(snap);
	strata_store_stats st;
	cr_assert_eq(strata_stats(s, &st), 0);
	cr_assert_eq(st.nodes_live, 1);
	cr_assert_eq(strata_check(s, test_report, NULL), 0);
	cr_assert_eq(strata_close(s), 0);
	io_sim_free(env);
}

/* ---- exhaustive power loss --------------------------------------------------------- */
static void crash_campaign(uint32_t n, uint32_t ckpt_at, unsigned *checked)
{
	const io_sim_loss modes[] = {IO_SIM_DROP_ALL, IO_SIM_KEEP_RANDOM, IO_SIM_TEAR_LAST,
				     IO_SIM_KEEP_ALL};
	model hist[16];
	bool closed;
	io_env *probe = fresh_env();
	uint64_t s0 = io_sim_steps(probe);
	cr_assert_eq(script(probe, n, ckpt_at, hist, &closed), n);
	uint64_t total = io_sim_steps(probe) - s0;
	io_sim_free(probe);
	for (uint64_t crash = 0; crash <= total; crash++) {
		for (unsigned mode = 0; mode < 4; mode++) {
			io_env *env = fresh_env();
			io_sim_crash_after(env, io_sim_steps(env) + crash);
			uint32_t acked = script(env, n, ckpt_at, hist, &closed);
			io_sim_power_loss(env, modes[mode], crash * 7 + mode);
			strata_store *s;
			int rc = open_sim(env, &s);
			cr_assert_eq(rc, 0, "crash after step %" PRIu64 " mode %u: %s (%s)", crash, mode,
				     strata_strerror(rc), strata_last_error());
			/* Exactly the state after commit k, for an acknowledged k or
			 * the one in flight (acked + 1): never a mix, never less. */
			uint32_t k = acked, last = acked < n ? acked + 1 : n;
			quiet = true;
			while (k <= last && !state_is(s, &hist[k]))
				k++;
			quiet = false;
			cr_assert_leq(k, last, "crash %" PRIu64 " mode %u: state is not that of commit %u or %u",
				      crash, mode, acked, last);
			cr_assert_eq(strata_check(s, test_report, NULL), 0);
			/* The recovered store takes new commits and survives again. */
			model m = hist[k];
			cr_assert_eq(do_commit(s, n + 1, &m), 0, "%s", strata_last_error());
			cr_assert_eq(strata_close(s), 0);
			cr_assert_eq(open_sim(env, &s), 0);
			cr_assert(state_is(s, &m));
			cr_assert_eq(strata_close(s), 0);
			io_sim_free(env);
			(*checked)++;
		}
	}
}

Test(durable, power_loss_at_every_step, .timeout = 900)
{
	unsigned checked = 0;
	if (!TSAN_BUILD) {
		crash_campaign(5, 0, &checked);
		crash_campaign(5, 2, &checked);
	}
	crash_campaign(3, 1, &checked);
	cr_log_info("durable: %u crash states checked (4 loss modes each)", checked);
	cr_assert_gt(checked, TSAN_BUILD ? 50 : 400);
}

/* Power loss at every step of a script whose WAL crosses many 1 MiB files
 * (commits of a 160 KB node) with a checkpoint every 4 commits: the files
 * below each checkpoint's start go to the pool, and the stream renames
 * them for its next files (wal.c reuse_file: rename, then a new header).
 * Each step twice: a kill, and a power loss of one of the other modes in
 * turn. (The one reuse state this script does not reach, a log that ends
 * exactly at the start of a renamed file, is wal/renamed_file_without_its_
 * new_header_is_reused.) */
enum { REUSE_N = 40, REUSE_CKPT = 4, REUSE_SIZE = 160000 };

static bool reuse_holds(const uint8_t *p, uint32_t size, uint32_t k)
{
	if (size != REUSE_SIZE)
		return false;
	for (uint32_t i = 0; i < size; i += 997)
		if (p[i] != (uint8_t)(k * 31 + i))
			return false;
	return true;
}

static int reuse_commit(strata_store *s, uint32_t k)
{
	const char *rn = "r0";
	strata_txn *t;
	int rc = strata_txn_begin(s, &rn, 1, STRATA_TXN_SYNC, &t);
	if (rc)
		return rc;
	strata_node_id old, id;
	uint8_t *p;
	if ((rc = strata_txn_get_root(t, rn, &old)) || (old && (rc = strata_txn_free(t, old))) ||
	    (rc = strata_txn_alloc(t, REUSE_SIZE, 1, &id, (void **)&p))) {
		strata_txn_abort(t);
		return rc;
	}
	for (uint32_t i = 0; i < REUSE_SIZE; i++)
		p[i] = (uint8_t)(k * 31 + i);
	if ((rc = strata_txn_set_root(t, rn, id))) {
		strata_txn_abort(t);
		return rc;
	}
	return strata_txn_commit(t, NULL);
}

/* The commit whose node root r0 holds (0: none), or -1 if its bytes are wrong. */
static int reuse_state(strata_store *s)
{
	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	strata_node_id id;
	int k = 0;
	if (strata_snapshot_root(snap, "r0", &id) == 0 && id) {
		const void *p;
		uint32_t size;
		k = -1;
		if (strata_resolve(snap, id, &p, &size) == 0)
			for (uint32_t c = 1; c <= REUSE_N + 1 && k < 0; c++)
				if (reuse_holds(p, size, c))
					k = (int)c;
	}
	strata_snapshot_close(snap);
	return k;
}

static uint32_t reuse_script(io_env *env)
{
	strata_store *s;
	if (open_sim(env, &s))
		return 0;
	uint32_t acked = 0;
	for (uint32_t k = 1; k <= REUSE_N; k++) {
		if (reuse_commit(s, k))
			break;
		acked = k;
		if (k % REUSE_CKPT == 0 && strata_checkpoint(s))
			break;
	}
	strata_close(s);
	return acked;
}

Test(durable, power_loss_while_wal_files_are_reused, .timeout = 900)
{
	const io_sim_loss modes[] = {IO_SIM_DROP_ALL, IO_SIM_KEEP_RANDOM, IO_SIM_TEAR_LAST};
	io_env *probe = fresh_env();
	uint64_t s0 = io_sim_steps(probe);
	cr_assert_eq(reuse_script(probe), REUSE_N);
	uint64_t total = io_sim_steps(probe) - s0;
	unsigned files = 0, top = 0;
	for (unsigned seq = 0; seq < 64; seq++) {
		char path[64];
		snprintf(path, sizeof path, "db/wal.%016x", seq);
		if (io_exists(probe, path) > 0)
			files++, top = seq;
	}
	io_sim_free(probe);
	/* The stream went past more files than there are: it reused some. */
	cr_assert_gt(top + 1, files, "%u files, the last wal.%u: none reused", files, top);
	unsigned checked = 0;
	for (uint64_t run = 2; run < 2 * total; run++) {
		/* each step twice: a kill (every write kept) and a power loss */
		uint64_t crash = run / 2;
		io_env *env = fresh_env();
		io_sim_crash_after(env, io_sim_steps(env) + crash);
		uint32_t acked = reuse_script(env);
		io_sim_power_loss(env, run % 2 ? modes[crash % 3] : IO_SIM_KEEP_ALL, crash);
		strata_store *s;
		int rc = open_sim(env, &s);
		cr_assert_eq(rc, 0, "crash after step %" PRIu64 ": %s (%s)", crash, strata_strerror(rc),
			     strata_last_error());
		int k = reuse_state(s);
		cr_assert(k == (int)acked || k == (int)acked + 1,
			  "crash %" PRIu64 ": the state of commit %d, acknowledged %u", crash, k, acked);
		cr_assert_eq(strata_check(s, test_report, NULL), 0);
		cr_assert_eq(reuse_commit(s, REUSE_N + 1), 0, "%s", strata_last_error());
		cr_assert_eq(strata_close(s), 0);
		cr_assert_eq(open_sim(env, &s), 0);
		cr_assert_eq(reuse_state(s), REUSE_N + 1);
		cr_assert_eq(strata_close(s), 0);
		io_sim_free(env);
		checked++;
	}
	cr_log_info("durable: %u crash states over %" PRIu64 " steps; the stream reached wal.%u, "
		    "%u files at the end",
		    checked, total, top, files);
}

/* ---- corruption ---------------------------------------------------------------------- */
static uint64_t file_size(io_env *env, const char *path)
{
	uint64_t n = 0;
	io_sim_file_size(env, path, &n);
	return n;
}

/* Flipping any of `samples` bits spread over a file: open fails with a
 * clear status, or opens and every read returns the right bytes or an
 * error. */
static void flip_campaign(const char *file, uint32_t n, uint32_t ckpt_at, uint64_t samples)
{
	model hist[16];
	bool closed;
	io_env *base = fresh_env();
	cr_assert_eq(script(base, n, ckpt_at, hist, &closed), n);
	uint64_t size = file_size(base, file);
	io_sim_free(base);
	cr_assert_gt(size, 0, "%s exists", file);
	unsigned refused = 0, served_ok = 0;
	quiet = true;
	uint64_t stride = size / samples ? size / samples : 1;
	for (uint64_t off = 0; off < size; off += stride) {
		io_env *env = fresh_env();
		script(env, n, ckpt_at, hist, &closed);
		cr_assert_eq(io_sim_flip_bit(env, file, off, (unsigned)(off % 8)), 0);
		strata_store *s;
		int rc = open_sim(env, &s);
		if (rc) {
			cr_assert(rc == STRATA_ECORRUPT || rc == STRATA_EFORMAT || rc == STRATA_ETRUNCATED,
				  "%s offset %" PRIu64 ": %s", file, off, strata_strerror(rc));
			refused++;
		} else {
			/* Opened: either the flip was in bytes never read (slack), or a
			 * read of the damaged node fails. Never wrong bytes. */
			if (state_is(s, &hist[n]))
				served_ok++;
			else
				refused++; /* state_is saw an error, not different bytes */
			strata_close(s);
		}
		io_sim_free(env);
	}
	quiet = false;
	cr_log_info("%s: %u flips refused or failed cleanly, %u harmless", file, refused, served_ok);
	cr_assert_gt(refused, 0);
}

Test(durable, corruption_is_detected_never_served, .timeout = 900)
{
	unsigned k = TSAN_BUILD ? 10 : 1; /* fewer samples under TSan */
	flip_campaign("db/SUPER", 6, 3, 200 / k);
	flip_campaign("db/ckpt.0000000000000002", 6, 3, 400 / k);
	flip_campaign("db/wal.0000000000000000", 6, 3, 200 / k);
	flip_campaign("db/data", 6, 3, 200 / k);
}

/* The damaged bytes of a node are never returned: resolve reports them. */
Test(durable, damaged_node_image_reports_ecorrupt)
{
	io_env *env = fresh_env();
	model hist[4];
	bool closed;
	cr_assert_eq(script(env, 3, 0, hist, &closed), 3);
	/* The clean close wrote every node to `data`; damage one byte of each. */
	uint64_t size = file_size(env, "db/data");
	for (uint64_t off = 4096 + 64; off < size; off += 4096)
		io_sim_flip_bit(env, "db/data", off, 1);
	strata_store *s;
	cr_assert_eq(open_sim(env, &s), 0, "fast open reads no node image");
	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	unsigned bad = 0, good = 0;
	for (int i = 0; i < NROOTS; i++) {
		strata_node_id id;
		const void *d;
		uint32_t sz;
		if (strata_snapshot_root(snap, root_names[i], &id) || !id)
			continue;
		int rc = strata_resolve(snap, id, &d, &sz);
		cr_assert(rc == 0 || rc == STRATA_ECORRUPT);
		bad += rc == STRATA_ECORRUPT;
		good += rc == 0;
	}
	strata_snapshot_close(snap);
	cr_assert_gt(bad + good, 0);
	cr_assert_eq(strata_close(s), 0);
	io_sim_free(env);
}

/* ---- fail-stop ---------------------------------------------------------------------------- */
Test(durable, failed_sync_poisons_writes_not_reads)
{
	io_env *env = fresh_env();
	strata_store *s;
	cr_assert_eq(open_sim(env, &s), 0);
	model m = {{0}};
	cr_assert_eq(do_commit(s, 1, &m), 0);
	model before = m;
	io_sim_fail_step(env, io_sim_steps(env) + 2, -EIO); /* the commit's sync */
	int rc = do_commit(s, 2, &m);
	cr_assert_eq(rc, -EIO, "%s", strata_strerror(rc));
	cr_assert(state_is(s, &before), "the failed commit is not visible");
	model m2 = before;
	cr_assert_eq(do_commit(s, 3, &m2), STRATA_EIO, "poisoned for good");
	cr_assert_eq(strata_checkpoint(s), STRATA_EIO);
	cr_assert(state_is(s, &before), "reads of committed data go on");
	cr_assert_eq(strata_close(s), STRATA_EIO);
	io_sim_free(env);
}

Test(durable, enospc_fails_the_commit_and_keeps_the_store_readable)
{
	io_env *env = fresh_env();
	strata_store *s;
	cr_assert_eq(open_sim(env, &s), 0);
	model m = {{0}};
	cr_assert_eq(do_commit(s, 1, &m), 0);
	model before = m;
	io_sim_fail_step(env, io_sim_steps(env) + 1, -ENOSPC);
	int rc = do_commit(s, 2, &m);
	cr_assert_eq(rc, -ENOSPC, "%s", strata_strerror(rc));
	cr_assert(state_is(s, &before));
	strata_close(s);
	io_sim_power_loss(env, IO_SIM_DROP_ALL, 3);
	cr_assert_eq(open_sim(env, &s), 0, "%s", strata_last_error());
	cr_assert(state_is(s, &before));
	cr_assert_eq(strata_close(s), 0);
	io_sim_free(env);
}

/* ---- open errors ---------------------------------------------------------------------------- */
Test(durable, second_open_is_ebusy)
{
	io_env *env = fresh_env();
	strata_store *a, *b;
	cr_assert_eq(open_sim(env, &a), 0);
	cr_assert_eq(open_sim(env, &b), STRATA_EBUSY);
	cr_assert_eq(strata_close(a), 0);
	cr_assert_eq(open_sim(env, &b), 0, "the lock goes with the store");
	cr_assert_eq(strata_close(b), 0);
	io_sim_free(env);
}

Test(durable, foreign_newer_and_truncated_stores)
{
	io_env *env = fresh_env();
	strata_store *s;
	strata_options o = opts();
	o.flags = 0;
	cr_assert_eq(store_open_env(&o, env, &s), STRATA_EFORMAT, "a directory with no store");
	cr_assert(strstr(strata_last_error(), "not a Strata store"));
	io_file *f;
	cr_assert_eq(io_open(env, "db/SUPER", IO_CREATE, &f), 0);
	static uint8_t junk[8192];
	memset(junk, 'j', sizeof junk);
	cr_assert_eq(io_pwrite(f, junk, sizeof junk, 0), 0);
	cr_assert_eq(store_open_env(&o, env, &s), STRATA_EFORMAT, "a foreign SUPER");
	cr_assert_eq(io_truncate(f, 100), 0);
	cr_assert_eq(store_open_env(&o, env, &s), STRATA_ETRUNCATED);
	/* A real superblock of a newer version (CRC right). */
	sb_state sb = {.generation = 1, .ckpt_epoch = 1, .wal_file_size = 1u << 20};
	uint8_t slot[SB_SLOT];
	sb_encode(&sb, slot);
	slot[4] = 9;
	uint32_t crc = strata_crc32c(0, slot, SB_SLOT - 4);
	memcpy(slot + SB_SLOT - 4, &crc, 4);
	cr_assert_eq(io_pwrite(f, slot, SB_SLOT, 0), 0);
	cr_assert_eq(io_pwrite(f, slot, SB_SLOT, SB_SLOT), 0);
	cr_assert_eq(store_open_env(&o, env, &s), STRATA_EFORMAT, "newer format");
	io_close(f);
	io_sim_free(env);
}

/* ---- make durable ----------------------------------------------------------------------- */
static strata_store *memory_store_with(uint32_t n, model *m)
{
	strata_options o = opts();
	o.mode = STRATA_IN_MEMORY;
	strata_store *s;
	cr_assert_eq(strata_open(&o, &s), 0);
	memset(m, 0, sizeof *m);
	for (uint32_t k = 1; k <= n; k++)
		cr_assert_eq(do_commit(s, k, m), 0);
	return s;
}

Test(durable, make_durable_keeps_state_and_snapshots)
{
	io_env *env = fresh_env();
	model m;
	strata_store *s = memory_store_with(8, &m);
	strata_snapshot *old;
	cr_assert_eq(strata_snapshot_open(s, &old), 0);
	model at_snapshot = m;
	cr_assert_eq(make_durable_env(s, "db", env), 0, "%s", strata_last_error());
	cr_assert_eq(make_durable_env(s, "db", env), STRATA_EINVAL, "already durable");
	for (uint32_t k = 9; k <= 12; k++)
		cr_assert_eq(do_commit(s, k, &m), 0);
	cr_assert_eq(strata_snapshot_epoch(old), 9, "epochs 2..9 for commits 1..8");
	cr_assert(snapshot_is(old, &at_snapshot), "a snapshot open across the switch is unchanged");
	strata_snapshot_close(old);
	cr_assert(state_is(s, &m));
	cr_assert_eq(strata_check(s, test_report, NULL), 0);
	/* A crash now: the checkpoint of the switch plus the WAL bring it back. */
	io_sim_crash_after(env, io_sim_steps(env));
	strata_close(s);
	io_sim_power_loss(env, IO_SIM_DROP_ALL, 9);
	cr_assert_eq(open_sim(env, &s), 0, "%s", strata_last_error());
	cr_assert(state_is(s, &m));
	cr_assert_eq(strata_close(s), 0);
	io_sim_free(env);
}

/* Power loss at every step of the switch: either no store in the
 * directory (the switch was not acknowledged), or the whole state. */
Test(durable, make_durable_is_all_or_nothing, .timeout = 300)
{
	io_env *probe = fresh_env();
	model m;
	strata_store *s = memory_store_with(6, &m);
	uint64_t s0 = io_sim_steps(probe);
	cr_assert_eq(make_durable_env(s, "db", probe), 0);
	uint64_t total = io_sim_steps(probe) - s0;
	cr_assert_eq(strata_close(s), 0);
	io_sim_free(probe);
	unsigned none = 0, whole = 0;
	for (uint64_t crash = 0; crash <= total; crash++) {
		io_env *env = fresh_env();
		s = memory_store_with(6, &m);
		io_sim_crash_after(env, io_sim_steps(env) + crash);
		int rc = make_durable_env(s, "db", env);
		strata_close(s);
		io_sim_power_loss(env, IO_SIM_KEEP_RANDOM, crash);
		strata_options o = opts();
		o.flags = 0;
		int orc = store_open_env(&o, env, &s);
		if (orc == 0) {
			cr_assert(state_is(s, &m), "crash %" PRIu64 ": a store, but not the state", crash);
			cr_assert_eq(strata_close(s), 0);
			whole++;
		} else {
			cr_assert_eq(orc, STRATA_EFORMAT, "crash %" PRIu64 ": %s", crash, strata_last_error());
			cr_assert_neq(rc, 0, "crash %" PRIu64 ": acknowledged, yet no store", crash);
			none++;
		}
		io_sim_free(env);
	}
	cr_log_info("make_durable: %" PRIu64 " steps, %u crash states without a store, %u whole",
		    total, none, whole);
	cr_assert_gt(none, 0);
	cr_assert_gt(whole, 0);
}

/* ---- checkpoint policy ------------------------------------------------------------- */
static uint64_t ckpt_gen_of(strata_store *s)
{
	sb_state sb;
	sb_load(&s->dur->sbc, &sb);
	return sb.ckpt_gen;
}

/* The dirty-node threshold alone (no WAL-size or time trigger) makes the
 * coordinator checkpoint in the background, woken by the commit. */
Test(durable, dirty_nodes_trigger_a_background_checkpoint)
{
	io_env *env = fresh_env();
	strata_options o = opts();
	o.checkpoint_dirty_nodes = 5;
	strata_store *s;
	cr_assert_eq(store_open_env(&o, env, &s), 0);
	cr_assert_eq(ckpt_gen_of(s), 0);
	model m = {{0}};
	for (uint32_t k = 1; k <= 6; k++)
		cr_assert_eq(do_commit(s, k, &m), 0);
	for (int i = 0; i < 3000 && ckpt_gen_of(s) == 0; i++) /* 30 s: a loaded CI machine */
		usleep(10000);
	cr_assert_geq(ckpt_gen_of(s), 1, "no checkpoint within 30 s of crossing the threshold");
	cr_assert_eq(strata_close(s), 0);
	cr_assert_eq(store_open_env(&o, env, &s), 0);
	cr_assert(state_is(s, &m));
	cr_assert_eq(strata_close(s), 0);
	io_sim_free(env);
}

/* Regression (found by the kill campaign): after a recovery that replayed
 * the WAL, the files between the superblock's start LSN and the recovered
 * end were handed out for reuse, so a second crash before any checkpoint
 * lost acknowledged commits. Two crashes in a row, no checkpoint between. */
Test(durable, wal_needed_by_recovery_is_not_reused)
{
	io_env *env = fresh_env();
	strata_store *s;
	model m = {{0}};
	uint32_t k = 0;
	for (int round = 0; round < 3; round++) {
		cr_assert_eq(open_sim(env, &s), 0, "round %d: %s", round, strata_last_error());
		cr_assert(state_is(s, &m), "round %d: acknowledged commits lost", round);
		for (int i = 0; i < 40; i++) /* ~1.5 MiB of WAL: crosses files */
			cr_assert_eq(do_commit(s, ++k, &m), 0);
		io_sim_crash_after(env, io_sim_steps(env));
		strata_close(s);
		io_sim_power_loss(env, IO_SIM_DROP_ALL, (uint64_t)round);
	}
	cr_assert_eq(open_sim(env, &s), 0, "%s", strata_last_error());
	cr_assert(state_is(s, &m));
	cr_assert_eq(strata_close(s), 0);
	io_sim_free(env);
}

/* Regression (found by test_cache under load): a commit's WAL entry was
 * published by whichever thread next advanced publication (a sync's
 * on_durable, another committer), possibly between the commit's append and
 * its stamps. A snapshot then pinned E while E's root version was not there
 * yet and E's retire stamps were (or not yet): the root named a node not
 * visible at E, and reclamation could free what the snapshot read. The
 * hook runs in that window: a sync there must not publish E. */
static struct {
	uint64_t hook_epoch, snap_epoch;
	int rc;
	uint8_t byte;
} win;

static void in_the_window(strata_store *s, uint64_t E)
{
	win.hook_epoch = E;
	/* What a sync leader does: the log is durable further, publish. */
	win.rc = wal_sync_to(s->dur->wal, wal_end(s->dur->wal));
	strata_snapshot *snap;
	if (win.rc || (win.rc = strata_snapshot_open(s, &snap)))
		return;
	win.snap_epoch = strata_snapshot_epoch(snap);
	strata_node_id id;
	const uint8_t *p;
	if (!(win.rc = strata_snapshot_root(snap, "r0", &id)) &&
	    !(win.rc = strata_resolve(snap, id, (const void **)&p, NULL)))
		win.byte = p[0];
	strata_snapshot_close(snap);
}

Test(durable, an_epoch_is_published_only_after_its_stamps)
{
	static const char *const mode[] = {"", "", "ASYNC", "NONE", "default (SYNC)"};
	io_env *env = fresh_env();
	strata_store *s;
	cr_assert_eq(open_sim(env, &s), 0);
	const char *rn = "r0";
	for (uint8_t k = 1; k <= 4; k++) {
		strata_txn *t;
		unsigned flags = k == 1 ? 0 : k == 2 ? STRATA_TXN_ASYNC : k == 3 ? STRATA_TXN_NONE : 0;
		cr_assert_eq(strata_txn_begin(s, &rn, 1, flags, &t), 0);
		strata_node_id old, id;
		cr_assert_eq(strata_txn_get_root(t, rn, &old), 0);
		void *p;
		if (old) {
			const void *was;
			cr_assert_eq(strata_txn_rewrite(t, old, 0, &id, &p, &was, NULL), 0);
		} else {
			cr_assert_eq(strata_txn_alloc(t, 64, 1, &id, &p), 0);
		}
		memset(p, k, 64);
		cr_assert_eq(strata_txn_set_root(t, rn, id), 0);
		memset(&win, 0, sizeof win);
		txn_test_after_log = k > 1 ? in_the_window : NULL;
		uint64_t E;
		int rc = strata_txn_commit(t, &E);
		txn_test_after_log = NULL;
		cr_assert_eq(rc, 0);
		if (k == 1)
			continue;
		cr_assert_eq(win.hook_epoch, E);
		cr_assert_eq(win.rc, 0, "%s commit: %s", mode[k], strata_strerror(win.rc));
		cr_assert_eq(win.snap_epoch, E - 1, "%s commit: epoch %" PRIu64
			     " was visible before its stamps", mode[k], E);
		cr_assert_eq(win.byte, k - 1, "the snapshot in the window reads the previous commit");
	}
	cr_assert_eq(strata_check(s, test_report, NULL), 0);
	cr_assert_eq(strata_close(s), 0);
	io_sim_free(env);
}

/* A checkpoint frees the slots that waited in limbo for it; strata_check
 * run meanwhile (the crash verifier's, right after a recovering open, while
 * the coordinator checkpoints) must see each slot either still in limbo or
 * free. Before free_lock it could count one taken out of limbo and not yet
 * freed, used by no entry: "class 0: 6 slots used, 5 entries" in 2 of
 * ~4400 crash-campaign recoveries. The hook holds that window open for
 * 100 ms; a check that could run inside it fails here. */
static strata_store *limbo_store;
static atomic_int limbo_in_window;

static void limbo_hold(strata_store *s)
{
	(void)s;
	atomic_store(&limbo_in_window, 1);
	usleep(100000);
}

static void *checkpoint_thread(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)strata_checkpoint(limbo_store);
}

Test(durable, check_never_sees_a_slot_between_limbo_and_free)
{
	io_env *env = fresh_env();
	strata_store *s;
	cr_assert_eq(open_sim(env, &s), 0);
	const char *rn = "r0";
	strata_txn *t;
	strata_node_id id[8];
	cr_assert_eq(strata_txn_begin(s, &rn, 1, 0, &t), 0);
	for (int i = 0; i < 8; i++) {
		void *p;
		cr_assert_eq(strata_txn_alloc(t, 64, 1, &id[i], &p), 0);
		memset(p, i, 64);
	}
	cr_assert_eq(strata_txn_set_root(t, rn, id[0]), 0);
	cr_assert_eq(strata_txn_commit(t, NULL), 0);
	cr_assert_eq(strata_checkpoint(s), 0); /* the nodes are named: freed, they wait in limbo */
	cr_assert_eq(strata_txn_begin(s, &rn, 1, 0, &t), 0);
	for (int i = 1; i < 8; i++)
		cr_assert_eq(strata_txn_free(t, id[i]), 0);
	cr_assert_eq(strata_txn_commit(t, NULL), 0);
	strata_reclaim(s); /* if the commit's own reclamation did not */
	cr_assert_eq(s->dur->nlimbo, 7, "the freed nodes' slots wait in limbo");
	cr_assert_eq(strata_check(s, test_report, NULL), 0);
	limbo_store = s;
	atomic_store(&limbo_in_window, 0);
	durable_test_limbo_out = limbo_hold;
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, checkpoint_thread, NULL), 0);
	while (!atomic_load(&limbo_in_window))
		usleep(1000);
	int rc = strata_check(s, test_report, NULL);
	void *ckrc;
	pthread_join(th, &ckrc);
	durable_test_limbo_out = NULL;
	cr_assert_eq((intptr_t)ckrc, 0);
	cr_assert_eq(rc, 0, "strata_check during the release of limbo: %s", strata_strerror(rc));
	cr_assert_eq(strata_check(s, test_report, NULL), 0);
	cr_assert_eq(strata_close(s), 0);
	io_sim_free(env);
}
