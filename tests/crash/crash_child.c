/*
 * crash_child.c — the workload process of a crash cycle. It opens (or
 * creates) the store, writes what it found to the shared region, then runs
 * `threads` workers until the parent kills it. Worker t owns roots 2t and
 * 2t+1; a fifth of its transactions span one of them and any other root
 * (so workers contend). Commits are mostly SYNC (in a third of the cycles
 * mostly ASYNC and NONE), a few use NOWAIT or abort; now and then a worker
 * takes a checkpoint or reads its roots through a snapshot and checks every
 * byte.
 *
 * Logging protocol per commit (crash.h): arm the thread's pending record,
 * commit, write the log record and mark it valid, disarm. Any error is a
 * violation: the first one is written to child_msg and the child exits 2.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "crash.h"

typedef struct worker {
	const crash_cycle *cy;
	strata_store *s;
	uint32_t t;
	uint32_t opno;
	uint32_t sync_pct; /* share of SYNC commits */
	crash_rng rng;
} worker;

/* Reports the first error and ends the child; a later one waits for it. */
__attribute__((noreturn, format(printf, 2, 3))) static void child_fail(const crash_cycle *cy,
								       const char *fmt, ...)
{
	uint32_t zero = 0;
	if (!atomic_compare_exchange_strong(&cy->sh->failed, &zero, 1))
		for (;;)
			pause();
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cy->sh->child_msg, sizeof cy->sh->child_msg, fmt, ap);
	va_end(ap);
	_exit(2);
}

/* ---- children of a root ------------------------------------------------ */
static uint32_t child_size(crash_rng *r)
{
	uint64_t x = crash_below(r, 100);
	if (x < 8) /* a large object: WAL files fill in a few cycles */
		return 65537 + (uint32_t)crash_below(r, 131072);
	return 16 + (uint32_t)crash_below(r, x < 60 ? 240 : 3000);
}

static void new_child(worker *w, strata_txn *t, uint32_t root, uint64_t seq, uint32_t slot,
		      child_ref *c)
{
	void *p;
	*c = (child_ref){.seq = seq, .key = seq << 4 | slot, .cycle = (uint32_t)w->cy->cycle,
			 .size = child_size(&w->rng)};
	int rc = strata_txn_alloc(t, c->size, CHILD_KIND, &c->id, &p);
	if (rc)
		child_fail(w->cy, "thread %u: alloc of %u bytes: %s", w->t, c->size, strata_strerror(rc));
	child_fill(p, root, c);
}

/* Copy-on-write of a child, with new bytes of the same size. */
static void rewrite_child(worker *w, strata_txn *t, uint32_t root, uint64_t seq, uint32_t slot,
			  child_ref *c)
{
	void *p;
	uint32_t size = 0;
	int rc = strata_txn_write(t, c->id, &c->id, &p, &size);
	if (rc || size != c->size)
		child_fail(w->cy, "thread %u: write of child %#" PRIx64 ": %s (size %u, expected %u)",
			   w->t, c->id, strata_strerror(rc), size, c->size);
	c->seq = seq;
	c->key = seq << 4 | slot;
	c->cycle = (uint32_t)w->cy->cycle;
	child_fill(p, root, c);
}

static void free_node(worker *w, strata_txn *t, strata_node_id id)
{
	int rc = strata_txn_free(t, id);
	if (rc)
		child_fail(w->cy, "thread %u: free of %#" PRIx64 ": %s", w->t, id, strata_strerror(rc));
}

static void mutate_children(worker *w, strata_txn *t, uint32_t root, uint64_t seq, child_ref *refs,
			    uint32_t *n)
{
	for (uint32_t i = 0; i < *n; i++) {
		uint64_t x = crash_below(&w->rng, 100);
		if (x < 20) {
			rewrite_child(w, t, root, seq, i, &refs[i]);
		} else if (x < 28) {
			free_node(w, t, refs[i].id);
			new_child(w, t, root, seq, i, &refs[i]);
		} else if (x < 33) {
			free_node(w, t, refs[i].id);
			refs[i--] = refs[--*n];
		}
	}
	if (*n < CRASH_MAX_CHILD && crash_below(&w->rng, 100) < 35) {
		new_child(w, t, root, seq, *n, &refs[*n]);
		++*n;
	}
}

/* A reader saw root `root` at `seq`, written by a SYNC commit. */
static void seen_sync(const crash_cycle *cy, uint32_t root, uint64_t seq)
{
	_Atomic uint64_t *cell = &cy->sh->seen_sync[root];
	uint64_t cur = atomic_load(cell);
	while (cur < seq && !atomic_compare_exchange_weak(cell, &cur, seq))
		;
}

/* ---- one root's part of a transaction ---------------------------------- */
/* Reads the root's node; h->seq 0 when the root was never committed. */
static strata_node_id read_root(worker *w, strata_txn *t, uint32_t root, root_hdr *h,
				child_ref *refs)
{
	char name[16];
	strata_node_id id = STRATA_NODE_NULL;
	root_name(root, name);
	memset(h, 0, sizeof *h);
	int rc = strata_txn_get_root(t, name, &id);
	if (rc)
		child_fail(w->cy, "thread %u: get_root %s: %s", w->t, name, strata_strerror(rc));
	if (!id)
		return STRATA_NODE_NULL;
	const void *d;
	uint32_t size = 0;
	const char *defect = NULL;
	if ((rc = strata_txn_read(t, id, &d, &size, NULL)) || (defect = root_node_defect(d, size, root)))
		child_fail(w->cy, "thread %u: root %u node %#" PRIx64 " read in a transaction: %s", w->t,
			   root, id, rc ? strata_strerror(rc) : defect);
	memcpy(h, d, sizeof *h);
	memcpy(refs, (const uint8_t *)d + sizeof *h, h->nchild * sizeof *refs);
	if (h->mode == STRATA_SYNC)
		seen_sync(w->cy, root, h->seq);
	return id;
}

/* The root's next node: copy-on-write (half the time when its size stays),
 * or a new node and the old one freed. */
static void *next_root_node(worker *w, strata_txn *t, strata_node_id old, bool same_size,
			    uint32_t size, strata_node_id *id)
{
	void *p;
	uint32_t got = 0;
	int rc;
	if (old && same_size && crash_below(&w->rng, 2)) {
		if ((rc = strata_txn_write(t, old, id, &p, &got)) || got != size)
			child_fail(w->cy, "thread %u: write of root node %#" PRIx64 ": %s (size %u, expected %u)",
				   w->t, old, strata_strerror(rc), got, size);
		return p;
	}
	if (old)
		free_node(w, t, old);
	if ((rc = strata_txn_alloc(t, size, ROOT_KIND, id, &p)))
		child_fail(w->cy, "thread %u: alloc of a root node: %s", w->t, strata_strerror(rc));
	return p;
}

static root_val write_root(worker *w, strata_txn *t, uint32_t root, uint8_t mode)
{
	root_hdr h;
	child_ref refs[CRASH_MAX_CHILD];
	strata_node_id old = read_root(w, t, root, &h, refs), id;
	uint32_t n = h.nchild, old_size = ROOT_NODE_SIZE(n);
	h = (root_hdr){.magic = ROOT_MAGIC, .root = root, .seq = h.seq + 1,
		       .cycle = (uint32_t)w->cy->cycle, .thread = w->t, .mode = mode};
	mutate_children(w, t, root, h.seq, refs, &n);
	h.nchild = n;
	uint8_t *p = next_root_node(w, t, old, old_size == ROOT_NODE_SIZE(n), ROOT_NODE_SIZE(n), &id);
	memcpy(p, &h, sizeof h);
	memcpy(p + sizeof h, refs, n * sizeof *refs);
	h.sum = root_node_sum(p, ROOT_NODE_SIZE(n));
	memcpy(p + offsetof(root_hdr, sum), &h.sum, sizeof h.sum);
	char name[16];
	root_name(root, name);
	int rc = strata_txn_set_root(t, name, id);
	if (rc)
		child_fail(w->cy, "thread %u: set_root %s: %s", w->t, name, strata_strerror(rc));
	return (root_val){.seq = h.seq, .sum = h.sum, .cycle = h.cycle, .mode = mode};
}

/* ---- transactions ------------------------------------------------------ */
static const unsigned mode_flag[] = {STRATA_TXN_SYNC, STRATA_TXN_ASYNC, STRATA_TXN_NONE};

/* 70% SYNC; in a third of the cycles 20%, so that kills catch unsynced
 * ASYNC and NONE commits. */
static strata_durability pick_mode(worker *w)
{
	uint64_t x = crash_below(&w->rng, 100), sync = w->sync_pct;
	return x < sync ? STRATA_SYNC : x < sync + (100 - sync) / 2 ? STRATA_ASYNC : STRATA_NONE;
}

/* The roots of the next transaction: one of the thread's own, and a fifth
 * of the time a second one, anybody's. */
static uint8_t pick_roots(worker *w, uint32_t root[2])
{
	uint32_t n = w->cy->nroots;
	root[0] = w->t * CRASH_ROOTS_PER_THREAD + (uint32_t)crash_below(&w->rng, CRASH_ROOTS_PER_THREAD);
	if (n < 2 || crash_below(&w->rng, 5))
		return 1;
	root[1] = (root[0] + 1 + (uint32_t)crash_below(&w->rng, n - 1)) % n;
	return 2;
}

static strata_txn *begin(worker *w, const crash_body *b)
{
	char names[2][16];
	const char *list[2] = {names[0], names[1]};
	for (uint8_t i = 0; i < b->nroots; i++)
		root_name(b->root[i], names[i]);
	unsigned flags = mode_flag[b->mode];
	bool nowait = crash_below(&w->rng, 20) == 0;
	strata_txn *t;
	int rc = strata_txn_begin(w->s, list, b->nroots, flags | (nowait ? STRATA_TXN_NOWAIT : 0), &t);
	if (rc == STRATA_EBUSY && nowait)
		rc = strata_txn_begin(w->s, list, b->nroots, flags, &t);
	if (rc)
		child_fail(w->cy, "thread %u: txn_begin: %s", w->t, strata_strerror(rc));
	return t;
}

/* Commits with the logging protocol of crash.h around it. */
static void commit_logged(worker *w, strata_txn *t, crash_body *b)
{
	crash_shared *sh = w->cy->sh;
	uint32_t tag = (uint32_t)w->cy->cycle + 1;
	crash_rec *pend = &sh->pending[w->t];
	pend->b = *b;
	atomic_store_explicit(&pend->tag, tag, memory_order_release);
	int rc = strata_txn_commit(t, &b->epoch);
	if (rc)
		child_fail(w->cy, "thread %u: commit %u (%s): %s", w->t, b->opno,
			   b->mode == STRATA_SYNC ? "SYNC" : b->mode == STRATA_ASYNC ? "ASYNC" : "NONE",
			   strata_strerror(rc));
	if (w->cy->inject == CRASH_INJECT_LOST_SYNC)
		b->mode = STRATA_SYNC; /* a lie: it was NONE */
	for (uint8_t i = 0; i < b->nroots && w->cy->inject == CRASH_INJECT_BAD_SUM; i++)
		b->val[i].sum ^= 1;
	uint64_t slot = atomic_fetch_add(&sh->reserved, 1);
	sh->log[slot].b = *b;
	atomic_store_explicit(&sh->log[slot].tag, tag, memory_order_release);
	atomic_store_explicit(&pend->tag, 0, memory_order_release);
}

static void one_txn(worker *w)
{
	crash_body b = {.thread = w->t, .opno = w->opno, .mode = (uint8_t)pick_mode(w)};
	if (w->cy->inject == CRASH_INJECT_LOST_SYNC)
		b.mode = STRATA_NONE; /* commit_logged logs it as SYNC */
	b.nroots = pick_roots(w, b.root);
	strata_txn *t = begin(w, &b);
	for (uint8_t i = 0; i < b.nroots; i++)
		b.val[i] = write_root(w, t, b.root[i], b.mode);
	if (crash_below(&w->rng, 100) < 3) {
		strata_txn_abort(t);
		return;
	}
	commit_logged(w, t, &b);
	w->opno++;
}

/* ---- reads and checkpoints --------------------------------------------- */
static void check_own_roots(worker *w)
{
	strata_snapshot *snap;
	char err[512];
	uint64_t nodes = 0;
	int rc = strata_snapshot_open(w->s, &snap);
	if (rc)
		child_fail(w->cy, "thread %u: snapshot_open: %s", w->t, strata_strerror(rc));
	for (uint32_t i = 0; i < CRASH_ROOTS_PER_THREAD; i++) {
		root_val v;
		uint32_t r = w->t * CRASH_ROOTS_PER_THREAD + i;
		if (crash_read_root(snap, r, (uint32_t)w->cy->cycle, &v, &nodes, err, sizeof err))
			child_fail(w->cy, "thread %u: snapshot at epoch %" PRIu64 ": %s", w->t,
				   strata_snapshot_epoch(snap), err);
		if (v.seq && v.mode == STRATA_SYNC)
			seen_sync(w->cy, r, v.seq);
	}
	strata_snapshot_close(snap);
}

static void checkpoint(worker *w)
{
	int rc = strata_checkpoint(w->s);
	if (rc)
		child_fail(w->cy, "thread %u: checkpoint: %s", w->t, strata_strerror(rc));
	atomic_fetch_add(&w->cy->sh->checkpoints, 1);
}

static void compact(worker *w)
{
	uint64_t moved;
	int rc = strata_compact(w->s, &moved);
	if (rc)
		child_fail(w->cy, "thread %u: compact: %s (%s)", w->t, strata_strerror(rc),
			   strata_last_error());
	atomic_fetch_add(&w->cy->sh->compactions, 1);
	atomic_fetch_add(&w->cy->sh->compact_moved, moved);
}

static void *worker_main(void *arg)
{
	worker *w = arg;
	const uint64_t cap = CRASH_LOG_CAP - CRASH_MAX_THREADS;
	/* Half the cycles compact at once, so kills land in compactions of
	 * the ballast the verifier fragments (crash_ballast.c). */
	if (w->t == 0 && crash_mix(w->cy->cycle_seed, 0xc0) % 2 && w->cy->inject != CRASH_INJECT_LOST_SYNC)
		compact(w);
	while (atomic_load(&w->cy->sh->reserved) < cap) {
		uint64_t x = crash_below(&w->rng, 1000);
		if (x < 15 && w->cy->inject != CRASH_INJECT_LOST_SYNC)
			checkpoint(w);
		else if (x < 18 && w->cy->inject != CRASH_INJECT_LOST_SYNC)
			compact(w);
		else if (x < 60)
			check_own_roots(w);
		else
			one_txn(w);
	}
	for (;;) /* the log is full: wait for the kill */
		pause();
	return NULL;
}

/* ---- the process ------------------------------------------------------- */
/* What the store holds at open, for the verifier to compare with what the
 * previous verification recovered. */
static void record_base(const crash_cycle *cy, strata_store *s)
{
	strata_snapshot *snap;
	char err[512];
	uint64_t nodes = 0;
	int rc = strata_snapshot_open(s, &snap);
	if (rc)
		child_fail(cy, "snapshot_open after open: %s", strata_strerror(rc));
	for (uint32_t r = 0; r < cy->nroots; r++)
		if (crash_read_root(snap, r, (uint32_t)cy->cycle, &cy->sh->base[r], &nodes, err, sizeof err))
			child_fail(cy, "after open (%s): %s", strata_last_error(), err);
	cy->sh->base_epoch = strata_snapshot_epoch(snap);
	strata_snapshot_close(snap);
	atomic_store_explicit(&cy->sh->started, (uint32_t)cy->cycle + 1, memory_order_release);
}

void crash_child_main(const crash_cycle *cy)
{
	strata_options o;
	strata_store *s;
	crash_store_options(cy, &o, true);
	int rc = strata_open(&o, &s);
	if (rc)
		child_fail(cy, "open of %s: %s (%s)", cy->store, strata_strerror(rc), strata_last_error());
	record_base(cy, s);
	static worker w[CRASH_MAX_THREADS];
	pthread_t th[CRASH_MAX_THREADS];
	uint32_t sync_pct = crash_mix(cy->cycle_seed, 0x5c) % 3 ? 70 : 20;
	for (uint32_t t = 0; t < cy->threads; t++) {
		w[t] = (worker){.cy = cy, .s = s, .t = t, .sync_pct = sync_pct,
				 .rng = {crash_mix(cy->cycle_seed, t + 1)}};
		if (pthread_create(&th[t], NULL, worker_main, &w[t]))
			child_fail(cy, "pthread_create failed");
	}
	for (;;)
		pause();
}
