/*
 * peer_sqlite.h — SQLite in WAL mode as a peer of Strata's durable commits,
 * measured in the same run. Built only when pkg-config finds sqlite3
 * (STRATA_BENCH_HAVE_SQLITE); otherwise peer_sqlite_open() says so and the
 * suite skips the peer's figures.
 */
#ifndef STRATA_BENCH_PEER_SQLITE_H
#define STRATA_BENCH_PEER_SQLITE_H

#include <stdbool.h>
#include <stdint.h>

typedef struct peer_sqlite peer_sqlite;

/* Creates database `file` (journal_mode=WAL, synchronous=FULL when `full`,
 * else NORMAL) holding one table kv(k INTEGER PRIMARY KEY, v BLOB); rows
 * get values of `value_size` bytes (1..4096). Returns 0, or -1 with a
 * reason in `why` (also when SQLite is not built in). */
int peer_sqlite_open(peer_sqlite **out, const char *file, bool full, uint32_t value_size,
		     const char **why);
/* Closes the connection; the files stay (the caller owns the directory).
 * NULL is accepted. */
void peer_sqlite_close(peer_sqlite *p);

/* One transaction: BEGIN; INSERT of the next key and a value;
 * COMMIT. Exits the program with SQLite's message if a step fails. */
void peer_sqlite_commit_one(peer_sqlite *p);

#endif /* STRATA_BENCH_PEER_SQLITE_H */
