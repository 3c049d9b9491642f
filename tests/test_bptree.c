/*
 * test_bptree.c — the B+tree against a sorted-array model: random puts,
 * overwrites, deletes, cursor walks both ways, seeks and range counts with
 * small node sizes (deep trees) and shared-prefix keys, in IN_MEMORY and
 * DURABLE mode (close + reopen, strata_make_durable live, SIGKILL while
 * committing: every acknowledged SYNC commit survives); bulk load; bad
 * input leaving the tree untouched; several trees in one transaction (and
 * a B+tree table with an X-tree index);
 * snapshot readers while a writer commits; and the checker catching
 * damage; strata_bpt_check runs every 16 commits of the random workloads.
 *
 * STRATA_BPT_LONG=1 multiplies the random workloads by 10.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "durable.h"
#include "io_sim.h"
#include "strata/bptree.h"
#include "strata/xtree.h"
#include "support/model.h"

TestSuite(bptree, .fini = test_leak_check);

/* Under ThreadSanitizer (10-50x slower) the random workloads shrink: that
 * build looks for races, which the concurrent tests exercise; the normal
 * and ASan builds run everything. */
#if defined(__SANITIZE_THREAD__)
#define TSAN_BUILD 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TSAN_BUILD 1
#endif
#endif
#ifndef TSAN_BUILD
#define TSAN_BUILD 0
#endif

/* Workload size: 1/10 under TSan; x10 with STRATA_BPT_LONG=1. Returns
 * tenths. */
static unsigned scale10(void)
{
	const char *s = getenv("STRATA_BPT_LONG");
	unsigned k = s && *s && *s != '0' ? 100 : 10;
	return TSAN_BUILD ? k / 10 : k;
}

static unsigned scaled(unsigned n)
{
	unsigned v = n * scale10() / 10;
	return v ? v : 1;
}

/* ---- the model: a sorted array of owned byte strings ---- */
typedef struct kv {
	uint8_t *k, *v;
	size_t kl, vl;
} kv;
typedef struct model {
	kv *a;
	size_t n, cap;
} model;

static int kcmp(const void *a, size_t al, const void *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);
	return c ? c : (al > bl) - (al < bl);
}

/* First index with key >= k. */
static size_t m_lower(const model *m, const void *k, size_t kl)
{
	size_t lo = 0, hi = m->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (kcmp(m->a[mid].k, m->a[mid].kl, k, kl) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static bool m_has(const model *m, const void *k, size_t kl, size_t *at)
{
	*at = m_lower(m, k, kl);
	return *at < m->n && kcmp(m->a[*at].k, m->a[*at].kl, k, kl) == 0;
}

static uint8_t *bdup(const void *p, size_t n)
{
	uint8_t *d = malloc(n ? n : 1);
	cr_assert_not_null(d);
	if (n)
		memcpy(d, p, n);
	return d;
}

static void m_put(model *m, const void *k, size_t kl, const void *v, size_t vl)
{
	size_t at;
	if (m_has(m, k, kl, &at)) {
		free(m->a[at].v);
		m->a[at].v = bdup(v, vl);
		m->a[at].vl = vl;
		return;
	}
	if (m->n == m->cap) {
		m->cap = m->cap ? 2 * m->cap : 64;
		m->a = realloc(m->a, m->cap * sizeof *m->a);
		cr_assert_not_null(m->a);
	}
	memmove(m->a + at + 1, m->a + at, (m->n - at) * sizeof *m->a);
	m->a[at] = (kv){bdup(k, kl), bdup(v, vl), kl, vl};
	m->n++;
}

static void m_del(model *m, size_t at)
{
	free(m->a[at].k);
	free(m->a[at].v);
	memmove(m->a + at, m->a + at + 1, (m->n - at - 1) * sizeof *m->a);
	m->n--;
}

static void m_free(model *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->a[i].k);
		free(m->a[i].v);
	}
	free(m->a);
	*m = (model){0};
}

static void m_copy(model *dst, const model *src)
{
	m_free(dst);
	for (size_t i = 0; i < src->n; i++)
		m_put(dst, src->a[i].k, src->a[i].kl, src->a[i].v, src->a[i].vl);
}

/* ---- workload keys and values ---- */
/* Keys share long prefixes: "user/" + a group + "/" + a number, some
 * with a binary tail (NUL bytes included); with long_keys, preceded by
 * padding up to near the tree's key_max (entries of the largest
 * footprint, in branches too). */
static bool long_keys;
static size_t long_key_max; /* the tree's key_max, set by random_workload */
static size_t gen_key(test_rng *r, uint8_t *k, size_t kmax, unsigned space)
{
	uint64_t x = rng_below(r, space);
	size_t pad = 0;
	if (long_keys) {
		/* The padding comes first, so neighbours differ only near the
		 * end and separators are nearly as long as the keys. */
		kmax = kmax < long_key_max ? kmax : long_key_max;
		pad = kmax - 14 - x % 4;
		memset(k, 'p', pad);
	}
	int n = snprintf((char *)k + pad, kmax - pad, "user/%02u/%06llu", (unsigned)(x % 7),
			 (unsigned long long)x);
	size_t len = pad + ((size_t)n < kmax - pad ? (size_t)n : kmax - pad);
	if (x % 5 == 0 && len + 3 <= kmax) {
		k[len++] = 0;
		k[len++] = (uint8_t)x;
		k[len++] = 0xff;
	}
	return len;
}

static size_t gen_val(test_rng *r, uint8_t *v, size_t vmax)
{
	uint64_t kind = rng_below(r, 20);
	size_t len = kind == 0 ? 0 : kind == 1 ? 200 + rng_below(r, 5000) : rng_below(r, 40);
	if (len > vmax)
		len = vmax;
	for (size_t i = 0; i < len; i++)
		v[i] = (uint8_t)rng_next(r);
	return len;
}

/* ---- comparing tree and model ---- */
static void check_tree(strata_store *s, const char *name)
{
	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	test_collect col = {0};
	int rc = strata_bpt_check(snap, name, test_report_collect, &col);
	cr_assert_eq(rc, 0, "checker: %s (%d problems)", col.first, col.n);
	strata_snapshot_close(snap);
}

static void expect_same(strata_store *s, const char *name, const model *m)
{
	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	strata_bpt_cursor *c;
	cr_assert_eq(strata_bpt_cursor_open(snap, name, &c), 0);
	size_t i = 0;
	int rc;
	while ((rc = strata_bpt_cursor_next(c)) == 0) {
		const void *k, *v;
		size_t kl, vl;
		cr_assert_eq(strata_bpt_cursor_get(c, &k, &kl, &v, &vl), 0);
		cr_assert_lt(i, m->n, "tree has more keys than the model");
		cr_assert_eq(kcmp(k, kl, m->a[i].k, m->a[i].kl), 0, "key %zu differs", i);
		cr_assert_eq(vl, m->a[i].vl, "value %zu length", i);
		cr_assert(vl == 0 || memcmp(v, m->a[i].v, vl) == 0, "value %zu bytes", i);
		i++;
	}
	cr_assert_eq(rc, STRATA_ENOTFOUND);
	cr_assert_eq(i, m->n, "tree has %zu keys, model %zu", i, m->n);
	/* And backwards. */
	while ((rc = strata_bpt_cursor_prev(c)) == 0) {
		const void *k;
		size_t kl;
		cr_assert_eq(strata_bpt_cursor_get(c, &k, &kl, NULL, NULL), 0);
		cr_assert_gt(i, 0);
		i--;
		cr_assert_eq(kcmp(k, kl, m->a[i].k, m->a[i].kl), 0, "backward key %zu", i);
	}
	cr_assert_eq(i, 0);
	uint64_t cnt;
	cr_assert_eq(strata_bpt_count(snap, name, NULL, 0, NULL, 0, &cnt), 0);
	cr_assert_eq(cnt, m->n);
	strata_bpt_cursor_close(c);
	strata_snapshot_close(snap);
}

/* Random seeks, walks of a few steps both ways, range counts. */
static void probe_reads(strata_store *s, const char *name, const model *m, test_rng *r,
			unsigned space, unsigned n)
{
	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	strata_bpt_cursor *c;
	cr_assert_eq(strata_bpt_cursor_open(snap, name, &c), 0);
	uint8_t k[64], k2[64];
	for (unsigned t = 0; t < n; t++) {
		size_t kl = gen_key(r, k, sizeof k, space);
		if (rng_below(r, 4) == 0)
			kl = rng_below(r, kl + 1); /* prefixes, the empty key too */
		size_t at = m_lower(m, k, kl);
		int rc = strata_bpt_cursor_seek(c, k, kl);
		cr_assert_eq(rc, at < m->n ? 0 : STRATA_ENOTFOUND);
		bool fwd = rng_below(r, 2);
		for (unsigned step = 0; step < 5 && at < m->n; step++) {
			const void *ck;
			size_t ckl;
			cr_assert_eq(strata_bpt_cursor_get(c, &ck, &ckl, NULL, NULL), 0);
			cr_assert_eq(kcmp(ck, ckl, m->a[at].k, m->a[at].kl), 0, "walk at %zu", at);
			rc = fwd ? strata_bpt_cursor_next(c) : strata_bpt_cursor_prev(c);
			if (fwd ? at + 1 == m->n : at == 0) {
				cr_assert_eq(rc, STRATA_ENOTFOUND);
				break;
			}
			cr_assert_eq(rc, 0);
			at = fwd ? at + 1 : at - 1;
		}
		size_t kl2 = gen_key(r, k2, sizeof k2, space);
		uint64_t cnt;
		cr_assert_eq(strata_bpt_count(snap, name, k, kl, k2, kl2, &cnt), 0);
		size_t a = m_lower(m, k, kl), b = m_lower(m, k2, kl2);
		cr_assert_eq(cnt, b > a ? b - a : 0, "count [%zu, %zu)", a, b);
		size_t mat;
		bool has = kl && m_has(m, k, kl, &mat);
		const void *v;
		size_t vl;
		rc = strata_bpt_get(snap, name, k, kl, &v, &vl);
		cr_assert_eq(rc, kl == 0 ? STRATA_EKEYSIZE : has ? 0 : STRATA_ENOTFOUND);
		if (has)
			cr_assert(vl == m->a[mat].vl && (!vl || memcmp(v, m->a[mat].v, vl) == 0));
	}
	strata_bpt_cursor_close(c);
	strata_snapshot_close(snap);
}

static const char *const TREE = "t";

static void create_tree(strata_store *s, const char *name, uint32_t node_size)
{
	strata_txn *t;
	cr_assert_eq(strata_txn_begin(s, &name, 1, 0, &t), 0);
	strata_bpt_options o;
	strata_bpt_options_init(&o);
	o.node_size = node_size;
	cr_assert_eq(strata_bpt_create(t, name, &o), 0);
	cr_assert_eq(strata_txn_commit(t, NULL), 0);
}

/* One random operation inside t, mirrored in m. */
static void random_op(strata_txn *t, model *m, test_rng *r, unsigned space, uint32_t key_max)
{
	uint8_t k[64], v[6000];
	size_t kl = gen_key(r, k, key_max < sizeof k ? key_max : sizeof k, space);
	size_t at;
	bool has = m_has(m, k, kl, &at);
	uint64_t op = rng_below(r, 10);
	if (op < 5) {
		size_t vl = gen_val(r, v, sizeof v);
		unsigned fl = rng_below(r, 4) == 0 ? STRATA_BPT_NOOVERWRITE : 0;
		int rc = strata_bpt_put(t, TREE, k, kl, v, vl, fl);
		if (has && fl) {
			cr_assert_eq(rc, STRATA_EEXIST);
			return;
		}
		cr_assert_eq(rc, 0, "put: %s", strata_strerror(rc));
		m_put(m, k, kl, v, vl);
	} else if (op < 9) {
		int rc = strata_bpt_del(t, TREE, k, kl);
		cr_assert_eq(rc, has ? 0 : STRATA_ENOTFOUND, "del: %s", strata_strerror(rc));
		if (has)
			m_del(m, at);
	} else {
		const void *gv;
		size_t gl;
		int rc = strata_bpt_txn_get(t, TREE, k, kl, &gv, &gl);
		cr_assert_eq(rc, has ? 0 : STRATA_ENOTFOUND);
		if (has)
			cr_assert(gl == m->a[at].vl && (!gl || memcmp(gv, m->a[at].v, gl) == 0));
	}
}

/* Transactions of random size; one in eight aborts (the model rolls back). */
static void random_workload(strata_store *s, uint32_t node_size, unsigned txns, unsigned space,
			    uint64_t seed, model *m)
{
	test_rng r = {seed};
	model committed = {0};
	m_copy(&committed, m);
	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	strata_bpt_stats st;
	cr_assert_eq(strata_bpt_stats_get(snap, TREE, &st), 0);
	strata_snapshot_close(snap);
	long_key_max = st.key_max;
	for (unsigned i = 0; i < txns; i++) {
		strata_txn *t;
		cr_assert_eq(strata_txn_begin(s, &TREE, 1, 0, &t), 0);
		unsigned ops = 1 + (unsigned)rng_below(&r, 60);
		for (unsigned j = 0; j < ops; j++)
			random_op(t, m, &r, space, st.key_max);
		if (rng_below(&r, 8) == 0) {
			strata_txn_abort(t);
			m_copy(m, &committed);
		} else {
			cr_assert_eq(strata_txn_commit(t, NULL), 0);
			m_copy(&committed, m);
		}
		if (i % 16 == 15 || i + 1 == txns) {
			check_tree(s, TREE);
			probe_reads(s, TREE, m, &r, space, 20);
		}
	}
	expect_same(s, TREE, m);
	m_free(&committed);
	(void)node_size;
}

static void differential(uint32_t node_size, unsigned txns, unsigned space, uint64_t seed)
{
	strata_store *s = test_open(NULL);
	create_tree(s, TREE, node_size);
	model m = {0};
	random_workload(s, node_size, scaled(txns), space, seed, &m);
	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	strata_bpt_stats st;
	cr_assert_eq(strata_bpt_stats_get(snap, TREE, &st), 0);
	cr_log_info("node %u: %zu keys, height %u, %llu leaves, %llu branches, leaf fill %.2f",
		    node_size, m.n, st.height, (unsigned long long)st.leaf_nodes,
		    (unsigned long long)st.branch_nodes, st.leaf_fill);
	cr_assert_eq(st.count, m.n);
	if (node_size <= 512)
		cr_assert_geq(st.height, 3, "small nodes should make a deep tree");
	strata_snapshot_close(snap);
	m_free(&m);
	test_close(s);
}

Test(bptree, differential_node256, .timeout = 300)
{
	differential(256, 3000, 3000, 1);
}

Test(bptree, differential_node512, .timeout = 300)
{
	differential(512, 2500, 5000, 2);
}

Test(bptree, differential_node4096, .timeout = 300)
{
	differential(4096, 2000, 20000, 3);
}

/* Keys at the maximum length: entries of the largest footprint, where the
 * fill bound and the two-children rule of branches are tightest. */
Test(bptree, differential_max_keys, .timeout = 300)
{
	long_keys = true;
	differential(256, 1500, 3000, 4);
	differential(1024, 800, 5000, 5);
	long_keys = false;
}

/* Grow big, then delete everything: the tree must shrink back to one
 * empty leaf, checked all the way. */
Test(bptree, grow_then_drain, .timeout = 300)
{
	strata_store *s = test_open(NULL);
	create_tree(s, TREE, 256);
	model m = {0};
	test_rng r = {7};
	for (unsigned round = 0; round < 2; round++) {
		for (unsigned i = 0; i < 30; i++) {
			strata_txn *t;
			cr_assert_eq(strata_txn_begin(s, &TREE, 1, 0, &t), 0);
			for (unsigned j = 0; j < 50; j++) {
				uint8_t k[40], v[8];
				size_t kl = gen_key(&r, k, sizeof k, 100000);
				size_t vl = gen_val(&r, v, sizeof v);
				cr_assert_eq(strata_bpt_put(t, TREE, k, kl, v, vl, 0), 0);
				m_put(&m, k, kl, v, vl);
			}
			cr_assert_eq(strata_txn_commit(t, NULL), 0);
		}
		check_tree(s, TREE);
		expect_same(s, TREE, &m);
		while (m.n) {
			strata_txn *t;
			cr_assert_eq(strata_txn_begin(s, &TREE, 1, 0, &t), 0);
			for (unsigned j = 0; j < 37 && m.n; j++) {
				size_t at = rng_below(&r, m.n);
				cr_assert_eq(strata_bpt_del(t, TREE, m.a[at].k, m.a[at].kl), 0);
				m_del(&m, at);
			}
			cr_assert_eq(strata_txn_commit(t, NULL), 0);
			check_tree(s, TREE);
		}
		strata_snapshot *snap;
		cr_assert_eq(strata_snapshot_open(s, &snap), 0);
		strata_bpt_stats st;
		cr_assert_eq(strata_bpt_stats_get(snap, TREE, &st), 0);
		cr_assert_eq(st.height, 1);
		cr_assert_eq(st.leaf_nodes, 1);
		cr_assert_eq(st.count, 0);
		strata_snapshot_close(snap);
	}
	m_free(&m);
	test_close(s);
}

/* Sequential and reverse insert orders stress the split at either end. */
Test(bptree, sequential_and_reverse)
{
	strata_store *s = test_open(NULL);
	create_tree(s, TREE, 512);
	model m = {0};
	strata_txn *t;
	cr_assert_eq(strata_txn_begin(s, &TREE, 1, 0, &t), 0);
	for (unsigned i = 0; i < 3000; i++) {
		char k[16];
		unsigned x = i < 1500 ? i : 100000 - i;
		int kl = snprintf(k, sizeof k, "%08u", x);
		cr_assert_eq(strata_bpt_put(t, TREE, k, (size_t)kl, &x, sizeof x, 0), 0);
		m_put(&m, k, (size_t)kl, &x, sizeof x);
	}
	cr_assert_eq(strata_txn_commit(t, NULL), 0);
	check_tree(s, TREE);
	expect_same(s, TREE, &m);
	m_free(&m);
	test_close(s);
}

/* ---- bulk load ---- */
typedef struct src {
	const model *m;
	size_t i, stop_at;
	int stop_rc;
	bool swap_at_half;
} src;

static int src_next(void *ctx, const void **k, size_t *kl, const void **v, size_t *vl)
{
	src *x = ctx;
	if (x->i == x->stop_at)
		return x->stop_rc;
	if (x->i >= x->m->n)
		return 0;
	size_t i = x->i++;
	if (x->swap_at_half && i == x->m->n / 2)
		i++; /* yields entry i+1 twice: a duplicate, then out of order */
	*k = x->m->a[i].k;
	*kl = x->m->a[i].kl;
	*v = x->m->a[i].v;
	*vl = x->m->a[i].vl;
	return 1;
}

static void bulk_case(uint32_t node_size, size_t n, uint64_t seed)
{
	strata_store *s = test_open(NULL);
	create_tree(s, TREE, node_size);
	model m = {0};
	test_rng r = {seed};
	while (m.n < n) {
		uint8_t k[40], v[6000];
		size_t kl = gen_key(&r, k, node_size == 256 ? 36 : sizeof k, 1000000); /* key_max */
		m_put(&m, k, kl, v, gen_val(&r, v, sizeof v));
	}
	strata_txn *t;
	cr_assert_eq(strata_txn_begin(s, &TREE, 1, 0, &t), 0);
	src x = {.m = &m, .stop_at = SIZE_MAX};
	cr_assert_eq(strata_bpt_load(t, TREE, src_next, &x), 0);
	cr_assert_eq(strata_txn_commit(t, NULL), 0);
	check_tree(s, TREE);
	expect_same(s, TREE, &m);
	probe_reads(s, TREE, &m, &r, 1000000, 50);
	/* The loaded tree takes ordinary writes afterwards. */
	random_workload(s, node_size, 20, 1000000, seed + 1, &m);
	m_free(&m);
	test_close(s);
}

Test(bptree, bulk_load_sizes, .timeout = 300)
{
	size_t sizes[] = {0, 1, 2, 5, 17, 100, 1000, 5000};
	for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
		bulk_case(256, sizes[i], 10 + i);
		bulk_case(4096, sizes[i], 20 + i);
	}
}

Test(bptree, bulk_load_refuses_unsorted_and_nonempty)
{
	strata_store *s = test_open(NULL);
	create_tree(s, TREE, 256);
	model m = {0};
	for (unsigned i = 0; i < 500; i++) {
		char k[16];
		int kl = snprintf(k, sizeof k, "k%05u", i);
		m_put(&m, k, (size_t)kl, k, (size_t)kl);
	}
	strata_txn *t;
	cr_assert_eq(strata_txn_begin(s, &TREE, 1, 0, &t), 0);
	strata_node_id before, after;
	cr_assert_eq(strata_txn_get_root(t, TREE, &before), 0);
	src bad = {.m = &m, .stop_at = SIZE_MAX, .swap_at_half = true};
	cr_assert_eq(strata_bpt_load(t, TREE, src_next, &bad), STRATA_EINVAL);
	src stop = {.m = &m, .stop_at = 300, .stop_rc = -EIO};
	cr_assert_eq(strata_bpt_load(t, TREE, src_next, &stop), -EIO);
	cr_assert_eq(strata_txn_get_root(t, TREE, &after), 0);
	cr_assert_eq(before, after, "a refused load changed the root");
	uint64_t cnt = 1;
	const void *v;
	cr_assert_eq(strata_bpt_txn_get(t, TREE, "k00001", 6, &v, NULL), STRATA_ENOTFOUND);
	src ok = {.m = &m, .stop_at = SIZE_MAX};
	cr_assert_eq(strata_bpt_load(t, TREE, src_next, &ok), 0);
	src again = {.m = &m, .stop_at = SIZE_MAX};
	cr_assert_eq(strata_bpt_load(t, TREE, src_next, &again), STRATA_EINVAL, "tree not empty");
	cr_assert_eq(strata_txn_commit(t, NULL), 0);
	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	cr_assert_eq(strata_bpt_count(snap, TREE, NULL, 0, NULL, 0, &cnt), 0);
	cr_assert_eq(cnt, 500);
	strata_snapshot_close(snap);
	check_tree(s, TREE);
	/* Only the loaded nodes are live: the failed loads left nothing. */
	strata_store_stats st;
	cr_assert_eq(strata_stats(s, &st), 0);
	cr_assert_eq(st.nodes_reserved, 0);
	m_free(&m);
	test_close(s);
}

/* ---- bad input ---- */
Test(bptree, bad_input_leaves_tree_untouched)
{
	strata_store *s = test_open(NULL);
	create_tree(s, TREE, 256);
	const char *names[] = {TREE, "plain", "empty"};
	strata_txn *t;
	cr_assert_eq(strata_txn_begin(s, names, 3, 0, &t), 0);
	cr_assert_eq(strata_bpt_put(t, TREE, "a", 1, "1", 1, 0), 0);
	cr_assert_eq(strata_txn_commit(t, NULL), 0);
	cr_assert_eq(strata_txn_begin(s, names, 3, 0, &t), 0);
	/* A root that holds a foreign node. */
	strata_node_id fid;
	void *fp;
	cr_assert_eq(strata_txn_alloc(t, 64, 0x42, &fid, &fp), 0);
	cr_assert_eq(strata_txn_set_root(t, "plain", fid), 0);
	strata_node_id before, after;
	cr_assert_eq(strata_txn_get_root(t, TREE, &before), 0);
	char big[2000] = {0};
	cr_assert_eq(strata_bpt_put(t, TREE, big, 41, "v", 1, 0), STRATA_EKEYSIZE);
	cr_assert_eq(strata_bpt_put(t, TREE, big, 0, "v", 1, 0), STRATA_EKEYSIZE);
	cr_assert_eq(strata_bpt_put(t, TREE, NULL, 3, "v", 1, 0), STRATA_EINVAL);
	cr_assert_eq(strata_bpt_put(t, TREE, "k", 1, NULL, 1, 0), STRATA_EINVAL);
	cr_assert_eq(strata_bpt_put(t, TREE, "k", 1, "v", 1, 0x80), STRATA_EINVAL);
	cr_assert_eq(strata_bpt_put(t, TREE, "a", 1, "2", 1, STRATA_BPT_NOOVERWRITE),
		     STRATA_EEXIST);
	cr_assert_eq(strata_bpt_del(t, TREE, "zz", 2), STRATA_ENOTFOUND);
	cr_assert_eq(strata_bpt_del(t, TREE, big, 41), STRATA_EKEYSIZE);
	cr_assert_eq(strata_bpt_put(t, "plain", "k", 1, "v", 1, 0), STRATA_EWRONGINDEX);
	cr_assert_eq(strata_bpt_put(t, "empty", "k", 1, "v", 1, 0), STRATA_EWRONGINDEX);
	cr_assert_eq(strata_bpt_put(t, "unnamed", "k", 1, "v", 1, 0), STRATA_ENOTLOCKED);
	cr_assert_eq(strata_bpt_create(t, TREE, NULL), STRATA_EEXIST);
	strata_bpt_options o = {.node_size = 100};
	cr_assert_eq(strata_bpt_create(t, "empty", &o), STRATA_EINVAL);
	cr_assert_eq(strata_txn_get_root(t, TREE, &after), 0);
	cr_assert_eq(before, after, "bad input changed the tree");
	const void *v;
	size_t vl;
	cr_assert_eq(strata_bpt_txn_get(t, TREE, "a", 1, &v, &vl), 0);
	cr_assert(vl == 1 && memcmp(v, "1", 1) == 0);
	cr_assert_eq(strata_txn_commit(t, NULL), 0);
	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	cr_assert_eq(strata_bpt_get(snap, "plain", "k", 1, &v, &vl), STRATA_EWRONGINDEX);
	cr_assert_eq(strata_bpt_get(snap, "nosuch", "k", 1, &v, &vl), STRATA_ENOTFOUND);
	cr_assert_eq(strata_bpt_check(snap, "plain", NULL, NULL), STRATA_EWRONGINDEX);
	cr_assert_eq(strata_bpt_is_bptree(snap, "plain"), 0);
	cr_assert_eq(strata_bpt_is_bptree(snap, TREE), 1);
	strata_bpt_cursor *c = (strata_bpt_cursor *)&c; /* not NULL: the open must clear it */
	cr_assert_eq(strata_bpt_cursor_open(snap, "plain", &c), STRATA_EWRONGINDEX);
	cr_assert_null(c, "a failed open leaves *out NULL");
	c = (strata_bpt_cursor *)&c;
	cr_assert_eq(strata_bpt_cursor_open(snap, "nosuch", &c), STRATA_ENOTFOUND);
	cr_assert_null(c);
	strata_bpt_cursor_close(c);
	strata_snapshot_close(snap);
	check_tree(s, TREE);
	test_close(s);
}

/* A value overwritten between inline and overflow, and deleted: the
 * overflow nodes come and go (nothing leaks: test_close checks the store). */
Test(bptree, overflow_values_zero_copy)
{
	strata_store *s = test_open(NULL);
	create_tree(s, TREE, 4096);
	static uint8_t big[1 << 20];
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (uint8_t)(i * 7);
	strata_txn *t;
	cr_assert_eq(strata_txn_begin(s, &TREE, 1, 0, &t), 0);
	cr_assert_eq(strata_bpt_put(t, TREE, "big", 3, big, sizeof big, 0), 0);
	cr_assert_eq(strata_bpt_put(t, TREE, "small", 5, "x", 1, 0), 0);
	cr_assert_eq(strata_txn_commit(t, NULL), 0);
	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	const void *v, *v2;
	size_t vl;
	cr_assert_eq(strata_bpt_get(snap, TREE, "big", 3, &v, &vl), 0);
	cr_assert_eq(vl, sizeof big);
	cr_assert_eq(memcmp(v, big, vl), 0);
	cr_assert_eq(strata_bpt_get(snap, TREE, "big", 3, &v2, &vl), 0);
	cr_assert_eq(v, v2, "zero-copy: the same bytes both times");
	cr_assert_eq(strata_txn_begin(s, &TREE, 1, 0, &t), 0);
	cr_assert_eq(strata_bpt_put(t, TREE, "big", 3, "tiny", 4, 0), 0);
	cr_assert_eq(strata_bpt_put(t, TREE, "small", 5, big, 70000, 0), 0);
	cr_assert_eq(strata_txn_commit(t, NULL), 0);
	/* The old snapshot still sees the old big value. */
	cr_assert_eq(memcmp(v, big, sizeof big), 0);
	strata_snapshot_close(snap);
	check_tree(s, TREE);
	cr_assert_eq(strata_txn_begin(s, &TREE, 1, 0, &t), 0);
	cr_assert_eq(strata_bpt_del(t, TREE, "small", 5), 0);
	cr_assert_eq(strata_txn_commit(t, NULL), 0);
	strata_reclaim(s);
	strata_store_stats st;
	cr_assert_eq(strata_stats(s, &st), 0);
	cr_assert_eq(st.large_objects, 0, "overflow nodes freed");
	test_close(s);
}

/* ---- several trees in one transaction ---- */
Test(bptree, two_trees_one_transaction)
{
	strata_store *s = test_open(NULL);
	create_tree(s, "rows", 512);
	create_tree(s, "by_name", 512);
	const char *names[] = {"rows", "by_name"};
	strata_txn *t;
	cr_assert_eq(strata_txn_begin(s, names, 2, 0, &t), 0);
	for (unsigned i = 0; i < 200; i++) {
		char k[16], n[16];
		snprintf(k, sizeof k, "%06u", i);
		snprintf(n, sizeof n, "n%03u/%06u", i % 13, i);
		cr_assert_eq(strata_bpt_put(t, "rows", k, 6, n, strlen(n), 0), 0);
		cr_assert_eq(strata_bpt_put(t, "by_name", n, strlen(n), k, 6, 0), 0);
	}
	strata_txn_abort(t);
	strata_snapshot *snap;
	uint64_t a, b;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	cr_assert_eq(strata_bpt_count(snap, "rows", NULL, 0, NULL, 0, &a), 0);
	cr_assert_eq(strata_bpt_count(snap, "by_name", NULL, 0, NULL, 0, &b), 0);
	cr_assert(a == 0 && b == 0, "abort left %llu / %llu", (unsigned long long)a,
		  (unsigned long long)b);
	strata_snapshot_close(snap);
	cr_assert_eq(strata_txn_begin(s, names, 2, 0, &t), 0);
	for (unsigned i = 0; i < 200; i++) {
		char k[16], n[16];
		snprintf(k, sizeof k, "%06u", i);
		snprintf(n, sizeof n, "n%03u/%06u", i % 13, i);
		cr_assert_eq(strata_bpt_put(t, "rows", k, 6, n, strlen(n), 0), 0);
		cr_assert_eq(strata_bpt_put(t, "by_name", n, strlen(n), k, 6, 0), 0);
	}
	cr_assert_eq(strata_txn_commit(t, NULL), 0);
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	cr_assert_eq(strata_bpt_count(snap, "rows", NULL, 0, NULL, 0, &a), 0);
	cr_assert_eq(strata_bpt_count(snap, "by_name", "n003/", 5, "n004/", 5, &b), 0);
	cr_assert_eq(a, 200);
	cr_assert_eq(b, 16); /* i % 13 == 3 for i < 200: 3, 16, ..., 198 */
	strata_snapshot_close(snap);
	check_tree(s, "rows");
	check_tree(s, "by_name");
	test_close(s);
}

/* ---- the checker catches damage ---- */
static void damage_case(void (*harm)(uint8_t *leaf), const char *expect)
{
	strata_store *s = test_open(NULL);
	create_tree(s, TREE, 256);
	strata_txn *t;
	cr_assert_eq(strata_txn_begin(s, &TREE, 1, 0, &t), 0);
	for (unsigned i = 0; i < 200; i++) {
		char k[8];
		snprintf(k, sizeof k, "%05u", i);
		cr_assert_eq(strata_bpt_put(t, TREE, k, 5, k, 5, 0), 0);
	}
	cr_assert_eq(strata_txn_commit(t, NULL), 0);
	check_tree(s, TREE);
	/* Find the first leaf through a snapshot, then damage a copy of it
	 * in a transaction: write it (CoW) and hang the copy in its parent
	 * by repeating the descent with writes. */
	cr_assert_eq(strata_txn_begin(s, &TREE, 1, 0, &t), 0);
	strata_node_id id, nid;
	cr_assert_eq(strata_txn_get_root(t, TREE, &id), 0);
	void *p;
	cr_assert_eq(strata_txn_write(t, id, &nid, &p, NULL), 0);
	cr_assert_eq(strata_txn_set_root(t, TREE, nid), 0);
	uint8_t *meta = p;
	strata_node_id top;
	memcpy(&top, meta + 16, 8);
	uint32_t height;
	memcpy(&height, meta + 12, 4);
	cr_assert_geq(height, 2);
	uint8_t *parent = meta;
	size_t slot_field = 16;
	for (uint32_t l = height; l-- > 0;) {
		strata_node_id cid;
		memcpy(&cid, parent + slot_field, 8);
		cr_assert_eq(strata_txn_write(t, cid, &nid, &p, NULL), 0);
		memcpy(parent + slot_field, &nid, 8);
		parent = p;
		uint16_t off;
		memcpy(&off, parent + 16, 2); /* slot 0 */
		slot_field = off;             /* branch cell: child at +0 */
	}
	harm(parent);
	cr_assert_eq(strata_txn_commit(t, NULL), 0);
	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	test_collect col = {0};
	cr_assert_eq(strata_bpt_check(snap, TREE, test_report_collect, &col), STRATA_ECORRUPT);
	cr_assert(strstr(col.all, expect), "expected '%s' in: %s", expect, col.all);
	strata_snapshot_close(snap);
	test_close(s);
}

/* Slots are 6 bytes from byte 16: u16 cell offset, u32 key hint. */
static void swap_first_two(uint8_t *leaf)
{
	uint8_t tmp[6];
	memcpy(tmp, leaf + 16, 6);
	memmove(leaf + 16, leaf + 22, 6);
	memcpy(leaf + 22, tmp, 6);
}

static void bad_hint(uint8_t *leaf)
{
	leaf[16 + 6 + 2] ^= 0x40; /* slot 1's hint */
}

static void drop_last(uint8_t *leaf)
{
	uint16_t cnt;
	memcpy(&cnt, leaf + 4, 2);
	cnt--;
	memcpy(leaf + 4, &cnt, 2); /* the cell turns into unaccounted bytes */
}

static void bad_kind(uint8_t *leaf)
{
	leaf[2] = 0x11;
}

Test(bptree, checker_finds_damage)
{
	damage_case(swap_first_two, "keys not increasing");
	damage_case(drop_last, "garbage");
	damage_case(bad_kind, "bad header");
	damage_case(bad_hint, "hint");
}

/* ---- snapshots while a writer commits ---- */
/* The writer keeps an invariant in every commit: keys 0..N-1 all hold the
 * same generation number. Readers check that each snapshot sees one
 * generation throughout, and the count, while commits go on. */
#define SW_KEYS 400
typedef struct sw {
	strata_store *s;
	_Atomic bool stop;
	_Atomic unsigned reads;
	_Atomic unsigned failures;
} sw;

/* Runs on its own thread: failures are counted, asserted by the test. */
static bool sw_read_once(sw *x)
{
	strata_snapshot *snap;
	if (strata_snapshot_open(x->s, &snap))
		return true;
	strata_bpt_cursor *c;
	bool ok = strata_bpt_cursor_open(snap, TREE, &c) == 0;
	uint32_t gen = 0, n = 0;
	while (ok && strata_bpt_cursor_next(c) == 0) {
		const void *v;
		size_t vl;
		uint32_t g;
		ok = strata_bpt_cursor_get(c, NULL, NULL, &v, &vl) == 0 && vl >= 4;
		if (ok)
			memcpy(&g, v, 4);
		if (ok && n++ == 0)
			gen = g;
		ok = ok && g == gen; /* one generation per snapshot */
	}
	ok = ok && n == SW_KEYS;
	strata_bpt_cursor_close(c);
	strata_snapshot_close(snap);
	return ok;
}

static void *sw_reader(void *arg)
{
	sw *x = arg;
	while (!x->stop) {
		if (!sw_read_once(x))
			x->failures++;
		x->reads++;
	}
	return NULL;
}

Test(bptree, snapshot_readers_while_writer_commits, .timeout = 300)
{
	strata_store *s = test_open(NULL);
	create_tree(s, TREE, 256);
	sw x = {.s = s};
	pthread_t rd[2];
	strata_txn *t;
	/* 200 generations, then more until a reader has read one (bounded): on
	 * a loaded machine the writer can finish before they are scheduled. */
	double until = test_now_s() + 60;
	for (uint32_t gen = 0; gen < 200 || (x.reads == 0 && test_now_s() < until); gen++) {
		cr_assert_eq(strata_txn_begin(s, &TREE, 1, 0, &t), 0);
		for (unsigned i = 0; i < SW_KEYS; i++) {
			char k[8];
			uint8_t v[40] = {0};
			snprintf(k, sizeof k, "%05u", (i * 37) % SW_KEYS);
			memcpy(v, &gen, 4);
			size_t vl = 4 + (gen + i) % 30; /* sizes change: splits and merges */
			cr_assert_eq(strata_bpt_put(t, TREE, k, 5, v, vl, 0), 0);
		}
		cr_assert_eq(strata_txn_commit(t, NULL), 0);
		if (gen == 0)
			for (int i = 0; i < 2; i++)
				pthread_create(&rd[i], NULL, sw_reader, &x);
	}
	x.stop = true;
	for (int i = 0; i < 2; i++)
		pthread_join(rd[i], NULL);
	cr_log_info("reader snapshots checked: %u", x.reads);
	cr_assert_gt(x.reads, 0);
	cr_assert_eq(x.failures, 0, "%u of %u snapshots saw a torn or wrong tree", x.failures,
		     x.reads);
	check_tree(s, TREE);
	test_close(s);
}

/* ---- DURABLE mode ---- */
static char *tmpdir(void)
{
	char *d = strdup("/tmp/strata-bpt-XXXXXX");
	cr_assert_not_null(mkdtemp(d), "mkdtemp: %s", strerror(errno));
	return d;
}

static void rmtree(const char *d)
{
	char cmd[512];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
	cr_assert_eq(system(cmd), 0);
}

static strata_store *open_durable(const char *dir)
{
	strata_options o = test_durable_options(dir, false);
	o.durability = STRATA_ASYNC;
	return test_open(&o);
}

Test(bptree, durable_reopen, .timeout = 300)
{
	char *dir = tmpdir();
	strata_store *s = open_durable(dir);
	create_tree(s, TREE, 512);
	model m = {0};
	random_workload(s, 512, scaled(600), 4000, 41, &m);
	test_close(s);
	s = open_durable(dir);
	check_tree(s, TREE);
	expect_same(s, TREE, &m);
	random_workload(s, 512, scaled(60), 4000, 42, &m);
	cr_assert_eq(strata_checkpoint(s), 0);
	random_workload(s, 512, 20, 4000, 43, &m);
	test_close(s);
	s = open_durable(dir);
	check_tree(s, TREE);
	expect_same(s, TREE, &m);
	test_close(s);
	m_free(&m);
	rmtree(dir);
	free(dir);
}

Test(bptree, make_durable_live, .timeout = 300)
{
	char *dir = tmpdir();
	char sub[600];
	snprintf(sub, sizeof sub, "%s/db", dir);
	strata_store *s = test_open(NULL);
	create_tree(s, TREE, 256);
	model m = {0};
	random_workload(s, 256, 80, 3000, 51, &m);
	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	cr_assert_eq(strata_make_durable(s, sub), 0, "%s", strata_last_error());
	/* A snapshot from before the switch still reads. */
	uint64_t cnt;
	cr_assert_eq(strata_bpt_count(snap, TREE, NULL, 0, NULL, 0, &cnt), 0);
	cr_assert_eq(cnt, m.n);
	strata_snapshot_close(snap);
	random_workload(s, 256, 40, 3000, 52, &m);
	test_close(s);
	s = open_durable(sub);
	check_tree(s, TREE);
	expect_same(s, TREE, &m);
	test_close(s);
	m_free(&m);
	rmtree(dir);
	free(dir);
}

/* ---- a crash: SIGKILL while committing --------------------------------------- */
/* Commit k (from 1) puts 40 keys with value k and deletes 13, and sets
 * "#gen" to k. The same function drives the child and rebuilds the model. */
static void crash_commit_ops(uint32_t k, strata_txn *t, model *m, int *rc)
{
	char key[16];
	for (uint32_t i = 0; i < 53; i++) {
		uint32_t x = (k * 7919u + i * 104729u) % 4000u;
		int kl = snprintf(key, sizeof key, "k%05u", x);
		if (i < 40) {
			if (t && !*rc)
				*rc = strata_bpt_put(t, TREE, key, (size_t)kl, &k, sizeof k, 0);
			if (m)
				m_put(m, key, (size_t)kl, &k, sizeof k);
			continue;
		}
		size_t at;
		bool has = m ? m_has(m, key, (size_t)kl, &at) : false;
		if (t && !*rc) {
			int d = strata_bpt_del(t, TREE, key, (size_t)kl);
			*rc = d == STRATA_ENOTFOUND ? 0 : d;
		}
		if (m && has)
			m_del(m, at);
	}
	if (t && !*rc)
		*rc = strata_bpt_put(t, TREE, "#gen", 4, &k, sizeof k, 0);
	if (m)
		m_put(m, "#gen", 4, &k, sizeof k);
}

/* Power loss (io_sim) after every I/O step of a workload committed SYNC,
 * checkpoints between (test_power_loss_campaign): whatever unsynced writes
 * the loss drops, keeps or tears, the reopened tree is exactly the tree of
 * the last acknowledged commit or of the one in flight, and passes both
 * checkers. Trees are compared by their count and a hash chained over
 * every key and value in key order. */
static test_digest bd_add(test_digest g, const void *k, size_t kl, const void *v, size_t vl)
{
	g.n++;
	g.h = test_fnv(g.h, &kl, sizeof kl);
	g.h = test_fnv(g.h, k, kl);
	g.h = test_fnv(g.h, &vl, sizeof vl);
	g.h = test_fnv(g.h, v, vl);
	return g;
}

static test_digest bd_model(const model *m)
{
	test_digest g = {0, TEST_FNV_SEED};
	for (size_t i = 0; i < m->n; i++)
		g = bd_add(g, m->a[i].k, m->a[i].kl, m->a[i].v, m->a[i].vl);
	return g;
}

enum { BPL_TXNS = 12 };

static uint32_t bpl_workload(io_env *env, test_digest *want)
{
	strata_options o = test_durable_options("db", true);
	strata_store *s;
	if (store_open_env(&o, env, &s))
		return 0;
	strata_txn *t;
	uint32_t acked = 0;
	model m = {0};
	if (strata_txn_begin(s, &TREE, 1, STRATA_TXN_SYNC, &t))
		goto out;
	strata_bpt_options bo;
	strata_bpt_options_init(&bo);
	bo.node_size = 512;
	if (strata_bpt_create(t, TREE, &bo)) {
		strata_txn_abort(t);
		goto out;
	}
	if (strata_txn_commit(t, NULL))
		goto out;
	want[acked++] = bd_model(&m);
	test_rng r = {8086};
	for (uint32_t c = 1; c <= BPL_TXNS; c++) {
		if (strata_txn_begin(s, &TREE, 1, STRATA_TXN_SYNC, &t))
			break;
		for (int i = 0; i < 40; i++) /* in memory: the I/O is the commit's */
			random_op(t, &m, &r, 400, 64);
		want[c] = bd_model(&m);
		if (strata_txn_commit(t, NULL))
			break;
		acked = c + 1;
		if (c % 4 == 3 && strata_checkpoint(s))
			break;
	}
out:
	m_free(&m);
	strata_close(s); /* fails once the machine stopped */
	return acked;
}

static int bpl_read(strata_store *s, test_digest *got)
{
	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	strata_bpt_cursor *c;
	int rc = strata_bpt_cursor_open(snap, TREE, &c);
	*got = (test_digest){0, TEST_FNV_SEED};
	while (!rc && (rc = strata_bpt_cursor_next(c)) == 0) {
		const void *kp, *vp;
		size_t kl, vl;
		cr_assert_eq(strata_bpt_cursor_get(c, &kp, &kl, &vp, &vl), 0);
		*got = bd_add(*got, kp, kl, vp, vl);
	}
	if (c) { /* the walk ended: at the end, or an error */
		cr_assert_eq(rc, STRATA_ENOTFOUND, "%s", strata_strerror(rc));
		test_collect col = {0};
		cr_assert_eq(strata_bpt_check(snap, TREE, test_report_collect, &col), 0, "%s",
			     col.first);
		rc = 0;
	}
	strata_bpt_cursor_close(c);
	strata_snapshot_close(snap);
	return rc;
}

Test(bptree, power_loss_leaves_the_tree_of_one_commit, .timeout = 600)
{
	test_power_loss_campaign(bpl_workload, bpl_read, BPL_TXNS + 1);
}

/* The child: commits until killed, reporting each acknowledged commit. */
static void crash_child(const char *dir, int fd)
{
	strata_options o = test_durable_options(dir, false);
	strata_store *s;
	strata_txn *t;
	int rc = strata_open(&o, &s);
	if (!rc && !(rc = strata_txn_begin(s, &TREE, 1, 0, &t))) {
		strata_bpt_options bo = {.node_size = 256};
		if ((rc = strata_bpt_create(t, TREE, &bo)) == 0)
			rc = strata_txn_commit(t, NULL);
		else
			strata_txn_abort(t);
	}
	for (uint32_t k = 1; rc == 0; k++) {
		if ((rc = strata_txn_begin(s, &TREE, 1, STRATA_TXN_SYNC, &t)))
			break;
		crash_commit_ops(k, t, NULL, &rc);
		if (rc) {
			strata_txn_abort(t);
			break;
		}
		if ((rc = strata_txn_commit(t, NULL)) || write(fd, &k, sizeof k) != sizeof k)
			break;
	}
	_exit(1); /* only a failure gets here: the parent kills us */
}

Test(bptree, durable_survives_sigkill, .timeout = 300)
{
	if (TSAN_BUILD) /* TSan cannot start threads in a child of a threaded process */
		cr_skip_test("fork + threads under ThreadSanitizer; runs in the other builds");
	char *dir = tmpdir();
	test_rng r = {77};
	for (int round = 0; round < 3; round++) {
		char sub[600];
		snprintf(sub, sizeof sub, "%s/r%d", dir, round);
		int pfd[2];
		cr_assert_eq(pipe(pfd), 0);
		pid_t pid = fork();
		cr_assert_geq(pid, 0);
		if (pid == 0) {
			close(pfd[0]);
			crash_child(sub, pfd[1]);
		}
		close(pfd[1]);
		uint32_t acked = 0, k, want = 20 + (uint32_t)rng_below(&r, 60);
		while (acked < want && read(pfd[0], &k, sizeof k) == sizeof k)
			acked = k;
		cr_assert_eq(acked, want, "the child stopped early (failed) after %u commits", acked);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		while (read(pfd[0], &k, sizeof k) == sizeof k)
			acked = k;
		close(pfd[0]);
		strata_store *s = open_durable(sub);
		check_tree(s, TREE);
		strata_snapshot *snap;
		cr_assert_eq(strata_snapshot_open(s, &snap), 0);
		const void *v;
		size_t vl;
		uint32_t gen;
		cr_assert_eq(strata_bpt_get(snap, TREE, "#gen", 4, &v, &vl), 0);
		memcpy(&gen, v, sizeof gen);
		strata_snapshot_close(snap);
		/* Every acknowledged SYNC commit survived; one more may have. */
		cr_assert(gen == acked || gen == acked + 1, "recovered commit %u, acked %u", gen,
			  acked);
		model m = {0};
		int rc = 0;
		for (uint32_t c = 1; c <= gen; c++)
			crash_commit_ops(c, NULL, &m, &rc);
		expect_same(s, TREE, &m);
		m_free(&m);
		test_close(s);
	}
	rmtree(dir);
	free(dir);
}

/* ---- a table with a secondary spatial index (design/BPTREE.md) -------------- */
/* Rows by id in a B+tree, their locations in an X-tree: one transaction
 * changes both, and commits or aborts both. */
static int add_place(strata_txn *t, uint64_t id, const char *name, double x, double y)
{
	uint8_t key[8];
	for (int i = 0; i < 8; i++)
		key[i] = (uint8_t)(id >> (56 - 8 * i)); /* big-endian: memcmp = id order */
	int rc = strata_bpt_put(t, "places", key, sizeof key, name, strlen(name), 0);
	if (rc == 0) {
		const double pt[2] = {x, y};
		rc = strata_xt_insert(t, "places_geo", 2, pt, NULL, id);
	}
	return rc;
}

static void expect_counts(strata_store *s, uint64_t want)
{
	strata_snapshot *snap;
	uint64_t rows, points;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	cr_assert_eq(strata_bpt_count(snap, "places", NULL, 0, NULL, 0, &rows), 0);
	cr_assert_eq(strata_xt_count(snap, "places_geo", &points), 0);
	cr_assert_eq(rows, want);
	cr_assert_eq(points, want);
	cr_assert_eq(strata_bpt_check(snap, "places", test_report, NULL), 0);
	cr_assert_eq(strata_xt_check(snap, "places_geo", test_report, NULL), 0);
	strata_snapshot_close(snap);
}

Test(bptree, table_with_spatial_index)
{
	strata_store *s = test_open(NULL);
	const char *roots[] = {"places", "places_geo"};
	strata_txn *t;
	cr_assert_eq(strata_txn_begin(s, roots, 2, 0, &t), 0);
	cr_assert_eq(strata_bpt_create(t, "places", NULL), 0);
	cr_assert_eq(strata_xt_create(t, "places_geo", 2, NULL), 0);
	for (uint64_t id = 1; id <= 500; id++)
		cr_assert_eq(add_place(t, id, "somewhere", (double)(id % 37), (double)(id % 23)), 0);
	cr_assert_eq(strata_txn_commit(t, NULL), 0);
	expect_counts(s, 500);
	/* A transaction that fails half-way is aborted: neither index moves. */
	cr_assert_eq(strata_txn_begin(s, roots, 2, 0, &t), 0);
	for (uint64_t id = 501; id <= 600; id++)
		cr_assert_eq(add_place(t, id, "elsewhere", 1.0, 2.0), 0);
	const double bad[2] = {NAN, 0};
	cr_assert_eq(strata_xt_insert(t, "places_geo", 2, bad, NULL, 601), STRATA_ECOORD);
	strata_txn_abort(t);
	expect_counts(s, 500);
	test_close(s);
}
