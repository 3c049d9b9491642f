/*
 * cmd_xt.c — `strata xt SUB ...`: the X-tree from the shell.
 *
 *   create DIR NAME --dims D [--node-size N]
 *   load   DIR NAME FILE.csv      rows id,min1..minD,max1..maxD or id,x1..xD;
 *                                 bulk (STR) when the tree is empty
 *   query  DIR NAME --box min1,..,minD,max1,..,maxD [--contains|--within]
 *   knn    DIR NAME --point x1,..,xD -k K [--metric l2|l1|linf]
 *   batch  DIR NAME FILE          i/d/q/k/c lines (see the help text)
 *   stats  DIR NAME
 *   draw   DIR NAME --svg OUT.svg (2-D)
 *
 * Output is for scripts: query prints ids ascending, one per line; knn
 * prints `id distance` nearest first. DIR is a DURABLE store (created by
 * create, load and batch); --in-memory uses a fresh in-process store
 * instead (create, load and batch; nothing is kept).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "strata/xtree.h"
#include "xt.h"

typedef struct xids {
	uint64_t *v;
	size_t n, cap;
} xids;

static const cli_command *self(void)
{
	return cli_find("xt");
}

/* ---- parsing ------------------------------------------------------------------ */
static bool parse_u32(const char *s, uint32_t *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > UINT32_MAX || s[0] == '-')
		return false;
	*out = (uint32_t)v;
	return true;
}

/* Up to max doubles separated by `sep` (or blanks when sep is ' '). */
int xt_parse_doubles(const char *s, char sep, double *out, int max)
{
	int n = 0;
	while (*s) {
		while (sep == ' ' && (*s == ' ' || *s == '\t'))
			s++;
		if (!*s || *s == '\n' || *s == '\r')
			break;
		char *end;
		double v = strtod(s, &end);
		if (end == s || n == max)
			return -1;
		out[n++] = v;
		s = end;
		if (sep != ' ' && *s == sep)
			s++;
		else if (sep != ' ' && *s && *s != '\n' && *s != '\r')
			return -1;
	}
	return n;
}

static int parse_opt(xargs *a, int argc, char **argv, int *i)
{
	const char *o = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
	bool takes = strcmp(o, "--dims") == 0 || strcmp(o, "--node-size") == 0 ||
		     strcmp(o, "--box") == 0 || strcmp(o, "--point") == 0 || strcmp(o, "-k") == 0 ||
		     strcmp(o, "--metric") == 0 || strcmp(o, "--svg") == 0;
	if (takes && !v)
		return cli_usage_error(self(), "%s needs a value", o);
	if (takes)
		(*i)++;
	if (strcmp(o, "--dims") == 0 && !parse_u32(v, &a->dims))
		return cli_usage_error(self(), "bad --dims: %s", v);
	if (strcmp(o, "--node-size") == 0 && !parse_u32(v, &a->node_size))
		return cli_usage_error(self(), "bad --node-size: %s", v);
	if (strcmp(o, "-k") == 0 && !parse_u32(v, &a->k))
		return cli_usage_error(self(), "bad -k: %s", v);
	if (strcmp(o, "--box") == 0)
		a->box = v;
	else if (strcmp(o, "--point") == 0)
		a->point = v;
	else if (strcmp(o, "--metric") == 0)
		a->metric = v;
	else if (strcmp(o, "--svg") == 0)
		a->svg = v;
	else if (strcmp(o, "--contains") == 0)
		a->pred = STRATA_XT_CONTAINS;
	else if (strcmp(o, "--within") == 0)
		a->pred = STRATA_XT_WITHIN;
	else if (strcmp(o, "--in-memory") == 0)
		a->in_memory = true;
	else if (!takes)
		return cli_usage_error(self(), "unknown option %s", o);
	return CLI_OK;
}

static int parse_args(xargs *a, int argc, char **argv)
{
	memset(a, 0, sizeof *a);
	const char *pos[4] = {0};
	int np = 0;
	for (int i = 1; i < argc; i++) {
		if (argv[i][0] == '-' && argv[i][1] && (argv[i][1] < '0' || argv[i][1] > '9')) {
			int rc = parse_opt(a, argc, argv, &i);
			if (rc)
				return rc;
		} else if (np < 4) {
			pos[np++] = argv[i];
		} else {
			return cli_usage_error(self(), "extra argument %s", argv[i]);
		}
	}
	a->sub = pos[0];
	bool has_file = a->sub && (!strcmp(a->sub, "load") || !strcmp(a->sub, "batch"));
	int want = a->in_memory ? (has_file ? 2 : 1) : (has_file ? 4 : 3);
	if (!a->sub)
		return cli_usage_error(self(), "missing subcommand");
	if (np != want)
		return cli_usage_error(self(), "xt %s: expected %d arguments, got %d", a->sub,
				       want - 1, np - 1);
	int j = 1;
	a->dir = a->in_memory ? NULL : pos[j++];
	a->name = a->in_memory ? "xt" : pos[j++];
	a->file = has_file ? pos[j] : NULL;
	return CLI_OK;
}

/* ---- the store ------------------------------------------------------------------ */
int xt_fail(const xargs *a, const char *what, int rc)
{
	fprintf(stderr, "strata xt %s: %s: %s\n", a->sub, what, strata_strerror(rc));
	return CLI_FAIL;
}

static int open_store(const xargs *a, bool create, strata_store **s)
{
	strata_options o;
	strata_options_init(&o);
	if (!a->in_memory) {
		o.mode = STRATA_DURABLE;
		o.path = a->dir;
		o.flags = create ? STRATA_OPEN_CREATE : 0;
		o.durability = STRATA_ASYNC; /* close syncs; a tool run is one unit */
	}
	int rc = strata_open(&o, s);
	if (rc) {
		fprintf(stderr, "strata xt %s: %s: cannot open the store: %s\n", a->sub,
			a->dir ? a->dir : "(memory)", strata_strerror(rc));
		return CLI_FAIL;
	}
	return CLI_OK;
}

static int close_store(const xargs *a, strata_store *s, int status)
{
	int rc = strata_close(s);
	return rc ? xt_fail(a, "close", rc) : status;
}

/* Creates the tree if the root is empty (dims must be known then). */
int xt_ensure_tree(const xargs *a, strata_store *s, uint32_t dims, bool must_be_new)
{
	strata_txn *t;
	int rc = strata_txn_begin(s, &a->name, 1, 0, &t);
	if (rc)
		return xt_fail(a, "begin", rc);
	strata_xt_options o = {.node_size = a->node_size};
	rc = strata_xt_create(t, a->name, dims, &o);
	if (rc == STRATA_EEXIST && !must_be_new) {
		strata_txn_abort(t);
		return CLI_OK;
	}
	if (rc) {
		strata_txn_abort(t);
		return xt_fail(a, a->name, rc);
	}
	rc = strata_txn_commit(t, NULL);
	return rc ? xt_fail(a, "commit", rc) : CLI_OK;
}

static int tree_dims(const xargs *a, strata_store *s, uint32_t *dims)
{
	strata_snapshot *snap;
	int rc = strata_snapshot_open(s, &snap);
	if (!rc) {
		rc = strata_xt_dims(snap, a->name, dims);
		strata_snapshot_close(snap);
	}
	return rc ? xt_fail(a, a->name, rc) : CLI_OK;
}

/* ---- queries ---------------------------------------------------------------------- */
/* strata_xt_ids_fn: the hits come in blocks of ids (the boxes are not
 * printed, so the per-hit form's box gathering would be wasted). */
static int collect(void *ctx, const uint64_t *ids, size_t n)
{
	xids *x = ctx;
	if (x->n + n > x->cap) {
		size_t cap = x->cap ? 2 * x->cap : 1024;
		while (cap < x->n + n)
			cap *= 2;
		uint64_t *v = realloc(x->v, cap * sizeof *v);
		if (!v)
			return STRATA_ENOMEM;
		x->v = v;
		x->cap = cap;
	}
	memcpy(x->v + x->n, ids, n * sizeof *ids);
	x->n += n;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int print_knn(void *ctx, uint64_t id, double dist, const double *lo, const double *hi)
{
	(void)ctx, (void)lo, (void)hi;
	printf("%" PRIu64 " %.17g\n", id, dist);
	return 0;
}

/* Window query: box holds 2*dims values, or dims for a point. */
int xt_run_query(const xargs *a, const strata_xt_handle *h, uint32_t d, const double *box, int n,
		 strata_xt_pred pred)
{
	if (n != (int)d && n != 2 * (int)d) {
		fprintf(stderr, "strata xt %s: a box needs %u or %u coordinates, got %d\n", a->sub,
			2 * d, d, n);
		return CLI_FAIL;
	}
	xids x = {0};
	int rc = strata_xt_handle_query_ids(h, d, pred, box, n == (int)d ? NULL : box + d, collect,
					    &x);
	if (rc) {
		free(x.v);
		return xt_fail(a, "query", rc);
	}
	if (x.n) /* qsort(NULL, 0, ...) is undefined */
		qsort(x.v, x.n, sizeof *x.v, cmp_u64);
	for (size_t i = 0; i < x.n; i++)
		printf("%" PRIu64 "\n", x.v[i]);
	free(x.v);
	return CLI_OK;
}

int xt_run_knn(const xargs *a, const strata_xt_handle *h, uint32_t d, const double *pt, int n,
	       uint32_t k, strata_xt_metric mt)
{
	if (n != (int)d) {
		fprintf(stderr, "strata xt %s: a point needs %u coordinates, got %d\n", a->sub, d, n);
		return CLI_FAIL;
	}
	int rc = strata_xt_handle_knn(h, d, pt, k, mt, print_knn, NULL);
	return rc ? xt_fail(a, "knn", rc) : CLI_OK;
}

static bool parse_metric(const char *s, strata_xt_metric *mt)
{
	if (!s || !strcmp(s, "l2"))
		*mt = STRATA_XT_L2;
	else if (!strcmp(s, "l1"))
		*mt = STRATA_XT_L1;
	else if (!strcmp(s, "linf"))
		*mt = STRATA_XT_LINF;
	else
		return false;
	return true;
}

/* query, knn, stats and draw: on one snapshot of an existing store. */
typedef int (*reader_fn)(const xargs *a, const strata_snapshot *snap, uint32_t dims);

static int with_snapshot(const xargs *a, reader_fn fn)
{
	strata_store *s;
	uint32_t d;
	int st = open_store(a, false, &s);
	if (st)
		return st;
	if ((st = tree_dims(a, s, &d)))
		return close_store(a, s, st);
	strata_snapshot *snap;
	int rc = strata_snapshot_open(s, &snap);
	if (rc)
		return close_store(a, s, xt_fail(a, "snapshot", rc));
	st = fn(a, snap, d);
	strata_snapshot_close(snap);
	return close_store(a, s, st);
}

static int do_query(const xargs *a, const strata_snapshot *snap, uint32_t d)
{
	double box[2 * XT_MAXD];
	int n = xt_parse_doubles(a->box, ',', box, 2 * XT_MAXD);
	strata_xt_handle *h;
	int rc = strata_xt_handle_open(snap, a->name, &h);
	if (rc)
		return xt_fail(a, a->name, rc);
	int st = xt_run_query(a, h, d, box, n, a->pred);
	strata_xt_handle_close(h);
	return st;
}

static int do_knn(const xargs *a, const strata_snapshot *snap, uint32_t d)
{
	double pt[XT_MAXD];
	strata_xt_metric mt = STRATA_XT_L2;
	parse_metric(a->metric, &mt);
	int n = xt_parse_doubles(a->point, ',', pt, XT_MAXD);
	strata_xt_handle *h;
	int rc = strata_xt_handle_open(snap, a->name, &h);
	if (rc)
		return xt_fail(a, a->name, rc);
	int st = xt_run_knn(a, h, d, pt, n, a->k, mt);
	strata_xt_handle_close(h);
	return st;
}

static int do_stats(const xargs *a, const strata_snapshot *snap, uint32_t d)
{
	strata_xt_stats st;
	int rc = strata_xt_stats_get(snap, a->name, &st);
	if (rc)
		return xt_fail(a, a->name, rc);
	printf("dims: %u\nentries: %" PRIu64 "\nheight: %u\n", d, st.count, st.height);
	printf("node size: %u bytes (leaf %u entries, directory %u)\n", st.node_size,
	       st.leaf_capacity, st.dir_capacity);
	printf("nodes: %" PRIu64 " (%" PRIu64 " bytes)\n", st.nodes, st.bytes);
	for (uint32_t l = st.height; l-- > 0;)
		printf("  level %u: %" PRIu64 " nodes\n", l, st.nodes_per_level[l]);
	printf("supernodes: %" PRIu64 " (%" PRIu64 " blocks, largest %u)\n", st.supernodes,
	       st.supernode_blocks, st.supernode_max_blocks);
	printf("fill: leaves %.1f%%, directory %.1f%%\n", 100 * st.leaf_fill, 100 * st.dir_fill);
	printf("overlap: %.4f\n", st.overlap);
	return CLI_OK;
}

/* ---- draw ------------------------------------------------------------------------------ */
typedef struct draw {
	FILE *f;
	double x0, y0, sx, sy;
	uint32_t height;
	bool bounds; /* first pass: only the root's box */
} draw;

static int draw_node(void *ctx, uint32_t level, uint32_t blocks, uint32_t count,
		     const double *lo, const double *hi)
{
	(void)count;
	draw *w = ctx;
	if (w->bounds) {
		double dx = hi[0] - lo[0], dy = hi[1] - lo[1];
		w->x0 = lo[0], w->y0 = lo[1];
		w->sx = 1000 / (dx > 0 ? dx : 1), w->sy = 1000 / (dy > 0 ? dy : 1);
		return 1;
	}
	static const char *colour[] = {"#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};
	fprintf(w->f,
		"<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"none\" "
		"stroke=\"%s\" stroke-width=\"%s\"/>\n",
		10 + (lo[0] - w->x0) * w->sx, 10 + 1000 - (hi[1] - w->y0) * w->sy,
		(hi[0] - lo[0]) * w->sx, (hi[1] - lo[1]) * w->sy, blocks > 1 ? "#d62728" : colour[level % 5],
		blocks > 1 ? "3" : level ? "1.2" : "0.4");
	return 0;
}

static int do_draw(const xargs *a, const strata_snapshot *snap, uint32_t d)
{
	if (d != 2) {
		fprintf(stderr, "strata xt draw: the tree has %u dimensions; draw needs 2\n", d);
		return CLI_FAIL;
	}
	draw w = {.bounds = true};
	int rc = strata_xt_nodes(snap, a->name, draw_node, &w);
	if (rc < 0)
		return xt_fail(a, a->name, rc);
	if (!(w.f = fopen(a->svg, "w"))) {
		fprintf(stderr, "strata xt draw: %s: %s\n", a->svg, strerror(errno));
		return CLI_FAIL;
	}
	fprintf(w.f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"1020\" height=\"1020\">\n"
		     "<!-- X-tree MBRs: colour by level, supernodes thick red -->\n");
	w.bounds = false;
	rc = strata_xt_nodes(snap, a->name, draw_node, &w);
	fprintf(w.f, "</svg>\n");
	if (fclose(w.f) || rc)
		return xt_fail(a, a->svg, rc ? rc : -errno);
	printf("wrote %s\n", a->svg);
	return CLI_OK;
}

/* create, load and batch: may create the store (and, for load and batch,
 * the tree, with dims from the first row). */
static int with_writer(const xargs *a)
{
	strata_store *s;
	int st = open_store(a, true, &s);
	if (st)
		return st;
	if (!strcmp(a->sub, "create")) {
		st = xt_ensure_tree(a, s, a->dims, true);
		if (!st)
			printf("created %s: %u dimensions\n", a->name, a->dims);
	} else if (!strcmp(a->sub, "load")) {
		st = xt_cmd_load(a, s);
	} else {
		st = xt_cmd_batch(a, s);
	}
	return close_store(a, s, st);
}

int cmd_xt(int argc, char **argv)
{
	xargs a;
	int st = parse_args(&a, argc, argv);
	if (st)
		return st;
	strata_xt_metric mt = STRATA_XT_L2;
	if (!parse_metric(a.metric, &mt))
		return cli_usage_error(self(), "bad --metric %s (l2, l1 or linf)", a.metric);
	bool mem_ok = !strcmp(a.sub, "create") || !strcmp(a.sub, "load") || !strcmp(a.sub, "batch");
	if (a.in_memory && !mem_ok)
		return cli_usage_error(self(), "xt %s: --in-memory has nothing to read", a.sub);
	if (!strcmp(a.sub, "create")) {
		if (a.dims < 1 || a.dims > XT_MAXD)
			return cli_usage_error(self(), "xt create needs --dims 1..32");
		return with_writer(&a);
	}
	if (!strcmp(a.sub, "load") || !strcmp(a.sub, "batch"))
		return with_writer(&a);
	if (!strcmp(a.sub, "query")) {
		if (!a.box)
			return cli_usage_error(self(), "xt query needs --box");
		return with_snapshot(&a, do_query);
	}
	if (!strcmp(a.sub, "knn")) {
		if (!a.point || !a.k)
			return cli_usage_error(self(), "xt knn needs --point and -k K (K >= 1)");
		return with_snapshot(&a, do_knn);
	}
	if (!strcmp(a.sub, "stats"))
		return with_snapshot(&a, do_stats);
	if (!strcmp(a.sub, "draw")) {
		if (!a.svg)
			return cli_usage_error(self(), "xt draw needs --svg OUT.svg");
		return with_snapshot(&a, do_draw);
	}
	return cli_usage_error(self(), "unknown xt subcommand %s", a.sub);
}
