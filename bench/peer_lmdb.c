/*
 * peer_lmdb.c — the LMDB peer: read-transaction open/close costs, the
 * counterpart of a Strata snapshot open/close. The environment uses
 * LMDB's defaults (thread-local reader slots), as an application would.
 */
#include "peer_lmdb.h"

#include <stddef.h>

#include "bench.h"

#ifdef STRATA_BENCH_HAVE_LMDB

#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct peer_lmdb {
	MDB_env *env;
	char dir[64];
};

/* One committed key, so readers open a real (non-empty) database. */
static int put_one_key(MDB_env *env)
{
	MDB_txn *t;
	MDB_dbi dbi;
	int rc = mdb_txn_begin(env, NULL, 0, &t);
	if (rc)
		return rc;
	MDB_val k = {.mv_size = 4, .mv_data = "key"}, v = {.mv_size = 6, .mv_data = "value"};
	if ((rc = mdb_dbi_open(t, NULL, 0, &dbi)) || (rc = mdb_put(t, dbi, &k, &v, 0))) {
		mdb_txn_abort(t);
		return rc;
	}
	return mdb_txn_commit(t);
}

int peer_lmdb_open(peer_lmdb **out, const char **why)
{
	*out = NULL;
	peer_lmdb *p = calloc(1, sizeof *p);
	if (!p) {
		*why = "out of memory";
		return -1;
	}
	snprintf(p->dir, sizeof p->dir, "/tmp/strata-bench-lmdb-XXXXXX");
	if (!mkdtemp(p->dir)) {
		*why = "mkdtemp failed";
		free(p);
		return -1;
	}
	int rc = mdb_env_create(&p->env);
	if (!rc)
		rc = mdb_env_open(p->env, p->dir, 0, 0644);
	if (!rc)
		rc = put_one_key(p->env);
	if (rc) {
		*why = mdb_strerror(rc);
		peer_lmdb_close(p);
		return -1;
	}
	*out = p;
	return 0;
}

static void remove_file(const char *dir, const char *name)
{
	char path[128];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	unlink(path);
}

void peer_lmdb_close(peer_lmdb *p)
{
	if (!p)
		return;
	if (p->env)
		mdb_env_close(p->env);
	remove_file(p->dir, "data.mdb");
	remove_file(p->dir, "lock.mdb");
	rmdir(p->dir);
	free(p);
}

uint64_t peer_lmdb_begin_abort(void *arg, uint64_t ops)
{
	peer_lmdb *p = arg;
	uint64_t acc = 0;
	uint64_t t0 = bench_now_ns();
	for (uint64_t i = 0; i < ops; i++) {
		MDB_txn *t = NULL;
		BENCH_CHECK(mdb_txn_begin(p->env, NULL, MDB_RDONLY, &t), "mdb_txn_begin");
		acc += (uintptr_t)t;
		mdb_txn_abort(t);
	}
	uint64_t t1 = bench_now_ns();
	bench_sink += acc;
	return t1 - t0;
}

uint64_t peer_lmdb_renew_reset(void *arg, uint64_t ops)
{
	peer_lmdb *p = arg;
	MDB_txn *t = NULL;
	BENCH_CHECK(mdb_txn_begin(p->env, NULL, MDB_RDONLY, &t), "mdb_txn_begin");
	mdb_txn_reset(t);
	/* renew/reset are opaque library calls: nothing to sink. */
	uint64_t t0 = bench_now_ns();
	for (uint64_t i = 0; i < ops; i++) {
		BENCH_CHECK(mdb_txn_renew(t), "mdb_txn_renew");
		mdb_txn_reset(t);
	}
	uint64_t t1 = bench_now_ns();
	mdb_txn_abort(t);
	return t1 - t0;
}

#else /* no LMDB in this build */

int peer_lmdb_open(peer_lmdb **out, const char **why)
{
	*out = NULL;
	*why = "strata-bench was built without liblmdb (pkg-config lmdb not found)";
	return -1;
}

void peer_lmdb_close(peer_lmdb *p)
{
	(void)p;
}

uint64_t peer_lmdb_begin_abort(void *arg, uint64_t ops)
{
	(void)arg;
	(void)ops;
	return 0;
}

uint64_t peer_lmdb_renew_reset(void *arg, uint64_t ops)
{
	(void)arg;
	(void)ops;
	return 0;
}

#endif
