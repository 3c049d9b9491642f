/*
 * cmd_demo.c — `strata demo [DIR]`: an end-to-end tour of what the
 * substrate does today, for a person to read. Each step is one short
 * function; a step that fails prints strata_strerror() and the command
 * exits 1. Everything printed also goes to DIR/demo-report.txt.
 *
 * The store is DURABLE, in DIR/store, made afresh by each run (the files of
 * the previous run's store are removed first; nothing else in DIR is
 * touched). The last step closes it and opens it again: what was
 * committed is recovered from the files.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "demo.h"
#include "kv.h"
#include "xt.h"

#define DEMO_DEFAULT_DIR "./strata-demo"
#define DEMO_REPORT "demo-report.txt"

typedef struct demo {
	cli_out out;
	const char *dir;
	char store_dir[PATH_MAX];
	unsigned step;
	strata_store *store;
	strata_snapshot *snap_a; /* opened right after the list was built */
	strata_snapshot *snap_b; /* opened after the updates */
	strata_node_id first_alpha; /* alpha as first committed; replaced later */
} demo;

static const char *const names[] = {"alpha", "beta", "gamma", "delta", "epsilon"};
static const uint32_t built[] = {10, 20, 30, 40, 50};
static const char *const names_after[] = {"alpha", "gamma", "delta", "epsilon"};
static const uint32_t values_after[] = {10, 300, 40, 50};
#define N_BUILT (sizeof built / sizeof built[0])
#define N_AFTER (sizeof values_after / sizeof values_after[0])

/* Every failure goes through here: stderr for the person, and the report
 * too so a saved report never looks like a success. Returns rc (< 0). */
static int demo_fail(demo *d, const char *what, int rc)
{
	fprintf(stderr, "strata demo: %s: %s\n", what, strata_strerror(rc));
	if (d->out.file)
		fprintf(d->out.file, "FAILED: %s: %s\n", what, strata_strerror(rc));
	return rc;
}

/* For results that are well-formed but not what the substrate promises. */
static int demo_unexpected(demo *d, const char *what, int got)
{
	fprintf(stderr, "strata demo: %s: unexpected result: %s\n", what, strata_strerror(got));
	if (d->out.file)
		fprintf(d->out.file, "FAILED: %s: unexpected result: %s\n", what,
			strata_strerror(got));
	return STRATA_ECORRUPT;
}

static void heading(demo *d, const char *title)
{
	cli_printf(&d->out, "\n%u. %s\n", ++d->step, title);
}

/* ---- steps ---------------------------------------------------------------- */

/* Removes the previous run's store files from DIR/store: only names a
 * Strata store uses (LOCK, SUPER, SUPER.new, data, ckpt.*, wal.*). */
static void remove_old_store(const char *dir)
{
	DIR *dh = opendir(dir);
	if (!dh)
		return;
	for (struct dirent *e; (e = readdir(dh));) {
		const char *n = e->d_name;
		if (strcmp(n, "LOCK") && strcmp(n, "SUPER") && strcmp(n, "SUPER.new") &&
		    strcmp(n, "data") && strncmp(n, "ckpt.", 5) && strncmp(n, "wal.", 4))
			continue;
		char path[PATH_MAX];
		if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, n) < sizeof path)
			unlink(path);
	}
	closedir(dh);
}

static int open_durable(demo *d, unsigned flags)
{
	strata_options o;
	strata_options_init(&o);
	o.mode = STRATA_DURABLE;
	o.path = d->store_dir;
	o.flags = flags;
	return strata_open(&o, &d->store);
}

static int step_open(demo *d)
{
	heading(d, "Open a store");
	if ((size_t)snprintf(d->store_dir, sizeof d->store_dir, "%s/store", d->dir) >=
	    sizeof d->store_dir)
		return demo_fail(d, d->dir, -ENAMETOOLONG);
	remove_old_store(d->store_dir);
	int rc = open_durable(d, STRATA_OPEN_CREATE);
	if (rc)
		return demo_fail(d, "strata_open (DURABLE)", rc);
	cli_printf(&d->out,
		   "    Created a DURABLE mode store in %s (empty, epoch 1).\n"
		   "    Every commit below is SYNC: acknowledged once its WAL frames are on\n"
		   "    stable storage, and visible only then.\n",
		   d->store_dir);
	return 0;
}

static int step_build(demo *d)
{
	heading(d, "Build a linked list in one transaction");
	const char *roots[] = {DEMO_ROOT};
	strata_txn *t;
	strata_node_id head;
	uint64_t epoch;
	int rc = strata_txn_begin(d->store, roots, 1, 0, &t);
	if (rc)
		return demo_fail(d, "strata_txn_begin", rc);
	if ((rc = list_build(t, names, built, N_BUILT, &head)) ||
	    (rc = strata_txn_set_root(t, DEMO_ROOT, head))) {
		strata_txn_abort(t);
		return demo_fail(d, "building the list", rc);
	}
	if ((rc = strata_txn_commit(t, &epoch)))
		return demo_fail(d, "strata_txn_commit", rc);
	cli_printf(&d->out,
		   "    Allocated %zu nodes, each pointing at the next by NodeID, and named the\n"
		   "    first one as root '%s'. Committed as epoch %" PRIu64 ".\n",
		   N_BUILT, DEMO_ROOT, epoch);
	d->first_alpha = head;
	return 0;
}

static int step_snapshot_a(demo *d)
{
	heading(d, "Open snapshot A");
	demo_list l;
	int rc = strata_snapshot_open(d->store, &d->snap_a);
	if (rc)
		return demo_fail(d, "strata_snapshot_open", rc);
	if ((rc = list_read_snapshot(d->snap_a, &l)))
		return demo_fail(d, "reading the list through snapshot A", rc);
	if (!list_equals(&l, names, built, N_BUILT))
		return demo_unexpected(d, "snapshot A's list", STRATA_ECORRUPT);
	char label[64];
	snprintf(label, sizeof label, "snapshot A (epoch %" PRIu64 ")", strata_snapshot_epoch(d->snap_a));
	list_print(&d->out, label, &l);
	return 0;
}

/* Runs `edit` in a transaction on the list root and commits. */
static int list_txn(demo *d, int (*edit)(strata_txn *, const demo_list *, strata_node_id *),
		    uint64_t *epoch)
{
	const char *roots[] = {DEMO_ROOT};
	strata_txn *t;
	demo_list l;
	strata_node_id head;
	int rc = strata_txn_begin(d->store, roots, 1, 0, &t);
	if (rc)
		return rc;
	if ((rc = list_read_txn(t, &l)) || (rc = edit(t, &l, &head)) ||
	    (rc = strata_txn_set_root(t, DEMO_ROOT, head))) {
		strata_txn_abort(t);
		return rc;
	}
	return strata_txn_commit(t, epoch);
}

static int edit_gamma(strata_txn *t, const demo_list *l, strata_node_id *head)
{
	demo_item gamma = l->items[2];
	gamma.value = 300;
	return list_cow_path(t, l, 2, &gamma, head);
}

static int edit_unlink_beta(strata_txn *t, const demo_list *l, strata_node_id *head)
{
	demo_item alpha = l->items[0];
	alpha.next = l->items[1].next;
	int rc = list_cow_path(t, l, 0, &alpha, head);
	return rc ? rc : strata_txn_free(t, l->ids[1]);
}

static int step_update(demo *d)
{
	heading(d, "Update copy-on-write in later transactions");
	uint64_t e1, e2;
	int rc = list_txn(d, edit_gamma, &e1);
	if (rc)
		return demo_fail(d, "transaction setting gamma to 300", rc);
	cli_printf(&d->out,
		   "    Set gamma to 300 (epoch %" PRIu64 "): gamma and the two items pointing at it\n"
		   "    were copied to new NodeIDs; delta and epsilon were not touched and are\n"
		   "    shared by both versions. The old copies are retired, not freed.\n", e1);
	if ((rc = list_txn(d, edit_unlink_beta, &e2)))
		return demo_fail(d, "transaction unlinking beta", rc);
	cli_printf(&d->out,
		   "    Unlinked beta (epoch %" PRIu64 "): copied alpha to point past it and freed\n"
		   "    beta (retired as of that epoch).\n", e2);
	return 0;
}

static size_t shared_ids(const demo_list *a, const demo_list *b)
{
	size_t n = 0;
	for (size_t i = 0; i < a->n; i++)
		for (size_t j = 0; j < b->n; j++)
			n += a->ids[i] == b->ids[j];
	return n;
}

static int step_compare(demo *d)
{
	heading(d, "Old and new snapshots side by side");
	demo_list a, b;
	strata_store_stats st;
	int rc = strata_snapshot_open(d->store, &d->snap_b);
	if (rc)
		return demo_fail(d, "strata_snapshot_open", rc);
	if ((rc = list_read_snapshot(d->snap_a, &a)) || (rc = list_read_snapshot(d->snap_b, &b)))
		return demo_fail(d, "reading the list through a snapshot", rc);
	if (!list_equals(&a, names, built, N_BUILT))
		return demo_unexpected(d, "snapshot A changed under later commits", STRATA_ECORRUPT);
	if (!list_equals(&b, names_after, values_after, N_AFTER))
		return demo_unexpected(d, "snapshot B's list", STRATA_ECORRUPT);
	char label[64];
	snprintf(label, sizeof label, "snapshot A (epoch %" PRIu64 "), unchanged",
		 strata_snapshot_epoch(d->snap_a));
	list_print(&d->out, label, &a);
	snprintf(label, sizeof label, "snapshot B (epoch %" PRIu64 ")", strata_snapshot_epoch(d->snap_b));
	list_print(&d->out, label, &b);
	if ((rc = strata_stats(d->store, &st)))
		return demo_fail(d, "strata_stats", rc);
	cli_printf(&d->out,
		   "    %zu nodes are shared by both snapshots; %" PRIu64 " retired versions are kept\n"
		   "    alive only because snapshot A can still see them.\n",
		   shared_ids(&a, &b), st.pinned_retired_nodes);
	return 0;
}

/* The counters an aborted transaction must leave exactly as they were. */
typedef struct leak_view {
	uint64_t live, retired, reserved, slots, requested, large, epoch;
} leak_view;

static int leak_snapshot(strata_store *s, leak_view *v)
{
	strata_store_stats st;
	int rc = strata_stats(s, &st);
	if (rc)
		return rc;
	*v = (leak_view){st.nodes_live, st.nodes_retired, st.nodes_reserved, 0, 0,
			 st.large_objects, st.epoch_current};
	for (unsigned i = 0; i < STRATA_NUM_CLASSES; i++) {
		v->slots += st.classes[i].slots_used;
		v->requested += st.classes[i].bytes_requested;
	}
	return 0;
}

#define ABORT_SMALL 64
#define ABORT_LARGE_SIZE (256u * 1024)

/* Allocates nodes of many sizes plus one large object, copies the head and
 * repoints the root: every kind of change an abort has to undo. */
static int doomed_changes(strata_txn *t)
{
	strata_node_id id, head;
	void *data;
	int rc = 0;
	for (uint32_t i = 0; i < ABORT_SMALL && !rc; i++)
		rc = strata_txn_alloc(t, 8u + (i * 977u) % 40000u, 2, &id, &data);
	if (!rc)
		rc = strata_txn_alloc(t, ABORT_LARGE_SIZE, 2, &id, &data);
	if (!rc)
		rc = strata_txn_get_root(t, DEMO_ROOT, &head);
	if (!rc)
		rc = strata_txn_write(t, head, &id, &data, NULL);
	if (!rc)
		rc = strata_txn_set_root(t, DEMO_ROOT, id);
	return rc;
}

static int step_abort(demo *d)
{
	heading(d, "Abort a transaction");
	const char *roots[] = {DEMO_ROOT};
	leak_view before, during, after;
	strata_txn *t;
	int rc = leak_snapshot(d->store, &before);
	if (!rc)
		rc = strata_txn_begin(d->store, roots, 1, 0, &t);
	if (rc)
		return demo_fail(d, "starting the transaction to abort", rc);
	if ((rc = doomed_changes(t)) || (rc = leak_snapshot(d->store, &during))) {
		strata_txn_abort(t);
		return demo_fail(d, "changes in the transaction to abort", rc);
	}
	strata_txn_abort(t);
	if ((rc = leak_snapshot(d->store, &after)))
		return demo_fail(d, "strata_stats", rc);
	cli_printf(&d->out,
		   "    Allocated %u nodes of 8 B to 39 KiB and one %u KiB large object, copied\n"
		   "    alpha and pointed the root at the copy: %" PRIu64 " nodes reserved. Then aborted.\n",
		   ABORT_SMALL, ABORT_LARGE_SIZE / 1024, during.reserved);
	cli_printf(&d->out,
		   "    before -> after: live %" PRIu64 " -> %" PRIu64 ", retired %" PRIu64 " -> %" PRIu64
		   ", reserved %" PRIu64 " -> %" PRIu64 ",\n"
		   "    slots in use %" PRIu64 " -> %" PRIu64 ", large objects %" PRIu64 " -> %" PRIu64
		   ", epoch %" PRIu64 " -> %" PRIu64 ".\n",
		   before.live, after.live, before.retired, after.retired, before.reserved, after.reserved,
		   before.slots, after.slots, before.large, after.large, before.epoch, after.epoch);
	if (memcmp(&before, &after, sizeof before) != 0)
		return demo_unexpected(d, "the aborted transaction left something behind",
				       STRATA_ECORRUPT);
	cli_printf(&d->out, "    Nothing leaked and nothing became visible.\n");
	return 0;
}

/* Resolves the first alpha through `s`, expecting `want`. */
static int expect_resolve(demo *d, const strata_snapshot *s, const char *who, int want)
{
	const void *data;
	uint32_t size;
	int rc = strata_resolve(s, d->first_alpha, &data, &size);
	if (rc != want)
		return demo_unexpected(d, "resolving the first alpha", rc);
	if (rc) {
		cli_printf(&d->out, "    %s: %s\n", who, strata_strerror(rc));
		return 0;
	}
	demo_item it;
	if (size != sizeof it || (memcpy(&it, data, sizeof it), it.value != built[0]))
		return demo_unexpected(d, "bytes of the first alpha", STRATA_ECORRUPT);
	cli_printf(&d->out, "    %s: resolves, %s = %" PRIu32 "\n", who, it.name, it.value);
	return 0;
}

/* A new node may take over the freed handle; its tag differs, so the old
 * NodeID still cannot reach the new bytes. */
static int show_handle_reuse(demo *d)
{
	const char *roots[] = {DEMO_ROOT};
	strata_txn *t;
	strata_node_id id;
	void *data;
	const void *old;
	int rc = strata_txn_begin(d->store, roots, 1, 0, &t);
	if (rc)
		return demo_fail(d, "strata_txn_begin", rc);
	if ((rc = strata_txn_alloc(t, sizeof(demo_item), DEMO_KIND_ITEM, &id, &data))) {
		strata_txn_abort(t);
		return demo_fail(d, "strata_txn_alloc", rc);
	}
	rc = strata_txn_read(t, d->first_alpha, &old, NULL, NULL);
	strata_txn_abort(t);
	char idbuf[96];
	bool same = STRATA_NODEID_SHARD(id) == STRATA_NODEID_SHARD(d->first_alpha) &&
		    STRATA_NODEID_INDEX(id) == STRATA_NODEID_INDEX(d->first_alpha);
	cli_printf(&d->out, "    A new node takes a freed handle: %s%s.\n",
		   fmt_node_id(idbuf, sizeof idbuf, id),
		   same ? ",\n    the very handle the first alpha had, under a new tag" : "");
	if (rc != STRATA_ESTALE)
		return demo_unexpected(d, "reading the first alpha next to a new node", rc);
	cli_printf(&d->out, "    Read in that transaction, the old NodeID still gives: %s\n",
		   strata_strerror(rc));
	return 0;
}

static int step_stale(demo *d)
{
	heading(d, "Stale NodeID detection");
	char idbuf[96];
	cli_printf(&d->out, "    The first alpha was %s.\n",
		   fmt_node_id(idbuf, sizeof idbuf, d->first_alpha));
	int rc = expect_resolve(d, d->snap_a, "through snapshot A", 0);
	if (!rc)
		rc = expect_resolve(d, d->snap_b, "through snapshot B", STRATA_ENOTVISIBLE);
	if (rc)
		return rc;
	strata_snapshot_close(d->snap_a);
	d->snap_a = NULL;
	int64_t freed = strata_reclaim(d->store);
	if (freed < 0)
		return demo_fail(d, "strata_reclaim", (int)freed);
	cli_printf(&d->out, "    Closed snapshot A; strata_reclaim freed %" PRId64
			    " nodes only it could see.\n", freed);
	if ((rc = expect_resolve(d, d->snap_b, "through snapshot B now", STRATA_ESTALE)))
		return rc;
	return show_handle_reuse(d);
}

static int step_bptree(demo *d)
{
	heading(d, "A table and its secondary index: two B+trees, one transaction");
	int rc = kv_demo(d->store, &d->out);
	return rc ? demo_fail(d, "the B+tree step", rc) : 0;
}

static int step_xtree(demo *d)
{
	heading(d, "A spatial index: the X-tree, bulk-loaded, queried, moved under a snapshot");
	int rc = xt_demo(d->store, &d->out);
	return rc ? demo_fail(d, "the X-tree step", rc) : 0;
}

static void check_report(void *ctx, const char *message)
{
	demo *d = ctx;
	cli_printf(&d->out, "    problem: %s\n", message);
}

static int step_check(demo *d)
{
	heading(d, "Invariant check");
	int rc = strata_check(d->store, check_report, d);
	if (rc) {
		cli_printf(&d->out, "    strata_check: FAILED\n");
		return demo_fail(d, "strata_check", rc);
	}
	cli_printf(&d->out, "    strata_check: clean\n");
	return 0;
}

static int step_stats(demo *d)
{
	heading(d, "Final statistics");
	strata_snapshot_close(d->snap_b);
	d->snap_b = NULL;
	strata_store_stats st;
	int rc = strata_stats(d->store, &st);
	if (rc)
		return demo_fail(d, "strata_stats", rc);
	cli_print_stats(&d->out, &st);
	cli_printf(&d->out, "    (A tiny store still holds whole 2 MiB segments, hence the high\n"
			    "    fragmentation figure.)\n");
	return 0;
}

static int step_close(demo *d)
{
	heading(d, "Close and open again");
	int rc = strata_close(d->store);
	d->store = NULL;
	if (rc)
		return demo_fail(d, "strata_close", rc);
	cli_printf(&d->out, "    Closed the store: a final checkpoint, marked clean.\n");
	if ((rc = open_durable(d, 0)))
		return demo_fail(d, "strata_open (reopen)", rc);
	cli_printf(&d->out, "    Reopened: %s.\n", strata_last_error());
	demo_list l;
	strata_snapshot *s;
	if ((rc = strata_snapshot_open(d->store, &s)))
		return demo_fail(d, "strata_snapshot_open", rc);
	rc = list_read_snapshot(s, &l);
	strata_snapshot_close(s);
	if (rc)
		return demo_fail(d, "reading the list after reopening", rc);
	if (!list_equals(&l, names_after, values_after, N_AFTER))
		return demo_unexpected(d, "the list after reopening", STRATA_ECORRUPT);
	list_print(&d->out, "after reopening, the list is", &l);
	if ((rc = strata_close(d->store)))
		return demo_fail(d, "strata_close", rc);
	d->store = NULL;
	return 0;
}

/* ---- command -------------------------------------------------------------- */

/* mkdir -p: creates DIR and any missing parents. Returns 0 or -errno. */
static int make_dirs(const char *path)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);
	if (len >= sizeof buf)
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0777) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0777) && errno != EEXIST)
		return -errno;
	struct stat st;
	if (stat(buf, &st))
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

static int open_report(demo *d, char *path, size_t len)
{
	int rc = make_dirs(d->dir);
	if (rc)
		return demo_fail(d, d->dir, rc);
	if ((size_t)snprintf(path, len, "%s/%s", d->dir, DEMO_REPORT) >= len)
		return demo_fail(d, d->dir, -ENAMETOOLONG);
	if (!(d->out.file = fopen(path, "w")))
		return demo_fail(d, path, -errno);
	return 0;
}

static int run_steps(demo *d)
{
	static int (*const steps[])(demo *) = {
		step_open,   step_build, step_snapshot_a, step_update, step_compare,
		step_abort,  step_stale, step_bptree,     step_xtree,  step_check,
		step_stats,  step_close,
	};
	cli_printf(&d->out, "Strata %s demo: the substrate, end to end.\n", strata_version());
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		int rc = steps[i](d);
		if (rc)
			return rc;
	}
	cli_printf(&d->out, "\nDemo complete.\n");
	return 0;
}

/* Releases whatever a failed step left open, in the order close needs. */
static void demo_cleanup(demo *d)
{
	strata_snapshot_close(d->snap_a);
	strata_snapshot_close(d->snap_b);
	strata_close(d->store);
}

int cmd_demo(int argc, char **argv)
{
	const cli_command *self = cli_find("demo");
	if (argc > 2)
		return cli_usage_error(self, "too many arguments");
	if (argc == 2 && (argv[1][0] == '-' || argv[1][0] == '\0'))
		return cli_usage_error(self, "bad argument '%s'", argv[1]);
	demo d = {.dir = argc == 2 ? argv[1] : DEMO_DEFAULT_DIR};
	char path[PATH_MAX];
	int rc = open_report(&d, path, sizeof path);
	if (!rc)
		rc = run_steps(&d);
	demo_cleanup(&d);
	/* A report that failed to reach the disk is a failed demo. */
	FILE *report = d.out.file;
	d.out.file = NULL;
	if (report && fclose(report) && !rc)
		rc = demo_fail(&d, path, -errno);
	if (rc)
		return CLI_FAIL;
	printf("\nReport written to %s\n", path);
	return CLI_OK;
}
