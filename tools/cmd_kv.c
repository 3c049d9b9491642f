/*
 * cmd_kv.c — `strata kv SUB DIR NAME ...`: the B+tree from the shell.
 * put/get/del one key, scan a range, load a TSV file (bulk load into an
 * empty tree, else batched puts), run a batch file, print stats. Keys and
 * values are in the escaped text form of kv.h, in and out.
 *
 * DIR is a DURABLE store, created by the writing subcommands (put, load,
 * batch) if missing; they also create tree NAME (--node-size) if its root
 * is empty. --in-memory uses a fresh in-process store instead: DIR is not
 * touched, and nothing outlives the command (for trying load and batch).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kv.h"
#include "strata/bptree.h"

typedef struct kv_cmd {
	const cli_command *self;
	const char *sub;
	char *pos[4]; /* DIR NAME [ARG [ARG]] */
	int npos;
	bool in_memory;
	char *from, *to;
	size_t fromlen, tolen;
	uint64_t limit;
	uint32_t node_size;
	strata_store *s;
} kv_cmd;

#define KV_BATCH 1000 /* puts per transaction when loading without bulk */

static int kv_fail(const kv_cmd *k, const char *what, int rc)
{
	fprintf(stderr, "strata kv %s: %s: %s\n", k->sub, what, strata_strerror(rc));
	return CLI_FAIL;
}

static int kv_open(kv_cmd *k, bool create)
{
	strata_options o;
	strata_options_init(&o);
	if (!k->in_memory) {
		o.mode = STRATA_DURABLE;
		o.path = k->pos[0];
		o.flags = create ? STRATA_OPEN_CREATE : 0;
	}
	int rc = strata_open(&o, &k->s);
	if (rc == -ENOENT && !create) {
		fprintf(stderr, "strata kv %s: %s: no store here (put, load or batch create one)\n",
			k->sub, k->pos[0]);
		return CLI_FAIL;
	}
	if (rc) {
		fprintf(stderr, "strata kv %s: %s: cannot open the store: %s\n  %s\n", k->sub,
			k->pos[0], strata_strerror(rc), strata_last_error());
		return CLI_FAIL;
	}
	return CLI_OK;
}

static int kv_close(kv_cmd *k, int status)
{
	int rc = strata_close(k->s);
	if (rc && status == CLI_OK)
		return kv_fail(k, "closing the store", rc);
	return status;
}

/* Begins a transaction on NAME, creating the tree if the root is empty. */
static int kv_begin(kv_cmd *k, strata_txn **t)
{
	const char *name = k->pos[1];
	int rc = strata_txn_begin(k->s, &name, 1, 0, t);
	if (rc)
		return rc;
	strata_node_id root;
	if ((rc = strata_txn_get_root(*t, name, &root)) == 0 && root == STRATA_NODE_NULL) {
		strata_bpt_options o;
		strata_bpt_options_init(&o);
		if (k->node_size)
			o.node_size = k->node_size;
		rc = strata_bpt_create(*t, name, &o);
	}
	if (rc)
		strata_txn_abort(*t);
	return rc;
}

static bool arg_bytes(kv_cmd *k, char *s, size_t *len)
{
	if (kv_unescape(s, strlen(s), len))
		return true;
	cli_usage_error(k->self, "bad escape in '%s'", s);
	return false;
}

/* ---- put / get / del / stats -------------------------------------------------- */

static int sub_put(kv_cmd *k)
{
	size_t kl, vl;
	if (!arg_bytes(k, k->pos[2], &kl) || !arg_bytes(k, k->pos[3], &vl))
		return CLI_USAGE;
	int st = kv_open(k, true);
	if (st)
		return st;
	strata_txn *t;
	int rc = kv_begin(k, &t);
	if (rc == 0 && (rc = strata_bpt_put(t, k->pos[1], k->pos[2], kl, k->pos[3], vl, 0)))
		strata_txn_abort(t);
	else if (rc == 0)
		rc = strata_txn_commit(t, NULL);
	return kv_close(k, rc ? kv_fail(k, k->pos[1], rc) : CLI_OK);
}

static int sub_get(kv_cmd *k)
{
	size_t kl;
	if (!arg_bytes(k, k->pos[2], &kl))
		return CLI_USAGE;
	int st = kv_open(k, false);
	if (st)
		return st;
	strata_snapshot *snap;
	int rc = strata_snapshot_open(k->s, &snap);
	const void *v;
	size_t vl;
	if (rc == 0 && (rc = strata_bpt_get(snap, k->pos[1], k->pos[2], kl, &v, &vl)) == 0) {
		kv_escape(stdout, v, vl);
		putchar('\n');
	}
	strata_snapshot_close(snap);
	return kv_close(k, rc ? kv_fail(k, k->pos[1], rc) : CLI_OK);
}

static int sub_del(kv_cmd *k)
{
	size_t kl;
	if (!arg_bytes(k, k->pos[2], &kl))
		return CLI_USAGE;
	int st = kv_open(k, false);
	if (st)
		return st;
	const char *name = k->pos[1];
	strata_txn *t;
	int rc = strata_txn_begin(k->s, &name, 1, 0, &t);
	if (rc == 0 && (rc = strata_bpt_del(t, name, k->pos[2], kl)))
		strata_txn_abort(t);
	else if (rc == 0)
		rc = strata_txn_commit(t, NULL);
	return kv_close(k, rc ? kv_fail(k, name, rc) : CLI_OK);
}

static void print_stats(const strata_bpt_stats *st)
{
	printf("keys          %" PRIu64 "\n", st->count);
	printf("height        %u\n", st->height);
	printf("node size     %u (key max %u)\n", st->node_size, st->key_max);
	printf("nodes         %" PRIu64 " branch, %" PRIu64 " leaf, %" PRIu64 " overflow\n",
	       st->branch_nodes, st->leaf_nodes, st->overflow_nodes);
	printf("bytes         %" PRIu64 " (keys %" PRIu64 ", values %" PRIu64
	       ", separators %" PRIu64 ")\n",
	       st->bytes, st->key_bytes, st->value_bytes, st->separator_bytes);
	printf("fill          leaves %.1f%%, branches %.1f%%\n", st->leaf_fill * 100,
	       st->branch_fill * 100);
}

static int sub_stats(kv_cmd *k)
{
	int st = kv_open(k, false);
	if (st)
		return st;
	strata_snapshot *snap;
	strata_bpt_stats bs;
	int rc = strata_snapshot_open(k->s, &snap);
	if (rc == 0 && (rc = strata_bpt_stats_get(snap, k->pos[1], &bs)) == 0)
		print_stats(&bs);
	strata_snapshot_close(snap);
	return kv_close(k, rc ? kv_fail(k, k->pos[1], rc) : CLI_OK);
}

/* ---- scan --------------------------------------------------------------------- */

/* Prints key<TAB>value for keys in [from, to), at most limit of them. */
static int scan_range(strata_bpt_cursor *c, const char *from, size_t fromlen, const char *to,
		      size_t tolen, uint64_t limit, FILE *out)
{
	int rc = from ? strata_bpt_cursor_seek(c, from, fromlen) : strata_bpt_cursor_first(c);
	for (uint64_t n = 0; rc == 0 && n < limit; n++, rc = strata_bpt_cursor_next(c)) {
		const void *key, *v;
		size_t kl, vl;
		if ((rc = strata_bpt_cursor_get(c, &key, &kl, &v, &vl)))
			return rc;
		if (to) {
			int cmp = memcmp(key, to, kl < tolen ? kl : tolen);
			if (cmp > 0 || (cmp == 0 && kl >= tolen))
				break;
		}
		kv_escape(out, key, kl);
		fputc('\t', out);
		kv_escape(out, v, vl);
		fputc('\n', out);
	}
	return rc == STRATA_ENOTFOUND ? 0 : rc;
}

static int sub_scan(kv_cmd *k)
{
	int st = kv_open(k, false);
	if (st)
		return st;
	strata_snapshot *snap;
	strata_bpt_cursor *c = NULL;
	int rc = strata_snapshot_open(k->s, &snap);
	if (rc == 0 && (rc = strata_bpt_cursor_open(snap, k->pos[1], &c)) == 0)
		rc = scan_range(c, k->from, k->fromlen, k->to, k->tolen, k->limit, stdout);
	strata_bpt_cursor_close(c);
	strata_snapshot_close(snap);
	return kv_close(k, rc ? kv_fail(k, k->pos[1], rc) : CLI_OK);
}

/* ---- load --------------------------------------------------------------------- */

typedef struct tsv {
	FILE *f;
	char *line;
	size_t cap;
	uint64_t lines;
	uint64_t bad_line; /* line number of a malformed line, 0 if none */
	kv_progress prog;
} tsv;

/* Next `key<TAB>value` line, unescaped in place. 1, 0 at the end, or
 * STRATA_EINVAL with t->bad_line set. */
static int tsv_next(tsv *t, char **key, size_t *kl, char **val, size_t *vl)
{
	long n = kv_getline(t->f, &t->line, &t->cap);
	if (n < 0)
		return 0;
	t->lines++;
	kv_progress_update(&t->prog, t->lines, t->f);
	char *tab = memchr(t->line, '\t', (size_t)n);
	if (!tab || !kv_unescape(t->line, (size_t)(tab - t->line), kl) ||
	    !kv_unescape(tab + 1, (size_t)(t->line + n - tab - 1), vl)) {
		t->bad_line = t->lines;
		return STRATA_EINVAL;
	}
	*key = t->line;
	*val = tab + 1;
	return 1;
}

static int tsv_source(void *ctx, const void **key, size_t *kl, const void **val, size_t *vl)
{
	char *k = NULL, *v = NULL; /* -O3 cannot see tsv_next sets them when it returns 1 */
	int rc = tsv_next(ctx, &k, kl, &v, vl);
	*key = k;
	*val = v;
	return rc;
}

/* Puts every line, KV_BATCH per transaction. */
static int load_puts(kv_cmd *k, tsv *t)
{
	for (;;) {
		strata_txn *txn;
		int rc = kv_begin(k, &txn), got = 1;
		if (rc)
			return rc;
		for (int i = 0; i < KV_BATCH; i++) {
			char *key, *v;
			size_t kl, vl;
			if ((got = tsv_next(t, &key, &kl, &v, &vl)) <= 0)
				break;
			if ((rc = strata_bpt_put(txn, k->pos[1], key, kl, v, vl, 0)))
				break;
		}
		if (got < 0 || rc) {
			strata_txn_abort(txn);
			return got < 0 ? got : rc;
		}
		if ((rc = strata_txn_commit(txn, NULL)) || got == 0)
			return rc;
	}
}

/* Bulk load when the tree is empty; *bulk says whether it did. */
static int load_bulk(kv_cmd *k, tsv *t, bool *bulk)
{
	strata_txn *txn;
	strata_bpt_cursor *c;
	int rc = kv_begin(k, &txn);
	if (rc)
		return rc;
	if ((rc = strata_bpt_txn_cursor_open(txn, k->pos[1], &c)) == 0) {
		rc = strata_bpt_cursor_first(c);
		strata_bpt_cursor_close(c);
	}
	*bulk = rc == STRATA_ENOTFOUND;
	if (!*bulk) {
		strata_txn_abort(txn);
		return rc;
	}
	if ((rc = strata_bpt_load(txn, k->pos[1], tsv_source, t))) {
		strata_txn_abort(txn);
		return rc;
	}
	return strata_txn_commit(txn, NULL);
}

static int sub_load(kv_cmd *k)
{
	tsv t = {.f = fopen(k->pos[2], "r")};
	if (!t.f) {
		fprintf(stderr, "strata kv load: %s: %s\n", k->pos[2], strerror(errno));
		return CLI_FAIL;
	}
	int st = kv_open(k, true);
	if (st) {
		fclose(t.f);
		return st;
	}
	kv_progress_start(&t.prog, "loading", t.f);
	bool bulk = false;
	int rc = load_bulk(k, &t, &bulk);
	if (rc == STRATA_EINVAL && !t.bad_line && bulk) {
		/* Not sorted: the tree is still empty; put line by line. */
		fprintf(stderr, "strata kv load: input not sorted; loading with puts\n");
		rewind(t.f);
		t.lines = 0;
		bulk = false;
		rc = load_puts(k, &t);
	} else if (rc == 0 && !bulk) {
		rc = load_puts(k, &t);
	}
	kv_progress_end(&t.prog, t.lines);
	if (t.bad_line)
		fprintf(stderr, "strata kv load: %s:%" PRIu64 ": not `key<TAB>value` (escaped)\n",
			k->pos[2], t.bad_line);
	else if (rc == 0)
		printf("loaded %" PRIu64 " entries (%s)\n", t.lines, bulk ? "bulk" : "puts");
	free(t.line);
	fclose(t.f);
	return kv_close(k, rc ? kv_fail(k, k->pos[1], rc) : CLI_OK);
}

/* ---- batch -------------------------------------------------------------------- */

/* Splits "OP A [B]" : *a is the first word, *b the rest of the line (may
 * hold spaces); both unescaped. False on a bad escape. */
static bool batch_args(char *rest, char **a, size_t *al, char **b, size_t *bl)
{
	char *sp = strchr(rest, ' ');
	*a = rest;
	*b = sp ? sp + 1 : rest + strlen(rest);
	if (sp)
		*sp = '\0';
	return kv_unescape(*a, strlen(*a), al) && kv_unescape(*b, strlen(*b), bl);
}

static int batch_line(kv_cmd *k, strata_txn **t, char *line)
{
	const char *name = k->pos[1];
	char op = line[0], *a, *b;
	size_t al, bl;
	const void *v;
	size_t vl;
	if (op == 'c' && line[1] == '\0') {
		int rc = strata_txn_commit(*t, NULL);
		*t = NULL;
		return rc ? rc : kv_begin(k, t);
	}
	if (!op || line[1] != ' ' || !batch_args(line + 2, &a, &al, &b, &bl))
		return STRATA_EINVAL;
	switch (op) {
	case 'p':
		return strata_bpt_put(*t, name, a, al, b, bl, 0);
	case 'd':
		return strata_bpt_del(*t, name, a, al);
	case 'g': {
		int rc = strata_bpt_txn_get(*t, name, a, al, &v, &vl);
		if (rc == STRATA_ENOTFOUND) {
			printf("# not found: ");
			kv_escape(stdout, a, al);
			putchar('\n');
			return 0;
		}
		if (rc == 0) {
			kv_escape(stdout, a, al);
			putchar('\t');
			kv_escape(stdout, v, vl);
			putchar('\n');
		}
		return rc;
	}
	case 's': {
		strata_bpt_cursor *c;
		int rc = strata_bpt_txn_cursor_open(*t, name, &c);
		if (rc == 0)
			rc = scan_range(c, a, al, bl ? b : NULL, bl, UINT64_MAX, stdout);
		strata_bpt_cursor_close(c);
		return rc;
	}
	default:
		return STRATA_EINVAL;
	}
}

static int sub_batch(kv_cmd *k)
{
	FILE *f = fopen(k->pos[2], "r");
	if (!f) {
		fprintf(stderr, "strata kv batch: %s: %s\n", k->pos[2], strerror(errno));
		return CLI_FAIL;
	}
	int st = kv_open(k, true);
	strata_txn *t = NULL;
	char *line = NULL;
	size_t cap = 0;
	uint64_t n = 0;
	int rc = st ? 0 : kv_begin(k, &t);
	while (!st && rc == 0 && kv_getline(f, &line, &cap) >= 0) {
		n++;
		if (line[0] == '\0' || line[0] == '#')
			continue;
		if ((rc = batch_line(k, &t, line)))
			fprintf(stderr, "strata kv batch: %s:%" PRIu64 ": %s\n", k->pos[2], n,
				rc == STRATA_EINVAL ? "bad line (want `p K V`, `d K`, `g K`, "
						      "`s FROM TO` or `c`)"
						    : strata_strerror(rc));
	}
	if (t && rc == 0)
		rc = strata_txn_commit(t, NULL);
	else if (t)
		strata_txn_abort(t);
	free(line);
	fclose(f);
	if (st)
		return st;
	return kv_close(k, rc ? CLI_FAIL : CLI_OK);
}

/* ---- dispatch ----------------------------------------------------------------- */

typedef struct kv_sub {
	const char *name;
	int npos;          /* positional arguments after SUB */
	bool range_opts;   /* --from/--to/--limit */
	bool create_opts;  /* --node-size */
	int (*run)(kv_cmd *k);
} kv_sub;

static const kv_sub kv_subs[] = {
	{"put", 4, false, true, sub_put},    {"get", 3, false, false, sub_get},
	{"del", 3, false, false, sub_del},   {"scan", 2, true, false, sub_scan},
	{"load", 3, false, true, sub_load},  {"batch", 3, false, true, sub_batch},
	{"stats", 2, false, false, sub_stats}, {NULL, 0, false, false, NULL},
};

static bool parse_u64(const char *s, uint64_t *v)
{
	char *end;
	errno = 0;
	unsigned long long x = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-')
		return false;
	*v = x;
	return true;
}

/* One option at argv[*i]; CLI_OK or a usage error. */
static int parse_opt(kv_cmd *k, const kv_sub *sub, int argc, char **argv, int *i)
{
	const char *o = argv[*i];
	if (strcmp(o, "--in-memory") == 0) {
		k->in_memory = true;
		return CLI_OK;
	}
	bool range = !strcmp(o, "--from") || !strcmp(o, "--to") || !strcmp(o, "--limit");
	bool create = !strcmp(o, "--node-size");
	if ((range && !sub->range_opts) || (create && !sub->create_opts) || (!range && !create))
		return cli_usage_error(k->self, "unknown option '%s' for kv %s", o, sub->name);
	if (++*i == argc)
		return cli_usage_error(k->self, "%s needs a value", o);
	char *v = argv[*i];
	uint64_t x;
	if (!strcmp(o, "--from") && kv_unescape(v, strlen(v), &k->fromlen))
		k->from = v;
	else if (!strcmp(o, "--to") && kv_unescape(v, strlen(v), &k->tolen))
		k->to = v;
	else if (!strcmp(o, "--limit") && parse_u64(v, &x))
		k->limit = x;
	else if (create && parse_u64(v, &x) && x >= STRATA_BPT_NODE_MIN && x <= STRATA_BPT_NODE_MAX)
		k->node_size = (uint32_t)x;
	else
		return cli_usage_error(k->self, "bad value '%s' for %s", v, o);
	return CLI_OK;
}

int cmd_kv(int argc, char **argv)
{
	kv_cmd k = {.self = cli_find("kv"), .limit = UINT64_MAX};
	if (argc < 2)
		return cli_usage_error(k.self, "missing SUBCOMMAND");
	const kv_sub *sub = kv_subs;
	while (sub->name && strcmp(sub->name, argv[1]))
		sub++;
	if (!sub->name)
		return cli_usage_error(k.self, "unknown subcommand '%s'", argv[1]);
	k.sub = sub->name;
	for (int i = 2; i < argc; i++) {
		if (argv[i][0] == '-' && argv[i][1] == '-') {
			int rc = parse_opt(&k, sub, argc, argv, &i);
			if (rc)
				return rc;
		} else if (k.npos == sub->npos) {
			return cli_usage_error(k.self, "too many arguments for kv %s", sub->name);
		} else {
			k.pos[k.npos++] = argv[i];
		}
	}
	if (k.npos < sub->npos)
		return cli_usage_error(k.self, "kv %s needs %d arguments", sub->name, sub->npos);
	if (k.pos[1][0] == '\0')
		return cli_usage_error(k.self, "empty tree NAME");
	return sub->run(&k);
}
