/*
 * consumer.c — a program from outside the project: it sees only the
 * installed headers and the flags `pkg-config strata` gives. It stores one
 * node, reads it back through a snapshot and checks the bytes, so a broken
 * install (wrong paths, missing private dependency, header/library version
 * skew) fails here the way it would for a real user.
 */
#include <stdio.h>
#include <string.h>

#include <strata/strata.h>
#include <strata/version.h>

static const char message[] = "hello from an installed strata (C)";

static int fail(const char *what, int rc)
{
	fprintf(stderr, "consumer.c: %s: %s\n", what, strata_strerror(rc));
	return 1;
}

/* One transaction: a node holding `message`, named by root "consumer". */
static int write_node(strata_store *s, strata_node_id *id)
{
	const char *const roots[] = {"consumer"};
	strata_txn *t;
	void *data;
	int rc = strata_txn_begin(s, roots, 1, 0, &t);
	if (rc)
		return fail("strata_txn_begin", rc);
	if ((rc = strata_txn_alloc(t, sizeof message, 7, id, &data)) ||
	    (memcpy(data, message, sizeof message), rc = strata_txn_set_root(t, "consumer", *id))) {
		strata_txn_abort(t);
		return fail("building the node", rc);
	}
	rc = strata_txn_commit(t, NULL);
	return rc ? fail("strata_txn_commit", rc) : 0;
}

static int read_node(strata_store *s, strata_node_id want)
{
	strata_snapshot *snap;
	strata_node_id id;
	const void *data;
	uint32_t size;
	int rc = strata_snapshot_open(s, &snap);
	if (rc)
		return fail("strata_snapshot_open", rc);
	if ((rc = strata_snapshot_root(snap, "consumer", &id)) ||
	    (rc = strata_resolve(snap, id, &data, &size))) {
		strata_snapshot_close(snap);
		return fail("reading the node", rc);
	}
	int bad = id != want || size != sizeof message || memcmp(data, message, size) != 0;
	strata_snapshot_close(snap);
	if (bad)
		fprintf(stderr, "consumer.c: the snapshot returned other bytes than were stored\n");
	return bad;
}

int main(void)
{
	if (strcmp(strata_version(), STRATA_VERSION_STRING) != 0) {
		fprintf(stderr, "consumer.c: header says %s, library says %s\n",
			STRATA_VERSION_STRING, strata_version());
		return 1;
	}
	strata_store *s;
	strata_node_id id;
	int rc = strata_open(NULL, &s);
	if (rc)
		return fail("strata_open", rc);
	int bad = write_node(s, &id) || read_node(s, id);
	if ((rc = strata_close(s)))
		return fail("strata_close", rc);
	if (bad)
		return 1;
	printf("consumer.c: ok (strata %s)\n", strata_version());
	return 0;
}
