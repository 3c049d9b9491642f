/*
 * fuzz_wal.c — WAL replay on fuzzed WAL files (input layout in README.md):
 *
 *   u8 flags   bit 0 salvage · bit 1 files preallocated to full size ·
 *              bit 2 recompute CRCs after mutation · bit 3 LSNs near 2^64 ·
 *              bits 4-6 the callback stops replay at that commit (0: never)
 *   u8 file size choice (1 or 2 MiB) · u8 start file · u8 base seq (0..3)
 *   u32 start offset in the start file (made 8-aligned, not in the header)
 *   extents, until the input ends (fz_wal_build)
 *
 * Replay must deliver only well-formed commits (checked frame by frame,
 * every payload decoded and read), return 0 or a documented error, and be
 * repeatable: after wal_cut_tail the same replay delivers the same commits
 * and finds nothing more to cut; with salvage it keeps exactly what the
 * failed replay delivered before the corruption; and a commit appended at
 * the end it reported comes back after the others.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "internal.h"
#include "io_sim.h"

#define FZ_STOP 7 /* the callback's own status: must come back unchanged */
#define EPOCH_ROOM (1ull << 62) /* room left for the appended commit's epoch */

typedef struct params {
	bool salvage, high;
	unsigned stop_after, start_file;
	uint64_t start_lsn;
} params;

/* What a replay delivered, as seen by the callback. */
typedef struct tally {
	const params *p;
	unsigned stop_after;
	uint64_t commits, last_epoch, prev_lsn, hash;
	uint64_t prefix_n, prefix_hash; /* hash after the first prefix_n commits */
} tally;

static void read_params(fz_cursor *c, wal_config *cfg, params *p, fz_wal_image *img)
{
	uint8_t flags = fz_u8(c);
	cfg->file_size = (uint64_t)WAL_MIN_FILE << (fz_u8(c) % 2);
	p->start_file = fz_u8(c) % FZ_WAL_FILES;
	uint64_t base = fz_u8(c) % 4;
	uint64_t off = (fz_u32(c) % cfg->file_size) & ~7ull;
	p->salvage = flags & 1;
	img->full = flags & 2;
	img->reseal = flags & 4;
	p->high = flags & 8;
	p->stop_after = (flags >> 4) & 7;
	/* Near the top of the LSN space the last files' LSNs wrap: a start
	 * LSN read from a (checksummed) superblock can be anything. */
	img->base_seq = p->high ? UINT64_MAX / cfg->file_size - 3 : base;
	if (off && off < WAL_FILE_HDR)
		off = WAL_FILE_HDR; /* recovery never starts inside a header */
	p->start_lsn = (img->base_seq + p->start_file) * cfg->file_size + off;
}

/* Every decoder on every frame: the one of its type may accept it, with
 * lengths inside the frame (replay delivers only frames of a commit), the
 * others must refuse it; and the payload must be readable to its end. */
static void check_frame(const wal_frame *f)
{
	FZ_CHECK(f->type >= WAL_NODE && f->type <= WAL_ROOT, "frame of type %u in a commit",
		 f->type);
	FZ_CHECK(f->size == walf_frame_size(f->len), "frame size %zu for length %u", f->size,
		 f->len);
	wal_node_rec n;
	wal_root_rec r;
	uint64_t id;
	if (!walf_node_decode(f, &n))
		FZ_CHECK(f->type == WAL_NODE && n.bytes == f->payload + 16 &&
				 n.size == f->len - 16,
			 "NODE record outside its frame");
	if (!walf_retire_decode(f, &id))
		FZ_CHECK(f->type == WAL_RETIRE && f->len == 8, "RETIRE record of length %u",
			 f->len);
	if (!walf_root_decode(f, &r))
		FZ_CHECK(f->type == WAL_ROOT && r.name == (const char *)f->payload + 10 &&
				 10u + r.name_len == f->len,
			 "ROOT record outside its frame");
	wal_commit_rec cr;
	FZ_CHECK(walf_commit_decode(f, &cr) != 0, "a COMMIT frame inside a commit");
	/* Read the payload's start and its last byte: a payload running past
	 * the end of its file touches the guard (fz_guard) and ASan stops. */
	volatile uint64_t sum = fz_fnv(0, f->payload, f->len < 256 ? f->len : 256);
	if (f->len)
		sum += f->payload[f->len - 1];
	(void)sum;
}

static int on_commit(void *ctx, const wal_commit_view *v)
{
	tally *t = ctx;
	FZ_CHECK(v->epoch > t->last_epoch, "epoch %llu after %llu", (unsigned long long)v->epoch,
		 (unsigned long long)t->last_epoch);
	FZ_CHECK(!v->nframes || v->frames[0].lsn == v->lsn, "commit LSN is not its first frame's");
	for (size_t i = 0; i < v->nframes; i++) {
		const wal_frame *f = &v->frames[i];
		check_frame(f);
		/* Near 2^64 LSNs may wrap; elsewhere frames come in stream order. */
		FZ_CHECK(t->p->high || (f->lsn >= t->p->start_lsn && f->lsn >= t->prev_lsn),
			 "frame LSN %llu out of order", (unsigned long long)f->lsn);
		t->prev_lsn = f->lsn + f->size;
		uint64_t key[3] = {f->type, f->len, f->lsn};
		t->hash = fz_fnv(t->hash, key, sizeof key);
	}
	uint64_t key[3] = {v->epoch, v->lsn, v->nframes};
	t->hash = fz_fnv(t->hash, key, sizeof key);
	t->commits++;
	t->last_epoch = v->epoch;
	if (t->commits == t->prefix_n)
		t->prefix_hash = t->hash;
	return t->stop_after && t->commits == t->stop_after ? FZ_STOP : 0;
}

/* One replay, with the checks that hold whatever the input. */
static int replay(const wal_config *cfg, const params *p, bool salvage, unsigned stop, tally *t,
		  wal_replay_result *res)
{
	*t = (tally){.p = p, .stop_after = stop, .hash = FZ_FNV_SEED};
	int rc = wal_replay(cfg, p->start_lsn, salvage, on_commit, t, res);
	FZ_CHECK(memchr(res->message, 0, sizeof res->message), "message not terminated");
	switch (rc) {
	case 0:
		FZ_CHECK(res->commits == t->commits && res->last_epoch == t->last_epoch,
			 "result says %llu commits, %llu were delivered",
			 (unsigned long long)res->commits, (unsigned long long)t->commits);
		FZ_CHECK(p->high || res->end_lsn >= p->start_lsn, "end LSN before the start");
		FZ_CHECK(p->high || res->cut_to <= res->cut_from || res->cut_from == res->end_lsn,
			 "cut from %llu, log ends at %llu", (unsigned long long)res->cut_from,
			 (unsigned long long)res->end_lsn);
		break;
	case FZ_STOP:
		FZ_CHECK(stop && t->commits == stop, "callback status returned without a stop");
		break;
	case STRATA_ECORRUPT:
		FZ_CHECK(!salvage, "salvage replay returned STRATA_ECORRUPT");
		FZ_CHECK(res->message[0], "corruption without a message");
		break;
	default:
		FZ_CHECK(0, "wal_replay returned %d (%s)", rc, res->message);
	}
	return rc;
}

/* Salvage keeps exactly what the failed replay delivered before the bad
 * frame, and reports it at the same LSN. */
static void check_salvage(const wal_config *cfg, const params *p, const tally *failed,
			  const wal_replay_result *fres, tally *t, wal_replay_result *res)
{
	int rc = replay(cfg, p, true, 0, t, res);
	FZ_CHECK(rc == 0, "salvage replay returned %d", rc);
	FZ_CHECK(t->commits == failed->commits && t->hash == failed->hash,
		 "salvage kept %llu commits, the failed replay delivered %llu",
		 (unsigned long long)t->commits, (unsigned long long)failed->commits);
	FZ_CHECK(res->bad_lsn == fres->bad_lsn, "salvage reports another bad LSN");
}

/* After the cut, the log reads the same and there is nothing left to cut. */
static void check_cut(io_env *env, const wal_config *cfg, const params *p,
		      const fz_wal_image *img, bool salvage, const tally *first,
		      const wal_replay_result *fres)
{
	fz_wal_guard(env, cfg, img, false);
	int rc = wal_cut_tail(cfg, fres);
	fz_wal_guard(env, cfg, img, true);
	FZ_CHECK(rc == 0, "wal_cut_tail: %d", rc);
	tally t;
	wal_replay_result res;
	rc = replay(cfg, p, salvage, 0, &t, &res);
	FZ_CHECK(rc == 0, "replay after the cut returned %d (%s)", rc, res.message);
	FZ_CHECK(t.commits == first->commits && t.hash == first->hash &&
			 res.end_lsn == fres->end_lsn,
		 "after the cut: %llu commits ending at %llu, before: %llu ending at %llu",
		 (unsigned long long)t.commits, (unsigned long long)res.end_lsn,
		 (unsigned long long)first->commits, (unsigned long long)fres->end_lsn);
	FZ_CHECK(res.cut_to <= res.cut_from, "after the cut, still [%llu, %llu) to cut (%s)",
		 (unsigned long long)res.cut_from, (unsigned long long)res.cut_to, res.message);
}

/* Opens the WAL at lsn and commits one ROOT record; *end gets its end.
 * STRATA_EFORMAT: the file holding lsn belongs to another store. */
static int append_one(const wal_config *cfg, uint64_t lsn, uint64_t epoch, uint64_t *end)
{
	wal *w;
	int rc = wal_open(cfg, lsn, &w);
	if (rc)
		return rc;
	wal_rec rec = {.type = WAL_ROOT, .id = 1, .bytes = "fuzz", .len = 4};
	rc = wal_append(w, &rec, 1, epoch, end);
	if (!rc)
		rc = wal_sync_to(w, *end);
	wal_close(w);
	return rc;
}

/* Recovery goes on writing at the end replay reported: the new commit
 * must be read back after the old ones. */
static void check_append(io_env *env, const wal_config *cfg, const params *p,
			 const fz_wal_image *img, const tally *first, const wal_replay_result *fres)
{
	if (p->high || first->last_epoch >= EPOCH_ROOM ||
	    fz_wal_hole(env, cfg, img, img->base_seq + p->start_file))
		return;
	uint64_t end;
	fz_wal_guard(env, cfg, img, false);
	int rc = append_one(cfg, fres->end_lsn, first->last_epoch + 1, &end);
	fz_wal_guard(env, cfg, img, true);
	/* A file there that is another store's, or whose header is damaged,
	 * is refused; one that never got its header is not. */
	FZ_CHECK(rc == 0 || ((rc == STRATA_EFORMAT || rc == STRATA_ECORRUPT) &&
			     fz_wal_file_state(env, cfg, fres->end_lsn / cfg->file_size) == FZ_FILE_OTHER),
		 "appending at %llu after recovery: %d", (unsigned long long)fres->end_lsn, rc);
	if (rc)
		return;
	tally t = {.p = p, .hash = FZ_FNV_SEED, .prefix_n = first->commits,
		   .prefix_hash = FZ_FNV_SEED};
	wal_replay_result res;
	rc = wal_replay(cfg, p->start_lsn, false, on_commit, &t, &res);
	FZ_CHECK(rc == 0 && t.commits == first->commits + 1 && t.prefix_hash == first->hash &&
			 t.last_epoch == first->last_epoch + 1 && res.end_lsn == end,
		 "appended at %llu, replay then returned %d with %llu commits ending at %llu (%s)",
		 (unsigned long long)fres->end_lsn, rc, (unsigned long long)t.commits,
		 (unsigned long long)res.end_lsn, res.message);
}

/* FUZZ_VERBOSE=1 in the environment: what the first replay found, to
 * look at a seed or a reproducer by hand. */
static void describe(int rc, const tally *t, const wal_replay_result *res)
{
	static int verbose = -1;
	if (verbose < 0)
		verbose = getenv("FUZZ_VERBOSE") != NULL;
	if (verbose)
		fprintf(stderr,
			"replay: rc %d, %llu commits, last epoch %llu, end %llu, "
			"cut [%llu, %llu) %s\n",
			rc, (unsigned long long)t->commits, (unsigned long long)t->last_epoch,
			(unsigned long long)res->end_lsn, (unsigned long long)res->cut_from,
			(unsigned long long)res->cut_to, res->message);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_cursor c = {data, size};
	wal_config cfg = {.dir = FZ_DIR};
	memcpy(cfg.uuid, fz_uuid, 16);
	params p;
	fz_wal_image img;
	read_params(&c, &cfg, &p, &img);
	io_env *env = cfg.env = fz_sim_store();
	int rc = fz_wal_build(env, &cfg, &c, &img);
	FZ_CHECK(rc == 0, "building the WAL files: %d", rc);
	fz_wal_guard(env, &cfg, &img, true);

	tally t, t2;
	wal_replay_result res, res2;
	rc = replay(&cfg, &p, p.salvage, p.stop_after, &t, &res);
	describe(rc, &t, &res);
	bool salvage = p.salvage;
	if (rc == STRATA_ECORRUPT) {
		check_salvage(&cfg, &p, &t, &res, &t2, &res2);
		t = t2, res = res2, rc = 0, salvage = true;
	}
	if (rc == 0) {
		check_cut(env, &cfg, &p, &img, salvage, &t, &res);
		check_append(env, &cfg, &p, &img, &t, &res);
	}
	fz_wal_guard(env, &cfg, &img, false);
	io_sim_free(env);
	return 0;
}
