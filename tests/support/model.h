/* model.h — helpers shared by the test suites: a deterministic PRNG and a
 * checker reporter that prints through Criterion. */
#ifndef STRATA_TEST_MODEL_H
#define STRATA_TEST_MODEL_H
#include <stdint.h>

typedef struct test_rng {
	uint64_t s;
} test_rng;

/* splitmix64: fast, deterministic, good enough for workloads. */
uint64_t rng_next(test_rng *r);
uint64_t rng_below(test_rng *r, uint64_t n);

/* strata_report_fn that logs each problem with cr_log_error. */
void test_report(void *ctx, const char *message);
#endif
