/*
 * make_corpus.c — writes the seed corpus: real SUPER files and real WAL
 * files, made by the substrate's own writers (sb_write; wal_open,
 * wal_append, wal_sync_to) on the POSIX file system, and whole stores made
 * through the public API on the simulated file system, then packed into
 * each target's input format:
 *
 *   make_corpus OUTDIR    writes OUTDIR/superblock/, OUTDIR/wal/ and
 *                         OUTDIR/recovery/ (OUTDIR/work/ holds the
 *                         superblock and WAL directories)
 *
 * The writers draw a random salt per WAL file and a random store UUID; the
 * packer replaces them with fixed ones (and recomputes the CRCs), so the
 * corpus is the same bytes on every run and the replay test's mutants are
 * reproducible. Generated at build or test time, never committed.
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
#include "superblock.h"

#define F WAL_MIN_FILE /* the seeds' WAL file size */
#define MERGE_GAP 32   /* zero runs shorter than this stay inside an extent */
#define SEQS 8

static const char *outdir;

static void die(const char *what, int rc)
{
	fprintf(stderr, "make_corpus: %s: %d\n", what, rc);
	exit(1);
}

static void check(int rc, const char *what)
{
	if (rc)
		die(what, rc);
}

static void write_out(const char *sub, const char *name, const void *p, size_t n)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s/%s", outdir, sub, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f))
		die(path, -errno);
}

/* An empty directory: made if missing, emptied if not. */
static int unlink_one(void *dir, const char *name)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", (const char *)dir, name);
	return io_unlink(io_env_posix(), path);
}

static void fresh_dir(const char *path)
{
	int rc = io_mkdir(io_env_posix(), path);
	if (rc && rc != -EEXIST)
		die(path, rc);
	check(io_list(io_env_posix(), path, unlink_one, (void *)path), path);
}

/* The seed directories start empty, so a seed dropped from this file does
 * not linger from an earlier run. */
static void make_dirs(void)
{
	const char *subs[] = {"", "/work", "/superblock", "/wal", "/recovery"};
	for (size_t i = 0; i < sizeof subs / sizeof *subs; i++) {
		char path[4096];
		snprintf(path, sizeof path, "%s%s", outdir, subs[i]);
		if (i < 2) {
			int rc = io_mkdir(io_env_posix(), path);
			if (rc && rc != -EEXIST)
				die(path, rc);
		} else {
			fresh_dir(path);
		}
	}
}

/* Whole file, or NULL with *n = 0 if there is none. */
static uint8_t *slurp(const char *path, size_t *n)
{
	io_file *f;
	uint64_t size;
	*n = 0;
	if (io_open(io_env_posix(), path, IO_RDONLY, &f))
		return NULL;
	check(io_size(f, &size), path);
	uint8_t *buf = malloc(size ? size : 1);
	if (!buf)
		die("out of memory", -ENOMEM);
	check(io_pread(f, buf, size, 0), path);
	io_close(f);
	*n = (size_t)size;
	return buf;
}

/* ---- superblocks ---------------------------------------------------------------- */
static sb_state sb_gen(uint64_t gen)
{
	sb_state s = {.generation = gen, .ckpt_gen = gen / 2, .ckpt_epoch = gen * 10,
		      .ckpt_size = gen * 4096, .ckpt_crc = 0x1234u * (uint32_t)gen,
		      .flags = gen % 3 == 0 ? SB_FLAG_CLEAN : 0, .wal_start_lsn = gen * F + 64,
		      .wal_file_size = F, .last_epoch = gen * 10 + 3};
	memcpy(s.uuid, fz_uuid, 16);
	return s;
}

/* Writes generations first..last into a new SUPER, then lets `damage`
 * change the bytes before they become a seed. */
static void sb_seed(const char *name, uint64_t first, uint64_t last,
		    void (*damage)(uint8_t *, size_t))
{
	char dir[4096], path[4200];
	snprintf(dir, sizeof dir, "%s/work/sb-%s", outdir, name);
	fresh_dir(dir);
	snprintf(path, sizeof path, "%s/SUPER", dir);
	io_file *f;
	check(io_open(io_env_posix(), path, IO_CREATE, &f), path);
	for (uint64_t g = first; g <= last; g++) {
		sb_state s = sb_gen(g);
		check(sb_write(f, &s), "sb_write");
	}
	io_close(f);
	size_t n;
	uint8_t *b = slurp(path, &n);
	if (damage)
		damage(b, n);
	write_out("superblock", name, b, n);
	free(b);
}

static void newer_slot0(uint8_t *b, size_t n)
{
	uint16_t v = SB_VERSION + 1;
	memcpy(b + 4, &v, 2);
	uint32_t crc = strata_crc32c(0, b, SB_SLOT - 4);
	if (n >= SB_SLOT)
		memcpy(b + SB_SLOT - 4, &crc, 4);
}

static void torn_slot1(uint8_t *b, size_t n)
{
	if (n >= 2 * SB_SLOT)
		memset(b + SB_SLOT + SB_SLOT / 2, 0, SB_SLOT / 2);
}

static void superblock_seeds(void)
{
	sb_seed("fresh", 1, 1, NULL);      /* slot 1 only; slot 0 is zeros */
	sb_seed("two", 1, 2, NULL);        /* both valid, slot 0 newer */
	sb_seed("many", 1, 7, NULL);       /* slot 1 newer */
	sb_seed("slot0-only", 2, 2, NULL); /* 4096 bytes: slot 1 missing */
	sb_seed("newer", 3, 4, newer_slot0); /* slot 0 has the next version */
	sb_seed("torn", 8, 9, torn_slot1);   /* slot 1 half written */
}

/* ---- WAL stores ------------------------------------------------------------------ */
static wal_config wal_cfg(const char *dir)
{
	wal_config c = {.env = io_env_posix(), .dir = dir, .file_size = F};
	memcpy(c.uuid, fz_uuid, 16);
	return c;
}

/* Commit k: a NODE of `node` bytes (0: none), a RETIRE and a ROOT. */
static void commit(wal *w, uint64_t k, uint32_t node, bool sync)
{
	static uint8_t bytes[900000];
	for (uint32_t i = 0; i < node && i < 256; i++)
		bytes[i] = (uint8_t)(k * 7 + i + 1);
	char name[8];
	int nl = snprintf(name, sizeof name, "r%u", (unsigned)(k % 3));
	wal_rec r[3] = {
		{.type = WAL_NODE, .kind = (uint8_t)k, .id = k + 100, .bytes = bytes, .len = node},
		{.type = WAL_RETIRE, .id = k + 50},
		{.type = WAL_ROOT, .id = k + 100, .bytes = name, .len = (uint32_t)nl},
	};
	uint64_t end;
	check(wal_append(w, node ? r : r + 1, node ? 3 : 2, k + 2, &end), "wal_append");
	if (sync)
		check(wal_sync_to(w, end), "wal_sync_to");
}

static wal *open_at(const wal_config *c, uint64_t lsn)
{
	wal *w;
	check(wal_open(c, lsn, &w), "wal_open");
	return w;
}

static void finish(wal *w)
{
	check(wal_sync_to(w, wal_end(w)), "wal_sync_to");
	wal_close(w);
}

/* Each scenario writes a log into dir, starting at the LSN it returns. */
static uint64_t basic(const wal_config *c)
{
	wal *w = open_at(c, 0);
	for (uint64_t k = 0; k < 5; k++)
		commit(w, k, 40 + (uint32_t)k * 30, true);
	finish(w);
	return 0;
}

static uint64_t group(const wal_config *c)
{
	wal *w = open_at(c, 0);
	for (uint64_t k = 0; k < 12; k++)
		commit(w, k, 16 + (uint32_t)k, false);
	finish(w);
	return 0;
}

static uint64_t empty_commits(const wal_config *c)
{
	wal *w = open_at(c, 0);
	uint64_t end;
	for (uint64_t k = 0; k < 3; k++)
		check(wal_append(w, NULL, 0, k + 1, &end), "wal_append");
	finish(w);
	return 0;
}

static uint64_t skip(const wal_config *c)
{
	wal *w = open_at(c, F - 512);
	for (uint64_t k = 0; k < 6; k++)
		commit(w, k, 150, true);
	finish(w);
	return F - 512;
}

/* Fewer than a frame header's bytes left: no SKIP frame, just the next file. */
static uint64_t tight(const wal_config *c)
{
	wal *w = open_at(c, F - 16);
	for (uint64_t k = 0; k < 2; k++)
		commit(w, k, 24, true);
	finish(w);
	return F - 16;
}

/* Node images nearly as large as a file: one file per commit. */
static uint64_t big(const wal_config *c)
{
	wal *w = open_at(c, 0);
	for (uint64_t k = 0; k < 3; k++)
		commit(w, k, 700000, true);
	finish(w);
	return 0;
}

/* One commit whose frames lie in six files. */
static uint64_t span(const wal_config *c)
{
	static uint8_t node[900000];
	wal_rec r[6];
	for (int i = 0; i < 6; i++) {
		node[i] = (uint8_t)(i + 1);
		r[i] = (wal_rec){.type = WAL_NODE, .kind = 1, .id = (uint64_t)i + 1, .bytes = node,
				 .len = sizeof node};
	}
	wal *w = open_at(c, 0);
	uint64_t end;
	check(wal_append(w, r, 6, 2, &end), "wal_append");
	finish(w);
	return 0;
}

static uint64_t mid_start(const wal_config *c)
{
	wal *w = open_at(c, WAL_FILE_HDR + 800);
	for (uint64_t k = 0; k < 4; k++)
		commit(w, k, 64, k % 2);
	finish(w);
	return WAL_FILE_HDR + 800;
}

/* Recovery's path: replay, then append where it ended. */
static uint64_t reopen(const wal_config *c)
{
	wal *w = open_at(c, 0);
	for (uint64_t k = 0; k < 3; k++)
		commit(w, k, 48, true);
	finish(w);
	wal_replay_result res;
	check(wal_replay(c, 0, false, NULL, NULL, &res), "wal_replay");
	w = open_at(c, res.end_lsn);
	for (uint64_t k = 3; k < 6; k++)
		commit(w, k, 48, true);
	finish(w);
	return 0;
}

/* ---- packing a store's WAL files into a fuzz_wal input --------------------------- */
typedef struct image {
	uint8_t *file[SEQS];
	size_t len[SEQS];
	size_t used[SEQS]; /* end of the last valid frame (or the header) */
} image;

/* The salt every seed gives file seq. */
static uint32_t fixed_salt(uint64_t seq)
{
	return 0x5a170001u + (uint32_t)seq;
}

/* Swaps the random salts in a WAL file for fixed ones and re-stamps the
 * CRCs: the file's own, and those of stale frames of an earlier use of a
 * recycled file (each valid under the salt it carries and at the LSN it
 * names); the store UUID becomes fz_uuid. Returns the end of the last
 * valid frame of the current use (or the header's). */
static size_t fix_wal(uint8_t *b, size_t len, uint64_t seq, uint64_t file_size)
{
	wal_file_header h;
	if (len < WAL_FILE_HDR || walf_header_decode(b, &h))
		die("packing: bad WAL header", STRATA_ECORRUPT);
	size_t used = WAL_FILE_HDR;
	for (size_t pos = WAL_FILE_HDR; pos + WAL_FRAME_HDR <= len; pos += 8) {
		uint64_t lsn;
		uint32_t salt;
		wal_frame f;
		memcpy(&lsn, b + pos + 8, 8);
		memcpy(&salt, b + pos + 16, 4);
		if (lsn % file_size != pos || walf_frame_check(b + pos, len - pos, lsn, salt, &f))
			continue;
		if (lsn / file_size == seq && salt == h.salt)
			used = pos + f.size;
		salt = fixed_salt(lsn / file_size);
		memcpy(b + pos + 16, &salt, 4);
		fz_wal_seal_frame(b + pos);
	}
	uint32_t salt = fixed_salt(seq);
	memcpy(b + 8, fz_uuid, 16);
	memcpy(b + 40, &salt, 4);
	fz_wal_reseal(b, WAL_FILE_HDR, 0, seq, file_size);
	return used;
}

static void fix_salt(image *im, uint64_t seq)
{
	im->used[seq] = fix_wal(im->file[seq], im->len[seq], seq, F);
}

static void load(image *im, const wal_config *c)
{
	memset(im, 0, sizeof *im);
	for (uint64_t seq = 0; seq < SEQS; seq++) {
		char path[4200];
		fz_wal_path(c, seq, path, sizeof path);
		im->file[seq] = slurp(path, &im->len[seq]);
		if (im->file[seq])
			fix_salt(im, seq);
	}
}

typedef struct packer {
	uint8_t *p;
	size_t n, cap;
} packer;

static void emit(packer *k, const void *p, size_t n)
{
	if (k->n + n > k->cap) {
		k->cap = (k->n + n) * 2;
		k->p = realloc(k->p, k->cap);
		if (!k->p)
			die("out of memory", -ENOMEM);
	}
	memcpy(k->p + k->n, p, n);
	k->n += n;
}

/* At least one extent, even for n == 0: an empty one creates the file. */
static void emit_extent(packer *k, uint8_t file, uint32_t off, const uint8_t *p, size_t n)
{
	size_t done = 0;
	do {
		uint16_t len = (uint16_t)(n - done < 65535 ? n - done : 65535);
		uint32_t at = off + (uint32_t)done;
		emit(k, &file, 1);
		emit(k, &at, 4);
		emit(k, &len, 2);
		emit(k, p + done, len);
		done += len;
	} while (done < n);
}

/* Runs of non-zero bytes (short zero gaps included) up to the used end,
 * which is always covered so that a short file keeps its last frame's
 * trailing zeros. */
static void emit_file(packer *k, uint8_t idx, const uint8_t *b, size_t used)
{
	size_t i = 0, last_end = 0;
	while (i < used) {
		while (i < used && !b[i])
			i++;
		if (i == used)
			break;
		size_t start = i, zeros = 0;
		for (; i < used && zeros < MERGE_GAP; i++)
			zeros = b[i] ? 0 : zeros + 1;
		last_end = i == used ? used : i - zeros;
		emit_extent(k, idx, (uint32_t)start, b + start, last_end - start);
	}
	if (last_end < used) /* trailing zeros: one zero byte sets the file's end */
		emit_extent(k, idx, (uint32_t)(used - 1), b + used - 1, 1);
}

/* flags: fuzz_wal's first byte. */
static void pack(const char *name, const image *im, uint8_t flags, uint64_t start)
{
	packer k = {0};
	uint8_t hdr[4] = {flags, 0, (uint8_t)(start / F), 0};
	uint32_t off = (uint32_t)(start % F);
	emit(&k, hdr, sizeof hdr);
	emit(&k, &off, 4);
	for (uint8_t seq = 0; seq < SEQS; seq++)
		if (im->file[seq])
			emit_file(&k, seq, im->file[seq], im->used[seq]);
	write_out("wal", name, k.p, k.n);
	free(k.p);
}

static void unload(image *im)
{
	for (int i = 0; i < SEQS; i++)
		free(im->file[i]);
}

/* The byte at LSN lsn of the image. */
static uint8_t *at_lsn(image *im, uint64_t lsn)
{
	return im->file[lsn / F] + lsn % F;
}

typedef struct scenario {
	const char *name;
	uint64_t (*write)(const wal_config *c);
} scenario;

/* Writes the scenario's log, then packs it short and preallocated. */
static void wal_scenario(const scenario *s, image *im)
{
	char dir[4096];
	snprintf(dir, sizeof dir, "%s/work/wal-%s", outdir, s->name);
	fresh_dir(dir);
	wal_config c = wal_cfg(dir);
	uint64_t start = s->write(&c);
	load(im, &c);
	char name[256];
	pack(s->name, im, 0, start);
	snprintf(name, sizeof name, "%s-full", s->name);
	pack(name, im, 2 | 4, start);
}

/* Damaged variants of the basic log: a torn last commit, a flipped byte
 * in the middle (corruption: later commits were written after it was
 * synced), that one salvaged, a callback that stops early, and two that
 * keep valid CRCs: a last COMMIT whose frame count is wrong (it must be
 * cut with the tail) and a header with salt 0 (which wal.c never writes). */
static void damaged_seeds(image *im)
{
	size_t used = im->used[0];
	im->used[0] = used - 20;
	pack("torn-commit", im, 0, 0);
	im->used[0] = used;
	pack("stop-at-2", im, 2 << 4, 0);
	uint8_t *b = at_lsn(im, WAL_FILE_HDR + 400);
	*b ^= 0x10;
	pack("corrupt", im, 0, 0);
	pack("corrupt-salvage", im, 1, 0);
	*b ^= 0x10;

	uint8_t *count = im->file[0] + used - 16; /* the last COMMIT's frame count */
	(*count)--;
	fz_wal_reseal(im->file[0], im->len[0], 0, 0, F);
	pack("bad-last-commit", im, 0, 0);
	(*count)++;
	uint8_t salt[4];
	memcpy(salt, im->file[0] + 40, 4);
	memset(im->file[0] + 40, 0, 4);
	fz_wal_reseal(im->file[0], im->len[0], 0, 0, F);
	pack("zero-salt", im, 0, 0);
	memcpy(im->file[0] + 40, salt, 4);
	fz_wal_reseal(im->file[0], im->len[0], 0, 0, F);
}

/* A process killed between creating wal.0 and writing its header leaves
 * it empty (or, once preallocated, all zeros): no log, and the writer
 * must be able to start there. */
static void killed_create_seeds(void)
{
	packer k = {0};
	uint8_t hdr[8] = {0};
	emit(&k, hdr, sizeof hdr);
	emit_extent(&k, 0, 0, hdr, 0);
	write_out("wal", "killed-create", k.p, k.n);
	k.p[0] = 2; /* preallocated to full size */
	write_out("wal", "killed-create-full", k.p, k.n);
	free(k.p);
}

static void wal_seeds(void)
{
	static const scenario all[] = {
		{"basic", basic},	  {"group", group}, {"empty-commits", empty_commits},
		{"skip", skip},		  {"tight", tight}, {"big", big},
		{"mid-start", mid_start}, {"reopen", reopen}, {"span", span},
	};
	for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
		image im;
		wal_scenario(&all[i], &im);
		if (all[i].write == basic)
			damaged_seeds(&im);
		unload(&im);
	}
	killed_create_seeds();
}

/* ---- recovery stores --------------------------------------------------------------- */
#define RDIR "db"
#define CK_HDR 4096u

static strata_options store_options(void)
{
	strata_options o;
	strata_options_init(&o);
	o.mode = STRATA_DURABLE;
	o.path = RDIR;
	o.flags = STRATA_OPEN_CREATE;
	o.wal_file_size = F;
	o.async_interval_ms = 3600u * 1000; /* no timed syncs or checkpoints */
	o.checkpoint_interval_ms = 0;
	o.checkpoint_wal_bytes = UINT64_MAX;
	return o;
}

static strata_store *store_open(io_env *env)
{
	strata_options o = store_options();
	strata_store *s;
	check(store_open_env(&o, env, &s), "store_open_env");
	return s;
}

/* A node's bytes: a pattern at both ends, zeros between (so large nodes
 * cost the corpus little). */
static void node_fill(uint8_t *p, uint32_t size, uint32_t k)
{
	for (uint32_t i = 0; i < size; i++)
		p[i] = i < 64 || size - i <= 64 ? (uint8_t)(k * 13 + i + 1) : 0;
}

static strata_txn *begin(strata_store *s, const char *name)
{
	strata_txn *t;
	check(strata_txn_begin(s, &name, 1, 0, &t), "strata_txn_begin");
	return t;
}

/* Root `name` gets a new node of `size` bytes; its old node is freed. */
static void put_node(strata_store *s, const char *name, uint32_t size, uint32_t k)
{
	strata_txn *t = begin(s, name);
	strata_node_id old, id;
	void *p;
	check(strata_txn_get_root(t, name, &old), "strata_txn_get_root");
	if (old)
		check(strata_txn_free(t, old), "strata_txn_free");
	check(strata_txn_alloc(t, size, (uint8_t)k, &id, &p), "strata_txn_alloc");
	node_fill(p, size, k);
	check(strata_txn_set_root(t, name, id), "strata_txn_set_root");
	check(strata_txn_commit(t, NULL), "strata_txn_commit");
}

/* Root `name`'s node copied (the old one retired), unchanged. */
static void cow_node(strata_store *s, const char *name)
{
	strata_txn *t = begin(s, name);
	strata_node_id old, id;
	void *p;
	check(strata_txn_get_root(t, name, &old), "strata_txn_get_root");
	check(strata_txn_write(t, old, &id, &p, NULL), "strata_txn_write");
	check(strata_txn_set_root(t, name, id), "strata_txn_set_root");
	check(strata_txn_commit(t, NULL), "strata_txn_commit");
}

/* Root `name` emptied, its node freed. */
static void empty_root(strata_store *s, const char *name)
{
	strata_txn *t = begin(s, name);
	strata_node_id old;
	check(strata_txn_get_root(t, name, &old), "strata_txn_get_root");
	if (old)
		check(strata_txn_free(t, old), "strata_txn_free");
	check(strata_txn_set_root(t, name, STRATA_NODE_NULL), "strata_txn_set_root");
	check(strata_txn_commit(t, NULL), "strata_txn_commit");
}

/* The process dies here: every later write or sync fails, so close frees
 * the store's memory and changes no file. What was written stays. */
static void kill_store(io_env *env, strata_store *s)
{
	io_sim_crash_after(env, io_sim_steps(env));
	if (strata_close(s) == 0)
		die("close after the crash succeeded", 0);
}

static const char *const rn[] = {"r0", "r1", "r2", "r3", "r4", "r5"};

/* Small and large nodes under several roots, a checkpoint, more commits,
 * a clean close (whose checkpoint leaves the WAL empty). */
static void st_clean(io_env *env)
{
	strata_store *s = store_open(env);
	static const uint32_t sizes[] = {40, 70000, 200, 3000, 64, 100000};
	for (uint32_t k = 0; k < 6; k++)
		put_node(s, rn[k % 5], sizes[k], k + 1);
	check(strata_checkpoint(s), "strata_checkpoint");
	put_node(s, rn[1], 500, 7);
	put_node(s, rn[2], 66000, 8);
	put_node(s, rn[5], 8000, 9);
	check(strata_close(s), "strata_close");
}

/* A checkpoint, then commits only the WAL holds (one frees a large node
 * of the checkpoint), then the process dies. */
static void st_wal_tail(io_env *env)
{
	strata_store *s = store_open(env);
	put_node(s, rn[0], 40, 1);
	put_node(s, rn[1], 70000, 2);
	put_node(s, rn[2], 300, 3);
	check(strata_checkpoint(s), "strata_checkpoint");
	put_node(s, rn[3], 1000, 4);
	put_node(s, rn[1], 90000, 5);
	put_node(s, rn[0], 50, 6);
	kill_store(env, s);
}

/* Retired nodes: copies and frees before a checkpoint (their slots wait
 * in limbo) and after it (RETIRE frames in the WAL), an emptied root. */
static void st_retired(io_env *env)
{
	strata_store *s = store_open(env);
	for (uint32_t k = 0; k < 4; k++)
		put_node(s, rn[k], 100 + 900 * k, k + 1);
	check(strata_checkpoint(s), "strata_checkpoint");
	cow_node(s, rn[0]);
	empty_root(s, rn[1]);
	put_node(s, rn[2], 77000, 5);
	check(strata_checkpoint(s), "strata_checkpoint");
	cow_node(s, rn[3]);
	empty_root(s, rn[2]);
	put_node(s, rn[0], 24, 6);
	kill_store(env, s);
}

/* No checkpoint yet: everything is in the WAL. */
static void st_no_ckpt(io_env *env)
{
	strata_store *s = store_open(env);
	put_node(s, rn[0], 100, 1);
	put_node(s, rn[1], 70000, 2);
	put_node(s, rn[2], 20, 3);
	cow_node(s, rn[0]);
	kill_store(env, s);
}

/* Several WAL files, a checkpoint that lets the first ones be recycled,
 * and commits that reuse them (stale frames of their first use remain). */
static void st_recycled(io_env *env)
{
	strata_store *s = store_open(env);
	for (uint32_t k = 0; k < 12; k++)
		put_node(s, rn[k % 3], 300000, k + 1);
	check(strata_checkpoint(s), "strata_checkpoint");
	for (uint32_t k = 12; k < 20; k++)
		put_node(s, rn[k % 3], k % 2 ? 300000 : 5000, k + 1);
	kill_store(env, s);
}

/* ---- dumping a store directory --------------------------------------------------- */
typedef struct sfile {
	char name[64];
	uint8_t *p;
	size_t n;
} sfile;

typedef struct store_dump {
	io_env *env;
	sfile f[32];
	size_t n;
} store_dump;

static int dump_one(void *ctx, const char *name)
{
	store_dump *d = ctx;
	char path[256];
	io_file *f;
	uint64_t size;
	if (!strcmp(name, "LOCK"))
		return 0;
	if (d->n == sizeof d->f / sizeof *d->f || strlen(name) >= sizeof d->f[0].name)
		die("dump: too many files or a long name", -E2BIG);
	snprintf(path, sizeof path, RDIR "/%s", name);
	check(io_open(d->env, path, IO_RDONLY, &f), path);
	check(io_size(f, &size), path);
	sfile *x = &d->f[d->n++];
	snprintf(x->name, sizeof x->name, "%s", name);
	x->n = (size_t)size;
	if (!(x->p = malloc(x->n ? x->n : 1)))
		die("out of memory", -ENOMEM);
	check(io_pread(f, x->p, x->n, 0), path);
	io_close(f);
	return 0;
}

static sfile *find_file(store_dump *d, const char *prefix)
{
	for (size_t i = 0; i < d->n; i++)
		if (!strncmp(d->f[i].name, prefix, strlen(prefix)))
			return &d->f[i];
	return NULL;
}

static uint64_t seq_of(const sfile *x)
{
	return strtoull(strchr(x->name, '.') + 1, NULL, 16);
}

static uint64_t get64_at(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

/* Fixed UUID and salts: WAL files, the checkpoint (header CRC), then the
 * SUPER slots (the checkpoint's new header CRC where they name it). */
static void normalize(store_dump *d)
{
	sfile *ck = find_file(d, "ckpt."), *sb = find_file(d, "SUPER");
	if (!sb || sb->n < 2 * SB_SLOT)
		die("dump: no SUPER", STRATA_ECORRUPT);
	for (size_t i = 0; i < d->n; i++)
		if (!strncmp(d->f[i].name, "wal.", 4))
			fix_wal(d->f[i].p, d->f[i].n, seq_of(&d->f[i]), F);
	if (ck && ck->n >= CK_HDR) {
		memcpy(ck->p + 8, fz_uuid, 16);
		fz_ckpt_reseal(ck->p, ck->n);
	}
	for (size_t at = 0; at < 2 * SB_SLOT; at += SB_SLOT) {
		uint8_t *slot = sb->p + at;
		uint32_t magic;
		memcpy(&magic, slot, 4);
		if (magic != SB_MAGIC)
			continue;
		memcpy(slot + 16, fz_uuid, 16);
		if (ck && get64_at(slot + 32) == seq_of(ck))
			memcpy(slot + 56, ck->p + CK_HDR - 4, 4);
		fz_super_reseal_slot(slot);
	}
}

/* The header of a fuzz_recovery input for this directory; returns the
 * lowest WAL sequence number (the input's base). */
static uint8_t pack_header(packer *k, store_dump *d, uint8_t flags)
{
	uint64_t lo = UINT64_MAX, hi = 0;
	for (size_t i = 0; i < d->n; i++) {
		if (strncmp(d->f[i].name, "wal.", 4))
			continue;
		uint64_t q = seq_of(&d->f[i]);
		lo = q < lo ? q : lo;
		hi = q > hi ? q : hi;
	}
	if (lo == UINT64_MAX)
		lo = hi = 0;
	sfile *ck = find_file(d, "ckpt.");
	uint64_t gen = ck ? seq_of(ck) : 0;
	if (hi - lo >= FZ_WAL_FILES || lo > 255 || gen > 255)
		die("pack: WAL files or checkpoint generation out of the input's range", -ERANGE);
	uint8_t hdr[4] = {flags, 0, (uint8_t)lo, (uint8_t)gen};
	emit(k, hdr, sizeof hdr);
	return (uint8_t)lo;
}

/* Kind and index of a file in a fuzz_recovery extent (fuzz_common.h). */
static uint8_t file_byte(const sfile *x, uint8_t wal_lo)
{
	if (!strncmp(x->name, "wal.", 4))
		return (uint8_t)(FZ_KIND_WAL << 3 | (seq_of(x) - wal_lo));
	if (!strncmp(x->name, "ckpt.", 5))
		return FZ_KIND_CKPT << 3;
	return !strcmp(x->name, "data") ? FZ_KIND_DATA << 3 : FZ_KIND_SUPER << 3;
}

/* Every file whole: its non-zero runs, and its last byte (which sets its
 * size: the checkpoint's must be exact). */
static void pack_store(const char *name, store_dump *d, uint8_t flags)
{
	packer k = {0};
	uint8_t lo = pack_header(&k, d, flags);
	for (size_t i = 0; i < d->n; i++) {
		const sfile *x = &d->f[i];
		if (x->n >= FZ_DATA_CAP)
			die("pack: file beyond what an input can name", -EFBIG);
		if (x->n)
			emit_file(&k, file_byte(x, lo), x->p, x->n);
		else /* an empty extent makes the file */
			emit_extent(&k, file_byte(x, lo), 0, x->p, 0);
	}
	write_out("recovery", name, k.p, k.n);
	free(k.p);
}

/* The current SUPER slot's WAL start LSN. */
static uint64_t wal_start(store_dump *d)
{
	sfile *sb = find_file(d, "SUPER");
	sb_state a, b;
	int ra = sb_decode(sb->p, &a), rb = sb_decode(sb->p + SB_SLOT, &b);
	if (ra && rb)
		die("dump: no valid SUPER slot", STRATA_ECORRUPT);
	return ra || (!rb && b.generation > a.generation) ? b.wal_start_lsn : a.wal_start_lsn;
}

/* A byte flipped inside the first frame replay reads (not in its NodeID,
 * whose index the target bounds): the commits after it were written once
 * it was synced, so it is corruption, not a tear. */
static void flip_first_frame(store_dump *d)
{
	uint64_t lsn = wal_start(d);
	if (lsn % F == 0)
		lsn += WAL_FILE_HDR;
	char name[64];
	snprintf(name, sizeof name, "wal.%016llx", (unsigned long long)(lsn / F));
	sfile *w = find_file(d, name);
	if (!w || lsn % F + WAL_FRAME_HDR + 24 > w->n)
		die("damage: no frame at the WAL start", STRATA_ECORRUPT);
	w->p[lsn % F + WAL_FRAME_HDR + 20] ^= 0x40; /* a NODE frame's node bytes */
}

typedef struct store_scenario {
	const char *name;
	void (*make)(io_env *env);
	bool corrupt; /* also a variant with a damaged WAL */
} store_scenario;

#define FL_SALVAGE 1u
#define FL_FULL 2u
#define FL_RESEAL 0x3cu /* WAL, checkpoint, SUPER fields and SUPER CRCs */
#define FL_BIG_COW 0xc0u

static void store_seed(const store_scenario *sc)
{
	io_env *env = fz_sim_dir(RDIR);
	sc->make(env);
	store_dump d = {.env = env};
	check(io_list(env, RDIR, dump_one, &d), "io_list");
	normalize(&d);
	char name[256];
	pack_store(sc->name, &d, FL_FULL);
	snprintf(name, sizeof name, "%s-resealed", sc->name);
	pack_store(name, &d, FL_FULL | FL_RESEAL | FL_BIG_COW);
	if (sc->corrupt) {
		flip_first_frame(&d);
		snprintf(name, sizeof name, "%s-corrupt", sc->name);
		pack_store(name, &d, FL_FULL);
		snprintf(name, sizeof name, "%s-corrupt-salvage", sc->name);
		pack_store(name, &d, FL_FULL | FL_SALVAGE | FL_BIG_COW);
	}
	for (size_t i = 0; i < d.n; i++)
		free(d.f[i].p);
	io_sim_free(env);
}

static void recovery_seeds(void)
{
	static const store_scenario all[] = {
		{"clean", st_clean, false},	  {"wal-tail", st_wal_tail, true},
		{"retired", st_retired, true},	  {"no-ckpt", st_no_ckpt, true},
		{"recycled", st_recycled, false},
	};
	for (size_t i = 0; i < sizeof all / sizeof *all; i++)
		store_seed(&all[i]);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
		return 2;
	}
	outdir = argv[1];
	make_dirs();
	superblock_seeds();
	wal_seeds();
	recovery_seeds();
	return 0;
}
