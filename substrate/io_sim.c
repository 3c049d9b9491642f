/*
 * io_sim.c — the simulated io_env (io_sim.h): an in-memory file system that
 * knows what is durable, so crash tests can cut the power at any step.
 *
 * Owns, per env (all under one mutex; the env is shared by every thread of
 * a store):
 *   - nodes: files and directories, like inodes, in creation order. A file
 *     has a current image (what reads and maps see), a durable image (what
 *     survives power loss) and its unsynced operations in order (writes with
 *     their bytes, truncates, allocates);
 *   - two namespaces, path -> node, sorted by path: `cur` (what lookups see)
 *     and `dur` (what survives power loss);
 *   - the pending directory operations (create, mkdir, unlink, rename), in
 *     order, each recording the node it concerns;
 *   - the open handles, the step counter and the armed faults.
 *
 * Invariants:
 *   - image(cur) == image(dur) + the node's pending ops replayed in order;
 *     io_sync applies them to dur and forgets them;
 *   - namespace cur == dur + pending directory ops replayed in order;
 *     io_sync_dir(d) applies the ops that touch d (and the earlier ops they
 *     depend on) to dur, in order;
 *   - a directory op replays only if it still applies (an unlink or rename
 *     removes the entry only if it still names the recorded node; a create
 *     needs its parent directory): a power loss that drops an op can never
 *     make a later kept op act on something else;
 *   - bytes of an image at or beyond its size are zero, so growing needs no
 *     clearing; an image is a fixed reservation (SIM_FILE_MAX) that never
 *     moves, so a pointer from io_map stays valid and sees later writes;
 *   - a node lives while a namespace, a pending op or an open handle refers
 *     to it (collected by gc()).
 *
 * Paths are normalized (repeated '/', "." components and a trailing '/'
 * removed; ".." is kept as a name: there are no links to resolve). The root
 * ("/" or ".") always exists and is never pending.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"
#include "io_sim.h"

#define SIM_FILE_MAX (1ull << 30)   /* per image: address space reserved, not memory */
#define SIM_COMMIT_STEP (64u << 10) /* images become writable in these steps */
#define SIM_SECTOR 512u             /* torn writes keep whole sectors */

/* ---- small helpers ------------------------------------------------------- */

/* Returns v grown to hold `need` elements (v itself if it already does), or
 * NULL (v untouched) when memory is short. */
static void *vec_grow(void *v, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return v;
	size_t nc = *cap ? *cap * 2 : 8;
	while (nc < need)
		nc *= 2;
	void *p = strata_mem_realloc(v, *cap * elem, nc * elem);
	if (p)
		*cap = nc;
	return p;
}

static char *str_dup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = strata_mem_alloc(n);
	return p ? memcpy(p, s, n) : NULL;
}

static void str_free(char *s)
{
	strata_mem_free(s, 0);
}

static uint64_t rng_step(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Canonical form of a path (see the top of the file); *out is freed with
 * str_free. */
static int norm_path(const char *in, char **out)
{
	size_t n = strlen(in), k = 0;
	if (!n)
		return -ENOENT;
	char *o = strata_mem_alloc(n + 2);
	if (!o)
		return -ENOMEM;
	bool abs = in[0] == '/';
	for (const char *s = in; *s;) {
		while (*s == '/')
			s++;
		const char *t = s;
		while (*t && *t != '/')
			t++;
		size_t cl = (size_t)(t - s);
		if (cl && !(cl == 1 && s[0] == '.')) {
			if (k || abs)
				o[k++] = '/';
			memcpy(o + k, s, cl);
			k += cl;
		}
		s = t;
	}
	if (!k)
		o[k++] = abs ? '/' : '.';
	o[k] = '\0';
	*out = o;
	return 0;
}

static bool is_root(const char *p, size_t n)
{
	return n == 1 && (p[0] == '/' || p[0] == '.');
}

/* The parent directory of a normalized path, as (pointer, length); the
 * pointer is into `path` or a static ".". */
static const char *parent_of(const char *path, size_t *len)
{
	const char *slash = strrchr(path, '/');
	if (!slash) {
		*len = 1;
		return ".";
	}
	*len = slash == path ? 1 : (size_t)(slash - path);
	return path;
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

/* ---- images -------------------------------------------------------------- */

typedef struct sim_image {
	unsigned char *base; /* SIM_FILE_MAX reserved; [0, committed) read-write */
	uint64_t size, committed;
} sim_image;

/* PROT_NONE reservation: costs no memory and no commit charge until a range
 * is made writable, so tens of files of 1 GiB each are fine. */
static int image_init(sim_image *im)
{
	void *p = mmap(NULL, SIM_FILE_MAX, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -ENOMEM;
	*im = (sim_image){.base = p};
	return 0;
}

static void image_destroy(sim_image *im)
{
	if (im->base)
		munmap(im->base, SIM_FILE_MAX);
	im->base = NULL;
}

/* Makes [0, need) writable. Never shrinks, never moves. */
static int image_reserve(sim_image *im, uint64_t need)
{
	if (need <= im->committed)
		return 0;
	if (need > SIM_FILE_MAX)
		return -EFBIG;
	uint64_t to = (need + SIM_COMMIT_STEP - 1) / SIM_COMMIT_STEP * SIM_COMMIT_STEP;
	if (mprotect(im->base + im->committed, to - im->committed, PROT_READ | PROT_WRITE))
		return -ENOMEM;
	im->committed = to;
	return 0;
}

/* Zeros [from, to); whole pages of a large range go back to the kernel
 * (private anonymous pages read as zero after MADV_DONTNEED). */
static void image_zero(sim_image *im, uint64_t from, uint64_t to)
{
	uint64_t pg = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t a = (from + pg - 1) / pg * pg, b = to / pg * pg;
	if (b > a + 16 * pg && !madvise(im->base + a, b - a, MADV_DONTNEED)) {
		memset(im->base + from, 0, a - from);
		memset(im->base + b, 0, to - b);
	} else if (to > from) {
		memset(im->base + from, 0, to - from);
	}
}

/* Callers have reserved `size` already. */
static void image_set_size(sim_image *im, uint64_t size)
{
	if (size < im->size)
		image_zero(im, size, im->size);
	im->size = size;
}

static int image_copy(sim_image *dst, const sim_image *src)
{
	int rc = image_reserve(dst, src->size);
	if (rc)
		return rc;
	memcpy(dst->base, src->base, src->size);
	image_set_size(dst, src->size);
	return 0;
}

/* ---- file operations ----------------------------------------------------- */

enum fop_kind { FOP_WRITE, FOP_TRUNCATE, FOP_ALLOCATE };

typedef struct file_op {
	int kind;
	uint64_t off, len; /* TRUNCATE: off is the new size */
	unsigned char *data; /* WRITE: len bytes, owned */
} file_op;

/* Applies one operation to an image; fails (image unchanged) only when the
 * image cannot be made large enough. */
static int fop_apply(sim_image *im, const file_op *op)
{
	uint64_t end = op->kind == FOP_TRUNCATE ? op->off : op->off + op->len;
	int rc = image_reserve(im, end);
	if (rc)
		return rc;
	switch (op->kind) {
	case FOP_WRITE:
		memcpy(im->base + op->off, op->data, op->len);
		if (end > im->size)
			im->size = end;
		break;
	case FOP_TRUNCATE:
		image_set_size(im, end);
		break;
	default: /* FOP_ALLOCATE: only grows; existing bytes stay */
		if (end > im->size)
			im->size = end;
	}
	return 0;
}

/* ---- nodes, handles, the env --------------------------------------------- */

typedef struct sim_file sim_file;

typedef struct sim_node {
	bool is_dir;
	bool mark;            /* gc */
	unsigned refs;        /* open handles, stale ones included */
	sim_file *lock_owner; /* the handle holding io_lock, or NULL */
	sim_image cur, dur;   /* files only */
	file_op *ops;         /* unsynced, in order */
	size_t nops, ops_cap;
} sim_node;

struct sim_file {
	io_file base;
	sim_node *node;
	unsigned flags;
	uint64_t gen; /* env generation at open; a power loss makes it stale */
	sim_file *prev, *next;
};

typedef struct ns_entry {
	char *path;
	sim_node *node;
} ns_entry;

typedef struct ns {
	ns_entry *v; /* sorted by strcmp of path */
	size_t n, cap;
} ns;

enum dop_kind { DOP_CREATE, DOP_MKDIR, DOP_UNLINK, DOP_RENAME };

typedef struct dir_op {
	int kind;
	char *a, *b; /* path; RENAME: from, to */
	sim_node *node;
	bool sel; /* chosen by sync_dir */
} dir_op;

typedef struct sim_env {
	io_env base;
	pthread_mutex_t lock;
	sim_node **nodes; /* creation order: power-loss randomness is replayable */
	size_t nnodes, nodes_cap;
	ns cur, dur;
	dir_op *dops;
	size_t ndops, dops_cap;
	sim_file *open;
	uint64_t steps, crash_after, fail_at, gen;
	int fail_err;
	bool crashed;
} sim_env;

static const io_ops sim_ops;

static sim_env *env_of(io_env *env)
{
	return (sim_env *)env;
}

static int node_new(bool is_dir, sim_node **out)
{
	sim_node *n = strata_mem_calloc(1, sizeof *n);
	if (!n)
		return -ENOMEM;
	n->is_dir = is_dir;
	if (!is_dir && (image_init(&n->cur) || image_init(&n->dur))) {
		image_destroy(&n->cur);
		strata_mem_free(n, sizeof *n);
		return -ENOMEM;
	}
	*out = n;
	return 0;
}

static void node_drop_ops(sim_node *n)
{
	for (size_t i = 0; i < n->nops; i++)
		strata_mem_free(n->ops[i].data, n->ops[i].len);
	n->nops = 0;
}

static void node_free(sim_node *n)
{
	node_drop_ops(n);
	strata_mem_free(n->ops, n->ops_cap * sizeof *n->ops);
	image_destroy(&n->cur);
	image_destroy(&n->dur);
	strata_mem_free(n, sizeof *n);
}

/* ---- namespaces ---------------------------------------------------------- */

/* strcmp(entry, key[0..len)) without a NUL-terminated key. */
static int cmp_key(const char *entry, const char *key, size_t len)
{
	int c = strncmp(entry, key, len);
	return c ? c : (entry[len] != '\0');
}

static size_t ns_lower(const ns *s, const char *key, size_t len)
{
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (cmp_key(s->v[mid].path, key, len) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static sim_node *ns_getn(const ns *s, const char *key, size_t len)
{
	size_t i = ns_lower(s, key, len);
	return i < s->n && !cmp_key(s->v[i].path, key, len) ? s->v[i].node : NULL;
}

static sim_node *ns_get(const ns *s, const char *path)
{
	return ns_getn(s, path, strlen(path));
}

static int ns_put(ns *s, const char *path, sim_node *node)
{
	size_t len = strlen(path), i = ns_lower(s, path, len);
	if (i < s->n && !strcmp(s->v[i].path, path)) {
		s->v[i].node = node;
		return 0;
	}
	ns_entry *v = vec_grow(s->v, &s->cap, s->n + 1, sizeof *v);
	if (!v)
		return -ENOMEM;
	s->v = v;
	char *copy = str_dup(path);
	if (!copy)
		return -ENOMEM;
	memmove(&s->v[i + 1], &s->v[i], (s->n - i) * sizeof *v);
	s->v[i] = (ns_entry){copy, node};
	s->n++;
	return 0;
}

static void ns_del(ns *s, const char *path)
{
	size_t i = ns_lower(s, path, strlen(path));
	if (i == s->n || strcmp(s->v[i].path, path))
		return;
	str_free(s->v[i].path);
	memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof *s->v);
	s->n--;
}

static void ns_clear(ns *s)
{
	for (size_t i = 0; i < s->n; i++)
		str_free(s->v[i].path);
	s->n = 0;
}

static void ns_destroy(ns *s)
{
	ns_clear(s);
	strata_mem_free(s->v, s->cap * sizeof *s->v);
	*s = (ns){0};
}

static int ns_copy(ns *dst, const ns *src)
{
	ns_clear(dst);
	for (size_t i = 0; i < src->n; i++) {
		int rc = ns_put(dst, src->v[i].path, src->v[i].node);
		if (rc)
			return rc;
	}
	return 0;
}

static bool dir_in(const ns *s, const char *p, size_t len)
{
	if (is_root(p, len))
		return true;
	sim_node *n = ns_getn(s, p, len);
	return n && n->is_dir;
}

/* 0 if path's parent is a directory in s, else -ENOENT or -ENOTDIR. */
static int parent_check(const ns *s, const char *path)
{
	size_t len;
	const char *p = parent_of(path, &len);
	if (dir_in(s, p, len))
		return 0;
	return ns_getn(s, p, len) ? -ENOTDIR : -ENOENT;
}

/* ---- garbage collection -------------------------------------------------- */

static void mark_ns(const ns *s)
{
	for (size_t i = 0; i < s->n; i++)
		s->v[i].node->mark = true;
}

/* Frees the nodes nothing can reach any more: not named now, not named
 * durably, not in a pending op, not open. Order of the rest is kept. */
static void gc(sim_env *e)
{
	for (size_t i = 0; i < e->nnodes; i++)
		e->nodes[i]->mark = e->nodes[i]->refs > 0;
	mark_ns(&e->cur);
	mark_ns(&e->dur);
	for (size_t i = 0; i < e->ndops; i++)
		e->dops[i].node->mark = true;
	size_t k = 0;
	for (size_t i = 0; i < e->nnodes; i++) {
		if (e->nodes[i]->mark)
			e->nodes[k++] = e->nodes[i];
		else
			node_free(e->nodes[i]);
	}
	e->nnodes = k;
}

/* ---- steps and faults ---------------------------------------------------- */

/* Every mutating call is one step, whatever its outcome. A crashed env
 * refuses them all; an armed failure fails exactly its step. */
static int step(sim_env *e)
{
	if (e->crashed)
		return -EIO;
	if (e->crash_after && e->steps >= e->crash_after) {
		e->crashed = true;
		return -EIO;
	}
	e->steps++;
	if (e->steps == e->fail_at) {
		e->fail_at = 0;
		return e->fail_err;
	}
	return 0;
}

/* ---- directory operations ------------------------------------------------ */

static void dop_free(dir_op *op)
{
	str_free(op->a);
	str_free(op->b);
}

/* Prepares a pending op: the path copies are made and the list grown here,
 * before the caller changes the namespace, so the caller's failure paths
 * only have to dop_free it, and appending it cannot fail. */
static int dop_prepare(sim_env *e, dir_op *op, int kind, const char *a, const char *b, sim_node *node)
{
	*op = (dir_op){.kind = kind, .node = node};
	dir_op *v = vec_grow(e->dops, &e->dops_cap, e->ndops + 1, sizeof *v);
	if (!v)
		return -ENOMEM;
	e->dops = v;
	op->a = str_dup(a);
	op->b = b ? str_dup(b) : NULL;
	if (op->a && (!b || op->b))
		return 0;
	dop_free(op);
	return -ENOMEM;
}

/* The directories an op touches: the parents of its paths, and for mkdir
 * the new directory itself (entries created in it depend on it). */
static int dop_dirs(const dir_op *op, const char *p[3], size_t len[3])
{
	int k = 0;
	p[k] = parent_of(op->a, &len[k]);
	k++;
	if (op->kind == DOP_RENAME) {
		p[k] = parent_of(op->b, &len[k]);
		k++;
	}
	if (op->kind == DOP_MKDIR) {
		p[k] = op->a;
		len[k] = strlen(op->a);
		k++;
	}
	return k;
}

/* Replays an op on a namespace if it still applies (see the invariants). */
static int dop_apply(ns *s, const dir_op *op)
{
	size_t len;
	const char *par;
	switch (op->kind) {
	case DOP_CREATE:
	case DOP_MKDIR:
		par = parent_of(op->a, &len);
		return dir_in(s, par, len) ? ns_put(s, op->a, op->node) : 0;
	case DOP_UNLINK:
		if (ns_get(s, op->a) == op->node)
			ns_del(s, op->a);
		return 0;
	default: /* DOP_RENAME */
		par = parent_of(op->b, &len);
		if (ns_get(s, op->a) != op->node || !dir_in(s, par, len))
			return 0;
		int rc = ns_put(s, op->b, op->node);
		if (!rc)
			ns_del(s, op->a);
		return rc;
	}
}

typedef struct dirset {
	const char **p;
	size_t *len;
	size_t n;
} dirset;

static bool dirset_has(const dirset *d, const char *p, size_t len)
{
	for (size_t i = 0; i < d->n; i++)
		if (d->len[i] == len && !memcmp(d->p[i], p, len))
			return true;
	return false;
}

/* Selects, walking back from the newest op, every op that touches `dir` or
 * a directory touched by an op already selected. An op left out shares no
 * directory (so no path) with any selected op after it, so applying the
 * selection now and the rest later replays the same history. */
static void select_for_dir(sim_env *e, dirset *set)
{
	for (size_t i = e->ndops; i-- > 0;) {
		const char *p[3];
		size_t len[3];
		int k = dop_dirs(&e->dops[i], p, len);
		bool hit = false;
		for (int j = 0; j < k && !hit; j++)
			hit = dirset_has(set, p[j], len[j]);
		e->dops[i].sel = hit;
		for (int j = 0; hit && j < k; j++)
			if (!dirset_has(set, p[j], len[j])) {
				set->p[set->n] = p[j];
				set->len[set->n++] = len[j];
			}
	}
}

/* Applies the selected ops to the durable namespace and drops them. */
static int apply_selected(sim_env *e)
{
	int rc = 0;
	size_t k = 0;
	for (size_t i = 0; i < e->ndops; i++) {
		if (!e->dops[i].sel) {
			e->dops[k++] = e->dops[i];
			continue;
		}
		if (!rc)
			rc = dop_apply(&e->dur, &e->dops[i]);
		dop_free(&e->dops[i]);
	}
	e->ndops = k;
	return rc;
}

static int sync_dir_locked(sim_env *e, const char *dir)
{
	size_t dlen = strlen(dir);
	if (!dir_in(&e->cur, dir, dlen))
		return ns_get(&e->cur, dir) ? -ENOTDIR : -ENOENT;
	size_t cap = 1 + 3 * e->ndops;
	dirset set = {strata_mem_alloc(cap * sizeof(char *)), strata_mem_alloc(cap * sizeof(size_t)), 1};
	int rc = set.p && set.len ? 0 : -ENOMEM;
	if (!rc) {
		set.p[0] = dir;
		set.len[0] = dlen;
		select_for_dir(e, &set);
		rc = apply_selected(e);
	}
	strata_mem_free(set.p, cap * sizeof(char *));
	strata_mem_free(set.len, cap * sizeof(size_t));
	return rc;
}

/* ---- power loss ---------------------------------------------------------- */

static bool keep_op(io_sim_loss mode, size_t i, size_t n, uint64_t *rng)
{
	switch (mode) {
	case IO_SIM_DROP_ALL:
		return false;
	case IO_SIM_KEEP_RANDOM:
		return rng_step(rng) & 1;
	case IO_SIM_TEAR_LAST:
		return i + 1 < n;
	default:
		return true;
	}
}

/* The last write torn: a prefix ending at an absolute sector boundary (or
 * at the write's start or end) survives, each choice equally likely. */
static file_op torn(const file_op *op, uint64_t *rng)
{
	file_op t = *op;
	uint64_t end = op->off + op->len;
	uint64_t inner = op->len ? (end - 1) / SIM_SECTOR - op->off / SIM_SECTOR : 0;
	uint64_t j = rng_step(rng) % (inner + 2);
	if (j == 0)
		t.len = 0;
	else if (j <= inner)
		t.len = (op->off / SIM_SECTOR + j) * SIM_SECTOR - op->off;
	return t;
}

static int node_power_loss(sim_node *n, io_sim_loss mode, uint64_t *rng)
{
	int rc = 0;
	for (size_t i = 0; i < n->nops && !rc; i++) {
		const file_op *op = &n->ops[i];
		bool last = i + 1 == n->nops;
		if (mode == IO_SIM_TEAR_LAST && last && op->kind == FOP_WRITE) {
			file_op t = torn(op, rng);
			rc = fop_apply(&n->dur, &t);
		} else if (mode == IO_SIM_TEAR_LAST && last) {
			/* a size change cannot tear: it happened or not */
			rc = (rng_step(rng) & 1) ? fop_apply(&n->dur, op) : 0;
		} else if (keep_op(mode, i, n->nops, rng)) {
			rc = fop_apply(&n->dur, op);
		}
	}
	node_drop_ops(n);
	n->lock_owner = NULL;
	return rc ? rc : image_copy(&n->cur, &n->dur);
}

static int dirs_power_loss(sim_env *e, io_sim_loss mode, uint64_t *rng)
{
	int rc = 0;
	for (size_t i = 0; i < e->ndops; i++) {
		if (!rc && keep_op(mode, i, e->ndops, rng))
			rc = dop_apply(&e->dur, &e->dops[i]);
		dop_free(&e->dops[i]);
	}
	e->ndops = 0;
	return rc ? rc : ns_copy(&e->cur, &e->dur);
}

/* ---- file handle operations ---------------------------------------------- */

static void env_lock(sim_env *e)
{
	pthread_mutex_lock(&e->lock);
}

static void env_unlock(sim_env *e)
{
	pthread_mutex_unlock(&e->lock);
}

static sim_file *hf(io_file *f)
{
	return (sim_file *)f;
}

/* A handle from before the last power loss belongs to a dead process. */
static int live(sim_env *e, sim_file *h)
{
	return h->gen == e->gen ? 0 : -EIO;
}

/* The checks every mutating handle call makes, in this order. */
static int write_begin(sim_env *e, sim_file *h)
{
	int rc = live(e, h);
	if (!rc)
		rc = step(e);
	if (!rc && (h->flags & IO_RDONLY))
		rc = -EBADF;
	return rc;
}

/* Records an operation: the copy and the list slot are made first, and the
 * current image changes last, so a failure leaves nothing behind. */
static int node_record(sim_node *n, file_op op, const void *data)
{
	file_op *v = vec_grow(n->ops, &n->ops_cap, n->nops + 1, sizeof *v);
	if (!v)
		return -ENOMEM;
	n->ops = v;
	if (op.kind == FOP_WRITE) {
		op.data = strata_mem_alloc(op.len);
		if (!op.data)
			return -ENOMEM;
		memcpy(op.data, data, op.len);
	}
	int rc = fop_apply(&n->cur, &op);
	if (rc) {
		strata_mem_free(op.data, op.len);
		return rc;
	}
	n->ops[n->nops++] = op;
	return 0;
}

static int sim_pwrite(io_file *f, const void *buf, size_t len, uint64_t off)
{
	sim_env *e = env_of(f->env);
	env_lock(e);
	int rc = write_begin(e, hf(f));
	if (!rc && (len > SIM_FILE_MAX || off > SIM_FILE_MAX - len))
		rc = -EFBIG;
	if (!rc && len)
		rc = node_record(hf(f)->node, (file_op){FOP_WRITE, off, len, NULL}, buf);
	env_unlock(e);
	return rc;
}

static int sim_truncate(io_file *f, uint64_t size)
{
	sim_env *e = env_of(f->env);
	env_lock(e);
	int rc = write_begin(e, hf(f));
	if (rc == -EBADF)
		rc = -EINVAL; /* what ftruncate(2) says for a read-only fd */
	if (!rc && size > SIM_FILE_MAX)
		rc = -EFBIG;
	if (!rc)
		rc = node_record(hf(f)->node, (file_op){FOP_TRUNCATE, size, 0, NULL}, NULL);
	env_unlock(e);
	return rc;
}

static int sim_allocate(io_file *f, uint64_t off, uint64_t len)
{
	sim_env *e = env_of(f->env);
	env_lock(e);
	int rc = write_begin(e, hf(f));
	if (!rc && (len > SIM_FILE_MAX || off > SIM_FILE_MAX - len))
		rc = -EFBIG;
	if (!rc && len)
		rc = node_record(hf(f)->node, (file_op){FOP_ALLOCATE, off, len, NULL}, NULL);
	env_unlock(e);
	return rc;
}

/* Makes the file's unsynced operations durable. The durable image is first
 * made as large as the current one has ever been (every op reached at most
 * that far), so applying cannot fail half-way. */
static int sim_sync(io_file *f)
{
	sim_env *e = env_of(f->env);
	env_lock(e);
	int rc = live(e, hf(f));
	if (!rc)
		rc = step(e);
	sim_node *n = hf(f)->node;
	if (!rc)
		rc = image_reserve(&n->dur, n->cur.committed);
	for (size_t i = 0; !rc && i < n->nops; i++)
		fop_apply(&n->dur, &n->ops[i]);
	if (!rc)
		node_drop_ops(n);
	env_unlock(e);
	return rc;
}

static int sim_pread(io_file *f, void *buf, size_t len, uint64_t off)
{
	sim_env *e = env_of(f->env);
	env_lock(e);
	const sim_image *im = &hf(f)->node->cur;
	int rc = live(e, hf(f));
	if (!rc && len && (off > im->size || len > im->size - off))
		rc = STRATA_ETRUNCATED; /* nothing is copied: callers get all or nothing */
	if (!rc && len)
		memcpy(buf, im->base + off, len);
	env_unlock(e);
	return rc;
}

static int sim_size(io_file *f, uint64_t *size)
{
	sim_env *e = env_of(f->env);
	env_lock(e);
	int rc = live(e, hf(f));
	if (!rc)
		*size = hf(f)->node->cur.size;
	env_unlock(e);
	return rc;
}

/* Like an open-file-description lock: per handle, so a second handle of
 * the same file, even in this process, is refused. */
static int sim_lock(io_file *f)
{
	sim_env *e = env_of(f->env);
	env_lock(e);
	sim_file *h = hf(f);
	int rc = live(e, h);
	if (!rc && (h->flags & IO_RDONLY))
		rc = -EBADF; /* a write lock needs a writable fd, as with fcntl */
	if (!rc && h->node->lock_owner && h->node->lock_owner != h)
		rc = STRATA_EBUSY;
	if (!rc)
		h->node->lock_owner = h;
	env_unlock(e);
	return rc;
}

static int sim_map(io_file *f, uint64_t off, size_t len, const void **ptr)
{
	sim_env *e = env_of(f->env);
	env_lock(e);
	const sim_image *im = &hf(f)->node->cur;
	int rc = live(e, hf(f));
	*ptr = NULL;
	if (!rc && !len)
		rc = -EINVAL;
	if (!rc && (off > im->size || len > im->size - off))
		rc = STRATA_ETRUNCATED;
	if (!rc)
		*ptr = im->base + off;
	env_unlock(e);
	return rc;
}

/* Nothing to undo (the image is the mapping); only checked. */
static int sim_unmap(io_file *f, const void *ptr, size_t len)
{
	sim_env *e = env_of(f->env);
	env_lock(e);
	uintptr_t b = (uintptr_t)hf(f)->node->cur.base, p = (uintptr_t)ptr;
	int rc = live(e, hf(f));
	if (!rc && (p < b || len > SIM_FILE_MAX || p - b > SIM_FILE_MAX - len))
		rc = -EINVAL;
	env_unlock(e);
	return rc;
}

/* Always releases the handle (also a stale one), and its lock. */
static int sim_close(io_file *f)
{
	sim_env *e = env_of(f->env);
	sim_file *h = hf(f);
	env_lock(e);
	if (h->node->lock_owner == h)
		h->node->lock_owner = NULL;
	h->node->refs--;
	if (h->prev)
		h->prev->next = h->next;
	else
		e->open = h->next;
	if (h->next)
		h->next->prev = h->prev;
	gc(e);
	env_unlock(e);
	strata_mem_free(h, sizeof *h);
	return 0;
}

/* ---- open ---------------------------------------------------------------- */

/* Creates a node named `path` in the current namespace with its pending
 * directory op; everything that can fail comes first. */
static int add_node(sim_env *e, bool is_dir, int kind, const char *path, sim_node **out)
{
	sim_node **nv = vec_grow(e->nodes, &e->nodes_cap, e->nnodes + 1, sizeof *nv);
	if (!nv)
		return -ENOMEM;
	e->nodes = nv;
	sim_node *n;
	int rc = node_new(is_dir, &n);
	if (rc)
		return rc;
	dir_op op;
	rc = dop_prepare(e, &op, kind, path, NULL, n);
	if (!rc && (rc = ns_put(&e->cur, path, n)) != 0)
		dop_free(&op);
	if (rc) {
		node_free(n);
		return rc;
	}
	e->nodes[e->nnodes++] = n;
	e->dops[e->ndops++] = op;
	if (out)
		*out = n;
	return 0;
}

/* Opening a missing file with IO_CREATE is a step. */
static int create_file(sim_env *e, const char *path, sim_node **out)
{
	int rc = step(e);
	if (!rc)
		rc = parent_check(&e->cur, path);
	return rc ? rc : add_node(e, false, DOP_CREATE, path, out);
}

static int open_locked(sim_env *e, const char *path, unsigned flags, sim_node **out)
{
	sim_node *n = ns_get(&e->cur, path);
	bool top = is_root(path, strlen(path));
	if ((n || top) && (flags & IO_CREATE) && (flags & IO_EXCL))
		return -EEXIST;
	if (top || (n && n->is_dir))
		return -EISDIR;
	if (n) {
		*out = n;
		return 0;
	}
	if (!(flags & IO_CREATE))
		return parent_check(&e->cur, path) == -ENOTDIR ? -ENOTDIR : -ENOENT;
	return create_file(e, path, out);
}

static int sim_open(io_env *env, const char *path, unsigned flags, io_file **out)
{
	sim_env *e = env_of(env);
	*out = NULL;
	char *p;
	int rc = norm_path(path, &p);
	if (rc)
		return rc;
	sim_file *h = strata_mem_calloc(1, sizeof *h);
	if (!h) {
		str_free(p);
		return -ENOMEM;
	}
	sim_node *n = NULL;
	env_lock(e);
	rc = open_locked(e, p, flags, &n);
	if (!rc) {
		*h = (sim_file){.base.env = env, .node = n, .flags = flags, .gen = e->gen, .next = e->open};
		if (e->open)
			e->open->prev = h;
		e->open = h;
		h->node->refs++;
		*out = &h->base;
	}
	env_unlock(e);
	if (rc)
		strata_mem_free(h, sizeof *h);
	str_free(p);
	return rc;
}

/* ---- name operations ----------------------------------------------------- */

typedef int (*name_fn)(sim_env *e, const char *a, const char *b);

/* Normalizes the paths, then runs fn under the env lock. */
static int with_paths(io_env *env, const char *a, const char *b, name_fn fn)
{
	sim_env *e = env_of(env);
	char *pa = NULL, *pb = NULL;
	int rc = norm_path(a, &pa);
	if (!rc && b)
		rc = norm_path(b, &pb);
	if (!rc) {
		env_lock(e);
		rc = fn(e, pa, pb);
		env_unlock(e);
	}
	str_free(pa);
	str_free(pb);
	return rc;
}

static int unlink_locked(sim_env *e, const char *path, const char *unused)
{
	(void)unused;
	int rc = step(e);
	if (rc)
		return rc;
	sim_node *n = ns_get(&e->cur, path);
	if (!n)
		return is_root(path, strlen(path)) ? -EISDIR : -ENOENT;
	if (n->is_dir)
		return -EISDIR;
	dir_op op;
	if ((rc = dop_prepare(e, &op, DOP_UNLINK, path, NULL, n)) != 0)
		return rc;
	ns_del(&e->cur, path);
	e->dops[e->ndops++] = op;
	gc(e);
	return 0;
}

/* Files only: renaming a directory would move every path below it, which
 * nothing in the store does, so it is refused with -ENOTSUP. */
static int rename_locked(sim_env *e, const char *from, const char *to)
{
	int rc = step(e);
	sim_node *src = rc ? NULL : ns_get(&e->cur, from);
	sim_node *dst = rc ? NULL : ns_get(&e->cur, to);
	if (!rc && !src)
		rc = is_root(from, strlen(from)) ? -EBUSY : -ENOENT;
	if (!rc && src->is_dir)
		rc = -ENOTSUP;
	if (!rc)
		rc = parent_check(&e->cur, to);
	if (!rc && (is_root(to, strlen(to)) || (dst && dst->is_dir)))
		rc = -EISDIR;
	if (rc || src == dst) /* same file: POSIX says do nothing */
		return rc;
	dir_op op;
	if ((rc = dop_prepare(e, &op, DOP_RENAME, from, to, src)) != 0)
		return rc;
	if ((rc = ns_put(&e->cur, to, src)) != 0) {
		dop_free(&op);
		return rc;
	}
	ns_del(&e->cur, from);
	e->dops[e->ndops++] = op;
	gc(e);
	return 0;
}

static int mkdir_locked(sim_env *e, const char *path, const char *unused)
{
	(void)unused;
	int rc = step(e);
	if (!rc && (is_root(path, strlen(path)) || ns_get(&e->cur, path)))
		rc = -EEXIST;
	if (!rc)
		rc = parent_check(&e->cur, path);
	return rc ? rc : add_node(e, true, DOP_MKDIR, path, NULL);
}

static int sync_dir_step(sim_env *e, const char *dir, const char *unused)
{
	(void)unused;
	int rc = step(e);
	return rc ? rc : sync_dir_locked(e, dir);
}

static int exists_locked(sim_env *e, const char *path, const char *unused)
{
	(void)unused;
	return is_root(path, strlen(path)) || ns_get(&e->cur, path) ? 1 : 0;
}

static int sim_unlink(io_env *env, const char *path)
{
	return with_paths(env, path, NULL, unlink_locked);
}

static int sim_rename(io_env *env, const char *from, const char *to)
{
	return with_paths(env, from, to, rename_locked);
}

static int sim_mkdir(io_env *env, const char *path)
{
	return with_paths(env, path, NULL, mkdir_locked);
}

static int sim_sync_dir(io_env *env, const char *dir)
{
	return with_paths(env, dir, NULL, sync_dir_step);
}

static int sim_exists(io_env *env, const char *path)
{
	return with_paths(env, path, NULL, exists_locked);
}

/* ---- list ---------------------------------------------------------------- */

typedef struct name_list {
	char **v;
	size_t n, cap;
} name_list;

static void names_free(name_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		str_free(l->v[i]);
	strata_mem_free(l->v, l->cap * sizeof *l->v);
}

/* Copies the names in dir (sorted), so the callback runs without the env
 * lock and may itself call the env (unlink what it finds, say). */
static int collect(sim_env *e, const char *dir, name_list *out)
{
	size_t dlen = strlen(dir);
	if (!dir_in(&e->cur, dir, dlen))
		return ns_get(&e->cur, dir) ? -ENOTDIR : -ENOENT;
	for (size_t i = 0; i < e->cur.n; i++) {
		size_t plen;
		const char *par = parent_of(e->cur.v[i].path, &plen);
		if (plen != dlen || memcmp(par, dir, dlen))
			continue;
		char **v = vec_grow(out->v, &out->cap, out->n + 1, sizeof *v);
		if (!v)
			return -ENOMEM;
		out->v = v;
		if (!(v[out->n] = str_dup(base_name(e->cur.v[i].path))))
			return -ENOMEM;
		out->n++;
	}
	return 0;
}

static int sim_list(io_env *env, const char *dir, int (*fn)(void *ctx, const char *name), void *ctx)
{
	sim_env *e = env_of(env);
	char *d;
	int rc = norm_path(dir, &d);
	if (rc)
		return rc;
	name_list l = {0};
	env_lock(e);
	rc = collect(e, d, &l);
	env_unlock(e);
	for (size_t i = 0; !rc && i < l.n; i++)
		rc = fn(ctx, l.v[i]);
	names_free(&l);
	str_free(d);
	return rc;
}

static const io_ops sim_ops = {
	.open = sim_open,
	.close = sim_close,
	.pread = sim_pread,
	.pwrite = sim_pwrite,
	.sync = sim_sync,
	.size = sim_size,
	.truncate = sim_truncate,
	.allocate = sim_allocate,
	.lock = sim_lock,
	.map = sim_map,
	.unmap = sim_unmap,
	.unlink = sim_unlink,
	.rename = sim_rename,
	.mkdir = sim_mkdir,
	.sync_dir = sim_sync_dir,
	.exists = sim_exists,
	.list = sim_list,
};

/* ---- the env and the test controls --------------------------------------- */

io_env *io_sim_new(void)
{
	sim_env *e = strata_mem_calloc(1, sizeof *e);
	if (!e)
		return NULL;
	if (pthread_mutex_init(&e->lock, NULL)) {
		strata_mem_free(e, sizeof *e);
		return NULL;
	}
	e->base.ops = &sim_ops;
	return &e->base;
}

void io_sim_free(io_env *env)
{
	sim_env *e = env_of(env);
	if (!e)
		return;
	while (e->open) {
		sim_file *h = e->open;
		e->open = h->next;
		strata_mem_free(h, sizeof *h);
	}
	for (size_t i = 0; i < e->ndops; i++)
		dop_free(&e->dops[i]);
	strata_mem_free(e->dops, e->dops_cap * sizeof *e->dops);
	ns_destroy(&e->cur);
	ns_destroy(&e->dur);
	for (size_t i = 0; i < e->nnodes; i++)
		node_free(e->nodes[i]);
	strata_mem_free(e->nodes, e->nodes_cap * sizeof *e->nodes);
	pthread_mutex_destroy(&e->lock);
	strata_mem_free(e, sizeof *e);
}

uint64_t io_sim_steps(io_env *env)
{
	sim_env *e = env_of(env);
	env_lock(e);
	uint64_t n = e->steps;
	env_unlock(e);
	return n;
}

void io_sim_crash_after(io_env *env, uint64_t n)
{
	sim_env *e = env_of(env);
	env_lock(e);
	e->crash_after = n;
	env_unlock(e);
}

void io_sim_fail_step(io_env *env, uint64_t n, int err)
{
	sim_env *e = env_of(env);
	env_lock(e);
	e->fail_at = err < 0 ? n : 0;
	e->fail_err = err;
	env_unlock(e);
}

bool io_sim_crashed(io_env *env)
{
	sim_env *e = env_of(env);
	env_lock(e);
	bool c = e->crashed;
	env_unlock(e);
	return c;
}

/* Files first (creation order), then directory ops: one random stream, so
 * a seed replays exactly. If memory runs out half-way the env stays
 * crashed (every step -EIO) rather than pretend a consistent disk. */
void io_sim_power_loss(io_env *env, io_sim_loss mode, uint64_t seed)
{
	sim_env *e = env_of(env);
	env_lock(e);
	uint64_t rng = seed;
	int rc = 0;
	for (size_t i = 0; i < e->nnodes; i++)
		if (!e->nodes[i]->is_dir) {
			int r = node_power_loss(e->nodes[i], mode, &rng);
			rc = rc ? rc : r;
		}
	int r = dirs_power_loss(e, mode, &rng);
	rc = rc ? rc : r;
	e->gen++;
	e->steps = e->crash_after = e->fail_at = 0;
	e->crashed = rc != 0;
	gc(e);
	env_unlock(e);
}

static void flip(unsigned char *b, unsigned bit)
{
	*b ^= (unsigned char)(1u << bit);
}

/* Corrupts the byte wherever it lives: the current image, the durable image
 * (if the byte is durable yet) and every unsynced write of it, so the flip
 * survives whatever a later power loss keeps. */
static int flip_locked(sim_env *e, const char *path, uint64_t off, unsigned bit)
{
	sim_node *n = ns_get(&e->cur, path);
	if (!n || n->is_dir)
		return -ENOENT;
	if (off >= n->cur.size)
		return STRATA_ETRUNCATED;
	flip(n->cur.base + off, bit);
	if (off < n->dur.size)
		flip(n->dur.base + off, bit);
	for (size_t i = 0; i < n->nops; i++) {
		file_op *op = &n->ops[i];
		if (op->kind == FOP_WRITE && off >= op->off && off - op->off < op->len)
			flip(op->data + (off - op->off), bit);
	}
	return 0;
}

int io_sim_flip_bit(io_env *env, const char *path, uint64_t off, unsigned bit)
{
	sim_env *e = env_of(env);
	if (bit > 7)
		return STRATA_EINVAL;
	char *p;
	int rc = norm_path(path, &p);
	if (rc)
		return rc;
	env_lock(e);
	rc = flip_locked(e, p, off, bit);
	env_unlock(e);
	str_free(p);
	return rc;
}

int io_sim_file_size(io_env *env, const char *path, uint64_t *size)
{
	sim_env *e = env_of(env);
	char *p;
	int rc = norm_path(path, &p);
	if (rc)
		return rc;
	env_lock(e);
	sim_node *n = ns_get(&e->cur, p);
	if (n && !n->is_dir)
		*size = n->cur.size;
	else
		rc = -ENOENT;
	env_unlock(e);
	str_free(p);
	return rc;
}
