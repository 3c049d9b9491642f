/*
 * test_ckpt.c — checkpoint files and the lazy object table (checkpoint.c,
 * otable.c's lazy chunks): an open reads no entry; chunks load on first
 * use and are checked; checkpoints copy chunks still on disk (large images
 * too) so stores survive many open/close cycles untouched; free handles in
 * chunks on disk are reused; a damaged chunk is an error, never data.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "durable.h"
#include "io_sim.h"
#include "support/model.h"

TestSuite(ckpt, .fini = test_leak_check);

#define NNODES 40000u /* three chunks of shard 0 (16384 entries each) */
#define LARGE_EVERY 5000u

static strata_options opts(void)
{
	strata_options o = test_durable_options("db", true);
	o.ot_shards_initial = 1; /* every node in shard 0: chunks fill up */
	return o;
}

static strata_store *open_sim(io_env *env)
{
	strata_options o = opts();
	strata_store *s;
	int rc = store_open_env(&o, env, &s);
	cr_assert_eq(rc, 0, "open: %s: %s", strata_strerror(rc), strata_last_error());
	return s;
}

static uint32_t size_of(uint32_t k)
{
	return k % LARGE_EVERY == 0 ? 70000u + k % 13 : 16u + (k * 7) % 200;
}

static void fill(uint8_t *p, uint32_t k, uint32_t size)
{
	for (uint32_t i = 0; i < size; i++)
		p[i] = (uint8_t)(k * 31 + i);
}

static bool holds(const uint8_t *p, uint32_t k, uint32_t size)
{
	for (uint32_t i = 0; i < size; i++)
		if (p[i] != (uint8_t)(k * 31 + i))
			return false;
	return true;
}

/* n nodes 1..n in batches of 1000, with ids[k] their NodeIDs; root "r"
 * names node 1 so the store has a root to check. */
static void make_nodes(strata_store *s, strata_node_id *ids, uint32_t from, uint32_t n)
{
	for (uint32_t k = from; k <= n;) {
		const char *r = "r";
		strata_txn *t;
		cr_assert_eq(strata_txn_begin(s, &r, 1, STRATA_TXN_NONE, &t), 0);
		for (uint32_t b = 0; b < 1000 && k <= n; b++, k++) {
			void *p;
			cr_assert_eq(strata_txn_alloc(t, size_of(k), 7, &ids[k], &p), 0);
			fill(p, k, size_of(k));
		}
		if (from == 1)
			cr_assert_eq(strata_txn_set_root(t, "r", ids[1]), 0);
		cr_assert_eq(strata_txn_commit(t, NULL), 0);
	}
}

/* Every node k in [1, n] with ids[k] != 0 resolves to its bytes. */
static void expect_nodes(strata_store *s, const strata_node_id *ids, uint32_t n)
{
	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	for (uint32_t k = 1; k <= n; k++) {
		if (!ids[k])
			continue;
		const void *p;
		uint32_t size;
		int rc = strata_resolve(snap, ids[k], &p, &size);
		cr_assert_eq(rc, 0, "node %u: %s (%s)", k, strata_strerror(rc), strata_last_error());
		cr_assert_eq(size, size_of(k));
		cr_assert(holds(p, k, size), "node %u: wrong bytes", k);
	}
	strata_snapshot_close(snap);
}

static io_env *store_with_nodes(strata_node_id *ids)
{
	io_env *env = io_sim_new();
	cr_assert_eq(io_mkdir(env, "db"), 0);
	cr_assert_eq(io_sync_dir(env, "."), 0);
	strata_store *s = open_sim(env);
	make_nodes(s, ids, 1, NNODES);
	cr_assert_eq(strata_close(s), 0);
	return env;
}

/* The store reopens with nodes 1..n intact and a clean check; env freed. */
static void reopen_expect_clean(io_env *env, const strata_node_id *ids, uint32_t n)
{
	strata_store *s = open_sim(env);
	expect_nodes(s, ids, n);
	cr_assert_eq(strata_check(s, test_report, NULL), 0);
	cr_assert_eq(strata_close(s), 0);
	io_sim_free(env);
}

static strata_store_stats stats(strata_store *s)
{
	strata_store_stats st;
	cr_assert_eq(strata_stats(s, &st), 0);
	return st;
}

Test(ckpt, open_reads_no_entry_and_chunks_load_on_first_use, .timeout = 300)
{
	static strata_node_id ids[NNODES + 1];
	io_env *env = store_with_nodes(ids);
	strata_store *s = open_sim(env);
	strata_store_stats st = stats(s);
	cr_assert_eq(st.chunks_on_disk, 3, "40000 entries: 3 chunks, none loaded at open");
	cr_assert_eq(st.chunks_loaded, 0);
	uint64_t segs = 0;
	for (unsigned c = 0; c < STRATA_NUM_CLASSES; c++)
		segs += st.classes[c].segments;
	cr_assert_gt(segs, 1);
	cr_assert_eq(st.segments_unbuilt, segs, "no segment header is built at open");
	cr_assert_eq(st.nodes_live, NNODES, "counts come from the checkpoint header");
	cr_assert_eq(st.large_objects, NNODES / LARGE_EVERY);
	/* One node of the last chunk: exactly that chunk loads. */
	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	const void *p;
	uint32_t size;
	cr_assert_eq(strata_resolve(snap, ids[NNODES], &p, &size), 0);
	cr_assert(holds(p, NNODES, size));
	strata_snapshot_close(snap);
	st = stats(s);
	cr_assert_eq(st.chunks_loaded, 1);
	cr_assert_eq(st.chunks_on_disk, 2);
	cr_assert_lt(st.segments_unbuilt, segs, "the chunk's loads built headers (%" PRIu64
		     " of %" PRIu64 " left)", st.segments_unbuilt, segs);
	expect_nodes(s, ids, NNODES);
	st = stats(s);
	cr_assert_eq(st.chunks_on_disk, 0);
	cr_assert_eq(strata_check(s, test_report, NULL), 0);
	cr_assert_eq(stats(s).segments_unbuilt, 0, "the check builds the rest");
	cr_assert_eq(strata_close(s), 0);
	io_sim_free(env);
}

static uint8_t lstate(strata_store *s, uint32_t chunk)
{
	return atomic_load(&s->ot.lstate[chunk]); /* shard 0 */
}

/* An open describes no chunk (one state byte each); a fault describes its
 * own; a checkpoint describes the chunks it copies, moves their records to
 * the new file and lets go of the old index; they still load afterwards. */
Test(ckpt, chunks_are_described_when_first_needed, .timeout = 300)
{
	static strata_node_id ids[NNODES + 2];
	io_env *env = store_with_nodes(ids);
	strata_store *s = open_sim(env);
	for (uint32_t c = 0; c < 3; c++)
		cr_assert_eq(lstate(s, c), OT_LZ_PENDING, "chunk %u at open: %#x", c, lstate(s, c));
	cr_assert_not_null(s->dur->ckpt_ci, "the chunk index stays mapped");
	strata_snapshot *snap;
	const void *p;
	uint32_t size;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	cr_assert_eq(strata_resolve(snap, ids[NNODES], &p, &size), 0);
	strata_snapshot_close(snap);
	cr_assert_eq(lstate(s, 2), OT_LZ_DESCRIBED, "loaded: %#x", lstate(s, 2));
	cr_assert_eq(lstate(s, 0), OT_LZ_PENDING);
	ot_lazy before;
	cr_assert_eq(ot_lazy_get(&s->ot, 0, &before), 0);
	cr_assert_eq(lstate(s, 0), OT_LZ_PENDING | OT_LZ_DESCRIBED);
	make_nodes(s, ids, NNODES + 1, NNODES + 1); /* a change to checkpoint */
	cr_assert_eq(strata_checkpoint(s), 0);
	cr_assert_null(s->dur->ckpt_ci, "the old index is let go at the adoption");
	ot_lazy after;
	cr_assert_eq(ot_lazy_get(&s->ot, 0, &after), 0);
	cr_assert_eq(lstate(s, 0), OT_LZ_PENDING | OT_LZ_DESCRIBED, "still on disk");
	cr_assert_eq(after.nrec, before.nrec);
	cr_assert_eq(after.crc, before.crc, "copied as it was");
	expect_nodes(s, ids, NNODES);
	cr_assert_eq(strata_check(s, test_report, NULL), 0);
	cr_assert_eq(strata_close(s), 0);
	io_sim_free(env);
}

/* Open/write/close cycles that never touch the first chunks: each
 * checkpoint copies them (and their large images) from the previous file. */
Test(ckpt, chunks_on_disk_survive_many_checkpoints, .timeout = 300)
{
	static strata_node_id ids[NNODES + 3000 + 1];
	io_env *env = store_with_nodes(ids);
	uint32_t n = NNODES;
	for (int cycle = 0; cycle < 3; cycle++) {
		strata_store *s = open_sim(env);
		make_nodes(s, ids, n + 1, n + 1000); /* new nodes: a new chunk region */
		n += 1000;
		cr_assert_eq(strata_checkpoint(s), 0);
		strata_store_stats st = stats(s);
		cr_assert_geq(st.chunks_on_disk, 2, "the old chunks stayed on disk");
		cr_assert_eq(strata_close(s), 0);
	}
	reopen_expect_clean(env, ids, n);
}

/* Handles freed before close are reused after reopen, from chunks that
 * are still on disk: the table does not grow. */
Test(ckpt, free_handles_on_disk_are_reused, .timeout = 300)
{
	static strata_node_id ids[NNODES + 1];
	io_env *env = store_with_nodes(ids);
	strata_store *s = open_sim(env);
	strata_txn *t;
	cr_assert_eq(strata_txn_begin(s, NULL, 0, STRATA_TXN_NONE, &t), 0);
	for (uint32_t k = 2; k <= 1001; k++) {
		cr_assert_eq(strata_txn_free(t, ids[k]), 0);
		ids[k] = 0;
	}
	cr_assert_eq(strata_txn_commit(t, NULL), 0);
	strata_reclaim(s);
	cr_assert_eq(strata_close(s), 0);
	s = open_sim(env);
	strata_store_stats st = stats(s);
	uint64_t total = st.handles_total;
	cr_assert_eq(st.chunks_on_disk, 3);
	cr_assert_eq(strata_txn_begin(s, NULL, 0, STRATA_TXN_NONE, &t), 0);
	for (uint32_t k = 0; k < 1000; k++) {
		strata_node_id id;
		void *p;
		cr_assert_eq(strata_txn_alloc(t, 32, 1, &id, &p), 0);
		for (uint32_t j = 1; j <= NNODES; j++) /* never a live node's handle */
			if (ids[j] && (ids[j] & ((1ull << 36) - 1)) == (id & ((1ull << 36) - 1)))
				cr_assert_fail("handle of live node %u issued again", j);
	}
	cr_assert_eq(strata_txn_commit(t, NULL), 0);
	st = stats(s);
	cr_assert_eq(st.handles_total, total, "1000 freed handles on disk were reused");
	expect_nodes(s, ids, NNODES);
	cr_assert_eq(strata_check(s, test_report, NULL), 0);
	cr_assert_eq(strata_close(s), 0);
	io_sim_free(env);
}

static void damage_entries(io_env *env, uint64_t off)
{
	char path[64];
	strata_store *s = open_sim(env);
	snprintf(path, sizeof path, "db/ckpt.%016" PRIx64, s->dur->sb.ckpt_gen);
	cr_assert_eq(strata_close(s), 0); /* nothing changed: same checkpoint */
	cr_assert_eq(io_sim_flip_bit(env, path, 4096 + off, 3), 0);
}

/* A bit flipped in the second chunk's records: open still succeeds (no
 * entry is read), nodes of other chunks resolve, nodes of that chunk give
 * STRATA_ECORRUPT, strata_check reports it, and the store goes on. */
Test(ckpt, damaged_chunk_is_an_error_never_data, .timeout = 300)
{
	static strata_node_id ids[NNODES + 1];
	io_env *env = store_with_nodes(ids);
	damage_entries(env, (uint64_t)OT_CHUNK * 32 + 100 * 32 + 9);
	strata_store *s = open_sim(env);
	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	const void *p;
	uint32_t size;
	cr_assert_eq(strata_resolve(snap, ids[10], &p, &size), 0, "first chunk intact");
	cr_assert(holds(p, 10, size));
	int rc = strata_resolve(snap, ids[OT_CHUNK + 500], &p, &size);
	cr_assert_eq(rc, STRATA_ECORRUPT, "damaged chunk: %s", strata_strerror(rc));
	cr_assert(strstr(strata_last_error(), "chunk"), "message says where: %s", strata_last_error());
	strata_snapshot_close(snap);
	test_collect col = {0};
	cr_assert_eq(strata_check(s, test_report_collect, &col), STRATA_ECORRUPT);
	cr_assert(strstr(col.all, "chunk"), "check names the chunk: %s", col.all);
	/* Writes go on (handles come from elsewhere), and checkpoints carry the
	 * damaged chunk over with its old CRC: never laundered, never lost. */
	const char *r = "r";
	strata_txn *t;
	strata_node_id nid;
	void *np;
	cr_assert_eq(strata_txn_begin(s, &r, 1, STRATA_TXN_SYNC, &t), 0);
	cr_assert_eq(strata_txn_alloc(t, 40, 1, &nid, &np), 0);
	cr_assert_eq(strata_txn_set_root(t, "r", nid), 0);
	cr_assert_eq(strata_txn_commit(t, NULL), 0);
	cr_assert_eq(strata_checkpoint(s), 0);
	cr_assert_eq(strata_close(s), 0);
	s = open_sim(env);
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	cr_assert_eq(strata_resolve(snap, ids[OT_CHUNK + 500], &p, &size), STRATA_ECORRUPT);
	cr_assert_eq(strata_resolve(snap, ids[10], &p, &size), 0);
	cr_assert_eq(strata_resolve(snap, ids[2 * OT_CHUNK + 10], &p, &size), 0);
	cr_assert_eq(strata_resolve(snap, nid, &p, &size), 0);
	strata_snapshot_close(snap);
	cr_assert_eq(strata_close(s), 0);
	io_sim_free(env);
}

/* Readers fault chunks in while a checkpoint copies them. */
typedef struct reader_arg {
	strata_store *s;
	const strata_node_id *ids;
	int errors;
} reader_arg;

static void *reader(void *arg)
{
	reader_arg *a = arg;
	strata_snapshot *snap;
	if (strata_snapshot_open(a->s, &snap))
		return (void *)1;
	for (uint32_t k = NNODES; k >= 1; k -= 7) {
		const void *p;
		uint32_t size;
		if (strata_resolve(snap, a->ids[k], &p, &size) || !holds(p, k, size))
			a->errors++;
		if (k < 8)
			break;
	}
	strata_snapshot_close(snap);
	return NULL;
}

Test(ckpt, readers_fault_chunks_in_during_a_checkpoint, .timeout = 300)
{
	static strata_node_id ids[NNODES + 1001];
	io_env *env = store_with_nodes(ids);
	for (int round = 0; round < 3; round++) {
		strata_store *s = open_sim(env);
		make_nodes(s, ids, NNODES + 1, NNODES + 1000);
		reader_arg a = {s, ids, 0};
		pthread_t th;
		cr_assert_eq(pthread_create(&th, NULL, reader, &a), 0);
		cr_assert_eq(strata_checkpoint(s), 0);
		pthread_join(th, NULL);
		cr_assert_eq(a.errors, 0);
		expect_nodes(s, ids, NNODES + 1000);
		cr_assert_eq(strata_close(s), 0);
	}
	reopen_expect_clean(env, ids, NNODES + 1000);
}

/* A large image damaged on disk: its node is an error, the others are not,
 * and checkpoints go on, carrying the image over with its recorded CRC
 * (the chunk is loaded, the image never read: it is copied as it is). */
Test(ckpt, damaged_large_image_does_not_stop_checkpoints, .timeout = 300)
{
	static strata_node_id ids[NNODES + 1];
	io_env *env = store_with_nodes(ids);
	strata_store *s = open_sim(env);
	char path[64];
	snprintf(path, sizeof path, "db/ckpt.%016" PRIx64, s->dur->sb.ckpt_gen);
	cr_assert_eq(strata_close(s), 0);
	io_file *f;
	uint8_t hdr[4096];
	cr_assert_eq(io_open(env, path, IO_RDONLY, &f), 0);
	cr_assert_eq(io_pread(f, hdr, sizeof hdr, 0), 0);
	io_close(f);
	uint64_t large_off;
	memcpy(&large_off, hdr + 88 + 24 * 5, 8); /* sections: the sixth, large */
	/* Large nodes are written in entry order: node LARGE_EVERY's image first. */
	cr_assert_eq(io_sim_flip_bit(env, path, large_off + 1000, 2), 0);
	s = open_sim(env);
	strata_snapshot *snap;
	const void *p;
	uint32_t size;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	cr_assert_eq(strata_resolve(snap, ids[1], &p, &size), 0, "loads the first chunk");
	strata_snapshot_close(snap);
	const char *r = "r";
	strata_txn *t;
	cr_assert_eq(strata_txn_begin(s, &r, 1, STRATA_TXN_SYNC, &t), 0);
	cr_assert_eq(strata_txn_set_root(t, "r", ids[3]), 0);
	cr_assert_eq(strata_txn_commit(t, NULL), 0);
	cr_assert_eq(strata_checkpoint(s), 0, "a damaged image never read does not stop it");
	cr_assert_eq(strata_checkpoint(s), 0);
	cr_assert_eq(strata_close(s), 0);
	s = open_sim(env);
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	int rc = strata_resolve(snap, ids[LARGE_EVERY], &p, &size);
	cr_assert_eq(rc, STRATA_ECORRUPT, "damaged image: %s", strata_strerror(rc));
	for (uint32_t k = 2 * LARGE_EVERY; k <= NNODES; k += LARGE_EVERY) {
		cr_assert_eq(strata_resolve(snap, ids[k], &p, &size), 0, "large node %u", k);
		cr_assert(holds(p, k, size));
	}
	strata_snapshot_close(snap);
	cr_assert_eq(strata_close(s), 0);
	io_sim_free(env);
}

/* ---- the allocator's section (format version 3) ------------------------------ */
/* The current checkpoint's file name (the store is opened and closed
 * without a change: the same checkpoint stays). */
static void ckpt_name(io_env *env, char *path, size_t len)
{
	strata_store *s = open_sim(env);
	snprintf(path, len, "db/ckpt.%016" PRIx64, s->dur->sb.ckpt_gen);
	cr_assert_eq(strata_close(s), 0);
}

static uint64_t file_u64(io_env *env, const char *path, uint64_t off)
{
	io_file *f;
	uint8_t b[8];
	cr_assert_eq(io_open(env, path, IO_RDONLY, &f), 0);
	cr_assert_eq(io_pread(f, b, 8, off), 0);
	io_close(f);
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | b[i];
	return v;
}

#define CK_VERSION_AT 4     /* u16 format version (FORMAT.md, checkpoint header) */
#define CK_BITMAPS_OFF_AT 136 /* the bitmaps section's u64 offset, then its length */
#define EXTRA 500u          /* nodes of 3000 B: a segment of their own, in the last chunk */

/* Every node resolves to its bytes or to STRATA_ECORRUPT, never to other
 * bytes; returns how many were ECORRUPT. */
static uint32_t count_corrupt(strata_store *s, const strata_node_id *ids, uint32_t n)
{
	strata_snapshot *snap;
	uint32_t bad = 0;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	for (uint32_t k = 1; k <= n; k++) {
		const void *p;
		uint32_t size;
		int rc = strata_resolve(snap, ids[k], &p, &size);
		cr_assert(rc == 0 || rc == STRATA_ECORRUPT, "node %u: %s", k, strata_strerror(rc));
		if (rc) {
			cr_assert(strstr(strata_last_error(), "used-slot"), "says why: %s", strata_last_error());
			bad++;
		} else {
			cr_assert(size == size_of(k) && holds(p, k, size), "node %u: wrong bytes", k);
		}
	}
	strata_snapshot_close(snap);
	return bad;
}

/* EXTRA nodes of 3000 B after the first NNODES: the last segment made,
 * named only by entries of the last chunk. */
static void add_extra(io_env *env, strata_node_id *extra)
{
	strata_store *s = open_sim(env);
	strata_txn *t;
	cr_assert_eq(strata_txn_begin(s, NULL, 0, STRATA_TXN_NONE, &t), 0);
	for (uint32_t k = 0; k < EXTRA; k++) {
		void *p;
		cr_assert_eq(strata_txn_alloc(t, 3000, 7, &extra[k], &p), 0);
		memset(p, (int)k, 3000);
	}
	cr_assert_eq(strata_txn_commit(t, NULL), 0);
	cr_assert_eq(strata_close(s), 0);
}

/* A bit flipped in the last segment's used-slot words: the open (which no
 * longer reads them) succeeds; nodes of the chunk naming that segment are
 * STRATA_ECORRUPT, the rest resolve; check reports it; new nodes never go
 * into the segment; the next checkpoint derives its words from the
 * entries again, so after a reopen every node is back and check is clean. */
Test(ckpt, damaged_segment_words_are_found_when_used, .timeout = 300)
{
	static strata_node_id ids[NNODES + 1], extra[EXTRA];
	io_env *env = store_with_nodes(ids);
	add_extra(env, extra);
	char path[64];
	ckpt_name(env, path, sizeof path);
	cr_assert_eq(file_u64(env, path, CK_VERSION_AT) & 0xffff, 3);
	uint64_t bm_end = file_u64(env, path, CK_BITMAPS_OFF_AT) + file_u64(env, path, CK_BITMAPS_OFF_AT + 8);
	cr_assert_eq(io_sim_flip_bit(env, path, bm_end - 8, 0), 0);
	strata_store *s = open_sim(env);
	uint32_t bad = count_corrupt(s, ids, NNODES);
	cr_assert(bad > 0 && bad < NNODES, "%u of %u nodes ECORRUPT", bad, NNODES);
	test_collect col = {0};
	cr_assert_eq(strata_check(s, test_report_collect, &col), STRATA_ECORRUPT);
	cr_assert(strstr(col.all, "used-slot words"), "check names the segment: %s", col.all);
	const char *r = "r";
	strata_txn *t;
	cr_assert_eq(strata_txn_begin(s, &r, 1, STRATA_TXN_SYNC, &t), 0);
	for (uint32_t k = 0; k < 2000; k++) {
		strata_node_id id;
		void *p;
		cr_assert_eq(strata_txn_alloc(t, k % 2 ? 3000 : 16 + k % 200, 1, &id, &p), 0);
		cr_assert_not(seg_is_bad(&s->seg, seg_no_of(p)), "a new node went into the damaged segment");
	}
	cr_assert_eq(strata_txn_commit(t, NULL), 0);
	cr_assert_eq(strata_checkpoint(s), 0);
	cr_assert_eq(strata_close(s), 0);
	s = open_sim(env);
	cr_assert_eq(count_corrupt(s, ids, NNODES), 0);
	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	for (uint32_t k = 0; k < EXTRA; k++) {
		const uint8_t *p;
		cr_assert_eq(strata_resolve(snap, extra[k], (const void **)&p, NULL), 0);
		cr_assert(p[0] == (uint8_t)k && p[2999] == (uint8_t)k, "extra node %u", k);
	}
	strata_snapshot_close(snap);
	cr_assert_eq(strata_check(s, test_report, NULL), 0);
	cr_assert_eq(strata_close(s), 0);
	io_sim_free(env);
}

/* store_with_nodes, its checkpoint written in format version 2; path: its name. */
static io_env *v2_store_with_nodes(strata_node_id *ids, char *path, size_t len)
{
	ckpt_write_version = 2;
	io_env *env = store_with_nodes(ids);
	ckpt_write_version = 3;
	ckpt_name(env, path, len);
	return env;
}

/* Version-2 files (one class byte per segment, the words checked as one
 * section at open) still open, and their next checkpoint is version 3. */
Test(ckpt, version_2_files_still_open, .timeout = 300)
{
	static strata_node_id ids[NNODES + 1001];
	char path[64];
	io_env *env = v2_store_with_nodes(ids, path, sizeof path);
	cr_assert_eq(file_u64(env, path, CK_VERSION_AT) & 0xffff, 2);
	strata_store *s = open_sim(env);
	expect_nodes(s, ids, NNODES);
	cr_assert_eq(strata_check(s, test_report, NULL), 0);
	make_nodes(s, ids, NNODES + 1, NNODES + 1000);
	cr_assert_eq(strata_checkpoint(s), 0);
	cr_assert_eq(strata_close(s), 0);
	ckpt_name(env, path, sizeof path);
	cr_assert_eq(file_u64(env, path, CK_VERSION_AT) & 0xffff, 3);
	reopen_expect_clean(env, ids, NNODES + 1000);
}

/* In a version-2 file the words are still checked as one section at open. */
Test(ckpt, version_2_damaged_words_fail_the_open, .timeout = 300)
{
	static strata_node_id ids[NNODES + 1];
	char path[64];
	io_env *env = v2_store_with_nodes(ids, path, sizeof path);
	cr_assert_eq(io_sim_flip_bit(env, path, file_u64(env, path, CK_BITMAPS_OFF_AT) + 2, 5), 0);
	strata_options o = opts();
	strata_store *s;
	cr_assert_eq(store_open_env(&o, env, &s), STRATA_ECORRUPT);
	cr_assert(strstr(strata_last_error(), "checksum"), "%s", strata_last_error());
	io_sim_free(env);
}
