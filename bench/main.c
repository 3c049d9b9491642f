/*
 * main.c — strata-bench's command line: parses options, dispatches to the
 * named suite, prints its report. Exit status: 0 done, 1 a suite failed,
 * 2 usage error (unknown suite, bad option, --only naming no figure).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "suites.h"

typedef struct suite {
	const char *name;
	int (*run)(bench_session *s);
	const char *about;
} suite;

static const suite suites[] = {
	{"substrate", bench_substrate, "resolve, alloc/free, commit, snapshots, sharding; LMDB peer"},
	{"durable", bench_durable, "SYNC/ASYNC/NONE commits, recovery, open; LMDB, SQLite peers"},
	{"bptree", bench_bptree, "B+tree load, get, scan, insert, mixed; LMDB peer"},
	{"xtree", bench_xtree, "X-tree builds, windows, kNN 2-32 D; Boost, libspatialindex, SQLite, scan"},
	{"scale", bench_scale, "open vs store size, data 10x the cache, churn space amp; LMDB peer"},
};
#define NSUITES (sizeof suites / sizeof *suites)

static void usage(FILE *out)
{
	fprintf(out,
		"usage: strata-bench SUITE [options]\n"
		"\n"
		"options:\n"
		"  --runs N     timed runs per figure (default 5); medians over them\n"
		"  --quick      smaller sizes (smoke test)\n"
		"  --json       print only JSON lines, one per figure\n"
		"  --only NAME  run just figure NAME (e.g. under valgrind --tool=callgrind)\n"
		"  --list       print the suite's figure names and exit\n"
		"  --no-rerun   time each batch once even if the thread was preempted\n"
		"               (use under valgrind, where every batch looks preempted)\n"
		"  -h, --help   this text\n"
		"\n"
		"suites:\n");
	for (size_t i = 0; i < NSUITES; i++)
		fprintf(out, "  %-10s %s\n", suites[i].name, suites[i].about);
}

/* Prints "strata-bench: msg" (with 'arg' when given) and the usage. */
static int bad_usage(const char *msg, const char *arg)
{
	if (arg)
		fprintf(stderr, "strata-bench: %s '%s'\n\n", msg, arg);
	else
		fprintf(stderr, "strata-bench: %s\n\n", msg);
	usage(stderr);
	return 2;
}

static bool parse_runs(const char *s, int *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > 1000)
		return false;
	*out = (int)v;
	return true;
}

static const suite *find_suite(const char *name)
{
	for (size_t i = 0; i < NSUITES; i++)
		if (strcmp(suites[i].name, name) == 0)
			return &suites[i];
	return NULL;
}

/* Returns 0 and fills *o / *which, or the exit status for a usage error. */
static int parse_args(int argc, char **argv, bench_opts *o, const suite **which)
{
	*o = (bench_opts){.runs = 5};
	*which = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			exit(0);
		} else if (!strcmp(a, "--quick")) {
			o->quick = true;
		} else if (!strcmp(a, "--json")) {
			o->json = true;
		} else if (!strcmp(a, "--list")) {
			o->list = true;
		} else if (!strcmp(a, "--no-rerun")) {
			o->no_rerun = true;
		} else if (!strcmp(a, "--runs")) {
			if (i + 1 == argc || !parse_runs(argv[++i], &o->runs))
				return bad_usage("--runs needs a number in 1..1000", NULL);
		} else if (!strcmp(a, "--only")) {
			if (i + 1 == argc)
				return bad_usage("--only needs a figure name", NULL);
			o->only = argv[++i];
		} else if (a[0] == '-') {
			return bad_usage("unknown option", a);
		} else if (*which) {
			return bad_usage("one suite at a time; extra argument", a);
		} else if (!(*which = find_suite(a))) {
			return bad_usage("unknown suite", a);
		}
	}
	if (!*which)
		return bad_usage("no suite given", NULL);
	return 0;
}

int main(int argc, char **argv)
{
	bench_opts o;
	const suite *which;
	int rc = parse_args(argc, argv, &o, &which);
	if (rc)
		return rc;
	/* The session holds every figure: too big for some thread stacks. */
	static bench_session session;
	bench_session_init(&session, &o, which->name);
	if (which->run(&session))
		return 1;
	if (o.only && !session.matched) {
		fprintf(stderr, "strata-bench: suite %s has no figure '%s' (see --list)\n",
			which->name, o.only);
		return 2;
	}
	bench_report(&session);
	return 0;
}
