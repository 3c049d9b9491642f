/*
 * bench.h — the small runner every strata-bench suite plugs into.
 *
 * A suite is one function taking a bench_session. It asks bench_wants()
 * before building anything a figure needs (so `--only NAME` and `--list` skip
 * the setup of figures not asked for), then hands timed batches to
 * bench_measure(): one untimed warm-up batch, then `runs` timed batches, each
 * reported as ns per operation; the figure keeps median, min and max.
 * Batches are timed with CLOCK_MONOTONIC; one during which the thread got
 * less than 95 % of the wall time as CPU time (CLOCK_THREAD_CPUTIME_ID) was
 * preempted by another job on the shared host and is run again (up to 4
 * times), so medians describe Strata rather than the neighbours.
 * bench_report() prints the human table (figures, ratios, targets, notes)
 * and the JSON lines; with --json only the JSON lines, streamed as figures
 * are recorded.
 *
 * JSON line keys: suite, name, unit, median, min, max, runs, peer. `peer` is
 * always present: "strata" for our own figures, the peer's name (e.g.
 * "lmdb") for figures measured on a peer in the same run.
 */
#ifndef STRATA_BENCH_H
#define STRATA_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BENCH_NAME_MAX 64
#define BENCH_MAX_FIGS 256
#define BENCH_MAX_RATIOS 16
#define BENCH_MAX_TARGETS 16
#define BENCH_MAX_NOTES 24
#define BENCH_NOTE_MAX 240

typedef struct bench_opts {
	int runs;          /* timed batches per figure (>= 1) */
	bool quick;        /* smaller sizes: the smoke test's mode */
	bool json;         /* only JSON lines on stdout */
	bool list;         /* print figure names, measure nothing */
	bool no_rerun;     /* time every batch once, preempted or not (callgrind) */
	const char *only;  /* run just this figure (NULL: all) */
} bench_opts;

typedef struct bench_fig {
	char name[BENCH_NAME_MAX];
	const char *suite, *unit, *peer;
	double median, min, max;
	int runs;
} bench_fig;

typedef struct bench_ratio {
	char num[BENCH_NAME_MAX], den[BENCH_NAME_MAX];
} bench_ratio;

typedef struct bench_target {
	char name[BENCH_NAME_MAX];
	double max; /* met when the median is <= max */
} bench_target;

typedef struct bench_session {
	bench_opts opts;
	const char *suite;
	bench_fig figs[BENCH_MAX_FIGS];
	int nfigs;
	bench_ratio ratios[BENCH_MAX_RATIOS];
	int nratios;
	bench_target targets[BENCH_MAX_TARGETS];
	int ntargets;
	char notes[BENCH_MAX_NOTES][BENCH_NOTE_MAX];
	int nnotes;
	int matched; /* figures that passed bench_wants() */
	int reruns;  /* batches timed again because the thread was preempted */
} bench_session;

/* One timed batch of `ops` operations; returns the elapsed nanoseconds of
 * the timed part only (per-batch setup and teardown stay outside it). */
typedef uint64_t (*bench_fn)(void *arg, uint64_t ops);

/* A fixed ALU loop (6 independent-ish ops per iteration), measured like any
 * figure: on a shared host its ns/op moves with the neighbours' load, so it
 * tells how quiet the machine was while the other figures ran. */
uint64_t bench_calib_alu(void *arg, uint64_t ops);

/* Results of measured work go here so the compiler cannot drop the work. */
extern volatile uint64_t bench_sink;

uint64_t bench_now_ns(void);
/* Aborts the program with a message when a library call failed: a figure
 * measured over failing calls would be meaningless. */
void bench_check(int rc, const char *what);
/* Same, for timed loops: the call is only made on failure. */
#define BENCH_CHECK(expr, what)                          \
	do {                                             \
		int bench_rc_ = (expr);                  \
		if (__builtin_expect(bench_rc_ != 0, 0)) \
			bench_check(bench_rc_, what);    \
	} while (0)
void *bench_xmalloc(uint64_t bytes);

void bench_session_init(bench_session *s, const bench_opts *o, const char *suite);
/* Is figure `name` selected? In --list mode prints it and says no. */
bool bench_wants(bench_session *s, const char *name);
/* Picks the batch size for the mode. */
uint64_t bench_ops(const bench_session *s, uint64_t full, uint64_t quick);

/* Warm-up + runs batches of fn; records "ns/op" figure `name`. */
bench_fig *bench_measure(bench_session *s, const char *name, const char *peer, bench_fn fn,
			 void *arg, uint64_t ops);
/* Paired A/B measurement for small differences on a noisy machine: each
 * run splits `ops` per side into short slices alternating A,B,B,A,... so
 * drift hits both sides alike. Records A and B (ns/op) and `name` =
 * per-run (B/A - 1) * 100 in "%"; at least 9 runs. */
bench_fig *bench_overhead(bench_session *s, const char *name, const char *name_a, bench_fn fa,
			  void *arg_a, const char *name_b, bench_fn fb, void *arg_b, uint64_t ops);
/* Two peers' figures from the same moments: warm-up of each, then `runs`
 * runs, each splitting `ops` per side into 8 slices alternating A,B,B,A.
 * Records name_a and name_b (ns/op), as bench_measure would. */
void bench_measure_pair(bench_session *s, const char *name_a, const char *peer_a, bench_fn fa,
			void *arg_a, const char *name_b, const char *peer_b, bench_fn fb,
			void *arg_b, uint64_t ops);
/* Records a figure from samples the suite computed itself. */
bench_fig *bench_record(bench_session *s, const char *name, const char *unit, const char *peer,
			const double *samples, int n);

void bench_add_ratio(bench_session *s, const char *num, const char *den);
void bench_add_target(bench_session *s, const char *name, double max);
void bench_note(bench_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const bench_fig *bench_find(const bench_session *s, const char *name);

/* Prints the table (unless --json) and the JSON lines not yet printed. */
void bench_report(const bench_session *s);

/* bench_fs.c: where suites keep their stores. Harness failures exit(1). */
void bench_sys_fail(const char *what); /* "what failed: strerror(errno)" */
void bench_path_join(char *out, size_t n, const char *dir, const char *name);
/* A fresh directory $TMPDIR/strata-bench-SUITE-XXXXXX (TMPDIR: /tmp). */
void bench_make_tmpdir(char *out, size_t n, const char *suite);
void bench_remove_tree(const char *dir);
void bench_evict_dir(const char *dir); /* its files synced, then out of the page cache */
/* Runs fn(arg, out) in a forked child (out zeroed first) and copies the
 * child's `size` bytes of *out back through a pipe. The child exits
 * without closing anything (a store it left open is abandoned as by a
 * crash); a child that dies or fails ends the program here too. */
typedef void (*bench_child_fn)(const void *arg, void *out);
void bench_in_child(bench_child_fn fn, const void *arg, void *out, size_t size);

#endif /* STRATA_BENCH_H */
