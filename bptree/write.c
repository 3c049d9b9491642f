/*
 * write.c — B+tree writes inside a strata_txn: create, put, delete.
 *
 * A write first descends read-only and validates (so bad input leaves the
 * tree untouched), then copies the path meta -> top -> leaf on write and
 * repoints each parent at its child's new NodeID. The descent reads each
 * node with strata_txn_read_own: a node born in this transaction is
 * written in place through the pointer the read returned (no second
 * lookup); a committed one is claimed with strata_txn_rewrite and only its
 * used bytes are copied (header and slots, then the cells: not the free gap
 * between them). Subtree counts on the path change by the write's delta
 * (+1 insert, -1 delete).
 *
 * A new key (put_new) first claims everything it will write: the committed
 * path above the leaf, then the leaf's new version (and a split's right
 * half, allocated without zeroing), asking for the lines each will be
 * written to as it is claimed (those nodes are memory the cache has not
 * seen; the misses then overlap instead of coming one after another), and
 * only then copies. The leaf takes the key in place when the transaction
 * owns it, is copied with the key in one pass when it has room (no copy,
 * then memmove), and is split straight from the old version's bytes when
 * it has not: the cut from the cells' sizes, each half written with its
 * cells packed down from the node's end, runs of cells that lie back to
 * back copied by one memcpy, the separator put into the parent in place
 * when the parent has room.
 *
 * Everything else that overflows or falls under the fill bound (a
 * compaction, a split of a leaf top, deletes, value changes, the levels
 * above) goes through w_place, which rebuilds the level from an entry
 * list: split in two, or borrow from / merge with a sibling, and hands the
 * changed parent entry list to the level above, up to the top, which grows
 * a new level when it splits and collapses when a branch top keeps one
 * child. Node bytes are built into scratch buffers first when the entry
 * list points into the node being rebuilt; a leaf rebuilt for an insert is
 * instead claimed with strata_txn_rewrite, whose fresh node is built
 * straight from the old version's bytes, and a split's right half is
 * always built straight into its new node (allocated without zeroing: the
 * build writes every byte a reader or the checker looks at).
 */
#include <stddef.h>
#include <stdlib.h>

#include "bpt.h"

typedef struct bpt_w {
	strata_txn *txn;
	const char *name;
	strata_node_id meta_id;
	uint8_t *meta; /* writable: owned when read, else once w_cow ran */
	bpt_meta m;
	uint32_t ns, cap;
	bool found;
	/* Slow-path workspace (one allocation, made on first need). */
	void *ws;
	bpt_ent *ents[2]; /* entry lists of alternate levels */
	uint8_t *scratch[2];
	uint8_t *sep; /* one separator per level, key_max bytes each */
	/* The leaf's new version (a split's left half) and a split's right
	 * half, claimed and allocated before the path above is copied
	 * (put_new), and the old version's bytes. */
	strata_node_id lf_id, rt_id;
	uint8_t *lf, *rt;
	const uint8_t *lf_old;
	/* node[l] is not where level l's entry list points (the list came
	 * from the old version strata_txn_rewrite handed back): build into
	 * node[l] directly, no scratch copy. */
	bool direct[BPT_MAX_HEIGHT];
	/* Not zeroed by w_open (set for every level they are read at). The
	 * path, [0] = leaf; node[l] is writable iff own[l] (born in this
	 * transaction when read, or claimed since). */
	strata_node_id id[BPT_MAX_HEIGHT];
	uint8_t *node[BPT_MAX_HEIGHT];
	unsigned idx[BPT_MAX_HEIGHT];
	bool own[BPT_MAX_HEIGHT];
	/* Nodes w_cow_claim claimed (new NodeID, writable bytes) that
	 * w_cow_copy has yet to copy. */
	bool cl[BPT_MAX_HEIGHT];
	strata_node_id cl_id[BPT_MAX_HEIGHT];
	uint8_t *cl_p[BPT_MAX_HEIGHT];
} bpt_w;

static int w_open(bpt_w *w, strata_txn *txn, const char *name)
{
	memset(w, 0, offsetof(bpt_w, id)); /* the path arrays are set as read */
	if (!txn || !name)
		return STRATA_EINVAL;
	bpt_rd r = {.txn = txn};
	const uint8_t *mp = NULL;
	int own = 0;
	int rc = bpt_rd_meta_own(&r, name, &w->meta_id, &w->m, &mp, &own);
	if (rc == 0 && own)
		w->meta = (uint8_t *)mp;
	w->txn = txn;
	w->name = name;
	w->ns = w->m.node_size;
	w->cap = bpt_cap(w->ns);
	return rc;
}

static void w_close(bpt_w *w)
{
	free(w->ws);
}

static int w_ws(bpt_w *w)
{
	if (w->ws)
		return 0;
	/* Two nodes' worth of the smallest entries (1-byte key, no value). */
	size_t maxent = 2 * w->cap / (BPT_SLOT + BPT_LEAF_CELL + 1) + 4;
	size_t ents = maxent * sizeof(bpt_ent);
	uint8_t *p = malloc(2 * ents + 2 * (size_t)w->ns + (BPT_MAX_HEIGHT + 1) * w->m.key_max);
	if (!p)
		return STRATA_ENOMEM;
	w->ws = p;
	w->ents[0] = (bpt_ent *)p;
	w->ents[1] = (bpt_ent *)(p + ents);
	w->scratch[0] = p + 2 * ents;
	w->scratch[1] = w->scratch[0] + w->ns;
	w->sep = w->scratch[1] + w->ns;
	return 0;
}

static inline void prefetch_w(const void *p)
{
#if defined(__x86_64__) || defined(__i386__)
	__asm__ volatile("prefetchw %0" : : "m"(*(const char *)p));
#else
	__builtin_prefetch(p, 1);
#endif
}

static int w_descend(bpt_w *w, const uint8_t *key, size_t klen)
{
	bpt_rd r = {.txn = w->txn};
	strata_node_id id = w->m.top;
	for (int l = (int)w->m.height - 1; l >= 0; l--) {
		const uint8_t *n;
		int own;
		int rc = bpt_rd_tree_node_own(&r, &w->m, id, (unsigned)l, &n, &own);
		if (rc)
			return rc;
		w->id[l] = id;
		w->node[l] = (uint8_t *)n; /* written only if own[l] */
		w->own[l] = own;
		if (!own)
			/* copied whole when claimed: its misses now overlap
			 * each other and the search (line 0 is in: read) */
			n_prefetch_used(n, w->ns, 64);
		if (l > 0) {
			w->idx[l] = bpt_branch_search(n, key, klen);
			id = bc_child(br_cell(n, w->idx[l]));
		} else {
			w->idx[0] = bpt_leaf_search(n, key, klen, &w->found);
		}
	}
	return 0;
}

/* Points level l's parent (or the meta's top) at node[l]'s new NodeID. */
static void w_repoint(bpt_w *w, unsigned l, strata_node_id nid)
{
	if (l == w->m.height - 1)
		w->m.top = nid;
	else
		st64(w->node[l + 1] + n_slot(w->node[l + 1], w->idx[l + 1]), nid);
	w->id[l] = nid;
}

/* Asks for the lines [lo, hi) of d that are about to be written, with
 * write intent: a claimed or new node is memory the cache has not seen
 * (the allocator hands out slots all over the store), and stores that
 * miss one line after another would each wait for it. */
static void prefetch_range_w(uint8_t *d, uint32_t lo, uint32_t hi)
{
	for (uint32_t o = lo & ~63u; o < hi; o += 64)
		prefetch_w(d + o);
}

/* Makes the path from the top down to level `low` writable in two
 * phases, so a put can claim its leaf in between (put_new) and all the
 * misses of the copies overlap: w_cow_claim makes the meta writable and
 * claims each committed node with strata_txn_rewrite, asking for the lines
 * its copy will write; w_cow_copy copies the used bytes (header and
 * slots, then the cells: the gap between them stays as the allocator
 * handed it over; no reader looks there) and repoints the parents, from
 * the top down. Owned nodes are writable already. */
static int w_cow_claim(bpt_w *w, unsigned low)
{
	int rc;
	if (!w->meta) {
		void *p;
		strata_node_id nid;
		if ((rc = strata_txn_write(w->txn, w->meta_id, &nid, &p, NULL)))
			return rc;
		if (nid != w->meta_id && (rc = strata_txn_set_root(w->txn, w->name, nid)))
			return rc;
		w->meta_id = nid;
		w->meta = p;
	}
	for (int l = (int)w->m.height - 1; l >= (int)low; l--) {
		w->cl[l] = false;
		if (w->own[l])
			continue;
		void *p;
		const void *old;
		if ((rc = strata_txn_rewrite(w->txn, w->id[l], 0, &w->cl_id[l], &p, &old, NULL)))
			return rc;
		w->cl[l] = true;
		w->cl_p[l] = p;
		w->node[l] = (uint8_t *)old;
		prefetch_range_w(p, 0, BPT_HDR + BPT_SLOT * n_count(old));
		prefetch_range_w(p, n_heap(old), w->ns);
	}
	return 0;
}

static void w_cow_copy(bpt_w *w, unsigned low)
{
	for (int l = (int)w->m.height - 1; l >= (int)low; l--) {
		if (!w->cl[l])
			continue;
		bpt_copy_used(w->cl_p[l], w->node[l], w->ns);
		w_repoint(w, (unsigned)l, w->cl_id[l]);
		w->node[l] = w->cl_p[l];
		w->own[l] = true;
	}
}

static int w_cow(bpt_w *w, unsigned low)
{
	int rc = w_cow_claim(w, low);
	if (rc == 0)
		w_cow_copy(w, low);
	return rc;
}

static void w_delta(bpt_w *w, int d)
{
	for (unsigned l = 1; l < w->m.height; l++) {
		uint8_t *c = w->node[l] + n_slot(w->node[l], w->idx[l]);
		st64(c + 8, ld64(c + 8) + (uint64_t)(int64_t)d);
	}
	w->m.count += (uint64_t)(int64_t)d;
}

static unsigned kind_of(unsigned level)
{
	return level ? STRATA_BPT_KIND_BRANCH : STRATA_BPT_KIND_LEAF;
}

/* ---- restructuring ---------------------------------------------------------- */

static int w_place(bpt_w *w, unsigned l, bpt_ent *e, unsigned cnt, int arr);

/* Builds node[l] from e[0..cnt) (which fit): straight into it when the
 * list does not point into it, else through scratch. */
static void w_rewrite(bpt_w *w, unsigned l, const bpt_ent *e, unsigned cnt)
{
	if (w->direct[l]) {
		bpt_build(w->node[l], w->ns, kind_of(l), l, e, cnt);
		return;
	}
	bpt_build(w->scratch[0], w->ns, kind_of(l), l, e, cnt);
	memcpy(w->node[l], w->scratch[0], w->ns);
}

/* The separator between e[j-1] and e[j] kept in level l's arena slot:
 * the shortest one between two leaves, the right piece's first key
 * between two branches (its length returned, *sep set). */
static uint32_t w_sep(bpt_w *w, unsigned l, const bpt_ent *e, unsigned j, const uint8_t **sep)
{
	uint8_t *s = w->sep + (size_t)l * w->m.key_max;
	uint32_t slen = l ? e[j].klen
			  : bpt_sep_len(e[j - 1].key, e[j - 1].klen, e[j].key, e[j].klen);
	memcpy(s, e[j].key, slen);
	*sep = s;
	return slen;
}

/* Builds the two halves of a split: e[0..j) into node[l] (via w_rewrite),
 * e[j..cnt) straight into the new node rp, which nothing points into. */
static void w_halves(bpt_w *w, unsigned l, const bpt_ent *e, unsigned cnt, unsigned j, void *rp)
{
	bpt_build(rp, w->ns, kind_of(l), l, e + j, cnt - j);
	w_rewrite(w, l, e, j);
}

/* Builds e[0..j) and e[j..cnt) into the scratch buffers and keeps the
 * separator between them in level l's arena slot (*sep, returned length):
 * the shortest separator between two leaves, the right piece's first key
 * between two branches. */
static uint32_t w_pieces(bpt_w *w, unsigned l, const bpt_ent *e, unsigned cnt, unsigned j,
			 const uint8_t **sep)
{
	uint32_t slen = w_sep(w, l, e, j, sep);
	bpt_build(w->scratch[0], w->ns, kind_of(l), l, e, j);
	bpt_build(w->scratch[1], w->ns, kind_of(l), l, e + j, cnt - j);
	return slen;
}

/* Whether e fits into node n (a leaf, or a branch at a slot >= 1) in
 * place: the gap between slots and cells holds its footprint and its key
 * starts with the node's prefix (else the node is rebuilt with a shorter
 * one). */
static bool fits_in_place(const uint8_t *n, const bpt_ent *e, bool leaf)
{
	unsigned cnt = n_count(n), p = n_pfx(n);
	if (n_heap(n) - (BPT_HDR + BPT_SLOT * cnt) < ent_size(e, leaf))
		return false;
	if (!p)
		return true;
	const uint8_t *pk = leaf ? lc_key(leaf_cell(n, 0)) : bc_key(br_cell(n, 1));
	return e->klen >= p && memcmp(e->key, pk, p) == 0;
}

/* Inserts e at slot i of n, which fits_in_place said has room for it. */
static void insert_in_place(uint8_t *n, unsigned i, const bpt_ent *e, bool leaf)
{
	unsigned cnt = n_count(n);
	uint32_t heap = n_heap(n) - (ent_size(e, leaf) - BPT_SLOT);
	bpt_put_cell(n + heap, e, leaf);
	memmove(n + BPT_HDR + BPT_SLOT * (i + 1), n + BPT_HDR + BPT_SLOT * i, BPT_SLOT * (cnt - i));
	n_set_slot(n, i, heap, bpt_hint(e->key, e->klen, n_pfx(n)));
	st16(n + 4, (uint16_t)(cnt + 1));
	st16(n + 6, (uint16_t)heap);
}

/* Writes src (a node of ns bytes) with e inserted at slot i into dst in
 * one pass: header and slots with the new slot between, the cells, and
 * e's cell below them; the gap is not copied. fits_in_place(src, e) must
 * hold. */
static void copy_insert(uint8_t *dst, const uint8_t *src, uint32_t ns, unsigned i,
			const bpt_ent *e, bool leaf)
{
	unsigned cnt = n_count(src);
	uint32_t heap = n_heap(src), csz = ent_size(e, leaf) - BPT_SLOT;
	memcpy(dst, src, BPT_HDR + BPT_SLOT * i);
	memcpy(dst + BPT_HDR + BPT_SLOT * (i + 1), src + BPT_HDR + BPT_SLOT * i,
	       BPT_SLOT * (cnt - i));
	memcpy(dst + heap, src + heap, ns - heap);
	bpt_put_cell(dst + heap - csz, e, leaf);
	n_set_slot(dst, i, heap - csz, bpt_hint(e->key, e->klen, n_pfx(src)));
	st16(dst + 4, (uint16_t)(cnt + 1));
	st16(dst + 6, (uint16_t)(heap - csz));
}

static int w_parent_add(bpt_w *w, unsigned l, uint64_t c0, const bpt_ent *r, int arr);

/* node[l] (not the top) overflows: split it, and put the right half's
 * entry into the parent: in place when it fits (the common case: no
 * parent rebuild), else through the parent's entry list. */
static int w_split(bpt_w *w, unsigned l, bpt_ent *e, unsigned cnt, int arr)
{
	bool leaf = l == 0;
	unsigned j = bpt_best_cut(e, cnt, leaf, w->cap);
	if (!j)
		return STRATA_ECORRUPT;
	uint64_t c0 = bpt_ent_total(e, j, leaf), c1 = bpt_ent_total(e + j, cnt - j, leaf);
	const uint8_t *sep;
	uint32_t slen = w_sep(w, l, e, j, &sep);
	strata_node_id nid;
	void *p;
	int rc = strata_txn_alloc_uninit(w->txn, w->ns, (uint8_t)kind_of(l), &nid, &p);
	if (rc)
		return rc;
	w_halves(w, l, e, cnt, j, p);
	bpt_ent r = {.key = sep, .klen = slen, .child = nid, .count = c1};
	return w_parent_add(w, l, c0, &r, arr);
}

/* Puts the right half r of a split of node[l] into the parent, whose
 * entry for node[l] gets the left half's count c0: in place when it fits
 * (the common case: no parent rebuild), else through the parent's entry
 * list (ents[!arr]). */
static int w_parent_add(bpt_w *w, unsigned l, uint64_t c0, const bpt_ent *r, int arr)
{
	uint8_t *par = w->node[l + 1];
	unsigned pi = w->idx[l + 1], pc = n_count(par);
	if (fits_in_place(par, r, false)) {
		st64(par + n_slot(par, pi) + 8, c0); /* its child is node[l] already */
		insert_in_place(par, pi + 1, r, false);
		return 0;
	}
	int rc = w_ws(w);
	if (rc)
		return rc;
	bpt_ent *pe = w->ents[!arr];
	bpt_gather(par, pe);
	pe[pi].count = c0;
	memmove(pe + pi + 2, pe + pi + 1, (pc - pi - 1) * sizeof *pe);
	pe[pi + 1] = *r;
	return w_place(w, l + 1, pe, pc + 1, !arr);
}

/* ---- the leaf split, straight from the old bytes -------------------------------
 * The common split (a new key into a full leaf below the top) works on the
 * old version's slot array and cells instead of an entry list: one pass
 * reads every cell's size (for the cut), then each half is written with
 * its cells packed down from the node's end, cells that lie back to back
 * in the old node (all of them in a bulk-loaded or rebuilt node) copied by
 * one memcpy per run, and the old hints kept when the half's prefix is
 * the old one. The combined list is src's entries with e at ins. */
#define LEAF_ENT_MAX ((STRATA_BPT_NODE_MAX - BPT_HDR) / (BPT_SLOT + BPT_LEAF_CELL + 1) + 2)

static inline const uint8_t *comb_key(const uint8_t *src, unsigned ins, const bpt_ent *e,
				      unsigned c, uint32_t *klen)
{
	if (c == ins) {
		*klen = e->klen;
		return e->key;
	}
	const uint8_t *cell = leaf_cell(src, c - (c > ins));
	*klen = lc_klen(cell);
	return lc_key(cell);
}

/* Writes combined entries [a, b) (a < b) as a leaf into dst (ns bytes). */
static void leaf_emit(uint8_t *dst, uint32_t ns, const uint8_t *src, unsigned ins,
		      const bpt_ent *e, unsigned a, unsigned b)
{
	uint32_t fl, ll;
	const uint8_t *fk = comb_key(src, ins, e, a, &fl), *lk = comb_key(src, ins, e, b - 1, &ll);
	unsigned p = bpt_lcp(fk, fl, lk, ll), sp = n_pfx(src);
	bool same = p == sp;
	bpt_hdr_init(dst, STRATA_BPT_KIND_LEAF, 0);
	uint32_t heap = ns, run_lo = 0, run_len = 0;
	for (unsigned c = a; c < b; c++) {
		unsigned o = c - a;
		if (c == ins) {
			if (run_len)
				memcpy(dst + heap, src + run_lo, run_len);
			run_len = 0;
			heap -= ent_size(e, true) - BPT_SLOT;
			bpt_put_cell(dst + heap, e, true);
			n_set_slot(dst, o, heap, bpt_hint(e->key, e->klen, p));
			continue;
		}
		unsigned k = c - (c > ins);
		uint32_t off = n_slot(src, k);
		const uint8_t *cell = src + off;
		uint32_t s = lc_size(cell);
		heap -= s;
		if (run_len && off + s == run_lo) {
			run_lo = off;
			run_len += s;
		} else {
			if (run_len)
				memcpy(dst + heap + s, src + run_lo, run_len);
			run_lo = off;
			run_len = s;
		}
		n_set_slot(dst, o, heap,
			   same ? n_hint(src, k) : bpt_hint(lc_key(cell), lc_klen(cell), p));
	}
	if (run_len)
		memcpy(dst + heap, src + run_lo, run_len);
	st16(dst + 4, (uint16_t)(b - a));
	st16(dst + 6, (uint16_t)heap);
	st16(dst + 10, (uint16_t)p);
}

/* First half of a leaf split for the insert of e at idx[0] into node[0]
 * (below the top), decided from the header alone: returns 1 without
 * changing anything when the entries would fit one node after a
 * compaction (or are too many for the size array), else claims the leaf
 * (strata_txn_rewrite: the left half's node) and allocates the right
 * half's node, and asks for the lines both will be written to: their
 * slots and about half the cells each, below the node's end. */
static int leaf_split_prepare(bpt_w *w, const bpt_ent *e)
{
	const uint8_t *src = w->node[0];
	unsigned n = n_count(src) + 1;
	uint32_t total = n_used(src, w->ns) + ent_size(e, true);
	if (n > LEAF_ENT_MAX || total <= w->cap)
		return 1;
	void *lp, *rp;
	const void *old;
	int rc = strata_txn_rewrite(w->txn, w->id[0], 0, &w->lf_id, &lp, &old, NULL);
	if (rc || (rc = strata_txn_alloc_uninit(w->txn, w->ns, STRATA_BPT_KIND_LEAF, &w->rt_id, &rp)))
		return rc;
	w->lf = lp;
	w->rt = rp;
	w->lf_old = old;
	uint32_t slots = BPT_HDR + BPT_SLOT * (n / 2 + 2), cells = (total - BPT_SLOT * n) / 2 + 128;
	uint32_t lo = cells < w->ns ? w->ns - cells : 0;
	prefetch_range_w(w->lf, 0, slots);
	prefetch_range_w(w->lf, lo, w->ns);
	prefetch_range_w(w->rt, 0, slots);
	prefetch_range_w(w->rt, lo, w->ns);
	return 0;
}

/* Second half of the split leaf_split_prepare began (the parent is
 * writable now): the cut where the halves are closest in bytes (the one
 * bpt_best_cut makes), the two halves written from the old bytes, the
 * leaf repointed, and the separator (the shortest between the halves,
 * pointing into the right half's first key) put into the parent. */
static int leaf_split_finish(bpt_w *w, const bpt_ent *e)
{
	const uint8_t *src = w->lf_old;
	unsigned cnt = n_count(src), ins = w->idx[0], n = cnt + 1;
	uint16_t sz[LEAF_ENT_MAX];
	uint32_t total = 0;
	for (unsigned c = 0; c < n; c++) {
		uint32_t s = c == ins ? ent_size(e, true)
				      : BPT_SLOT + lc_size(leaf_cell(src, c - (c > ins)));
		sz[c] = (uint16_t)s;
		total += s;
	}
	unsigned j = 0;
	uint32_t left = 0, best = UINT32_MAX;
	for (unsigned c = 1; c < n; c++) {
		left += sz[c - 1];
		uint32_t right = total - left;
		if (left > w->cap)
			break;
		if (right > w->cap)
			continue;
		uint32_t d = left > right ? left - right : right - left;
		if (d < best) {
			best = d;
			j = c;
		}
	}
	if (!j)
		return STRATA_ECORRUPT;
	leaf_emit(w->rt, w->ns, src, ins, e, j, n);
	leaf_emit(w->lf, w->ns, src, ins, e, 0, j);
	w_repoint(w, 0, w->lf_id);
	w->node[0] = w->lf;
	w->own[0] = true;
	uint32_t al;
	const uint8_t *ak = comb_key(src, ins, e, j - 1, &al);
	const uint8_t *rc0 = leaf_cell(w->rt, 0);
	bpt_ent r = {.key = lc_key(rc0),
		     .klen = bpt_sep_len(ak, al, lc_key(rc0), lc_klen(rc0)),
		     .child = w->rt_id,
		     .count = n - j};
	return w_parent_add(w, 0, j, &r, 0);
}

/* The top overflows: split it and put a new branch above. */
static int w_grow(bpt_w *w, bpt_ent *e, unsigned cnt)
{
	unsigned l = w->m.height - 1;
	bool leaf = l == 0;
	unsigned j = bpt_best_cut(e, cnt, leaf, w->cap);
	if (!j)
		return STRATA_ECORRUPT;
	if (w->m.height >= BPT_MAX_HEIGHT)
		return STRATA_EFULL;
	uint64_t c0 = bpt_ent_total(e, j, leaf), c1 = bpt_ent_total(e + j, cnt - j, leaf);
	const uint8_t *sep;
	uint32_t slen = w_sep(w, l, e, j, &sep);
	strata_node_id rid, tid;
	void *rp, *tp;
	int rc = strata_txn_alloc_uninit(w->txn, w->ns, (uint8_t)kind_of(l), &rid, &rp);
	if (rc || (rc = strata_txn_alloc_uninit(w->txn, w->ns, STRATA_BPT_KIND_BRANCH, &tid, &tp)))
		return rc;
	w_halves(w, l, e, cnt, j, rp);
	bpt_ent t[2] = {{.child = w->id[l], .count = c0},
			{.key = sep, .klen = slen, .child = rid, .count = c1}};
	bpt_build(tp, w->ns, STRATA_BPT_KIND_BRANCH, l + 1, t, 2);
	w->m.top = tid;
	w->m.height++;
	return 0;
}

/* A branch top with one child hands the top to that child. */
static int w_collapse(bpt_w *w)
{
	bpt_rd r = {.txn = w->txn};
	while (w->m.height > 1) {
		const uint8_t *t;
		int rc = bpt_rd_tree_node(&r, &w->m, w->m.top, w->m.height - 1, &t);
		if (rc)
			return rc;
		if (n_count(t) != 1)
			break;
		strata_node_id child = bc_child(br_cell(t, 0));
		if ((rc = strata_txn_free(w->txn, w->m.top)))
			return rc;
		w->m.top = child;
		w->m.height--;
	}
	return 0;
}

/* Merges the combined list c (left ++ right, fits one node) into node[l];
 * the sibling at parent slot si is freed. a: the left one's parent slot. */
static int w_merge(bpt_w *w, unsigned l, const bpt_ent *c, unsigned cc, unsigned a,
		   strata_node_id sid, int arr)
{
	w_rewrite(w, l, c, cc);
	uint64_t total = bpt_ent_total(c, cc, l == 0);
	int rc = strata_txn_free(w->txn, sid);
	if (rc)
		return rc;
	uint8_t *par = w->node[l + 1];
	unsigned pc = n_count(par);
	bpt_ent *pe = w->ents[arr];
	bpt_gather(par, pe);
	pe[a].child = w->id[l];
	pe[a].count = total;
	memmove(pe + a + 1, pe + a + 2, (pc - a - 2) * sizeof *pe);
	w->idx[l + 1] = a;
	return w_place(w, l + 1, pe, pc - 1, arr);
}

/* Shares the combined list c between node[l] and its sibling sid (sn its
 * bytes, sown whether this transaction owns it). Both pieces are built in
 * scratch first, so the sibling is overwritten whole: in place when owned,
 * else claimed by strata_txn_rewrite (nothing copied). */
static int w_share(bpt_w *w, unsigned l, const bpt_ent *c, unsigned cc, unsigned a,
		   strata_node_id sid, const uint8_t *sn, bool sown, bool sib_left, int arr)
{
	bool leaf = l == 0;
	unsigned j = bpt_best_cut(c, cc, leaf, w->cap);
	if (!j)
		return STRATA_ECORRUPT;
	uint64_t c0 = bpt_ent_total(c, j, leaf), c1 = bpt_ent_total(c + j, cc - j, leaf);
	const uint8_t *sep;
	uint32_t slen = w_pieces(w, l, c, cc, j, &sep);
	strata_node_id nsid = sid;
	void *sp = (void *)(uintptr_t)sn;
	const void *old;
	int rc;
	if (!sown && (rc = strata_txn_rewrite(w->txn, sid, 0, &nsid, &sp, &old, NULL)))
		return rc;
	strata_node_id lid = sib_left ? nsid : w->id[l], rid = sib_left ? w->id[l] : nsid;
	memcpy(sib_left ? sp : w->node[l], w->scratch[0], w->ns);
	memcpy(sib_left ? w->node[l] : sp, w->scratch[1], w->ns);
	uint8_t *par = w->node[l + 1];
	bpt_ent *pe = w->ents[arr];
	bpt_gather(par, pe);
	pe[a].child = lid;
	pe[a].count = c0;
	pe[a + 1] = (bpt_ent){.key = sep, .klen = slen, .child = rid, .count = c1};
	return w_place(w, l + 1, pe, n_count(par), arr);
}

/* node[l] (not the top) fell under the fill bound: borrow from a
 * sibling, or merge with it when both fit one node. */
static int w_rebalance(bpt_w *w, unsigned l, bpt_ent *e, unsigned cnt, int arr)
{
	uint8_t *par = w->node[l + 1];
	unsigned pi = w->idx[l + 1], pc = n_count(par);
	if (pc < 2)
		return STRATA_ECORRUPT;
	unsigned si = pi > 0 ? pi - 1 : pi + 1, a = pi < si ? pi : si;
	strata_node_id sid = bc_child(br_cell(par, si));
	bpt_rd r = {.txn = w->txn};
	const uint8_t *sn;
	int sown;
	int rc = bpt_rd_tree_node_own(&r, &w->m, sid, l, &sn, &sown);
	if (rc)
		return rc;
	unsigned sc = n_count(sn), cc = sc + cnt;
	bpt_ent *c = w->ents[!arr];
	bool sib_left = si < pi;
	if (sib_left) {
		bpt_gather(sn, c);
		memcpy(c + sc, e, cnt * sizeof *e);
	} else {
		memcpy(c, e, cnt * sizeof *e);
		bpt_gather(sn, c + cnt);
	}
	if (l > 0) { /* the right node's lower bound comes down from the parent */
		const uint8_t *pcell = br_cell(par, a + 1);
		bpt_ent *rf = &c[sib_left ? sc : cnt];
		rf->key = bc_key(pcell);
		rf->klen = bc_klen(pcell);
	}
	if (bpt_list_size(c, cc, l == 0) <= w->cap)
		return w_merge(w, l, c, cc, a, sid, arr);
	return w_share(w, l, c, cc, a, sid, sn, sown, sib_left, arr);
}

/* Makes level l hold e[0..cnt): rewrite, split, rebalance, grow. e lives
 * in ents[arr]; the level above builds its list in the other array. */
static int w_place(bpt_w *w, unsigned l, bpt_ent *e, unsigned cnt, int arr)
{
	uint32_t total = bpt_list_size(e, cnt, l == 0);
	if (l == w->m.height - 1) {
		if (total > w->cap)
			return w_grow(w, e, cnt);
		w_rewrite(w, l, e, cnt);
		return l == 0 || cnt > 1 ? 0 : w_collapse(w);
	}
	if (total > w->cap)
		return w_split(w, l, e, cnt, arr);
	if (bpt_underfull(total, w->ns))
		return w_rebalance(w, l, e, cnt, arr);
	w_rewrite(w, l, e, cnt);
	return 0;
}

/* ---- leaf changes ------------------------------------------------------------ */

static void leaf_remove(uint8_t *n, unsigned i)
{
	unsigned cnt = n_count(n);
	uint32_t sz = lc_size(leaf_cell(n, i));
	memmove(n + BPT_HDR + BPT_SLOT * i, n + BPT_HDR + BPT_SLOT * (i + 1),
		BPT_SLOT * (cnt - i - 1));
	st16(n + 4, (uint16_t)(cnt - 1));
	st16(n + 8, (uint16_t)(n_garbage(n) + sz));
	if (cnt == 1)
		st16(n + 10, 0); /* no key left to hold the prefix */
}

/* Gathers leaf n's entries into ents[0], with e inserted at idx[0] if e
 * is not NULL; returns the count. */
static unsigned leaf_list(bpt_w *w, const uint8_t *n, const bpt_ent *e)
{
	unsigned i = w->idx[0], cnt = n_count(n);
	bpt_ent *el = w->ents[0];
	bpt_gather(n, el);
	if (e) {
		memmove(el + i + 1, el + i, (cnt - i) * sizeof *el);
		el[i] = *e;
		cnt++;
	}
	return cnt;
}

/* Rebuilds the (writable) leaf through w_place (compaction, split or
 * rebalance), inserting e at idx[0] on the way if e is not NULL. */
static int leaf_rebuild(bpt_w *w, const bpt_ent *e)
{
	int rc = w_ws(w);
	if (rc)
		return rc;
	return w_place(w, 0, w->ents[0], leaf_list(w, w->node[0], e), 0);
}

/* Inserts e into a leaf that has no room for it in place (split, or
 * compaction), before the leaf was made writable: strata_txn_rewrite
 * claims it without copying, and the new version (or a split's left half)
 * is built straight from the old bytes. The parent is writable. */
static int leaf_claim_insert(bpt_w *w, const bpt_ent *e)
{
	int rc = w_ws(w);
	if (rc)
		return rc;
	strata_node_id nid;
	void *p;
	const void *old;
	if ((rc = strata_txn_rewrite(w->txn, w->id[0], 0, &nid, &p, &old, NULL)))
		return rc;
	w_repoint(w, 0, nid);
	w->node[0] = p;
	w->direct[0] = true;
	return w_place(w, 0, w->ents[0], leaf_list(w, old, e), 0);
}

/* An insert of e into the committed leaf at idx[0], which has room for
 * it, begun before the path above is copied: the leaf is claimed
 * (strata_txn_rewrite) and the lines its copy with e will write asked
 * for; leaf_copy_finish writes it in one pass. */
static int leaf_copy_prepare(bpt_w *w, const bpt_ent *e)
{
	void *p;
	const void *old;
	int rc = strata_txn_rewrite(w->txn, w->id[0], 0, &w->lf_id, &p, &old, NULL);
	if (rc)
		return rc;
	w->lf = p;
	w->lf_old = old;
	prefetch_range_w(w->lf, 0, BPT_HDR + BPT_SLOT * (n_count(old) + 1));
	prefetch_range_w(w->lf, n_heap(old) - (ent_size(e, true) - BPT_SLOT), w->ns);
	return 0;
}

static void leaf_copy_finish(bpt_w *w, const bpt_ent *e)
{
	copy_insert(w->lf, w->lf_old, w->ns, w->idx[0], e, true);
	w_repoint(w, 0, w->lf_id);
	w->node[0] = w->lf;
	w->own[0] = true;
}

/* Inserts a new key e at idx[0]. Everything to be written is claimed and
 * allocated first and the lines the writes will go to are asked for at
 * once (the committed path above the leaf, then the leaf's new version
 * and a split's right half): those nodes are memory the cache has not
 * seen, and their misses then overlap instead of coming one after
 * another. The leaf then takes e in place (owned), is copied with e in one
 * pass (committed, with room), or is split straight from its old bytes;
 * what is left (a compaction, a split of a leaf top) goes through
 * leaf_claim_insert. */
static int put_new(bpt_w *w, const bpt_ent *e)
{
	enum { IN_PLACE, COPY, SPLIT, REBUILD } how = IN_PLACE;
	int rc = w_cow_claim(w, 1);
	if (rc)
		return rc;
	if (fits_in_place(w->node[0], e, true)) {
		if (!w->own[0]) {
			how = COPY;
			rc = leaf_copy_prepare(w, e);
		}
	} else if (w->m.height > 1 && (rc = leaf_split_prepare(w, e)) == 0) {
		how = SPLIT;
	} else if (rc >= 0) {
		how = REBUILD;
		rc = 0;
	}
	if (rc)
		return rc;
	w_cow_copy(w, 1);
	w_delta(w, 1);
	switch (how) {
	case IN_PLACE:
		insert_in_place(w->node[0], w->idx[0], e, true);
		return 0;
	case COPY:
		leaf_copy_finish(w, e);
		return 0;
	case SPLIT:
		return leaf_split_finish(w, e);
	default:
		return leaf_claim_insert(w, e);
	}
}

static bool leaf_short(const bpt_w *w)
{
	return w->m.height > 1 && bpt_underfull(n_used(w->node[0], w->ns), w->ns);
}

/* Replaces the value of the key at idx[0] by e's. */
static int leaf_replace(bpt_w *w, const bpt_ent *e)
{
	uint8_t *n = w->node[0];
	uint8_t *cell = n + n_slot(n, w->idx[0]);
	int rc;
	if (lc_flags(cell) & BPT_F_OVERFLOW) {
		if ((rc = strata_txn_free(w->txn, ld64(lc_val(cell)))))
			return rc;
	}
	if (lc_size(cell) == ent_size(e, true) - BPT_SLOT) {
		bpt_put_cell(cell, e, true);
		return 0;
	}
	leaf_remove(n, w->idx[0]);
	if (!fits_in_place(n, e, true))
		return leaf_rebuild(w, e);
	insert_in_place(n, w->idx[0], e, true);
	return leaf_short(w) ? leaf_rebuild(w, NULL) : 0; /* a smaller value */
}

/* ---- the API ---------------------------------------------------------------- */

void strata_bpt_options_init(strata_bpt_options *opts)
{
	if (opts)
		opts->node_size = STRATA_BPT_NODE_DEFAULT;
}

int strata_bpt_create(strata_txn *txn, const char *name, const strata_bpt_options *opts)
{
	strata_bpt_options o;
	strata_bpt_options_init(&o);
	if (opts)
		o = *opts;
	if (!txn || !name || o.node_size < STRATA_BPT_NODE_MIN || o.node_size > STRATA_BPT_NODE_MAX)
		return STRATA_EINVAL;
	strata_node_id cur, mid, lid;
	int rc = strata_txn_get_root(txn, name, &cur);
	if (rc)
		return rc;
	if (cur != STRATA_NODE_NULL)
		return STRATA_EEXIST;
	void *mp, *lp = NULL;
	if ((rc = strata_txn_alloc(txn, BPT_META_SIZE, STRATA_BPT_KIND_META, &mid, &mp)))
		return rc;
	if ((rc = strata_txn_alloc(txn, o.node_size, STRATA_BPT_KIND_LEAF, &lid, &lp)))
		goto err;
	bpt_build(lp, o.node_size, STRATA_BPT_KIND_LEAF, 0, NULL, 0);
	bpt_meta m = {.node_size = o.node_size, .key_max = bpt_key_max(o.node_size), .height = 1,
		      .top = lid};
	bpt_meta_encode(mp, &m);
	if ((rc = strata_txn_set_root(txn, name, mid)))
		goto err;
	return 0;
err:
	strata_txn_free(txn, mid);
	if (lp)
		strata_txn_free(txn, lid);
	return rc;
}

static int key_ok(const bpt_w *w, size_t klen)
{
	return klen == 0 || klen > w->m.key_max ? STRATA_EKEYSIZE : 0;
}

/* Puts a large value in its own overflow node; e then refers to it. */
static int put_overflow(bpt_w *w, const void *val, size_t vlen, bpt_ent *e, uint8_t ref[8])
{
	strata_node_id oid;
	void *p;
	/* Not zeroed: bpt_overflow_fill writes all of it. */
	int rc = strata_txn_alloc_uninit(w->txn, (uint32_t)(BPT_HDR + vlen),
					 STRATA_BPT_KIND_OVERFLOW, &oid, &p);
	if (rc)
		return rc;
	bpt_overflow_fill(p, oid, val, vlen, e, ref);
	return 0;
}

int strata_bpt_put(strata_txn *txn, const char *name, const void *key, size_t klen, const void *val,
		   size_t vlen, unsigned flags)
{
	if ((!key && klen) || (!val && vlen) || (flags & ~STRATA_BPT_NOOVERWRITE) ||
	    vlen > STRATA_BPT_VALUE_MAX)
		return STRATA_EINVAL;
	bpt_w w;
	uint8_t ref[8];
	int rc = w_open(&w, txn, name);
	if (rc || (rc = key_ok(&w, klen)) || (rc = w_descend(&w, key, klen)))
		goto out;
	if (w.found && (flags & STRATA_BPT_NOOVERWRITE)) {
		rc = STRATA_EEXIST;
		goto out;
	}
	bpt_ent e = {.key = key, .klen = (uint32_t)klen, .val = val, .vlen = (uint32_t)vlen};
	if (!bpt_inline(w.ns, klen, vlen) && (rc = put_overflow(&w, val, vlen, &e, ref)))
		goto out;
	if (!w.found)
		rc = put_new(&w, &e);
	else if ((rc = w_cow(&w, 0)) == 0)
		rc = leaf_replace(&w, &e);
	if (rc)
		goto out;
	bpt_meta_encode(w.meta, &w.m);
out:
	w_close(&w);
	return rc;
}

int strata_bpt_del(strata_txn *txn, const char *name, const void *key, size_t klen)
{
	if (!key && klen)
		return STRATA_EINVAL;
	bpt_w w;
	int rc = w_open(&w, txn, name);
	if (rc || (rc = key_ok(&w, klen)) || (rc = w_descend(&w, key, klen)))
		goto out;
	if (!w.found) {
		rc = STRATA_ENOTFOUND;
		goto out;
	}
	if ((rc = w_cow(&w, 0)))
		goto out;
	uint8_t *n = w.node[0];
	const uint8_t *cell = leaf_cell(n, w.idx[0]);
	if ((lc_flags(cell) & BPT_F_OVERFLOW) && (rc = strata_txn_free(txn, ld64(lc_val(cell)))))
		goto out;
	leaf_remove(n, w.idx[0]);
	w_delta(&w, -1);
	if (leaf_short(&w))
		rc = leaf_rebuild(&w, NULL);
	bpt_meta_encode(w.meta, &w.m);
out:
	w_close(&w);
	return rc;
}
