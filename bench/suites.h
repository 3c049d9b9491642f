/*
 * suites.h — the suites strata-bench can run. A new suite (durable, xtree,
 * bptree) adds its entry point here and a row in main.c's table.
 */
#ifndef STRATA_BENCH_SUITES_H
#define STRATA_BENCH_SUITES_H

#include "bench.h"

/* Each returns 0, or non-zero when the suite could not run. */
int bench_substrate(bench_session *s);
int bench_durable(bench_session *s);
int bench_bptree(bench_session *s);
int bench_xtree(bench_session *s);
int bench_scale(bench_session *s);

#endif /* STRATA_BENCH_SUITES_H */
