/*
 * wal.h — the delta-WAL: appending commits with group commit (wal.c), and
 * replaying them at recovery (wal_replay.c). Byte layout: design/FORMAT.md.
 *
 * Appending is two steps so that concurrent committers share syncs:
 * wal_append() encodes a commit's frames into the in-memory staging buffer
 * (fast, under the WAL lock) and returns the LSN just past its COMMIT frame;
 * wal_sync_to(lsn) returns once everything up to lsn is on stable storage.
 * One waiter at a time becomes the leader: it takes the whole staging buffer
 * (its own commit and everyone else's appended meanwhile), writes it, syncs
 * the files, and wakes the others. Each COMMIT frame records the LSN that
 * was durable when it was staged — replay's proof that a bad frame below
 * it had been synced (corruption), not torn.
 *
 * Any failed write or sync poisons the WAL: that call returns the error
 * (-ENOSPC, -EIO, ...) and every later append or sync returns STRATA_EIO.
 * Nothing is retried.
 */
#ifndef STRATA_WAL_H
#define STRATA_WAL_H
#include <stdbool.h>
#include <stdint.h>

#include "io.h"
#include "wal_format.h"

typedef struct wal wal;

/* Every LSN stays below this (8 EiB of log): recovery refuses a log that
 * starts or ends at or past it, and wal_append refuses a commit that could
 * reach it, so no file arithmetic nears 2^64. */
#define WAL_LSN_MAX (1ull << 63)

typedef struct wal_config {
	io_env *env;
	const char *dir;     /* the store directory */
	uint8_t uuid[16];
	uint64_t file_size;  /* power of two >= WAL_MIN_FILE */
} wal_config;

/* One record of a commit, in the order they are to be written. */
typedef struct wal_rec {
	uint16_t type;        /* WAL_NODE, WAL_RETIRE or WAL_ROOT */
	uint8_t kind;         /* NODE */
	uint64_t id;          /* NODE, RETIRE, ROOT (0: empty root) */
	const void *bytes;    /* NODE: the node; ROOT: the name */
	uint32_t len;         /* NODE: size; ROOT: name length */
} wal_rec;

/* Opens the WAL for appending at start_lsn (the end of what recovery kept,
 * or the start of a new store). The file holding start_lsn is created if
 * missing; an existing one is kept with its salt (its frames before
 * start_lsn are the log). Errors: I/O, STRATA_EFORMAT (existing file of
 * another store), STRATA_ENOMEM. */
int wal_open(const wal_config *cfg, uint64_t start_lsn, wal **out);
/* The same, when recovery still needs the files from keep_lsn (<= start_lsn:
 * the superblock's WAL start) on: only files below keep_lsn are reused. */
int wal_open_keep(const wal_config *cfg, uint64_t start_lsn, uint64_t keep_lsn, wal **out);
/* Flushes nothing: call wal_sync_to(wal_end(w)) first for a clean close. */
void wal_close(wal *w);

/* Encodes the commit (recs then a COMMIT frame for `epoch`) into the
 * staging buffer; *end_lsn gets the LSN just past it.
 * Errors: STRATA_EIO (poisoned), STRATA_ETOOBIG (a frame larger than a WAL
 * file can hold), STRATA_EFULL (it could reach WAL_LSN_MAX), STRATA_ENOMEM. */
int wal_append(wal *w, const wal_rec *recs, size_t n, uint64_t epoch, uint64_t *end_lsn);
/* Returns when every frame below lsn is durable (group commit), or the
 * error that poisoned the WAL. */
int wal_sync_to(wal *w, uint64_t lsn);
/* Called by the thread whose sync made more of the log durable, after it
 * and before the waiters wake, outside the WAL's lock (DURABLE: publishes
 * the commits it made durable). */
typedef void (*wal_durable_fn)(void *ctx);
void wal_set_on_durable(wal *w, wal_durable_fn fn, void *ctx);
/* Writes (without syncing) what is staged, so a kill -9 cannot lose it;
 * used by ASYNC commits' background flusher. */
int wal_write_staged(wal *w);

uint64_t wal_end(wal *w);     /* LSN where the next frame goes */
uint64_t wal_durable(wal *w); /* everything below is synced */
int wal_error(wal *w);        /* 0, or the poisoning error */

/* Lets files whose LSNs all lie below `lsn` be reused for later LSNs
 * (after a checkpoint made them unnecessary). */
int wal_recycle(wal *w, uint64_t lsn);

/* ---- replay (wal_replay.c) ------------------------------------------------ */
typedef struct wal_commit_view {
	uint64_t epoch;
	uint64_t lsn; /* of its first frame */
	const wal_frame *frames; /* its NODE/RETIRE/ROOT frames, in order */
	size_t nframes;
} wal_commit_view;

/* Called for each complete commit in LSN order. Frames point into the
 * reader's buffers: valid during the call only. Non-zero stops replay and
 * is returned. */
typedef int (*wal_commit_fn)(void *ctx, const wal_commit_view *c);

typedef struct wal_replay_result {
	uint64_t end_lsn;       /* after the last complete commit: append here */
	uint64_t commits;       /* complete commits delivered */
	uint64_t last_epoch;    /* epoch of the last one (0 if none) */
	uint64_t bytes;         /* bytes of frames read */
	uint64_t cut_from, cut_to; /* torn tail zeroed by wal_cut_tail, if any */
	uint64_t bad_lsn;       /* corruption: LSN of the bad frame */
	char message[256];      /* what was found, where (corruption or cut tail) */
} wal_replay_result;

/* wal_replay flags. SALVAGE: on corruption keep the commits before it.
 * CLEAN: the superblock says the store closed cleanly and nothing was
 * appended since (durable.c clears the flag before an open appends), so
 * the log ends at start_lsn: if no frame is valid there, the files after
 * it are not scanned for proof of a lost commit (at 1 GiB WAL files that
 * scan was half of opening a 100M-node store). */
enum { WAL_REPLAY_SALVAGE = 1u << 0, WAL_REPLAY_CLEAN = 1u << 1 };

/* Replays from start_lsn. Returns 0 (a clean log or a torn tail, described
 * in res), STRATA_ECORRUPT (a bad frame followed by a commit flushed after
 * it: res->message names file, offset, LSN; with salvage, 0 and replay
 * stops before the bad frame), or an I/O error, or the callback's status.
 * flags: WAL_REPLAY_* (a bool `true` is SALVAGE). Reads only. */
int wal_replay(const wal_config *cfg, uint64_t start_lsn, unsigned flags, wal_commit_fn fn,
	       void *ctx, wal_replay_result *res);
/* Zeroes and syncs [res->cut_from, res->cut_to), the stale frames past
 * the end of the log, so they can never be read as part of it. */
int wal_cut_tail(const wal_config *cfg, const wal_replay_result *res);
#endif
