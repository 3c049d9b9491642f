/* model.h — helpers shared by the test suites: a deterministic PRNG, a
 * checksum, and checker reporters that print through Criterion (one of them
 * also counts and keeps the messages, so a test can assert that the checker
 * complained and about what). */
#ifndef STRATA_TEST_MODEL_H
#define STRATA_TEST_MODEL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strata/strata.h"

typedef struct test_rng {
	uint64_t s;
} test_rng;

/* splitmix64: fast, deterministic, good enough for workloads. */
uint64_t rng_next(test_rng *r);
uint64_t rng_below(test_rng *r, uint64_t n);

/* strata_report_fn that logs each problem with cr_log_error. */
void test_report(void *ctx, const char *message);

/* Collects checker messages: ctx is a test_collect. */
typedef struct test_collect {
	int n;
	char first[256];
	char all[4096]; /* messages joined by '\n', truncated */
} test_collect;
void test_report_collect(void *ctx, const char *message);

/* FNV-1a over bytes, chained through `h` (start with TEST_FNV_SEED). */
#define TEST_FNV_SEED 0xcbf29ce484222325ull
uint64_t test_fnv(uint64_t h, const void *p, size_t n);

/* Suite .fini for every suite: in ASan builds, fails the test if it leaked.
 * (LeakSanitizer's own exit-time report in a Criterion worker does not fail
 * the test, so each test checks before its process ends.) No-op elsewhere. */
void test_leak_check(void);

/* Options for a DURABLE store in `path`: created if missing, 1 MiB WAL
 * files. idle: the coordinator never wakes on its own (no timed sync, no
 * checkpoint by time or WAL size), so the I/O steps of a run repeat. */
strata_options test_durable_options(const char *path, bool idle);
/* A simulated file system (io_sim) with an empty, synced directory "db". */
struct io_env *test_sim_env(void);
/* Seconds on the monotonic clock: for tests that keep a thread busy until
 * the others have had their turn, up to a bound. */
double test_now_s(void);
/* strata_stats or fail the test. */
strata_store_stats test_stats(strata_store *s);

/* ---- power loss under an index (test_xtree, test_bptree) ----
 * A tree's contents as a count and a hash (each suite decides how). */
typedef struct test_digest {
	uint64_t n, h;
} test_digest;
/* Runs the suite's workload on a store in env (directory "db", options
 * test_durable_options("db", true)) until it ends or the simulated machine
 * stops: commit 0 creates the tree, commits 1..n-1 change it, all SYNC;
 * want[j] gets the tree after commit j. Returns how many commits were
 * acknowledged. */
typedef uint32_t (*test_pl_work)(struct io_env *env, test_digest *want);
/* The reopened store's tree into *got, its checker asserted clean; the
 * status (STRATA_ENOTFOUND: there is no tree). */
typedef int (*test_pl_read)(strata_store *s, test_digest *got);
/* Cuts power after every I/O step k of the workload (a stride above 400
 * steps), the four loss modes in turn, reopens, and asserts that the tree
 * is exactly that of the last acknowledged commit or of the one in flight,
 * and that strata_check is clean. n: the workload's commits. */
void test_power_loss_campaign(test_pl_work work, test_pl_read read, uint32_t n);

/* Opens a store with the given options (NULL: defaults) or fails the test. */
strata_store *test_open(const strata_options *opts);
/* Closes it, asserting that strata_check is clean first. */
void test_close(strata_store *s);
#endif
