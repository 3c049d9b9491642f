/*
 * io.h — the one I/O layer every durable file access goes through.
 *
 * An io_env is a file system: io_env_posix() is the real one; the simulated
 * one (io_sim.h) keeps files in memory, tracks what was synced, and can
 * crash (dropping, keeping a random subset of, or tearing unsynced writes),
 * fail a chosen operation with EIO or ENOSPC, and flip bits — so crash and
 * corruption tests exercise the real code paths.
 *
 * Every call returns 0 or a negative status: -errno from the system (or the
 * simulator), STRATA_ETRUNCATED for a read past end of file. Reads and
 * writes are whole: a short transfer is retried until done or an error.
 * Paths are absolute or relative to the process's working directory.
 *
 * Durability model (what the simulator enforces, and what POSIX promises):
 *   - data written to a file is durable after io_sync(file);
 *   - a file's creation, rename or unlink is durable after
 *     io_sync_dir() of its directory;
 *   - io_truncate / io_allocate change the size; durable after io_sync.
 */
#ifndef STRATA_IO_H
#define STRATA_IO_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct io_env io_env;
typedef struct io_file io_file;

enum io_open_flags {
	IO_RDONLY = 1u << 0, /* read only (default: read-write) */
	IO_CREATE = 1u << 1, /* create if missing */
	IO_EXCL = 1u << 2    /* with IO_CREATE: fail with -EEXIST if it exists */
};

typedef struct io_ops {
	int (*open)(io_env *env, const char *path, unsigned flags, io_file **out);
	int (*close)(io_file *f);
	int (*pread)(io_file *f, void *buf, size_t len, uint64_t off);
	int (*pwrite)(io_file *f, const void *buf, size_t len, uint64_t off);
	int (*sync)(io_file *f);
	int (*size)(io_file *f, uint64_t *size);
	int (*truncate)(io_file *f, uint64_t size);
	/* Makes [off, off+len) allocated on the medium with real zeros (not a
	 * sparse hole or unwritten extent), so later overwrites plus io_sync
	 * need not journal metadata. Bytes already in the file keep their
	 * content (holes among them are filled); the size becomes at least
	 * off+len. len 0 does nothing. */
	int (*allocate)(io_file *f, uint64_t off, uint64_t len);
	/* Exclusive advisory lock held until close; -EBUSY-like failure is
	 * reported as STRATA_EBUSY. Owned by this io_file (an open file
	 * description lock), so a second open of the same file conflicts even
	 * in the same process. Needs a writable file (-EBADF otherwise). */
	int (*lock)(io_file *f);
	/* Read-only view of [off, off+len); valid until io_unmap or close.
	 * Later writes to the range through this env are visible in it. The
	 * range must lie inside the file (STRATA_ETRUNCATED otherwise: a page
	 * past end of file would fault); len 0 is -EINVAL. off need not be
	 * page-aligned. io_unmap takes the same ptr and len. */
	int (*map)(io_file *f, uint64_t off, size_t len, const void **ptr);
	int (*unmap)(io_file *f, const void *ptr, size_t len);
	int (*unlink)(io_env *env, const char *path);
	int (*rename)(io_env *env, const char *from, const char *to);
	int (*mkdir)(io_env *env, const char *path);
	int (*sync_dir)(io_env *env, const char *dir);
	/* 1 if path exists, 0 if not, or a negative status. */
	int (*exists)(io_env *env, const char *path);
	/* Calls fn(ctx, name) for each entry of dir except "." and "..";
	 * stops early if fn returns non-zero (and returns that value). */
	int (*list)(io_env *env, const char *dir, int (*fn)(void *ctx, const char *name), void *ctx);
} io_ops;

struct io_env {
	const io_ops *ops;
};

/* Every io_file starts with this, so the wrappers reach the env's ops. */
struct io_file {
	io_env *env;
};

/* The real file system (POSIX calls). A process-wide singleton. */
io_env *io_env_posix(void);

/* Thin wrappers, so callers read io_pwrite(f, ...). */
static inline int io_open(io_env *e, const char *p, unsigned fl, io_file **out) { return e->ops->open(e, p, fl, out); }
static inline int io_close(io_file *f) { return f ? f->env->ops->close(f) : 0; }
static inline int io_pread(io_file *f, void *b, size_t n, uint64_t o) { return f->env->ops->pread(f, b, n, o); }
static inline int io_pwrite(io_file *f, const void *b, size_t n, uint64_t o) { return f->env->ops->pwrite(f, b, n, o); }
static inline int io_sync(io_file *f) { return f->env->ops->sync(f); }
static inline int io_size(io_file *f, uint64_t *s) { return f->env->ops->size(f, s); }
static inline int io_truncate(io_file *f, uint64_t s) { return f->env->ops->truncate(f, s); }
static inline int io_allocate(io_file *f, uint64_t o, uint64_t n) { return f->env->ops->allocate(f, o, n); }
static inline int io_lock(io_file *f) { return f->env->ops->lock(f); }
static inline int io_map(io_file *f, uint64_t o, size_t n, const void **p) { return f->env->ops->map(f, o, n, p); }
static inline int io_unmap(io_file *f, const void *p, size_t n) { return f->env->ops->unmap(f, p, n); }
static inline int io_unlink(io_env *e, const char *p) { return e->ops->unlink(e, p); }
static inline int io_rename(io_env *e, const char *a, const char *b) { return e->ops->rename(e, a, b); }
static inline int io_mkdir(io_env *e, const char *p) { return e->ops->mkdir(e, p); }
static inline int io_sync_dir(io_env *e, const char *d) { return e->ops->sync_dir(e, d); }
static inline int io_exists(io_env *e, const char *p) { return e->ops->exists(e, p); }
static inline int io_list(io_env *e, const char *d, int (*fn)(void *, const char *), void *c) { return e->ops->list(e, d, fn, c); }
#endif
