/*
 * catalog.c — the root catalog: root name -> versioned NodeID.
 *
 * Names are looked up in an immutable sorted directory (root_dir). Creating a
 * name publishes a new directory and frees the old one after a liburcu-bp
 * grace period: lookups take no lock and need no registration of the
 * caller's thread (the "bulletproof" flavour), which suits a library embedded
 * in threads it does not own. A `root` itself lives until the store closes.
 *
 * Each root keeps a list of versions, newest first, each stamped with the
 * epoch that committed it. A reader at epoch s takes the first version with
 * epoch <= s. The commit path prepends under the root's lock before the
 * epoch is published, so readers below the new epoch skip it.
 * catalog_trim(oldest) cuts every version older than the newest one at or
 * below `oldest`: no pinned reader can walk past that one.
 */
#include <string.h>
#include <urcu-bp.h>

#include "internal.h"

int catalog_init(catalog *c)
{
	if (pthread_mutex_init(&c->lock, NULL))
		return STRATA_ENOMEM;
	root_dir *d = strata_mem_calloc(1, sizeof *d);
	if (!d)
		return STRATA_ENOMEM;
	atomic_store(&c->dir, d);
	return 0;
}

static void versions_free(root_version *v)
{
	while (v) {
		root_version *next = atomic_load_explicit(&v->next, memory_order_relaxed);
		strata_mem_free(v, sizeof *v);
		v = next;
	}
}

void catalog_destroy(catalog *c)
{
	root_dir *d = atomic_load(&c->dir);
	for (uint32_t i = 0; d && i < d->n; i++) {
		root *r = d->roots[i];
		versions_free(atomic_load(&r->head));
		pthread_mutex_destroy(&r->lock);
		strata_mem_free(r, sizeof *r + r->name_len + 1);
	}
	if (d)
		strata_mem_free(d, sizeof *d + sizeof(root *) * d->n);
	pthread_mutex_destroy(&c->lock);
}

int catalog_name_ok(const char *name, size_t *len)
{
	if (!name)
		return STRATA_ENAME;
	size_t n = strnlen(name, STRATA_ROOT_NAME_MAX + 1);
	if (n == 0 || n > STRATA_ROOT_NAME_MAX)
		return STRATA_ENAME;
	*len = n;
	return 0;
}

static int name_cmp(const root *r, const char *name, size_t len)
{
	size_t m = r->name_len < len ? r->name_len : len;
	int c = memcmp(r->name, name, m);
	if (c)
		return c;
	return r->name_len < len ? -1 : r->name_len > len;
}

/* Index of the first root >= name. */
static uint32_t dir_search(const root_dir *d, const char *name, size_t len)
{
	uint32_t lo = 0, hi = d->n;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (name_cmp(d->roots[mid], name, len) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

root *catalog_find(catalog *c, const char *name, size_t len)
{
	root *found = NULL;
	urcu_bp_read_lock();
	root_dir *d = atomic_load_explicit(&c->dir, memory_order_acquire);
	TSAN_ACQUIRE(d);
	uint32_t i = dir_search(d, name, len);
	if (i < d->n && name_cmp(d->roots[i], name, len) == 0)
		found = d->roots[i];
	urcu_bp_read_unlock();
	TSAN_RELEASE(&c->dir);
	return found;
}

int catalog_get_or_create(catalog *c, const char *name, size_t len, root **out)
{
	if ((*out = catalog_find(c, name, len)))
		return 0;
	pthread_mutex_lock(&c->lock);
	root_dir *d = atomic_load(&c->dir);
	uint32_t i = dir_search(d, name, len);
	if (i < d->n && name_cmp(d->roots[i], name, len) == 0) {
		*out = d->roots[i];
		pthread_mutex_unlock(&c->lock);
		return 0;
	}
	root *r = strata_mem_calloc(1, sizeof *r + len + 1);
	root_dir *nd = strata_mem_alloc(sizeof *nd + sizeof(root *) * (d->n + 1));
	if (!r || !nd || pthread_mutex_init(&r->lock, NULL)) {
		strata_mem_free(r, 0);
		strata_mem_free(nd, 0);
		pthread_mutex_unlock(&c->lock);
		return STRATA_ENOMEM;
	}
	memcpy(r->name, name, len);
	r->name_len = len;
	nd->n = d->n + 1;
	memcpy(nd->roots, d->roots, sizeof(root *) * i);
	nd->roots[i] = r;
	memcpy(nd->roots + i + 1, d->roots + i, sizeof(root *) * (d->n - i));
	TSAN_RELEASE(nd);
	atomic_store_explicit(&c->dir, nd, memory_order_release);
	urcu_bp_synchronize_rcu();
	TSAN_ACQUIRE(&c->dir);
	strata_mem_free(d, sizeof *d + sizeof(root *) * d->n);
	pthread_mutex_unlock(&c->lock);
	*out = r;
	return 0;
}

const root_version *root_version_at(const root *r, uint64_t e)
{
	const root_version *v = atomic_load_explicit(&r->head, memory_order_acquire);
	while (v && v->epoch > e)
		v = atomic_load_explicit(&v->next, memory_order_acquire);
	return v;
}

int root_publish(root *r, uint64_t epoch, strata_node_id id)
{
	root_version *v = strata_mem_alloc(sizeof *v);
	if (!v)
		return STRATA_ENOMEM;
	v->epoch = epoch;
	v->id = id;
	atomic_store_explicit(&v->next, atomic_load_explicit(&r->head, memory_order_relaxed),
			      memory_order_relaxed);
	atomic_store_explicit(&r->head, v, memory_order_release);
	return 0;
}

void catalog_trim(catalog *c, uint64_t oldest)
{
	pthread_mutex_lock(&c->lock);
	root_dir *d = atomic_load(&c->dir);
	for (uint32_t i = 0; i < d->n; i++) {
		root_version *keep = (root_version *)root_version_at(d->roots[i], oldest);
		if (!keep)
			continue;
		root_version *old = atomic_load_explicit(&keep->next, memory_order_relaxed);
		if (old) {
			atomic_store_explicit(&keep->next, NULL, memory_order_relaxed);
			versions_free(old);
		}
	}
	pthread_mutex_unlock(&c->lock);
}
