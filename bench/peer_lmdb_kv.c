/*
 * peer_lmdb_kv.c — see peer_lmdb_kv.h. Default LMDB environment flags (as
 * an application would use it) plus MDB_NOSYNC when asked; one database.
 */
#include "peer_lmdb_kv.h"

#include "bench.h"

#ifdef STRATA_BENCH_HAVE_LMDB

#include <ftw.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH 1000u
#define SCAN 100u

struct lmdb_kv {
	MDB_env *env;
	MDB_dbi dbi;
	size_t klen, vlen;
	lmdb_kv_key_fn key_of;
	const uint64_t *idx;
	uint8_t val[4096];
	char dir[512];
};

static void lm_check(int rc, const char *what)
{
	if (rc) {
		fprintf(stderr, "strata-bench: lmdb %s: %s\n", what, mdb_strerror(rc));
		exit(1);
	}
}

int lmdb_kv_open(lmdb_kv **out, uint64_t bytes, bool nosync, size_t klen, size_t vlen,
		 lmdb_kv_key_fn key_of, const char **why)
{
	lmdb_kv *p = calloc(1, sizeof *p);
	const char *base = getenv("TMPDIR");
	if (!p || vlen > sizeof p->val) {
		free(p);
		*why = "out of memory";
		return -1;
	}
	snprintf(p->dir, sizeof p->dir, "%s/strata-bench-lmdbkv-XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(p->dir)) {
		free(p);
		*why = "mkdtemp failed";
		return -1;
	}
	p->klen = klen;
	p->vlen = vlen;
	p->key_of = key_of;
	memset(p->val, 0x61, vlen);
	MDB_txn *t;
	int rc = mdb_env_create(&p->env);
	if (!rc)
		rc = mdb_env_set_mapsize(p->env, (size_t)bytes);
	if (!rc)
		rc = mdb_env_open(p->env, p->dir, nosync ? MDB_NOSYNC : 0, 0644);
	if (!rc && !(rc = mdb_txn_begin(p->env, NULL, 0, &t))) {
		if ((rc = mdb_dbi_open(t, NULL, 0, &p->dbi)))
			mdb_txn_abort(t);
		else
			rc = mdb_txn_commit(t);
	}
	if (rc) {
		*why = mdb_strerror(rc);
		lmdb_kv_close(p);
		return -1;
	}
	*out = p;
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

void lmdb_kv_close(lmdb_kv *p)
{
	if (!p)
		return;
	if (p->env)
		mdb_env_close(p->env);
	nftw(p->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	free(p);
}

uint64_t lmdb_kv_load(lmdb_kv *p, uint64_t n, lmdb_kv_key_fn nth)
{
	uint8_t key[64];
	MDB_txn *t;
	uint64_t t0 = bench_now_ns();
	lm_check(mdb_txn_begin(p->env, NULL, 0, &t), "txn_begin");
	for (uint64_t i = 0; i < n; i++) {
		nth(i, key);
		MDB_val k = {p->klen, key}, v = {p->vlen, p->val};
		lm_check(mdb_put(t, p->dbi, &k, &v, MDB_APPEND), "put (append)");
	}
	lm_check(mdb_txn_commit(t), "commit");
	return bench_now_ns() - t0;
}

void lmdb_kv_set_indexes(lmdb_kv *p, const uint64_t *idx)
{
	p->idx = idx;
}

uint64_t lmdb_kv_get_at(lmdb_kv *p, const uint64_t *idx, uint64_t ops)
{
	uint8_t key[64];
	MDB_txn *t;
	uint64_t sum = 0;
	lm_check(mdb_txn_begin(p->env, NULL, MDB_RDONLY, &t), "txn_begin (read)");
	for (uint64_t i = 0; i < ops; i++) {
		p->key_of(idx[i], key);
		MDB_val k = {p->klen, key}, v;
		lm_check(mdb_get(t, p->dbi, &k, &v), "get");
		sum += ((const uint8_t *)v.mv_data)[0];
	}
	mdb_txn_abort(t);
	return sum;
}

uint64_t lmdb_kv_get(void *arg, uint64_t ops)
{
	lmdb_kv *p = arg;
	uint64_t t0 = bench_now_ns();
	uint64_t sum = lmdb_kv_get_at(p, p->idx, ops);
	uint64_t ns = bench_now_ns() - t0;
	bench_sink += sum;
	return ns;
}

uint64_t lmdb_kv_insert(void *arg, uint64_t ops)
{
	lmdb_kv *p = arg;
	uint8_t key[64];
	uint64_t t0 = bench_now_ns();
	for (uint64_t i = 0; i < ops;) {
		MDB_txn *t;
		lm_check(mdb_txn_begin(p->env, NULL, 0, &t), "txn_begin");
		for (uint64_t j = 0; j < BATCH && i < ops; j++, i++) {
			p->key_of(p->idx[i], key);
			MDB_val k = {p->klen, key}, v = {p->vlen, p->val};
			lm_check(mdb_put(t, p->dbi, &k, &v, 0), "put");
		}
		lm_check(mdb_txn_commit(t), "commit");
	}
	uint64_t ns = bench_now_ns() - t0;
	p->idx += ops; /* the next batch inserts other keys */
	return ns;
}

uint64_t lmdb_kv_scan(void *arg, uint64_t ops)
{
	lmdb_kv *p = arg;
	uint8_t key[64];
	MDB_txn *t;
	MDB_cursor *c;
	uint64_t sum = 0, t0 = bench_now_ns();
	lm_check(mdb_txn_begin(p->env, NULL, MDB_RDONLY, &t), "txn_begin (read)");
	lm_check(mdb_cursor_open(t, p->dbi, &c), "cursor_open");
	for (uint64_t i = 0; i < ops; i++) {
		p->key_of(p->idx[i], key);
		MDB_val k = {p->klen, key}, v;
		int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
		for (unsigned j = 0; j < SCAN && rc == 0; j++) {
			sum += ((const uint8_t *)v.mv_data)[0] + k.mv_size;
			rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
		}
	}
	mdb_cursor_close(c);
	mdb_txn_abort(t);
	uint64_t ns = bench_now_ns() - t0;
	bench_sink += sum;
	return ns;
}

#else /* no LMDB */

int lmdb_kv_open(lmdb_kv **out, uint64_t bytes, bool nosync, size_t klen, size_t vlen,
		 lmdb_kv_key_fn key_of, const char **why)
{
	(void)bytes, (void)nosync, (void)klen, (void)vlen, (void)key_of;
	*out = NULL;
	*why = "strata-bench was built without LMDB";
	return -1;
}
void lmdb_kv_close(lmdb_kv *p) { (void)p; }
uint64_t lmdb_kv_load(lmdb_kv *p, uint64_t n, lmdb_kv_key_fn nth)
{
	(void)p, (void)n, (void)nth;
	return 0;
}
void lmdb_kv_set_indexes(lmdb_kv *p, const uint64_t *idx) { (void)p, (void)idx; }
uint64_t lmdb_kv_get(void *arg, uint64_t ops) { (void)arg, (void)ops; return 0; }
uint64_t lmdb_kv_insert(void *arg, uint64_t ops) { (void)arg, (void)ops; return 0; }
uint64_t lmdb_kv_scan(void *arg, uint64_t ops) { (void)arg, (void)ops; return 0; }
uint64_t lmdb_kv_get_at(lmdb_kv *p, const uint64_t *idx, uint64_t ops)
{
	(void)p, (void)idx, (void)ops;
	return 0;
}

#endif
