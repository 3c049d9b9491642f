/*
 * make_corpus.c — writes the seed corpus: real SUPER files and real WAL
 * files, made by the substrate's own writers (sb_write; wal_open,
 * wal_append, wal_sync_to) on the POSIX file system, then packed into
 * each target's input format:
 *
 *   make_corpus OUTDIR    writes OUTDIR/superblock/ and OUTDIR/wal/
 *                         (OUTDIR/work/ holds the store directories)
 *
 * The WAL writer draws a random salt per file; the packer replaces it with
 * a fixed one (and recomputes the CRCs), so the corpus is the same bytes on
 * every run and the replay test's mutants are reproducible. Generated at
 * build or test time, never committed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "fuzz_common.h"
#include "internal.h"
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
	const char *subs[] = {"", "/work", "/superblock", "/wal"};
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

/* Swaps the random salt for a fixed one and re-stamps the CRCs. */
static void fix_salt(image *im, uint64_t seq)
{
	uint8_t *b = im->file[seq];
	wal_file_header h;
	if (im->len[seq] < WAL_FILE_HDR || walf_header_decode(b, &h))
		die("packing: bad WAL header", STRATA_ECORRUPT);
	uint32_t salt = 0x5a170001u + (uint32_t)seq;
	im->used[seq] = WAL_FILE_HDR;
	for (uint64_t pos = WAL_FILE_HDR; pos + WAL_FRAME_HDR <= im->len[seq]; pos += 8) {
		wal_frame f;
		if (walf_frame_check(b + pos, im->len[seq] - pos, seq * F + pos, h.salt, &f))
			continue;
		memcpy(b + pos + 16, &salt, 4);
		im->used[seq] = pos + f.size;
	}
	memcpy(b + 40, &salt, 4);
	fz_wal_reseal(b, im->len[seq], 0, seq, F);
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
	return 0;
}
