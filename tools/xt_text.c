/*
 * xt_text.c — `strata xt load` (CSV rows, bulk-loaded into an empty tree,
 * else inserted 10000 per commit) and `strata xt batch` (one operation per
 * line). A tree that does not exist yet is created with --dims, or else
 * with as many dimensions as the first row has coordinates (points).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "xt.h"

typedef struct rows {
	double *lo, *hi;
	uint64_t *id;
	size_t n, cap;
	uint32_t d;
} rows;

static int rows_push(rows *r, uint64_t id, const double *c, int nc)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 4096;
		double *lo = realloc(r->lo, cap * r->d * sizeof *lo);
		if (lo)
			r->lo = lo;
		double *hi = realloc(r->hi, cap * r->d * sizeof *hi);
		if (hi)
			r->hi = hi;
		uint64_t *ids = realloc(r->id, cap * sizeof *ids);
		if (ids)
			r->id = ids;
		if (!lo || !hi || !ids)
			return STRATA_ENOMEM;
		r->cap = cap;
	}
	memcpy(r->lo + r->n * r->d, c, r->d * sizeof(double));
	memcpy(r->hi + r->n * r->d, nc == (int)r->d ? c : c + r->d, r->d * sizeof(double));
	r->id[r->n++] = id;
	return 0;
}

/* Dimensions of the tree, or 0 if the root holds none yet. */
static uint32_t dims_of(const xargs *a, strata_store *s, uint64_t *count)
{
	strata_snapshot *snap;
	uint32_t d = 0;
	*count = 0;
	if (strata_snapshot_open(s, &snap))
		return 0;
	if (strata_xt_dims(snap, a->name, &d) || strata_xt_count(snap, a->name, count))
		d = 0;
	strata_snapshot_close(snap);
	return d;
}

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* Reads FILE's rows `id,c1,...` into r (r->d: the tree's dims or 0). */
static int read_rows(const xargs *a, FILE *f, rows *r)
{
	char line[8192];
	double c[2 * XT_MAXD + 1];
	bool tty = isatty(2);
	for (uint64_t ln = 1; fgets(line, sizeof line, f); ln++) {
		if (line[0] == '#' || line[0] == '\n')
			continue;
		int n = xt_parse_doubles(line, ',', c, 2 * XT_MAXD + 1) - 1;
		if (r->d == 0 && n >= 1 && n <= XT_MAXD)
			r->d = (uint32_t)n;
		if (n < 1 || (n != (int)r->d && n != 2 * (int)r->d) || c[0] < 0) {
			fprintf(stderr, "strata xt load: %s:%" PRIu64 ": expected id and %u or %u numbers\n",
				a->file, ln, r->d, 2 * r->d);
			return CLI_FAIL;
		}
		if (rows_push(r, (uint64_t)c[0], c + 1, n))
			return xt_fail(a, "reading", STRATA_ENOMEM);
		if (tty && r->n % 65536 == 0)
			fprintf(stderr, "\rread %zu rows", r->n);
	}
	if (tty && r->n >= 65536)
		fprintf(stderr, "\rread %zu rows\n", r->n);
	return CLI_OK;
}

static int insert_rows(const xargs *a, strata_store *s, const rows *r)
{
	bool tty = isatty(2);
	for (size_t i = 0; i < r->n;) {
		strata_txn *t;
		int rc = strata_txn_begin(s, &a->name, 1, 0, &t);
		if (rc)
			return xt_fail(a, "begin", rc);
		for (size_t end = i + 10000; !rc && i < r->n && i < end; i++)
			rc = strata_xt_insert(t, a->name, r->d, r->lo + i * r->d, r->hi + i * r->d,
					      r->id[i]);
		if (rc) {
			strata_txn_abort(t);
			fprintf(stderr, "strata xt load: row %zu: %s\n", i, strata_strerror(rc));
			return CLI_FAIL;
		}
		if ((rc = strata_txn_commit(t, NULL)))
			return xt_fail(a, "commit", rc);
		if (tty)
			fprintf(stderr, "\r[%-40.*s] %zu/%zu", (int)(40 * i / r->n),
				"########################################", i, r->n);
	}
	if (tty)
		fprintf(stderr, "\n");
	return CLI_OK;
}

static int bulk_rows(const xargs *a, strata_store *s, const rows *r)
{
	strata_txn *t;
	int rc = strata_txn_begin(s, &a->name, 1, 0, &t);
	if (rc)
		return xt_fail(a, "begin", rc);
	if ((rc = strata_xt_bulk_load(t, a->name, r->d, r->n, r->lo, r->hi, r->id))) {
		strata_txn_abort(t);
		return xt_fail(a, "bulk load", rc);
	}
	rc = strata_txn_commit(t, NULL);
	return rc ? xt_fail(a, "commit", rc) : CLI_OK;
}

int xt_cmd_load(const xargs *a, strata_store *s)
{
	FILE *f = fopen(a->file, "r");
	if (!f) {
		perror(a->file);
		return CLI_FAIL;
	}
	uint64_t count;
	rows r = {.d = dims_of(a, s, &count)};
	bool exists = r.d != 0;
	if (!exists)
		r.d = a->dims;
	int st = read_rows(a, f, &r);
	fclose(f);
	if (!st && !exists)
		st = xt_ensure_tree(a, s, r.d, false);
	double t0 = now_ms();
	if (!st && r.n)
		st = count == 0 ? bulk_rows(a, s, &r) : insert_rows(a, s, &r);
	if (!st)
		printf("loaded %zu entries (%s) in %.1f ms\n", r.n, count == 0 ? "bulk" : "inserts",
		       now_ms() - t0);
	free(r.lo), free(r.hi), free(r.id);
	return st;
}

/* ---- batch ---------------------------------------------------------------------------- */
typedef struct batch {
	const xargs *a;
	strata_store *s;
	strata_txn *t;
	uint32_t d;
	uint64_t line;
	/* The last commit's tree, opened at the first query after it and
	 * kept for the queries that follow until the next commit. */
	strata_snapshot *snap;
	strata_xt_handle *h;
} batch;

static int b_error(batch *b, const char *msg, int rc)
{
	fprintf(stderr, "strata xt batch: %s:%" PRIu64 ": %s%s%s\n", b->a->file, b->line, msg,
		rc ? ": " : "", rc ? strata_strerror(rc) : "");
	return CLI_FAIL;
}

/* Drops the query handle: a commit makes it out of date. */
static void b_unread(batch *b)
{
	strata_xt_handle_close(b->h);
	strata_snapshot_close(b->snap);
	b->h = NULL;
	b->snap = NULL;
}

static int b_commit(batch *b)
{
	if (!b->t)
		return CLI_OK;
	b_unread(b);
	int rc = strata_txn_commit(b->t, NULL);
	b->t = NULL;
	return rc ? b_error(b, "commit", rc) : CLI_OK;
}

/* i ID coords / d ID coords: a point (d numbers) or a box (2d). */
static int b_change(batch *b, char op, const char *rest)
{
	double c[2 * XT_MAXD + 1];
	int n = xt_parse_doubles(rest, ' ', c, 2 * XT_MAXD + 1) - 1;
	if (b->d == 0 && op == 'i' && n >= 1 && n <= XT_MAXD) {
		if (xt_ensure_tree(b->a, b->s, (uint32_t)n, false))
			return CLI_FAIL;
		b->d = (uint32_t)n;
	}
	if (n < 1 || (n != (int)b->d && n != 2 * (int)b->d) || c[0] < 0)
		return b_error(b, "expected an id and a point or box", 0);
	int rc = b->t ? 0 : strata_txn_begin(b->s, &b->a->name, 1, 0, &b->t);
	const double *hi = n == (int)b->d ? NULL : c + 1 + b->d;
	if (!rc)
		rc = op == 'i' ? strata_xt_insert(b->t, b->a->name, b->d, c + 1, hi, (uint64_t)c[0])
			       : strata_xt_delete(b->t, b->a->name, b->d, c + 1, hi, (uint64_t)c[0]);
	return rc ? b_error(b, op == 'i' ? "insert" : "delete", rc) : CLI_OK;
}

/* q coords / k K coords: answered from the last commit, then `--`. */
static int b_query(batch *b, char op, const char *rest)
{
	double c[2 * XT_MAXD + 1];
	int n = xt_parse_doubles(rest, ' ', c, 2 * XT_MAXD + 1);
	if (b->d == 0)
		return b_error(b, "query before the tree exists", 0);
	if (!b->h) {
		int rc = strata_snapshot_open(b->s, &b->snap);
		if (!rc && (rc = strata_xt_handle_open(b->snap, b->a->name, &b->h)))
			b_unread(b);
		if (rc)
			return b_error(b, "opening the tree", rc);
	}
	int st;
	if (op == 'q')
		st = xt_run_query(b->a, b->h, b->d, c, n, STRATA_XT_INTERSECTS);
	else if (n < 1 || c[0] < 1 || c[0] > UINT32_MAX)
		st = b_error(b, "k needs K >= 1", 0);
	else
		st = xt_run_knn(b->a, b->h, b->d, c + 1, n - 1, (uint32_t)c[0], STRATA_XT_L2);
	if (!st)
		printf("--\n");
	return st;
}

static int b_line(batch *b, char *line)
{
	char *p = line;
	while (*p == ' ' || *p == '\t')
		p++;
	if (!*p || *p == '\n' || *p == '#')
		return CLI_OK;
	char op = *p++;
	if (*p && *p != ' ' && *p != '\t' && *p != '\n')
		return b_error(b, "unknown operation", 0);
	switch (op) {
	case 'i':
	case 'd':
		return b_change(b, op, p);
	case 'q':
	case 'k':
		return b_query(b, op, p);
	case 'c':
		return b_commit(b);
	default:
		return b_error(b, "unknown operation (i, d, q, k, c)", 0);
	}
}

int xt_cmd_batch(const xargs *a, strata_store *s)
{
	FILE *f = strcmp(a->file, "-") ? fopen(a->file, "r") : stdin;
	if (!f) {
		perror(a->file);
		return CLI_FAIL;
	}
	uint64_t count;
	batch b = {a, s, NULL, dims_of(a, s, &count), 0, NULL, NULL};
	if (!b.d && a->dims) {
		if (xt_ensure_tree(a, s, a->dims, false))
			return CLI_FAIL;
		b.d = a->dims;
	}
	char line[8192];
	int st = CLI_OK;
	while (!st && fgets(line, sizeof line, f)) {
		b.line++;
		st = b_line(&b, line);
	}
	if (f != stdin)
		fclose(f);
	b_unread(&b);
	if (st) {
		strata_txn_abort(b.t);
		return st;
	}
	return b_commit(&b);
}
