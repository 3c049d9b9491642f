/*
 * peer_sqlite_rtree.c — SQLite's R*Tree virtual table as a window-query
 * peer of the xtree suite (up to 5 dimensions; an in-memory database). Its
 * coordinates are float32 rounded outward, so a window may return a few
 * more hits than the exact answer: the suite allows a superset here.
 */
#include "peer_spatial.h"

#ifdef STRATA_BENCH_HAVE_SQLITE
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct peer_sqlrt {
	sqlite3 *db;
	sqlite3_stmt *q;
	uint32_t d;
};

static const char *const AXES[5] = {"a", "b", "c", "e", "f"};

static int create(peer_sqlrt *p)
{
	char sql[512] = "CREATE VIRTUAL TABLE r USING rtree(id";
	size_t len = strlen(sql);
	for (uint32_t k = 0; k < p->d; k++)
		len += (size_t)snprintf(sql + len, sizeof sql - len, ", %s0, %s1", AXES[k], AXES[k]);
	snprintf(sql + len, sizeof sql - len, ")");
	return sqlite3_exec(p->db, sql, NULL, NULL, NULL);
}

static int prepare(peer_sqlrt *p, sqlite3_stmt **ins)
{
	char sql[512] = "INSERT INTO r VALUES(?", q[512] = "SELECT count(*) FROM r WHERE 1";
	size_t len = strlen(sql), ql = strlen(q);
	for (uint32_t k = 0; k < 2 * p->d; k++)
		len += (size_t)snprintf(sql + len, sizeof sql - len, ",?");
	snprintf(sql + len, sizeof sql - len, ")");
	for (uint32_t k = 0; k < p->d; k++)
		ql += (size_t)snprintf(q + ql, sizeof q - ql, " AND %s0 <= ? AND %s1 >= ?", AXES[k],
				       AXES[k]);
	if (sqlite3_prepare_v2(p->db, sql, -1, ins, NULL))
		return 1;
	return sqlite3_prepare_v2(p->db, q, -1, &p->q, NULL);
}

peer_sqlrt *peer_sqlrt_build(uint32_t d, const double *lo, const double *hi, const uint64_t *ids,
			     size_t n)
{
	peer_sqlrt *p = calloc(1, sizeof *p);
	sqlite3_stmt *ins = NULL;
	p->d = d;
	if (d > 5 || sqlite3_open(":memory:", &p->db) || create(p) || prepare(p, &ins))
		goto err;
	sqlite3_exec(p->db, "BEGIN", NULL, NULL, NULL);
	for (size_t i = 0; i < n; i++) {
		sqlite3_bind_int64(ins, 1, (sqlite3_int64)ids[i]);
		for (uint32_t k = 0; k < d; k++) {
			sqlite3_bind_double(ins, 2 + 2 * k, lo[i * d + k]);
			sqlite3_bind_double(ins, 3 + 2 * k, hi[i * d + k]);
		}
		if (sqlite3_step(ins) != SQLITE_DONE)
			goto err;
		sqlite3_reset(ins);
	}
	sqlite3_exec(p->db, "COMMIT", NULL, NULL, NULL);
	sqlite3_finalize(ins);
	return p;
err:
	sqlite3_finalize(ins);
	peer_sqlrt_free(p);
	return NULL;
}

uint64_t peer_sqlrt_window(peer_sqlrt *p, const double *lo, const double *hi)
{
	for (uint32_t k = 0; k < p->d; k++) {
		sqlite3_bind_double(p->q, 1 + 2 * k, hi[k]);
		sqlite3_bind_double(p->q, 2 + 2 * k, lo[k]);
	}
	uint64_t n = sqlite3_step(p->q) == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(p->q, 0) : 0;
	sqlite3_reset(p->q);
	return n;
}

void peer_sqlrt_free(peer_sqlrt *p)
{
	if (!p)
		return;
	sqlite3_finalize(p->q);
	sqlite3_close(p->db);
	free(p);
}
#endif
