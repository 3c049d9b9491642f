/*
 * test_snapshot.c — snapshots: isolation, visibility errors, reclamation
 * held back by pins and released at close, the snapshot-table limit, and
 * the stress test: reader threads checksum everything reachable from a root
 * and re-check it for the life of each snapshot while a writer commits
 * thousands of epochs with reclamation running.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "support/model.h"

/* Every test ends with a leak check in ASan builds (see model.h). */
TestSuite(snapshot, .fini = test_leak_check);

static strata_store_stats stats_of(strata_store *s)
{
	strata_store_stats st;
	cr_assert_eq(strata_stats(s, &st), 0);
	return st;
}

static strata_snapshot *snap_open(strata_store *s)
{
	strata_snapshot *snap = NULL;
	int rc = strata_snapshot_open(s, &snap);
	cr_assert_eq(rc, 0, "snapshot_open: %s", strata_strerror(rc));
	return snap;
}

/* Sets root `name` to a new node of `size` bytes of `v`, retiring the old
 * one (freed outright). Returns the new id. */
static strata_node_id replace_root(strata_store *s, const char *name, uint32_t size, int v,
				   uint64_t *epoch)
{
	strata_txn *t;
	cr_assert_eq(strata_txn_begin(s, &name, 1, 0, &t), 0);
	strata_node_id old, id;
	cr_assert_eq(strata_txn_get_root(t, name, &old), 0);
	if (old)
		cr_assert_eq(strata_txn_free(t, old), 0);
	void *p;
	cr_assert_eq(strata_txn_alloc(t, size, 0, &id, &p), 0);
	memset(p, v, size);
	cr_assert_eq(strata_txn_set_root(t, name, id), 0);
	cr_assert_eq(strata_txn_commit(t, epoch), 0);
	return id;
}

static void expect_bytes(const strata_snapshot *snap, strata_node_id id, uint32_t size, int v)
{
	const void *d;
	uint32_t n;
	int rc = strata_resolve(snap, id, &d, &n);
	cr_assert_eq(rc, 0, "resolve: %s", strata_strerror(rc));
	cr_assert_eq(n, size);
	for (uint32_t i = 0; i < n; i++)
		cr_assert_eq(((const unsigned char *)d)[i], (unsigned char)v);
}

/* ---- basics ----------------------------------------------------------------- */

Test(snapshot, isolation_basics)
{
	strata_store *s = test_open(NULL);
	uint64_t e1, e2;
	strata_node_id a = replace_root(s, "r", 100, 1, &e1);
	strata_snapshot *s1 = snap_open(s);
	cr_assert_eq(strata_snapshot_epoch(s1), e1);
	const void *d1;
	cr_assert_eq(strata_resolve(s1, a, &d1, NULL), 0);

	strata_node_id b = replace_root(s, "r", 200, 2, &e2);
	cr_assert_eq(e2, e1 + 1);
	/* s1: same root, same pointer, same bytes, still its own epoch. */
	strata_node_id id;
	cr_assert_eq(strata_snapshot_root(s1, "r", &id), 0);
	cr_assert_eq(id, a);
	const void *again;
	cr_assert_eq(strata_resolve(s1, a, &again, NULL), 0);
	cr_assert_eq(again, d1);
	expect_bytes(s1, a, 100, 1);
	cr_assert_eq(strata_snapshot_epoch(s1), e1);

	strata_snapshot *s2 = snap_open(s);
	cr_assert_eq(strata_snapshot_epoch(s2), e2);
	cr_assert_eq(strata_snapshot_root(s2, "r", &id), 0);
	cr_assert_eq(id, b);
	expect_bytes(s2, b, 200, 2);
	strata_snapshot_close(s1);
	strata_snapshot_close(s2);
	strata_snapshot_close(NULL); /* accepted */
	test_close(s);
}

Test(snapshot, visibility_errors)
{
	strata_store *s = test_open(NULL);
	uint64_t e1, e2;
	strata_node_id a = replace_root(s, "r", 64, 1, &e1);
	strata_snapshot *old = snap_open(s);
	strata_node_id b = replace_root(s, "r", 64, 2, &e2);
	const void *d;
	strata_node_info info;
	/* Born after the snapshot. */
	cr_assert_eq(strata_resolve(old, b, &d, NULL), STRATA_ENOTVISIBLE);
	cr_assert_eq(strata_node_stat(old, b, &info), STRATA_ENOTVISIBLE);
	/* Retired at or before a newer snapshot (kept alive by `old`). */
	strata_snapshot *now = snap_open(s);
	cr_assert_eq(strata_resolve(now, a, &d, NULL), STRATA_ENOTVISIBLE);
	cr_assert_eq(strata_node_stat(old, a, &info), 0);
	cr_assert_eq(info.birth, e1);
	cr_assert_eq(info.retire, e2);
	cr_assert_eq(info.size, 64);
	cr_assert_eq(info.size_class, 0);
	/* A root name committed after the snapshot. */
	uint64_t e3;
	replace_root(s, "later", 70000, 3, &e3);
	strata_node_id id;
	cr_assert_eq(strata_snapshot_root(now, "later", &id), STRATA_ENOTFOUND);
	cr_assert_eq(strata_snapshot_root(now, "never", &id), STRATA_ENOTFOUND);
	strata_snapshot *newest = snap_open(s);
	cr_assert_eq(strata_snapshot_root(newest, "later", &id), 0);
	cr_assert_eq(strata_node_stat(newest, id, &info), 0);
	cr_assert_eq(info.size_class, STRATA_CLASS_LARGE);
	cr_assert_eq(info.retire, UINT64_MAX);
	/* Nodes of an open transaction are invisible to every snapshot. */
	strata_txn *t;
	const char *name = "r";
	cr_assert_eq(strata_txn_begin(s, &name, 1, 0, &t), 0);
	strata_node_id pending;
	void *p;
	cr_assert_eq(strata_txn_alloc(t, 8, 0, &pending, &p), 0);
	cr_assert_eq(strata_resolve(newest, pending, &d, NULL), STRATA_ENOTVISIBLE);
	strata_txn_abort(t);
	cr_assert_eq(strata_resolve(newest, pending, &d, NULL), STRATA_ESTALE);
	cr_assert_eq(strata_resolve(newest, b, NULL, NULL), STRATA_EINVAL);
	cr_assert_eq(strata_resolve(NULL, b, &d, NULL), STRATA_EINVAL);
	strata_snapshot_close(old);
	strata_snapshot_close(now);
	strata_snapshot_close(newest);
	test_close(s);
}

Test(snapshot, reclamation_waits_for_pins)
{
	strata_store *s = test_open(NULL);
	uint64_t e1, e2;
	strata_node_id a = replace_root(s, "r", 1000, 1, &e1);
	strata_snapshot *pin = snap_open(s);
	strata_store_stats st = stats_of(s);
	cr_assert_eq(st.epoch_oldest_pinned, e1);
	cr_assert_eq(st.snapshots_open, 1);

	/* Retire a and nine more nodes while pinned. */
	for (int i = 0; i < 10; i++)
		replace_root(s, "r", 1000, 2 + i, &e2);
	cr_assert_eq(strata_reclaim(s), 0, "pinned: nothing may be freed");
	st = stats_of(s);
	cr_assert_eq(st.epoch_current, e1 + 10);
	cr_assert_eq(st.epoch_oldest_pinned, e1);
	cr_assert_eq(st.nodes_retired, 10);
	cr_assert_eq(st.pinned_retired_nodes, 10);
	cr_assert_eq(st.pinned_retired_bytes, 10 * 1000);
	cr_assert_eq(st.reclaimed_nodes, 0);
	expect_bytes(pin, a, 1000, 1);

	strata_snapshot_close(pin);
	st = stats_of(s);
	cr_assert_eq(st.epoch_oldest_pinned, st.epoch_current, "nothing pinned");
	cr_assert_eq(strata_reclaim(s), 10);
	st = stats_of(s);
	cr_assert_eq(st.nodes_retired, 0);
	cr_assert_eq(st.pinned_retired_nodes, 0);
	cr_assert_eq(st.pinned_retired_bytes, 0);
	cr_assert_eq(st.reclaimed_nodes, 10);
	cr_assert_eq(st.reclaimed_bytes, 10 * 1000);
	cr_assert_eq(st.nodes_live, 1);
	strata_snapshot *now = snap_open(s);
	const void *d;
	cr_assert_eq(strata_resolve(now, a, &d, NULL), STRATA_ESTALE, "freed for good");
	strata_snapshot_close(now);
	test_close(s);
}

Test(snapshot, a_newer_pin_frees_only_what_it_cannot_see)
{
	strata_store *s = test_open(NULL);
	uint64_t e;
	strata_node_id a = replace_root(s, "r", 64, 1, &e);
	strata_node_id b = replace_root(s, "r", 64, 2, &e); /* a retired, freed */
	strata_snapshot *pin = snap_open(s);              /* sees b */
	strata_node_id c = replace_root(s, "r", 64, 3, &e); /* b retired, pinned */
	replace_root(s, "r", 64, 4, &e);                    /* c retired: invisible to pin */
	strata_reclaim(s);
	strata_store_stats st = stats_of(s);
	cr_assert_eq(st.nodes_retired, 2, "b and c wait: batches free in epoch order");
	const void *d;
	cr_assert_eq(strata_resolve(pin, a, &d, NULL), STRATA_ESTALE);
	expect_bytes(pin, b, 64, 2);
	cr_assert_eq(strata_resolve(pin, c, &d, NULL), STRATA_ENOTVISIBLE);
	strata_snapshot_close(pin);
	cr_assert_eq(strata_reclaim(s), 2);
	test_close(s);
}

/* With reclamation deferred, retired nodes nobody pins are counted as
 * retired but not as held back by pins. */
Test(snapshot, held_back_counts_only_what_pins_hold)
{
	strata_options o;
	strata_options_init(&o);
	o.reclaim_interval = 1000000;
	strata_store *s = test_open(&o);
	uint64_t e;
	replace_root(s, "r", 100, 1, &e);
	for (int i = 0; i < 5; i++)
		replace_root(s, "r", 100, 2 + i, &e);
	strata_store_stats st = stats_of(s);
	cr_assert_eq(st.nodes_retired, 5);
	cr_assert_eq(st.pinned_retired_nodes, 0, "no snapshot open: nothing is held by pins");
	cr_assert_eq(st.pinned_retired_bytes, 0);
	strata_snapshot *pin = snap_open(s);
	replace_root(s, "r", 100, 9, &e); /* retires the node pin sees */
	st = stats_of(s);
	cr_assert_eq(st.nodes_retired, 6);
	cr_assert_eq(st.pinned_retired_nodes, 1);
	cr_assert_eq(st.pinned_retired_bytes, 100);
	cr_assert_eq(strata_reclaim(s), 5);
	strata_snapshot_close(pin);
	cr_assert_eq(strata_reclaim(s), 1);
	test_close(s);
}

/* ---- long readers (snapshot caps) -------------------------------------------------- */
static size_t list_of(strata_store *s, strata_snapshot_info *out, size_t max)
{
	size_t n = 0;
	cr_assert_eq(strata_snapshot_list(s, out, max, &n), 0);
	return n;
}

Test(snapshot, list_reports_epochs_and_what_each_keeps)
{
	strata_store *s = test_open(NULL);
	replace_root(s, "r", 1000, 1, NULL);
	strata_snapshot *a = snap_open(s);
	replace_root(s, "r", 1000, 2, NULL);
	replace_root(s, "r", 1000, 3, NULL);
	strata_snapshot *b = snap_open(s);
	replace_root(s, "r", 1000, 4, NULL);
	strata_txn *t;
	cr_assert_eq(strata_txn_begin(s, NULL, 0, 0, &t), 0);
	strata_snapshot_info info[4];
	cr_assert_eq(list_of(s, info, 4), 3);
	cr_assert(info[0].epoch < info[1].epoch && info[1].epoch <= info[2].epoch, "oldest first");
	cr_assert_eq(info[0].epoch, strata_snapshot_epoch(a));
	cr_assert_eq(info[0].kind, 0);
	cr_assert_eq(info[1].epoch, strata_snapshot_epoch(b));
	cr_assert_eq(info[2].kind, 1, "the transaction");
	cr_assert_eq(info[0].retained_bytes, 3000, "a sees three retired versions");
	cr_assert_eq(info[0].retained_nodes, 3);
	cr_assert_eq(info[1].retained_bytes, 1000);
	cr_assert_eq(info[2].retained_bytes, 0);
	cr_assert(!info[0].expired && !info[1].expired);
	cr_assert_eq(list_of(s, info, 1), 3, "the count is whole when out is short");
	cr_assert_eq(strata_snapshot_list(s, NULL, 0, NULL), STRATA_EINVAL);
	strata_txn_abort(t);
	strata_snapshot_close(a);
	strata_snapshot_close(b);
	cr_assert_eq(list_of(s, info, 4), 0);
	test_close(s);
}

/* Past the retained-bytes cap a reader is expired: what it returned stays
 * valid until its next call, which fails and lets go; then reclamation
 * frees what it held. */
Test(snapshot, a_reader_keeping_too_much_is_expired)
{
	strata_options o;
	strata_options_init(&o);
	o.snapshot_max_retained_bytes = 20000;
	strata_store *s = test_open(&o);
	strata_node_id first = replace_root(s, "r", 1000, 1, NULL);
	strata_snapshot *old = snap_open(s), *young = NULL;
	const void *p;
	cr_assert_eq(strata_resolve(old, first, &p, NULL), 0);
	for (int i = 0; i < 30; i++) {
		replace_root(s, "r", 1000, 2 + i % 100, NULL);
		if (i == 25)
			young = snap_open(s);
	}
	strata_snapshot_info info[2];
	cr_assert_eq(list_of(s, info, 2), 2);
	cr_assert(info[0].expired, "30 KB kept against a 20 KB cap");
	cr_assert(!info[1].expired, "the young reader keeps only 4 KB");
	cr_assert_gt(stats_of(s).nodes_retired, 25, "nothing freed under the old reader yet");
	for (uint32_t i = 0; i < 1000; i++)
		cr_assert_eq(((const unsigned char *)p)[i], 1, "its bytes are intact until it calls");
	cr_assert_eq(strata_resolve(old, first, &p, NULL), STRATA_ESNAPSHOT_TOO_OLD);
	strata_node_id id;
	cr_assert_eq(strata_snapshot_root(old, "r", &id), STRATA_ESNAPSHOT_TOO_OLD);
	strata_node_info ni;
	cr_assert_eq(strata_node_stat(old, first, &ni), STRATA_ESNAPSHOT_TOO_OLD);
	cr_assert_eq(stats_of(s).snapshots_expired, 1);
	strata_reclaim(s);
	cr_assert_leq(stats_of(s).nodes_retired, 5, "only the young reader's versions remain");
	cr_assert_eq(strata_snapshot_root(young, "r", &id), 0, "the young reader goes on");
	expect_bytes(young, id, 1000, 2 + 25);
	strata_snapshot_close(old);
	strata_snapshot_close(young);
	test_close(s);
}

Test(snapshot, an_old_reader_is_expired_transactions_never)
{
	strata_options o;
	strata_options_init(&o);
	/* `old` is well past the age when reclamation looks; `fresh` must not
	 * be, though a loaded machine may stall between the two calls. */
	o.snapshot_max_age_ms = 250;
	strata_store *s = test_open(&o);
	strata_node_id id = replace_root(s, "r", 100, 1, NULL);
	strata_snapshot *old = snap_open(s);
	const char *name = "other";
	strata_txn *t;
	cr_assert_eq(strata_txn_begin(s, &name, 1, 0, &t), 0);
	usleep(500 * 1000);
	strata_snapshot *fresh = snap_open(s);
	replace_root(s, "r", 100, 2, NULL); /* reclamation runs: the check */
	cr_assert_eq(strata_resolve(old, id, &(const void *){0}, NULL), STRATA_ESNAPSHOT_TOO_OLD);
	expect_bytes(fresh, id, 100, 1);
	strata_node_id x;
	void *p;
	cr_assert_eq(strata_txn_alloc(t, 8, 0, &x, &p), 0);
	cr_assert_eq(strata_txn_set_root(t, name, x), 0);
	cr_assert_eq(strata_txn_commit(t, NULL), 0, "a transaction is never expired");
	strata_snapshot_close(old);
	strata_snapshot_close(fresh);
	test_close(s);
}

Test(snapshot, table_full)
{
	strata_options o;
	strata_options_init(&o);
	o.max_snapshots = 4;
	strata_store *s = test_open(&o);
	strata_snapshot *snaps[4], *extra = (strata_snapshot *)1;
	for (int i = 0; i < 3; i++)
		snaps[i] = snap_open(s);
	strata_txn *t; /* a transaction takes a slot too */
	cr_assert_eq(strata_txn_begin(s, NULL, 0, 0, &t), 0);
	cr_assert_eq(strata_snapshot_open(s, &extra), STRATA_EFULL);
	cr_assert_null(extra);
	strata_txn *t2;
	cr_assert_eq(strata_txn_begin(s, NULL, 0, 0, &t2), STRATA_EFULL);
	cr_assert_eq(stats_of(s).snapshots_open, 4);
	strata_txn_abort(t);
	snaps[3] = snap_open(s);
	cr_assert_eq(strata_snapshot_open(s, &extra), STRATA_EFULL);
	strata_snapshot_close(snaps[1]);
	snaps[1] = snap_open(s);
	for (int i = 0; i < 4; i++)
		strata_snapshot_close(snaps[i]);
	cr_assert_eq(stats_of(s).snapshots_open, 0);
	test_close(s);
}

/* ---- the stress test ------------------------------------------------------------ */

#define K 48            /* children under the root */
#define CHILD_BYTES 200
#define READERS 4
/* At least COMMITS epochs, and more (up to 10x) until each reader did
 * MIN_SNAPS. STRATA_STRESS_COMMITS raises it for `make soak`. */
static uint64_t stress_commits(void)
{
	const char *e = getenv("STRATA_STRESS_COMMITS");
	uint64_t n = e ? strtoull(e, NULL, 10) : 0;
	return n >= 3000 ? n : 3000;
}
#define COMMITS stress_commits()
#define MAX_COMMITS (10 * stress_commits())
#define MIN_SNAPS 300
#define REVERIFY 3      /* re-checks per snapshot */

typedef struct child {
	uint64_t version; /* commit that wrote it */
	uint32_t slot, pad;
	unsigned char data[CHILD_BYTES - 16];
} child;

typedef struct tree_root {
	uint64_t version;     /* commit number */
	uint64_t sum;         /* FNV of every child's bytes, in slot order */
	strata_node_id kids[K];
} tree_root;

static void child_fill(child *c, uint64_t version, uint32_t slot)
{
	c->version = version;
	c->slot = slot;
	c->pad = 0;
	test_rng r = {version * 131 + slot};
	for (size_t i = 0; i < sizeof c->data; i += 8) {
		uint64_t x = rng_next(&r);
		memcpy(c->data + i, &x, sizeof c->data - i < 8 ? sizeof c->data - i : 8);
	}
}

typedef struct stress {
	strata_store *s;
	pthread_barrier_t start;
	_Atomic int writer_done;
	_Atomic int failures;
	pthread_mutex_t msg_lock;
	char msg[512];
	/* per reader */
	_Atomic uint64_t snapshots[READERS];
	uint64_t versions_seen[READERS];
} stress;

static void fail(stress *x, const char *fmt, uint64_t a, uint64_t b)
{
	if (atomic_fetch_add(&x->failures, 1) == 0) {
		pthread_mutex_lock(&x->msg_lock);
		snprintf(x->msg, sizeof x->msg, fmt, (unsigned long long)a, (unsigned long long)b);
		pthread_mutex_unlock(&x->msg_lock);
	}
}

/* What one pass over a snapshot found. */
typedef struct pass {
	strata_node_id root;
	const void *root_data;
	uint64_t version, sum_stored, sum_seen, full; /* full: root and children */
} pass;

/* Reads the whole tree; 0 on success. The checksum the writer stored in the
 * root must equal the one recomputed from the children it names. */
static int read_tree(stress *x, const strata_snapshot *snap, pass *p)
{
	int rc = strata_snapshot_root(snap, "tree", &p->root);
	if (rc)
		return fail(x, "snapshot_root: %llu %llu", (uint64_t)-rc, 0), -1;
	uint32_t size;
	if ((rc = strata_resolve(snap, p->root, &p->root_data, &size)) || size != sizeof(tree_root))
		return fail(x, "root resolve rc %llu size %llu", (uint64_t)-rc, size), -1;
	const tree_root *r = p->root_data;
	p->version = r->version;
	p->sum_stored = r->sum;
	p->sum_seen = TEST_FNV_SEED;
	p->full = test_fnv(TEST_FNV_SEED, r, sizeof *r);
	for (uint32_t j = 0; j < K; j++) {
		const void *d;
		if ((rc = strata_resolve(snap, r->kids[j], &d, &size)) || size != sizeof(child))
			return fail(x, "child resolve rc %llu slot %llu", (uint64_t)-rc, j), -1;
		const child *c = d;
		child want;
		child_fill(&want, c->version, j);
		if (c->slot != j || c->version > r->version || memcmp(c, &want, sizeof want))
			return fail(x, "child %llu torn (root version %llu)", j, r->version), -1;
		p->sum_seen = test_fnv(p->sum_seen, c, sizeof *c);
	}
	p->full = test_fnv(p->full, &p->sum_seen, sizeof p->sum_seen);
	if (p->sum_seen != p->sum_stored)
		return fail(x, "checksum mismatch at version %llu (epoch %llu)", p->version,
			    strata_snapshot_epoch(snap)), -1;
	return 0;
}

typedef struct reader_arg {
	stress *x;
	int idx;
} reader_arg;

static void *reader_main(void *arg)
{
	reader_arg *ra = arg;
	stress *x = ra->x;
	uint64_t last_version = 0, last_epoch = 0, seen = 0;
	pthread_barrier_wait(&x->start);
	while (!atomic_load(&x->writer_done) && !atomic_load(&x->failures)) {
		strata_snapshot *snap;
		if (strata_snapshot_open(x->s, &snap)) {
			fail(x, "snapshot_open failed %llu %llu", 0, 0);
			break;
		}
		uint64_t epoch = strata_snapshot_epoch(snap);
		pass first, again;
		if (read_tree(x, snap, &first) == 0) {
			if (epoch < last_epoch || first.version < last_version)
				fail(x, "time went backwards: version %llu after %llu", first.version,
				     last_version);
			if (first.version != last_version)
				seen++;
			last_version = first.version;
			last_epoch = epoch;
			/* The snapshot must not change while the writer runs. */
			for (int k = 0; k < REVERIFY; k++) {
				sched_yield();
				if (read_tree(x, snap, &again))
					break;
				if (again.root != first.root || again.root_data != first.root_data ||
				    again.full != first.full)
					fail(x, "snapshot at epoch %llu changed (version %llu)", epoch,
					     first.version);
			}
		}
		strata_snapshot_close(snap);
		atomic_fetch_add(&x->snapshots[ra->idx], 1);
	}
	x->versions_seen[ra->idx] = seen;
	return NULL;
}

/* One commit: copy-on-write the root and 1..4 children with new content. */
static void writer_commit(stress *x, test_rng *rng, uint64_t version)
{
	const char *name = "tree";
	strata_txn *t;
	cr_assert_eq(strata_txn_begin(x->s, &name, 1, 0, &t), 0);
	strata_node_id rid, nrid;
	void *p;
	cr_assert_eq(strata_txn_get_root(t, name, &rid), 0);
	cr_assert_eq(strata_txn_write(t, rid, &nrid, &p, NULL), 0);
	tree_root *r = p;
	int n = 1 + (int)rng_below(rng, 4);
	for (int i = 0; i < n; i++) {
		uint32_t j = (uint32_t)rng_below(rng, K);
		strata_node_id nk;
		cr_assert_eq(strata_txn_write(t, r->kids[j], &nk, &p, NULL), 0);
		child_fill(p, version, j);
		r->kids[j] = nk;
	}
	uint64_t sum = TEST_FNV_SEED;
	for (uint32_t j = 0; j < K; j++) {
		const void *d;
		cr_assert_eq(strata_txn_read(t, r->kids[j], &d, NULL, NULL), 0);
		sum = test_fnv(sum, d, sizeof(child));
	}
	r->version = version;
	r->sum = sum;
	cr_assert_eq(strata_txn_set_root(t, name, nrid), 0);
	uint64_t e;
	cr_assert_eq(strata_txn_commit(t, &e), 0);
	cr_assert_eq(e, version + 2, "one epoch per commit"); /* epoch 1 empty, 2 built */
}

static bool readers_done(stress *x)
{
	for (int i = 0; i < READERS; i++)
		if (atomic_load(&x->snapshots[i]) < MIN_SNAPS)
			return false;
	return true;
}

static void build_tree(stress *x)
{
	const char *name = "tree";
	strata_txn *t;
	cr_assert_eq(strata_txn_begin(x->s, &name, 1, 0, &t), 0);
	strata_node_id rid;
	void *p;
	cr_assert_eq(strata_txn_alloc(t, sizeof(tree_root), 1, &rid, &p), 0);
	tree_root *r = p;
	uint64_t sum = TEST_FNV_SEED;
	for (uint32_t j = 0; j < K; j++) {
		void *cp;
		cr_assert_eq(strata_txn_alloc(t, sizeof(child), 2, &r->kids[j], &cp), 0);
		child_fill(cp, 0, j);
		sum = test_fnv(sum, cp, sizeof(child));
	}
	r->version = 0;
	r->sum = sum;
	cr_assert_eq(strata_txn_set_root(t, name, rid), 0);
	cr_assert_eq(strata_txn_commit(t, NULL), 0);
}

Test(snapshot, stress_readers_see_stable_snapshots, .timeout = 300)
{
	stress *x = calloc(1, sizeof *x);
	x->s = test_open(NULL);
	pthread_mutex_init(&x->msg_lock, NULL);
	pthread_barrier_init(&x->start, NULL, READERS + 1);
	build_tree(x);
	/* A long-lived snapshot of version 0, held for the first half. */
	strata_snapshot *v0 = snap_open(x->s);
	pass p0;
	cr_assert_eq(read_tree(x, v0, &p0), 0, "%s", x->msg);

	pthread_t th[READERS];
	reader_arg ra[READERS];
	for (int i = 0; i < READERS; i++) {
		ra[i] = (reader_arg){x, i};
		pthread_create(&th[i], NULL, reader_main, &ra[i]);
	}
	pthread_barrier_wait(&x->start);
	test_rng rng = {12345};
	uint64_t v = 0;
	while (!atomic_load(&x->failures)) {
		writer_commit(x, &rng, ++v);
		if (v >= MAX_COMMITS || (v >= COMMITS && readers_done(x)))
			break;
		if (v == COMMITS / 2) {
			pass p;
			cr_assert_eq(read_tree(x, v0, &p), 0, "%s", x->msg);
			cr_assert_eq(p.full, p0.full, "the long-lived snapshot changed");
			cr_assert_eq(p.version, 0);
			strata_snapshot_close(v0);
		}
	}
	atomic_store(&x->writer_done, 1);
	for (int i = 0; i < READERS; i++)
		pthread_join(th[i], NULL);
	cr_assert_eq(atomic_load(&x->failures), 0, "%s", x->msg);

	uint64_t total = 0;
	for (int i = 0; i < READERS; i++) {
		cr_assert_gt(x->snapshots[i], 0, "reader %d never ran", i);
		total += x->versions_seen[i];
	}
	cr_assert_gt(total, READERS, "readers must see the writer move on");
	cr_log_info("stress: %llu commits; snapshots per reader %llu %llu %llu %llu; versions seen %llu",
		    (unsigned long long)v, (unsigned long long)x->snapshots[0],
		    (unsigned long long)x->snapshots[1], (unsigned long long)x->snapshots[2],
		    (unsigned long long)x->snapshots[3], (unsigned long long)total);

	strata_reclaim(x->s);
	strata_store_stats st = stats_of(x->s);
	cr_assert_eq(st.nodes_live, K + 1);
	cr_assert_eq(st.nodes_retired, 0);
	cr_assert_eq(st.snapshots_open, 0);
	cr_assert_geq(v, COMMITS);
	cr_assert_eq(st.commits, v + 1);
	cr_assert_gt(st.reclaimed_nodes, v, "reclamation ran during the test");
	/* The final tree is what the writer wrote. */
	strata_snapshot *end = snap_open(x->s);
	pass pe;
	cr_assert_eq(read_tree(x, end, &pe), 0, "%s", x->msg);
	cr_assert_eq(pe.version, v);
	strata_snapshot_close(end);
	pthread_barrier_destroy(&x->start);
	pthread_mutex_destroy(&x->msg_lock);
	test_close(x->s);
	free(x);
}
