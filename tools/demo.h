/*
 * demo.h — what `strata demo` shares between its steps (cmd_demo.c) and
 * its linked-list helpers (demo_list.c). Not used by other commands.
 */
#ifndef STRATA_TOOLS_DEMO_H
#define STRATA_TOOLS_DEMO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "strata/strata.h"

#define DEMO_ROOT "demo"
#define DEMO_KIND_ITEM 1
#define DEMO_MAX_ITEMS 8

/* One list item, the payload of one node. Copied in and out with memcpy:
 * node bytes carry no alignment promise a tool should rely on. */
typedef struct demo_item {
	strata_node_id next; /* STRATA_NODE_NULL ends the list */
	uint32_t value;
	char name[20];
} demo_item;

/* A list as one reader saw it: each item and the NodeID that held it. */
typedef struct demo_list {
	size_t n;
	strata_node_id ids[DEMO_MAX_ITEMS];
	demo_item items[DEMO_MAX_ITEMS];
} demo_list;

/* Allocates n items in transaction t, linked in order; *head is the first. */
int list_build(strata_txn *t, const char *const *names, const uint32_t *values, size_t n,
	       strata_node_id *head);
/* Reads the list under root DEMO_ROOT as the snapshot / transaction sees it. */
int list_read_snapshot(const strata_snapshot *s, demo_list *l);
int list_read_txn(strata_txn *t, demo_list *l);
/* Copy-on-write of items 0..pos: item pos gets the contents *last, every
 * item before it is copied to point at the new copy of its successor (its
 * old NodeID is now stale for the new version). *new_head is the new first
 * item, for the caller to set as root. */
int list_cow_path(strata_txn *t, const demo_list *l, size_t pos, const demo_item *last,
		  strata_node_id *new_head);
bool list_equals(const demo_list *l, const char *const *names, const uint32_t *values, size_t n);
void list_print(cli_out *out, const char *label, const demo_list *l);
/* "0x... [shard S index I tag T]" into buf (at least 80 bytes). */
const char *fmt_node_id(char *buf, size_t len, strata_node_id id);

#endif /* STRATA_TOOLS_DEMO_H */
