/*
 * checkpoint.c — checkpoint files: the object table, root catalog and
 * allocator state as of one pinned epoch C (layout in design/FORMAT.md).
 *
 * Writing (ckpt_write, under the checkpoint lock, with C pinned):
 *   1. every node visible at C and born after the previous checkpoint is
 *      written to its slot in `data`; then `data` is synced;
 *   2. the checkpoint file: header placeholder, entries (chunk by chunk:
 *      a chunk still on disk is copied from the current checkpoint, its
 *      large images with it), segment classes, used-slot bitmaps, the chunk
 *      index, roots, large-object images; synced; its name made durable;
 *      then the header with every section's CRC, synced again.
 * The caller then flips the superblock and adopts the file (ckpt_adopt):
 * chunks still on disk are read from it from then on. Nothing of a
 * checkpoint is used before the superblock names it, so a crash at any
 * point leaves the previous checkpoint in force (limbo keeps its slots
 * intact).
 *
 * Loading (ckpt_load, at open, single-threaded) reads the header, the
 * allocator state, the chunk index and the roots, every CRC checked before
 * a field is used: a few KiB per GiB of nodes. The entries stay on disk:
 * each object-table chunk is read and checked against its own CRC when
 * first touched (ckpt_fault_chunk), and node images when first resolved
 * (LAZY_BIT). So open time does not grow with the number of nodes.
 *
 * Why a lazy chunk may be copied without a lock: it was on disk after C
 * was pinned, so no commit at or before C changed it (changing an entry
 * loads its chunk first). If a reader loads it while we copy, its large
 * images are read at once (ckpt_copying), so none of its entries points
 * into the old file once the new one is adopted.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "crc32c.h"
#include "durable.h"
#include "le.h"

#define CK_MAGIC 0x43505553u /* "SUPC" */
#define CK_VERSION 3u
#define CK_HDR 4096u
#define CK_ENTRY 32u
#define CK_CHUNK_REC 48u
#define CK_SEG_REC 12u /* version 3: class, 3 zero bytes, u32 used slots, u32 CRC of its words */

/* Tests set 2 to write the previous format (one class byte per segment,
 * the bitmap words checked as one section at open). */
uint32_t ckpt_write_version = CK_VERSION;
enum { SEC_ENTRIES, SEC_SEGMENTS, SEC_BITMAPS, SEC_CHUNKS, SEC_ROOTS, SEC_LARGE, NSEC };

typedef struct ck_section {
	uint64_t off, len;
	uint32_t crc;
} ck_section;

typedef struct ck_header {
	uint32_t version;
	uint8_t uuid[16];
	uint64_t gen, epoch, wal_lsn;
	uint32_t nsegs, nroots, nchunks;
	uint64_t nodes_live, large_objects, large_bytes;
	ck_section sec[NSEC];
	uint32_t next_index[OT_MAX_SHARDS];
	uint64_t requested[STRATA_NUM_CLASSES];
} ck_header;

#define H_SEC 88
#define H_NEXT 256
#define H_REQ 512
_Static_assert(H_SEC + 24 * NSEC <= H_NEXT, "sections overlap next_index");
_Static_assert(H_REQ + 8 * STRATA_NUM_CLASSES <= CK_HDR - 4, "header too small");

static void header_encode(const ck_header *h, uint8_t *b)
{
	memset(b, 0, CK_HDR);
	put32(b, CK_MAGIC);
	put32(b + 4, h->version | (CK_HDR << 16)); /* u16 version, u16 header size */
	memcpy(b + 8, h->uuid, 16);
	put64(b + 24, h->gen);
	put64(b + 32, h->epoch);
	put64(b + 40, h->wal_lsn);
	put32(b + 48, h->nsegs);
	put32(b + 52, h->nroots);
	put32(b + 56, h->nchunks);
	put64(b + 64, h->nodes_live);
	put64(b + 72, h->large_objects);
	put64(b + 80, h->large_bytes);
	for (int i = 0; i < NSEC; i++) {
		put64(b + H_SEC + 24 * i, h->sec[i].off);
		put64(b + H_SEC + 8 + 24 * i, h->sec[i].len);
		put32(b + H_SEC + 16 + 24 * i, h->sec[i].crc);
	}
	for (int i = 0; i < OT_MAX_SHARDS; i++)
		put32(b + H_NEXT + 4 * i, h->next_index[i]);
	for (int i = 0; i < STRATA_NUM_CLASSES; i++)
		put64(b + H_REQ + 8 * i, h->requested[i]);
	put32(b + CK_HDR - 4, strata_crc32c(0, b, CK_HDR - 4));
}

static int header_decode(const uint8_t *b, ck_header *h)
{
	if (get32(b) != CK_MAGIC || get32(b + 4) >> 16 != CK_HDR)
		return STRATA_EFORMAT;
	if (strata_crc32c(0, b, CK_HDR - 4) != get32(b + CK_HDR - 4))
		return STRATA_ECORRUPT;
	h->version = get32(b + 4) & 0xffff;
	if (h->version != 2 && h->version != CK_VERSION)
		return STRATA_EFORMAT;
	memcpy(h->uuid, b + 8, 16);
	h->gen = get64(b + 24);
	h->epoch = get64(b + 32);
	h->wal_lsn = get64(b + 40);
	h->nsegs = get32(b + 48);
	h->nroots = get32(b + 52);
	h->nchunks = get32(b + 56);
	h->nodes_live = get64(b + 64);
	h->large_objects = get64(b + 72);
	h->large_bytes = get64(b + 80);
	for (int i = 0; i < NSEC; i++) {
		h->sec[i].off = get64(b + H_SEC + 24 * i);
		h->sec[i].len = get64(b + H_SEC + 8 + 24 * i);
		h->sec[i].crc = get32(b + H_SEC + 16 + 24 * i);
	}
	for (int i = 0; i < OT_MAX_SHARDS; i++)
		h->next_index[i] = get32(b + H_NEXT + 4 * i);
	for (int i = 0; i < STRATA_NUM_CLASSES; i++)
		h->requested[i] = get64(b + H_REQ + 8 * i);
	return 0;
}

/* ---- a buffered sequential writer ------------------------------------------- */
typedef struct bwriter {
	io_file *f;
	uint8_t *buf;
	size_t n, cap;
	uint64_t off; /* file offset of buf[0] */
	uint32_t crc;
	int rc;
} bwriter;

static void bw_flush(bwriter *w)
{
	if (!w->rc && w->n)
		w->rc = io_pwrite(w->f, w->buf, w->n, w->off);
	w->off += w->n;
	w->n = 0;
}

static void bw_put(bwriter *w, const void *p, size_t len)
{
	w->crc = strata_crc32c(w->crc, p, len);
	while (len && !w->rc) {
		size_t k = w->cap - w->n < len ? w->cap - w->n : len;
		memcpy(w->buf + w->n, p, k);
		w->n += k;
		p = (const uint8_t *)p + k;
		len -= k;
		if (w->n == w->cap)
			bw_flush(w);
	}
}

/* Starts a section at the writer's position. */
static void bw_section(bwriter *w, ck_section *sec)
{
	sec->off = w->off + w->n;
	w->crc = 0;
}

static void bw_end_section(bwriter *w, ck_section *sec)
{
	sec->len = w->off + w->n - sec->off;
	sec->crc = w->crc;
}

/* ---- writing ------------------------------------------------------------------ */
typedef struct ck_entry_view {
	ot_entry *e;
	uint32_t meta, info;
	uint64_t birth, loc;
	bool visible;
} ck_entry_view;

static ck_entry_view view_at(ot_entry *e, uint64_t C)
{
	ck_entry_view v;
	v.e = e;
	v.meta = atomic_load_explicit(&e->meta, memory_order_acquire);
	uint64_t r = ot_retire(e);
	v.birth = ot_birth(e);
	v.info = atomic_load_explicit(&e->info, memory_order_relaxed);
	v.loc = atomic_load_explicit(&e->loc, memory_order_acquire);
	v.visible = OT_META_STATE(v.meta) != OT_FREE && v.birth <= C && C < r;
	return v;
}

/* A large image for the large section: from memory (a node of a loaded
 * chunk) or copied from the current checkpoint file (a chunk on disk). */
typedef struct ck_large {
	strata_node_id id;
	uint64_t src; /* file offset, or UINT64_MAX: in memory */
	uint32_t size;
} ck_large;

typedef struct ck_ctx {
	strata_store *s;
	durable *d;
	uint64_t C, prev;
	bwriter w;
	ck_large *large;
	size_t nlarge, large_cap;
	uint64_t large_off; /* offset in the large section of the next image */
	/* allocator state at C, built from the entries */
	uint32_t nsegs;
	uint8_t *classes;
	uint64_t *bm;     /* used-slot bitmaps, segment after segment */
	uint64_t *bm_at;  /* word offset of each segment's bitmap */
	uint64_t nwords;
	ckpt_chunk *chunks;
	uint32_t nchunks, chunks_cap;
	uint8_t *cbuf; /* one chunk's records */
	ck_header *h;
	ckpt_chunk *cur; /* the chunk being written: its live and large counts */
	ckpt_reloc *reloc; /* large images copied from disk, re-addressed at adopt */
	size_t nreloc, reloc_cap;
} ck_ctx;

static int large_push(ck_ctx *c, strata_node_id id, uint64_t src, uint32_t size)
{
	if (c->nlarge == c->large_cap) {
		size_t cap = c->large_cap ? c->large_cap * 2 : 64;
		ck_large *p = strata_mem_realloc(c->large, c->large_cap * sizeof *p, cap * sizeof *p);
		if (!p)
			return STRATA_ENOMEM;
		c->large = p;
		c->large_cap = cap;
	}
	c->large[c->nlarge++] = (ck_large){id, src, size};
	return 0;
}

/* Marks a small node's slot used in the bitmap of C. */
static int mark_slot(ck_ctx *c, uint32_t segno, uint32_t offset, uint32_t size)
{
	unsigned cls = seg_class_of(size);
	uint32_t i = segno < c->nsegs && c->classes[segno] == cls ? seg_slot_index(offset, cls)
								   : UINT32_MAX;
	if (i == UINT32_MAX)
		return STRATA_ECORRUPT;
	c->bm[c->bm_at[segno] + i / 64] |= 1ull << (i % 64);
	c->h->requested[cls] += size;
	return 0;
}

static int reloc_push(ck_ctx *c, strata_node_id id, uint64_t old_loc, uint64_t new_off)
{
	if (c->nreloc == c->reloc_cap) {
		size_t cap = c->reloc_cap ? c->reloc_cap * 2 : 64;
		ckpt_reloc *p = strata_mem_realloc(c->reloc, c->reloc_cap * sizeof *p, cap * sizeof *p);
		if (!p)
			return STRATA_ENOMEM;
		c->reloc = p;
		c->reloc_cap = cap;
	}
	c->reloc[c->nreloc++] = (ckpt_reloc){id, old_loc, new_off};
	return 0;
}

/* A large node: its image goes to the large section after the entries.
 * One never read since the open is copied from the current file as it is
 * (its CRC stays the one recorded: damage is carried, not laundered, and
 * does not stop the checkpoint) and re-addressed at ckpt_adopt; one in
 * memory is checksummed now, so its entry is final. */
static int large_image(ck_ctx *c, strata_node_id id, const ck_entry_view *v, uint32_t size,
		       uint32_t *crc)
{
	const void *p;
	if (v->loc & LAZY_BIT) {
		*crc = ot_crc(v->e);
		int rc = reloc_push(c, id, v->loc, c->large_off - ((size + 7) & ~7u));
		return rc ? rc : large_push(c, id, v->loc >> 1, size);
	}
	int rc = durable_load(c->s, v->e, id, &p);
	if (rc)
		return rc;
	*crc = strata_crc32c(0, p, size);
	ot_set_crc(v->e, *crc);
	return large_push(c, id, UINT64_MAX, size);
}

/* A small node born since the previous checkpoint: its image goes to its
 * slot in `data`, and its CRC into the entry's stamps (before cache_clean
 * lets the image be evicted and read back). */
static int write_image(ck_ctx *c, const ck_entry_view *v, uint32_t *crc)
{
	/* A node on disk (LAZY) is in `data` already, whatever its birth: a
	 * bounded cache may have evicted it after an earlier write. */
	if (v->birth > c->prev && !(v->loc & LAZY_BIT)) {
		uint32_t size = OT_INFO_SIZE(v->info);
		const void *img = loc_image(v->loc);
		const void *slot = loc_slot(v->loc);
		uint64_t at = (uint64_t)seg_no_of(slot) * SEG_SIZE + seg_offset_of(slot);
		ot_set_crc(v->e, strata_crc32c(0, img, size));
		int rc = io_pwrite(c->d->data, img, size, at);
		if (rc)
			return rc;
		if LOC_CACHED(v->loc) /* in `data` now: evictable */
			cache_clean(c->s, v->loc);
	}
	*crc = ot_crc(v->e);
	return 0;
}

static int put_visible(ck_ctx *c, strata_node_id id, const ck_entry_view *v, uint8_t *rec)
{
	uint32_t size = OT_INFO_SIZE(v->info), crc = 0;
	int rc;
	c->cur->nlive++;
	if (seg_class_of(size) == STRATA_CLASS_LARGE) {
		put64(rec, c->large_off); /* images follow in this order */
		c->large_off += (size + 7) & ~7u;
		c->cur->nlarge++;
		c->cur->large_bytes += size;
		rc = large_image(c, id, v, size, &crc);
	} else {
		const void *p = loc_slot(v->loc);
		put64(rec, (uint64_t)seg_no_of(p) << SEG_SHIFT | seg_offset_of(p));
		rc = mark_slot(c, seg_no_of(p), seg_offset_of(p), size);
		if (!rc)
			rc = write_image(c, v, &crc);
	}
	put64(rec + 8, v->birth);
	put32(rec + 20, v->info);
	put32(rec + 24, crc);
	return rc;
}

/* One entry of a loaded chunk; *nfree counts those written FREE. A retired
 * large image still on disk is read now: snapshots older than C may still
 * resolve it, and the current file goes away with this checkpoint. */
static int put_entry(ck_ctx *c, ot_entry *e, uint32_t shard, uint32_t idx, uint32_t *nfree)
{
	uint8_t rec[CK_ENTRY] = {0};
	ck_entry_view v = view_at(e, c->C);
	strata_node_id id = ot_make_id(shard, idx, OT_META_TAG(v.meta));
	put32(rec + 16, OT_META(OT_META_TAG(v.meta), v.visible ? OT_LIVE : OT_FREE));
	int rc = 0;
	if (v.visible) {
		rc = put_visible(c, id, &v, rec);
	} else {
		(*nfree)++;
		const void *p;
		if (OT_META_STATE(v.meta) == OT_RETIRED && (v.loc & LAZY_BIT) &&
		    seg_class_of(OT_INFO_SIZE(v.info)) == STRATA_CLASS_LARGE)
			(void)durable_load(c->s, e, id, &p); /* damaged: stays an error for its readers */
	}
	bw_put(&c->w, rec, sizeof rec);
	return rc ? rc : c->w.rc;
}

static int chunk_push(ck_ctx *c, const ckpt_chunk *k)
{
	if (c->nchunks == c->chunks_cap) { /* shards issued into new chunks meanwhile */
		uint32_t cap = c->chunks_cap * 2 + 16;
		ckpt_chunk *p = strata_mem_realloc(c->chunks, c->chunks_cap * sizeof *p, cap * sizeof *p);
		if (!p)
			return STRATA_ENOMEM;
		c->chunks = p;
		c->chunks_cap = cap;
	}
	c->chunks[c->nchunks++] = *k;
	c->h->nodes_live += k->nlive;
	c->h->large_objects += k->nlarge;
	c->h->large_bytes += k->large_bytes;
	return 0;
}

static int put_loaded_chunk(ck_ctx *c, uint32_t sh, uint32_t base, uint32_t nrec, ot_entry *chunk)
{
	ckpt_chunk k = {.slot = sh << OT_DIR_BITS | base >> OT_CHUNK_BITS, .nrec = nrec,
			.off = c->w.off + c->w.n};
	c->cur = &k;
	c->w.crc = 0;
	for (uint32_t i = 0; i < nrec; i++) {
		int rc = put_entry(c, &chunk[i], sh, base + i, &k.nfree);
		if (rc)
			return rc;
	}
	k.crc = c->w.crc;
	return chunk_push(c, &k);
}

/* Rewrites one record of a chunk still on disk: its large image moves to
 * this checkpoint's large section. */
static int copy_record(ck_ctx *c, uint8_t *rec, uint64_t old_large, ckpt_chunk *k)
{
	uint32_t meta = get32(rec + 16);
	if (OT_META_STATE(meta) != OT_LIVE) {
		k->nfree++;
		return 0;
	}
	uint64_t loc = get64(rec);
	uint32_t size = OT_INFO_SIZE(get32(rec + 20));
	k->nlive++;
	if (seg_class_of(size) != STRATA_CLASS_LARGE)
		return mark_slot(c, (uint32_t)(loc >> SEG_SHIFT), (uint32_t)(loc & (SEG_SIZE - 1)), size);
	put64(rec, c->large_off);
	c->large_off += (size + 7) & ~7u;
	k->nlarge++;
	k->large_bytes += size;
	return large_push(c, 0, old_large + loc, size);
}

/* A chunk still on disk, copied from the current checkpoint (see the
 * header comment for why without a lock). Its CRC is checked first: a
 * damaged chunk is carried over byte for byte with the CRC it had, so it
 * stays an error for its readers, is never given a fresh CRC, and does not
 * stop the store from checkpointing. (Its nodes' slots are not marked used:
 * nothing can ever be read through it.) */
static int copy_lazy_chunk(ck_ctx *c, uint32_t slot)
{
	ot_lazy lz;
	int rc = ot_lazy_get(&c->s->ot, slot, &lz);
	if (rc)
		return rc;
	const ot_lazy *src = &lz;
	ckpt_chunk k = {.slot = slot, .nrec = src->nrec, .off = c->w.off + c->w.n, .copied = true};
	size_t len = (size_t)src->nrec * CK_ENTRY;
	rc = io_pread(c->d->ckpt, c->cbuf, len, src->off);
	if (rc)
		return rc == STRATA_ETRUNCATED ? STRATA_ECORRUPT : rc;
	bool damaged = strata_crc32c(0, c->cbuf, len) != src->crc;
	for (uint32_t i = 0; !damaged && i < src->nrec; i++)
		if ((rc = copy_record(c, c->cbuf + (size_t)i * CK_ENTRY, c->d->ckpt_large_off, &k)))
			return rc;
	c->w.crc = 0;
	bw_put(&c->w, c->cbuf, len);
	k.crc = damaged ? src->crc : c->w.crc;
	if (damaged) { /* what its index said: the chunk is never loaded again */
		k.nfree = src->nfree;
		k.nlive = src->nlive;
		k.nlarge = src->nlarge;
		k.large_bytes = src->large_bytes;
	}
	return c->w.rc ? c->w.rc : chunk_push(c, &k);
}

static int put_shard(ck_ctx *c, uint32_t sh, uint32_t n)
{
	otable *ot = &c->s->ot;
	for (uint32_t base = 0; base < n; base += OT_CHUNK) {
		uint32_t slot = sh << OT_DIR_BITS | base >> OT_CHUNK_BITS;
		uint32_t nrec = n - base < OT_CHUNK ? n - base : OT_CHUNK;
		ot_entry *chunk = atomic_load_explicit(&ot->dirs[slot], memory_order_acquire);
		int rc = chunk ? put_loaded_chunk(c, sh, base, nrec, chunk)
			       : ot_is_lazy(ot, slot) ? copy_lazy_chunk(c, slot)
						      : STRATA_ECORRUPT;
		if (rc)
			return rc;
	}
	return 0;
}

static int put_entries(ck_ctx *c, ck_header *h)
{
	ck_section *sec = &h->sec[SEC_ENTRIES];
	sec->off = c->w.off + c->w.n;
	for (uint32_t sh = 0; sh < OT_MAX_SHARDS; sh++) {
		uint32_t n = 0;
		if (sh < c->s->ot.shards_max) {
			ot_shard *shard = &c->s->ot.shards[sh];
			pthread_mutex_lock(&shard->lock);
			n = shard->next_index;
			pthread_mutex_unlock(&shard->lock);
		}
		h->next_index[sh] = n;
		int rc = put_shard(c, sh, n);
		if (rc)
			return rc;
	}
	sec->len = c->w.off + c->w.n - sec->off;
	sec->crc = 0; /* each chunk has its own CRC, in the chunk index */
	return 0;
}

/* Version 3: per segment, its class, used count and the CRC of its words,
 * so an open reads 12 bytes a segment and each segment's words are checked
 * when its header is built (segment.c, "Open"). */
static void put_segment_recs(ck_ctx *c)
{
	for (uint32_t i = 0; i < c->nsegs; i++) {
		uint8_t r[CK_SEG_REC] = {c->classes[i]};
		uint32_t words = c->classes[i] < STRATA_NUM_CLASSES ? seg_used_words(c->classes[i]) : 0;
		uint32_t used = 0, crc = 0;
		for (uint32_t k = 0; k < words; k++) {
			uint8_t b[8];
			put64(b, c->bm[c->bm_at[i] + k]);
			crc = strata_crc32c(crc, b, 8);
			used += (uint32_t)__builtin_popcountll(c->bm[c->bm_at[i] + k]);
		}
		put32(r + 4, used);
		put32(r + 8, crc);
		bw_put(&c->w, r, sizeof r);
	}
}

static void put_segments(ck_ctx *c, ck_header *h)
{
	bw_section(&c->w, &h->sec[SEC_SEGMENTS]);
	h->nsegs = c->nsegs;
	if (h->version >= 3)
		put_segment_recs(c);
	else
		bw_put(&c->w, c->classes, c->nsegs);
	bw_end_section(&c->w, &h->sec[SEC_SEGMENTS]);
	/* Zeros to an 8-aligned offset: the open then maps the bitmap words
	 * and uses them in place (and builds headers lazily) instead of
	 * copying 12.5 MB at 100M nodes. Outside any section. */
	static const uint8_t zeros[8];
	bw_put(&c->w, zeros, (8 - (c->w.off + c->w.n) % 8) % 8);
	bw_section(&c->w, &h->sec[SEC_BITMAPS]);
	for (uint64_t i = 0; i < c->nwords; i++) {
		uint8_t b[8];
		put64(b, c->bm[i]);
		bw_put(&c->w, b, 8);
	}
	bw_end_section(&c->w, &h->sec[SEC_BITMAPS]);
	if (h->version >= 3)
		h->sec[SEC_BITMAPS].crc = 0; /* each segment's words have their own */
}

static void put_chunks(ck_ctx *c, ck_header *h)
{
	bw_section(&c->w, &h->sec[SEC_CHUNKS]);
	h->nchunks = c->nchunks;
	for (uint32_t i = 0; i < c->nchunks; i++) {
		uint8_t b[CK_CHUNK_REC] = {0};
		put32(b, c->chunks[i].slot);
		put32(b + 4, c->chunks[i].nrec);
		put64(b + 8, c->chunks[i].off);
		put32(b + 16, c->chunks[i].crc);
		put32(b + 20, c->chunks[i].nfree);
		put32(b + 24, c->chunks[i].nlive);
		put32(b + 28, c->chunks[i].nlarge);
		put64(b + 32, c->chunks[i].large_bytes);
		bw_put(&c->w, b, sizeof b);
	}
	bw_end_section(&c->w, &h->sec[SEC_CHUNKS]);
}

static void put_roots(ck_ctx *c, ck_header *h)
{
	bw_section(&c->w, &h->sec[SEC_ROOTS]);
	catalog *cat = &c->s->cat;
	pthread_mutex_lock(&cat->lock);
	root_dir *dir = atomic_load(&cat->dir);
	h->nroots = 0;
	for (uint32_t i = 0; i < dir->n; i++) {
		const root_version *v = root_version_at(dir->roots[i], c->C);
		if (!v)
			continue;
		uint16_t len = (uint16_t)dir->roots[i]->name_len;
		bw_put(&c->w, &len, 2);
		bw_put(&c->w, dir->roots[i]->name, len);
		bw_put(&c->w, &v->id, 8);
		h->nroots++;
	}
	pthread_mutex_unlock(&cat->lock);
	bw_end_section(&c->w, &h->sec[SEC_ROOTS]);
}

/* A large image of a chunk on disk, copied through the chunk buffer. */
static int copy_large(ck_ctx *c, uint64_t src, uint32_t size)
{
	for (uint32_t done = 0; done < size && !c->w.rc;) {
		uint32_t k = size - done < OT_CHUNK * CK_ENTRY ? size - done : OT_CHUNK * CK_ENTRY;
		int rc = io_pread(c->d->ckpt, c->cbuf, k, src + done);
		if (rc)
			return rc == STRATA_ETRUNCATED ? STRATA_ECORRUPT : rc;
		bw_put(&c->w, c->cbuf, k);
		done += k;
	}
	return c->w.rc;
}

static int put_large(ck_ctx *c, ck_header *h)
{
	static const uint8_t pad[8];
	bw_section(&c->w, &h->sec[SEC_LARGE]);
	for (size_t i = 0; i < c->nlarge && !c->w.rc; i++) {
		const ck_large *l = &c->large[i];
		int rc;
		if (l->src != UINT64_MAX) {
			rc = copy_large(c, l->src, l->size);
		} else {
			ot_entry *e = ot_entry_peek(&c->s->ot, STRATA_NODEID_SHARD(l->id),
						    STRATA_NODEID_INDEX(l->id));
			const void *p;
			rc = e ? durable_load(c->s, e, l->id, &p) : STRATA_ECORRUPT;
			if (!rc)
				bw_put(&c->w, p, l->size);
		}
		if (rc)
			return rc;
		bw_put(&c->w, pad, ((l->size + 7) & ~7u) - l->size);
	}
	bw_end_section(&c->w, &h->sec[SEC_LARGE]);
	return c->w.rc;
}

int ckpt_open_read(durable *d, uint64_t gen, io_file **f)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/ckpt.%016" PRIx64, d->dir, gen);
	*f = NULL;
	return io_open(d->env, path, IO_RDONLY, f);
}

static int open_ckpt_file(durable *d, uint64_t gen, io_file **f)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/ckpt.%016" PRIx64, d->dir, gen);
	*f = NULL;
	int rc = io_open(d->env, path, IO_CREATE, f);
	if (!rc && (rc = io_truncate(*f, 0))) {
		io_close(*f);
		*f = NULL;
	}
	return rc;
}

/* The allocator's segments as of now (a superset of those C uses: C is
 * pinned, so every node visible at C is in a segment numbered already). */
static int alloc_maps(ck_ctx *c)
{
	otable *ot = &c->s->ot;
	c->nsegs = atomic_load(&c->s->seg.nsegs);
	c->classes = strata_mem_alloc(c->nsegs + 1);
	c->bm_at = strata_mem_alloc(sizeof(uint64_t) * (c->nsegs + 1));
	if (!c->classes || !c->bm_at)
		return STRATA_ENOMEM;
	c->nwords = 0;
	for (uint32_t i = 0; i < c->nsegs; i++) {
		c->classes[i] = seg_class_at(&c->s->seg, i);
		c->bm_at[i] = c->nwords;
		c->nwords += c->classes[i] < STRATA_NUM_CLASSES ? seg_used_words(c->classes[i]) : 0;
	}
	uint64_t nch = 0;
	for (uint32_t sh = 0; sh < ot->shards_max; sh++) { /* writers issue meanwhile */
		pthread_mutex_lock(&ot->shards[sh].lock);
		nch += (ot->shards[sh].next_index + (uint64_t)OT_CHUNK - 1) / OT_CHUNK;
		pthread_mutex_unlock(&ot->shards[sh].lock);
	}
	nch += ot->shards_max; /* shards issue into new chunks while we write */
	c->bm = strata_mem_calloc(c->nwords + 1, sizeof(uint64_t));
	c->chunks_cap = (uint32_t)nch;
	c->chunks = strata_mem_calloc(nch, sizeof *c->chunks);
	c->cbuf = strata_mem_alloc(OT_CHUNK * CK_ENTRY);
	return c->bm && c->chunks && c->cbuf ? 0 : STRATA_ENOMEM;
}

static void free_maps(ck_ctx *c)
{
	strata_mem_free(c->classes, 0);
	strata_mem_free(c->bm_at, 0);
	strata_mem_free(c->bm, 0);
	strata_mem_free(c->cbuf, 0);
	strata_mem_free(c->large, c->large_cap * sizeof *c->large);
	strata_mem_free(c->reloc, c->reloc_cap * sizeof *c->reloc);
}

static int write_body(ck_ctx *c, ck_header *h)
{
	int rc;
	c->w.off = CK_HDR;
	if ((rc = put_entries(c, h)))
		return rc;
	put_segments(c, h);
	put_chunks(c, h);
	put_roots(c, h);
	if ((rc = put_large(c, h)))
		return rc;
	bw_flush(&c->w);
	return c->w.rc ? c->w.rc : io_sync(c->d->data);
}

static void set_copying(strata_store *s, bool on)
{
	pthread_mutex_lock(&s->ot.lazy_lock);
	s->dur->ckpt_copying = on;
	pthread_mutex_unlock(&s->ot.lazy_lock);
}

int ckpt_write(strata_store *s, uint64_t gen, uint64_t epoch, uint64_t wal_lsn, uint64_t prev_epoch,
	       ckpt_written *out)
{
	durable *d = s->dur;
	ck_header h = {.version = ckpt_write_version, .gen = gen, .epoch = epoch, .wal_lsn = wal_lsn};
	ck_ctx c = {.s = s, .d = d, .C = epoch, .prev = prev_epoch, .h = &h};
	memcpy(h.uuid, d->sb.uuid, 16);
	memset(out, 0, sizeof *out);
	c.w.cap = 1u << 20;
	set_copying(s, true);
	int rc = alloc_maps(&c);
	if (!rc && !(c.w.buf = strata_mem_alloc(c.w.cap)))
		rc = STRATA_ENOMEM;
	if (!rc)
		rc = open_ckpt_file(d, gen, &c.w.f);
	if (!rc)
		rc = write_body(&c, &h);
	if (!rc) {
		header_encode(&h, c.w.buf); /* reuse: the body is written */
		rc = io_pwrite(c.w.f, c.w.buf, CK_HDR, 0);
	}
	if (!rc && !(rc = io_sync(c.w.f)))
		rc = io_sync_dir(d->env, d->dir);
	if (!rc) {
		out->size = c.w.off;
		out->header_crc = get32(c.w.buf + CK_HDR - 4);
		out->large_off = h.sec[SEC_LARGE].off;
		out->epoch = epoch;
		out->chunks = c.chunks;
		out->nchunks = c.nchunks;
		out->reloc = c.reloc;
		out->nreloc = c.nreloc;
		out->reloc_cap = c.reloc_cap;
		c.chunks = NULL;
		c.reloc = NULL;
	} else {
		set_copying(s, false);
	}
	io_close(c.w.f);
	strata_mem_free(c.w.buf, c.w.cap);
	strata_mem_free(c.chunks, 0);
	free_maps(&c);
	return rc;
}

/* The open's checkpoint file `f` is going away (adopted over, or closed):
 * segments still without a header are built from its bitmaps first
 * (build), or (at close) never will be; then the bitmaps are unmapped. */
void ckpt_drop_bitmaps(strata_store *s, io_file *f, bool build)
{
	durable *d = s->dur;
	if (!d->lazy_bm)
		return;
	if (build)
		seg_build_all(&s->seg);
	io_unmap(f, d->lazy_bm, d->lazy_bm_len);
	d->lazy_bm = NULL;
}

/* The mapped chunk index of `f` (the current checkpoint file, about to be
 * replaced or closed) is not read again: every chunk still lazy at an
 * adoption was described when the checkpoint copied it. */
void ckpt_drop_index(durable *d, io_file *f)
{
	if (d->ckpt_ci)
		io_unmap(f, d->ckpt_ci, d->ckpt_ci_len);
	d->ckpt_ci = NULL;
	memset(d->ci_n, 0, sizeof d->ci_n);
}

/* The checkpoint of `w` is durable and named by the superblock: chunks still
 * on disk are read from its file from now on. */
void ckpt_adopt(strata_store *s, ckpt_written *w, io_file *f)
{
	durable *d = s->dur;
	otable *ot = &s->ot;
	ckpt_drop_bitmaps(s, d->ckpt, true); /* before any lock: it takes class locks */
	pthread_mutex_lock(&ot->lazy_lock);
	/* No durable_load is between reading a lazy location and reading the
	 * file while both change. */
	pthread_rwlock_wrlock(&d->file_lock);
	for (size_t i = 0; i < w->nreloc; i++) {
		const ckpt_reloc *r = &w->reloc[i];
		ot_entry *e = ot_entry_peek(ot, STRATA_NODEID_SHARD(r->id), STRATA_NODEID_INDEX(r->id));
		uint64_t want = ((w->large_off + r->new_off) << 1) | LAZY_BIT;
		/* Still the image this checkpoint copied (not loaded, not freed). */
		if (e && atomic_load_explicit(&e->loc, memory_order_relaxed) == r->old_loc)
			atomic_store_explicit(&e->loc, want, memory_order_release);
	}
	for (uint32_t i = 0; i < w->nchunks; i++) {
		const ckpt_chunk *k = &w->chunks[i];
		int rc;
		ot_lazy *l = k->copied && ot_is_lazy(ot, k->slot) ? ot_lazy_locked(ot, k->slot, &rc) : NULL;
		if (l) { /* described by the copy, so the old index is not needed again */
			l->off = k->off;
			l->crc = k->crc;
		}
	}
	io_file *old = d->ckpt;
	ckpt_drop_index(d, old);
	d->ckpt = f;
	d->ckpt_large_off = w->large_off;
	d->ckpt_size = w->size;
	d->ckpt_file_epoch = w->epoch;
	d->ckpt_copying = false;
	pthread_rwlock_unlock(&d->file_lock);
	pthread_mutex_unlock(&ot->lazy_lock);
	io_close(old);
	ckpt_written_free(w);
}

void ckpt_written_free(ckpt_written *w)
{
	strata_mem_free(w->chunks, 0);
	strata_mem_free(w->reloc, w->reloc_cap * sizeof *w->reloc);
	w->chunks = NULL;
	w->reloc = NULL;
}

/* ---- loading ------------------------------------------------------------------ */
typedef struct ck_load {
	strata_store *s;
	durable *d;
	io_file *f;
	ck_header h;
	uint64_t size;
	char why[160]; /* the check that failed */
} ck_load;

#define LOAD_BAD(l, ...) (snprintf((l)->why, sizeof (l)->why, __VA_ARGS__), STRATA_ECORRUPT)

static int load_fail(int rc, const char *what, const char *dir, uint64_t gen)
{
	store_set_error("%s/ckpt.%016" PRIx64 ": %s: %s", dir, gen, what, strata_strerror(rc));
	return rc;
}

static int section_bounds(const ck_load *l, int i)
{
	const ck_section *sec = &l->h.sec[i];
	if (sec->off < CK_HDR || sec->off > l->size || sec->len > l->size - sec->off)
		return STRATA_ETRUNCATED;
	return 0;
}

/* Reads a whole section and checks its CRC. */
static int read_section(ck_load *l, int i, uint8_t **out)
{
	const ck_section *sec = &l->h.sec[i];
	int rc = section_bounds(l, i);
	if (rc)
		return rc;
	*out = strata_mem_alloc(sec->len ? sec->len : 1);
	if (!*out)
		return STRATA_ENOMEM;
	rc = sec->len ? io_pread(l->f, *out, sec->len, sec->off) : 0;
	if (!rc && strata_crc32c(0, *out, sec->len) != sec->crc)
		rc = LOAD_BAD(l, "section %d (offset %" PRIu64 ") fails its checksum", i, sec->off);
	if (rc) {
		strata_mem_free(*out, sec->len ? sec->len : 1);
		*out = NULL;
	}
	return rc;
}

/* A section mapped from the file instead of read into fresh memory: the
 * bitmaps are 12.5 MB at 100M nodes, the chunk index 293 KB, and reading
 * them into fresh memory cost a page fault and a page clear per 4 KiB (on
 * this kind of host ~3 us each: most of what an open's time grew by).
 * check: the section's CRC is checked here. Version 3 bitmaps are not:
 * each segment's words are checked against their own CRC when used. */
static int map_section(ck_load *l, int i, bool check, const uint8_t **out)
{
	const ck_section *sec = &l->h.sec[i];
	int rc = section_bounds(l, i);
	if (rc || !sec->len) {
		*out = NULL;
		return rc;
	}
	const void *p;
	if ((rc = io_map(l->f, sec->off, sec->len, &p)))
		return rc;
	if (check && strata_crc32c(0, p, sec->len) != sec->crc) {
		io_unmap(l->f, p, sec->len);
		return LOAD_BAD(l, "section %d (offset %" PRIu64 ") fails its checksum", i, sec->off);
	}
	*out = p;
	return 0;
}

/* The segments section as classes (and, version 3, summaries); every
 * record in range. *words: the bitmap words they need. */
static int decode_segments(ck_load *l, const uint8_t *segs, uint8_t *cls, seg_summary *sum,
			   uint64_t *words)
{
	bool v3 = l->h.version >= 3;
	uint32_t rec = v3 ? CK_SEG_REC : 1;
	if (l->h.sec[SEC_SEGMENTS].len != (uint64_t)l->h.nsegs * rec)
		return LOAD_BAD(l, "segment section length %" PRIu64 " for %u segments",
				l->h.sec[SEC_SEGMENTS].len, l->h.nsegs);
	*words = 0;
	for (uint32_t i = 0; i < l->h.nsegs; i++) {
		const uint8_t *r = segs + (size_t)i * rec;
		cls[i] = r[0];
		if (cls[i] >= STRATA_NUM_CLASSES || (v3 && (r[1] | r[2] | r[3])))
			return LOAD_BAD(l, "segment %u: class %u", i, cls[i]);
		if (v3 && (sum[i] = (seg_summary){get32(r + 4), get32(r + 8)}).used > seg_nslots(cls[i]))
			return LOAD_BAD(l, "segment %u: %u slots used of %u", i, sum[i].used, seg_nslots(cls[i]));
		*words += seg_used_words(cls[i]);
	}
	return 0;
}

/* Not mapped in place (big-endian, or an old file's odd offset): the words
 * are copied, so a version-3 file's summaries are checked now, on the
 * bytes as stored. */
static int copy_words(ck_load *l, const uint8_t *bms, const uint8_t *cls, const seg_summary *sum,
		      uint64_t words, uint64_t *used)
{
	for (uint64_t i = 0; i < words; i++)
		used[i] = get64(bms + 8 * i);
	for (uint64_t i = 0, w = 0; sum && i < l->h.nsegs; w += seg_used_words(cls[i]), i++) {
		uint32_t n = seg_used_words(cls[i]), pop = 0;
		for (uint32_t k = 0; k < n; k++)
			pop += (uint32_t)__builtin_popcountll(used[w + k]);
		if (strata_crc32c(0, bms + 8 * w, (size_t)n * 8) != sum[i].crc || pop != sum[i].used)
			return LOAD_BAD(l, "segment %" PRIu64 ": used-slot words fail their CRC or count", i);
	}
	return 0;
}

/* Segment classes and used-slot bitmaps: the allocator as of C. */
static int load_allocator(ck_load *l, const uint8_t *segs, const uint8_t *bms)
{
	uint64_t words = 0;
	uint8_t *cls = strata_mem_alloc(l->h.nsegs + 1);
	seg_summary *sum = l->h.version >= 3 ? strata_mem_alloc(sizeof *sum * (l->h.nsegs + 1)) : NULL;
	if (!cls || (l->h.version >= 3 && !sum)) {
		strata_mem_free(cls, 0);
		strata_mem_free(sum, 0);
		return STRATA_ENOMEM;
	}
	int rc = decode_segments(l, segs, cls, sum, &words);
	if (!rc && words * 8 != l->h.sec[SEC_BITMAPS].len)
		rc = LOAD_BAD(l, "bitmap section of %" PRIu64 " bytes for %" PRIu64 " words",
			      l->h.sec[SEC_BITMAPS].len, words);
	/* Little-endian and aligned (the section starts 8-aligned in the
	 * file, and maps page-aligned): the words are usable as they are. */
	bool direct = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && (uintptr_t)bms % 8 == 0;
	uint64_t *used = direct || rc ? NULL : strata_mem_alloc(words * 8 + 8);
	if (!rc && !direct && !used)
		rc = STRATA_ENOMEM;
	if (!rc && !direct)
		rc = copy_words(l, bms, cls, sum, words, used);
	/* Mapped words can wait for lazily built headers (segment.c, "Open"). */
	if (!rc)
		rc = seg_load_segments(&l->s->seg, cls, l->h.nsegs, direct ? (const uint64_t *)bms : used,
				       direct ? sum : NULL, direct);
	strata_mem_free(used, 0);
	strata_mem_free(cls, 0);
	strata_mem_free(sum, 0);
	if (rc == STRATA_ECORRUPT && !l->why[0])
		return LOAD_BAD(l, "used-slot bitmaps invalid");
	for (unsigned c = 0; !rc && c < STRATA_NUM_CLASSES; c++)
		seg_load_requested(&l->s->seg, c, l->h.requested[c]);
	return rc;
}

/* A 48-byte chunk-index record (FORMAT.md, "Chunks section"). */
static ot_lazy chunk_rec_decode(const uint8_t *r)
{
	return (ot_lazy){.off = get64(r + 8), .crc = get32(r + 16), .nrec = get32(r + 4),
			 .nfree = get32(r + 20), .nlive = get32(r + 24), .nlarge = get32(r + 28),
			 .large_bytes = get64(r + 32)};
}

/* Chunk index: every issued entry of every shard, chunk after chunk, in
 * one contiguous run of the entries section. */
static int load_chunks(ck_load *l, const uint8_t *b)
{
	const ck_section *ent = &l->h.sec[SEC_ENTRIES];
	uint64_t at = ent->off, want = 0, live = 0, large = 0, large_bytes = 0;
	uint32_t k = 0;
	for (uint32_t sh = 0; sh < OT_MAX_SHARDS; sh++)
		want += (l->h.next_index[sh] + (uint64_t)OT_CHUNK - 1) / OT_CHUNK;
	if (want != l->h.nchunks || (uint64_t)l->h.nchunks * CK_CHUNK_REC != l->h.sec[SEC_CHUNKS].len)
		return LOAD_BAD(l, "chunk index of %u chunks, %" PRIu64 " expected", l->h.nchunks, want);
	if (section_bounds(l, SEC_ENTRIES))
		return STRATA_ETRUNCATED;
	for (uint32_t sh = 0; sh < OT_MAX_SHARDS; sh++) {
		uint32_t n = l->h.next_index[sh];
		if (n && sh >= l->s->ot.shards_max)
			return LOAD_BAD(l, "shard %u used, but ot_shards_max is %u", sh, l->s->ot.shards_max);
		l->d->ci_first[sh] = k;
		l->d->ci_n[sh] = (uint32_t)((n + (uint64_t)OT_CHUNK - 1) / OT_CHUNK);
		for (uint32_t base = 0; base < n; base += OT_CHUNK, k++) {
			const uint8_t *r = b + (size_t)k * CK_CHUNK_REC;
			ot_lazy src = chunk_rec_decode(r);
			uint32_t nrec = n - base < OT_CHUNK ? n - base : OT_CHUNK;
			if (get32(r) != (sh << OT_DIR_BITS | base >> OT_CHUNK_BITS) || src.nrec != nrec ||
			    src.off != at || src.nfree + src.nlive != nrec || src.nlarge > src.nlive ||
			    src.large_bytes > (uint64_t)src.nlarge * STRATA_NODE_MAX)
				return LOAD_BAD(l, "chunk index entry %u does not match shard %u at %u", k, sh, base);
			live += src.nlive;
			large += src.nlarge;
			large_bytes += src.large_bytes;
			at += (uint64_t)nrec * CK_ENTRY;
			int rc = ot_set_lazy(&l->s->ot, sh, base >> OT_CHUNK_BITS, src.nfree > 0);
			if (rc)
				return rc;
		}
		if (n && ot_extend(&l->s->ot, sh, n))
			return STRATA_ENOMEM;
	}
	if (live != l->h.nodes_live || large != l->h.large_objects || large_bytes != l->h.large_bytes)
		return LOAD_BAD(l, "header counts do not match the chunk index");
	return at == ent->off + ent->len ? 0 : LOAD_BAD(l, "entries section length does not match its chunks");
}

static int load_roots(ck_load *l, const uint8_t *b)
{
	uint64_t at = 0, len = l->h.sec[SEC_ROOTS].len;
	for (uint32_t i = 0; i < l->h.nroots; i++) {
		uint16_t nl;
		if (at + 2 > len)
			return STRATA_ECORRUPT;
		memcpy(&nl, b + at, 2);
		if (!nl || nl > STRATA_ROOT_NAME_MAX || at + 2 + nl + 8 > len || memchr(b + at + 2, 0, nl))
			return STRATA_ECORRUPT;
		root *r;
		int rc = catalog_get_or_create(&l->s->cat, (const char *)b + at + 2, nl, &r);
		strata_node_id id = get64(b + at + 2 + nl);
		if (!rc)
			rc = root_publish(r, l->h.epoch, id);
		if (rc)
			return rc;
		at += 2u + nl + 8;
	}
	return at == len ? 0 : STRATA_ECORRUPT;
}

static int load_body(ck_load *l)
{
	uint8_t *roots = NULL;
	const uint8_t *bms = NULL, *segs = NULL, *chunks = NULL;
	int rc = map_section(l, SEC_SEGMENTS, true, &segs);
	if (!rc)
		rc = map_section(l, SEC_BITMAPS, l->h.version < 3, &bms);
	if (!rc)
		rc = load_allocator(l, segs, bms);
	if (!rc)
		rc = section_bounds(l, SEC_LARGE);
	if (!rc)
		rc = map_section(l, SEC_CHUNKS, true, &chunks);
	if (!rc)
		rc = load_chunks(l, chunks);
	if (!rc)
		rc = read_section(l, SEC_ROOTS, &roots);
	if (!rc)
		rc = load_roots(l, roots);
	if (!rc) {
		atomic_store(&l->s->nodes_live, l->h.nodes_live);
		atomic_store(&l->s->seg.large_objects, l->h.large_objects);
		atomic_store(&l->s->seg.large_bytes, l->h.large_bytes);
	}
	if (!rc && bms && atomic_load(&l->s->seg.lazy_left)) { /* read until ckpt_drop_bitmaps */
		l->d->lazy_bm = bms;
		l->d->lazy_bm_len = l->h.sec[SEC_BITMAPS].len;
	} else if (bms) {
		io_unmap(l->f, bms, l->h.sec[SEC_BITMAPS].len);
	}
	if (segs)
		io_unmap(l->f, segs, l->h.sec[SEC_SEGMENTS].len);
	if (!rc && chunks) { /* lazy chunks are described from it (ckpt_describe_chunk) */
		l->d->ckpt_ci = chunks;
		l->d->ckpt_ci_len = l->h.sec[SEC_CHUNKS].len;
	} else if (chunks) {
		io_unmap(l->f, chunks, l->h.sec[SEC_CHUNKS].len);
	}
	strata_mem_free(roots, 0);
	return rc;
}

int ckpt_load(strata_store *s, const sb_state *sb)
{
	durable *d = s->dur;
	ck_load l = {.s = s, .d = d};
	char path[4096];
	snprintf(path, sizeof path, "%s/ckpt.%016" PRIx64, d->dir, sb->ckpt_gen);
	int rc = io_open(d->env, path, IO_RDONLY, &l.f);
	if (rc)
		return load_fail(rc == -ENOENT ? STRATA_ECORRUPT : rc, "checkpoint named by the superblock is missing", d->dir, sb->ckpt_gen);
	uint8_t *hb = strata_mem_alloc(CK_HDR);
	if (!hb)
		rc = STRATA_ENOMEM;
	if (!rc && !(rc = io_size(l.f, &l.size)) && l.size < CK_HDR)
		rc = STRATA_ETRUNCATED;
	if (!rc)
		rc = io_pread(l.f, hb, CK_HDR, 0);
	if (!rc)
		rc = header_decode(hb, &l.h);
	if (!rc && (get32(hb + CK_HDR - 4) != sb->ckpt_crc || l.h.gen != sb->ckpt_gen ||
		    l.h.epoch != sb->ckpt_epoch || memcmp(l.h.uuid, sb->uuid, 16)))
		rc = LOAD_BAD(&l, "not the checkpoint the superblock names");
	if (!rc && l.size != sb->ckpt_size)
		rc = l.size < sb->ckpt_size ? STRATA_ETRUNCATED
					    : LOAD_BAD(&l, "size %" PRIu64 ", superblock says %" PRIu64,
						       l.size, sb->ckpt_size);
	strata_mem_free(hb, CK_HDR);
	if (!rc)
		rc = load_body(&l);
	if (rc) {
		io_close(l.f);
		return load_fail(rc, l.why[0] ? l.why : "cannot load checkpoint", d->dir, sb->ckpt_gen);
	}
	d->ckpt = l.f; /* chunks and large objects on disk are read from it */
	d->ckpt_large_off = l.h.sec[SEC_LARGE].off;
	d->ckpt_size = l.size;
	d->ckpt_file_epoch = l.h.epoch;
	s->ot.fault = ckpt_fault_chunk;
	s->ot.describe = ckpt_describe_chunk;
	s->ot.fault_ctx = s;
	return 0;
}

/* ---- faulting a chunk in ------------------------------------------------------ */
typedef struct fault_ctx {
	strata_store *s;
	durable *d;
	uint32_t slot;
} fault_ctx;

#define FAULT_BAD(f, i, what)                                                                  \
	(store_set_error("%s/ckpt: object-table chunk %u/%u, entry %u: %s", (f)->d->dir,        \
			 (f)->slot >> OT_DIR_BITS, (f)->slot & (OT_DIR - 1), (i), (what)),       \
	 STRATA_ECORRUPT)

/* A large image of a chunk read while a checkpoint copies: into memory now,
 * so nothing points into the file that checkpoint replaces. */
static int load_large_now(fault_ctx *f, strata_node_id id, uint64_t at, uint32_t size, uint32_t crc,
			  uint64_t *mem)
{
	void *p = strata_mem_alloc(size);
	if (!p)
		return STRATA_ENOMEM;
	int rc = io_pread(f->d->ckpt, p, size, at);
	if (!rc && strata_crc32c(0, p, size) != crc)
		rc = STRATA_ECORRUPT;
	if (rc) {
		strata_mem_free(p, size);
		store_set_error("node %#" PRIx64 ": large image %s", id,
				rc == STRATA_ECORRUPT ? "fails its checksum" : "unreadable");
		return rc == STRATA_ETRUNCATED ? STRATA_ECORRUPT : rc;
	}
	*mem = (uint64_t)(uintptr_t)p;
	return 0;
}

static int fault_live(fault_ctx *f, uint32_t i, strata_node_id id, const uint8_t *rec, ot_entry *e)
{
	uint64_t loc = get64(rec), birth = get64(rec + 8);
	uint32_t info = get32(rec + 20), size = OT_INFO_SIZE(info), crc = get32(rec + 24);
	/* Tags start at 1 (a live entry 0/0 of tag 0 would be NodeID 0, the
	 * empty root), as WAL replay requires of NODE frames too. */
	if (!size || birth == 0 || birth > f->d->ckpt_file_epoch || !STRATA_NODEID_TAG(id))
		return FAULT_BAD(f, i, "size, birth or tag out of range");
	uint64_t mem;
	if (seg_class_of(size) == STRATA_CLASS_LARGE) {
		uint64_t lg_len = f->d->ckpt_size - f->d->ckpt_large_off; /* the large section ends the file */
		if (loc > lg_len || size > lg_len - loc)
			return FAULT_BAD(f, i, "large image outside its section");
		mem = ((f->d->ckpt_large_off + loc) << 1) | LAZY_BIT;
		if (f->d->ckpt_copying) {
			int rc = load_large_now(f, id, f->d->ckpt_large_off + loc, size, crc, &mem);
			if (rc)
				return rc;
		}
	} else {
		void *p = seg_slot_at(&f->s->seg, (uint32_t)(loc >> SEG_SHIFT),
				      (uint32_t)(loc & (SEG_SIZE - 1)), size);
		if (!p && seg_is_bad(&f->s->seg, (uint32_t)(loc >> SEG_SHIFT)))
			return FAULT_BAD(f, i, "its segment's used-slot words in the checkpoint fail their CRC or count");
		if (!p)
			return FAULT_BAD(f, i, "slot not allocated, or not of its class");
		mem = (uint64_t)(uintptr_t)p | LAZY_BIT;
	}
	atomic_store_explicit(&e->loc, mem, memory_order_relaxed);
	ot_stamp_init(e, birth, EPOCH_INF, crc, memory_order_relaxed);
	atomic_store_explicit(&e->info, info, memory_order_relaxed);
	return 0;
}

int ckpt_describe_chunk(void *ctx, uint32_t shard, uint32_t chunk, ot_lazy *out)
{
	durable *d = ((strata_store *)ctx)->dur;
	if (!d->ckpt_ci || shard >= OT_MAX_SHARDS || chunk >= d->ci_n[shard]) {
		store_set_error("%s/ckpt: object-table chunk %u/%u has no record", d->dir, shard, chunk);
		return STRATA_ECORRUPT;
	}
	const uint8_t *r = d->ckpt_ci + (size_t)(d->ci_first[shard] + chunk) * CK_CHUNK_REC;
	*out = chunk_rec_decode(r);
	return 0;
}

int ckpt_fault_chunk(void *ctx, uint32_t shard, uint32_t chunk, const ot_lazy *src, ot_entry *out)
{
	strata_store *s = ctx;
	fault_ctx f = {.s = s, .d = s->dur, .slot = shard << OT_DIR_BITS | chunk};
	size_t len = (size_t)src->nrec * CK_ENTRY;
	uint8_t *buf = strata_mem_alloc(len ? len : 1);
	if (!buf)
		return STRATA_ENOMEM;
	int rc = io_pread(f.d->ckpt, buf, len, src->off);
	if (rc == STRATA_ETRUNCATED || (!rc && strata_crc32c(0, buf, len) != src->crc)) {
		store_set_error("%s/ckpt: object-table chunk %u/%u fails its checksum", f.d->dir, shard,
				chunk);
		rc = STRATA_ECORRUPT;
	}
	uint64_t live = 0, large = 0, large_bytes = 0;
	for (uint32_t i = 0; !rc && i < src->nrec; i++) {
		const uint8_t *rec = buf + (size_t)i * CK_ENTRY;
		uint32_t meta = get32(rec + 16), size = OT_INFO_SIZE(get32(rec + 20));
		uint32_t index = chunk << OT_CHUNK_BITS | i;
		if (OT_META_STATE(meta) == OT_LIVE) {
			rc = fault_live(&f, i, ot_make_id(shard, index, OT_META_TAG(meta)), rec, &out[i]);
			live++;
			if (seg_class_of(size) == STRATA_CLASS_LARGE) {
				large++;
				large_bytes += size;
			}
		} else if (OT_META_STATE(meta) != OT_FREE) {
			rc = FAULT_BAD(&f, i, "state neither live nor free");
		}
		atomic_store_explicit(&out[i].meta, meta, memory_order_relaxed);
	}
	/* The counts the open took from the index must be these. */
	if (!rc && (live != src->nlive || large != src->nlarge || large_bytes != src->large_bytes))
		rc = FAULT_BAD(&f, src->nrec, "its entries do not match the chunk index's counts");
	strata_mem_free(buf, len ? len : 1);
	return rc;
}
