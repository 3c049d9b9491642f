/* model.c — see model.h. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "durable.h"
#include "io_sim.h"
#include "support/model.h"

uint64_t rng_next(test_rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t rng_below(test_rng *r, uint64_t n)
{
	return n ? rng_next(r) % n : 0;
}

void test_report(void *ctx, const char *message)
{
	(void)ctx;
	cr_log_error("check: %s", message);
}

void test_report_collect(void *ctx, const char *message)
{
	test_collect *c = ctx;
	if (c->n++ == 0)
		snprintf(c->first, sizeof c->first, "%s", message);
	size_t used = strlen(c->all);
	if (used + 1 < sizeof c->all)
		snprintf(c->all + used, sizeof c->all - used, "%s\n", message);
	/* Also visible in the test log, so an unexpected message is explained. */
	cr_log_info("check (expected): %s", message);
}

uint64_t test_fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

strata_options test_durable_options(const char *path, bool idle)
{
	strata_options o;
	strata_options_init(&o);
	o.mode = STRATA_DURABLE;
	o.path = path;
	o.flags = STRATA_OPEN_CREATE;
	o.wal_file_size = 1u << 20;
	/* ctest runs the index suites' DURABLE tests again with a small
	 * bounded cache (tests/CMakeLists.txt): every answer then comes
	 * through eviction and reloading. */
	const char *cache = getenv("STRATA_TEST_CACHE_BYTES");
	if (cache)
		o.cache_bytes = strtoull(cache, NULL, 10);
	if (idle) {
		o.async_interval_ms = 3600u * 1000;
		o.checkpoint_interval_ms = 0;
		o.checkpoint_wal_bytes = UINT64_MAX;
	}
	return o;
}

strata_store *test_open(const strata_options *opts)
{
	strata_store *s = NULL;
	int rc = strata_open(opts, &s);
	cr_assert_eq(rc, 0, "strata_open: %s", strata_strerror(rc));
	cr_assert_not_null(s);
	return s;
}

/* Under STRATA_TEST_CACHE_BYTES a store that held at least ten times the
 * cache (live node bytes) must have evicted and read back: the run then
 * really tested a store larger than its memory. Reported in the log. */
static void cache_report(strata_store *s)
{
	strata_store_stats st;
	cr_assert_eq(strata_stats(s, &st), 0);
	if (!st.cache_bytes_max)
		return;
	uint64_t live = st.large_bytes;
	for (unsigned i = 0; i < STRATA_NUM_CLASSES; i++)
		live += st.classes[i].bytes_requested;
	cr_log_info("cache %llu B: store %llu B (%.1fx), %llu misses, %llu evictions, %llu hits",
		    (unsigned long long)st.cache_bytes_max, (unsigned long long)live,
		    (double)live / (double)st.cache_bytes_max, (unsigned long long)st.cache_misses,
		    (unsigned long long)st.cache_evictions, (unsigned long long)st.cache_hits);
	if (live >= 10 * st.cache_bytes_max)
		cr_assert_gt(st.cache_evictions, 0, "a store 10x the cache evicted nothing");
}

void test_close(strata_store *s)
{
	cr_assert_eq(strata_check(s, test_report, NULL), 0, "strata_check before close");
	cache_report(s);
	int rc = strata_close(s);
	cr_assert_eq(rc, 0, "strata_close: %s", strata_strerror(rc));
}

/* Present only when LeakSanitizer is linked in (ASan builds). */
int __lsan_do_recoverable_leak_check(void) __attribute__((weak));

/* Overwrites the dead stack below us, so a pointer left there by the test
 * cannot make leaked memory look reachable. */
__attribute__((noinline)) static void scrub_stack(void)
{
	/* volatile stores: a plain memset of a dead local is optimized out */
	volatile uintptr_t buf[32 * 1024];
	for (size_t i = 0; i < sizeof buf / sizeof buf[0]; i++)
		buf[i] = 0;
}

void test_leak_check(void)
{
	if (!__lsan_do_recoverable_leak_check)
		return;
	scrub_stack();
	if (__lsan_do_recoverable_leak_check()) {
		/* An assertion in .fini does not fail the test; a crash does. */
		fprintf(stderr, "test_leak_check: LeakSanitizer found leaks (report above)\n");
		abort();
	}
}

/* LeakSanitizer reads this at start-up in ASan builds (unused otherwise).
 * Leaks are checked per test, in the worker, by test_leak_check (.fini),
 * with no suppression. The check at process exit is off: it would run in
 * Criterion's runner too, whose timeout queue leaks 48 bytes when tests
 * with .timeout run in parallel — and a suppression naming libcriterion
 * would match every test's allocations as well (each stack passes through
 * Criterion's test main), hiding real leaks. */
const char *__lsan_default_options(void);
const char *__lsan_default_options(void)
{
	return "leak_check_at_exit=0";
}

#if defined(__SANITIZE_THREAD__)
#define TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TEST_TSAN 1
#endif
#endif
#ifdef TEST_TSAN
/* ThreadSanitizer builds only: Criterion cannot start under TSan (its
 * issue #274, "Could not initialize inheritable arena"). Its BoxFort runner
 * maps a shared arena at 0x200000000000 + (rand_r() & 0x3fffff) * 16 MiB,
 * checks a few random candidates and gives up; under TSan nearly all of
 * that range is shadow or reserved, so the runner usually aborts before
 * any test runs. libcriterion takes rand_r from the executable first, so
 * this one keeps the candidates inside TSan's application window
 * 0x550000000000-0x568000000000 (PIE programs live there; the arena's
 * mincore() probe skips pages in use). Nothing in Strata calls rand_r. */
int rand_r(unsigned *seed);
int rand_r(unsigned *seed)
{
	*seed = *seed * 1103515245u + 12345u;
	return (int)(0x350000u + (*seed >> 8) % 0x18000u);
}
#endif

io_env *test_sim_env(void)
{
	io_env *env = io_sim_new();
	cr_assert_not_null(env);
	cr_assert_eq(io_mkdir(env, "db"), 0);
	cr_assert_eq(io_sync_dir(env, "."), 0);
	return env;
}

double test_now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

strata_store_stats test_stats(strata_store *s)
{
	strata_store_stats st;
	cr_assert_eq(strata_stats(s, &st), 0);
	return st;
}

/* One power loss after step k: the tree found against want[]. Returns
 * whether the run had stopped there (else it ended whole first) and sets
 * *past when the tree is that of the commit in flight. */
static bool power_loss_at(test_pl_work work, test_pl_read read, uint32_t n, const test_digest *want,
			  uint64_t k, bool *past)
{
	static const io_sim_loss modes[] = {IO_SIM_DROP_ALL, IO_SIM_KEEP_RANDOM, IO_SIM_TEAR_LAST,
					    IO_SIM_KEEP_ALL};
	test_digest *seen = calloc(n, sizeof *seen);
	io_env *env = test_sim_env();
	io_sim_crash_after(env, io_sim_steps(env) + k);
	uint32_t acked = work(env, seen);
	bool crashed = io_sim_crashed(env);
	io_sim_power_loss(env, modes[k % 4], k);
	strata_options o = test_durable_options("db", true);
	strata_store *s;
	int rc = store_open_env(&o, env, &s);
	cr_assert_eq(rc, 0, "step %" PRIu64 ": reopen: %s (%s)", k, strata_strerror(rc),
		     strata_last_error());
	test_digest got = {0, 0};
	rc = read(s, &got);
	*past = false;
	if (rc == STRATA_ENOTFOUND) { /* the create itself was not acknowledged */
		cr_assert_eq(acked, 0, "step %" PRIu64 ": the tree is gone", k);
	} else {
		cr_assert_eq(rc, 0, "step %" PRIu64 ": %s", k, strata_strerror(rc));
		/* commit acked - 1 was the last acknowledged, acked in flight */
		uint32_t j = acked ? acked - 1 : 0, last = acked < n - 1 ? acked : n - 1;
		while (j <= last && (want[j].n != got.n || want[j].h != got.h))
			j++;
		cr_assert_leq(j, last,
			      "step %" PRIu64 ": %" PRIu64 " entries, the tree of neither the last "
			      "acknowledged commit (%u) nor the next",
			      k, got.n, acked);
		*past = j == acked;
	}
	cr_assert_eq(strata_check(s, test_report, NULL), 0, "step %" PRIu64, k);
	cr_assert_eq(strata_close(s), 0);
	io_sim_free(env);
	free(seen);
	return crashed;
}

void test_power_loss_campaign(test_pl_work work, test_pl_read read, uint32_t n)
{
	test_digest *want = calloc(n, sizeof *want);
	io_env *env = test_sim_env();
	uint64_t start = io_sim_steps(env);
	cr_assert_eq(work(env, want), n);
	uint64_t total = io_sim_steps(env) - start;
	io_sim_free(env);
	unsigned checked = 0, partial = 0, missed = 0;
	for (uint64_t k = 1; k < total; k += 1 + total / 400) {
		bool past;
		/* With the bounded cache (STRATA_TEST_CACHE_BYTES) a checkpoint the
		 * cache asks for runs on the coordinator's own time, so a run may
		 * take fewer steps than the first: then it ended whole. */
		missed += !power_loss_at(work, read, n, want, k, &past);
		partial += past;
		checked++;
	}
	cr_log_info("%u power-loss points over %" PRIu64 " steps (%u past the end of their run); "
		    "%u recovered a commit past the last acknowledged",
		    checked, total, missed, partial);
	cr_assert_geq(checked - missed, 40, "%u of %u runs ended before their power loss", missed,
		      checked);
	free(want);
}
