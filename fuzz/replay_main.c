/*
 * replay_main.c — a main() for a fuzz target without libFuzzer, so the
 * default build (gcc, no clang) runs the harness code too:
 *
 *   fuzz_replay_<target> [-n MUTATIONS] [-t SECONDS] [-m MAX_LEN] [-s SEED]
 *                        PATH...
 *
 * Runs every seed file (PATH: files, or directories of them), then
 * MUTATIONS deterministic mutants of them (bit flips, interesting values,
 * truncations, insertions, deletions, copies; fixed PRNG seed, another
 * SEED gives other mutants), stopping early after SECONDS. Each input is
 * copied into a buffer of exactly its size, so an ASan build catches reads
 * past it. A failed invariant aborts (the harness's FZ_CHECK), which fails
 * the ctest; the input that did it is first written to ./fuzz-replay-crash
 * (the test's working directory), to reproduce with
 * `fuzz_replay_<target> -n 0 fuzz-replay-crash` or with the libFuzzer
 * binary on the same file.
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fuzz_common.h"

typedef struct seed {
	uint8_t *p;
	size_t n;
} seed;

typedef struct seeds {
	seed *v;
	size_t n, cap;
} seeds;

static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static size_t below(uint64_t *s, size_t n)
{
	return n ? (size_t)(rng_next(s) % n) : 0;
}

/* ---- keeping the failing input ------------------------------------------------ */
#define CRASH_FILE "fuzz-replay-crash"

static const uint8_t *volatile cur_p;
static volatile size_t cur_n;

/* Async-signal-safe: open/write/close only. */
static void save_input(void)
{
	int fd = open(CRASH_FILE, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return;
	for (size_t done = 0; done < cur_n;) {
		ssize_t w = write(fd, cur_p + done, cur_n - done);
		if (w <= 0)
			break;
		done += (size_t)w;
	}
	close(fd);
	static const char msg[] = "replay: failing input written to ./" CRASH_FILE "\n";
	if (write(2, msg, sizeof msg - 1) < 0)
		return;
}

static void on_signal(int sig)
{
	save_input();
	raise(sig); /* SA_RESETHAND: now the default action */
}

/* ASan and UBSan end the process without a signal; they call this first. */
void __sanitizer_set_death_callback(void (*cb)(void)) __attribute__((weak));

static void keep_failing_input(void)
{
	struct sigaction sa = {.sa_handler = on_signal, .sa_flags = (int)SA_RESETHAND};
	const int sigs[] = {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL};
	for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
		sigaction(sigs[i], &sa, NULL);
	if (__sanitizer_set_death_callback)
		__sanitizer_set_death_callback(save_input);
}

/* ---- loading seeds ----------------------------------------------------------- */
static void add_file(seeds *s, const char *path, size_t max_len)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "replay: cannot read %s\n", path);
		exit(2);
	}
	uint8_t *buf = malloc(max_len ? max_len : 1);
	size_t n = fread(buf, 1, max_len, f);
	fclose(f);
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 16;
		s->v = realloc(s->v, s->cap * sizeof *s->v);
		if (!s->v)
			exit(2);
	}
	s->v[s->n++] = (seed){buf, n};
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* Directory entries in name order, so the mutants are the same each run. */
static void add_path(seeds *s, const char *path, size_t max_len)
{
	struct stat st;
	if (stat(path, &st) || !S_ISDIR(st.st_mode)) {
		add_file(s, path, max_len);
		return;
	}
	struct dirent **ents;
	int n = scandir(path, &ents, NULL, by_name);
	if (n < 0)
		return;
	for (int i = 0; i < n; i++) {
		char sub[4096];
		snprintf(sub, sizeof sub, "%s/%s", path, ents[i]->d_name);
		if (ents[i]->d_name[0] != '.' && !stat(sub, &st) && S_ISREG(st.st_mode))
			add_file(s, sub, max_len);
		free(ents[i]);
	}
	free(ents);
}

/* ---- mutations ----------------------------------------------------------------- */
static const uint64_t interesting[] = {0, 1, 7, 8, 24, 64, 0x7f, 0x80, 0xff, 0x100, 0xffff,
				       0x10000, 0x7fffffff, 0x80000000ull, 0xffffffffull,
				       1ull << 20, 1ull << 63, UINT64_MAX};

/* One mutation of buf[0, *n) in place; buf has room for max bytes. */
static void mutate_once(uint8_t *buf, size_t *n, size_t max, uint64_t *r)
{
	size_t at = below(r, *n), len = 1 + below(r, 16);
	switch (below(r, 7)) {
	case 0: /* flip a bit */
		if (*n)
			buf[at] ^= (uint8_t)(1u << below(r, 8));
		break;
	case 1: /* an interesting value, 1, 2, 4 or 8 bytes wide */
		len = (size_t)1 << below(r, 4);
		if (*n >= len) {
			size_t k = below(r, sizeof interesting / sizeof *interesting);
			uint64_t v = interesting[k];
			memcpy(buf + below(r, *n - len + 1), &v, len);
		}
		break;
	case 2: /* truncate */
		*n = below(r, *n + 1);
		break;
	case 3: /* insert random bytes */
		len = len < max - *n ? len : max - *n;
		memmove(buf + at + len, buf + at, *n - at);
		for (size_t i = 0; i < len; i++)
			buf[at + i] = (uint8_t)rng_next(r);
		*n += len;
		break;
	case 4: /* delete a range */
		len = len < *n - at ? len : *n - at;
		memmove(buf + at, buf + at + len, *n - at - len);
		*n -= len;
		break;
	case 5: /* copy a range over another */
		len = len < *n - at ? len : *n - at;
		memmove(buf + below(r, *n - len + 1), buf + at, len);
		break;
	default: /* a random byte */
		if (*n)
			buf[at] = (uint8_t)rng_next(r);
		break;
	}
}

/* Runs one input from a buffer of exactly its size. */
static void run(const uint8_t *p, size_t n)
{
	uint8_t *copy = malloc(n ? n : 1);
	memcpy(copy, p, n);
	cur_p = copy, cur_n = n;
	LLVMFuzzerTestOneInput(copy, n);
	cur_n = 0;
	free(copy);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	long mutations = 2000;
	double seconds = 30;
	size_t max_len = 1 << 16;
	uint64_t r = 0x5eed5eedull;
	int i = 1;
	for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
		if (!strcmp(argv[i], "-n"))
			mutations = atol(argv[i + 1]);
		else if (!strcmp(argv[i], "-t"))
			seconds = atof(argv[i + 1]);
		else if (!strcmp(argv[i], "-m"))
			max_len = (size_t)atol(argv[i + 1]);
		else if (!strcmp(argv[i], "-s"))
			r = strtoull(argv[i + 1], NULL, 0);
		else
			break;
	}
	seeds s = {0};
	for (; i < argc; i++)
		add_path(&s, argv[i], max_len);
	if (!s.n) {
		fprintf(stderr, "usage: %s [-n MUTATIONS] [-t SECONDS] [-m MAX_LEN] [-s SEED] "
				"SEED_FILE_OR_DIR...\n",
			argv[0]);
		return 2;
	}
	keep_failing_input();
	double t0 = now();
	for (size_t k = 0; k < s.n; k++)
		run(s.v[k].p, s.v[k].n);
	uint8_t *buf = malloc(max_len);
	long done = 0;
	for (; done < mutations && (done % 64 || now() - t0 < seconds); done++) {
		const seed *from = &s.v[(size_t)done % s.n];
		size_t n = from->n;
		memcpy(buf, from->p, n);
		for (size_t m = 1 + below(&r, 4); m; m--)
			mutate_once(buf, &n, max_len, &r);
		run(buf, n);
	}
	printf("%s: %zu seeds and %ld mutants passed in %.1f s\n", argv[0], s.n, done, now() - t0);
	for (size_t k = 0; k < s.n; k++)
		free(s.v[k].p);
	free(s.v);
	free(buf);
	return 0;
}
