/*
 * bench.c — the runner behind bench.h: timing, repeat runs, statistics,
 * and the table / JSON output shared by every suite.
 */
#include "bench.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "strata/strata.h"

volatile uint64_t bench_sink;

uint64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t bench_calib_alu(void *arg, uint64_t ops)
{
	(void)arg;
	uint64_t a = 1, b = 2, c = 3, d = 4, e = 5, f = 6;
	uint64_t t0 = bench_now_ns();
	for (uint64_t i = 0; i < ops; i++) {
		a += i;
		b ^= i;
		c += a;
		d ^= b;
		e += c;
		f ^= d;
		/* Keeps the six updates as written: no vectorizing, no folding. */
		__asm__ volatile("" : "+r"(a), "+r"(b), "+r"(c), "+r"(d), "+r"(e), "+r"(f));
	}
	uint64_t t1 = bench_now_ns();
	bench_sink += e ^ f;
	return t1 - t0;
}

void bench_check(int rc, const char *what)
{
	if (rc == 0)
		return;
	fprintf(stderr, "strata-bench: %s failed: %s (%d)\n", what, strata_strerror(rc), rc);
	exit(1);
}

void *bench_xmalloc(uint64_t bytes)
{
	void *p = malloc(bytes ? bytes : 1);
	if (!p) {
		fprintf(stderr, "strata-bench: out of memory (%llu bytes)\n",
			(unsigned long long)bytes);
		exit(1);
	}
	return p;
}

void bench_session_init(bench_session *s, const bench_opts *o, const char *suite)
{
	memset(s, 0, sizeof *s);
	s->opts = *o;
	s->suite = suite;
}

bool bench_wants(bench_session *s, const char *name)
{
	if (s->opts.list) {
		printf("%s\n", name);
		return false;
	}
	if (s->opts.only && strcmp(s->opts.only, name) != 0)
		return false;
	s->matched++;
	return true;
}

uint64_t bench_ops(const bench_session *s, uint64_t full, uint64_t quick)
{
	return s->opts.quick ? quick : full;
}

/* ---- statistics ----------------------------------------------------------- */
static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void summarize(bench_fig *f, const double *samples, int n)
{
	double *v = bench_xmalloc(sizeof *v * (uint64_t)n);
	memcpy(v, samples, sizeof *v * (size_t)n);
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	f->min = v[0];
	f->max = v[n - 1];
	f->median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	f->runs = n;
	free(v);
}

/* ---- recording -------------------------------------------------------------- */
static void print_json(const bench_fig *f)
{
	printf("{\"suite\":\"%s\",\"name\":\"%s\",\"unit\":\"%s\",\"median\":%.3f,"
	       "\"min\":%.3f,\"max\":%.3f,\"runs\":%d,\"peer\":\"%s\"}\n",
	       f->suite, f->name, f->unit, f->median, f->min, f->max, f->runs, f->peer);
}

bench_fig *bench_record(bench_session *s, const char *name, const char *unit, const char *peer,
			const double *samples, int n)
{
	if (s->nfigs == BENCH_MAX_FIGS || n < 1) {
		fprintf(stderr, "strata-bench: cannot record %s\n", name);
		exit(1);
	}
	bench_fig *f = &s->figs[s->nfigs++];
	snprintf(f->name, sizeof f->name, "%s", name);
	f->suite = s->suite;
	f->unit = unit;
	f->peer = peer ? peer : "strata";
	summarize(f, samples, n);
	if (s->opts.json) {
		print_json(f); /* streamed: a long run shows progress */
		fflush(stdout);
	} else {
		fprintf(stderr, "  %-34s %10.3f %s\n", f->name, f->median, f->unit);
	}
	return f;
}

/* CPU time of this thread: with it a batch can tell whether the scheduler
 * took the core away from it (the host runs other jobs). */
static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A batch whose thread ran less than this share of its wall time was
 * preempted; its wall-clock figure measures the other jobs, not ours. */
#define RAN_SHARE 0.95
#define MAX_RETRIES 4

/* Runs `once` until it is not preempted (at most MAX_RETRIES re-runs; the
 * last attempt is kept whatever happened). */
static void unpreempted(bench_session *s, void (*once)(void *ctx), void *ctx)
{
	for (int attempt = 0;; attempt++) {
		uint64_t c0 = thread_cpu_ns(), w0 = bench_now_ns();
		once(ctx);
		uint64_t w1 = bench_now_ns(), c1 = thread_cpu_ns();
		if (s->opts.no_rerun || attempt == MAX_RETRIES ||
		    (double)(c1 - c0) >= RAN_SHARE * (double)(w1 - w0))
			return;
		s->reruns++;
	}
}

typedef struct batch_job {
	bench_fn fn;
	void *arg;
	uint64_t ops;
	double ns_per_op;
} batch_job;

static void batch_once(void *ctx)
{
	batch_job *j = ctx;
	j->ns_per_op = (double)j->fn(j->arg, j->ops) / (double)j->ops;
}

static double batch_ns_per_op(bench_session *s, bench_fn fn, void *arg, uint64_t ops)
{
	batch_job j = {.fn = fn, .arg = arg, .ops = ops};
	unpreempted(s, batch_once, &j);
	return j.ns_per_op;
}

bench_fig *bench_measure(bench_session *s, const char *name, const char *peer, bench_fn fn,
			 void *arg, uint64_t ops)
{
	int n = s->opts.runs;
	double *v = bench_xmalloc(sizeof *v * (uint64_t)n);
	fn(arg, ops); /* warm-up: caches, page faults, lazily grown tables */
	for (int r = 0; r < n; r++)
		v[r] = batch_ns_per_op(s, fn, arg, ops);
	bench_fig *f = bench_record(s, name, "ns/op", peer, v, n);
	free(v);
	return f;
}

/* One paired run: `slices` short batches per side, alternating A,B,B,A so
 * both sides see the same mix of quiet and busy host time. */
typedef struct pair_job {
	bench_fn fa, fb;
	void *arg_a, *arg_b;
	uint64_t ops;
	int slices;
	double a, b; /* ns/op */
} pair_job;

static void pair_once(void *ctx)
{
	pair_job *j = ctx;
	const int n = j->slices;
	uint64_t slice = j->ops / (uint64_t)n ? j->ops / (uint64_t)n : 1, ta = 0, tb = 0;
	for (int k = 0; k < n; k++) {
		if (k % 2 == 0) {
			ta += j->fa(j->arg_a, slice);
			tb += j->fb(j->arg_b, slice);
		} else {
			tb += j->fb(j->arg_b, slice);
			ta += j->fa(j->arg_a, slice);
		}
	}
	j->a = (double)ta / (double)(slice * (uint64_t)n);
	j->b = (double)tb / (double)(slice * (uint64_t)n);
}

/* Warm-up of both sides, then n paired runs of `slices` slices each into
 * a[0..n) and b[0..n) (ns/op): what bench_overhead and bench_measure_pair
 * share. */
static void paired_runs(bench_session *s, bench_fn fa, void *arg_a, bench_fn fb, void *arg_b,
			uint64_t ops, int slices, int n, double *a, double *b)
{
	fa(arg_a, ops);
	fb(arg_b, ops);
	pair_job j = {.fa = fa, .fb = fb, .arg_a = arg_a, .arg_b = arg_b, .ops = ops, .slices = slices};
	for (int r = 0; r < n; r++) {
		unpreempted(s, pair_once, &j);
		a[r] = j.a;
		b[r] = j.b;
	}
}

bench_fig *bench_overhead(bench_session *s, const char *name, const char *name_a, bench_fn fa,
			  void *arg_a, const char *name_b, bench_fn fb, void *arg_b, uint64_t ops)
{
	/* The effect sought is ~1 %, far below the batch-to-batch noise of a
	 * shared host: interleave finely and take at least 9 paired runs. */
	int n = s->opts.runs < 9 ? 9 : s->opts.runs;
	double *a = bench_xmalloc(sizeof *a * (uint64_t)n * 3), *b = a + n, *pct = b + n;
	paired_runs(s, fa, arg_a, fb, arg_b, ops, 32, n, a, b);
	for (int r = 0; r < n; r++)
		pct[r] = (b[r] / a[r] - 1.0) * 100.0;
	bench_record(s, name_a, "ns/op", NULL, a, n);
	bench_record(s, name_b, "ns/op", NULL, b, n);
	bench_fig *f = bench_record(s, name, "%", NULL, pct, n);
	free(a);
	return f;
}

/* The host's slow phases last seconds and come and go within a run: two
 * peers measured one after the other could meet different phases, and
 * their ratio swung from 0.42 to 1.21 between runs of the same binary.
 * Interleaved in 8 slices per run (A,B,B,A,...), each run's two figures
 * are of the same moments; slices of ~100 queries keep the switches (each
 * side's data leaving the other's caches) rare. */
void bench_measure_pair(bench_session *s, const char *name_a, const char *peer_a, bench_fn fa,
			void *arg_a, const char *name_b, const char *peer_b, bench_fn fb,
			void *arg_b, uint64_t ops)
{
	int n = s->opts.runs;
	double *a = bench_xmalloc(sizeof *a * (uint64_t)n * 2), *b = a + n;
	paired_runs(s, fa, arg_a, fb, arg_b, ops, 8, n, a, b);
	bench_record(s, name_a, "ns/op", peer_a, a, n);
	bench_record(s, name_b, "ns/op", peer_b, b, n);
	free(a);
}

void bench_add_ratio(bench_session *s, const char *num, const char *den)
{
	if (s->nratios == BENCH_MAX_RATIOS)
		return;
	bench_ratio *r = &s->ratios[s->nratios++];
	snprintf(r->num, sizeof r->num, "%s", num);
	snprintf(r->den, sizeof r->den, "%s", den);
}

void bench_add_target(bench_session *s, const char *name, double max)
{
	if (s->ntargets == BENCH_MAX_TARGETS)
		return;
	bench_target *t = &s->targets[s->ntargets++];
	snprintf(t->name, sizeof t->name, "%s", name);
	t->max = max;
}

void bench_note(bench_session *s, const char *fmt, ...)
{
	if (s->nnotes == BENCH_MAX_NOTES || s->opts.list)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->notes[s->nnotes++], BENCH_NOTE_MAX, fmt, ap);
	va_end(ap);
}

const bench_fig *bench_find(const bench_session *s, const char *name)
{
	for (int i = 0; i < s->nfigs; i++)
		if (strcmp(s->figs[i].name, name) == 0)
			return &s->figs[i];
	return NULL;
}

/* ---- output ------------------------------------------------------------------ */
static void print_figures(const bench_session *s)
{
	printf("%-34s %-6s %10s %10s %10s %5s  %s\n", "figure", "unit", "median", "min", "max",
	       "runs", "peer");
	for (int i = 0; i < s->nfigs; i++) {
		const bench_fig *f = &s->figs[i];
		printf("%-34s %-6s %10.3f %10.3f %10.3f %5d  %s\n", f->name, f->unit, f->median,
		       f->min, f->max, f->runs, f->peer);
	}
}

static void print_ratios(const bench_session *s)
{
	bool header = false;
	for (int i = 0; i < s->nratios; i++) {
		const bench_fig *n = bench_find(s, s->ratios[i].num);
		const bench_fig *d = bench_find(s, s->ratios[i].den);
		if (!n || !d || d->median <= 0)
			continue;
		if (!header)
			printf("\nratios (median / median):\n");
		header = true;
		printf("  %s / %s = %.2f\n", n->name, d->name, n->median / d->median);
	}
}

static void print_targets(const bench_session *s)
{
	bool header = false;
	for (int i = 0; i < s->ntargets; i++) {
		const bench_fig *f = bench_find(s, s->targets[i].name);
		if (!f)
			continue;
		if (!header)
			printf("\ntargets (median <= target):\n");
		header = true;
		double max = s->targets[i].max;
		printf("  %-34s median %9.3f %-6s target <= %-6g %-6s (min %.3f: %s)\n", f->name,
		       f->median, f->unit, max, f->median <= max ? "MET" : "MISSED", f->min,
		       f->min <= max ? "met" : "missed");
	}
}

static void print_notes(const bench_session *s, FILE *out)
{
	if (s->nnotes)
		fprintf(out, "\nnotes:\n");
	for (int i = 0; i < s->nnotes; i++)
		fprintf(out, "  - %s\n", s->notes[i]);
}

void bench_report(const bench_session *s)
{
	if (s->opts.list)
		return;
	if (s->opts.json) {
		print_notes(s, stderr);
		return;
	}
	printf("strata-bench %s (runs=%d%s)\n\n", s->suite, s->opts.runs,
	       s->opts.quick ? ", quick" : "");
	print_figures(s);
	print_ratios(s);
	print_targets(s);
	print_notes(s, stdout);
	printf("\nbatches re-run because the thread was preempted (ran < %.0f %% of wall "
	       "time): %d\n\n", RAN_SHARE * 100, s->reruns);
	for (int i = 0; i < s->nfigs; i++)
		print_json(&s->figs[i]);
}
