/*
 * test_verify.c — strata_verify_images (substrate/verify.c): clean stores
 * verify clean with the right count (IN_MEMORY, DURABLE after a clean close
 * and after a crash, retired nodes included); a bit flipped in a small
 * node's image in `data`, in a large node's image in the checkpoint file,
 * or in an image already in memory is reported naming that node, and the
 * root that names it is reported as unreadable; verification while a
 * writer commits, reclaims and checkpoints finds nothing. DURABLE cases run
 * on the simulated file system.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "durable.h"
#include "io_sim.h"
#include "support/model.h"
#include "verify.h"

TestSuite(verify, .fini = test_leak_check);

#define SMALL_SIZE 300u
#define LARGE_SIZE 100000u /* > 64 KiB: a large object */

/* The nodes of the workload: two small ones under root "small" (the second
 * a copy-on-write of the first), one large under root "large", one chain
 * node under no root. */
typedef struct nodes {
	strata_node_id small_old, small, large, loose;
} nodes;

static strata_options durable_opts(void)
{
	return test_durable_options("db", true); /* the coordinator stays asleep */
}

static io_env *fresh_env(void)
{
	io_env *env = io_sim_new();
	cr_assert_eq(io_mkdir(env, "db"), 0);
	cr_assert_eq(io_sync_dir(env, "."), 0);
	return env;
}

static strata_store *open_sim(io_env *env)
{
	strata_options o = durable_opts();
	strata_store *s = NULL;
	int rc = store_open_env(&o, env, &s);
	cr_assert_eq(rc, 0, "open: %s (%s)", strata_strerror(rc), strata_last_error());
	return s;
}

static void fill(void *p, uint32_t size, uint8_t seed)
{
	for (uint32_t i = 0; i < size; i++)
		((uint8_t *)p)[i] = (uint8_t)(seed + i * 7);
}

static strata_node_id alloc_filled(strata_txn *t, uint32_t size, uint8_t seed)
{
	strata_node_id id;
	void *p;
	cr_assert_eq(strata_txn_alloc(t, size, seed, &id, &p), 0);
	fill(p, size, seed);
	return id;
}

/* Commit 1: small, large, loose. Commit 2: small copied on write (the
 * old version retired). */
static nodes workload(strata_store *s)
{
	static const char *const names[] = {"small", "large"};
	nodes n;
	strata_txn *t;
	cr_assert_eq(strata_txn_begin(s, names, 2, 0, &t), 0);
	n.small_old = alloc_filled(t, SMALL_SIZE, 1);
	n.large = alloc_filled(t, LARGE_SIZE, 2);
	n.loose = alloc_filled(t, 64, 3);
	cr_assert_eq(strata_txn_set_root(t, "small", n.small_old), 0);
	cr_assert_eq(strata_txn_set_root(t, "large", n.large), 0);
	cr_assert_eq(strata_txn_commit(t, NULL), 0);
	cr_assert_eq(strata_txn_begin(s, names, 1, 0, &t), 0);
	void *p;
	cr_assert_eq(strata_txn_write(t, n.small_old, &n.small, &p, NULL), 0);
	((uint8_t *)p)[0] ^= 0xff;
	cr_assert_eq(strata_txn_set_root(t, "small", n.small), 0);
	cr_assert_eq(strata_txn_commit(t, NULL), 0);
	return n;
}

static uint64_t nodes_held(strata_store *s)
{
	strata_store_stats st;
	cr_assert_eq(strata_stats(s, &st), 0);
	return st.nodes_live + st.nodes_retired;
}

static void expect_clean(strata_store *s, uint64_t want)
{
	uint64_t checked = 0;
	cr_assert_eq(strata_verify_images(s, test_report, NULL, &checked), 0);
	cr_assert_eq(checked, want, "checked %" PRIu64 ", expected %" PRIu64, checked, want);
}

/* Verification fails, and some message names `id` and `what`. */
static void expect_reported(strata_store *s, strata_node_id id, const char *what)
{
	test_collect c = {0};
	cr_assert_eq(strata_verify_images(s, test_report_collect, &c, NULL), STRATA_ECORRUPT);
	char name[32];
	snprintf(name, sizeof name, "node %#" PRIx64 ":", id);
	cr_assert(strstr(c.all, name), "no message names %s:\n%s", name, c.all);
	cr_assert(strstr(c.all, what), "no message says '%s':\n%s", what, c.all);
}

/* Offset in `data` of a small node's slot (its image after a checkpoint). */
static uint64_t data_offset(strata_store *s, strata_node_id id)
{
	ot_entry *e = ot_entry_of(&s->ot, id);
	cr_assert_not_null(e);
	const void *p = (const void *)(uintptr_t)(atomic_load(&e->loc) & ~LAZY_BIT);
	return (uint64_t)seg_no_of(p) * SEG_SIZE + seg_offset_of(p);
}

/* ---- clean stores -------------------------------------------------------------- */
Test(verify, null_store_is_einval)
{
	cr_assert_eq(strata_verify_images(NULL, NULL, NULL, NULL), STRATA_EINVAL);
}

Test(verify, in_memory_store_walks_every_live_and_retired_node)
{
	strata_options o;
	strata_options_init(&o);
	strata_store *s = test_open(&o);
	expect_clean(s, 0);
	strata_snapshot *old;
	cr_assert_eq(strata_snapshot_open(s, &old), 0); /* keeps small_old from reclamation */
	workload(s);
	cr_assert_eq(nodes_held(s), 4);
	expect_clean(s, 4); /* three live, small_old retired */
	strata_snapshot_close(old);
	cr_assert_eq(strata_reclaim(s), 1);
	expect_clean(s, 3);
	test_close(s);
}

Test(verify, durable_store_after_clean_close_loads_and_checks_every_image)
{
	io_env *env = fresh_env();
	strata_store *s = open_sim(env);
	nodes n = workload(s);
	expect_clean(s, nodes_held(s)); /* in memory, no checkpoint yet */
	cr_assert_eq(strata_close(s), 0);
	s = open_sim(env);
	cr_assert_eq(nodes_held(s), 3, "small, large, loose (the retired one is gone)");
	ot_entry *e = ot_entry_of(&s->ot, n.large);
	cr_assert(atomic_load(&e->loc) & LAZY_BIT, "not loaded by open");
	expect_clean(s, 3);
	cr_assert_not(atomic_load(&e->loc) & LAZY_BIT, "loaded by verification");
	expect_clean(s, 3); /* again, now against the recorded CRCs */
	cr_assert_eq(strata_check(s, test_report, NULL), 0);
	cr_assert_eq(strata_close(s), 0);
	io_sim_free(env);
}

Test(verify, durable_store_after_a_crash)
{
	io_env *env = fresh_env();
	strata_store *s = open_sim(env);
	workload(s);
	cr_assert_eq(strata_checkpoint(s), 0);
	workload(s); /* after the checkpoint: only in the WAL */
	strata_store_stats st;
	cr_assert_eq(strata_stats(s, &st), 0);
	io_sim_crash_after(env, io_sim_steps(env));
	strata_close(s); /* the process "died": its writes fail */
	io_sim_power_loss(env, IO_SIM_DROP_ALL, 1);
	s = open_sim(env);
	cr_assert(strstr(strata_last_error(), "2 commits replayed"), "%s", strata_last_error());
	cr_assert_eq(nodes_held(s), st.nodes_live, "replay keeps no retired node");
	expect_clean(s, st.nodes_live);
	cr_assert_eq(strata_close(s), 0);
	io_sim_free(env);
}

/* ---- damage --------------------------------------------------------------------- */
Test(verify, flipped_bit_in_data_names_the_node)
{
	io_env *env = fresh_env();
	strata_store *s = open_sim(env);
	nodes n = workload(s);
	uint64_t off = data_offset(s, n.small);
	cr_assert_eq(strata_close(s), 0); /* the checkpoint writes the image there */
	cr_assert_eq(io_sim_flip_bit(env, "db/data", off + SMALL_SIZE / 2, 3), 0);
	s = open_sim(env);
	char where[64];
	snprintf(where, sizeof where, "at data offset %" PRIu64 ") not readable", off);
	expect_reported(s, n.small, where);
	expect_reported(s, n.small, strata_strerror(STRATA_ECORRUPT));
	test_collect c = {0};
	cr_assert_eq(strata_verify_images(s, test_report_collect, &c, NULL), STRATA_ECORRUPT);
	cr_assert_eq(c.n, 2, "the node and its root:\n%s", c.all);
	cr_assert(strstr(c.all, "root 'small': node"), "%s", c.all);
	cr_assert_eq(strata_check(s, test_report, NULL), 0, "the object table is fine");
	cr_assert_eq(strata_close(s), 0);
	io_sim_free(env);
}

Test(verify, flipped_bit_in_a_large_image_names_the_node)
{
	io_env *env = fresh_env();
	strata_store *s = open_sim(env);
	nodes n = workload(s);
	cr_assert_eq(strata_close(s), 0);
	s = open_sim(env);
	uint64_t loc = atomic_load(&ot_entry_of(&s->ot, n.large)->loc);
	cr_assert(loc & LAZY_BIT);
	char ckpt[64];
	snprintf(ckpt, sizeof ckpt, "db/ckpt.%016" PRIx64, s->dur->sb.ckpt_gen);
	cr_assert_eq(io_sim_flip_bit(env, ckpt, (loc >> 1) + LARGE_SIZE - 1, 0), 0);
	expect_reported(s, n.large, "checkpoint file offset");
	/* The other images are fine and were checked all the same. */
	test_collect c = {0};
	uint64_t checked = 0;
	cr_assert_eq(strata_verify_images(s, test_report_collect, &c, &checked), STRATA_ECORRUPT);
	cr_assert_eq(checked, 3);
	cr_assert_eq(c.n, 2, "the large node and root 'large':\n%s", c.all);
	cr_assert_eq(strata_close(s), 0);
	io_sim_free(env);
}

Test(verify, damaged_image_in_memory_is_reported)
{
	io_env *env = fresh_env();
	strata_store *s = open_sim(env);
	nodes n = workload(s);
	cr_assert_eq(strata_checkpoint(s), 0); /* records every image's CRC */
	uint64_t held = nodes_held(s);
	expect_clean(s, held);
	ot_entry *e = ot_entry_of(&s->ot, n.loose);
	uint8_t *p = entry_data(e);
	p[10] ^= 0x40; /* a stray write into committed bytes */
	expect_reported(s, n.loose, "differs from the one checkpointed");
	p[10] ^= 0x40;
	expect_clean(s, held);
	cr_assert_eq(strata_close(s), 0);
	io_sim_free(env);
}

Test(verify, images_born_after_the_checkpoint_are_not_held_to_stale_crcs)
{
	io_env *env = fresh_env();
	strata_store *s = open_sim(env);
	workload(s);
	cr_assert_eq(strata_checkpoint(s), 0);
	/* Free everything, reclaim, and reuse the handles: their CRC cells
	 * still hold the former occupants' CRCs. */
	static const char *const names[] = {"small", "large"};
	for (int round = 0; round < 3; round++) {
		strata_txn *t;
		cr_assert_eq(strata_txn_begin(s, names, 2, 0, &t), 0);
		for (int i = 0; i < 2; i++) {
			strata_node_id id;
			cr_assert_eq(strata_txn_get_root(t, names[i], &id), 0);
			cr_assert_eq(strata_txn_free(t, id), 0);
			id = alloc_filled(t, i ? LARGE_SIZE : SMALL_SIZE, (uint8_t)(40 + round));
			cr_assert_eq(strata_txn_set_root(t, names[i], id), 0);
		}
		cr_assert_eq(strata_txn_commit(t, NULL), 0);
		strata_reclaim(s);
	}
	expect_clean(s, nodes_held(s));
	cr_assert_eq(strata_close(s), 0);
	io_sim_free(env);
}

/* ---- while writers go on ------------------------------------------------------------ */
#define WRITER_COMMITS 400u

typedef struct writer_arg {
	strata_store *s;
	_Atomic bool done;
	int rc;
} writer_arg;

/* Copy-on-write of both roots, WRITER_COMMITS times (every old version
 * retired and reclaimed), a checkpoint every 16 commits in DURABLE mode. */
static void *writer_main(void *arg)
{
	writer_arg *w = arg;
	static const char *const names[] = {"small", "large"};
	for (uint32_t k = 0; k < WRITER_COMMITS && !w->rc; k++) {
		strata_txn *t;
		if ((w->rc = strata_txn_begin(w->s, names, 2, 0, &t)))
			break;
		for (int i = 0; i < 2 && !w->rc; i++) {
			strata_node_id id, nid;
			void *p;
			uint32_t size;
			if (!(w->rc = strata_txn_get_root(t, names[i], &id)) &&
			    !(w->rc = strata_txn_write(t, id, &nid, &p, &size)))
				w->rc = strata_txn_set_root(t, names[i], nid);
		}
		if (w->rc) {
			strata_txn_abort(t);
			break;
		}
		if ((w->rc = strata_txn_commit(t, NULL)))
			break;
		if (w->s->dur && k % 16 == 15)
			w->rc = strata_checkpoint(w->s);
	}
	atomic_store(&w->done, true);
	return NULL;
}

static void verify_under_writes(strata_store *s)
{
	workload(s);
	writer_arg w = {.s = s};
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, writer_main, &w), 0);
	unsigned rounds = 0;
	while (!atomic_load(&w.done)) {
		uint64_t checked = 0;
		cr_assert_eq(strata_verify_images(s, test_report, NULL, &checked), 0, "round %u", rounds);
		cr_assert_geq(checked, 3);
		rounds++;
	}
	pthread_join(th, NULL);
	cr_log_info("%u verifications during %u commits", rounds, WRITER_COMMITS);
	cr_assert_eq(w.rc, 0, "writer: %s", strata_strerror(w.rc));
	expect_clean(s, nodes_held(s));
	cr_assert_eq(strata_check(s, test_report, NULL), 0);
}

Test(verify, in_memory_while_a_writer_commits)
{
	strata_options o;
	strata_options_init(&o);
	strata_store *s = test_open(&o);
	verify_under_writes(s);
	test_close(s);
}

Test(verify, durable_while_a_writer_commits_and_checkpoints)
{
	io_env *env = fresh_env();
	strata_store *s = open_sim(env);
	verify_under_writes(s);
	cr_assert_eq(strata_close(s), 0);
	s = open_sim(env); /* everything lazy again, after many checkpoints */
	verify_under_writes(s);
	cr_assert_eq(strata_close(s), 0);
	io_sim_free(env);
}
