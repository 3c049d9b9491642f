/*
 * checkpoint.c — checkpoint files: the object table, root catalog and
 * allocator state as of one pinned epoch C (layout in design/FORMAT.md).
 *
 * Writing (ckpt_write, under the checkpoint lock, with C pinned):
 *   1. every node visible at C and born after the previous checkpoint is
 *      written to its slot in `data`; then `data` is synced;
 *   2. the checkpoint file: header placeholder, entries, segment classes,
 *      roots, large-object images; synced; its name made durable; then the
 *      header with every section's CRC, synced again.
 * The caller then flips the superblock. Nothing of a checkpoint is used
 * before the superblock names it, so a crash at any point leaves the
 * previous checkpoint in force (limbo keeps its slots intact).
 *
 * Loading (ckpt_load, at open, single-threaded): every CRC is checked
 * before a field is used; entries become object-table entries whose images
 * load lazily (LAZY_BIT) on first resolve.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "crc32c.h"
#include "durable.h"
#include "le.h"

#define CK_MAGIC 0x43505553u /* "SUPC" */
#define CK_VERSION 1u
#define CK_HDR 4096u
#define CK_ENTRY 32u
enum { SEC_ENTRIES, SEC_SEGMENTS, SEC_ROOTS, SEC_LARGE, NSEC };

typedef struct ck_section {
	uint64_t off, len;
	uint32_t crc;
} ck_section;

typedef struct ck_header {
	uint8_t uuid[16];
	uint64_t gen, epoch, wal_lsn;
	uint32_t nsegs, nroots;
	ck_section sec[NSEC];
	uint32_t next_index[OT_MAX_SHARDS];
} ck_header;


static void header_encode(const ck_header *h, uint8_t *b)
{
	memset(b, 0, CK_HDR);
	put32(b, CK_MAGIC);
	put32(b + 4, CK_VERSION | (CK_HDR << 16)); /* u16 version, u16 header size */
	memcpy(b + 8, h->uuid, 16);
	put64(b + 24, h->gen);
	put64(b + 32, h->epoch);
	put64(b + 40, h->wal_lsn);
	put32(b + 48, h->nsegs);
	put32(b + 52, h->nroots);
	for (int i = 0; i < NSEC; i++) {
		put64(b + 56 + 24 * i, h->sec[i].off);
		put64(b + 64 + 24 * i, h->sec[i].len);
		put32(b + 72 + 24 * i, h->sec[i].crc);
	}
	for (int i = 0; i < OT_MAX_SHARDS; i++)
		put32(b + 152 + 4 * i, h->next_index[i]);
	put32(b + CK_HDR - 4, strata_crc32c(0, b, CK_HDR - 4));
}

static int header_decode(const uint8_t *b, ck_header *h)
{
	if (get32(b) != CK_MAGIC || get32(b + 4) >> 16 != CK_HDR)
		return STRATA_EFORMAT;
	if (strata_crc32c(0, b, CK_HDR - 4) != get32(b + CK_HDR - 4))
		return STRATA_ECORRUPT;
	if ((get32(b + 4) & 0xffff) != CK_VERSION)
		return STRATA_EFORMAT;
	memcpy(h->uuid, b + 8, 16);
	h->gen = get64(b + 24);
	h->epoch = get64(b + 32);
	h->wal_lsn = get64(b + 40);
	h->nsegs = get32(b + 48);
	h->nroots = get32(b + 52);
	for (int i = 0; i < NSEC; i++) {
		h->sec[i].off = get64(b + 56 + 24 * i);
		h->sec[i].len = get64(b + 64 + 24 * i);
		h->sec[i].crc = get32(b + 72 + 24 * i);
	}
	for (int i = 0; i < OT_MAX_SHARDS; i++)
		h->next_index[i] = get32(b + 152 + 4 * i);
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
	uint32_t meta, info;
	uint64_t birth, loc;
	bool visible;
} ck_entry_view;

static ck_entry_view view_at(ot_entry *e, uint64_t C)
{
	ck_entry_view v;
	v.meta = atomic_load_explicit(&e->meta, memory_order_acquire);
	uint64_t r = atomic_load_explicit(&e->retire, memory_order_acquire);
	v.birth = atomic_load_explicit(&e->birth, memory_order_acquire);
	v.info = atomic_load_explicit(&e->info, memory_order_relaxed);
	v.loc = atomic_load_explicit(&e->loc, memory_order_acquire);
	v.visible = OT_META_STATE(v.meta) != OT_FREE && v.birth <= C && C < r;
	return v;
}

typedef struct ck_ctx {
	strata_store *s;
	durable *d;
	uint64_t C, prev;
	bwriter w;
	strata_node_id *large; /* visible large nodes, written after the entries */
	size_t nlarge, large_cap;
	uint64_t large_off; /* offset in the large section of the next image */
} ck_ctx;

static int large_push(ck_ctx *c, strata_node_id id)
{
	if (c->nlarge == c->large_cap) {
		size_t cap = c->large_cap ? c->large_cap * 2 : 64;
		strata_node_id *p = strata_mem_realloc(c->large, c->large_cap * sizeof *p, cap * sizeof *p);
		if (!p)
			return STRATA_ENOMEM;
		c->large = p;
		c->large_cap = cap;
	}
	c->large[c->nlarge++] = id;
	return 0;
}

/* A large node: its image goes to the large section after the entries;
 * loaded (if it still is lazy) and checksummed now, so its entry is final. */
static int large_image(ck_ctx *c, strata_node_id id, uint32_t size, uint32_t *crc)
{
	const void *p;
	ot_entry *e = ot_entry_of(&c->s->ot, id);
	int rc = e ? durable_load(c->s, e, id, &p) : STRATA_ECORRUPT;
	uint32_t *cell = rc ? NULL : durable_crc_cell(c->d, id, true);
	if (rc || !cell)
		return rc ? rc : STRATA_ENOMEM;
	*crc = *cell = strata_crc32c(0, p, size);
	return large_push(c, id);
}

/* A small node born since the previous checkpoint: its image goes to its
 * slot in `data`, and its CRC into the entry's cell. */
static int write_image(ck_ctx *c, strata_node_id id, const ck_entry_view *v, uint32_t *crc)
{
	uint32_t *cell = durable_crc_cell(c->d, id, true);
	if (!cell)
		return STRATA_ENOMEM;
	const void *p = (const void *)(uintptr_t)(v->loc & ~LAZY_BIT);
	if (v->birth > c->prev) {
		uint32_t size = OT_INFO_SIZE(v->info);
		*cell = strata_crc32c(0, p, size);
		uint64_t at = (uint64_t)seg_no_of(p) * SEG_SIZE + seg_offset_of(p);
		int rc = io_pwrite(c->d->data, p, size, at);
		if (rc)
			return rc;
	}
	*crc = *cell;
	return 0;
}

static int put_entry(ck_ctx *c, uint32_t shard, uint32_t idx)
{
	uint8_t rec[CK_ENTRY] = {0};
	ot_entry *e = ot_entry_at(&c->s->ot, shard, idx);
	ck_entry_view v = view_at(e, c->C);
	strata_node_id id = ot_make_id(shard, idx, OT_META_TAG(v.meta));
	put32(rec + 16, OT_META(OT_META_TAG(v.meta), v.visible ? OT_LIVE : OT_FREE));
	if (v.visible) {
		uint32_t size = OT_INFO_SIZE(v.info), crc = 0;
		int rc;
		if (seg_class_of(size) == STRATA_CLASS_LARGE) {
			put64(rec, c->large_off); /* images follow in this order */
			c->large_off += (size + 7) & ~7u;
			rc = large_image(c, id, size, &crc);
		} else {
			const void *p = (const void *)(uintptr_t)(v.loc & ~LAZY_BIT);
			put64(rec, (uint64_t)seg_no_of(p) << SEG_SHIFT | seg_offset_of(p));
			rc = write_image(c, id, &v, &crc);
		}
		if (rc)
			return rc;
		put64(rec + 8, v.birth);
		put32(rec + 20, v.info);
		put32(rec + 24, crc);
	}
	bw_put(&c->w, rec, sizeof rec);
	return c->w.rc;
}

static int put_entries(ck_ctx *c, ck_header *h)
{
	bw_section(&c->w, &h->sec[SEC_ENTRIES]);
	for (uint32_t sh = 0; sh < OT_MAX_SHARDS; sh++) {
		if (sh >= c->s->ot.shards_max) {
			h->next_index[sh] = 0;
			continue;
		}
		ot_shard *shard = &c->s->ot.shards[sh];
		pthread_mutex_lock(&shard->lock);
		uint32_t n = shard->next_index;
		pthread_mutex_unlock(&shard->lock);
		h->next_index[sh] = n;
		for (uint32_t i = 0; i < n; i++) {
			int rc = put_entry(c, sh, i);
			if (rc)
				return rc;
		}
	}
	bw_end_section(&c->w, &h->sec[SEC_ENTRIES]);
	return 0;
}

static void put_segments(ck_ctx *c, ck_header *h)
{
	bw_section(&c->w, &h->sec[SEC_SEGMENTS]);
	h->nsegs = atomic_load(&c->s->seg.nsegs);
	for (uint32_t i = 0; i < h->nsegs; i++) {
		uint8_t cls = seg_class_at(&c->s->seg, i);
		bw_put(&c->w, &cls, 1);
	}
	bw_end_section(&c->w, &h->sec[SEC_SEGMENTS]);
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

static int put_large(ck_ctx *c, ck_header *h)
{
	static const uint8_t pad[8];
	bw_section(&c->w, &h->sec[SEC_LARGE]);
	for (size_t i = 0; i < c->nlarge && !c->w.rc; i++) {
		ot_entry *e = ot_entry_of(&c->s->ot, c->large[i]);
		const void *p;
		int rc = e ? durable_load(c->s, e, c->large[i], &p) : STRATA_ECORRUPT;
		if (rc)
			return rc;
		uint32_t size = OT_INFO_SIZE(atomic_load(&e->info));
		bw_put(&c->w, p, size);
		bw_put(&c->w, pad, ((size + 7) & ~7u) - size);
	}
	bw_end_section(&c->w, &h->sec[SEC_LARGE]);
	return c->w.rc;
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

static int write_body(ck_ctx *c, ck_header *h)
{
	int rc;
	c->w.off = CK_HDR;
	if ((rc = put_entries(c, h)))
		return rc;
	put_segments(c, h);
	put_roots(c, h);
	if ((rc = put_large(c, h)))
		return rc;
	bw_flush(&c->w);
	return c->w.rc ? c->w.rc : io_sync(c->d->data);
}

int ckpt_write(strata_store *s, uint64_t gen, uint64_t epoch, uint64_t wal_lsn, uint64_t prev_epoch,
	       ckpt_written *out)
{
	durable *d = s->dur;
	ck_ctx c = {.s = s, .d = d, .C = epoch, .prev = prev_epoch};
	ck_header h = {.gen = gen, .epoch = epoch, .wal_lsn = wal_lsn};
	memcpy(h.uuid, d->sb.uuid, 16);
	c.w.cap = 1u << 20;
	if (!(c.w.buf = strata_mem_alloc(c.w.cap)))
		return STRATA_ENOMEM;
	int rc = open_ckpt_file(d, gen, &c.w.f);
	if (!rc)
		rc = write_body(&c, &h);
	uint8_t *hb = c.w.buf; /* reuse: the body is written */
	if (!rc) {
		header_encode(&h, hb);
		rc = io_pwrite(c.w.f, hb, CK_HDR, 0);
	}
	if (!rc && !(rc = io_sync(c.w.f)))
		rc = io_sync_dir(d->env, d->dir);
	if (!rc) {
		out->size = c.w.off;
		out->header_crc = get32(hb + CK_HDR - 4);
	}
	io_close(c.w.f);
	strata_mem_free(c.w.buf, c.w.cap);
	strata_mem_free(c.large, c.large_cap * sizeof *c.large);
	return rc;
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

/* Reads a whole section and checks its CRC (large: not read here). */
static int read_section(ck_load *l, int i, uint8_t **out)
{
	const ck_section *sec = &l->h.sec[i];
	if (sec->off < CK_HDR || sec->off > l->size || sec->len > l->size - sec->off)
		return STRATA_ETRUNCATED;
	*out = strata_mem_alloc(sec->len ? sec->len : 1);
	if (!*out)
		return STRATA_ENOMEM;
	int rc = sec->len ? io_pread(l->f, *out, sec->len, sec->off) : 0;
	if (!rc && strata_crc32c(0, *out, sec->len) != sec->crc)
		rc = LOAD_BAD(l, "section %d (offset %" PRIu64 ") fails its checksum", i, sec->off);
	if (rc) {
		strata_mem_free(*out, sec->len ? sec->len : 1);
		*out = NULL;
	}
	return rc;
}

/* One live entry of the image: its slot (small: claimed in the allocator;
 * large: an offset in the checkpoint file), lazily loaded later. */
static int load_live(ck_load *l, strata_node_id id, ot_entry *e, const uint8_t *rec)
{
	uint64_t loc = get64(rec), birth = get64(rec + 8);
	uint32_t info = get32(rec + 20), size = OT_INFO_SIZE(info);
	/* Tags start at 1 (a live entry 0/0 of tag 0 would be NodeID 0, the
	 * empty root), as WAL replay requires of NODE frames too. */
	if (!size || birth > l->h.epoch || birth == 0 || !STRATA_NODEID_TAG(id))
		return LOAD_BAD(l, "node %#" PRIx64 ": size %u, birth %" PRIu64, id, size, birth);
	uint64_t mem;
	if (seg_class_of(size) == STRATA_CLASS_LARGE) {
		const ck_section *lg = &l->h.sec[SEC_LARGE];
		if (loc > lg->len || size > lg->len - loc)
			return LOAD_BAD(l, "node %#" PRIx64 ": large image outside its section", id);
		mem = ((lg->off + loc) << 1) | LAZY_BIT;
		atomic_fetch_add(&l->s->seg.large_objects, 1);
		atomic_fetch_add(&l->s->seg.large_bytes, size);
	} else {
		void *p = seg_claim_slot(&l->s->seg, (uint32_t)(loc >> SEG_SHIFT),
					 (uint32_t)(loc & (SEG_SIZE - 1)), size);
		if (!p) /* no such slot, or two nodes in one */
			return LOAD_BAD(l, "node %#" PRIx64 ": slot %" PRIu64 ":%" PRIu64 " not free or not of its class",
					id, loc >> SEG_SHIFT, loc & (SEG_SIZE - 1));
		mem = (uint64_t)(uintptr_t)p | LAZY_BIT;
	}
	uint32_t *cell = durable_crc_cell(l->d, id, true);
	if (!cell)
		return STRATA_ENOMEM;
	*cell = get32(rec + 24);
	atomic_store(&e->loc, mem);
	atomic_store(&e->birth, birth);
	atomic_store(&e->retire, EPOCH_INF);
	atomic_store(&e->info, info);
	atomic_fetch_add(&l->s->nodes_live, 1);
	return 0;
}

static int load_entries(ck_load *l, const uint8_t *ent)
{
	uint64_t at = 0, total = 0;
	for (uint32_t sh = 0; sh < OT_MAX_SHARDS; sh++)
		total += l->h.next_index[sh];
	/* Checked before the object table grows to the counts (up to 2^30
	 * entries per shard), not after. */
	if (total * CK_ENTRY != l->h.sec[SEC_ENTRIES].len)
		return LOAD_BAD(l, "entries section of %" PRIu64 " bytes for %" PRIu64 " entries",
				l->h.sec[SEC_ENTRIES].len, total);
	for (uint32_t sh = 0; sh < OT_MAX_SHARDS; sh++) {
		uint32_t n = l->h.next_index[sh];
		if (n && sh >= l->s->ot.shards_max)
			return LOAD_BAD(l, "shard %u used, but ot_shards_max is %u", sh, l->s->ot.shards_max);
		if (n && ot_extend(&l->s->ot, sh, n))
			return STRATA_ENOMEM;
		for (uint32_t i = 0; i < n; i++, at += CK_ENTRY) {
			if (at + CK_ENTRY > l->h.sec[SEC_ENTRIES].len)
				return LOAD_BAD(l, "entries section shorter than its shards' counts");
			const uint8_t *rec = ent + at;
			uint32_t meta = get32(rec + 16);
			ot_entry *e = ot_entry_at(&l->s->ot, sh, i);
			strata_node_id id = ot_make_id(sh, i, OT_META_TAG(meta));
			atomic_store(&e->meta, meta);
			if (OT_META_STATE(meta) == OT_LIVE) {
				int rc = load_live(l, id, e, rec);
				if (rc)
					return rc;
			} else if (OT_META_STATE(meta) != OT_FREE) {
				return LOAD_BAD(l, "entry %u/%u: state %u", sh, i, OT_META_STATE(meta));
			}
		}
	}
	return at == l->h.sec[SEC_ENTRIES].len ? 0 : LOAD_BAD(l, "entries section longer than its shards' counts");
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
	uint8_t *segs = NULL, *ent = NULL, *roots = NULL;
	int rc = read_section(l, SEC_SEGMENTS, &segs);
	if (!rc && l->h.sec[SEC_SEGMENTS].len != l->h.nsegs)
		rc = LOAD_BAD(l, "segment section length %" PRIu64 " for %u segments",
			      l->h.sec[SEC_SEGMENTS].len, l->h.nsegs);
	if (!rc && (rc = seg_load_segments(&l->s->seg, segs, l->h.nsegs)) == STRATA_ECORRUPT)
		rc = LOAD_BAD(l, "segment classes invalid");
	if (!rc)
		rc = read_section(l, SEC_ENTRIES, &ent);
	if (!rc)
		rc = load_entries(l, ent);
	if (!rc)
		rc = read_section(l, SEC_ROOTS, &roots);
	if (!rc)
		rc = load_roots(l, roots);
	strata_mem_free(segs, 0);
	strata_mem_free(ent, 0);
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
	d->ckpt = l.f; /* lazy large objects are read from it */
	return 0;
}
