/*
 * peer_lmdb.c — the LMDB peer: read-transaction open/close costs, the
 * counterpart of a Strata snapshot open/close; and one-row write commits,
 * the counterpart of a one-node durable Strata commit. Environments use
 * LMDB's defaults (thread-local reader slots, synced commits), as an
 * application would; the writer's map is made large enough for a run.
 */
#include "peer_lmdb.h"

#include <stddef.h>

#include "bench.h"

#ifdef STRATA_BENCH_HAVE_LMDB

#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define VALUE_MAX 4096
#define WRITER_MAP_BYTES (4ull << 30)

struct peer_lmdb {
	MDB_env *env;
	MDB_dbi dbi;
	uint64_t next_key;
	uint32_t value_size;
	unsigned char value[VALUE_MAX];
	char dir[256];
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

/* The environment in p->dir; map_bytes 0 keeps LMDB's default size. */
static int env_start(peer_lmdb *p, unsigned flags, uint64_t map_bytes)
{
	int rc = mdb_env_create(&p->env);
	if (!rc && map_bytes)
		rc = mdb_env_set_mapsize(p->env, (size_t)map_bytes);
	if (!rc)
		rc = mdb_env_open(p->env, p->dir, flags, 0644);
	return rc;
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
	int rc = env_start(p, 0, 0);
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

/* The writer's database handle, opened once in its own transaction. */
static int open_dbi(peer_lmdb *p)
{
	MDB_txn *t;
	int rc = mdb_txn_begin(p->env, NULL, 0, &t);
	if (rc)
		return rc;
	if ((rc = mdb_dbi_open(t, NULL, 0, &p->dbi))) {
		mdb_txn_abort(t);
		return rc;
	}
	return mdb_txn_commit(t);
}

int peer_lmdb_open_writer(peer_lmdb **out, const char *dir, bool nosync, uint32_t value_size,
			  const char **why)
{
	*out = NULL;
	peer_lmdb *p = calloc(1, sizeof *p);
	if (!p || value_size < 1 || value_size > VALUE_MAX ||
	    (size_t)snprintf(p->dir, sizeof p->dir, "%s", dir) >= sizeof p->dir) {
		*why = p ? "bad value size or directory name" : "out of memory";
		free(p);
		return -1;
	}
	memset(p->value, 0xa5, sizeof p->value);
	p->value_size = value_size;
	int rc = env_start(p, nosync ? MDB_NOSYNC : 0, WRITER_MAP_BYTES);
	if (!rc)
		rc = open_dbi(p);
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
	char path[320];
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

static void lmdb_fail(int rc, const char *what)
{
	fprintf(stderr, "strata-bench: %s failed: %s\n", what, mdb_strerror(rc));
	exit(1);
}

void peer_lmdb_commit_one(peer_lmdb *p)
{
	unsigned char key[8];
	for (int i = 0; i < 8; i++)
		key[i] = (unsigned char)(p->next_key >> (56 - 8 * i));
	p->next_key++;
	MDB_val k = {.mv_size = sizeof key, .mv_data = key};
	MDB_val v = {.mv_size = p->value_size, .mv_data = p->value};
	MDB_txn *t;
	int rc = mdb_txn_begin(p->env, NULL, 0, &t);
	if (__builtin_expect(rc != 0, 0))
		lmdb_fail(rc, "mdb_txn_begin");
	if (__builtin_expect((rc = mdb_put(t, p->dbi, &k, &v, 0)) != 0, 0)) {
		mdb_txn_abort(t);
		lmdb_fail(rc, "mdb_put");
	}
	if (__builtin_expect((rc = mdb_txn_commit(t)) != 0, 0))
		lmdb_fail(rc, "mdb_txn_commit");
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

int peer_lmdb_open_writer(peer_lmdb **out, const char *dir, bool nosync, uint32_t value_size,
			  const char **why)
{
	(void)dir;
	(void)nosync;
	(void)value_size;
	return peer_lmdb_open(out, why);
}

void peer_lmdb_close(peer_lmdb *p)
{
	(void)p;
}

void peer_lmdb_commit_one(peer_lmdb *p)
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
