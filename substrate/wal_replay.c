/*
 * wal_replay.c — reading the WAL back at recovery (see wal.h, and the
 * replay rules in design/FORMAT.md).
 *
 * Files are mapped read-only one at a time as the stream reaches them; the
 * frames of the commit being gathered may lie in several files (a commit
 * may span any number), so the files holding pending frames stay mapped
 * until their commit is delivered. The table of mapped files grows as
 * needed, so no `mapped *` is kept across a map_file call.
 * Nothing here writes, except wal_cut_tail, which the caller runs only after
 * deciding to open for writing.
 *
 * The first invalid frame ends the log. Whether it is a torn tail or
 * corruption is decided by scanning what follows it (this file and any
 * later files of this store) for valid frames: a valid COMMIT whose synced
 * LSN lies above the bad frame proves the bad frame had been durable.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "wal.h"

typedef struct mapped {
	io_file *f;
	const uint8_t *p;
	size_t len;
	uint64_t seq;
	uint32_t salt;
	bool used;
} mapped;

typedef struct reader {
	const wal_config *cfg;
	mapped *maps;
	size_t nmaps;
	wal_frame *pending;
	size_t npending, cap;
	uint64_t pending_lsn;
	size_t last; /* index in maps of the file the last frame came from */
} reader;

static void unmap_one(mapped *m)
{
	if (!m->used)
		return;
	if (m->p)
		io_unmap(m->f, m->p, m->len);
	io_close(m->f);
	memset(m, 0, sizeof *m);
}

static void reader_free(reader *r)
{
	for (size_t i = 0; i < r->nmaps; i++)
		unmap_one(&r->maps[i]);
	strata_mem_free(r->maps, r->nmaps * sizeof *r->maps);
	strata_mem_free(r->pending, r->cap * sizeof *r->pending);
}

/* An unused entry of the table, growing it if all are in use. */
static mapped *free_slot(reader *r)
{
	for (size_t i = 0; i < r->nmaps; i++)
		if (!r->maps[i].used)
			return &r->maps[i];
	size_t n = r->nmaps ? 2 * r->nmaps : 4;
	mapped *m = strata_mem_realloc(r->maps, r->nmaps * sizeof *m, n * sizeof *m);
	if (!m)
		return NULL;
	memset(m + r->nmaps, 0, (n - r->nmaps) * sizeof *m);
	r->maps = m;
	m += r->nmaps;
	r->nmaps = n;
	return m;
}

/* Opens and maps wal.<seq> if it exists and is this store's file for seq.
 * 0 with *out NULL: no such file (the end of the log). */
static int map_file(reader *r, uint64_t seq, mapped **out)
{
	*out = NULL;
	if (r->last < r->nmaps && r->maps[r->last].used && r->maps[r->last].seq == seq)
		return (*out = &r->maps[r->last]), 0; /* the common case: the same file */
	for (size_t i = 0; i < r->nmaps; i++)
		if (r->maps[i].used && r->maps[i].seq == seq)
			return (*out = &r->maps[r->last = i]), 0;
	char path[4096];
	snprintf(path, sizeof path, "%s/wal.%016llx", r->cfg->dir, (unsigned long long)seq);
	int rc = io_exists(r->cfg->env, path);
	if (rc <= 0)
		return rc;
	mapped *m = free_slot(r);
	if (!m)
		return STRATA_ENOMEM;
	uint64_t size;
	if ((rc = io_open(r->cfg->env, path, IO_RDONLY, &m->f)))
		return rc;
	m->used = true;
	m->seq = seq;
	wal_file_header h;
	if ((rc = io_size(m->f, &size)) || size < WAL_FILE_HDR)
		goto bad;
	m->len = (size_t)(size < r->cfg->file_size ? size : r->cfg->file_size);
	if ((rc = io_map(m->f, 0, m->len, (const void **)&m->p)))
		goto bad;
	if (walf_header_decode(m->p, &h) || memcmp(h.uuid, r->cfg->uuid, 16) || h.seq != seq ||
	    h.file_size != r->cfg->file_size)
		goto bad;
	m->salt = h.salt;
	*out = m;
	return 0;
bad:
	unmap_one(m);
	return rc < 0 ? rc : 0; /* not a file of this stream: the log ends */
}

/* Unmaps files no pending frame and no later read needs. */
static void release_below(reader *r, uint64_t seq)
{
	for (size_t i = 0; i < r->nmaps; i++)
		if (r->maps[i].used && r->maps[i].seq < seq)
			unmap_one(&r->maps[i]);
}

static int pending_push(reader *r, const wal_frame *f)
{
	if (r->npending == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 64;
		wal_frame *p = strata_mem_realloc(r->pending, r->cap * sizeof *p, cap * sizeof *p);
		if (!p)
			return STRATA_ENOMEM;
		r->pending = p;
		r->cap = cap;
	}
	r->pending[r->npending++] = *f;
	return 0;
}

/* Next frame position after lsn + size: past file headers and file ends
 * too short for a frame header. */
static uint64_t advance(uint64_t lsn, uint64_t F)
{
	uint64_t mask = F - 1; /* F is a power of two: no 64-bit divide per frame */
	if (F - (lsn & mask) < WAL_FRAME_HDR)
		lsn = (lsn & ~mask) + F;
	if (!(lsn & mask))
		lsn += WAL_FILE_HDR;
	return lsn;
}

typedef struct scan_result {
	uint64_t valid_end;   /* end of the furthest valid frame after the bad one */
	uint64_t proof_epoch; /* a commit synced after the bad frame (0: none) */
} scan_result;

/* Offset of the first nonzero 8-byte word at or after `from` (8-aligned)
 * in p[0, len), or len rounded down to 8: a preallocated file's unused
 * tail is zeros, read here 64 bytes a step (the compiler vectorises the
 * OR) instead of a frame check every 8 bytes. */
static size_t next_nonzero(const uint8_t *p, size_t from, size_t len)
{
	size_t at = from;
	for (; at + 64 <= len; at += 64) {
		uint64_t w[8], any = 0;
		memcpy(w, p + at, 64);
		for (int i = 0; i < 8; i++)
			any |= w[i];
		if (any)
			break;
	}
	for (; at + 8 <= len; at += 8) {
		uint64_t w;
		memcpy(&w, p + at, 8);
		if (w)
			return at;
	}
	return at;
}

/* Looks for valid frames after the bad frame at `bad` in its file and the
 * files after it. */
static int scan_after(reader *r, uint64_t bad, scan_result *out)
{
	uint64_t F = r->cfg->file_size, bad_seq = bad / F;
	memset(out, 0, sizeof *out);
	for (uint64_t seq = bad_seq;; seq++) {
		mapped *x;
		int rc = map_file(r, seq, &x);
		if (!rc && !x && seq == bad_seq)
			continue; /* the log ended at a missing file: look past it */
		if (rc || !x)
			return rc;
		uint64_t pos = seq == bad_seq ? bad + 8 : seq * F + WAL_FILE_HDR;
		for (; pos + WAL_FRAME_HDR <= seq * F + x->len; pos += 8) {
			const uint8_t *p = x->p + (pos - seq * F);
			uint64_t stamped;
			memcpy(&stamped, p + 8, 8);
			wal_frame f;
			if (!stamped) { /* no frame stamps LSN 0: skip the zeros at once */
				size_t nz = next_nonzero(x->p, (size_t)(pos - seq * F) + 8, x->len);
				pos = seq * F + nz - 16; /* the loop adds 8: next try at nz - 8 */
				continue;
			}
			if (stamped != pos || walf_frame_check(p, x->len - (pos - seq * F), pos, x->salt, &f))
				continue;
			out->valid_end = pos + f.size;
			wal_commit_rec c;
			if (f.type == WAL_COMMIT && !walf_commit_decode(&f, &c) && c.batch_lsn > bad &&
			    !out->proof_epoch)
				out->proof_epoch = c.epoch;
		}
		if (seq != bad_seq)
			unmap_one(x);
	}
}

/* A COMMIT frame whose payload makes no sense is a bad frame (*bad: judged
 * like any other); a status from the callback is the caller's verdict. */
static int deliver(reader *r, const wal_frame *cf, wal_commit_fn fn, void *ctx,
		   wal_replay_result *res, bool *bad)
{
	wal_commit_rec c;
	*bad = walf_commit_decode(cf, &c) || c.frames != r->npending || c.epoch <= res->last_epoch;
	if (*bad)
		return STRATA_ECORRUPT;
	wal_commit_view v = {c.epoch, r->npending ? r->pending_lsn : cf->lsn, r->pending,
			     r->npending};
	int rc = fn ? fn(ctx, &v) : 0;
	if (rc)
		return rc;
	res->commits++;
	res->last_epoch = c.epoch;
	res->end_lsn = cf->lsn + cf->size;
	r->npending = 0;
	return 0;
}

/* The first invalid frame (or an invalid commit) at `bad`: tear or
 * corruption. What must be cut: frames of an unfinished commit before it,
 * any valid-looking frame after it, and the bad frame itself when it looks
 * valid (a COMMIT that checks but does not fit the log ends at bad_end;
 * otherwise bad_end == bad). */
static int judge(reader *r, uint64_t bad, uint64_t bad_end, bool salvage, wal_replay_result *res)
{
	scan_result s;
	int rc = scan_after(r, bad, &s);
	if (rc)
		return rc;
	uint64_t end = s.valid_end > bad_end ? s.valid_end : bad_end;
	if (r->npending || end > bad) {
		res->cut_from = res->end_lsn;
		res->cut_to = end;
	}
	uint64_t off = bad % r->cfg->file_size;
	if (s.proof_epoch) {
		res->bad_lsn = bad;
		snprintf(res->message, sizeof res->message,
			 "wal.%016llx offset %" PRIu64 " (LSN %" PRIu64
			 "): bad frame, but the commit of epoch %" PRIu64
			 " after it was written once it was synced; last good epoch %" PRIu64,
			 (unsigned long long)(bad / r->cfg->file_size), off, bad, s.proof_epoch,
			 res->last_epoch);
		return salvage ? 0 : STRATA_ECORRUPT;
	}
	if (res->cut_to > res->cut_from)
		snprintf(res->message, sizeof res->message,
			 "torn tail at LSN %" PRIu64 " (wal.%016llx offset %" PRIu64 "): %" PRIu64
			 " bytes after epoch %" PRIu64 " cut",
			 bad, (unsigned long long)(bad / r->cfg->file_size), off,
			 res->cut_to - res->cut_from, res->last_epoch);
	return 0;
}

/* The file holding `lsn` is missing or not part of this log: a later
 * file with a commit synced after lsn proves it had been durable. */
static int judge_missing(reader *r, uint64_t lsn, bool salvage, wal_replay_result *res)
{
	scan_result s;
	int rc = scan_after(r, lsn, &s);
	if (rc || !s.proof_epoch)
		return rc;
	res->bad_lsn = lsn;
	snprintf(res->message, sizeof res->message,
		 "wal.%016llx is missing or not this store's, but the commit of epoch %" PRIu64
		 " after it was written once it was synced; last good epoch %" PRIu64,
		 (unsigned long long)(lsn / r->cfg->file_size), s.proof_epoch, res->last_epoch);
	if (salvage && s.valid_end > lsn) {
		res->cut_from = res->end_lsn;
		res->cut_to = s.valid_end;
	}
	return salvage ? 0 : STRATA_ECORRUPT;
}

int wal_replay(const wal_config *cfg, uint64_t start_lsn, unsigned flags, wal_commit_fn fn,
	       void *ctx, wal_replay_result *res)
{
	bool salvage = flags & WAL_REPLAY_SALVAGE, clean = flags & WAL_REPLAY_CLEAN;
	memset(res, 0, sizeof *res);
	res->end_lsn = start_lsn;
	if (!cfg->file_size || (cfg->file_size & (cfg->file_size - 1)))
		return STRATA_EINVAL;
	reader r = {.cfg = cfg};
	uint64_t F = cfg->file_size, lsn = advance(start_lsn, F);
	unsigned shift = (unsigned)__builtin_ctzll(F); /* a power of two (wal_open, sb_read) */
	int rc = 0;
	bool bad, first = true; /* no frame read yet */
	for (;; first = false) {
		mapped *m;
		if ((rc = map_file(&r, lsn >> shift, &m)))
			break;
		if (!m) { /* no file (or not this log's): the log ends here... */
			if (!(clean && first))
				rc = judge_missing(&r, lsn, salvage, res);
			break; /* ...unless a later file proves this one was durable */
		}
		uint64_t off = lsn & (F - 1);
		wal_frame f;
		if (off >= m->len ||
		    walf_frame_check(m->p + off, m->len - off, lsn, m->salt, &f)) {
			if (!(clean && first)) /* clean: nothing can follow */
				rc = judge(&r, lsn, lsn, salvage, res);
			break;
		}
		res->bytes += f.size;
		if (f.type == WAL_SKIP) {
			lsn = advance(((lsn >> shift) + 1) << shift, F);
			continue;
		}
		if (f.type != WAL_COMMIT) {
			if (!r.npending)
				r.pending_lsn = lsn;
			if ((rc = pending_push(&r, &f)))
				break;
		} else if ((rc = deliver(&r, &f, fn, ctx, res, &bad))) {
			if (bad)
				rc = judge(&r, lsn, lsn + f.size, salvage, res);
			else
				res->bad_lsn = lsn; /* where the caller refused a commit */
			break;
		}
		lsn = advance(lsn + f.size, F);
		if (!r.npending)
			release_below(&r, lsn >> shift);
	}
	if (!rc && !res->cut_to && r.npending) {
		res->cut_from = res->end_lsn; /* frames of a commit that never finished */
		res->cut_to = lsn;
	}
	reader_free(&r);
	return rc;
}

int wal_cut_tail(const wal_config *cfg, const wal_replay_result *res)
{
	static const uint8_t zero[4096];
	uint64_t F = cfg->file_size;
	for (uint64_t seq = res->cut_from / F; res->cut_from < res->cut_to && seq <= (res->cut_to - 1) / F;
	     seq++) {
		char path[4096];
		snprintf(path, sizeof path, "%s/wal.%016llx", cfg->dir, (unsigned long long)seq);
		uint64_t lo = seq * F + WAL_FILE_HDR, hi = (seq + 1) * F;
		lo = lo > res->cut_from ? lo : res->cut_from;
		hi = hi < res->cut_to ? hi : res->cut_to;
		io_file *f;
		int rc = io_open(cfg->env, path, 0, &f);
		if (rc == -ENOENT)
			continue;
		for (uint64_t at = lo; !rc && at < hi; at += sizeof zero) {
			size_t n = (size_t)(hi - at < sizeof zero ? hi - at : sizeof zero);
			rc = io_pwrite(f, zero, n, at - seq * F);
		}
		if (!rc)
			rc = io_sync(f);
		io_close(f);
		if (rc)
			return rc;
	}
	return 0;
}
