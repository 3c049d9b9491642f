/*
 * crash_verify.c — the verifier process of a crash cycle. It reopens the
 * store the killed child left, and checks:
 *
 *   1. open (recovery) succeeds and strata_check is clean; every node the
 *      roots reach has exactly the bytes its commit wrote; the store holds
 *      no live node that no root reaches;
 *   2. the child's own open found what the previous verification recovered
 *      (a second recovery of the same files changes nothing), and no root
 *      lost a seq that a reader of the child saw written by a SYNC commit
 *      (published, so durable);
 *   3. the recovered epoch E is that of exactly one prefix of the commit
 *      order: every acknowledged SYNC commit has epoch <= E; the commits
 *      at or below E are the acknowledged ones with epoch <= E plus k of
 *      the pending (in-flight) ones, k = E - base epoch - that count (the
 *      epochs of a cycle's commits are consecutive); and some choice of k
 *      pending commits makes the state equal, root by root, the value the
 *      last of those commits wrote: along each root the applied commits
 *      are seq base+1 .. found with no hole, every other commit of the
 *      cycle on that root has a larger seq, and the node found is exactly
 *      the one (seq, cycle, checksum) that the commit of that seq wrote.
 *
 * The verdict goes to the shared region; the process then closes the store
 * cleanly or, when the cycle says so, exits with it open (the next cycle
 * then recovers the same files again).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crash.h"

typedef struct vctx {
	const crash_cycle *cy;
	crash_verdict *v;
	uint64_t E;
	crash_body *L; /* acknowledged commits of the cycle */
	size_t nL;
	crash_body *P; /* pending commits: maybe in the WAL, never logged */
	size_t nP;
	/* per root, over the acknowledged commits at or below E (in) and
	 * above it (out) */
	uint64_t in_cnt[CRASH_MAX_ROOTS], in_max[CRASH_MAX_ROOTS], out_min[CRASH_MAX_ROOTS];
	root_val in_last[CRASH_MAX_ROOTS];
} vctx;

static char recovery[512]; /* strata_last_error() after the open */

__attribute__((noreturn, format(printf, 2, 3))) static void violation(crash_verdict *v,
								      const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(v->msg, sizeof v->msg, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof v->msg)
		snprintf(v->msg + n, sizeof v->msg - (size_t)n, "\n  recovery said: %s", recovery);
	v->ok = 0;
	_exit(0);
}

static const char *mode_name(uint8_t m)
{
	return m == STRATA_SYNC ? "SYNC" : m == STRATA_ASYNC ? "ASYNC" : "NONE";
}

static int describe(char *out, size_t len, const crash_body *b)
{
	int n = snprintf(out, len, "thread %u commit %u (%s, epoch %" PRIu64 "):", b->thread, b->opno,
			 mode_name(b->mode), b->epoch);
	for (uint8_t i = 0; i < b->nroots && n >= 0 && (size_t)n < len; i++)
		n += snprintf(out + n, len - (size_t)n, " root %u seq %" PRIu64, b->root[i], b->val[i].seq);
	return n;
}

/* ---- reading the recovered store --------------------------------------- */
static void collect_check(void *ctx, const char *message)
{
	char *buf = ctx;
	size_t n = strlen(buf);
	if (n + 3 < 1024)
		snprintf(buf + n, 1024 - n, "%s%s", n ? "; " : "", message);
}

static void read_state(const crash_cycle *cy, strata_store *s, crash_verdict *v)
{
	strata_snapshot *snap;
	char err[512];
	int rc = strata_snapshot_open(s, &snap);
	if (rc)
		violation(v, "snapshot_open after recovery: %s", strata_strerror(rc));
	v->epoch = strata_snapshot_epoch(snap);
	for (uint32_t r = 0; r < cy->nroots; r++)
		if (crash_read_root(snap, r, (uint32_t)cy->cycle, &v->found[r], &v->nodes, err, sizeof err))
			violation(v, "recovered epoch %" PRIu64 ": %s", v->epoch, err);
	if (crash_read_ballast(snap, &v->nodes, err, sizeof err))
		violation(v, "recovered epoch %" PRIu64 ": %s", v->epoch, err);
	strata_snapshot_close(snap);
	static char msgs[1024];
	if ((rc = strata_check(s, collect_check, msgs)))
		violation(v, "strata_check after recovery: %s: %s", strata_strerror(rc), msgs);
	strata_store_stats st;
	if ((rc = strata_stats(s, &st)))
		violation(v, "strata_stats: %s", strata_strerror(rc));
	if (st.nodes_live != v->nodes || st.nodes_reserved)
		violation(v, "recovered store holds %" PRIu64 " live and %" PRIu64
			  " reserved nodes; the roots reach %" PRIu64 " (leaked nodes)",
			  st.nodes_live, st.nodes_reserved, v->nodes);
}

/* ---- the child's own open ---------------------------------------------- */
static void check_base(const crash_cycle *cy, crash_verdict *v, bool started)
{
	const crash_shared *sh = cy->sh;
	if (!started)
		return;
	if (sh->base_epoch != cy->prev_epoch)
		violation(v, "the child's open recovered epoch %" PRIu64 ", the previous verification %" PRIu64,
			  sh->base_epoch, cy->prev_epoch);
	for (uint32_t r = 0; r < cy->nroots; r++)
		if (sh->base[r].seq != cy->prev[r].seq || sh->base[r].sum != cy->prev[r].sum ||
		    sh->base[r].cycle != cy->prev[r].cycle)
			violation(v, "root %u: the child's open found seq %" PRIu64 " cycle %u, the previous "
				  "verification seq %" PRIu64 " cycle %u", r, sh->base[r].seq, sh->base[r].cycle,
				  cy->prev[r].seq, cy->prev[r].cycle);
}

/* Whatever a reader saw written by a SYNC commit was durable. */
static void check_seen(const crash_cycle *cy, crash_verdict *v)
{
	for (uint32_t r = 0; r < cy->nroots; r++) {
		uint64_t seen = atomic_load(&cy->sh->seen_sync[r]);
		if (seen > v->found[r].seq)
			violation(v, "root %u: a reader saw seq %" PRIu64 " written by a SYNC commit (so "
				  "durable), recovery found seq %" PRIu64, r, seen, v->found[r].seq);
	}
}

/* ---- the log ----------------------------------------------------------- */
/* Valid log records of this cycle, and the pending records no valid log
 * record resolves (a thread logs commit n before it arms n + 1). */
static void collect(vctx *c)
{
	const crash_shared *sh = c->cy->sh;
	uint32_t tag = (uint32_t)c->cy->cycle + 1, next_op[CRASH_MAX_THREADS] = {0};
	uint64_t n = atomic_load(&sh->reserved);
	n = n < CRASH_LOG_CAP ? n : CRASH_LOG_CAP;
	c->L = malloc((n + 1) * sizeof *c->L);
	c->P = malloc(CRASH_MAX_THREADS * sizeof *c->P);
	if (!c->L || !c->P)
		violation(c->v, "verifier out of memory");
	for (uint64_t i = 0; i < n; i++) {
		if (atomic_load(&sh->log[i].tag) != tag)
			continue;
		const crash_body *b = &sh->log[i].b;
		c->L[c->nL++] = *b;
		if (b->opno >= next_op[b->thread])
			next_op[b->thread] = b->opno + 1;
	}
	for (uint32_t t = 0; t < c->cy->threads; t++)
		if (atomic_load(&sh->pending[t].tag) == tag && sh->pending[t].b.opno >= next_op[t])
			c->P[c->nP++] = sh->pending[t].b;
}

static int by_epoch(const void *a, const void *b)
{
	uint64_t x = ((const crash_body *)a)->epoch, y = ((const crash_body *)b)->epoch;
	return (x > y) - (x < y);
}

/* Epochs of acknowledged commits: above the base, distinct; SYNC ones at
 * or below the recovered epoch. Returns how many are at or below it. */
static uint64_t check_epochs(vctx *c)
{
	char d[256];
	uint64_t base = c->cy->prev_epoch, in = 0;
	if (c->E < base)
		violation(c->v, "recovered epoch %" PRIu64 " is below the last verified one, %" PRIu64, c->E,
			  base);
	qsort(c->L, c->nL, sizeof *c->L, by_epoch);
	for (size_t i = 0; i < c->nL; i++) {
		const crash_body *b = &c->L[i];
		if (b->epoch <= base || (i && b->epoch == c->L[i - 1].epoch)) {
			describe(d, sizeof d, b);
			violation(c->v, "acknowledged %s has an epoch at or below the base %" PRIu64
				  " or taken twice", d, base);
		}
		if (b->mode == STRATA_SYNC && b->epoch > c->E) {
			describe(d, sizeof d, b);
			violation(c->v, "acknowledged SYNC commit lost: %s; recovered epoch %" PRIu64, d, c->E);
		}
		c->v->acked_sync += b->mode == STRATA_SYNC;
		in += b->epoch <= c->E;
	}
	return in;
}

/* Per root: what the acknowledged commits at or below E wrote, and the
 * smallest seq written above E. */
static void root_summary(vctx *c)
{
	for (uint32_t r = 0; r < CRASH_MAX_ROOTS; r++) {
		c->in_cnt[r] = c->in_max[r] = 0;
		c->out_min[r] = UINT64_MAX;
	}
	for (size_t i = 0; i < c->nL; i++) {
		const crash_body *b = &c->L[i];
		for (uint8_t j = 0; j < b->nroots; j++) {
			uint32_t r = b->root[j];
			uint64_t q = b->val[j].seq;
			if (b->epoch > c->E) {
				c->out_min[r] = q < c->out_min[r] ? q : c->out_min[r];
			} else if (c->in_cnt[r]++, q > c->in_max[r]) {
				c->in_max[r] = q;
				c->in_last[r] = b->val[j];
			}
		}
	}
}

typedef struct root_seq {
	uint32_t root;
	uint64_t seq;
} root_seq;

static int by_root_seq(const void *a, const void *b)
{
	const root_seq *x = a, *y = b;
	if (x->root != y->root)
		return (x->root > y->root) - (x->root < y->root);
	return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Two commits of a cycle never write the same seq of a root (each reads
 * the seq its predecessor wrote, under the root lock). */
static void check_unique(vctx *c)
{
	size_t n = 0;
	root_seq *v = malloc((c->nL + c->nP) * 2 * sizeof *v + 1);
	if (!v)
		violation(c->v, "verifier out of memory");
	for (size_t i = 0; i < c->nL + c->nP; i++) {
		const crash_body *b = i < c->nL ? &c->L[i] : &c->P[i - c->nL];
		for (uint8_t j = 0; j < b->nroots; j++)
			v[n++] = (root_seq){b->root[j], b->val[j].seq};
	}
	qsort(v, n, sizeof *v, by_root_seq);
	for (size_t i = 1; i < n; i++)
		if (!by_root_seq(&v[i - 1], &v[i]))
			violation(c->v, "two commits of this cycle wrote root %u seq %" PRIu64
				  " (a lost update: both read the same state)", v[i].root, v[i].seq);
	free(v);
}

/* ---- exactly one prefix ------------------------------------------------ */
/* Is root r what the prefix "acknowledged commits at or below E plus the
 * pending commits in mask" leaves? If not, says why. */
static bool root_fits(const vctx *c, uint32_t mask, uint32_t r, char *why, size_t len)
{
	uint64_t cnt = c->in_cnt[r], max = c->in_max[r], out = c->out_min[r];
	root_val last = c->in_last[r];
	for (size_t i = 0; i < c->nP; i++) {
		for (uint8_t j = 0; j < c->P[i].nroots; j++) {
			uint64_t q = c->P[i].val[j].seq;
			if (c->P[i].root[j] != r)
				continue;
			if (!(mask >> i & 1)) {
				out = q < out ? q : out;
			} else if (cnt++, q > max) {
				max = q;
				last = c->P[i].val[j];
			}
		}
	}
	const root_val *prev = &c->cy->prev[r], *f = &c->v->found[r];
	root_val want = cnt ? last : *prev;
	if (cnt && cnt != max - prev->seq) {
		snprintf(why, len, "root %u: %" PRIu64 " commits at or below the epoch wrote seqs up to %" PRIu64
			 " from base seq %" PRIu64 " (a hole)", r, cnt, max, prev->seq);
		return false;
	}
	if (f->seq != want.seq || f->sum != want.sum || f->cycle != want.cycle) {
		snprintf(why, len, "root %u: expected seq %" PRIu64 " (cycle %u, sum %016" PRIx64
			 "), found seq %" PRIu64 " (cycle %u, sum %016" PRIx64 ")", r, want.seq, want.cycle,
			 want.sum, f->seq, f->cycle, f->sum);
		return false;
	}
	if (out <= want.seq) {
		snprintf(why, len, "root %u: seq %" PRIu64 " was written by a commit above the epoch, "
			 "but seq %" PRIu64 " is found", r, out, f->seq);
		return false;
	}
	return true;
}

static bool prefix_fits(const vctx *c, uint32_t mask, char *why, size_t len)
{
	for (uint32_t r = 0; r < c->cy->nroots; r++)
		if (!root_fits(c, mask, r, why, len))
			return false;
	return true;
}

static void no_prefix(const vctx *c, uint64_t in, const char *why)
{
	char list[1024] = "";
	size_t n = 0;
	for (size_t i = 0; i < c->nP && n < sizeof list - 1; i++) {
		n += (size_t)snprintf(list + n, sizeof list - n, "\n    pending ");
		if (n < sizeof list - 1)
			n += (size_t)describe(list + n, sizeof list - n, &c->P[i]);
	}
	violation(c->v, "the recovered state (epoch %" PRIu64 ") is that of no commit prefix: base epoch %"
		  PRIu64 ", %" PRIu64 " acknowledged commits at or below it, %zu above, %zu pending;\n  %s%s",
		  c->E, c->cy->prev_epoch, in, c->nL - in, c->nP, why, list);
}

/* Finds k pending commits that, with the acknowledged ones at or below E,
 * explain the state; k is fixed by the epochs. */
static void find_prefix(vctx *c, uint64_t in)
{
	char why[512] = "", scratch[512];
	uint64_t span = c->E - c->cy->prev_epoch;
	if (span < in || span - in > c->nP) {
		snprintf(why, sizeof why, "the %" PRIu64 " epochs above the base cannot be %" PRIu64
			 " acknowledged plus some of %zu pending commits", span, in, c->nP);
		no_prefix(c, in, why);
	}
	uint64_t k = span - in;
	for (uint32_t mask = 0; mask < 1u << c->nP; mask++) {
		if ((uint64_t)__builtin_popcount(mask) != k)
			continue;
		if (prefix_fits(c, mask, why[0] ? scratch : why, sizeof why)) {
			c->v->pending_in = k;
			return;
		}
	}
	no_prefix(c, in, why);
}

/* ---- the process ------------------------------------------------------- */
/* Ballast for the next children's compactions, every BALLAST_EVERY cycles,
 * then a checkpoint: the freed ballast's slots stay held until a durable
 * checkpoint no longer names them, and compaction can only fill free
 * slots (it also spares children replaying 1.6 MB of log at every open).
 * The verifier runs with background compaction off, so the ballast is
 * left for the children. The next open must find the epoch of this
 * commit (the verified state plus the ballast). */
static void refresh_ballast(const crash_cycle *cy, strata_store *s, crash_verdict *v)
{
	char err[512];
	strata_snapshot *snap;
	if (cy->cycle % BALLAST_EVERY)
		return;
	if (crash_refresh_ballast(s, crash_mix(cy->cycle_seed, 0xba11), err, sizeof err))
		violation(v, "%s", err);
	int rc = strata_checkpoint(s);
	if (rc)
		violation(v, "checkpoint after the ballast: %s", strata_strerror(rc));
	rc = strata_snapshot_open(s, &snap);
	if (rc)
		violation(v, "snapshot_open after the ballast: %s", strata_strerror(rc));
	v->epoch = strata_snapshot_epoch(snap);
	strata_snapshot_close(snap);
}

void crash_verify_main(const crash_cycle *cy)
{
	crash_verdict *v = &cy->sh->verdict;
	memset(v, 0, sizeof *v);
	strata_options o;
	strata_store *s;
	/* A store may be created only where the last verification saw none
	 * yet (epoch 1: the child may have died creating it). */
	crash_store_options(cy, &o, cy->prev_epoch <= 1);
	o.compact_amplification = 0; /* compaction is the children's (refresh_ballast) */
	int rc = strata_open(&o, &s);
	snprintf(recovery, sizeof recovery, "%s", strata_last_error());
	if (rc)
		violation(v, "open after the kill: %s", strata_strerror(rc));
	read_state(cy, s, v);
	vctx c = {.cy = cy, .v = v, .E = v->epoch};
	collect(&c);
	bool started = atomic_load(&cy->sh->started) == (uint32_t)cy->cycle + 1;
	if (!started && (c.nL || c.nP))
		violation(v, "commits logged by a child that never recorded its open");
	check_base(cy, v, started);
	check_seen(cy, v);
	uint64_t in = check_epochs(&c);
	root_summary(&c);
	check_unique(&c);
	find_prefix(&c, in);
	v->acked = c.nL;
	v->lost = c.nL - in;
	v->pending = c.nP;
	refresh_ballast(cy, s, v);
	if (cy->close_clean && (rc = strata_close(s)))
		violation(v, "close after verification: %s", strata_strerror(rc));
	v->ok = 1;
	_exit(0);
}
