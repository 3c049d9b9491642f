/*
 * strata.h — the public contract of the Strata substrate.
 *
 * Strata is an MVCC copy-on-write node store. Applications (index engines)
 * allocate nodes, name a few of them as roots, and read them back through
 * snapshots that stay consistent for their whole life while writers go on.
 *
 * Handles are opaque. Every function that can fail returns an int status:
 * 0 (STRATA_OK) on success, a negative STRATA_E* code from this header, or a
 * negated errno value (-ENOMEM, -EIO, ...). strata_strerror() explains any of
 * them. No function aborts the process on bad input.
 *
 * Threads: a strata_store may be used from any number of threads at once.
 * A strata_txn and a strata_snapshot are used by one thread at a time (they
 * may move between threads, with the usual happens-before hand-off).
 *
 * Lifetime of returned pointers is stated on each function. The general rule:
 * node bytes read through a snapshot stay valid and unchanged until that
 * snapshot is closed; node bytes obtained from a transaction stay valid until
 * the transaction commits or aborts.
 */
#ifndef STRATA_STRATA_H
#define STRATA_STRATA_H

#include <stddef.h>
#include <stdint.h>

#include "strata/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status codes ---------------------------------------------------------
 * Our own codes live in [-10999, -10000], away from every -errno value. */
enum strata_status {
	STRATA_OK = 0,
	STRATA_EINVAL = -10001,      /* bad argument (NULL, size 0, bad option) */
	STRATA_ESTALE = -10002,      /* NodeID's tag does not match: handle reused or never issued */
	STRATA_ENOTVISIBLE = -10003, /* node exists but is not part of this snapshot or txn */
	STRATA_ENOMEM = -10004,      /* allocation failed; nothing changed */
	STRATA_EBUSY = -10005,       /* would block (NOWAIT) or a write conflict */
	STRATA_ENOTLOCKED = -10006,  /* root not named when the transaction began */
	STRATA_ETOOBIG = -10007,     /* node larger than STRATA_NODE_MAX */
	STRATA_EFULL = -10008,       /* snapshot table or NodeID space exhausted */
	STRATA_ENOTFOUND = -10009,   /* no such root name, or no such key/entry in an index */
	STRATA_ENOTSUP = -10010,     /* operation or mode not available in this build */
	STRATA_ECORRUPT = -10011,    /* checksum or structure mismatch: data not served */
	STRATA_EIO = -10012,         /* an I/O error poisoned the store for writing */
	STRATA_ENOSPC = -10013,      /* storage full; the failed operation left no trace */
	STRATA_EFORMAT = -10014,     /* not a Strata store, or a newer format version */
	STRATA_ETRUNCATED = -10015,  /* file shorter than its own header says */
	STRATA_ESNAPSHOT_TOO_OLD = -10016, /* snapshot exceeded its age/retention cap */
	STRATA_EREADONLY = -10017,   /* node not writable in this transaction */
	STRATA_ENAME = -10018,       /* root name empty or longer than STRATA_ROOT_NAME_MAX */
	/* Index-level codes (X-tree, B+tree). */
	STRATA_EEXIST = -10019,      /* key already present and overwrite was refused */
	STRATA_EKEYSIZE = -10020,    /* key empty (where not allowed) or longer than the index's maximum */
	STRATA_EWRONGINDEX = -10021, /* root is not an index of this kind (foreign or empty root) */
	STRATA_ECOORD = -10022,      /* NaN or infinite coordinate, or min > max */
	STRATA_EDIMS = -10023        /* dimension count out of range or not the tree's */
};

/* Explains any status this library returns (ours or -errno). Never NULL; the
 * string is static. */
STRATA_API const char *strata_strerror(int status);

/* ---- NodeID ----------------------------------------------------------------
 * 64 bits, stable for the node's life (also when a node moves on disk):
 *
 *   63                36 35                          6 5      0
 *  +--------------------+-----------------------------+--------+
 *  |     tag (28)       |     handle index (30)       |shard(6)|
 *  +--------------------+-----------------------------+--------+
 *
 * shard: object-table shard (0..63). index: entry within the shard. tag: ABA
 * tag of the entry, bumped exactly once each time the handle is freed; it
 * starts at 1, so 0 is never a valid NodeID. Resolving an ID whose tag no
 * longer matches returns STRATA_ESTALE, never another node's bytes. A handle
 * whose tag would wrap is retired for good instead of reused. */
typedef uint64_t strata_node_id;
#define STRATA_NODE_NULL ((strata_node_id)0)
#define STRATA_NODEID_SHARD_BITS 6
#define STRATA_NODEID_INDEX_BITS 30
#define STRATA_NODEID_TAG_BITS 28
#define STRATA_NODEID_SHARD(id) ((uint32_t)((id) & 0x3fu))
#define STRATA_NODEID_INDEX(id) ((uint32_t)(((id) >> 6) & 0x3fffffffu))
#define STRATA_NODEID_TAG(id) ((uint32_t)((id) >> 36))

/* Largest node payload in bytes. Nodes up to 64 KiB come from size-classed
 * segments; larger ones are large objects. */
#define STRATA_NODE_MAX (16u * 1024 * 1024 - 1)
/* Longest root name in bytes, excluding the terminating NUL. */
#define STRATA_ROOT_NAME_MAX 255

/* ---- store -------------------------------------------------------------- */
typedef struct strata_store strata_store;
typedef struct strata_txn strata_txn;
typedef struct strata_snapshot strata_snapshot;

typedef enum strata_mode {
	STRATA_IN_MEMORY = 0, /* nodes live in process memory; nothing survives close */
	STRATA_DURABLE = 1    /* nodes, object table and roots persisted in `path` */
} strata_mode;

/* How a commit is made durable (DURABLE mode; IN_MEMORY ignores it).
 *  SYNC   strata_txn_commit returns after the commit's WAL frames are on
 *         stable storage; the commit becomes visible to snapshots only then,
 *         so a reader never sees a state that a crash could take back.
 *         Concurrent SYNC commits share syncs (group commit).
 *  ASYNC  returns at once and is visible at once (in epoch order: after any
 *         earlier SYNC commit is durable); its frames are written and synced
 *         within async_interval_ms. A crash may lose the ASYNC commits of
 *         that last interval — never a part of one, never a SYNC commit.
 *  NONE   like ASYNC, with no promise of when it is synced: a crash may lose
 *         every NONE commit not yet covered by a later SYNC commit, a
 *         checkpoint or close. (Today the coordinator's timed sync for
 *         ASYNC also covers NONE frames; do not rely on it.)
 * Recovery always yields exactly the state after some commit. */
typedef enum strata_durability {
	STRATA_SYNC = 0,
	STRATA_ASYNC = 1,
	STRATA_NONE = 2
} strata_durability;

typedef struct strata_options {
	strata_mode mode;
	const char *path;            /* DURABLE: store directory; ignored IN_MEMORY */
	uint32_t ot_shards_max;      /* power of two in 1..64; default 64 */
	uint32_t ot_shards_initial;  /* shards active at open, power of two; default 1 */
	uint32_t max_snapshots;      /* snapshots + transactions open at once; default 1024 */
	uint32_t reclaim_interval;   /* try reclamation every N commits; default 1 */
	/* ---- DURABLE mode ---- */
	unsigned flags;              /* STRATA_OPEN_* */
	strata_durability durability; /* default for transactions; default SYNC */
	uint32_t async_interval_ms;  /* ASYNC commits synced within this; default 10 */
	uint64_t wal_file_size;      /* power of two >= 1 MiB; default 64 MiB (new stores) */
	uint64_t checkpoint_wal_bytes; /* checkpoint after this much WAL; default 64 MiB */
	uint32_t checkpoint_interval_ms; /* and at least this often if anything changed;
					    default 60000; 0: only by WAL size and on demand */
	uint64_t checkpoint_dirty_nodes; /* or when this many nodes were written since the
					    last one (they make the next checkpoint's
					    work); default 1000000. A commit that crosses
					    a threshold wakes the checkpointer at once, so
					    checkpoints keep pace with the write rate. */
	uint64_t cache_bytes;        /* bound on node images in memory; 0 (default): none,
					an image read stays in memory until close.
					With a bound, images are read on demand into a
					cache (2Q: a probation FIFO, then CLOCK) and
					evicted when unused; images written since the
					last checkpoint cannot be evicted, and a
					checkpoint starts when they fill half of it. A
					snapshot keeps every image it may hold until it
					closes. Nodes above 64 KiB are not cached (they
					stay in memory once read). A store made durable
					live (strata_make_durable) has no bound until it
					is reopened. See design/ARCHITECTURE.md. */
	/* Caps on long readers (0: none). A snapshot older than the age, or
	 * keeping more than the bytes alive (retired versions it can still
	 * see, plus cached images unlinked while it was open), is expired:
	 * its next read (strata_resolve, strata_node_stat,
	 * strata_snapshot_root, or an index query through them) returns
	 * STRATA_ESNAPSHOT_TOO_OLD and it stops holding anything back; every
	 * pointer it returned before is invalid from that return on, and
	 * every later read fails the same way: close it. A snapshot that makes
	 * no call keeps its hold until its next call or close (its pointers
	 * may be in use: they are never freed under it); strata_snapshot_list
	 * shows such readers. Checked when reclamation runs (after commits).
	 * Transactions are never expired. */
	uint64_t snapshot_max_age_ms;
	uint64_t snapshot_max_retained_bytes;
	/* Compaction (DURABLE; see strata_compact). A size class qualifies
	 * when its live slots are at most compact_live_fraction of its slots
	 * (default 0.8) and at least one of its segments can be emptied. The
	 * coordinator compacts when the data file is larger than
	 * compact_min_file_bytes (default 64 MiB) and file / live bytes is above
	 * compact_amplification (default 1.5; 0 turns background compaction
	 * off), moving at most compact_bytes_per_round per checkpoint
	 * (default 16 MiB): the throttle. */
	double compact_live_fraction;
	double compact_amplification;
	uint64_t compact_min_file_bytes;
	uint64_t compact_bytes_per_round;
} strata_options;

enum strata_open_flags {
	STRATA_OPEN_CREATE = 1u << 0,  /* create the store if `path` holds none */
	STRATA_OPEN_SALVAGE = 1u << 1  /* on a corrupt WAL, keep the commits before the
					  damage instead of failing (see strata_open) */
};

/* Fills *opts with defaults (IN_MEMORY). Call it before setting fields so
 * fields added later get their defaults. */
STRATA_API void strata_options_init(strata_options *opts);

/* Opens a store. On success *out is a new handle, to be closed with
 * strata_close(). opts may be NULL (defaults: IN_MEMORY).
 *
 * DURABLE: `path` is a directory. With STRATA_OPEN_CREATE a directory that
 * holds no store (no SUPER file) gets a new one. An existing store is
 * recovered: newest valid superblock -> its checkpoint -> WAL replay; a torn
 * WAL tail is cut. Open modifies no file before it has validated it. One
 * process at a time may open a store (LOCK file).
 * Errors: STRATA_EINVAL (bad option), STRATA_ENOMEM,
 *         STRATA_EBUSY (another process has the store open),
 *         STRATA_EFORMAT (not a Strata store, or a newer format),
 *         STRATA_ETRUNCATED (a store file shorter than its header says),
 *         STRATA_ECORRUPT (a checksum failed where no fallback exists; the
 *           message from strata_last_error names the file and offset),
 *         -ENOENT (no store and no STRATA_OPEN_CREATE), other -errno. */
STRATA_API int strata_open(const strata_options *opts, strata_store **out);

/* What the last failed strata_open in this thread found, and for a
 * successful DURABLE open, what recovery did (commits replayed, a cut torn
 * tail, or with STRATA_OPEN_SALVAGE the commits lost). Never NULL; valid
 * until the next strata_open in this thread. */
STRATA_API const char *strata_last_error(void);

/* DURABLE: writes a checkpoint now (object table, roots, node images) and
 * recycles the WAL it makes unnecessary. Readers are never blocked; writers
 * wait only for a short fence. Errors: STRATA_EINVAL (IN_MEMORY),
 * STRATA_EIO (the store is poisoned), -errno from the file system. */
STRATA_API int strata_checkpoint(strata_store *store);

/* DURABLE: compaction. In each size class with at most
 * compact_live_fraction of its slots live, live nodes move into the
 * lowest-numbered segments of the class that can hold them (NodeIDs,
 * parents and roots unchanged: only object-table entries are repointed),
 * as part of a checkpoint, so a crash at any point leaves the old places
 * or the new ones, both complete. Old places are reused only once that
 * checkpoint is durable and no snapshot that could read them is open.
 * Emptied segments at the end of `data` are then cut off (the file is
 * truncated); emptied ones in the middle are reused by their class.
 * strata_compact runs rounds until nothing qualifies or a round moves
 * nothing; the coordinator does one round, moving at most
 * compact_bytes_per_round, whenever it checkpoints and `data` is over
 * compact_min_file_bytes with file / live bytes over
 * compact_amplification. A round loads the whole object table. *moved
 * (optional) gets the bytes moved. Readers are never blocked; writers go
 * on (only a checkpoint's short fence).
 * Errors: STRATA_EINVAL (IN_MEMORY), STRATA_EIO, STRATA_ENOMEM, -errno. */
STRATA_API int strata_compact(strata_store *store, uint64_t *moved);

/* Closes the store and frees all its memory. Every snapshot and transaction
 * must be closed/committed/aborted first; close returns STRATA_EBUSY and does
 * nothing if one is still open. NULL is accepted (returns 0). */
STRATA_API int strata_close(strata_store *store);

/* Turns a live IN_MEMORY store into a DURABLE one in directory `dir`
 * (created if missing; it must not hold a store). Writers pause for a short
 * fence; then every commit goes to the WAL, a full checkpoint is written,
 * and the store appears in `dir` (its SUPER file) only once that checkpoint
 * is durable: a crash before that leaves no store there. Snapshots and
 * transactions open across the switch stay valid. Durability options
 * (checkpoint policy, WAL file size) are the store's strata_options.
 * Errors: STRATA_EINVAL (already DURABLE, NULL), STRATA_EBUSY (dir locked by
 * another process), -EEXIST (dir holds a store), -errno from the file
 * system. A failure before the switch leaves the store IN_MEMORY and
 * unchanged; a failure of the first checkpoint leaves it poisoned for
 * writes (STRATA_EIO), readable. */
STRATA_API int strata_make_durable(strata_store *store, const char *dir);

/* Runs reclamation now: frees retired nodes that no open snapshot can see.
 * Commits already do this every reclaim_interval commits. Returns the number
 * of nodes freed (>= 0). */
STRATA_API int64_t strata_reclaim(strata_store *store);

/* ---- write transactions ----------------------------------------------------
 * A transaction locks the roots it names (in a deadlock-free order), reads the
 * latest committed state, and publishes all its changes in one new epoch at
 * commit. Transactions on disjoint roots run in parallel; on a shared root
 * they serialize. Nodes a transaction allocates are invisible to everybody
 * else until commit; abort leaves no trace. */
enum strata_txn_flags {
	STRATA_TXN_NOWAIT = 1u << 0, /* return STRATA_EBUSY instead of waiting for a root */
	STRATA_TXN_SYNC = 1u << 1,   /* durability of this transaction's commit: */
	STRATA_TXN_ASYNC = 1u << 2,  /* at most one of these three; none: the */
	STRATA_TXN_NONE = 1u << 3    /* store's default (strata_options.durability) */
};

/* Begins a transaction on nroots root names (nroots may be 0: a transaction
 * that only allocates and reads). Names that never existed are created empty
 * (STRATA_NODE_NULL) and become visible at commit.
 * Errors: STRATA_EINVAL, STRATA_ENAME, STRATA_EBUSY (NOWAIT and a root is
 *         held), STRATA_EFULL (snapshot table full), STRATA_ENOMEM. */
STRATA_API int strata_txn_begin(strata_store *store, const char *const *roots, size_t nroots,
				unsigned flags, strata_txn **out);

/* Allocates a node of `size` bytes (1..STRATA_NODE_MAX) with an application
 * `kind` (0..255, stored, never interpreted). *id gets its NodeID and *data
 * a writable pointer to zeroed bytes, valid until commit/abort.
 * Errors: STRATA_EINVAL, STRATA_ETOOBIG, STRATA_ENOMEM, STRATA_EFULL,
 *         STRATA_ECORRUPT, -errno (DURABLE: reusing a handle meant loading
 *           an object-table chunk from disk, and it is damaged or unreadable). */
STRATA_API int strata_txn_alloc(strata_txn *txn, uint32_t size, uint8_t kind, strata_node_id *id,
				void **data);

/* strata_txn_alloc without the zeroing: *data points at `size` bytes of
 * undefined content, every one of them the caller's to write before commit
 * (whatever is left unwritten is stored as found). For nodes the caller
 * fills in whole at once, such as the halves of a split. Same errors. */
STRATA_API int strata_txn_alloc_uninit(strata_txn *txn, uint32_t size, uint8_t kind,
				       strata_node_id *id, void **data);

/* Makes node `id` writable (copy-on-write). A node born in this transaction
 * is returned in place (*new_id == id). An older node is copied to a new
 * NodeID (*new_id), and `id` is retired as of this transaction's commit; the
 * caller repoints parents/roots at *new_id. *data stays valid until
 * commit/abort; *size (optional) gets the node size.
 * Errors: STRATA_ESTALE, STRATA_ENOTVISIBLE, STRATA_EBUSY (another open
 *         transaction already retired it), STRATA_ENOMEM, STRATA_EFULL. */
STRATA_API int strata_txn_write(strata_txn *txn, strata_node_id id, strata_node_id *new_id,
				void **data, uint32_t *size);

/* Copy-on-write without the copy: claims node `id` like strata_txn_write
 * but hands back a fresh, uninitialised node of `new_size` bytes (0: the
 * old size; the kind is kept) in *new_id / *data, and the old version's
 * bytes in *old_data (and *old_size, optional), so the caller builds the new
 * version in one pass (insert while copying, split, resize). Every byte of
 * *data is the caller's to write: nothing is copied or zeroed.
 * A committed node is retired as of this commit, as with strata_txn_write.
 * A node born in this transaction is replaced too (never returned in
 * place, so the two never overlap) and freed when the transaction ends.
 * *old_data stays valid until commit/abort; *data likewise. Use *new_id from
 * now on: `id` must not be written again in this transaction.
 * Errors: STRATA_EINVAL, STRATA_ETOOBIG, STRATA_ESTALE, STRATA_ENOTVISIBLE,
 *         STRATA_EBUSY (another open transaction already retired it),
 *         STRATA_ENOMEM, STRATA_EFULL. */
STRATA_API int strata_txn_rewrite(strata_txn *txn, strata_node_id id, uint32_t new_size,
				  strata_node_id *new_id, void **data, const void **old_data,
				  uint32_t *old_size);

/* Reads node `id` as this transaction sees it (its own changes included).
 * *data is valid until commit/abort. size, kind optional.
 * Errors: STRATA_ESTALE, STRATA_ENOTVISIBLE, STRATA_EINVAL. */
STRATA_API int strata_txn_read(strata_txn *txn, strata_node_id id, const void **data,
			       uint32_t *size, uint8_t *kind);

/* strata_txn_read that also says whether this transaction owns node `id`
 * (*owned = 1: born in it, by strata_txn_alloc*, strata_txn_write's copy or
 * strata_txn_rewrite; 0: a committed node). An owned node's *data is the
 * same writable pointer strata_txn_write would return, so the caller may
 * write it in place without a second lookup; a committed one must still go
 * through strata_txn_write or strata_txn_rewrite. Pointer lifetime and
 * errors as strata_txn_read; *owned is set only on success. */
STRATA_API int strata_txn_read_own(strata_txn *txn, strata_node_id id, const void **data,
				   uint32_t *size, int *owned);

/* A hint that this transaction will soon read node `id` (strata_txn_read*,
 * strata_txn_write, strata_txn_rewrite): starts bringing its object-table
 * entry into the CPU cache and returns at once, so an index can ask for a
 * likely child while it still works on the parent. Never blocks, reads no
 * disk, changes nothing; an id that is stale, foreign or whose entry is not
 * in memory is ignored. NULL txn is accepted. */
STRATA_API void strata_txn_prefetch(const strata_txn *txn, strata_node_id id);

/* Deletes node `id`: a node born in this transaction is freed at once; an
 * older one is retired as of commit.
 * Errors: STRATA_ESTALE, STRATA_ENOTVISIBLE, STRATA_EBUSY. */
STRATA_API int strata_txn_free(strata_txn *txn, strata_node_id id);

/* Reads / sets a root this transaction locked. set_root takes effect at
 * commit; STRATA_NODE_NULL empties the root. The node set must be visible to
 * this transaction.
 * Errors: STRATA_ENOTLOCKED, STRATA_ENAME, STRATA_ESTALE, STRATA_ENOTVISIBLE. */
STRATA_API int strata_txn_get_root(strata_txn *txn, const char *name, strata_node_id *id);
STRATA_API int strata_txn_set_root(strata_txn *txn, const char *name, strata_node_id id);

/* Epoch the transaction reads from. */
STRATA_API uint64_t strata_txn_base_epoch(const strata_txn *txn);

/* Commits: all changes become visible at once in a new epoch (*epoch, if
 * not NULL). The txn handle is freed whatever the result. A transaction
 * that changed nothing commits without a new epoch (*epoch = base epoch).
 * DURABLE: see strata_durability for when it returns and becomes visible.
 * Errors: STRATA_ENOMEM (nothing published, as if aborted),
 *         STRATA_EIO (the store is poisoned by an earlier I/O failure, or
 *           this commit's write or sync failed: it is not visible, and
 *           every later write returns STRATA_EIO; reads go on),
 *         STRATA_ENOSPC (storage full: this commit is not visible; the
 *           store is read-only from then on),
 *         STRATA_EFULL (epochs would reach 2^47, WAL positions 2^63; no
 *           real store does: nothing published, as if aborted),
 *         other -errno. */
STRATA_API int strata_txn_commit(strata_txn *txn, uint64_t *epoch);

/* Aborts: frees what the transaction allocated, un-retires what it retired.
 * Nothing of it was ever visible. NULL is accepted. */
STRATA_API void strata_txn_abort(strata_txn *txn);

/* ---- snapshots -------------------------------------------------------------
 * A snapshot pins the latest committed epoch. It sees exactly that state for
 * its whole life; it takes no lock and never blocks writers. Memory of nodes
 * it can see is not reclaimed while it is open. */

/* Errors: STRATA_EFULL (max_snapshots open), STRATA_EINVAL. */
STRATA_API int strata_snapshot_open(strata_store *store, strata_snapshot **out);
/* Closes; pointers obtained through it become invalid. NULL is accepted. */
STRATA_API void strata_snapshot_close(strata_snapshot *snap);
STRATA_API uint64_t strata_snapshot_epoch(const strata_snapshot *snap);

/* Resolves `id` as of the snapshot's epoch. *data (and *size, optional)
 * stay valid and unchanged until strata_snapshot_close(). This is the hot
 * path: no lock, no allocation. DURABLE: the first resolve of a node after
 * open reads its image (and, once per 16384 handles, its object-table
 * chunk) from disk and checks its CRC32C.
 * Errors: STRATA_ESTALE (tag mismatch, never issued, or freed),
 *         STRATA_ENOTVISIBLE (born after or retired at/before the epoch),
 *         STRATA_ECORRUPT (DURABLE: the image or its object-table chunk
 *           fails its checksum; strata_last_error() says where),
 *         STRATA_ENOMEM, -errno (DURABLE: reading it failed). */
STRATA_API int strata_resolve(const strata_snapshot *snap, strata_node_id id, const void **data,
			      uint32_t *size);

typedef struct strata_node_info {
	uint32_t size;
	uint8_t kind;
	uint8_t size_class;  /* allocator class index; STRATA_CLASS_LARGE for large */
	uint64_t birth;      /* epoch it became visible */
	uint64_t retire;     /* epoch it stopped being visible; UINT64_MAX if live */
} strata_node_info;
#define STRATA_CLASS_LARGE 255

/* Same visibility rules as strata_resolve, returning metadata. */
STRATA_API int strata_node_stat(const strata_snapshot *snap, strata_node_id id,
				strata_node_info *info);

/* Reads root `name` as of the snapshot: *id is its NodeID, or
 * STRATA_NODE_NULL if the root was set empty. A name that had not been
 * committed at the snapshot's epoch gives STRATA_ENOTFOUND.
 * Errors: STRATA_ENAME, STRATA_ENOTFOUND. */
STRATA_API int strata_snapshot_root(const strata_snapshot *snap, const char *name,
				    strata_node_id *id);

/* ---- statistics ----------------------------------------------------------- */
#define STRATA_NUM_CLASSES 24 /* small size classes; large objects counted apart */

typedef struct strata_class_stats {
	uint32_t slot_size;     /* bytes per slot */
	uint64_t segments;      /* segments currently held by this class */
	uint64_t slots_total;   /* slots in those segments */
	uint64_t slots_used;
	uint64_t bytes_used;    /* slots_used * slot_size */
	uint64_t bytes_requested; /* sum of node sizes in used slots */
} strata_class_stats;

typedef struct strata_store_stats {
	uint64_t nodes_live;     /* committed, not retired */
	uint64_t nodes_retired;  /* retired, waiting for no snapshot to see them */
	uint64_t nodes_reserved; /* allocated by open transactions */
	uint64_t handles_free;   /* freed handles ready for reuse */
	uint64_t handles_total;  /* entries ever issued (all shards) */
	uint32_t shards_active;
	uint32_t shards_max;
	uint64_t epoch_current;
	uint64_t epoch_oldest_pinned; /* == epoch_current when nothing is pinned */
	uint32_t snapshots_open;      /* snapshots + transactions */
	uint64_t pinned_retired_nodes; /* retired nodes an open snapshot can still see */
	uint64_t pinned_retired_bytes;  /* (nodes_retired - these: reclaimable now) */
	uint64_t reclaim_runs;
	uint64_t reclaimed_nodes;
	uint64_t reclaimed_bytes;
	uint64_t commits;        /* commits that published an epoch (empty ones excluded) */
	uint64_t aborts;
	uint64_t large_objects;
	uint64_t large_bytes;
	uint64_t segment_bytes;  /* memory held in segments (with cache_bytes set they
				  * are address space only: images live in the cache) */
	uint64_t chunks_on_disk; /* DURABLE: object-table chunks not loaded yet (an open
				  * reads none; each loads on first use) */
	uint64_t chunks_loaded;  /* chunks loaded that way since open */
	uint64_t segments_unbuilt; /* DURABLE: segments whose header (2 pages) is not built
				    * yet (an open builds none; each on first use) */
	double fragmentation;    /* 1 - bytes_requested / segment_bytes (0 when empty) */
	strata_class_stats classes[STRATA_NUM_CLASSES];
	/* ---- bounded cache (DURABLE, cache_bytes > 0; else all 0) ---- */
	uint64_t cache_bytes_max;   /* the option */
	uint64_t cache_bytes;       /* node images in the cache (dirty and waiting included) */
	uint64_t cache_dirty_bytes; /* written since the last checkpoint: not evictable */
	uint64_t cache_grace_bytes; /* unlinked, kept for snapshots that may hold them */
	uint64_t cache_hits;        /* resolves served from the cache */
	uint64_t cache_misses;      /* images read from `data` */
	uint64_t cache_evictions;
	uint64_t cache_bytes_read;
	uint64_t snapshots_expired;  /* snapshots that gave up their pin (caps) */
	/* Space (DURABLE; 0 IN_MEMORY). live_bytes: bytes of committed nodes
	 * no reader needs to be retired for (allocated slots' node sizes and
	 * large images, less retired versions waiting for readers and slots
	 * waiting for the next checkpoint). file_bytes: the data file and the
	 * current checkpoint file (the WAL is apart: a few preallocated files,
	 * bounded by checkpoint_wal_bytes). space_amplification = file_bytes /
	 * live_bytes (0 when nothing lives). */
	uint64_t live_bytes;
	uint64_t file_bytes;
	double space_amplification;
	/* Compaction progress since open. */
	uint64_t compact_rounds;
	uint64_t compact_moved_nodes;
	uint64_t compact_moved_bytes;
	uint64_t compact_segments_freed; /* given back to the file system */
	/* Segment pool (strata_segment_pool_set). pool_hits / pool_misses: this
	 * store's new segments that came from the pool (already faulted in) /
	 * from fresh memory. pool_prefaulted and pool_bytes are process-wide:
	 * segments the prefault thread faulted in since the process started,
	 * and the bytes of free segments in the pool now. */
	uint64_t pool_hits;
	uint64_t pool_misses;
	uint64_t pool_prefaulted;
	uint64_t pool_bytes;
} strata_store_stats;

/* One open snapshot or transaction (strata_snapshot_list). */
typedef struct strata_snapshot_info {
	uint64_t epoch;          /* the epoch it reads */
	uint64_t age_ms;         /* since it opened (coarse clock: a few ms) */
	uint64_t retained_bytes; /* retired node bytes it can still see, not freed
				    because of it or an older reader */
	uint64_t retained_nodes;
	uint64_t cache_bytes_held; /* bounded cache: images unlinked since it opened */
	uint8_t kind;            /* 0 snapshot, 1 write transaction, 2 checkpoint */
	uint8_t expired;         /* 1: past a cap (it lets go at its next call) */
} strata_snapshot_info;

/* Fills out[0..max) with the open snapshots and transactions, oldest epoch
 * first; *n gets how many there are (may exceed max). Counters are read
 * without stopping anyone: approximately simultaneous.
 * Errors: STRATA_EINVAL. */
STRATA_API int strata_snapshot_list(strata_store *store, strata_snapshot_info *out, size_t max,
				    size_t *n);

/* Fills *st. Counters are read without stopping writers: each is exact, the
 * set is approximately simultaneous. */
STRATA_API int strata_stats(strata_store *store, strata_store_stats *st);

/* Checks the store's internal invariants (object table states, birth <=
 * retire, allocator bitmaps against the object table). Returns 0 if clean,
 * STRATA_ECORRUPT if not; each problem is reported through `report` (may be
 * NULL) with a message naming what was found.
 * Safe on a live store: it waits (up to 10 s) for the open write
 * transactions to end, and new ones wait in strata_txn_begin until it is
 * done (STRATA_TXN_NOWAIT ones get STRATA_EBUSY). Snapshots go on reading;
 * commits, reclamation and checkpoints wait while it runs. A thread that
 * holds a write transaction of this store, and calls it or begins another
 * while it waits, waits out the 10 s.
 * Errors: STRATA_EINVAL; STRATA_ECORRUPT; STRATA_EBUSY if write
 * transactions were still open after 10 s (nothing was checked;
 * strata_last_error says how many). */
typedef void (*strata_report_fn)(void *ctx, const char *message);
STRATA_API int strata_check(strata_store *store, strata_report_fn report, void *ctx);

/* ---- segment pool (process-wide) --------------------------------------------
 * A store's node memory comes in 2 MiB segments. Segments a store releases
 * (emptied, or all of them at close) stay in one pool for the whole
 * process, faulted in, and any store's next segment comes from there
 * first, so a new store reuses a closed one's memory instead of faulting
 * in fresh pages. The pool holds at most `bytes` (rounded down to 2 MiB;
 * 0 turns it off and frees what it holds); the default is 256 MiB, or a
 * sixteenth of physical memory if that is less. Returns the previous
 * bound. Thread-safe; design/ARCHITECTURE.md, "Segment pool". */
STRATA_API size_t strata_segment_pool_set(size_t bytes);

/* Keeps `segments` free segments faulted in ahead of need (within the
 * pool's bound), refilled by a background thread that runs while at least
 * one store is open; the last strata_close joins it. 0 turns it off.
 * Default: off until the process has made 32 segments (64 MiB) from fresh
 * memory for stores that keep node images in them (not bounded-cache
 * stores), then 32; any call to this function replaces that choice for
 * the rest of the process. Returns the previous value. Thread-safe. */
STRATA_API unsigned strata_segment_prefault_set(unsigned segments);

/* Library version string, e.g. "0.1.0". */
STRATA_API const char *strata_version(void);

#ifdef __cplusplus
}
#endif
#endif /* STRATA_STRATA_H */
