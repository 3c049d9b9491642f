/*
 * crash_main.c — strata-crash, the parent of the crash campaign (crash.h).
 *
 *   strata-crash [--cycles N] [--seed S] [--dir D] [--threads T]
 *                [--max-ms M] [--report N] [--inject lost-sync|bad-sum]
 *
 * Each cycle: fork the workload child, sleep a random 0..M ms (sometimes
 * exactly 0: a kill during open and recovery), SIGKILL it, fork a verifier
 * on the same store and read its verdict. The parent itself never opens
 * the store: it stays single-threaded, so every fork is clean, and a crash
 * in recovery is reported instead of ending the campaign. About one cycle
 * in 50 starts from a deleted store; a third of the verifiers exit
 * without closing, so the next child recovers the same files again.
 *
 * Prints a progress line every N cycles and a summary; exits 1 on the
 * first violation (cycle, seeds, what was wrong; the store is kept).
 * --inject plants a fault in the harness (crash.h) that must be reported.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "crash.h"

typedef struct campaign {
	uint64_t cycles, seed, report;
	uint32_t threads, max_ms;
	int inject;
	char dir[PATH_MAX - 16], store[PATH_MAX];
	bool made_dir;
	crash_shared *sh;
	/* the state the last verification recovered */
	uint64_t prev_epoch;
	root_val prev[CRASH_MAX_ROOTS];
	/* counters */
	uint64_t kills, early_kills, recoveries, sync_checked, acked, lost, pending, pending_in;
	uint64_t fresh, unclean, checkpoints;
	double t0;
} campaign;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: strata-crash [--cycles N] [--seed S] [--dir D] [--threads T(1-%d)] "
		   "[--max-ms M] [--report N]\n"
		   "       [--inject lost-sync|bad-sum]  (a harness fault the checks must catch)\n",
		CRASH_MAX_THREADS);
}

/* ---- options ----------------------------------------------------------- */
static bool num_arg(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

/* One "--name value" pair; false if the name is unknown or the value bad. */
static bool set_option(campaign *c, const char *a, const char *val)
{
	uint64_t v;
	if (!strcmp(a, "--dir") && strlen(val) < sizeof c->dir)
		return snprintf(c->dir, sizeof c->dir, "%s", val) > 0;
	if (!strcmp(a, "--inject") && (!strcmp(val, "lost-sync") || !strcmp(val, "bad-sum"))) {
		c->inject = !strcmp(val, "lost-sync") ? CRASH_INJECT_LOST_SYNC : CRASH_INJECT_BAD_SUM;
		return true;
	}
	if (!strcmp(a, "--cycles") && num_arg(val, 1, UINT64_MAX / 2, &v))
		c->cycles = v;
	else if (!strcmp(a, "--seed") && num_arg(val, 0, UINT64_MAX, &v))
		c->seed = v;
	else if (!strcmp(a, "--threads") && num_arg(val, 1, CRASH_MAX_THREADS, &v))
		c->threads = (uint32_t)v;
	else if (!strcmp(a, "--max-ms") && num_arg(val, 0, 60000, &v))
		c->max_ms = (uint32_t)v;
	else if (!strcmp(a, "--report") && num_arg(val, 1, UINT64_MAX, &v))
		c->report = v;
	else
		return false;
	return true;
}

static int parse_args(campaign *c, int argc, char **argv)
{
	c->cycles = 200;
	c->threads = 4;
	c->max_ms = 50;
	c->seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	for (int i = 1; i < argc; i += 2) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			exit(0);
		}
		if (i + 1 == argc || !set_option(c, argv[i], argv[i + 1])) {
			fprintf(stderr, "strata-crash: bad option or value: %s%s%s\n", argv[i],
				i + 1 < argc ? " " : "", i + 1 < argc ? argv[i + 1] : "");
			usage(stderr);
			return 2;
		}
	}
	if (!c->report)
		c->report = c->cycles / 10 ? (c->cycles / 10 < 1000 ? c->cycles / 10 : 1000) : 1;
	return 0;
}

/* ---- the store directory ----------------------------------------------- */
static int setup_dir(campaign *c)
{
	if (!c->dir[0]) {
		const char *tmp = getenv("TMPDIR");
		snprintf(c->dir, sizeof c->dir, "%s/strata-crash.XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(c->dir)) {
			fprintf(stderr, "strata-crash: mkdtemp %s: %s\n", c->dir, strerror(errno));
			return -1;
		}
		c->made_dir = true;
	} else if (mkdir(c->dir, 0755) && errno != EEXIST) {
		fprintf(stderr, "strata-crash: mkdir %s: %s\n", c->dir, strerror(errno));
		return -1;
	}
	snprintf(c->store, sizeof c->store, "%s/store", c->dir);
	return 0;
}

/* A store directory holds plain files only. */
static int remove_store(const char *path)
{
	DIR *d = opendir(path);
	if (!d)
		return errno == ENOENT ? 0 : -1;
	struct dirent *e;
	char p[PATH_MAX + 256];
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			snprintf(p, sizeof p, "%s/%s", path, e->d_name);
			unlink(p);
		}
	}
	closedir(d);
	return rmdir(path);
}

/* ---- processes --------------------------------------------------------- */
static void sleep_us(uint64_t us)
{
	struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* Reaps pid, killing it after limit_s seconds; -1 if it had to be killed. */
static int wait_child(pid_t pid, double limit_s)
{
	int st = 0;
	double end = now_s() + limit_s;
	for (uint64_t step = 20;; step = step < 2000 ? step * 2 : step) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid || (r < 0 && errno != EINTR))
			return st;
		if (now_s() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return -1;
		}
		sleep_us(step);
	}
}

static void reset_shared(crash_shared *sh)
{
	atomic_store(&sh->reserved, 0);
	atomic_store(&sh->started, 0);
	atomic_store(&sh->failed, 0);
	for (uint32_t r = 0; r < CRASH_MAX_ROOTS; r++)
		atomic_store(&sh->seen_sync[r], 0);
	sh->child_msg[0] = 0;
	memset(&sh->verdict, 0, sizeof sh->verdict);
}

static void status_text(int st, char *out, size_t len)
{
	if (st == -1)
		snprintf(out, len, "hung (killed after the time limit)");
	else if (WIFSIGNALED(st))
		snprintf(out, len, "died of signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
	else
		snprintf(out, len, "exited with status %d", WEXITSTATUS(st));
}

/* ---- output ------------------------------------------------------------ */
static void summary(const campaign *c, uint64_t cycles, int mismatches)
{
	printf("crash cycles: %" PRIu64 ", kills: %" PRIu64 ", recoveries verified: %" PRIu64
	       ", acknowledged SYNC commits checked: %" PRIu64 ", mismatches: %d\n",
	       cycles, c->kills, c->recoveries, c->sync_checked, mismatches);
	printf("  acknowledged commits %" PRIu64 " (ASYNC/NONE lost as a suffix: %" PRIu64
	       "), in flight at the kill %" PRIu64 " (recovered: %" PRIu64 "), kills before the "
	       "workload began %" PRIu64 ", fresh stores %" PRIu64 ", reopens without close %" PRIu64
	       ", checkpoints %" PRIu64 ", compactions %" PRIu64 " (%" PRIu64 " B moved), %.1f s\n",
	       c->acked, c->lost, c->pending, c->pending_in, c->early_kills, c->fresh, c->unclean,
	       (uint64_t)atomic_load(&c->sh->checkpoints), (uint64_t)atomic_load(&c->sh->compactions),
	       (uint64_t)atomic_load(&c->sh->compact_moved), now_s() - c->t0);
}

static int violation(campaign *c, const crash_cycle *cy, const char *who, const char *msg)
{
	fprintf(stderr, "strata-crash: VIOLATION in cycle %" PRIu64 " (seed %" PRIu64 ", cycle seed %#"
		PRIx64 ", %u threads, base epoch %" PRIu64 "%s)\n  %s: %s\n", cy->cycle, c->seed,
		cy->cycle_seed, c->threads, cy->prev_epoch, cy->fresh ? ", fresh store" : "", who, msg);
	fprintf(stderr, "strata-crash: store kept in %s; same random choices: strata-crash --seed %"
		PRIu64 " --cycles %" PRIu64 " --threads %u --max-ms %u\n", c->store, c->seed,
		cy->cycle + 1, c->threads, c->max_ms);
	summary(c, cy->cycle + 1, 1);
	return 1;
}

/* ---- a cycle ----------------------------------------------------------- */
static void start_cycle(campaign *c, uint64_t n, crash_cycle *cy, uint64_t *delay_us)
{
	*cy = (crash_cycle){.cycle = n, .seed = c->seed, .cycle_seed = crash_mix(c->seed, n),
			    .store = c->store, .threads = c->threads,
			    .nroots = c->threads * CRASH_ROOTS_PER_THREAD, .inject = c->inject,
			    .sh = c->sh};
	crash_rng r = {cy->cycle_seed};
	cy->fresh = n == 0 || crash_below(&r, 50) == 0;
	cy->close_clean = crash_below(&r, 3) != 0;
	*delay_us = crash_below(&r, 100) < 15 ? 0 : crash_below(&r, c->max_ms * 1000ull + 1);
	if (cy->fresh) {
		c->prev_epoch = 1; /* a new store is at epoch 1, its roots unnamed */
		memset(c->prev, 0, sizeof c->prev);
		c->fresh++;
	}
	cy->prev_epoch = c->prev_epoch;
	memcpy(cy->prev, c->prev, sizeof cy->prev);
	reset_shared(c->sh);
	fflush(NULL); /* nothing buffered is inherited twice */
}

/* The workload: forked, killed after the delay, reaped. */
static int run_child(campaign *c, const crash_cycle *cy, uint64_t delay_us)
{
	char st_text[128], msg[CRASH_MSG + 256];
	pid_t pid = fork();
	if (pid < 0)
		return violation(c, cy, "harness", "fork failed");
	if (pid == 0)
		crash_child_main(cy);
	sleep_us(delay_us);
	kill(pid, SIGKILL);
	int st = wait_child(pid, 60);
	if (st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) {
		c->kills++;
		c->early_kills += atomic_load(&c->sh->started) != (uint32_t)cy->cycle + 1;
		return 0;
	}
	status_text(st, st_text, sizeof st_text);
	snprintf(msg, sizeof msg, "%s before the kill: %s", st_text,
		 atomic_load(&c->sh->failed) ? c->sh->child_msg : "(no message)");
	return violation(c, cy, "workload child", msg);
}

static int run_verifier(campaign *c, const crash_cycle *cy)
{
	char st_text[128];
	const crash_verdict *v = &c->sh->verdict;
	pid_t pid = fork();
	if (pid < 0)
		return violation(c, cy, "harness", "fork failed");
	if (pid == 0)
		crash_verify_main(cy);
	int st = wait_child(pid, 300);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) || !v->ok) {
		status_text(st, st_text, sizeof st_text);
		return violation(c, cy, v->msg[0] ? "recovery" : st_text, v->msg[0] ? v->msg : "no verdict");
	}
	c->recoveries++;
	c->sync_checked += v->acked_sync;
	c->acked += v->acked;
	c->lost += v->lost;
	c->pending += v->pending;
	c->pending_in += v->pending_in;
	c->unclean += !cy->close_clean;
	c->prev_epoch = v->epoch;
	memcpy(c->prev, v->found, sizeof c->prev);
	return 0;
}

static int run_cycle(campaign *c, uint64_t n)
{
	crash_cycle cy;
	uint64_t delay_us;
	start_cycle(c, n, &cy, &delay_us);
	if (cy.fresh && remove_store(c->store))
		return violation(c, &cy, "harness", "cannot remove the old store");
	if (run_child(c, &cy, delay_us) || run_verifier(c, &cy))
		return 1;
	if ((n + 1) % c->report == 0 || n + 1 == c->cycles)
		printf("cycle %" PRIu64 "/%" PRIu64 ": kills %" PRIu64 ", recoveries %" PRIu64
		       ", SYNC commits checked %" PRIu64 ", acknowledged %" PRIu64 " (%" PRIu64
		       " lost as a suffix), epoch %" PRIu64 ", %.1f s\n", n + 1, c->cycles, c->kills,
		       c->recoveries, c->sync_checked, c->acked, c->lost, c->prev_epoch, now_s() - c->t0);
	return 0;
}

int main(int argc, char **argv)
{
	static campaign c;
	int rc = parse_args(&c, argc, argv);
	if (rc || setup_dir(&c))
		return rc ? rc : 2;
	c.sh = mmap(NULL, sizeof *c.sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (c.sh == MAP_FAILED) {
		fprintf(stderr, "strata-crash: mmap: %s\n", strerror(errno));
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("strata-crash: %" PRIu64 " cycles, seed %" PRIu64 ", %u threads, kill after 0..%u ms, "
	       "store %s\n", c.cycles, c.seed, c.threads, c.max_ms, c.store);
	c.t0 = now_s();
	for (uint64_t n = 0; n < c.cycles; n++)
		if (run_cycle(&c, n))
			return 1;
	summary(&c, c.cycles, 0);
	remove_store(c.store);
	if (c.made_dir)
		rmdir(c.dir);
	return 0;
}
