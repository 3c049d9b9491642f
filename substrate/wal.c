/*
 * wal.c — appending to the WAL, with group commit (see wal.h).
 *
 * State, under `lock`:
 *   stage      bytes of the stream for LSNs [stage_lsn, next_lsn): frames
 *              appended and not yet handed to a flush; file-header gaps
 *              and the unused ends of files inside it are zero;
 *   durable    every byte below it is synced;
 *   flushing   a leader is writing and syncing [durable, its end).
 * A leader swaps `stage` with `spare` and does its I/O without the lock,
 * so appends go on meanwhile into the next batch.
 *
 * Waiting for a sync (wal_sync_to) takes no lock once asleep: `durable`
 * and `error` are mirrored in atomics, and waiters sleep on a futex word
 * (sync_seq) that each flush bumps. A flush wakes every waiter, and a
 * woken waiter whose bytes are durable returns without touching `lock`:
 * with 64 committers a condition variable made each of them re-take the
 * mutex in turn after every sync (half the CPU time, in futex wake/wait).
 * The leader runs the on_durable hook (publication) before it wakes them,
 * so they usually find their commit visible too. The COMMIT frame of each
 * commit records `durable` as it was when the commit was staged: every
 * byte below it was synced before this frame was written (replay's proof
 * that a bad frame below it is corruption, not a tear).
 *
 * Files: wal.<seq> holds LSNs [seq*F, (seq+1)*F); its first 64 bytes are
 * the header, so frames start at seq*F + 64. A frame that would cross the
 * end of a file is moved to the next, behind a SKIP frame. Files become
 * free for reuse after wal_recycle(); reuse renames one and writes a new
 * header with a fresh salt, so its old frames can never validate again.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"
#include "wal.h"

#define MAX_OPEN 64 /* files the writer keeps open (ring by seq) */

typedef struct wal_buf {
	uint8_t *p;
	size_t cap;
} wal_buf;

struct wal {
	wal_config cfg;
	char *dir;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	wal_buf stage, spare;
	uint64_t stage_lsn, next_lsn, durable;
	bool flushing;
	int error;
	/* read without the lock (see the header comment) */
	_Atomic uint64_t durable_a;
	_Atomic int error_a;
	_Atomic uint32_t sync_seq, sleepers;
	wal_durable_fn on_durable;
	void *on_durable_ctx;
	/* files, by seq % MAX_OPEN: open handles (leader only) and salts
	 * (under lock; fixed when the stream first reaches a file) */
	io_file *files[MAX_OPEN];
	uint64_t file_seq[MAX_OPEN];
	uint32_t salt[MAX_OPEN];
	uint64_t salt_seq[MAX_OPEN];
	uint64_t *pool; /* seqs of files free for reuse */
	size_t npool, pool_cap;
	uint64_t lowest_kept; /* files below this seq are pooled or gone */
};

/* ---- files ---------------------------------------------------------------- */
static void wal_path(const wal *w, uint64_t seq, char *out, size_t n)
{
	snprintf(out, n, "%s/wal.%016llx", w->dir, (unsigned long long)seq);
}

static uint32_t fresh_salt(void)
{
	uint32_t s = 0;
	while (getrandom(&s, sizeof s, 0) != sizeof s || s == 0)
		;
	return s;
}

static int write_header(wal *w, io_file *f, uint64_t seq, uint32_t salt)
{
	wal_file_header h = {.seq = seq, .file_size = w->cfg.file_size, .salt = salt};
	memcpy(h.uuid, w->cfg.uuid, 16);
	uint8_t b[WAL_FILE_HDR];
	walf_header_encode(&h, b);
	int rc = io_pwrite(f, b, sizeof b, 0);
	return rc ? rc : io_sync(f);
}

/* A brand-new file: full size, zero-filled on the medium, header, synced,
 * and its name made durable. */
static int create_file(wal *w, uint64_t seq, uint32_t salt, io_file **out)
{
	char path[4096];
	wal_path(w, seq, path, sizeof path);
	io_file *f;
	int rc = io_open(w->cfg.env, path, IO_CREATE, &f);
	if (rc)
		return rc;
	if ((rc = io_allocate(f, 0, w->cfg.file_size)) || (rc = write_header(w, f, seq, salt)) ||
	    (rc = io_sync_dir(w->cfg.env, w->dir))) {
		io_close(f);
		return rc;
	}
	*out = f;
	return 0;
}

/* Reuses a pooled file for `seq`: rename, new salt, durable name. */
static int reuse_file(wal *w, uint64_t seq, uint32_t salt, io_file **out)
{
	char from[4096], to[4096];
	wal_path(w, w->pool[--w->npool], from, sizeof from);
	wal_path(w, seq, to, sizeof to);
	io_file *f;
	int rc = io_rename(w->cfg.env, from, to);
	if (!rc)
		rc = io_open(w->cfg.env, to, 0, &f);
	if (rc)
		return rc;
	if ((rc = write_header(w, f, seq, salt)) || (rc = io_sync_dir(w->cfg.env, w->dir))) {
		io_close(f);
		return rc;
	}
	*out = f;
	return 0;
}

/* The open handle for seq, preparing the file on first use. Called by the
 * leader only (flushes are serialized), so no lock is needed for files. */
static int file_for(wal *w, uint64_t seq, uint32_t salt, io_file **out)
{
	unsigned i = (unsigned)(seq % MAX_OPEN);
	if (w->files[i] && w->file_seq[i] == seq) {
		*out = w->files[i];
		return 0;
	}
	if (w->files[i])
		io_close(w->files[i]);
	w->files[i] = NULL;
	int rc = w->npool ? reuse_file(w, seq, salt, out) : create_file(w, seq, salt, out);
	if (rc)
		return rc;
	w->files[i] = *out;
	w->file_seq[i] = seq;
	return 0;
}

/* ---- the staging buffer --------------------------------------------------- */
static int buf_fit(wal_buf *b, size_t need)
{
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 1u << 16;
	while (cap < need)
		cap *= 2;
	uint8_t *p = strata_mem_realloc(b->p, b->cap, cap);
	if (!p)
		return STRATA_ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

/* Salt of file seq (lock held): assigned the first time the stream
 * reaches the file. The ring holds far more files than can be staged. */
static uint32_t salt_for(wal *w, uint64_t seq)
{
	unsigned i = (unsigned)(seq % MAX_OPEN);
	if (w->salt_seq[i] != seq || !w->salt[i]) {
		w->salt[i] = fresh_salt();
		w->salt_seq[i] = seq;
	}
	return w->salt[i];
}

/* Room for a frame of `size` bytes at the end of the stream: skips the
 * file header, moves to the next file behind a SKIP frame if needed. */
static int stage_reserve(wal *w, size_t size, uint64_t *lsn)
{
	uint64_t F = w->cfg.file_size, at = w->next_lsn;
	if (size > F - WAL_FILE_HDR)
		return STRATA_ETOOBIG;
	if (at % F == 0)
		at += WAL_FILE_HDR;
	uint64_t next_file = (at / F + 1) * F;
	bool skip = at + size > next_file;
	uint64_t end = skip ? next_file + WAL_FILE_HDR + size : at + size;
	int rc = buf_fit(&w->stage, (size_t)(end - w->stage_lsn));
	if (rc)
		return rc;
	/* Byte `lsn` of the stream is stage.p[lsn - stage_lsn] (no pointer
	 * biased by the LSN: that would leave the buffer, undefined). Only
	 * the gap before the frame is zeroed (a file header's place, the
	 * rest of a file behind a SKIP): the caller writes every byte of the
	 * frame itself (header, payload, pad), and zeroing a node image's
	 * 4 KiB first cost 4 % of a DURABLE B+tree insert. */
	uint64_t start = skip ? next_file + WAL_FILE_HDR : at;
	memset(w->stage.p + (w->next_lsn - w->stage_lsn), 0, (size_t)(start - w->next_lsn));
	if (skip && next_file - at >= WAL_FRAME_HDR)
		walf_frame_encode(w->stage.p + (at - w->stage_lsn), WAL_SKIP, at, salt_for(w, at / F),
				  NULL, 0);
	*lsn = start;
	w->next_lsn = start + size;
	return 0;
}

static uint32_t rec_len(const wal_rec *r)
{
	if (!r)
		return walf_commit_encode(NULL, 0, 0, 0);
	switch (r->type) {
	case WAL_NODE:
		return walf_node_encode(NULL, 0, 0, NULL, r->len);
	case WAL_RETIRE:
		return walf_retire_encode(NULL, 0);
	default:
		return walf_root_encode(NULL, 0, NULL, (uint16_t)r->len);
	}
}

static void rec_encode(wal *w, const wal_rec *r, uint64_t epoch, uint32_t n, uint8_t *pl)
{
	if (!r)
		walf_commit_encode(pl, epoch, n, w->durable);
	else if (r->type == WAL_NODE)
		walf_node_encode(pl, r->id, r->kind, r->bytes, r->len);
	else if (r->type == WAL_RETIRE)
		walf_retire_encode(pl, r->id);
	else
		walf_root_encode(pl, r->id, r->bytes, (uint16_t)r->len);
}

static int lead_flush(wal *w, bool sync);
static void wake_syncers(wal *w);

/* Files a staged batch may span: salts and open handles are kept in rings
 * of MAX_OPEN by sequence number, so a flush must stay well inside that. */
#define STAGE_FILES (MAX_OPEN / 2)

static uint64_t stage_files(const wal *w, uint64_t extra)
{
	uint64_t F = w->cfg.file_size;
	return (w->next_lsn + extra) / F - w->stage_lsn / F + 1;
}

/* Backpressure (lock held): a commit that would stretch the staged batch
 * over too many files first has what is staged written out. */
static int make_room(wal *w, uint64_t bytes)
{
	if (bytes + 2 * WAL_FILE_HDR > (STAGE_FILES - 2) * w->cfg.file_size)
		return STRATA_ETOOBIG; /* larger than any batch may be */
	while (!w->error && stage_files(w, bytes + 2 * WAL_FILE_HDR) > STAGE_FILES) {
		if (w->flushing)
			pthread_cond_wait(&w->cond, &w->lock);
		else
			lead_flush(w, false);
	}
	return w->error ? STRATA_EIO : 0;
}

/* Can a commit of `bytes` (lock held) end below WAL_LSN_MAX, SKIP frames
 * and file headers included? */
static bool lsn_room(const wal *w, uint64_t bytes)
{
	uint64_t need = 2 * bytes + 2 * w->cfg.file_size;
	return w->next_lsn < WAL_LSN_MAX && need <= WAL_LSN_MAX - w->next_lsn;
}

int wal_append(wal *w, const wal_rec *recs, size_t n, uint64_t epoch, uint64_t *end_lsn)
{
	for (size_t i = 0; i < n; i++)
		if (recs[i].type < WAL_NODE || recs[i].type > WAL_ROOT ||
		    (recs[i].type == WAL_ROOT && recs[i].len > STRATA_ROOT_NAME_MAX))
			return STRATA_EINVAL;
	uint64_t bytes = walf_frame_size(rec_len(NULL));
	for (size_t i = 0; i < n; i++)
		bytes += walf_frame_size(rec_len(&recs[i])) + WAL_FRAME_HDR; /* + a SKIP */
	pthread_mutex_lock(&w->lock);
	int rc = w->error ? STRATA_EIO : !lsn_room(w, bytes) ? STRATA_EFULL : make_room(w, bytes);
	uint64_t undo = w->next_lsn;
	for (size_t i = 0; !rc && i <= n; i++) {
		const wal_rec *r = i < n ? &recs[i] : NULL;
		uint32_t len = rec_len(r);
		uint64_t lsn;
		if ((rc = stage_reserve(w, walf_frame_size(len), &lsn)))
			break;
		uint8_t *dst = w->stage.p + (lsn - w->stage_lsn);
		rec_encode(w, r, epoch, (uint32_t)n, dst + WAL_FRAME_HDR);
		walf_frame_encode(dst, r ? r->type : WAL_COMMIT, lsn,
				  salt_for(w, lsn / w->cfg.file_size), dst + WAL_FRAME_HDR, len);
	}
	if (rc)
		w->next_lsn = undo; /* nothing of a failed append stays staged */
	else
		*end_lsn = w->next_lsn;
	pthread_mutex_unlock(&w->lock);
	if (rc == STRATA_EIO)
		wake_syncers(w); /* make_room's flush may have failed */
	return rc;
}

/* ---- flushing ------------------------------------------------------------- */
/* Writes stream bytes [a, b) from buf (which starts at LSN a) into their
 * files, skipping header gaps. */
static int write_range(wal *w, const uint8_t *buf, uint64_t a, uint64_t b, const uint32_t *salts)
{
	uint64_t F = w->cfg.file_size;
	for (uint64_t seq = a / F; a < b && seq <= (b - 1) / F; seq++) {
		uint64_t lo = seq * F + WAL_FILE_HDR, hi = (seq + 1) * F;
		lo = lo > a ? lo : a;
		hi = hi < b ? hi : b;
		if (lo >= hi)
			continue;
		io_file *f;
		int rc = file_for(w, seq, salts[seq - a / F], &f);
		if (!rc)
			rc = io_pwrite(f, buf + (lo - a), (size_t)(hi - lo), lo - seq * F);
		if (rc)
			return rc;
	}
	return 0;
}

/* Syncs every file holding a byte of [from, b): what earlier write-only
 * flushes left unsynced is made durable with this batch. */
static int sync_range(wal *w, uint64_t from, uint64_t b)
{
	uint64_t F = w->cfg.file_size;
	for (uint64_t seq = from / F; from < b && seq <= (b - 1) / F; seq++) {
		unsigned i = (unsigned)(seq % MAX_OPEN);
		if (!w->files[i] || w->file_seq[i] != seq)
			continue; /* nothing was written to it */
		int rc = io_sync(w->files[i]);
		if (rc)
			return rc;
	}
	return 0;
}

static void set_error(wal *w, int rc)
{
	w->error = rc;
	atomic_store(&w->error_a, rc);
}

/* Takes the staging buffer as one batch (lock held on entry and exit). */
static int lead_flush(wal *w, bool sync)
{
	uint64_t a = w->stage_lsn, b = w->next_lsn, from = w->durable, F = w->cfg.file_size;
	uint32_t salts[MAX_OPEN];
	size_t nfiles = b > a ? (size_t)((b - 1) / F - a / F + 1) : 0;
	if (nfiles > MAX_OPEN) { /* make_room prevents it; never wedge if not */
		set_error(w, STRATA_ETOOBIG);
		atomic_fetch_add(&w->sync_seq, 1);
		pthread_cond_broadcast(&w->cond);
		return w->error;
	}
	for (size_t i = 0; i < nfiles; i++)
		salts[i] = salt_for(w, a / F + i);
	wal_buf batch = w->stage;
	w->stage = w->spare;
	w->spare = (wal_buf){0};
	w->stage_lsn = b;
	w->flushing = true;
	pthread_mutex_unlock(&w->lock);
	int rc = write_range(w, batch.p, a, b, salts);
	if (!rc && sync)
		rc = sync_range(w, from, b);
	pthread_mutex_lock(&w->lock);
	w->spare = batch;
	w->flushing = false;
	if (rc && !w->error)
		set_error(w, rc);
	else if (!rc && sync) {
		w->durable = b;
		atomic_store_explicit(&w->durable_a, b, memory_order_release);
	}
	atomic_fetch_add(&w->sync_seq, 1);
	pthread_cond_broadcast(&w->cond);
	return rc;
}

/* After a flush, outside the lock: every sleeping sync waiter re-checks. */
static void wake_syncers(wal *w)
{
	if (atomic_load(&w->sleepers))
		syscall(SYS_futex, (uint32_t *)&w->sync_seq, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

static void sleep_sync(wal *w, uint32_t seq, uint64_t lsn)
{
	atomic_fetch_add(&w->sleepers, 1);
	/* seq_cst with the leader's bump-then-read-sleepers: either it sees us
	 * and wakes us, or we see its bump and do not sleep. */
	if (atomic_load(&w->sync_seq) == seq && atomic_load(&w->durable_a) < lsn &&
	    !atomic_load(&w->error_a))
		syscall(SYS_futex, (uint32_t *)&w->sync_seq, FUTEX_WAIT_PRIVATE, seq, NULL, NULL, 0);
	atomic_fetch_sub(&w->sleepers, 1);
}

int wal_sync_to(wal *w, uint64_t lsn)
{
	for (;;) {
		if (atomic_load_explicit(&w->durable_a, memory_order_acquire) >= lsn)
			return 0;
		if (atomic_load(&w->error_a))
			return STRATA_EIO;
		uint32_t seq = atomic_load(&w->sync_seq);
		pthread_mutex_lock(&w->lock);
		bool lead = w->durable < lsn && !w->error && !w->flushing;
		int rc = lead ? lead_flush(w, true) : 0;
		pthread_mutex_unlock(&w->lock);
		if (!lead) {
			sleep_sync(w, seq, lsn);
			continue;
		}
		if (!rc && w->on_durable)
			w->on_durable(w->on_durable_ctx);
		wake_syncers(w);
		if (rc)
			return rc;
	}
}

void wal_set_on_durable(wal *w, wal_durable_fn fn, void *ctx)
{
	w->on_durable = fn;
	w->on_durable_ctx = ctx;
}

int wal_write_staged(wal *w)
{
	pthread_mutex_lock(&w->lock);
	while (w->flushing)
		pthread_cond_wait(&w->cond, &w->lock);
	int rc = w->error ? STRATA_EIO : 0;
	if (!rc && w->next_lsn > w->stage_lsn)
		rc = lead_flush(w, false); /* durable stays: a later sync covers it */
	pthread_mutex_unlock(&w->lock);
	if (rc)
		wake_syncers(w); /* they fail with it */
	return rc;
}

/* ---- open, close, recycle --------------------------------------------------- */
typedef struct scan_ctx {
	wal *w;
	uint64_t start_seq;
	int rc;
} scan_ctx;

static int pool_push(wal *w, uint64_t seq)
{
	if (w->npool == w->pool_cap) {
		size_t cap = w->pool_cap ? w->pool_cap * 2 : 8;
		uint64_t *p = strata_mem_realloc(w->pool, w->pool_cap * sizeof *p, cap * sizeof *p);
		if (!p)
			return STRATA_ENOMEM;
		w->pool = p;
		w->pool_cap = cap;
	}
	w->pool[w->npool++] = seq;
	return 0;
}

/* Files from earlier runs below the start are free for reuse; those above
 * are stale and get a fresh header (and salt) when the stream gets there. */
static int scan_one(void *arg, const char *name)
{
	scan_ctx *c = arg;
	unsigned long long seq;
	char tail;
	if (sscanf(name, "wal.%16llx%c", &seq, &tail) != 1 || strlen(name) != 20)
		return 0;
	if (seq < c->start_seq && (c->rc = pool_push(c->w, seq)))
		return 1;
	return 0;
}

/* The file holding start_lsn, if it exists, keeps its salt: the frames
 * before start_lsn in it are the log recovery just read. */
static int adopt_start_file(wal *w, uint64_t seq)
{
	char path[4096];
	wal_path(w, seq, path, sizeof path);
	int rc = io_exists(w->cfg.env, path);
	if (rc <= 0)
		return rc;
	io_file *f;
	if ((rc = io_open(w->cfg.env, path, 0, &f)))
		return rc;
	uint8_t b[WAL_FILE_HDR];
	static const uint8_t no_header[WAL_FILE_HDR];
	wal_file_header h;
	rc = io_pread(f, b, sizeof b, 0);
	if (rc == STRATA_ETRUNCATED || (!rc && !memcmp(b, no_header, sizeof b))) {
		/* create_file was cut short before the header: the file holds no
		 * frame (replay ends the log there); the first flush redoes it. */
		io_close(f);
		return 0;
	}
	if (!rc)
		rc = walf_header_decode(b, &h);
	if (!rc && !memcmp(h.uuid, w->cfg.uuid, 16) && h.file_size == w->cfg.file_size &&
	    h.seq < seq) {
		/* A pooled file that reuse_file renamed for seq and was cut short
		 * before its new header: an old file of this log, no frame of seq
		 * (replay ended the log at its start); the first flush gives it
		 * a header and a fresh salt, as it would have. */
		io_close(f);
		return 0;
	}
	if (!rc && (memcmp(h.uuid, w->cfg.uuid, 16) || h.seq != seq ||
		    h.file_size != w->cfg.file_size))
		rc = STRATA_EFORMAT;
	if (rc) {
		io_close(f);
		return rc;
	}
	unsigned i = (unsigned)(seq % MAX_OPEN);
	w->files[i] = f;
	w->file_seq[i] = seq;
	w->salt[i] = h.salt;
	w->salt_seq[i] = seq;
	return 0;
}

static bool pow2_u64(uint64_t x)
{
	return x && !(x & (x - 1));
}

int wal_open(const wal_config *cfg, uint64_t start_lsn, wal **out)
{
	return wal_open_keep(cfg, start_lsn, start_lsn, out);
}

int wal_open_keep(const wal_config *cfg, uint64_t start_lsn, uint64_t keep_lsn, wal **out)
{
	if (!cfg || !cfg->env || !cfg->dir || !pow2_u64(cfg->file_size) ||
	    cfg->file_size < WAL_MIN_FILE || keep_lsn > start_lsn)
		return STRATA_EINVAL;
	wal *w = strata_mem_calloc(1, sizeof *w);
	size_t dl = strlen(cfg->dir);
	if (!w || !(w->dir = strata_mem_alloc(dl + 1))) {
		strata_mem_free(w, sizeof *w);
		return STRATA_ENOMEM;
	}
	memcpy(w->dir, cfg->dir, dl + 1);
	w->cfg = *cfg;
	w->cfg.dir = w->dir;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	w->stage_lsn = w->next_lsn = w->durable = start_lsn;
	atomic_store(&w->durable_a, start_lsn);
	uint64_t seq = start_lsn / cfg->file_size;
	/* Files from keep_lsn's on hold the log recovery replays until a
	 * checkpoint moves the superblock's start: none of them is reused. */
	w->lowest_kept = keep_lsn / cfg->file_size;
	scan_ctx sc = {w, w->lowest_kept, 0};
	int rc = io_list(cfg->env, cfg->dir, scan_one, &sc);
	if (!rc)
		rc = sc.rc;
	if (!rc)
		rc = adopt_start_file(w, seq);
	if (rc) {
		wal_close(w);
		return rc;
	}
	*out = w;
	return 0;
}

void wal_close(wal *w)
{
	if (!w)
		return;
	for (unsigned i = 0; i < MAX_OPEN; i++)
		io_close(w->files[i]);
	strata_mem_free(w->stage.p, w->stage.cap);
	strata_mem_free(w->spare.p, w->spare.cap);
	strata_mem_free(w->pool, w->pool_cap * sizeof *w->pool);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	strata_mem_free(w->dir, strlen(w->dir) + 1);
	strata_mem_free(w, sizeof *w);
}

uint64_t wal_end(wal *w)
{
	pthread_mutex_lock(&w->lock);
	uint64_t e = w->next_lsn;
	pthread_mutex_unlock(&w->lock);
	return e;
}

uint64_t wal_durable(wal *w)
{
	return atomic_load_explicit(&w->durable_a, memory_order_acquire);
}

int wal_error(wal *w)
{
	pthread_mutex_lock(&w->lock);
	int e = w->error;
	pthread_mutex_unlock(&w->lock);
	return e;
}

int wal_recycle(wal *w, uint64_t lsn)
{
	pthread_mutex_lock(&w->lock);
	while (w->flushing) /* files belong to the leader */
		pthread_cond_wait(&w->cond, &w->lock);
	uint64_t F = w->cfg.file_size, live_seq = w->stage_lsn / F;
	int rc = 0;
	while (!rc && w->lowest_kept < live_seq && (w->lowest_kept + 1) * F <= lsn) {
		unsigned i = (unsigned)(w->lowest_kept % MAX_OPEN);
		if (w->files[i] && w->file_seq[i] == w->lowest_kept) {
			io_close(w->files[i]);
			w->files[i] = NULL;
		}
		char path[4096];
		wal_path(w, w->lowest_kept, path, sizeof path);
		int ex = io_exists(w->cfg.env, path);
		if (ex > 0)
			rc = pool_push(w, w->lowest_kept);
		else if (ex < 0)
			rc = ex;
		w->lowest_kept++;
	}
	pthread_mutex_unlock(&w->lock);
	return rc;
}
