/*
 * bulk.c — strata_bpt_load: sorted input into an empty tree, bottom-up.
 *
 * Each level fills a scratch node until the next entry does not fit, then
 * the node becomes the level's `pend`ing node and the one before it is
 * emitted (allocated, written, and its separator and count appended to the
 * level above). Keeping one node back lets the last two nodes of a level
 * share their entries at the end, so the last node is not left under the
 * fill bound. Scratch branch nodes keep their entry 0 key: it is the
 * separator pushed up when the node is emitted (and then dropped).
 *
 * Nothing reaches the tree until the input ended in order: on any error
 * every node the load allocated is freed and the tree stays empty.
 */
#include <stdlib.h>

#include "bpt.h"

typedef struct bl_level {
	uint8_t *cur, *pend;
	bool has_pend;
	uint64_t emitted;
} bl_level;

typedef struct bl {
	strata_txn *txn;
	bpt_meta m;
	uint32_t ns, cap;
	unsigned nlevels;
	bl_level lv[BPT_MAX_HEIGHT];
	uint8_t *prev; /* the last input key, for the order check */
	size_t prevlen;
	bool have_prev;
	uint8_t *lastleaf; /* last key of the last emitted leaf */
	size_t lastleaf_len;
	strata_node_id *ids; /* every node allocated, freed on error */
	size_t nids, capids;
	bpt_ent *eents; /* one node's entries, for emitting */
	bpt_ent *rents; /* two nodes' entries, for the final share */
	strata_node_id top;
} bl;

static int bl_alloc(bl *b, uint32_t size, unsigned kind, void **p, strata_node_id *id)
{
	if (b->nids == b->capids) {
		size_t nc = b->capids ? 2 * b->capids : 256;
		strata_node_id *ni = realloc(b->ids, nc * sizeof *ni);
		if (!ni)
			return STRATA_ENOMEM;
		b->ids = ni;
		b->capids = nc;
	}
	/* Not zeroed: bpt_build and bpt_overflow_fill write every byte a
	 * reader or the checker looks at (a built node's free gap is left). */
	int rc = strata_txn_alloc_uninit(b->txn, size, (uint8_t)kind, id, p);
	if (rc == 0)
		b->ids[b->nids++] = *id;
	return rc;
}

static void node_append(uint8_t *n, const bpt_ent *e, bool leaf)
{
	unsigned cnt = n_count(n);
	uint32_t heap = n_heap(n) - (ent_size(e, leaf) - BPT_SLOT);
	bpt_put_cell(n + heap, e, leaf);
	n_set_slot(n, cnt, heap, 0); /* a scratch node: bpt_build sets the hints */
	st16(n + 4, (uint16_t)(cnt + 1));
	st16(n + 6, (uint16_t)heap);
}

static void scratch_reset(bl *b, uint8_t *n, unsigned l)
{
	bpt_hdr_init(n, l ? STRATA_BPT_KIND_BRANCH : STRATA_BPT_KIND_LEAF, l);
	st16(n + 6, (uint16_t)b->ns);
}

static int bl_append(bl *b, unsigned l, const bpt_ent *e);

/* Writes e[0..cnt) as a new node of level l and appends its separator and
 * count to level l + 1. */
static int bl_emit_ents(bl *b, unsigned l, const bpt_ent *e, unsigned cnt)
{
	bool leaf = l == 0;
	void *p;
	strata_node_id id;
	int rc = bl_alloc(b, b->ns, leaf ? STRATA_BPT_KIND_LEAF : STRATA_BPT_KIND_BRANCH, &p, &id);
	if (rc)
		return rc;
	bpt_build(p, b->ns, leaf ? STRATA_BPT_KIND_LEAF : STRATA_BPT_KIND_BRANCH, l, e, cnt);
	bl_level *v = &b->lv[l];
	bpt_ent up = {.key = e[0].key, .child = id, .count = bpt_ent_total(e, cnt, leaf)};
	if (v->emitted > 0)
		up.klen = leaf ? bpt_sep_len(b->lastleaf, b->lastleaf_len, e[0].key, e[0].klen)
			       : e[0].klen;
	if (leaf) {
		memcpy(b->lastleaf, e[cnt - 1].key, e[cnt - 1].klen);
		b->lastleaf_len = e[cnt - 1].klen;
	}
	v->emitted++;
	return bl_append(b, l + 1, &up);
}

static int bl_emit(bl *b, unsigned l, const uint8_t *n)
{
	bpt_gather(n, b->eents);
	return bl_emit_ents(b, l, b->eents, n_count(n));
}

static int bl_level_init(bl *b, unsigned l)
{
	if (l >= BPT_MAX_HEIGHT)
		return STRATA_EFULL;
	uint8_t *p = malloc(2 * (size_t)b->ns);
	if (!p)
		return STRATA_ENOMEM;
	b->lv[l] = (bl_level){.cur = p, .pend = p + b->ns};
	scratch_reset(b, p, l);
	b->nlevels = l + 1;
	return 0;
}

static int bl_append(bl *b, unsigned l, const bpt_ent *e)
{
	int rc;
	if (l >= b->nlevels && (rc = bl_level_init(b, l)))
		return rc;
	bl_level *v = &b->lv[l];
	bool leaf = l == 0;
	uint8_t *n = v->cur;
	if (n_count(n) > 0 && n_used(n, b->ns) + ent_size(e, leaf) > b->cap) {
		/* cur is full: it becomes pend, the old pend goes out. */
		if (v->has_pend && (rc = bl_emit(b, l, v->pend)))
			return rc;
		v->cur = v->pend;
		v->pend = n;
		v->has_pend = true;
		scratch_reset(b, v->cur, l);
		n = v->cur;
	}
	node_append(n, e, leaf);
	return 0;
}

/* The level's last nodes: pend and cur share when cur is under the fill
 * bound (or merge when both fit one node). */
static int bl_flush_level(bl *b, unsigned l)
{
	bl_level *v = &b->lv[l];
	bool leaf = l == 0;
	const uint8_t *cur = v->cur;
	uint32_t used = n_used(cur, b->ns) - (leaf ? 0 : bc_klen(br_cell(cur, 0)));
	int rc;
	if (!bpt_underfull(used, b->ns)) {
		if ((rc = bl_emit(b, l, v->pend)))
			return rc;
		return bl_emit(b, l, cur);
	}
	unsigned pc = n_count(v->pend), cnt = pc + n_count(cur);
	bpt_gather(v->pend, b->rents);
	bpt_gather(cur, b->rents + pc);
	if (bpt_list_size(b->rents, cnt, leaf) <= b->cap)
		return bl_emit_ents(b, l, b->rents, cnt);
	unsigned j = bpt_best_cut(b->rents, cnt, leaf, b->cap);
	if (!j)
		return STRATA_ECORRUPT;
	if ((rc = bl_emit_ents(b, l, b->rents, j)))
		return rc;
	return bl_emit_ents(b, l, b->rents + j, cnt - j);
}

/* Flushes level after level; the first level that holds a single node
 * overall is the top. */
static int bl_finish(bl *b)
{
	for (unsigned l = 0; l < b->nlevels; l++) {
		bl_level *v = &b->lv[l];
		if (v->emitted == 0 && !v->has_pend) {
			void *p;
			int rc = bl_alloc(b, b->ns, l ? STRATA_BPT_KIND_BRANCH : STRATA_BPT_KIND_LEAF,
					  &p, &b->top);
			if (rc)
				return rc;
			bpt_gather(v->cur, b->eents);
			bpt_build(p, b->ns, l ? STRATA_BPT_KIND_BRANCH : STRATA_BPT_KIND_LEAF, l,
				  b->eents, n_count(v->cur));
			b->m.height = l + 1;
			if (l > 0 && n_count(v->cur) == 1) {
				/* The level below merged into one node: it is the top. */
				b->top = b->eents[0].child;
				b->m.height = l;
				b->nids--;
				return strata_txn_free(b->txn, b->ids[b->nids]);
			}
			return 0;
		}
		int rc = bl_flush_level(b, l);
		if (rc)
			return rc;
	}
	return STRATA_ECORRUPT; /* unreachable: the last level holds one node */
}

/* One input entry: checked, its value placed, appended to the leaves. */
static int bl_add(bl *b, const void *key, size_t klen, const void *val, size_t vlen)
{
	if ((!key && klen) || (!val && vlen) || vlen > STRATA_BPT_VALUE_MAX)
		return STRATA_EINVAL;
	if (klen == 0 || klen > b->m.key_max)
		return STRATA_EKEYSIZE;
	if (b->have_prev && key_cmp(b->prev, b->prevlen, key, klen) >= 0)
		return STRATA_EINVAL;
	memcpy(b->prev, key, klen);
	b->prevlen = klen;
	b->have_prev = true;
	bpt_ent e = {.key = key, .klen = (uint32_t)klen, .val = val, .vlen = (uint32_t)vlen};
	uint8_t ref[8];
	if (!bpt_inline(b->ns, klen, vlen)) {
		void *p;
		strata_node_id oid;
		int rc = bl_alloc(b, (uint32_t)(BPT_HDR + vlen), STRATA_BPT_KIND_OVERFLOW, &p, &oid);
		if (rc)
			return rc;
		bpt_overflow_fill(p, oid, val, vlen, &e, ref);
	}
	b->m.count++;
	return bl_append(b, 0, &e);
}

static int bl_init(bl *b, strata_txn *txn, const bpt_meta *m)
{
	memset(b, 0, sizeof *b);
	b->txn = txn;
	b->m = *m;
	b->ns = m->node_size;
	b->cap = bpt_cap(b->ns);
	size_t maxent = 2 * b->cap / (BPT_SLOT + BPT_LEAF_CELL + 1) + 4;
	b->eents = malloc(maxent * sizeof(bpt_ent));
	b->rents = malloc(maxent * sizeof(bpt_ent));
	b->prev = malloc(2 * (size_t)m->key_max);
	b->lastleaf = b->prev ? b->prev + m->key_max : NULL;
	return b->eents && b->rents && b->prev ? 0 : STRATA_ENOMEM;
}

static void bl_free(bl *b, bool failed)
{
	if (failed)
		for (size_t i = b->nids; i-- > 0;)
			strata_txn_free(b->txn, b->ids[i]);
	for (unsigned l = 0; l < b->nlevels; l++)
		free(b->lv[l].cur < b->lv[l].pend ? b->lv[l].cur : b->lv[l].pend);
	free(b->ids);
	free(b->eents);
	free(b->rents);
	free(b->prev);
}

/* The tree's meta now names the loaded top; the empty leaf goes. */
static int bl_install(bl *b, const char *name, strata_node_id meta_id)
{
	strata_node_id nid, old_top = b->m.top;
	void *p;
	int rc = strata_txn_write(b->txn, meta_id, &nid, &p, NULL);
	if (rc)
		return rc;
	if (nid != meta_id && (rc = strata_txn_set_root(b->txn, name, nid)))
		return rc;
	if ((rc = strata_txn_free(b->txn, old_top)))
		return rc;
	b->m.top = b->top;
	bpt_meta_encode(p, &b->m);
	return 0;
}

int strata_bpt_load(strata_txn *txn, const char *name, strata_bpt_source_fn next, void *ctx)
{
	if (!txn || !name || !next)
		return STRATA_EINVAL;
	bpt_rd r = {.txn = txn};
	strata_node_id meta_id;
	bpt_meta m;
	int rc = bpt_rd_meta(&r, name, &meta_id, &m);
	if (rc)
		return rc;
	if (m.count != 0 || m.height != 1)
		return STRATA_EINVAL;
	bl b;
	if ((rc = bl_init(&b, txn, &m)))
		goto out;
	for (;;) {
		const void *k, *v;
		size_t kl, vl;
		if ((rc = next(ctx, &k, &kl, &v, &vl)) <= 0)
			break;
		if ((rc = bl_add(&b, k, kl, v, vl)))
			break;
	}
	if (rc == 0 && b.nlevels > 0 && (rc = bl_finish(&b)) == 0)
		rc = bl_install(&b, name, meta_id);
out:
	bl_free(&b, rc != 0);
	return rc;
}
