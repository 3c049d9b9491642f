/*
 * demo_list.c — the small singly linked list `strata demo` keeps in the
 * store: building it, reading it through a snapshot or a transaction, and
 * updating it copy-on-write. A list is the smallest structure where a
 * change must copy a path (the changed item and everything pointing at it),
 * which is exactly what index engines do with tree paths.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "demo.h"

const char *fmt_node_id(char *buf, size_t len, strata_node_id id)
{
	snprintf(buf, len, "%#018" PRIx64 " [shard %" PRIu32 " index %" PRIu32 " tag %" PRIu32 "]",
		 id, STRATA_NODEID_SHARD(id), STRATA_NODEID_INDEX(id), STRATA_NODEID_TAG(id));
	return buf;
}

int list_build(strata_txn *t, const char *const *names, const uint32_t *values, size_t n,
	       strata_node_id *head)
{
	/* Built back to front so each item can point at the one after it. */
	strata_node_id next = STRATA_NODE_NULL;
	for (size_t i = n; i-- > 0;) {
		demo_item it = {.next = next, .value = values[i]};
		snprintf(it.name, sizeof it.name, "%s", names[i]);
		void *data;
		int rc = strata_txn_alloc(t, sizeof it, DEMO_KIND_ITEM, &next, &data);
		if (rc)
			return rc;
		memcpy(data, &it, sizeof it);
	}
	*head = next;
	return 0;
}

/* Appends one item's bytes to l; the size check keeps a foreign node from
 * being misread as an item. */
static int list_push(demo_list *l, strata_node_id id, const void *data, uint32_t size)
{
	if (l->n == DEMO_MAX_ITEMS || size != sizeof(demo_item))
		return STRATA_ECORRUPT;
	l->ids[l->n] = id;
	memcpy(&l->items[l->n], data, sizeof(demo_item));
	l->n++;
	return 0;
}

int list_read_snapshot(const strata_snapshot *s, demo_list *l)
{
	strata_node_id id;
	int rc = strata_snapshot_root(s, DEMO_ROOT, &id);
	l->n = 0;
	while (!rc && id != STRATA_NODE_NULL) {
		const void *data;
		uint32_t size;
		if (!(rc = strata_resolve(s, id, &data, &size)) &&
		    !(rc = list_push(l, id, data, size)))
			id = l->items[l->n - 1].next;
	}
	return rc;
}

int list_read_txn(strata_txn *t, demo_list *l)
{
	strata_node_id id;
	int rc = strata_txn_get_root(t, DEMO_ROOT, &id);
	l->n = 0;
	while (!rc && id != STRATA_NODE_NULL) {
		const void *data;
		uint32_t size;
		if (!(rc = strata_txn_read(t, id, &data, &size, NULL)) &&
		    !(rc = list_push(l, id, data, size)))
			id = l->items[l->n - 1].next;
	}
	return rc;
}

int list_cow_path(strata_txn *t, const demo_list *l, size_t pos, const demo_item *last,
		  strata_node_id *new_head)
{
	if (pos >= l->n)
		return STRATA_EINVAL;
	strata_node_id next_copy = STRATA_NODE_NULL;
	for (size_t i = pos + 1; i-- > 0;) {
		demo_item it = i == pos ? *last : l->items[i];
		if (i != pos)
			it.next = next_copy;
		void *data;
		int rc = strata_txn_write(t, l->ids[i], &next_copy, &data, NULL);
		if (rc)
			return rc;
		memcpy(data, &it, sizeof it);
	}
	*new_head = next_copy;
	return 0;
}

bool list_equals(const demo_list *l, const char *const *names, const uint32_t *values, size_t n)
{
	if (l->n != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		const demo_item *it = &l->items[i];
		if (it->value != values[i] || strncmp(it->name, names[i], sizeof it->name) != 0)
			return false;
	}
	return true;
}

void list_print(cli_out *out, const char *label, const demo_list *l)
{
	cli_printf(out, "    %s:\n", label);
	for (size_t i = 0; i < l->n; i++) {
		char idbuf[96];
		cli_printf(out, "      %-8.20s %4" PRIu32 "   node %s\n", l->items[i].name,
			   l->items[i].value, fmt_node_id(idbuf, sizeof idbuf, l->ids[i]));
	}
}
