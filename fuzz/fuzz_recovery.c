/*
 * fuzz_recovery.c — strata_open (DURABLE) on a fuzzed store directory
 * (input layout in README.md):
 *
 *   u8 flags   bit 0 salvage · bit 1 WAL files preallocated · bit 2 recompute
 *              WAL CRCs · bit 3 recompute checkpoint CRCs · bit 4 SUPER
 *              slots take the checkpoint fields of the file they name ·
 *              bit 5 recompute SUPER slot CRCs · bit 6 the commit after
 *              recovery allocates a large node · bit 7 it also copies a root's
 *              node (copy-on-write)
 *   u8 WAL file size (1 or 2 MiB) · u8 WAL base seq · u8 checkpoint gen
 *   extents until the input ends (fz_store_build): SUPER, ckpt.<gen>,
 *   data, wal.<seq>
 *
 * Open must fail with a documented status and a message of its own, or
 * give a store that passes strata_check (dangling roots aside, which the
 * API can make), whose roots and object-table entries all resolve to bytes
 * or to an error that says why not (never a crash, never bytes for a free
 * handle or a stale tag), that takes a commit, and that, closed and
 * reopened, shows the same roots, the same nodes and that commit.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "durable.h"
#include "fuzz_common.h"
#include "internal.h"
#include "io_sim.h"

#define STORE_DIR "db"
#define MAX_SEGS 16          /* segments (2 MiB each) a checkpoint may declare */
#define MAX_ENTRIES (1u << 15) /* object-table entries WAL NODE frames may imply */
#define NEW_ROOT "fuzz"
#define NEW_KIND 0xa5

typedef struct params {
	bool salvage, big, cow;
} params;

/* One object-table entry as the first open saw it. */
typedef struct seen {
	strata_node_id id;
	int rc; /* of strata_resolve */
	uint32_t size, crc;
	bool gone; /* retired by the commit after recovery */
} seen;

/* One root as the first open saw it (after the commit). */
typedef struct seen_root {
	char name[STRATA_ROOT_NAME_MAX + 1];
	strata_node_id id;
} seen_root;

typedef struct state {
	seen *v;
	size_t n, cap;
	seen_root *roots;
	size_t nroots, roots_cap;
	bool corrupt; /* some node's image or object-table chunk failed its checksum */
	/* a segment's used-slot words failed their check (checkpoint format 3,
	 * found when its header is built): nodes of chunks naming it are
	 * ECORRUPT until the next checkpoint derives its words from the
	 * entries, so after reopening they may read back (checked by CRC) */
	bool seg_bad;
	bool committed; /* the transaction after recovery */
	bool fs_full;   /* it failed on the simulator's file size limit */
	bool hole;      /* the WAL has a hole (fz_wal_hole) from its start file on */
	strata_node_id new_id;
	uint32_t new_size;
} state;

static void *grow(void *v, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return v;
	size_t nc = *cap ? *cap * 2 : 64;
	void *p = realloc(v, nc * elem);
	FZ_CHECK(p, "out of memory");
	*cap = nc;
	return p;
}

static void read_params(fz_cursor *c, wal_config *cfg, fz_store_image *img, params *p)
{
	uint8_t flags = fz_u8(c);
	cfg->file_size = (uint64_t)WAL_MIN_FILE << (fz_u8(c) % 2);
	memset(img, 0, sizeof *img);
	img->wal.base_seq = fz_u8(c);
	img->ckpt_gen = fz_u8(c);
	p->salvage = flags & 1;
	img->wal.full = flags & 2;
	img->wal.reseal = flags & 4;
	img->reseal_ckpt = flags & 8;
	img->sync_super = flags & 16;
	img->reseal_super = flags & 32;
	p->big = flags & 64;
	p->cow = flags & 128;
}

/* ---- keeping the work bounded ---------------------------------------------------- */
/* A checkpoint may legitimately declare any number of segments, and a WAL
 * NODE frame any handle index; recovery then makes that many segments
 * (2 MiB each) or object-table entries. Inputs asking for more than a few
 * are skipped, so each run costs what its input costs. */
static bool ckpt_too_big(io_env *env, const fz_store_image *img)
{
	for (unsigned i = 0; i < FZ_CKPT_FILES; i++) {
		char path[256];
		io_file *f;
		uint32_t nsegs = 0;
		if (!(img->ckpts & (1u << i)))
			continue;
		fz_ckpt_path(STORE_DIR, img->ckpt_gen + i, path, sizeof path);
		if (io_open(env, path, IO_RDONLY, &f))
			continue;
		int rc = io_pread(f, &nsegs, 4, 48);
		io_close(f);
		if (!rc && nsegs > MAX_SEGS)
			return true;
	}
	return false;
}

/* Highest handle index per shard that a NODE frame header in the written
 * part of a WAL file names (any such header stamped with its own LSN, which
 * replay requires before it looks further; valid or not). */
static void wal_indexes(const uint8_t *p, size_t len, size_t hi, uint64_t lsn0,
			uint32_t top[OT_MAX_SHARDS])
{
	size_t end = hi + WAL_FRAME_HDR + 16 < len ? hi + WAL_FRAME_HDR + 16 : len;
	for (size_t pos = WAL_FILE_HDR; pos + WAL_FRAME_HDR + 16 <= end; pos += 8) {
		uint16_t type;
		uint64_t id, lsn;
		memcpy(&type, p + pos + 4, 2);
		memcpy(&lsn, p + pos + 8, 8);
		memcpy(&id, p + pos + WAL_FRAME_HDR, 8);
		uint32_t idx = STRATA_NODEID_INDEX(id) + 1, sh = STRATA_NODEID_SHARD(id);
		if (type == WAL_NODE && lsn == lsn0 + pos && idx > top[sh])
			top[sh] = idx;
	}
}

static bool wal_too_big(io_env *env, const wal_config *cfg, const fz_store_image *img)
{
	uint32_t top[OT_MAX_SHARDS] = {0};
	for (unsigned i = 0; i < FZ_WAL_FILES; i++) {
		char path[256];
		io_file *f;
		uint64_t size;
		const void *p;
		if (!(img->wal.made & (1u << i)))
			continue;
		fz_wal_path(cfg, img->wal.base_seq + i, path, sizeof path);
		FZ_CHECK(!io_open(env, path, IO_RDONLY, &f), "opening %s", path);
		if (!io_size(f, &size) && size && !io_map(f, 0, (size_t)size, &p)) {
			wal_indexes(p, (size_t)size, (size_t)img->wal.hi[i],
				    (img->wal.base_seq + i) * cfg->file_size, top);
			io_unmap(f, p, (size_t)size);
		}
		io_close(f);
	}
	uint64_t sum = 0;
	for (unsigned sh = 0; sh < OT_MAX_SHARDS; sh++)
		sum += top[sh];
	return sum > MAX_ENTRIES;
}

/* ---- opening ---------------------------------------------------------------------- */
static strata_options options(unsigned flags)
{
	strata_options o;
	strata_options_init(&o);
	o.mode = STRATA_DURABLE;
	o.path = STORE_DIR;
	o.flags = flags;
	o.wal_file_size = 1u << 20;
	/* The coordinator idles: no timed sync or checkpoint during a run. */
	o.async_interval_ms = 3600u * 1000;
	o.checkpoint_interval_ms = 0;
	o.checkpoint_wal_bytes = UINT64_MAX;
	return o;
}

/* Opens, with the message of an earlier open cleared, so a failure must
 * say something of its own. */
static int open_store(io_env *env, unsigned flags, strata_store **s)
{
	strata_options o = options(flags);
	store_set_error("%s", "");
	return store_open_env(&o, env, s);
}

static void check_open_error(int rc)
{
	FZ_CHECK(rc == STRATA_ECORRUPT || rc == STRATA_EFORMAT || rc == STRATA_ETRUNCATED ||
			 rc == STRATA_ENOMEM || (rc < 0 && rc > -4096),
		 "open returned %d (%s): %s", rc, strata_strerror(rc), strata_last_error());
	FZ_CHECK(strata_last_error()[0], "open failed with %d (%s) but left no message", rc,
		 strata_strerror(rc));
}

static bool verbose(void)
{
	static int v = -1;
	if (v < 0)
		v = getenv("FUZZ_VERBOSE") != NULL;
	return v;
}

/* An input with checkpoint CRCs recomputed (flags bit 3) may hold
 * used-slot bitmaps with bits no entry accounts for: a well-formed lie that
 * open trusts under its CRC (the bitmaps are what spares it reading every
 * entry) and that strata_check, which reads them all, must report. Such
 * leaked slots are the one problem allowed then. */
static bool resealed_ckpt;

typedef struct check_tally {
	size_t counted, leaks;
} check_tally;

static void count_problem(void *ctx, const char *msg)
{
	check_tally *p = ctx;
	if (resealed_ckpt && strstr(msg, " slots used, ") && strncmp(msg, "class ", 6) == 0)
		p->leaks++;
	else
		p->counted++;
	if (verbose())
		fprintf(stderr, "strata_check: %s\n", msg);
}

static void print_problem(void *ctx, const char *msg)
{
	(void)ctx;
	fprintf(stderr, "strata_check: %s\n", msg);
}

/* Roots naming a node that is not visible. The API lets a transaction free
 * a root's node and leave the root as it is, so recovery must be able to
 * bring such a root back; strata_check reports it. */
static size_t dangling_roots(strata_store *s)
{
	strata_snapshot *snap;
	FZ_CHECK(strata_snapshot_open(s, &snap) == 0, "snapshot_open");
	root_dir *d = atomic_load(&s->cat.dir);
	size_t n = 0;
	for (uint32_t k = 0; k < d->n; k++) {
		const root_version *v = root_version_at(d->roots[k], strata_snapshot_epoch(snap));
		const void *p;
		int rc = v && v->id ? strata_resolve(snap, v->id, &p, NULL) : 0;
		n += rc == STRATA_ESTALE || rc == STRATA_ENOTVISIBLE;
	}
	strata_snapshot_close(snap);
	return n;
}

/* A chunk of the object table fails its checksum when loaded (open reads
 * none): strata_check must say so and fail; nothing else is promised of
 * the counts it then cannot complete. */
static bool chunk_damaged(strata_store *s, const char *when)
{
	int rc = ot_load_all(&s->ot);
	FZ_CHECK(rc == 0 || rc == STRATA_ECORRUPT, "loading the object table %s: %d", when, rc);
	if (!rc)
		return false;
	char why[512];
	snprintf(why, sizeof why, "%s", strata_last_error());
	FZ_CHECK(strata_check(s, NULL, NULL) == STRATA_ECORRUPT,
		 "strata_check %s passes a damaged chunk (%s)", when, why);
	return true;
}

/* A segment whose used-slot words fail their CRC or count (checked when
 * its header is built; seg_check builds all): strata_check must say so and
 * fail, as for a damaged chunk. */
static bool segment_damaged(strata_store *s, const char *when)
{
	seg_build_all(&s->seg);
	if (!atomic_load(&s->seg.bad_segs))
		return false;
	FZ_CHECK(strata_check(s, NULL, NULL) == STRATA_ECORRUPT,
		 "strata_check %s passes a segment whose used-slot words are damaged", when);
	return true;
}

/* strata_check reports nothing but the dangling roots. */
static void check_clean(strata_store *s, const char *when)
{
	if (chunk_damaged(s, when) || segment_damaged(s, when))
		return;
	size_t dangling = dangling_roots(s);
	check_tally pr = {0, 0};
	int rc = strata_check(s, count_problem, &pr);
	size_t problems = pr.counted;
	bool ok = problems == dangling && (rc == 0) == (problems + pr.leaks == 0);
	if (!ok)
		strata_check(s, print_problem, NULL);
	FZ_CHECK(ok,
		 "strata_check %s: %d, %zu problems, %zu dangling roots (%s)", when, rc, problems,
		 dangling, strata_last_error());
}

/* ---- walking what recovery built ---------------------------------------------- */
/* Resolves id; a failure must be one that says why, and a checksum failure
 * must stay one. *crc covers the bytes of a success. */
static int resolve(strata_snapshot *snap, strata_node_id id, uint32_t *size, uint32_t *crc)
{
	const void *p = NULL;
	int rc = strata_resolve(snap, id, &p, size);
	FZ_CHECK(rc == 0 || rc == STRATA_ECORRUPT || rc == STRATA_ESTALE || rc == STRATA_ENOTVISIBLE,
		 "resolve %#llx: %d", (unsigned long long)id, rc);
	if (rc == STRATA_ECORRUPT) {
		int again = strata_resolve(snap, id, &p, size);
		FZ_CHECK(again == STRATA_ECORRUPT, "resolve %#llx: corrupt, then %d",
			 (unsigned long long)id, again);
	}
	if (!rc)
		*crc = strata_crc32c(0, p, *size);
	return rc;
}

/* A handle's neighbours in tag space name nothing. */
static void check_other_tags(strata_snapshot *snap, uint32_t sh, uint32_t i, uint32_t tag)
{
	uint32_t size, crc;
	if (tag > 1)
		FZ_CHECK(resolve(snap, ot_make_id(sh, i, tag - 1), &size, &crc) == STRATA_ESTALE,
			 "entry %u/%u: an old tag resolves", sh, i);
	if (tag < OT_TAG_MAX)
		FZ_CHECK(resolve(snap, ot_make_id(sh, i, tag + 1), &size, &crc) == STRATA_ESTALE,
			 "entry %u/%u: a future tag resolves", sh, i);
}

static void walk_entry(strata_store *s, strata_snapshot *snap, state *st, uint32_t sh, uint32_t i)
{
	ot_entry *e;
	int frc = ot_entry_get(&s->ot, sh, i, &e);
	if (frc || !e) { /* its chunk, read on first touch, is damaged */
		uint32_t size, crc;
		FZ_CHECK(frc == STRATA_ECORRUPT, "entry %u/%u: loading its chunk: %d", sh, i, frc);
		FZ_CHECK(resolve(snap, ot_make_id(sh, i, 1), &size, &crc) == STRATA_ECORRUPT,
			 "entry %u/%u: a node of a damaged chunk resolves", sh, i);
		st->corrupt = true;
		return;
	}
	uint32_t m = atomic_load(&e->meta), info = atomic_load(&e->info);
	seen x = {.id = ot_make_id(sh, i, OT_META_TAG(m))};
	x.rc = resolve(snap, x.id, &x.size, &x.crc);
	check_other_tags(snap, sh, i, OT_META_TAG(m));
	if (OT_META_STATE(m) == OT_FREE) {
		FZ_CHECK(x.rc == STRATA_ESTALE, "free handle %#llx resolves: %d",
			 (unsigned long long)x.id, x.rc);
		return;
	}
	FZ_CHECK(OT_META_STATE(m) == OT_LIVE, "entry %#llx in state %u after recovery",
		 (unsigned long long)x.id, OT_META_STATE(m));
	FZ_CHECK(OT_META_TAG(m) != 0, "live entry %u/%u with tag 0", sh, i);
	FZ_CHECK(x.rc == 0 || x.rc == STRATA_ECORRUPT, "live node %#llx: %d",
		 (unsigned long long)x.id, x.rc);
	FZ_CHECK(x.rc || x.size == OT_INFO_SIZE(info), "node %#llx: size %u, entry says %u",
		 (unsigned long long)x.id, x.size, OT_INFO_SIZE(info));
	st->corrupt |= x.rc == STRATA_ECORRUPT;
	st->v = grow(st->v, &st->cap, st->n + 1, sizeof *st->v);
	st->v[st->n++] = x;
}

static void walk_entries(strata_store *s, strata_snapshot *snap, state *st)
{
	uint32_t size, crc;
	FZ_CHECK(resolve(snap, STRATA_NODE_NULL, &size, &crc) == STRATA_ESTALE,
		 "STRATA_NODE_NULL resolves");
	for (uint32_t sh = 0; sh < s->ot.shards_max; sh++)
		for (uint32_t i = 0; i < s->ot.shards[sh].next_index; i++)
			walk_entry(s, snap, st, sh, i);
}

/* Every root, through the public API by name: a node that reads back, or
 * a bad image, or a dangling root's node, which never resolves. */
static void walk_roots(strata_store *s, strata_snapshot *snap, state *st)
{
	root_dir *d = atomic_load(&s->cat.dir);
	st->nroots = 0;
	for (uint32_t k = 0; k < d->n; k++) {
		seen_root r = {0};
		memcpy(r.name, d->roots[k]->name, d->roots[k]->name_len);
		int rc = strata_snapshot_root(snap, r.name, &r.id);
		FZ_CHECK(rc == 0, "root '%s': %d", r.name, rc);
		uint32_t size, crc;
		rc = r.id ? resolve(snap, r.id, &size, &crc) : 0;
		FZ_CHECK(rc == 0 || rc == STRATA_ECORRUPT || rc == STRATA_ESTALE ||
				 rc == STRATA_ENOTVISIBLE,
			 "root '%s' -> %#llx: %d", r.name, (unsigned long long)r.id, rc);
		st->roots = grow(st->roots, &st->roots_cap, st->nroots + 1, sizeof *st->roots);
		st->roots[st->nroots++] = r;
	}
}

static void walk(strata_store *s, state *st)
{
	strata_snapshot *snap;
	FZ_CHECK(strata_snapshot_open(s, &snap) == 0, "snapshot_open");
	walk_entries(s, snap, st);
	walk_roots(s, snap, st);
	strata_snapshot_close(snap);
}

/* ---- one commit after recovery ---------------------------------------------------- */
static seen *find_seen(const state *st, strata_node_id id)
{
	for (size_t i = 0; i < st->n; i++)
		if (st->v[i].id == id)
			return &st->v[i];
	return NULL;
}

static size_t roots_naming(const state *st, strata_node_id id)
{
	size_t n = 0;
	for (size_t k = 0; k < st->nroots; k++)
		n += st->roots[k].id == id;
	return n;
}

/* A root whose node reads back and is no other root's, for the
 * copy-on-write (which retires the node). */
static const char *cow_root(const state *st)
{
	for (size_t k = 0; k < st->nroots; k++) {
		const seen *x = find_seen(st, st->roots[k].id);
		if (strcmp(st->roots[k].name, NEW_ROOT) && x && !x->rc &&
		    roots_naming(st, x->id) == 1)
			return st->roots[k].name;
	}
	return NULL;
}

static void fill(uint8_t *p, uint32_t size)
{
	for (uint32_t i = 0; i < size; i++)
		p[i] = (uint8_t)(i * 31 + 7);
}

/* Copies root `name`'s node (the old one is retired at commit); *old and
 * *nid get the two NodeIDs. */
static void cow(strata_txn *t, const char *name, strata_node_id *old, strata_node_id *nid)
{
	void *p;
	uint32_t size;
	int rc = strata_txn_get_root(t, name, old);
	if (!rc)
		rc = strata_txn_write(t, *old, nid, &p, &size);
	if (!rc)
		rc = strata_txn_set_root(t, name, *nid);
	FZ_CHECK(rc == 0, "copy-on-write of root '%s' (%#llx): %d", name,
		 (unsigned long long)*old, rc);
}

/* The copy is what the old node was; the old NodeID is gone. */
static void cow_done(state *st, strata_node_id old, strata_node_id nid)
{
	seen *x = find_seen(st, old);
	FZ_CHECK(x, "a root names %#llx, which the walk did not see", (unsigned long long)old);
	seen y = *x;
	x->gone = true;
	y.id = nid;
	st->v = grow(st->v, &st->cap, st->n + 1, sizeof *st->v);
	st->v[st->n++] = y;
}

/* A commit may fail (STRATA_EFULL) only when the log is near the end of the
 * LSN space (a superblock may start it anywhere below WAL_LSN_MAX) or the
 * epochs are at their end (2^63 - 1: a WAL commit may carry any epoch). */
static bool space_left(strata_store *s)
{
	durable *d = atomic_load(&s->dur);
	uint64_t end = wal_end(d->wal), margin = (1u << 20) + 2 * d->wcfg.file_size;
	return end < WAL_LSN_MAX && WAL_LSN_MAX - end > margin &&
	       !((atomic_load(&s->epoch_current) + 1) & EPOCH_PENDING);
}

/* io_sim holds at most 1 GiB per file (io_sim.h); a superblock may ask for
 * WAL files up to 2^40 bytes, which the writer then cannot create there
 * (-EFBIG, as a full disk would give -ENOSPC). */
#define SIM_FILE_MAX (1ull << 30)

static bool wal_fits_sim(strata_store *s)
{
	return atomic_load(&s->dur)->wcfg.file_size <= SIM_FILE_MAX;
}

/* Returns whether the transaction committed. */
static bool commit_one(strata_store *s, state *st, const params *p)
{
	const char *names[2] = {NEW_ROOT, p->cow ? cow_root(st) : NULL};
	size_t n = names[1] ? 2 : 1;
	strata_txn *t;
	strata_node_id old = 0, nid = 0;
	int rc = strata_txn_begin(s, names, n, 0, &t);
	FZ_CHECK(rc == 0, "txn_begin after recovery: %d", rc);
	if (n == 2)
		cow(t, names[1], &old, &nid);
	void *data;
	st->new_size = p->big ? 70001 : 100;
	rc = strata_txn_alloc(t, st->new_size, NEW_KIND, &st->new_id, &data);
	FZ_CHECK(rc == 0, "txn_alloc after recovery: %d", rc);
	fill(data, st->new_size);
	rc = strata_txn_set_root(t, NEW_ROOT, st->new_id);
	FZ_CHECK(rc == 0, "set_root after recovery: %d", rc);
	rc = strata_txn_commit(t, NULL);
	st->fs_full = rc == -EFBIG && !wal_fits_sim(s);
	FZ_CHECK(rc == 0 || (rc == STRATA_EFULL && !space_left(s)) || st->fs_full,
		 "commit after recovery: %d (%s)", rc, strata_strerror(rc));
	if (!rc && n == 2)
		cow_done(st, old, nid);
	return rc == 0;
}

/* The roots after the commit, as the reopened store must show them. */
static void roots_after(strata_store *s, state *st)
{
	strata_snapshot *snap;
	FZ_CHECK(strata_snapshot_open(s, &snap) == 0, "snapshot_open");
	walk_roots(s, snap, st);
	strata_snapshot_close(snap);
}

/* Closing writes a checkpoint; only an image that fails its checksum (it
 * cannot be copied into the new checkpoint) or a store poisoned by the
 * failed commit may stop it. */
static void close_store(strata_store *s, const state *st)
{
	int rc = strata_close(s);
	FZ_CHECK(rc == 0 || (rc == STRATA_ECORRUPT && st->corrupt) ||
			 (st->fs_full && (rc == STRATA_EIO || rc == -EFBIG)),
		 "close: %d (%s)", rc, strata_strerror(rc));
}

/* ---- after reopening ---------------------------------------------------------------- */
static void check_same(strata_snapshot *snap, const state *st)
{
	for (size_t i = 0; i < st->n; i++) {
		const seen *x = &st->v[i];
		uint32_t size = 0, crc = 0;
		int rc = resolve(snap, x->id, &size, &crc);
		if (x->gone) {
			FZ_CHECK(rc == STRATA_ESTALE, "node %#llx, retired before reopening: %d",
				 (unsigned long long)x->id, rc);
			continue;
		}
		if (st->seg_bad && x->rc == STRATA_ECORRUPT && rc == 0)
			continue; /* its chunk named a bad segment; bytes checked by their CRC now */
		FZ_CHECK(rc == x->rc && (rc || (size == x->size && crc == x->crc)),
			 "node %#llx: %d, size %u before reopening, %d, size %u after",
			 (unsigned long long)x->id, x->rc, x->size, rc, size);
	}
	for (size_t k = 0; k < st->nroots; k++) {
		strata_node_id id = 0;
		int rc = strata_snapshot_root(snap, st->roots[k].name, &id);
		FZ_CHECK(rc == 0 && id == st->roots[k].id,
			 "root '%s': %#llx before reopening, %d / %#llx after", st->roots[k].name,
			 (unsigned long long)st->roots[k].id, rc, (unsigned long long)id);
	}
}

static void check_new_node(strata_snapshot *snap, const state *st)
{
	strata_node_id id = 0;
	const void *p;
	uint32_t size = 0;
	int rc = strata_snapshot_root(snap, NEW_ROOT, &id);
	FZ_CHECK(rc == 0 && id == st->new_id, "root '" NEW_ROOT "' after reopening: %d, %#llx",
		 rc, (unsigned long long)id);
	rc = strata_resolve(snap, id, &p, &size);
	FZ_CHECK(rc == 0 && size == st->new_size, "the committed node: %d, size %u", rc, size);
	uint8_t *want = malloc(size);
	FZ_CHECK(want, "out of memory");
	fill(want, size);
	FZ_CHECK(!memcmp(p, want, size), "the committed node's bytes changed");
	free(want);
}

static void check_reads(strata_store *s, const state *st)
{
	strata_snapshot *snap;
	FZ_CHECK(strata_snapshot_open(s, &snap) == 0, "snapshot_open");
	check_same(snap, st);
	strata_snapshot_close(snap);
}

/* A hole in the WAL from the start file on (fz_wal_hole): the writer fills
 * it, and the next replay may take stale frames beyond it for proof of
 * corruption. Outside damage only; fuzz_wal's append check skips it too. */
static bool wal_hole(io_env *env, strata_store *s, const fz_store_image *img)
{
	durable *d = atomic_load(&s->dur);
	wal_config c = {.env = env, .dir = STORE_DIR, .file_size = d->sb.wal_file_size};
	memcpy(c.uuid, d->sb.uuid, 16);
	return fz_wal_hole(env, &c, &img->wal, d->sb.wal_start_lsn / c.file_size);
}

static void reopen(io_env *env, const state *st)
{
	strata_store *s;
	int rc = open_store(env, 0, &s);
	FZ_CHECK(rc == 0 || (rc == STRATA_ECORRUPT && st->hole),
		 "reopening after the commit: %d (%s): %s", rc, strata_strerror(rc),
		 strata_last_error());
	if (rc)
		return;
	check_clean(s, "after reopening");
	strata_snapshot *snap;
	FZ_CHECK(strata_snapshot_open(s, &snap) == 0, "snapshot_open");
	if (st->committed)
		check_new_node(snap, st);
	check_same(snap, st);
	strata_snapshot_close(snap);
	close_store(s, st);
}

static void run(io_env *env, const fz_store_image *img, const params *p)
{
	strata_store *s;
	int rc = open_store(env, p->salvage ? STRATA_OPEN_SALVAGE : 0, &s);
	if (verbose())
		fprintf(stderr, "open: %d (%s): %s\n", rc, strata_strerror(rc), strata_last_error());
	if (rc) {
		check_open_error(rc);
		return;
	}
	state st = {.hole = wal_hole(env, s, img)};
	st.corrupt = chunk_damaged(s, "after recovery");
	st.seg_bad = segment_damaged(s, "after recovery");
	st.corrupt |= st.seg_bad;
	check_clean(s, "after recovery");
	walk(s, &st);
	st.committed = commit_one(s, &st, p);
	if (st.fs_full)
		check_reads(s, &st); /* the store is poisoned for writes; reads go on */
	else
		check_clean(s, "after the commit");
	if (st.committed)
		roots_after(s, &st);
	close_store(s, &st);
	reopen(env, &st);
	free(st.v);
	free(st.roots);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_cursor c = {data, size};
	wal_config cfg = {.dir = STORE_DIR};
	fz_store_image img;
	params p;
	read_params(&c, &cfg, &img, &p);
	resealed_ckpt = img.reseal_ckpt;
	io_env *env = cfg.env = fz_sim_dir(STORE_DIR);
	int rc = fz_store_build(env, &cfg, &c, &img);
	FZ_CHECK(rc == 0, "building the store directory: %d", rc);
	bool skip = ckpt_too_big(env, &img) || wal_too_big(env, &cfg, &img);
	if (verbose() && skip)
		fprintf(stderr, "skipped: it would make too many segments or entries\n");
	if (!skip)
		run(env, &img, &p);
	io_sim_free(env);
	return 0;
}
