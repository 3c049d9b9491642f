/*
 * test_tuple.c — property tests of the order-preserving tuple encoding:
 * memcmp order of encodings == tuple order (checked against an independent
 * reference comparator written with plain C comparisons, not the library's
 * strata_tuple_compare), decode(encode(x)) == x bit for bit (NaN: the
 * canonical NaN), the documented edges (-0.0 < +0.0, NaN above +inf,
 * embedded NULs, prefixes), malformed input refused, and encoded tuples
 * used as B+tree keys scan back in tuple order.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "strata/bptree.h"
#include "strata/tuple.h"
#include "support/model.h"

TestSuite(tuple, .fini = test_leak_check);

#define MAXCOL 4
typedef struct tup {
	strata_tuple_value c[MAXCOL];
	size_t n;
	uint8_t str[MAXCOL][8];
} tup;

static const double special[] = {0.0, -0.0, 1.0, -1.0, INFINITY, -INFINITY, NAN, -NAN,
				  1e-310, -1e-310, 1e308, -1e308, 0.5, 2.0};

static void gen(test_rng *r, tup *t)
{
	t->n = rng_below(r, MAXCOL + 1);
	for (size_t i = 0; i < t->n; i++) {
		strata_tuple_value *c = &t->c[i];
		/* Mostly one type per column, as schemas do; sometimes mixed. */
		unsigned type = rng_below(r, 6) == 0 ? (unsigned)rng_below(r, 5) : (unsigned)(i + 2) % 5;
		c->type = (strata_tuple_type)type;
		switch (c->type) {
		case STRATA_TUPLE_NULL:
			break;
		case STRATA_TUPLE_BOOL:
			c->u.b = rng_below(r, 2);
			break;
		case STRATA_TUPLE_INT64: {
			int64_t pick[] = {0, -1, 1, INT64_MIN, INT64_MAX, (int64_t)rng_below(r, 5) - 2,
					  (int64_t)rng_next(r)};
			c->u.i = pick[rng_below(r, 7)];
			break;
		}
		case STRATA_TUPLE_DOUBLE:
			if (rng_below(r, 3) == 0) {
				c->u.d = special[rng_below(r, sizeof special / sizeof *special)];
			} else {
				uint64_t b = rng_next(r);
				memcpy(&c->u.d, &b, 8);
			}
			break;
		case STRATA_TUPLE_STRING: {
			size_t len = rng_below(r, 5);
			for (size_t j = 0; j < len; j++) /* small alphabet: NULs and prefixes */
				t->str[i][j] = (uint8_t[]){0, 1, 'a', 0xff}[rng_below(r, 4)];
			c->u.s.ptr = t->str[i];
			c->u.s.len = len;
			break;
		}
		}
	}
}

/* Reference order written independently from the documented rules. */
static int rank(const strata_tuple_value *c)
{
	if (c->type == STRATA_TUPLE_BOOL)
		return c->u.b ? 2 : 1;
	return c->type == STRATA_TUPLE_NULL ? 0 : (int)c->type + 1;
}

static int ref_double(double a, double b)
{
	if (isnan(a) || isnan(b))
		return isnan(a) - isnan(b); /* every NaN equal, above all */
	if (a < b)
		return -1;
	if (a > b)
		return 1;
	return signbit(b) - signbit(a); /* -0.0 < +0.0 */
}

static int ref_cmp(const tup *a, const tup *b)
{
	for (size_t i = 0; i < a->n && i < b->n; i++) {
		const strata_tuple_value *x = &a->c[i], *y = &b->c[i];
		int d = rank(x) - rank(y);
		if (d)
			return d < 0 ? -1 : 1;
		if (x->type == STRATA_TUPLE_INT64 && x->u.i != y->u.i)
			return x->u.i < y->u.i ? -1 : 1;
		if (x->type == STRATA_TUPLE_DOUBLE && (d = ref_double(x->u.d, y->u.d)))
			return d;
		if (x->type == STRATA_TUPLE_STRING) {
			size_t n = x->u.s.len < y->u.s.len ? x->u.s.len : y->u.s.len;
			d = n ? memcmp(x->u.s.ptr, y->u.s.ptr, n) : 0;
			if (d)
				return d < 0 ? -1 : 1;
			if (x->u.s.len != y->u.s.len)
				return x->u.s.len < y->u.s.len ? -1 : 1;
		}
	}
	return (a->n > b->n) - (a->n < b->n);
}

static size_t enc(const tup *t, uint8_t *buf, size_t cap)
{
	size_t len;
	cr_assert_eq(strata_tuple_encode(t->c, t->n, buf, cap, &len), 0);
	return len;
}

static int sign(int x)
{
	return (x > 0) - (x < 0);
}

Test(tuple, memcmp_order_is_tuple_order)
{
	test_rng r = {1};
	for (int it = 0; it < 200000; it++) {
		tup a, b;
		gen(&r, &a);
		gen(&r, &b);
		if (rng_below(&r, 4) == 0) { /* share a prefix */
			b = a;
			for (size_t i = 0; i < b.n; i++)
				if (b.c[i].type == STRATA_TUPLE_STRING)
					b.c[i].u.s.ptr = a.str[i];
			if (b.n && rng_below(&r, 2))
				b.n--;
		}
		uint8_t ea[128], eb[128];
		size_t la = enc(&a, ea, sizeof ea), lb = enc(&b, eb, sizeof eb);
		size_t n = la < lb ? la : lb;
		int mc = memcmp(ea, eb, n);
		mc = mc ? sign(mc) : (la > lb) - (la < lb);
		int want = ref_cmp(&a, &b);
		cr_assert_eq(mc, want, "iteration %d: memcmp %d, tuple order %d", it, mc, want);
		cr_assert_eq(sign(strata_tuple_compare(a.c, a.n, b.c, b.n)), want);
	}
}

static void same_value(const strata_tuple_value *x, const strata_tuple_value *y)
{
	cr_assert_eq(x->type, y->type);
	switch (x->type) {
	case STRATA_TUPLE_NULL:
		break;
	case STRATA_TUPLE_BOOL:
		cr_assert_eq(x->u.b, y->u.b);
		break;
	case STRATA_TUPLE_INT64:
		cr_assert_eq(x->u.i, y->u.i);
		break;
	case STRATA_TUPLE_DOUBLE:
		if (isnan(x->u.d)) {
			uint64_t bits;
			memcpy(&bits, &y->u.d, 8);
			cr_assert_eq(bits, 0x7ff8000000000000ull, "NaN decodes canonical");
		} else {
			cr_assert_eq(memcmp(&x->u.d, &y->u.d, 8), 0, "double bits");
		}
		break;
	case STRATA_TUPLE_STRING:
		cr_assert_eq(x->u.s.len, y->u.s.len);
		cr_assert(x->u.s.len == 0 || memcmp(x->u.s.ptr, y->u.s.ptr, x->u.s.len) == 0);
		break;
	}
}

Test(tuple, decode_of_encode_is_identity)
{
	test_rng r = {2};
	for (int it = 0; it < 100000; it++) {
		tup a;
		gen(&r, &a);
		uint8_t buf[128], scratch[64];
		size_t len = enc(&a, buf, sizeof buf), n;
		strata_tuple_value out[MAXCOL];
		cr_assert_eq(strata_tuple_decode(buf, len, out, MAXCOL, &n, scratch, sizeof scratch), 0);
		cr_assert_eq(n, a.n);
		for (size_t i = 0; i < n; i++)
			same_value(&a.c[i], &out[i]);
	}
}

Test(tuple, documented_edges)
{
	strata_tuple_value neg0 = {.type = STRATA_TUPLE_DOUBLE, .u.d = -0.0};
	strata_tuple_value pos0 = {.type = STRATA_TUPLE_DOUBLE, .u.d = 0.0};
	strata_tuple_value inf = {.type = STRATA_TUPLE_DOUBLE, .u.d = INFINITY};
	strata_tuple_value nan = {.type = STRATA_TUPLE_DOUBLE, .u.d = NAN};
	uint8_t a[16], b[16];
	size_t la, lb;
	cr_assert_eq(strata_tuple_encode(&neg0, 1, a, sizeof a, &la), 0);
	cr_assert_eq(strata_tuple_encode(&pos0, 1, b, sizeof b, &lb), 0);
	cr_assert_lt(memcmp(a, b, 9), 0, "-0.0 sorts before +0.0");
	cr_assert_eq(strata_tuple_encode(&inf, 1, a, sizeof a, &la), 0);
	cr_assert_eq(strata_tuple_encode(&nan, 1, b, sizeof b, &lb), 0);
	cr_assert_lt(memcmp(a, b, 9), 0, "NaN sorts above +inf");
	/* Embedded NUL: "a" < "a\0" < "a\0\0" < "a\1". */
	const char *s[] = {"a", "a\0", "a\0\0", "a\1"};
	size_t sl[] = {1, 2, 3, 2};
	uint8_t e[4][16];
	size_t el[4];
	for (int i = 0; i < 4; i++) {
		strata_tuple_value v = {.type = STRATA_TUPLE_STRING, .u.s = {s[i], sl[i]}};
		cr_assert_eq(strata_tuple_encode(&v, 1, e[i], sizeof e[i], &el[i]), 0);
		if (i) {
			size_t n = el[i] < el[i - 1] ? el[i] : el[i - 1];
			cr_assert_lt(memcmp(e[i - 1], e[i], n), 0, "string %d", i);
		}
	}
	/* Measuring with cap 0, and a short buffer. */
	cr_assert_eq(strata_tuple_encode(&neg0, 1, NULL, 0, &la), -ERANGE);
	cr_assert_eq(la, 9);
	cr_assert_eq(strata_tuple_encode(&neg0, 1, a, 8, &la), -ERANGE);
	strata_tuple_value bad = {.type = (strata_tuple_type)9};
	cr_assert_eq(strata_tuple_encode(&bad, 1, a, sizeof a, &la), STRATA_EINVAL);
	strata_tuple_value badstr = {.type = STRATA_TUPLE_STRING, .u.s = {NULL, 3}};
	cr_assert_eq(strata_tuple_encode(&badstr, 1, a, sizeof a, &la), STRATA_EINVAL);
}

Test(tuple, malformed_input_refused)
{
	strata_tuple_value out[4];
	size_t n;
	const uint8_t unknown[] = {0x09};
	const uint8_t short_int[] = {0x04, 1, 2, 3};
	const uint8_t open_string[] = {0x06, 'a', 'b'};
	const uint8_t bad_escape[] = {0x06, 'a', 0x00, 0x07};
	const uint8_t noncanon_nan[] = {0x05, 0xff, 0xf8, 0, 0, 0, 0, 0, 1};
	cr_assert_eq(strata_tuple_decode(unknown, 1, out, 4, &n, NULL, 0), STRATA_ECORRUPT);
	cr_assert_eq(strata_tuple_decode(short_int, 4, out, 4, &n, NULL, 0), STRATA_ECORRUPT);
	cr_assert_eq(strata_tuple_decode(open_string, 3, out, 4, &n, NULL, 0), STRATA_ECORRUPT);
	cr_assert_eq(strata_tuple_decode(bad_escape, 4, out, 4, &n, NULL, 0), STRATA_ECORRUPT);
	cr_assert_eq(strata_tuple_decode(noncanon_nan, 9, out, 4, &n, NULL, 0), STRATA_ECORRUPT);
	const uint8_t three[] = {0x01, 0x02, 0x03};
	cr_assert_eq(strata_tuple_decode(three, 3, out, 2, &n, NULL, 0), -ERANGE);
	cr_assert_eq(n, 3);
	const uint8_t nul[] = {0x06, 0x00, 0xff, 0x00, 0x00};
	cr_assert_eq(strata_tuple_decode(nul, 5, out, 4, &n, NULL, 0), -ERANGE, "needs scratch");
	/* Random bytes never crash the decoder. */
	test_rng r = {3};
	uint8_t buf[32], scratch[32];
	for (int it = 0; it < 100000; it++) {
		size_t len = rng_below(&r, sizeof buf);
		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)(rng_below(&r, 8) == 0 ? rng_next(&r) : rng_below(&r, 8));
		int rc = strata_tuple_decode(buf, len, out, 4, &n, scratch, sizeof scratch);
		cr_assert(rc == 0 || rc == STRATA_ECORRUPT || rc == -ERANGE);
	}
}

/* Tuples as B+tree keys: a cursor returns them in tuple order. */
Test(tuple, btree_keys_scan_in_tuple_order)
{
	strata_store *s = test_open(NULL);
	const char *name = "t";
	strata_txn *t;
	cr_assert_eq(strata_txn_begin(s, &name, 1, 0, &t), 0);
	cr_assert_eq(strata_bpt_create(t, name, NULL), 0);
	test_rng r = {4};
	for (int i = 0; i < 3000; i++) {
		tup a;
		gen(&r, &a);
		uint8_t buf[128];
		size_t len = enc(&a, buf, sizeof buf);
		if (len == 0)
			continue;
		int rc = strata_bpt_put(t, name, buf, len, &i, sizeof i, 0);
		cr_assert_eq(rc, 0);
	}
	cr_assert_eq(strata_txn_commit(t, NULL), 0);
	strata_snapshot *snap;
	cr_assert_eq(strata_snapshot_open(s, &snap), 0);
	strata_bpt_cursor *c;
	cr_assert_eq(strata_bpt_cursor_open(snap, name, &c), 0);
	tup prev = {0}, cur;
	uint8_t prevbuf[128], scratch[2][64];
	int k = 0;
	while (strata_bpt_cursor_next(c) == 0) {
		const void *key;
		size_t kl;
		cr_assert_eq(strata_bpt_cursor_get(c, &key, &kl, NULL, NULL), 0);
		cr_assert_eq(strata_tuple_decode(key, kl, cur.c, MAXCOL, &cur.n, scratch[k & 1], 64),
			     0);
		if (k > 0)
			cr_assert_lt(ref_cmp(&prev, &cur), 0, "scan out of tuple order at %d", k);
		memcpy(prevbuf, key, kl);
		cr_assert_eq(strata_tuple_decode(prevbuf, kl, prev.c, MAXCOL, &prev.n, scratch[k & 1],
						 64), 0);
		k++;
	}
	cr_assert_gt(k, 100);
	strata_bpt_cursor_close(c);
	strata_snapshot_close(snap);
	test_close(s);
}
