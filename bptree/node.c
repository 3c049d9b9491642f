/*
 * node.c — B+tree node primitives: the meta node codec, reading nodes
 * through a snapshot or a transaction with a header check, binary search
 * within a node, and building a node from an entry list.
 *
 * Readers trust cell offsets inside a node whose header checks out: nodes
 * are written only by this module's builders and the substrate verifies
 * stored bytes by CRC; strata_bpt_check validates every offset.
 */
#include "bpt.h"

bool bpt_full_separators = false;

uint32_t bpt_key_max(uint32_t node_size)
{
	uint32_t k = bpt_emax(node_size) - BPT_SLOT - BPT_BRANCH_CELL;
	return k < STRATA_BPT_KEY_MAX ? k : STRATA_BPT_KEY_MAX;
}

void bpt_meta_decode(const uint8_t *p, bpt_meta *m)
{
	m->node_size = ld32(p + 4);
	m->key_max = ld32(p + 8);
	m->height = ld32(p + 12);
	m->top = ld64(p + 16);
	m->count = ld64(p + 24);
}

void bpt_meta_encode(uint8_t *p, const bpt_meta *m)
{
	memset(p, 0, BPT_META_SIZE);
	st16(p, BPT_MAGIC);
	p[2] = STRATA_BPT_KIND_META;
	p[3] = BPT_VERSION;
	st32(p + 4, m->node_size);
	st32(p + 8, m->key_max);
	st32(p + 12, m->height);
	st64(p + 16, m->top);
	st64(p + 24, m->count);
}

int bpt_rd_node_own(const bpt_rd *r, strata_node_id id, const uint8_t **p, uint32_t *size,
		    int *own)
{
	const void *d;
	int mine = 0;
	int rc = r->snap ? strata_resolve(r->snap, id, &d, size)
			 : strata_txn_read_own(r->txn, id, &d, size, &mine);
	if (rc == 0) {
		*p = d;
		if (own)
			*own = mine;
	}
	return rc;
}

static bool meta_ok(const uint8_t *p, uint32_t size)
{
	if (size != BPT_META_SIZE || ld16(p) != BPT_MAGIC || p[2] != STRATA_BPT_KIND_META ||
	    p[3] != BPT_VERSION)
		return false;
	bpt_meta m;
	bpt_meta_decode(p, &m);
	return m.node_size >= STRATA_BPT_NODE_MIN && m.node_size <= STRATA_BPT_NODE_MAX &&
	       m.key_max == bpt_key_max(m.node_size) && m.height >= 1 &&
	       m.height <= BPT_MAX_HEIGHT && m.top != STRATA_NODE_NULL;
}

int bpt_rd_meta_own(const bpt_rd *r, const char *name, strata_node_id *meta_id, bpt_meta *m,
		    const uint8_t **mp, int *own)
{
	if (!name)
		return STRATA_EINVAL;
	int rc = r->snap ? strata_snapshot_root(r->snap, name, meta_id)
			 : strata_txn_get_root(r->txn, name, meta_id);
	if (rc)
		return rc;
	if (*meta_id == STRATA_NODE_NULL)
		return STRATA_EWRONGINDEX;
	const uint8_t *p;
	uint32_t size;
	if ((rc = bpt_rd_node_own(r, *meta_id, &p, &size, own)))
		return rc;
	if (!meta_ok(p, size))
		return STRATA_EWRONGINDEX;
	bpt_meta_decode(p, m);
	if (mp)
		*mp = p;
	return 0;
}

int bpt_rd_tree_node_own(const bpt_rd *r, const bpt_meta *m, strata_node_id id, unsigned level,
			 const uint8_t **p, int *own)
{
	uint32_t size;
	int rc = bpt_rd_node_own(r, id, p, &size, own);
	if (rc)
		return rc;
	const uint8_t *n = *p;
	unsigned kind = level ? STRATA_BPT_KIND_BRANCH : STRATA_BPT_KIND_LEAF;
	if (size != m->node_size || ld16(n) != BPT_MAGIC || n_kind(n) != kind ||
	    n_level(n) != level || BPT_HDR + BPT_SLOT * n_count(n) > n_heap(n) ||
	    n_heap(n) > size || (level && n_count(n) == 0) || n_pfx(n) > m->key_max)
		return STRATA_ECORRUPT;
	return 0;
}

int bpt_rd_value(const bpt_rd *r, const uint8_t *cell, const void **val, size_t *vlen)
{
	uint32_t len = lc_vlen(cell);
	if (!(lc_flags(cell) & BPT_F_OVERFLOW)) {
		*val = lc_val(cell);
		*vlen = len;
		return 0;
	}
	const uint8_t *p;
	uint32_t size;
	int rc = bpt_rd_node(r, ld64(lc_val(cell)), &p, &size);
	if (rc)
		return rc;
	if (size != BPT_HDR + len || ld16(p) != BPT_MAGIC || n_kind(p) != STRATA_BPT_KIND_OVERFLOW ||
	    ld64(p + 8) != len)
		return STRATA_ECORRUPT;
	*val = p + BPT_HDR;
	*vlen = len;
	return 0;
}

/* Search within a node. The hints in the slot array order the keys
 * wherever they differ, so a search is a binary search over the slot array
 * (a few cache lines) for the run of slots whose hint equals the key's,
 * then full compares inside that run only (usually one slot or none).
 * The node prefix is checked against one key of the node (leaf slot 0,
 * branch entry 1), fetched while the hint search runs: a key outside the
 * prefix sorts before or after every key of the node. */

/* Fetches the slot array's cache lines at once: the binary search over it
 * would otherwise wait on them one after another. */
static inline void prefetch_slots(const uint8_t *n, unsigned cnt)
{
	const uint8_t *end = n + BPT_HDR + BPT_SLOT * cnt;
	for (const uint8_t *q = n + 64; q < end; q += 64)
		__builtin_prefetch(q);
}

/* First slot in [lo, hi) whose hint is >= h. */
static inline unsigned hint_lb(const uint8_t *n, unsigned lo, unsigned hi, uint32_t h)
{
	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		if (n_hint(n, mid) < h)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* key's first p bytes against the prefix pk[0..p): <0, 0, >0 (a key
 * shorter than p that is a prefix of it sorts first). */
static inline int pfx_cmp(const uint8_t *key, size_t klen, const uint8_t *pk, unsigned p)
{
	return key_cmp(key, klen < p ? klen : p, pk, p);
}

unsigned bpt_leaf_search(const uint8_t *n, const uint8_t *key, size_t klen, bool *found)
{
	unsigned cnt = n_count(n), p = n_pfx(n);
	*found = false;
	if (cnt == 0)
		return 0;
	prefetch_slots(n, cnt);
	const uint8_t *c0 = leaf_cell(n, 0);
	if (p)
		__builtin_prefetch(c0);
	uint32_t h = bpt_hint(key, klen, p);
	unsigned lo = hint_lb(n, 0, cnt, h);
	unsigned hi = h == UINT32_MAX ? cnt : hint_lb(n, lo, cnt, h + 1);
	if (p) {
		int pc = pfx_cmp(key, klen, lc_key(c0), p);
		if (pc)
			return pc < 0 ? 0 : cnt;
	}
	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		const uint8_t *c = leaf_cell(n, mid);
		int cmp = key_cmp(lc_key(c), lc_klen(c), key, klen);
		if (cmp < 0) {
			lo = mid + 1;
		} else if (cmp > 0) {
			hi = mid;
		} else {
			*found = true;
			return mid;
		}
	}
	return lo;
}

unsigned bpt_branch_search(const uint8_t *n, const uint8_t *key, size_t klen)
{
	/* Entry 0 is the lower bound: search entries 1..count-1 for the
	 * first separator > key; the child is the one before it. */
	unsigned cnt = n_count(n), p = n_pfx(n);
	if (cnt < 2)
		return 0;
	prefetch_slots(n, cnt);
	const uint8_t *c1 = br_cell(n, 1);
	if (p)
		__builtin_prefetch(c1);
	uint32_t h = bpt_hint(key, klen, p);
	unsigned lo = hint_lb(n, 1, cnt, h);
	unsigned hi = h == UINT32_MAX ? cnt : hint_lb(n, lo, cnt, h + 1);
	if (p) {
		int pc = pfx_cmp(key, klen, bc_key(c1), p);
		if (pc)
			return pc < 0 ? 0 : cnt - 1;
	}
	/* Separators before lo are < key, from hi on > key. */
	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		const uint8_t *c = br_cell(n, mid);
		if (key_cmp(bc_key(c), bc_klen(c), key, klen) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo - 1;
}

void bpt_gather(const uint8_t *n, bpt_ent *out)
{
	unsigned cnt = n_count(n);
	bool leaf = n_kind(n) == STRATA_BPT_KIND_LEAF;
	for (unsigned i = 0; i < cnt; i++) {
		const uint8_t *c = n + n_slot(n, i);
		bpt_ent *e = &out[i];
		memset(e, 0, sizeof *e);
		if (leaf) {
			e->key = lc_key(c);
			e->klen = lc_klen(c);
			e->val = lc_val(c);
			e->vlen = lc_vlen(c);
			e->flags = (uint16_t)lc_flags(c);
		} else {
			e->key = bc_key(c);
			e->klen = bc_klen(c);
			e->child = bc_child(c);
			e->count = bc_count(c);
		}
	}
}

void bpt_hdr_init(uint8_t *n, unsigned kind, unsigned level)
{
	memset(n, 0, BPT_HDR);
	st16(n, BPT_MAGIC);
	n[2] = (uint8_t)kind;
	n[3] = (uint8_t)level;
}

uint32_t bpt_put_cell(uint8_t *c, const bpt_ent *e, bool leaf)
{
	if (leaf) {
		uint32_t vbytes = (e->flags & BPT_F_OVERFLOW) ? 8u : e->vlen;
		st16(c, (uint16_t)e->klen);
		st16(c + 2, e->flags);
		st32(c + 4, e->vlen);
		memcpy(c + BPT_LEAF_CELL, e->key, e->klen);
		if (vbytes)
			memcpy(c + BPT_LEAF_CELL + e->klen, e->val, vbytes);
		return BPT_LEAF_CELL + e->klen + vbytes;
	}
	st64(c, e->child);
	st64(c + 8, e->count);
	st16(c + 16, (uint16_t)e->klen);
	if (e->klen)
		memcpy(c + BPT_BRANCH_CELL, e->key, e->klen);
	return BPT_BRANCH_CELL + e->klen;
}

unsigned bpt_prefix_of(const bpt_ent *e, unsigned cnt, bool leaf)
{
	/* Keys are sorted: the first and the last share what all share. A
	 * branch's entry 0 holds no key. */
	unsigned first = leaf ? 0 : 1;
	if (cnt <= first)
		return 0;
	return bpt_lcp(e[first].key, e[first].klen, e[cnt - 1].key, e[cnt - 1].klen);
}

void bpt_build(uint8_t *dst, uint32_t ns, unsigned kind, unsigned level, const bpt_ent *e,
	       unsigned cnt)
{
	bool leaf = kind == STRATA_BPT_KIND_LEAF;
	unsigned p = bpt_prefix_of(e, cnt, leaf);
	bpt_hdr_init(dst, kind, level);
	uint32_t heap = ns;
	for (unsigned i = 0; i < cnt; i++) {
		bpt_ent x = e[i];
		if (!leaf && i == 0)
			x.klen = 0; /* entry 0 of a branch is the lower bound */
		heap -= ent_size(&x, leaf) - BPT_SLOT;
		bpt_put_cell(dst + heap, &x, leaf);
		n_set_slot(dst, i, heap, leaf || i > 0 ? bpt_hint(x.key, x.klen, p) : 0);
	}
	st16(dst + 4, (uint16_t)cnt);
	st16(dst + 6, (uint16_t)heap);
	st16(dst + 10, (uint16_t)p);
}

void bpt_copy_used(uint8_t *dst, const uint8_t *src, uint32_t ns)
{
	uint32_t heap = n_heap(src);
	memcpy(dst, src, BPT_HDR + BPT_SLOT * n_count(src));
	memcpy(dst + heap, src + heap, ns - heap);
}

uint32_t bpt_sep_len(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	if (bpt_full_separators)
		return (uint32_t)blen;
	size_t i = bpt_lcp(a, alen, b, blen);
	/* a < b: either they differ at i, or a is a prefix of b (i == alen). */
	return (uint32_t)(i + 1 <= blen ? i + 1 : blen);
}

uint64_t bpt_ent_total(const bpt_ent *e, unsigned cnt, bool leaf)
{
	if (leaf)
		return cnt;
	uint64_t t = 0;
	for (unsigned i = 0; i < cnt; i++)
		t += e[i].count;
	return t;
}

uint32_t bpt_list_size(const bpt_ent *e, unsigned cnt, bool leaf)
{
	uint32_t t = 0;
	for (unsigned i = 0; i < cnt; i++)
		t += ent_size(&e[i], leaf);
	/* A branch stores its entry 0 without a key. */
	return leaf || cnt == 0 ? t : t - e[0].klen;
}

unsigned bpt_best_cut(const bpt_ent *e, unsigned cnt, bool leaf, uint32_t cap)
{
	uint32_t total = bpt_list_size(e, cnt, leaf), left = 0;
	unsigned best = 0;
	uint32_t best_diff = UINT32_MAX;
	for (unsigned j = 1; j < cnt; j++) {
		left += ent_size(&e[j - 1], leaf) - (!leaf && j == 1 ? e[0].klen : 0);
		/* The right piece stores its first entry without a key too. */
		uint32_t right = total - left - (leaf ? 0 : e[j].klen);
		if (left > cap)
			break;
		/* A branch keeps two children at least, or a child of it could
		 * find no sibling to borrow from (cnt >= 5 when total > cap). */
		if (right > cap || (!leaf && (j < 2 || cnt - j < 2)))
			continue;
		uint32_t diff = left > right ? left - right : right - left;
		if (diff < best_diff) {
			best_diff = diff;
			best = j;
		}
	}
	return best;
}

void bpt_overflow_fill(void *node, strata_node_id id, const void *val, size_t vlen, bpt_ent *e,
		       uint8_t ref[8])
{
	uint8_t *p = node;
	bpt_hdr_init(p, STRATA_BPT_KIND_OVERFLOW, 0);
	st64(p + 8, vlen);
	memcpy(p + BPT_HDR, val, vlen);
	st64(ref, id);
	e->val = ref;
	e->flags = BPT_F_OVERFLOW;
}
