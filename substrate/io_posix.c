/*
 * io_posix.c — the real io_env: each io_ops function is the matching POSIX
 * call, with the loops and error mapping io.h promises.
 *
 * Owns: the process-wide posix env singleton and posix_file handles (an fd).
 * Invariants: every error is returned as -errno (or STRATA_ETRUNCATED for a
 * read past end of file); reads and writes are retried until complete;
 * every fd is opened close-on-exec; nothing here keeps state between calls
 * beyond the fd, so the env is safe to use from any number of threads.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "io.h"

#define ZERO_CHUNK (1u << 20) /* io_allocate writes zeros this much at a time */

typedef struct posix_file {
	io_file base;
	int fd;
} posix_file;

static int fd_of(io_file *f)
{
	return ((posix_file *)f)->fd;
}

/* Offsets travel as off_t: refuse what does not fit rather than wrap. */
static bool range_ok(uint64_t off, uint64_t len)
{
	return off <= (uint64_t)INT64_MAX && len <= (uint64_t)INT64_MAX - off;
}

/* ---- files --------------------------------------------------------------- */

static const io_ops posix_ops;
static io_env posix_env = {&posix_ops};

static int px_open(io_env *env, const char *path, unsigned flags, io_file **out)
{
	*out = NULL;
	int oflags = O_CLOEXEC | ((flags & IO_RDONLY) ? O_RDONLY : O_RDWR);
	if (flags & IO_CREATE)
		oflags |= O_CREAT | ((flags & IO_EXCL) ? O_EXCL : 0);
	posix_file *pf = strata_mem_alloc(sizeof *pf);
	if (!pf)
		return -ENOMEM;
	int fd;
	do
		fd = open(path, oflags, 0644);
	while (fd < 0 && errno == EINTR);
	if (fd < 0) {
		int err = -errno;
		strata_mem_free(pf, sizeof *pf);
		return err;
	}
	pf->base.env = env;
	pf->fd = fd;
	*out = &pf->base;
	return 0;
}

/* close() is not retried on EINTR: on Linux the fd is gone either way.
 * Closing the fd also drops the open file description's lock. */
static int px_close(io_file *f)
{
	int rc = close(fd_of(f)) ? -errno : 0;
	strata_mem_free(f, sizeof(posix_file));
	return rc == -EINTR ? 0 : rc;
}

static int px_pread(io_file *f, void *buf, size_t len, uint64_t off)
{
	if (!range_ok(off, len))
		return -EINVAL;
	unsigned char *p = buf;
	while (len) {
		ssize_t n = pread(fd_of(f), p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return STRATA_ETRUNCATED;
		p += n, len -= (size_t)n, off += (uint64_t)n;
	}
	return 0;
}

static int write_all(int fd, const void *buf, size_t len, uint64_t off)
{
	if (!range_ok(off, len))
		return -EFBIG;
	const unsigned char *p = buf;
	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0) /* no progress and no error: do not spin */
			return -EIO;
		p += n, len -= (size_t)n, off += (uint64_t)n;
	}
	return 0;
}

static int px_pwrite(io_file *f, const void *buf, size_t len, uint64_t off)
{
	return write_all(fd_of(f), buf, len, off);
}

/* fdatasync: the data and the metadata needed to read it back (the size);
 * not the timestamps. A failed sync must not be retried and believed: the
 * kernel may have dropped the dirty pages, so the caller treats it as fatal. */
static int px_sync(io_file *f)
{
	int rc;
	do
		rc = fdatasync(fd_of(f));
	while (rc && errno == EINTR);
	return rc ? -errno : 0;
}

static int px_size(io_file *f, uint64_t *size)
{
	struct stat st;
	if (fstat(fd_of(f), &st))
		return -errno;
	*size = (uint64_t)st.st_size;
	return 0;
}

static int px_truncate(io_file *f, uint64_t size)
{
	if (size > (uint64_t)INT64_MAX)
		return -EFBIG;
	int rc;
	do
		rc = ftruncate(fd_of(f), (off_t)size);
	while (rc && errno == EINTR);
	return rc ? -errno : 0;
}

/* ---- allocate: real zeros, never unwritten extents ----------------------- */

static int write_zeros(int fd, uint64_t from, uint64_t to)
{
	if (from >= to)
		return 0;
	size_t chunk = to - from < ZERO_CHUNK ? (size_t)(to - from) : ZERO_CHUNK;
	void *z = strata_mem_calloc(1, chunk);
	if (!z)
		return -ENOMEM;
	int rc = 0;
	for (uint64_t off = from; off < to && !rc; off += chunk) {
		size_t n = to - off < chunk ? (size_t)(to - off) : chunk;
		rc = write_all(fd, z, n, off);
	}
	strata_mem_free(z, chunk);
	return rc;
}

/* Writes zeros into the holes of [from, to), which lies inside the file: a
 * hole reads as zeros, so filling it changes no byte but gives it blocks.
 * Data regions are left alone. Without SEEK_HOLE support (EINVAL) the whole
 * file counts as data, which is what such a file system reports anyway. */
static int fill_holes(int fd, uint64_t from, uint64_t to)
{
	uint64_t pos = from;
	while (pos < to) {
		off_t h = lseek(fd, (off_t)pos, SEEK_HOLE);
		if (h < 0)
			return errno == EINVAL || errno == ENXIO ? 0 : -errno;
		if ((uint64_t)h >= to)
			return 0;
		off_t d = lseek(fd, h, SEEK_DATA);
		if (d < 0 && errno != ENXIO) /* ENXIO: no data after h */
			return -errno;
		uint64_t end = (d < 0 || (uint64_t)d > to) ? to : (uint64_t)d;
		int rc = write_zeros(fd, (uint64_t)h, end);
		if (rc)
			return rc;
		pos = end;
	}
	return 0;
}

/* posix_fallocate/fallocate would leave unwritten extents, and the first
 * write into one makes the next fdatasync journal the extent conversion:
 * exactly the metadata write preallocation is meant to avoid. So zeros are
 * written for real: into holes below the current size, and from there to
 * off+len. Existing data is never touched. */
static int px_allocate(io_file *f, uint64_t off, uint64_t len)
{
	if (!range_ok(off, len))
		return -EFBIG;
	if (!len)
		return 0;
	uint64_t size, end = off + len;
	int rc = px_size(f, &size);
	if (!rc && off < size)
		rc = fill_holes(fd_of(f), off, end < size ? end : size);
	if (!rc && end > size)
		rc = write_zeros(fd_of(f), off > size ? off : size, end);
	return rc;
}

/* ---- lock and map -------------------------------------------------------- */

/* An open-file-description lock where the kernel has them: owned by this
 * open, so a second open in the same process conflicts (classic POSIX
 * record locks are per process and would not), and closing some other fd
 * of the same file does not silently drop it. */
static int set_lock(int fd, struct flock *fl)
{
#ifdef F_OFD_SETLK
	if (!fcntl(fd, F_OFD_SETLK, fl))
		return 0;
	if (errno != EINVAL) /* EINVAL: a kernel before 3.15, fall back */
		return -errno;
#endif
	return fcntl(fd, F_SETLK, fl) ? -errno : 0;
}

static int px_lock(io_file *f)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
	int rc = set_lock(fd_of(f), &fl);
	return rc == -EAGAIN || rc == -EACCES ? STRATA_EBUSY : rc;
}

static size_t page_size(void)
{
	static _Atomic size_t pg;
	size_t p = atomic_load_explicit(&pg, memory_order_relaxed);
	if (!p) {
		long v = sysconf(_SC_PAGESIZE);
		p = v > 0 ? (size_t)v : 4096;
		atomic_store_explicit(&pg, p, memory_order_relaxed);
	}
	return p;
}

/* mmap needs a page-aligned file offset: map from the page boundary below
 * off and hand out the inner pointer. unmap recovers the boundary from the
 * pointer (the mapping starts page-aligned, so ptr's offset within its page
 * equals off's). The range must lie inside the file: touching a mapped page
 * past end of file raises SIGBUS, which no caller can handle. */
static int px_map(io_file *f, uint64_t off, size_t len, const void **ptr)
{
	*ptr = NULL;
	uint64_t size;
	if (!len || !range_ok(off, len))
		return -EINVAL;
	int rc = px_size(f, &size);
	if (rc)
		return rc;
	if (off + len > size)
		return STRATA_ETRUNCATED;
	size_t delta = (size_t)(off % page_size());
	void *p = mmap(NULL, len + delta, PROT_READ, MAP_SHARED, fd_of(f), (off_t)(off - delta));
	if (p == MAP_FAILED)
		return -errno;
	*ptr = (const unsigned char *)p + delta;
	return 0;
}

static int px_unmap(io_file *f, const void *ptr, size_t len)
{
	(void)f;
	size_t delta = (uintptr_t)ptr % page_size();
	return munmap((void *)((uintptr_t)ptr - delta), len + delta) ? -errno : 0;
}

/* ---- names --------------------------------------------------------------- */

static int px_unlink(io_env *env, const char *path)
{
	(void)env;
	return unlink(path) ? -errno : 0;
}

static int px_rename(io_env *env, const char *from, const char *to)
{
	(void)env;
	return rename(from, to) ? -errno : 0;
}

static int px_mkdir(io_env *env, const char *path)
{
	(void)env;
	return mkdir(path, 0755) ? -errno : 0;
}

/* Makes the directory's entries (creations, renames, unlinks) durable. */
static int px_sync_dir(io_env *env, const char *dir)
{
	(void)env;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = fsync(fd) ? -errno : 0;
	close(fd);
	return rc;
}

static int px_exists(io_env *env, const char *path)
{
	(void)env;
	struct stat st;
	if (!stat(path, &st))
		return 1;
	return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
}

static int px_list(io_env *env, const char *dir, int (*fn)(void *ctx, const char *name), void *ctx)
{
	(void)env;
	DIR *d = opendir(dir); /* glibc opens it O_CLOEXEC */
	if (!d)
		return -errno;
	int rc = 0;
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (!de) {
			rc = errno ? -errno : 0;
			break;
		}
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if ((rc = fn(ctx, de->d_name)) != 0)
			break;
	}
	closedir(d);
	return rc;
}

static const io_ops posix_ops = {
	.open = px_open,
	.close = px_close,
	.pread = px_pread,
	.pwrite = px_pwrite,
	.sync = px_sync,
	.size = px_size,
	.truncate = px_truncate,
	.allocate = px_allocate,
	.lock = px_lock,
	.map = px_map,
	.unmap = px_unmap,
	.unlink = px_unlink,
	.rename = px_rename,
	.mkdir = px_mkdir,
	.sync_dir = px_sync_dir,
	.exists = px_exists,
	.list = px_list,
};

io_env *io_env_posix(void)
{
	return &posix_env;
}
