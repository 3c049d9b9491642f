/*
 * fuzz_common.h — what the fuzz targets share: reading the input as a
 * stream of fields, fatal invariant checks, and building a store directory
 * on the simulated file system (io_sim.h) from input bytes, so a target
 * does no disk I/O and each run starts from a fresh, private file system.
 *
 * The WAL image format (fz_wal_build) is the WAL part of the whole store
 * images fuzz_recovery builds (fz_store_build); see fuzz/README.md.
 */
#ifndef STRATA_FUZZ_COMMON_H
#define STRATA_FUZZ_COMMON_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io.h"
#include "wal.h"

/* Every target defines it; libFuzzer or fuzz/replay_main.c calls it. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant the code under test promised: on failure print where and
 * abort, which libFuzzer (and ctest) report as a crash with the input. */
#define FZ_CHECK(cond, ...)                                                  \
	do {                                                                 \
		if (!(cond))                                                 \
			fz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);     \
	} while (0)
_Noreturn void fz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* ---- input cursor ---------------------------------------------------------- */
/* Fields past the end of the input read as zero, so every input, however
 * short, decodes to something. */
typedef struct fz_cursor {
	const uint8_t *p;
	size_t n;
} fz_cursor;

uint8_t fz_u8(fz_cursor *c);
uint16_t fz_u16(fz_cursor *c);
uint32_t fz_u32(fz_cursor *c);
/* Up to `want` bytes: *out points at them, the count is returned. */
size_t fz_take(fz_cursor *c, size_t want, const uint8_t **out);

/* ---- simulated store directory ------------------------------------------------ */
#define FZ_DIR "store"

/* A fresh io_sim env holding the empty directory FZ_DIR, made durable. */
io_env *fz_sim_store(void);
/* The same with the directory `dir`. */
io_env *fz_sim_dir(const char *dir);
/* Writes len bytes at off into path, creating the file if needed. */
int fz_put(io_env *env, const char *path, uint64_t off, const void *buf, size_t len);
/* Grows path to at least size bytes of real zeros (a preallocated file). */
int fz_extend(io_env *env, const char *path, uint64_t size);

/* In ASan builds, marks the bytes between a file's end and the end of its
 * page unaddressable, so a reader that maps the file and reads past its end
 * is caught (io_sim's images are page-granular mmaps ASan does not track).
 * Undo it (on = false) before anything writes to the file. */
void fz_guard(io_env *env, const char *path, bool on);

/* ---- WAL images ---------------------------------------------------------------- */
#define FZ_WAL_FILES 8 /* files an image may name: seq base .. base+7 */

/* The store UUID every generated WAL file carries (make_corpus too). */
extern const uint8_t fz_uuid[16];

typedef struct fz_wal_image {
	uint64_t base_seq;
	bool full;    /* files are preallocated to the file size, as wal.c does */
	bool reseal;  /* recompute header and frame CRCs after mutation */
	uint8_t made; /* bitmask: which of the FZ_WAL_FILES files exist */
	uint64_t hi[FZ_WAL_FILES]; /* end of the furthest extent in each file */
} fz_wal_image;

/* Reads extents until the input ends and writes them into the files
 * FZ_DIR/wal.<base_seq + i>. Each extent is
 *     u8 file index (mod FZ_WAL_FILES) · u32 offset (mod F) · u16 length ·
 *     the bytes (fewer if the input ends first),
 * clipped to the file size F = cfg->file_size. */
int fz_wal_build(io_env *env, const wal_config *cfg, fz_cursor *c, fz_wal_image *img);
/* fz_guard over the image's files. */
void fz_wal_guard(io_env *env, const wal_config *cfg, const fz_wal_image *img, bool on);
void fz_wal_path(const wal_config *cfg, uint64_t seq, char *out, size_t n);

/* What a WAL file is, judged by its header (cfg: the stream's UUID and
 * file size). */
enum fz_file_state {
	FZ_FILE_ABSENT,
	FZ_FILE_UNHEADED, /* shorter than a header, or the header is all zeros */
	FZ_FILE_STREAM,   /* a header of this stream for this seq */
	FZ_FILE_OTHER     /* another store's, another seq's, or damaged */
};
enum fz_file_state fz_wal_file_state(io_env *env, const wal_config *cfg, uint64_t seq);
/* Is a file of the image missing or foreign between start_seq and a later
 * file of the image? Such a hole ends replay without a look past it, and
 * the writer later fills it, making stale frames beyond it visible to the
 * next replay; wal.c never leaves one (files are created in order, and
 * only files below the start are recycled), only outside damage does. */
bool fz_wal_hole(io_env *env, const wal_config *cfg, const fz_wal_image *img, uint64_t start_seq);

/* Recomputes, in buf (file bytes starting at file offset `off` of file
 * `seq`), the header CRC if the header is there, and the CRC of every
 * frame whose stamped LSN matches its position and which fits in buf.
 * Lets mutations of frame fields other than the CRC reach the code
 * behind the CRC check. make_corpus uses it after fixing salts. */
void fz_wal_reseal(uint8_t *buf, size_t len, uint64_t off, uint64_t seq, uint64_t F);

/* ---- whole store directories ------------------------------------------------ */
/* Extents name their file with one byte: bits 0-2 an index, bits 3-4 the
 * kind. WAL extents (kind 0) are those of fz_wal_build, so its seeds' extents
 * mean the same in a store image. Offsets are taken modulo the kind's cap. */
enum fz_kind {
	FZ_KIND_WAL,   /* wal.<base_seq + index>, offset mod the WAL file size */
	FZ_KIND_SUPER, /* SUPER (index ignored) */
	FZ_KIND_CKPT,  /* ckpt.<ckpt_gen + index> */
	FZ_KIND_DATA   /* data (index ignored) */
};
#define FZ_SUPER_CAP (3u * 4096)  /* room for both slots and a tail */
#define FZ_CKPT_CAP (1u << 20)    /* checkpoint files stay below 1 MiB + 64 KiB */
#define FZ_DATA_CAP (32u << 20)   /* 16 segments of 2 MiB */
#define FZ_CKPT_FILES 8

typedef struct fz_store_image {
	fz_wal_image wal;
	uint64_t ckpt_gen;  /* ckpt.<ckpt_gen + i> for i < FZ_CKPT_FILES */
	uint8_t ckpts;      /* bitmask: which of them exist */
	bool reseal_ckpt;   /* recompute checkpoint section and header CRCs */
	bool sync_super;    /* copy each SUPER slot's checkpoint epoch, size and
			       header CRC from the checkpoint file it names */
	bool reseal_super;  /* recompute SUPER slot CRCs (after sync_super) */
} fz_store_image;

/* Reads extents until the input ends and writes them into the store
 * directory cfg->dir: SUPER, ckpt.<gen>, data and the WAL files (as
 * fz_wal_build), then applies the reseal options, checkpoint files first. */
int fz_store_build(io_env *env, const wal_config *cfg, fz_cursor *c, fz_store_image *img);
void fz_ckpt_path(const char *dir, uint64_t gen, char *out, size_t n);
/* In a checkpoint file's bytes: each section's CRC recomputed where the
 * section lies inside buf, then the header CRC (nothing if len < 4096). */
void fz_ckpt_reseal(uint8_t *buf, size_t len);
/* A SUPER slot's CRC recomputed. */
void fz_super_reseal_slot(uint8_t *slot);

/* Recomputes the CRC of the frame at p (its header and payload are there). */
void fz_wal_seal_frame(uint8_t *p);

/* FNV-1a, to compare what two replays delivered. */
#define FZ_FNV_SEED 0xcbf29ce484222325ull
uint64_t fz_fnv(uint64_t h, const void *p, size_t n);
#endif
