// main.cpp — a C++17 consumer of the installed library, built through
// find_package(strata). Proves the public header is valid C++ (extern "C",
// no C-only constructs) and that the exported targets link and run: it
// commits a node, reads it back through a snapshot and compares the bytes.
#include <strata/strata.h>
#include <strata/version.h>

#include <cstdio>
#include <cstring>
#include <string_view>

namespace {

constexpr std::string_view message = "hello from an installed strata (C++)";

int fail(const char *what, int rc)
{
	std::fprintf(stderr, "main.cpp: %s: %s\n", what, strata_strerror(rc));
	return 1;
}

// Closes the snapshot on every path out of the reading scope.
struct snapshot_guard {
	strata_snapshot *snap = nullptr;
	~snapshot_guard() { strata_snapshot_close(snap); }
};

int write_node(strata_store *s, strata_node_id &id)
{
	const char *const roots[] = {"consumer"};
	strata_txn *t = nullptr;
	void *data = nullptr;
	int rc = strata_txn_begin(s, roots, 1, 0, &t);
	if (rc)
		return fail("strata_txn_begin", rc);
	rc = strata_txn_alloc(t, static_cast<uint32_t>(message.size()), 7, &id, &data);
	if (!rc) {
		std::memcpy(data, message.data(), message.size());
		rc = strata_txn_set_root(t, "consumer", id);
	}
	if (rc) {
		strata_txn_abort(t);
		return fail("building the node", rc);
	}
	rc = strata_txn_commit(t, nullptr);
	return rc ? fail("strata_txn_commit", rc) : 0;
}

int read_node(strata_store *s, strata_node_id want)
{
	snapshot_guard g;
	strata_node_id id = STRATA_NODE_NULL;
	const void *data = nullptr;
	uint32_t size = 0;
	int rc = strata_snapshot_open(s, &g.snap);
	if (rc)
		return fail("strata_snapshot_open", rc);
	if ((rc = strata_snapshot_root(g.snap, "consumer", &id)) ||
	    (rc = strata_resolve(g.snap, id, &data, &size)))
		return fail("reading the node", rc);
	std::string_view got(static_cast<const char *>(data), size);
	if (id != want || got != message) {
		std::fprintf(stderr, "main.cpp: the snapshot returned other bytes than were stored\n");
		return 1;
	}
	return 0;
}

} // namespace

int main()
{
	if (std::string_view(strata_version()) != STRATA_VERSION_STRING) {
		std::fprintf(stderr, "main.cpp: header/library version mismatch\n");
		return 1;
	}
	strata_store *s = nullptr;
	strata_node_id id = STRATA_NODE_NULL;
	int rc = strata_open(nullptr, &s);
	if (rc)
		return fail("strata_open", rc);
	int bad = write_node(s, id) || read_node(s, id);
	if ((rc = strata_close(s)))
		return fail("strata_close", rc);
	if (bad)
		return 1;
	std::printf("main.cpp: ok (strata %s)\n", strata_version());
	return 0;
}
