/*
 * bench_fs.c — the files the suites measure stores in: a temporary
 * directory under $TMPDIR (default /tmp), joined paths, removal of a tree,
 * and dropping a directory's files from the page cache; and the forked
 * children the scale and durable suites measure in. Failures of the
 * harness itself (not of Strata) end the run: exit 1 with the errno text.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

void bench_sys_fail(const char *what)
{
	fprintf(stderr, "strata-bench: %s failed: %s\n", what, strerror(errno));
	exit(1);
}

void bench_path_join(char *out, size_t n, const char *dir, const char *name)
{
	if ((size_t)snprintf(out, n, "%s/%s", dir, name) >= n) {
		fprintf(stderr, "strata-bench: path too long: %s/%s\n", dir, name);
		exit(1);
	}
}

void bench_make_tmpdir(char *out, size_t n, const char *suite)
{
	const char *base = getenv("TMPDIR");
	char name[64];
	snprintf(name, sizeof name, "strata-bench-%s-XXXXXX", suite);
	bench_path_join(out, n, base && *base ? base : "/tmp", name);
	if (!mkdtemp(out))
		bench_sys_fail("mkdtemp");
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path))
		fprintf(stderr, "strata-bench: cannot remove %s: %s\n", path, strerror(errno));
	return 0;
}

void bench_remove_tree(const char *dir)
{
	nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Synced first: only clean pages can be dropped, and the next open should
 * read the device. */
void bench_evict_dir(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		bench_sys_fail("opendir");
	for (struct dirent *e; (e = readdir(d));) {
		int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_CLOEXEC);
		struct stat st;
		if (fd < 0)
			continue;
		if (!fstat(fd, &st) && S_ISREG(st.st_mode) && !fdatasync(fd))
			posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		close(fd);
	}
	closedir(d);
}

/* ---- child processes ----------------------------------------------------------- */
static void read_all(int fd, void *buf, size_t n)
{
	for (size_t got = 0; got < n;) {
		ssize_t k = read(fd, (char *)buf + got, n - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			fprintf(stderr, "strata-bench: a child process died (see above)\n");
			exit(1);
		}
		got += (size_t)k;
	}
}

static void write_all(int fd, const void *buf, size_t n)
{
	for (size_t put = 0; put < n;) {
		ssize_t k = write(fd, (const char *)buf + put, n - put);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			_exit(1);
		put += (size_t)k;
	}
}

void bench_in_child(bench_child_fn fn, const void *arg, void *out, size_t size)
{
	int pfd[2];
	if (pipe(pfd))
		bench_sys_fail("pipe");
	fflush(stdout); /* the child must not print the parent's buffers again */
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0)
		bench_sys_fail("fork");
	if (pid == 0) {
		close(pfd[0]);
		memset(out, 0, size);
		fn(arg, out);
		write_all(pfd[1], out, size);
		_exit(0);
	}
	close(pfd[1]);
	read_all(pfd[0], out, size);
	close(pfd[0]);
	int status;
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		bench_sys_fail("child process");
}
