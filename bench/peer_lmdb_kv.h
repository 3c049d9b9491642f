/*
 * peer_lmdb_kv.h — LMDB as the B+tree suite's peer: the same keys and values,
 * the same operations (sequential append load, random gets, batched random
 * inserts, 100-key scans) in the same run. Built only with LMDB
 * (STRATA_BENCH_HAVE_LMDB); otherwise open says so and the peer is skipped.
 */
#ifndef STRATA_BENCH_PEER_LMDB_KV_H
#define STRATA_BENCH_PEER_LMDB_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct lmdb_kv lmdb_kv;

/* Key number x as the suite encodes it (klen bytes into key). */
typedef void (*lmdb_kv_key_fn)(uint64_t i, uint8_t *key);

/* A fresh environment in a temporary directory under $TMPDIR, map large
 * enough for `bytes`; nosync adds MDB_NOSYNC. 0, or -1 with a reason. */
int lmdb_kv_open(lmdb_kv **out, uint64_t bytes, bool nosync, size_t klen, size_t vlen,
		 lmdb_kv_key_fn key_of, const char **why);
/* Closes and removes the files. NULL accepted. */
void lmdb_kv_close(lmdb_kv *p);
/* Appends keys nth(0), .., nth(n-1) (increasing) in one transaction with
 * MDB_APPEND; returns the elapsed ns of load + commit. */
uint64_t lmdb_kv_load(lmdb_kv *p, uint64_t n, lmdb_kv_key_fn nth);
/* bench_fn batches over the key numbers in `idx` (ops of them), set by
 * the suite before a batch. */
void lmdb_kv_set_indexes(lmdb_kv *p, const uint64_t *idx);
uint64_t lmdb_kv_get(void *arg, uint64_t ops);    /* one read txn, ops gets */
uint64_t lmdb_kv_insert(void *arg, uint64_t ops); /* puts, 1000 per commit;
						      then idx += ops */
uint64_t lmdb_kv_scan(void *arg, uint64_t ops);   /* ops scans of 100 keys */
/* ops gets of the key numbers idx[0..ops) in one read txn, from any thread
 * (the mixed workload's readers; each passes its own idx); returns a sum
 * of value bytes so the reads cannot be dropped. */
uint64_t lmdb_kv_get_at(lmdb_kv *p, const uint64_t *idx, uint64_t ops);

#endif /* STRATA_BENCH_PEER_LMDB_KV_H */
