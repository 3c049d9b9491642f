/*
 * io_sim.h — the simulated file system for crash and fault tests.
 *
 * Files live in memory. For each file the simulator keeps the durable image
 * (what survives a power loss) and the current image (what reads see), and
 * the list of writes (and truncates, allocates) since the last io_sync of
 * that file. Directory entries
 * (create, rename, unlink) are likewise pending until io_sync_dir.
 *
 * Operations are counted: every pwrite, sync, truncate, allocate, rename,
 * unlink, mkdir and sync_dir is one "step", and so is an open that creates
 * the file; a call counts whatever its outcome (an injected failure too).
 * Reads, size, map, lock, exists, list and plain opens are not steps and
 * keep working after a crash. A test can
 *   - arm a crash after step N: step N+1 and everything after it fail with
 *     -EIO and change nothing (the process "died" there; the counter stays
 *     at N);
 *   - arm a failure of step N with -EIO or -ENOSPC (one step only, the
 *     environment goes on working);
 *   - then io_sim_power_loss(): the current image becomes what a machine
 *     would find after the power came back: the durable image plus, per
 *     the chosen mode, none / a random subset / all of the unsynced writes,
 *     or the last unsynced write torn at 512-byte sector granularity.
 *     Pending directory operations are kept or dropped the same way (one
 *     env-wide list). A kept operation is replayed only if it still
 *     applies: a rename or unlink acts only on the very file it acted on,
 *     a create needs its parent directory, so a dropped op stays dropped.
 * io_sync_dir(d) makes durable the pending ops on entries of d, and the
 * earlier pending ops those depend on (ops sharing a directory with them,
 * e.g. the mkdir of d itself).
 * After a power loss the env is usable again (counters reset, crash and
 * failure disarmed, locks released), so a test reopens the store on it and
 * checks what recovery made of it. io_files opened before it are dead:
 * every call on them returns -EIO, except io_close, which releases them.
 * Pointers from io_map stay readable (they show the rebuilt image).
 *
 * Limits: a file holds at most 1 GiB (-EFBIG beyond); directories cannot
 * be renamed (-ENOTSUP) or unlinked (-EISDIR). Paths are normalized ("//",
 * "." and a trailing "/" do not matter); "/" and "." always exist.
 */
#ifndef STRATA_IO_SIM_H
#define STRATA_IO_SIM_H
#include "io.h"

typedef enum io_sim_loss {
	IO_SIM_DROP_ALL,    /* only synced data survives */
	IO_SIM_KEEP_RANDOM, /* each unsynced write survives with probability 1/2 */
	IO_SIM_TEAR_LAST,   /* all but the last unsynced write of each file survive;
			       the last one keeps a random prefix ending at a 512 B
			       boundary of the file (or at its start or end); a
			       last size change survives or not (p = 1/2) */
	IO_SIM_KEEP_ALL     /* the page cache made it to disk (kill -9, no power loss) */
} io_sim_loss;

io_env *io_sim_new(void);
void io_sim_free(io_env *env); /* files still open are closed */

/* Steps done so far (the first mutating operation is step 1). */
uint64_t io_sim_steps(io_env *env);
/* Crash after step n (0 disarms). */
void io_sim_crash_after(io_env *env, uint64_t n);
/* Fail step n with status err (-EIO, -ENOSPC); 0 disarms. */
void io_sim_fail_step(io_env *env, uint64_t n, int err);
/* True once an armed crash has happened. */
bool io_sim_crashed(io_env *env);
/* Applies a power loss as described above; seed drives the random modes. */
void io_sim_power_loss(io_env *env, io_sim_loss mode, uint64_t seed);
/* Flips bit `bit` (0..7) of byte `off` of the file's current and durable
 * images (and of unsynced writes of that byte, so it stays flipped whatever
 * a power loss keeps). Returns 0, or -ENOENT / STRATA_ETRUNCATED (off past
 * the current size) / STRATA_EINVAL (bit > 7). Not a step. */
int io_sim_flip_bit(io_env *env, const char *path, uint64_t off, unsigned bit);
/* Current size of a file (-ENOENT if none). */
int io_sim_file_size(io_env *env, const char *path, uint64_t *size);
#endif
