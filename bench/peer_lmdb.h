/*
 * peer_lmdb.h — LMDB as a peer measured in the same run as Strata: read
 * transactions (substrate suite) and one-row write commits (durable). Built
 * only when pkg-config finds lmdb (STRATA_BENCH_HAVE_LMDB); otherwise
 * peer_lmdb_open() says so and the suite skips the peer's figures.
 */
#ifndef STRATA_BENCH_PEER_LMDB_H
#define STRATA_BENCH_PEER_LMDB_H

#include <stdbool.h>
#include <stdint.h>

typedef struct peer_lmdb peer_lmdb;

/* Opens an environment in a fresh temporary directory holding one key.
 * Returns 0, or -1 with a reason in `why` (also when LMDB is not built in). */
int peer_lmdb_open(peer_lmdb **out, const char **why);
/* Opens a writable environment in `dir`, an existing empty directory,
 * with a 4 GiB map; `nosync` adds MDB_NOSYNC (commits are not synced).
 * Rows written by peer_lmdb_commit_one get values of `value_size` bytes
 * (1..4096). Returns 0, or -1 with a reason in `why`. */
int peer_lmdb_open_writer(peer_lmdb **out, const char *dir, bool nosync, uint32_t value_size,
			  const char **why);
/* Closes the environment and removes its files and directory. NULL is
 * accepted. */
void peer_lmdb_close(peer_lmdb *p);

/* One write transaction: mdb_put of the next key (8 bytes, big-endian
 * counter: appends) and a value, then mdb_txn_commit. Exits the program
 * with LMDB's message if a call fails. */
void peer_lmdb_commit_one(peer_lmdb *p);

/* bench_fn batches (arg: peer_lmdb *). */
uint64_t peer_lmdb_begin_abort(void *arg, uint64_t ops); /* read txn begin + abort */
uint64_t peer_lmdb_renew_reset(void *arg, uint64_t ops); /* read txn renew + reset */

#endif /* STRATA_BENCH_PEER_LMDB_H */
