/*
 * crash.h — strata-crash, the process-kill crash campaign for DURABLE mode.
 *
 * Each cycle the parent forks a workload child (crash_child.c) that opens
 * the store on the real file system and commits from several threads; the
 * parent SIGKILLs it at a random moment, then forks a verifier
 * (crash_verify.c) that reopens the store and checks the recovered state
 * against what the child acknowledged. The store is kept from cycle to
 * cycle (recovery after recovery), sometimes deleted to start fresh.
 *
 * What survives the child's death is this file's `crash_shared`, shared
 * anonymous memory mapped by the parent before any fork:
 *   - the acknowledged-commit log: a record is written only after
 *     strata_txn_commit returned 0, in a slot reserved with an atomic
 *     counter, and marked valid last (tag = cycle + 1);
 *   - one "pending" record per thread, armed before strata_txn_commit and
 *     cleared after the log record is valid: the commits a kill may have
 *     caught between the WAL and the log (present or not, both fine);
 *   - the state the child found at open (to prove that a second recovery
 *     yields what the verifier saw), and the verifier's result.
 *
 * The data model. Root r is named "crash%02u". Its node holds (r, seq,
 * cycle, thread, children...) where seq counts the commits that ever wrote
 * r since the store was created: a transaction reads seq from the node and
 * writes seq + 1, and two commits on one root are serialised by the root
 * lock, so along the epoch order each root's seq grows by exactly one per
 * commit. The root node also lists up to CRASH_MAX_CHILD child nodes with
 * the (seq, cycle, key, size) their bytes were generated from, so every
 * byte that recovery returns is checked. `sum` (FNV-1a of the root node)
 * pins the exact bytes a commit wrote; the log records it per root. The
 * node also says whether a SYNC commit wrote it: a reader that sees such a
 * node saw a durable state (SYNC commits are published only then), so its
 * seq must survive too (seen_sync).
 *
 * Compaction needs garbage in a class of several segments, which these
 * roots never make: the verifier keeps a ballast for it (crash_ballast.c).
 */
#ifndef STRATA_CRASH_H
#define STRATA_CRASH_H
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strata/strata.h"

#define CRASH_MAX_THREADS 16
#define CRASH_ROOTS_PER_THREAD 2
#define CRASH_MAX_ROOTS (CRASH_MAX_THREADS * CRASH_ROOTS_PER_THREAD)
#define CRASH_MAX_CHILD 8
#define CRASH_LOG_CAP (1u << 17) /* acknowledged commits per cycle */
#define CRASH_MSG 2048

#define ROOT_MAGIC 0x54535243u  /* "CRST" */
#define ROOT_KIND 1
#define CHILD_KIND 2

/* ---- deterministic randomness ------------------------------------------ */
typedef struct crash_rng {
	uint64_t s;
} crash_rng;
uint64_t crash_rand(crash_rng *r);
uint64_t crash_below(crash_rng *r, uint64_t n); /* uniform in [0, n), n > 0 */
uint64_t crash_mix(uint64_t a, uint64_t b);      /* a hash of two words */
uint64_t crash_fnv(uint64_t h, const void *p, size_t n);

/* ---- node layout ------------------------------------------------------- */
typedef struct root_hdr {
	uint32_t magic;
	uint32_t root;
	uint64_t seq;
	uint32_t cycle;
	uint32_t thread;
	uint32_t nchild;
	uint32_t mode; /* strata_durability of the commit that wrote it */
	uint64_t sum;  /* FNV-1a of the whole node with this field zero */
} root_hdr;

typedef struct child_ref {
	uint64_t id;
	uint64_t seq; /* the commit of root seq ... */
	uint64_t key; /* ... and the key its bytes were generated from */
	uint32_t cycle;
	uint32_t size;
} child_ref;

#define ROOT_NODE_SIZE(n) ((uint32_t)(sizeof(root_hdr) + (n) * sizeof(child_ref)))

/* A root's value: what identifies the commit that last wrote it.
 * seq 0: the root was never committed. */
typedef struct root_val {
	uint64_t seq;
	uint64_t sum;
	uint32_t cycle;
	uint32_t mode;
} root_val;

uint64_t root_node_sum(const void *node, uint32_t size);
/* Fills a child node's bytes from its reference. */
void child_fill(void *p, uint32_t root, const child_ref *c);
/* Checks a root node's bytes (size, magic, root number, checksum); returns
 * NULL if fine, else a static description of the defect. */
const char *root_node_defect(const void *node, uint32_t size, uint32_t root);
void root_name(uint32_t root, char out[16]);
/* Reads root `root` as of snap and checks every byte of its node and of
 * its children against what the writing commit generated. *val gets its
 * value (seq 0: never committed); *nodes grows by the nodes read. Returns
 * 0, or -1 with the defect described in err. */
int crash_read_root(const strata_snapshot *snap, uint32_t root, uint32_t cycle_max, root_val *val,
		    uint64_t *nodes, char *err, size_t len);

/* ---- ballast for compaction (crash_ballast.c) -------------------------- */
#define BALLAST_ROOT "crash_ballast"
#define BALLAST_SIZE 4000u /* class 4096: 511 slots a segment */
#define BALLAST_LIVE 800u
#define BALLAST_EVERY 8u /* cycles between refreshes */
/* Checks every ballast node (bytes from its NodeID) and adds the ballast's
 * nodes to *nodes; 0, or -1 with err. No ballast yet: 0. */
int crash_read_ballast(const strata_snapshot *snap, uint64_t *nodes, char *err, size_t len);
/* The verifier, after a clean verification: frees about half of the
 * ballast and tops it up (one SYNC commit); 0 or a status with err. */
int crash_refresh_ballast(strata_store *s, uint64_t seed, char *err, size_t len);

/* ---- the shared region ------------------------------------------------- */
typedef struct crash_body {
	uint32_t thread;
	uint32_t opno;    /* the thread's commit number in this cycle */
	uint8_t mode;     /* strata_durability */
	uint8_t nroots;   /* 1 or 2 */
	uint16_t pad;
	uint64_t epoch;   /* 0 in a pending record */
	uint32_t root[2];
	root_val val[2];  /* the roots' values after this commit */
} crash_body;

typedef struct crash_rec {
	_Atomic uint32_t tag; /* cycle + 1 once `b` is complete */
	crash_body b;
} crash_rec;

typedef struct crash_verdict {
	int ok;               /* 1: verified; 0: a violation, described in msg */
	uint64_t epoch;       /* recovered epoch */
	root_val found[CRASH_MAX_ROOTS];
	uint64_t acked, acked_sync, lost, pending, pending_in, nodes;
	char msg[CRASH_MSG];
} crash_verdict;

typedef struct crash_shared {
	_Atomic uint64_t reserved; /* log slots handed out this cycle */
	_Atomic uint32_t started;  /* cycle + 1 once base_* below are written */
	_Atomic uint32_t failed;   /* the child found an error: child_msg */
	_Atomic uint64_t checkpoints;
	_Atomic uint64_t compactions, compact_moved; /* strata_compact calls, bytes moved */
	/* per root, the largest seq a reader of the child saw written by a
	 * SYNC commit: published only once durable, it must survive */
	_Atomic uint64_t seen_sync[CRASH_MAX_ROOTS];
	uint64_t base_epoch;
	root_val base[CRASH_MAX_ROOTS];
	char child_msg[CRASH_MSG];
	crash_rec pending[CRASH_MAX_THREADS];
	crash_verdict verdict;
	crash_rec log[CRASH_LOG_CAP];
} crash_shared;

/* Faults injected into the harness itself (--inject), to show that the
 * verifier is not vacuous: LOST_SYNC commits NONE with no background syncs
 * but logs SYNC; BAD_SUM logs a wrong checksum for every root written. */
enum { CRASH_INJECT_NONE, CRASH_INJECT_LOST_SYNC, CRASH_INJECT_BAD_SUM };

/* What both processes of a cycle are told. */
typedef struct crash_cycle {
	uint64_t cycle;
	uint64_t seed;        /* the run's --seed */
	uint64_t cycle_seed;  /* seed of this cycle's random choices */
	const char *store;    /* the store directory */
	uint32_t threads;
	uint32_t nroots;
	bool fresh;           /* the store was deleted before this cycle */
	bool close_clean;     /* verifier: strata_close, or leave without it */
	int inject;           /* CRASH_INJECT_*: a harness fault the checks must catch */
	uint64_t prev_epoch;  /* what the last verification recovered */
	root_val prev[CRASH_MAX_ROOTS];
	crash_shared *sh;
} crash_cycle;

/* crash_child.c: runs the workload until killed; exits 2 on an error. */
void crash_child_main(const crash_cycle *cy) __attribute__((noreturn));
/* crash_verify.c: reopens, verifies, fills sh->verdict; exits 0. */
void crash_verify_main(const crash_cycle *cy) __attribute__((noreturn));
/* Options both open with (derived from the cycle seed). */
void crash_store_options(const crash_cycle *cy, strata_options *o, bool create);
#endif
