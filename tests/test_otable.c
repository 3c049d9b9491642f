/*
 * test_otable.c — the object table: NodeID layout, the ABA tag (a freed
 * handle is stale, its reuse carries exactly tag + 1, forged IDs never
 * resolve), tag exhaustion retiring a handle for good, progressive shard
 * activation, and unique IDs under concurrent allocation.
 *
 * Public-API tests go through transactions and snapshots; white-box tests
 * drive ot_alloc/ot_free on a bare otable (internal.h).
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "support/model.h"

/* Every test ends with a leak check in ASan builds (see model.h). */
TestSuite(nodeid, .fini = test_leak_check);
TestSuite(otable, .fini = test_leak_check);

/* ---- helpers ------------------------------------------------------------ */

/* Commits one node of `size` bytes filled with `fill` as root `name`. */
static strata_node_id commit_node(strata_store *s, const char *name, uint32_t size, int fill)
{
	strata_txn *t;
	strata_node_id id;
	void *p;
	cr_assert_eq(strata_txn_begin(s, &name, 1, 0, &t), 0);
	cr_assert_eq(strata_txn_alloc(t, size, 7, &id, &p), 0);
	memset(p, fill, size);
	cr_assert_eq(strata_txn_set_root(t, name, id), 0);
	cr_assert_eq(strata_txn_commit(t, NULL), 0);
	return id;
}

/* Every public path that takes a NodeID must call `id` stale. */
static void assert_stale_everywhere(strata_store *s, strata_node_id id)
{
	strata_snapshot *snap;
	const void *d;
	strata_node_info info;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	cr_assert_eq(strata_resolve(snap, id, &d, NULL), STRATA_ESTALE, "resolve %#lx", (unsigned long)id);
	cr_assert_eq(strata_node_stat(snap, id, &info), STRATA_ESTALE);
	strata_snapshot_close(snap);

	const char *name = "stale-probe";
	strata_txn *t;
	strata_node_id nid;
	void *w;
	uint8_t kind;
	cr_assert_eq(strata_txn_begin(s, &name, 1, 0, &t), 0);
	cr_assert_eq(strata_txn_read(t, id, &d, NULL, &kind), STRATA_ESTALE);
	cr_assert_eq(strata_txn_write(t, id, &nid, &w, NULL), STRATA_ESTALE);
	cr_assert_eq(strata_txn_free(t, id), STRATA_ESTALE);
	if (id != STRATA_NODE_NULL) /* NULL is how a root is emptied */
		cr_assert_eq(strata_txn_set_root(t, name, id), STRATA_ESTALE);
	strata_txn_abort(t);
}

static void assert_reuse(strata_node_id old, strata_node_id reused)
{
	cr_assert_eq(STRATA_NODEID_SHARD(reused), STRATA_NODEID_SHARD(old));
	cr_assert_eq(STRATA_NODEID_INDEX(reused), STRATA_NODEID_INDEX(old));
	cr_assert_eq(STRATA_NODEID_TAG(reused), STRATA_NODEID_TAG(old) + 1,
		     "reuse must bump the tag exactly once: old %u new %u",
		     STRATA_NODEID_TAG(old), STRATA_NODEID_TAG(reused));
}

/* ---- layout --------------------------------------------------------------- */

Test(nodeid, layout_macros_round_trip)
{
	cr_assert_eq(STRATA_NODEID_SHARD_BITS + STRATA_NODEID_INDEX_BITS + STRATA_NODEID_TAG_BITS, 64);
	cr_assert_eq(1u << STRATA_NODEID_SHARD_BITS, OT_MAX_SHARDS);
	const uint32_t shards[] = {0, 1, 37, 63};
	const uint32_t idxs[] = {0, 1, 12345, (1u << 30) - 1};
	const uint32_t tags[] = {1, 2, 99999, OT_TAG_MAX};
	for (int a = 0; a < 4; a++)
		for (int b = 0; b < 4; b++)
			for (int c = 0; c < 4; c++) {
				strata_node_id id = ot_make_id(shards[a], idxs[b], tags[c]);
				cr_assert_eq(STRATA_NODEID_SHARD(id), shards[a]);
				cr_assert_eq(STRATA_NODEID_INDEX(id), idxs[b]);
				cr_assert_eq(STRATA_NODEID_TAG(id), tags[c]);
				cr_assert_neq(id, STRATA_NODE_NULL);
			}
	/* Field positions exactly as documented in strata.h. */
	cr_assert_eq(ot_make_id(1, 0, 0), 1ull);
	cr_assert_eq(ot_make_id(0, 1, 0), 1ull << 6);
	cr_assert_eq(ot_make_id(0, 0, 1), 1ull << 36);
	cr_assert_eq(STRATA_NODEID_TAG(STRATA_NODE_NULL), 0);
	cr_assert_eq(OT_TAG_MAX, (1u << 28) - 1);
}

/* ---- ABA through the public API ------------------------------------------ */

Test(otable, freed_by_cow_is_stale_and_reuse_bumps_tag_once)
{
	strata_store *s = test_open(NULL);
	strata_node_id x = commit_node(s, "r", 100, 0xab);
	cr_assert_eq(STRATA_NODEID_TAG(x), 1, "a fresh handle starts at tag 1");

	/* Copy-on-write retires x; no snapshot is open, so reclaim frees it. */
	const char *name = "r";
	strata_txn *t;
	strata_node_id x2;
	void *p;
	cr_assert_eq(strata_txn_begin(s, &name, 1, 0, &t), 0);
	cr_assert_eq(strata_txn_write(t, x, &x2, &p, NULL), 0);
	cr_assert_neq(x2, x);
	cr_assert_eq(strata_txn_set_root(t, name, x2), 0);
	cr_assert_eq(strata_txn_commit(t, NULL), 0);
	strata_reclaim(s);
	strata_store_stats st;
	cr_assert_eq(strata_stats(s, &st), 0);
	cr_assert_eq(st.reclaimed_nodes, 1);
	cr_assert_eq(st.nodes_retired, 0);
	assert_stale_everywhere(s, x);

	/* LIFO free stack, one thread, one shard: the next handle is x's. */
	cr_assert_eq(strata_txn_begin(s, &name, 1, 0, &t), 0);
	strata_node_id y;
	cr_assert_eq(strata_txn_alloc(t, 100, 1, &y, &p), 0);
	assert_reuse(x, y);
	for (int i = 0; i < 100; i++)
		cr_assert_eq(((unsigned char *)p)[i], 0, "reused handle must not show old bytes");
	const void *d;
	cr_assert_eq(strata_txn_read(t, x, &d, NULL, NULL), STRATA_ESTALE);
	cr_assert_eq(strata_txn_read(t, y, &d, NULL, NULL), 0);
	cr_assert_eq(strata_txn_commit(t, NULL), 0);
	assert_stale_everywhere(s, x);
	test_close(s);
}

Test(otable, freed_by_txn_free_is_stale_and_reuse_bumps_tag_once)
{
	strata_store *s = test_open(NULL);
	strata_node_id x = commit_node(s, "r", 64, 1);
	const char *name = "r";
	strata_txn *t;
	for (int round = 0; round < 50; round++) {
		/* Free in one transaction, reclaim, reuse in the next. */
		cr_assert_eq(strata_txn_begin(s, &name, 1, 0, &t), 0);
		cr_assert_eq(strata_txn_free(t, x), 0);
		cr_assert_eq(strata_txn_set_root(t, name, STRATA_NODE_NULL), 0);
		cr_assert_eq(strata_txn_commit(t, NULL), 0);
		cr_assert_geq(strata_reclaim(s), 0);
		assert_stale_everywhere(s, x);
		strata_node_id y = commit_node(s, "r", 64, round);
		assert_reuse(x, y);
		x = y;
	}
	cr_assert_eq(STRATA_NODEID_TAG(x), 51);
	test_close(s);
}

Test(otable, own_node_freed_in_txn_is_stale_at_once)
{
	strata_store *s = test_open(NULL);
	strata_txn *t;
	strata_node_id a, b;
	void *p;
	cr_assert_eq(strata_txn_begin(s, NULL, 0, 0, &t), 0);
	cr_assert_eq(strata_txn_alloc(t, 32, 0, &a, &p), 0);
	memset(p, 0x5a, 32);
	cr_assert_eq(strata_txn_free(t, a), 0);
	const void *d;
	cr_assert_eq(strata_txn_read(t, a, &d, NULL, NULL), STRATA_ESTALE);
	cr_assert_eq(strata_txn_free(t, a), STRATA_ESTALE, "double free must be refused");
	cr_assert_eq(strata_txn_alloc(t, 32, 0, &b, &p), 0);
	assert_reuse(a, b);
	cr_assert_eq(strata_txn_read(t, a, &d, NULL, NULL), STRATA_ESTALE);
	uint64_t e;
	cr_assert_eq(strata_txn_commit(t, &e), 0);
	assert_stale_everywhere(s, a);
	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	cr_assert_eq(strata_resolve(snap, b, &d, NULL), 0, "b was committed (unreferenced)");
	strata_snapshot_close(snap);
	test_close(s);
}

Test(otable, forged_ids_are_stale)
{
	strata_options o;
	strata_options_init(&o);
	o.ot_shards_max = 4;
	strata_store *s = test_open(&o);
	strata_node_id x = commit_node(s, "r", 80, 3);
	uint32_t sh = STRATA_NODEID_SHARD(x), ix = STRATA_NODEID_INDEX(x);
	const strata_node_id forged[] = {
		STRATA_NODE_NULL,
		ot_make_id(sh, ix, 0),                 /* tag 0 is never valid */
		ot_make_id(sh, ix, 2),                 /* a tag not issued yet */
		ot_make_id(sh, ix, OT_TAG_MAX),
		ot_make_id(sh, ix + 500, 1),           /* never issued, chunk exists */
		ot_make_id(sh, ix + 500, 0),
		ot_make_id(sh, 1u << 20, 1),           /* chunk never allocated */
		ot_make_id(sh, (1u << 30) - 1, 1),
		ot_make_id(4, ix, 1),                  /* shard >= shards_max */
		ot_make_id(63, ix, 1),
		ot_make_id((sh + 1) & 3, ix, 1),       /* active-range shard, unused */
	};
	for (size_t i = 0; i < sizeof forged / sizeof forged[0]; i++)
		assert_stale_everywhere(s, forged[i]);
	/* The real one still resolves: the probes changed nothing. */
	strata_snapshot *snap;
	const void *d;
	uint32_t size;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	cr_assert_eq(strata_resolve(snap, x, &d, &size), 0);
	cr_assert_eq(size, 80);
	cr_assert_eq(((const unsigned char *)d)[79], 3);
	strata_snapshot_close(snap);
	test_close(s);
}

/* ---- white-box: a bare object table ---------------------------------------- */

static ot_entry *entry(otable *ot, strata_node_id id)
{
	return ot_entry_at(ot, STRATA_NODEID_SHARD(id), STRATA_NODEID_INDEX(id));
}

static uint32_t shard_accounting_gap(otable *ot, uint32_t sh)
{
	ot_shard *x = &ot->shards[sh];
	uint32_t in_use = 0;
	for (uint32_t i = 0; i < x->next_index; i++)
		if (OT_META_STATE(atomic_load(&ot_entry_at(ot, sh, i)->meta)) != OT_FREE)
			in_use++;
	return x->next_index - (in_use + x->nfree + (uint32_t)x->dead);
}

Test(otable, tag_bumps_exactly_once_per_free)
{
	otable ot;
	cr_assert_eq(ot_init(&ot, 1, 1), 0);
	strata_node_id prev = 0;
	for (uint32_t i = 0; i < 1000; i++) {
		strata_node_id id;
		cr_assert_eq(ot_alloc(&ot, EPOCH_PENDING | 1, 0x1000, OT_INFO(8, 0), &id), 0);
		cr_assert_eq(STRATA_NODEID_INDEX(id), 0);
		cr_assert_eq(STRATA_NODEID_TAG(id), i + 1);
		cr_assert_not_null(ot_entry_of(&ot, id));
		if (prev)
			cr_assert_null(ot_entry_of(&ot, prev), "old tag must not match");
		ot_free(&ot, id);
		cr_assert_null(ot_entry_of(&ot, id));
		uint32_t m = atomic_load(&entry(&ot, id)->meta);
		cr_assert_eq(OT_META_TAG(m), i + 2);
		cr_assert_eq(OT_META_STATE(m), OT_FREE);
		prev = id;
	}
	cr_assert_eq(shard_accounting_gap(&ot, 0), 0);
	ot_destroy(&ot);
}

Test(otable, tag_exhaustion_retires_handle_for_good)
{
	otable ot;
	cr_assert_eq(ot_init(&ot, 1, 1), 0);
	strata_node_id id;
	cr_assert_eq(ot_alloc(&ot, EPOCH_PENDING | 1, 0x1000, OT_INFO(8, 0), &id), 0);
	cr_assert_eq(STRATA_NODEID_INDEX(id), 0);
	/* Age the handle by hand to one before the last tag. */
	atomic_store(&entry(&ot, id)->meta, OT_META(OT_TAG_MAX - 1, OT_RESERVED));
	ot_free(&ot, id);
	strata_node_id last;
	cr_assert_eq(ot_alloc(&ot, EPOCH_PENDING | 1, 0x1000, OT_INFO(8, 0), &last), 0);
	cr_assert_eq(STRATA_NODEID_INDEX(last), 0, "the last tag is still usable once");
	cr_assert_eq(STRATA_NODEID_TAG(last), OT_TAG_MAX);
	cr_assert_not_null(ot_entry_of(&ot, last));

	ot_free(&ot, last);
	cr_assert_eq(ot.shards[0].dead, 1, "the exhausted handle is counted dead");
	cr_assert_eq(ot.shards[0].nfree, 0, "and is not on the free stack");
	cr_assert_null(ot_entry_of(&ot, last));
	uint32_t m = atomic_load(&entry(&ot, last)->meta);
	cr_assert_eq(OT_META_STATE(m), OT_FREE);
	cr_assert_eq(OT_META_TAG(m), OT_TAG_MAX, "the tag must not wrap to a small value");
	/* A wrapped tag would be 0 or 1: neither may ever match. */
	cr_assert_null(ot_entry_of(&ot, ot_make_id(0, 0, 0)));
	cr_assert_null(ot_entry_of(&ot, ot_make_id(0, 0, 1)));

	for (int i = 0; i < 1000; i++) {
		strata_node_id x;
		cr_assert_eq(ot_alloc(&ot, EPOCH_PENDING | 1, 0x1000, OT_INFO(8, 0), &x), 0);
		cr_assert_neq(STRATA_NODEID_INDEX(x), 0, "a dead handle was reissued");
		if (i % 3)
			ot_free(&ot, x);
	}
	uint64_t reserved, nfree, total;
	ot_counts(&ot, &reserved, &nfree, &total);
	/* Every third grant is kept; each freed handle is the next one
	 * granted (LIFO), so issued = dead index 0 + the kept ones. */
	cr_assert_eq(reserved, 334);
	cr_assert_eq(total, 1 + 334);
	cr_assert_eq(nfree, 0);
	cr_assert_eq(shard_accounting_gap(&ot, 0), 0);
	ot_destroy(&ot);
}

Test(otable, entry_lookup_checks_tag_and_state)
{
	otable ot;
	cr_assert_eq(ot_init(&ot, 2, 2), 0);
	strata_node_id id;
	cr_assert_eq(ot_alloc(&ot, 77, 0xbeef, OT_INFO(123, 9), &id), 0);
	ot_entry *e = ot_entry_of(&ot, id);
	cr_assert_not_null(e);
	cr_assert_eq(OT_META_STATE(atomic_load(&e->meta)), OT_RESERVED);
	cr_assert_eq(ot_birth(e), 77);
	cr_assert_eq(ot_retire(e), EPOCH_INF);
	cr_assert_eq(atomic_load(&e->loc), 0xbeef);
	cr_assert_eq(OT_INFO_SIZE(atomic_load(&e->info)), 123);
	cr_assert_eq(OT_INFO_KIND(atomic_load(&e->info)), 9);
	cr_assert_null(ot_entry_of(&ot, id + (1ull << 36)), "tag + 1 must not match");
	cr_assert_null(ot_entry_of(&ot, ot_make_id(2, 0, 1)), "shard beyond max");
	cr_assert_null(ot_entry_at(&ot, 2, 0));
	ot_free(&ot, id);
	cr_assert_null(ot_entry_of(&ot, id));
	cr_assert_eq(atomic_load(&e->loc), 0, "free clears the location");
	ot_destroy(&ot);
}

/* Stamps: the CRC halves survive every change of the epoch halves, and
 * the reader's key gives b <= s < r at the edges (internal.h). */
Test(otable, stamps_keep_the_crc_and_order_like_epochs)
{
	ot_entry e = {0};
	ot_stamp_init(&e, 5, EPOCH_INF, 0xdeadbeefu, memory_order_relaxed);
	cr_assert_eq(ot_crc(&e), 0xdeadbeefu);
	cr_assert(ot_birth(&e) == 5 && ot_retire(&e) == EPOCH_INF);
	uint64_t marker = EPOCH_PENDING | 12345;
	cr_assert(ot_stamp_cas(&e.rstamp, EPOCH_INF, marker));
	cr_assert(!ot_stamp_cas(&e.rstamp, EPOCH_INF, marker), "claimed once only");
	cr_assert_eq(ot_retire(&e), marker);
	ot_stamp_set(&e.rstamp, 9);
	cr_assert(ot_retire(&e) == 9 && ot_crc(&e) == 0xdeadbeefu, "the CRC outlives a retire");
	ot_set_crc(&e, 0x01234567u);
	cr_assert(ot_crc(&e) == 0x01234567u && ot_birth(&e) == 5 && ot_retire(&e) == 9,
		  "setting the CRC leaves the epochs alone");
	for (uint64_t s = 0; s < 12; s++) {
		uint64_t k = stamp_key(s);
		bool vis = atomic_load(&e.bstamp) <= k && k < atomic_load(&e.rstamp);
		cr_assert_eq(vis, s >= 5 && s < 9, "epoch %llu", (unsigned long long)s);
	}
	/* The last epoch is below every marker and below "never retired". */
	uint64_t last = stamp_key(EPOCH_PENDING - 1);
	ot_stamp_init(&e, EPOCH_PENDING - 1, EPOCH_INF, 0xffffffffu, memory_order_relaxed);
	cr_assert(atomic_load(&e.bstamp) <= last && last < atomic_load(&e.rstamp));
	ot_stamp_init(&e, marker, EPOCH_INF, 0xffffffffu, memory_order_relaxed);
	cr_assert(atomic_load(&e.bstamp) > last, "a marker birth is unborn to every epoch");
}

/* ---- shards ---------------------------------------------------------------- */

Test(otable, shards_active_starts_at_initial)
{
	const uint32_t initial[] = {1, 2, 8, 64};
	for (int i = 0; i < 4; i++) {
		strata_options o;
		strata_options_init(&o);
		o.ot_shards_initial = initial[i];
		strata_store *s = test_open(&o);
		strata_store_stats st;
		cr_assert_eq(strata_stats(s, &st), 0);
		cr_assert_eq(st.shards_active, initial[i]);
		cr_assert_eq(st.shards_max, 64);
		test_close(s);
	}
}

Test(otable, single_thread_stays_on_one_shard)
{
	/* No contention: nothing may activate shards. */
	otable ot;
	cr_assert_eq(ot_init(&ot, 64, 1), 0);
	for (int i = 0; i < 5000; i++) {
		strata_node_id id;
		cr_assert_eq(ot_alloc(&ot, 1, 0, OT_INFO(1, 0), &id), 0);
		cr_assert_eq(STRATA_NODEID_SHARD(id), 0);
		cr_assert_eq(STRATA_NODEID_INDEX(id), (uint32_t)i);
	}
	cr_assert_eq(atomic_load(&ot.shards_active), 1);
	ot_destroy(&ot);
}

typedef struct spread_arg {
	otable *ot;
	pthread_barrier_t *go;
	int n;
	uint64_t shard_mask; /* shards this thread's allocations went to */
} spread_arg;

static void *spread_worker(void *p)
{
	spread_arg *a = p;
	pthread_barrier_wait(a->go);
	for (int i = 0; i < a->n; i++) {
		strata_node_id id;
		if (ot_alloc(a->ot, 1, 0, OT_INFO(1, 0), &id) == 0)
			a->shard_mask |= 1ull << STRATA_NODEID_SHARD(id);
	}
	return NULL;
}

/* Runs `nthreads` allocating threads; returns the union of shards used and
 * checks each thread stayed on one home shard (active count fixed). */
static uint64_t run_spread(uint32_t shards, int nthreads, int *homes_distinct)
{
	otable ot;
	cr_assert_eq(ot_init(&ot, shards, shards), 0);
	pthread_barrier_t go;
	pthread_barrier_init(&go, NULL, (unsigned)nthreads);
	spread_arg args[16];
	pthread_t th[16];
	for (int i = 0; i < nthreads; i++) {
		args[i] = (spread_arg){&ot, &go, 300, 0};
		pthread_create(&th[i], NULL, spread_worker, &args[i]);
	}
	uint64_t all = 0;
	int distinct = 0;
	for (int i = 0; i < nthreads; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(__builtin_popcountll(args[i].shard_mask), 1,
			     "all shards active: a thread allocates from its home shard");
		if (!(all & args[i].shard_mask))
			distinct++;
		all |= args[i].shard_mask;
	}
	uint64_t reserved, nfree, total;
	ot_counts(&ot, &reserved, &nfree, &total);
	cr_assert_eq(reserved, (uint64_t)nthreads * 300);
	pthread_barrier_destroy(&go);
	ot_destroy(&ot);
	*homes_distinct = distinct;
	return all;
}

Test(otable, allocations_spread_over_64_shards)
{
	int distinct;
	uint64_t used = run_spread(64, 16, &distinct);
	cr_assert_geq(distinct, 12, "16 threads landed on only %d shards (mask %#llx)", distinct,
		      (unsigned long long)used);
}

Test(otable, two_active_shards_are_both_used)
{
	/* Every thread must not hash to the same shard of two: with 8 threads
	 * both shards get work, else activating a second shard buys nothing. */
	int distinct;
	uint64_t used = run_spread(2, 8, &distinct);
	cr_assert_eq(used, 3, "shards used mask %#llx", (unsigned long long)used);
}

typedef struct contend_arg {
	otable *ot;
	strata_node_id id;
	int rc;
} contend_arg;

static void *contend_worker(void *p)
{
	contend_arg *a = p;
	a->rc = ot_alloc(a->ot, 1, 0, OT_INFO(1, 0), &a->id);
	return NULL;
}

Test(otable, contention_activates_more_shards, .timeout = 60)
{
	/* Hold shard 0's lock: every allocating thread finds it contended. */
	enum { N = 64 };
	otable ot;
	cr_assert_eq(ot_init(&ot, 64, 1), 0);
	pthread_mutex_lock(&ot.shards[0].lock);
	contend_arg args[N];
	pthread_t th[N];
	for (int i = 0; i < N; i++) {
		args[i] = (contend_arg){&ot, 0, -1};
		pthread_create(&th[i], NULL, contend_worker, &args[i]);
	}
	struct timespec start;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		if (atomic_load(&ot.shards_active) > 1)
			break;
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec > 30)
			break;
		sched_yield();
	}
	uint32_t active = atomic_load(&ot.shards_active);
	pthread_mutex_unlock(&ot.shards[0].lock);
	for (int i = 0; i < N; i++)
		pthread_join(th[i], NULL);
	cr_assert_eq(active, 2, "64 contended locks must double the active shards once");
	for (int i = 0; i < N; i++) {
		cr_assert_eq(args[i].rc, 0);
		for (int j = 0; j < i; j++)
			cr_assert_neq(args[i].id, args[j].id);
	}
	ot_destroy(&ot);
}

/* ---- concurrent allocation ------------------------------------------------- */

enum { CT_THREADS = 8, CT_OPS = 20000, CT_HOLD = 64 };

typedef struct conc_arg {
	otable *ot;
	uint64_t seed;
	strata_node_id *issued; /* every ID this thread was given */
	size_t nissued;
	int errors;
} conc_arg;

static void *conc_worker(void *p)
{
	conc_arg *a = p;
	test_rng rng = {a->seed};
	strata_node_id held[CT_HOLD];
	uint64_t stamp[CT_HOLD];
	int n = 0;
	for (int op = 0; op < CT_OPS; op++) {
		if (n < CT_HOLD && (n == 0 || rng_below(&rng, 2))) {
			/* loc carries a value unique to this grant: if two
			 * threads got one entry at once, one would see the
			 * other's stamp when it frees. */
			uint64_t mine = a->seed << 32 | (uint64_t)op;
			if (ot_alloc(a->ot, 1, mine, OT_INFO(1, 0), &held[n])) {
				a->errors++;
				continue;
			}
			stamp[n] = mine;
			a->issued[a->nissued++] = held[n++];
		} else {
			int k = (int)rng_below(&rng, (uint64_t)n);
			ot_entry *e = ot_entry_of(a->ot, held[k]);
			if (!e || atomic_load(&e->loc) != stamp[k])
				a->errors++;
			ot_free(a->ot, held[k]);
			held[k] = held[--n];
			stamp[k] = stamp[n];
		}
	}
	for (int k = 0; k < n; k++)
		ot_free(a->ot, held[k]);
	return NULL;
}

static int id_cmp(const void *x, const void *y)
{
	strata_node_id a = *(const strata_node_id *)x, b = *(const strata_node_id *)y;
	return a < b ? -1 : a > b;
}

Test(otable, concurrent_alloc_gives_unique_ids, .timeout = 120)
{
	otable ot;
	cr_assert_eq(ot_init(&ot, 64, 1), 0);
	conc_arg args[CT_THREADS];
	pthread_t th[CT_THREADS];
	for (int i = 0; i < CT_THREADS; i++) {
		args[i] = (conc_arg){&ot, 1000 + (uint64_t)i, malloc(sizeof(strata_node_id) * CT_OPS), 0, 0};
		pthread_create(&th[i], NULL, conc_worker, &args[i]);
	}
	size_t total = 0;
	for (int i = 0; i < CT_THREADS; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(args[i].errors, 0, "thread %d (seed %llu) saw a shared entry", i,
			     (unsigned long long)args[i].seed);
		total += args[i].nissued;
	}
	/* No NodeID was ever issued twice, across threads and reuses. */
	strata_node_id *all = malloc(sizeof *all * total);
	size_t k = 0;
	for (int i = 0; i < CT_THREADS; i++) {
		memcpy(all + k, args[i].issued, sizeof *all * args[i].nissued);
		k += args[i].nissued;
		free(args[i].issued);
	}
	qsort(all, total, sizeof *all, id_cmp);
	for (size_t i = 1; i < total; i++)
		cr_assert_neq(all[i], all[i - 1], "NodeID %#llx issued twice",
			      (unsigned long long)all[i]);
	free(all);
	uint64_t reserved, nfree, issued;
	ot_counts(&ot, &reserved, &nfree, &issued);
	cr_assert_eq(reserved, 0);
	cr_assert_eq(nfree, issued, "every handle is back on a free stack");
	for (uint32_t sh = 0; sh < ot.shards_max; sh++)
		cr_assert_eq(shard_accounting_gap(&ot, sh), 0, "shard %u", sh);
	ot_destroy(&ot);
}

/* ---- batched frees ---------------------------------------------------------- */
typedef struct twin_arg {
	otable *a, *b;
	strata_node_id *ids;
	int n;
} twin_arg;

/* The same n grants from both tables (one thread: one home shard). */
static void *twin_worker(void *p)
{
	twin_arg *t = p;
	for (int i = 0; i < t->n; i++) {
		strata_node_id x, y;
		cr_assert_eq(ot_alloc(t->a, 1, 0x40, OT_INFO(8, 0), &x), 0);
		cr_assert_eq(ot_alloc(t->b, 1, 0x40, OT_INFO(8, 0), &y), 0);
		cr_assert_eq(x, y);
		t->ids[i] = x;
	}
	return NULL;
}

/* ot_free_ids over handles of several shards (one per thread), or of one,
 * more than one run of 64, leaves the table exactly as ot_free of each in
 * turn does. */
static void free_ids_vs_one_by_one(int THREADS)
{
	enum { PER = 50, N_MAX = 4 * PER };
	const int N = THREADS * PER;
	otable a, b;
	cr_assert_eq(ot_init(&a, 64, 64), 0);
	cr_assert_eq(ot_init(&b, 64, 64), 0);
	strata_node_id ids[N_MAX];
	for (int i = 0; i < THREADS; i++) {
		pthread_t th;
		twin_arg arg = {&a, &b, ids + i * PER, PER};
		pthread_create(&th, NULL, twin_worker, &arg);
		pthread_join(th, NULL);
	}
	uint64_t shards = 0;
	for (int i = 0; i < N; i++)
		shards |= 1ull << STRATA_NODEID_SHARD(ids[i]);
	cr_assert_eq(__builtin_popcountll(shards) > 1, THREADS > 1, "the handles must span shards");
	/* Interleave the threads' handles, so runs mix shards. */
	strata_node_id order[N_MAX];
	for (int i = 0; i < N; i++)
		order[i] = ids[(i % THREADS) * PER + i / THREADS];
	atomic_store(&entry(&a, order[7])->meta,
		     OT_META(STRATA_NODEID_TAG(order[7]), OT_RETIRED)); /* both states are freed */
	atomic_store(&entry(&b, order[7])->meta, OT_META(STRATA_NODEID_TAG(order[7]), OT_RETIRED));
	for (int i = 0; i < N; i++)
		ot_free(&a, order[i]);
	ot_free_ids(&b, order, (size_t)N);
	for (uint32_t s = 0; s < 64; s++) {
		cr_assert_eq(a.shards[s].nfree, b.shards[s].nfree, "shard %u", s);
		cr_assert_eq(a.shards[s].dead, b.shards[s].dead);
		cr_assert_eq(atomic_load(&a.shards[s].reserved), atomic_load(&b.shards[s].reserved));
		for (uint32_t k = 0; k < a.shards[s].nfree; k++)
			cr_assert_eq(a.shards[s].free_stack[k], b.shards[s].free_stack[k],
				     "shard %u, free stack position %u", s, k);
		cr_assert_eq(shard_accounting_gap(&b, s), 0);
	}
	for (int i = 0; i < N; i++) {
		cr_assert_null(ot_entry_of(&b, ids[i]));
		cr_assert_eq(atomic_load(&entry(&a, ids[i])->meta), atomic_load(&entry(&b, ids[i])->meta));
		cr_assert_eq(atomic_load(&entry(&b, ids[i])->loc), 0);
	}
	ot_destroy(&a);
	ot_destroy(&b);
}

Test(otable, free_ids_equals_freeing_one_by_one)
{
	free_ids_vs_one_by_one(4);
	free_ids_vs_one_by_one(1); /* every run of one shard */
}

/* The inline resolve (ot_entry_loaded, from the NodeID's bits) finds the
 * entry ot_entry_peek finds, whatever the tag, across chunk and shard
 * bits; a chunk never made gives NULL. */
Test(otable, loaded_entry_matches_peek)
{
	otable ot;
	cr_assert_eq(ot_init(&ot, 64, 1), 0);
	cr_assert_eq(ot_extend(&ot, 0, 3 * OT_CHUNK + 10), 0);
	cr_assert_eq(ot_extend(&ot, 63, 2 * OT_CHUNK), 0);
	const struct {
		uint32_t shard, index;
	} at[] = {{0, 0},  {0, 1},	       {0, OT_CHUNK - 1}, {0, OT_CHUNK}, {0, 3 * OT_CHUNK + 9},
		  {63, 0}, {63, OT_CHUNK + 77}, {63, 2 * OT_CHUNK - 1}};
	for (size_t i = 0; i < sizeof at / sizeof at[0]; i++)
		for (uint32_t tag = 0; tag <= OT_TAG_MAX; tag = tag * 7 + 1) {
			ot_entry *e = ot_entry_peek(&ot, at[i].shard, at[i].index);
			cr_assert_not_null(e);
			cr_assert_eq(ot_entry_loaded(&ot, ot_make_id(at[i].shard, at[i].index, tag)), e,
				     "shard %u index %u tag %u", at[i].shard, at[i].index, tag);
		}
	cr_assert_null(ot_entry_loaded(&ot, ot_make_id(0, 4 * OT_CHUNK, 1)), "chunk never made");
	cr_assert_null(ot_entry_loaded(&ot, ot_make_id(5, 0, 1)), "shard never used");
	cr_assert_null(ot_entry_loaded(&ot, ot_make_id(0, (1u << STRATA_NODEID_INDEX_BITS) - 1, OT_TAG_MAX)));
	ot_destroy(&ot);
}
