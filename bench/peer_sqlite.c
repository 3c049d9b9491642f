/*
 * peer_sqlite.c — the SQLite peer: one-row transactions on a WAL-mode
 * database, the counterpart of a one-node Strata commit. Statements are
 * prepared once, so a commit is three sqlite3_step calls and no parsing.
 * The connection is opened SQLITE_OPEN_NOMUTEX: one thread uses it.
 * Everything else is SQLite's default (page size, WAL auto-checkpoint at
 * 1000 pages), as an application would have it.
 */
#include "peer_sqlite.h"

#include <stddef.h>

#ifdef STRATA_BENCH_HAVE_SQLITE

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VALUE_MAX 4096

struct peer_sqlite {
	sqlite3 *db;
	sqlite3_stmt *begin, *insert, *commit;
	unsigned char value[VALUE_MAX];
	uint32_t value_size;
	sqlite3_int64 next_key;
};

static int exec(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

static int prepare(peer_sqlite *p)
{
	int rc = sqlite3_prepare_v2(p->db, "BEGIN", -1, &p->begin, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(p->db, "INSERT INTO kv(k, v) VALUES(?1, ?2)", -1, &p->insert,
					NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(p->db, "COMMIT", -1, &p->commit, NULL);
	return rc;
}

/* WAL mode, the sync level, the table, the statements. */
static int setup(peer_sqlite *p, bool full)
{
	int rc = exec(p->db, "PRAGMA journal_mode=WAL");
	if (rc == SQLITE_OK)
		rc = exec(p->db, full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
	if (rc == SQLITE_OK)
		rc = exec(p->db, "CREATE TABLE kv(k INTEGER PRIMARY KEY, v BLOB NOT NULL)");
	return rc == SQLITE_OK ? prepare(p) : rc;
}

int peer_sqlite_open(peer_sqlite **out, const char *file, bool full, uint32_t value_size,
		     const char **why)
{
	*out = NULL;
	if (value_size < 1 || value_size > VALUE_MAX) {
		*why = "value size out of range";
		return -1;
	}
	peer_sqlite *p = calloc(1, sizeof *p);
	if (!p) {
		*why = "out of memory";
		return -1;
	}
	memset(p->value, 0xa5, sizeof p->value);
	p->value_size = value_size;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
	int rc = sqlite3_open_v2(file, &p->db, flags, NULL);
	if (rc == SQLITE_OK)
		rc = setup(p, full);
	if (rc != SQLITE_OK) {
		*why = p->db ? sqlite3_errmsg(p->db) : sqlite3_errstr(rc);
		fprintf(stderr, "strata-bench: sqlite peer: %s\n", *why);
		*why = "sqlite3 setup failed (message above)";
		peer_sqlite_close(p);
		return -1;
	}
	*out = p;
	return 0;
}

void peer_sqlite_close(peer_sqlite *p)
{
	if (!p)
		return;
	sqlite3_finalize(p->begin);
	sqlite3_finalize(p->insert);
	sqlite3_finalize(p->commit);
	sqlite3_close(p->db);
	free(p);
}

static void step_done(peer_sqlite *p, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (__builtin_expect(rc != SQLITE_DONE, 0)) {
		fprintf(stderr, "strata-bench: sqlite %s failed: %s\n", what, sqlite3_errmsg(p->db));
		exit(1);
	}
}

void peer_sqlite_commit_one(peer_sqlite *p)
{
	step_done(p, p->begin, "BEGIN");
	sqlite3_bind_int64(p->insert, 1, p->next_key++);
	sqlite3_bind_blob(p->insert, 2, p->value, (int)p->value_size, SQLITE_STATIC);
	step_done(p, p->insert, "INSERT");
	step_done(p, p->commit, "COMMIT");
}

#else /* no SQLite in this build */

int peer_sqlite_open(peer_sqlite **out, const char *file, bool full, uint32_t value_size,
		     const char **why)
{
	(void)file;
	(void)full;
	(void)value_size;
	*out = NULL;
	*why = "strata-bench was built without SQLite (pkg-config sqlite3 not found)";
	return -1;
}

void peer_sqlite_close(peer_sqlite *p)
{
	(void)p;
}

void peer_sqlite_commit_one(peer_sqlite *p)
{
	(void)p;
}

#endif
