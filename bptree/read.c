/*
 * read.c — B+tree reads: point lookups, range counts by subtree counts, and
 * cursors. Everything here only reads: through a snapshot (zero-copy,
 * lock-free) or through a transaction (its own writes included).
 *
 * A cursor keeps the path top -> leaf (node pointer and slot per level);
 * with no sibling links, moving past a leaf's end climbs to the lowest
 * level that still has a next entry and descends its leftmost edge.
 */
#include <stdlib.h>

#include "bpt.h"

static int key_arg(const void *key, size_t klen, const bpt_meta *m)
{
	if (!key && klen)
		return STRATA_EINVAL;
	if (klen == 0 || klen > m->key_max)
		return STRATA_EKEYSIZE;
	return 0;
}

static int get_common(const bpt_rd *r, const char *name, const void *key, size_t klen,
		      const void **val, size_t *vlen)
{
	if (!val || (!key && klen))
		return STRATA_EINVAL;
	strata_node_id mid, id;
	bpt_meta m;
	int rc = bpt_rd_meta(r, name, &mid, &m);
	if (rc || (rc = key_arg(key, klen, &m)))
		return rc;
	const uint8_t *n;
	id = m.top;
	for (unsigned level = m.height - 1; level > 0; level--) {
		if ((rc = bpt_rd_tree_node(r, &m, id, level, &n)))
			return rc;
		id = bc_child(br_cell(n, bpt_branch_search(n, key, klen)));
	}
	if ((rc = bpt_rd_tree_node(r, &m, id, 0, &n)))
		return rc;
	bool found;
	unsigned i = bpt_leaf_search(n, key, klen, &found);
	if (!found)
		return STRATA_ENOTFOUND;
	size_t len;
	if ((rc = bpt_rd_value(r, leaf_cell(n, i), val, &len)))
		return rc;
	if (vlen)
		*vlen = len;
	return 0;
}

int strata_bpt_get(const strata_snapshot *snap, const char *name, const void *key, size_t klen,
		   const void **val, size_t *vlen)
{
	if (!snap)
		return STRATA_EINVAL;
	bpt_rd r = {.snap = snap};
	return get_common(&r, name, key, klen, val, vlen);
}

int strata_bpt_txn_get(strata_txn *txn, const char *name, const void *key, size_t klen,
		       const void **val, size_t *vlen)
{
	if (!txn)
		return STRATA_EINVAL;
	bpt_rd r = {.txn = txn};
	return get_common(&r, name, key, klen, val, vlen);
}

/* Number of keys < key: the counts of the subtrees left of the path plus
 * the leaf position. */
static int rank(const bpt_rd *r, const bpt_meta *m, const uint8_t *key, size_t klen,
		uint64_t *out)
{
	uint64_t acc = 0;
	strata_node_id id = m->top;
	const uint8_t *n;
	int rc;
	for (unsigned level = m->height - 1; level > 0; level--) {
		if ((rc = bpt_rd_tree_node(r, m, id, level, &n)))
			return rc;
		unsigned i = bpt_branch_search(n, key, klen);
		for (unsigned j = 0; j < i; j++)
			acc += bc_count(br_cell(n, j));
		id = bc_child(br_cell(n, i));
	}
	if ((rc = bpt_rd_tree_node(r, m, id, 0, &n)))
		return rc;
	bool found;
	*out = acc + bpt_leaf_search(n, key, klen, &found);
	return 0;
}

int strata_bpt_count(const strata_snapshot *snap, const char *name, const void *lo, size_t lolen,
		     const void *hi, size_t hilen, uint64_t *count)
{
	if (!snap || !count || (!lo && lolen) || (!hi && hilen))
		return STRATA_EINVAL;
	bpt_rd r = {.snap = snap};
	strata_node_id mid;
	bpt_meta m;
	int rc = bpt_rd_meta(&r, name, &mid, &m);
	if (rc)
		return rc;
	uint64_t a = 0, b = m.count;
	if (lo && (rc = rank(&r, &m, lo, lolen, &a)))
		return rc;
	if (hi && (rc = rank(&r, &m, hi, hilen, &b)))
		return rc;
	*count = b > a ? b - a : 0;
	return 0;
}

/* ---- cursors ------------------------------------------------------------- */

struct strata_bpt_cursor {
	bpt_rd r;
	bpt_meta m;
	bool positioned;
	const uint8_t *node[BPT_MAX_HEIGHT]; /* [0] is the leaf */
	unsigned idx[BPT_MAX_HEIGHT];
	/* Read-ahead: the leaf after node[0] under the same parent, resolved
	 * and its lines asked for on the first step within node[0], so a
	 * forward scan finds it in cache (for_leaf: the leaf it follows). */
	const uint8_t *for_leaf, *ahead;
	strata_node_id ahead_id;
};

/* The callers have set *out NULL: a failed open leaves it so, and closing
 * it is harmless. */
static int cursor_open(const bpt_rd *r, const char *name, strata_bpt_cursor **out)
{
	if (!out)
		return STRATA_EINVAL;
	strata_bpt_cursor *c = calloc(1, sizeof *c);
	if (!c)
		return STRATA_ENOMEM;
	c->r = *r;
	strata_node_id mid;
	int rc = bpt_rd_meta(r, name, &mid, &c->m);
	if (rc) {
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

int strata_bpt_cursor_open(const strata_snapshot *snap, const char *name, strata_bpt_cursor **out)
{
	if (out)
		*out = NULL;
	if (!snap)
		return STRATA_EINVAL;
	bpt_rd r = {.snap = snap};
	return cursor_open(&r, name, out);
}

int strata_bpt_txn_cursor_open(strata_txn *txn, const char *name, strata_bpt_cursor **out)
{
	if (out)
		*out = NULL;
	if (!txn)
		return STRATA_EINVAL;
	bpt_rd r = {.txn = txn};
	return cursor_open(&r, name, out);
}

void strata_bpt_cursor_close(strata_bpt_cursor *cur)
{
	free(cur);
}

/* Loads levels below `level` along the leftmost (or rightmost) edge of the
 * subtree at node[level]/idx[level]. */
static int descend_edge(strata_bpt_cursor *c, unsigned level, bool rightmost)
{
	for (unsigned l = level; l > 0; l--) {
		strata_node_id id = bc_child(br_cell(c->node[l], c->idx[l]));
		if (l == 1 && c->ahead && id == c->ahead_id) { /* read ahead already */
			c->node[0] = c->ahead;
			c->idx[0] = rightmost && n_count(c->ahead) ? n_count(c->ahead) - 1 : 0;
			continue;
		}
		int rc = bpt_rd_tree_node(&c->r, &c->m, id, l - 1, &c->node[l - 1]);
		if (rc) {
			c->positioned = false;
			return rc;
		}
		unsigned cnt = n_count(c->node[l - 1]);
		c->idx[l - 1] = rightmost && cnt ? cnt - 1 : 0;
	}
	return 0;
}

static int load_top(strata_bpt_cursor *c)
{
	unsigned top = c->m.height - 1;
	c->positioned = false;
	return bpt_rd_tree_node(&c->r, &c->m, c->m.top, top, &c->node[top]);
}

static int edge(strata_bpt_cursor *c, bool rightmost)
{
	int rc = load_top(c);
	if (rc)
		return rc;
	unsigned top = c->m.height - 1, cnt = n_count(c->node[top]);
	if (cnt == 0)
		return STRATA_ENOTFOUND; /* only an empty top leaf has no entries */
	c->idx[top] = rightmost ? cnt - 1 : 0;
	if ((rc = descend_edge(c, top, rightmost)))
		return rc;
	c->positioned = true;
	return 0;
}

int strata_bpt_cursor_first(strata_bpt_cursor *cur)
{
	return cur ? edge(cur, false) : STRATA_EINVAL;
}

int strata_bpt_cursor_last(strata_bpt_cursor *cur)
{
	return cur ? edge(cur, true) : STRATA_EINVAL;
}

/* A scan's next leaf is a miss on its object-table entry, then on its
 * lines: resolve it (one step early) and ask for its used lines while the
 * caller still reads node[0]. Nothing is read ahead past the parent, and
 * a failure is left for the step that needs the leaf to report. */
static void read_ahead(strata_bpt_cursor *c)
{
	c->for_leaf = c->node[0];
	c->ahead = NULL;
	if (c->m.height < 2 || c->idx[1] + 1 >= n_count(c->node[1]))
		return;
	strata_node_id id = bc_child(br_cell(c->node[1], c->idx[1] + 1));
	const uint8_t *n;
	if (bpt_rd_tree_node(&c->r, &c->m, id, 0, &n))
		return;
	n_prefetch_used(n, c->m.node_size, 64);
	c->ahead = n;
	c->ahead_id = id;
}

int strata_bpt_cursor_next(strata_bpt_cursor *c)
{
	if (!c)
		return STRATA_EINVAL;
	if (!c->positioned)
		return edge(c, false);
	if (c->for_leaf != c->node[0])
		read_ahead(c);
	if (++c->idx[0] < n_count(c->node[0]))
		return 0;
	unsigned l = 1, h = c->m.height;
	while (l < h && c->idx[l] + 1 >= n_count(c->node[l]))
		l++;
	if (l == h) {
		c->positioned = false;
		return STRATA_ENOTFOUND;
	}
	c->idx[l]++;
	return descend_edge(c, l, false);
}

int strata_bpt_cursor_prev(strata_bpt_cursor *c)
{
	if (!c)
		return STRATA_EINVAL;
	if (!c->positioned)
		return edge(c, true);
	if (c->idx[0] > 0) {
		c->idx[0]--;
		return 0;
	}
	unsigned l = 1, h = c->m.height;
	while (l < h && c->idx[l] == 0)
		l++;
	if (l == h) {
		c->positioned = false;
		return STRATA_ENOTFOUND;
	}
	c->idx[l]--;
	return descend_edge(c, l, true);
}

int strata_bpt_cursor_seek(strata_bpt_cursor *c, const void *key, size_t klen)
{
	if (!c || (!key && klen))
		return STRATA_EINVAL;
	int rc = load_top(c);
	if (rc)
		return rc;
	for (unsigned l = c->m.height - 1; l > 0; l--) {
		c->idx[l] = bpt_branch_search(c->node[l], key, klen);
		strata_node_id id = bc_child(br_cell(c->node[l], c->idx[l]));
		if ((rc = bpt_rd_tree_node(&c->r, &c->m, id, l - 1, &c->node[l - 1])))
			return rc;
	}
	bool found;
	c->idx[0] = bpt_leaf_search(c->node[0], key, klen, &found);
	c->positioned = true;
	if (c->idx[0] < n_count(c->node[0]))
		return 0;
	/* Past the leaf's last key: the answer is the next leaf's first. */
	if (n_count(c->node[0]) == 0) {
		c->positioned = false;
		return STRATA_ENOTFOUND;
	}
	c->idx[0] = n_count(c->node[0]) - 1;
	return strata_bpt_cursor_next(c);
}

int strata_bpt_cursor_get(const strata_bpt_cursor *c, const void **key, size_t *klen,
			  const void **val, size_t *vlen)
{
	if (!c)
		return STRATA_EINVAL;
	if (!c->positioned)
		return STRATA_ENOTFOUND;
	const uint8_t *cell = leaf_cell(c->node[0], c->idx[0]);
	if (key)
		*key = lc_key(cell);
	if (klen)
		*klen = lc_klen(cell);
	if (!val && !vlen)
		return 0;
	const void *v;
	size_t len;
	int rc = bpt_rd_value(&c->r, cell, &v, &len);
	if (rc)
		return rc;
	if (val)
		*val = v;
	if (vlen)
		*vlen = len;
	return 0;
}
