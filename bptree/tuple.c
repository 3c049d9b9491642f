/*
 * tuple.c — order-preserving tuple encoding (include/strata/tuple.h).
 *
 * Invariant: for tuples a, b: sign(memcmp order of enc(a), enc(b)) ==
 * sign(strata_tuple_compare(a, b)), and decode(enc(a)) == a (NaNs become
 * the one canonical NaN). Every column starts with a type byte; the type
 * bytes are ordered like the types, so a shorter tuple (no byte) sorts
 * before any longer one with the same prefix.
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "strata/strata.h"
#include "strata/tuple.h"

enum { T_NULL = 1, T_FALSE = 2, T_TRUE = 3, T_INT = 4, T_DOUBLE = 5, T_STRING = 6 };

#define SIGN64 0x8000000000000000ull
#define CANON_NAN 0x7ff8000000000000ull

/* Doubles as unsigned integers in the documented order. */
static uint64_t dbl_key(double d)
{
	uint64_t b;
	if (isnan(d))
		b = CANON_NAN;
	else
		memcpy(&b, &d, 8);
	return (b & SIGN64) ? ~b : b ^ SIGN64;
}

static double dbl_unkey(uint64_t k)
{
	uint64_t b = (k & SIGN64) ? k ^ SIGN64 : ~k;
	double d;
	memcpy(&d, &b, 8);
	return d;
}

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* Encodes one column at out (if it fits below end); returns its size. */
static size_t enc_col(const strata_tuple_value *c, uint8_t *out, const uint8_t *end)
{
	bool room = out && end - out >= 9;
	switch (c->type) {
	case STRATA_TUPLE_NULL:
	case STRATA_TUPLE_BOOL:
		if (out && out < end)
			*out = c->type == STRATA_TUPLE_NULL ? T_NULL : c->u.b ? T_TRUE : T_FALSE;
		return 1;
	case STRATA_TUPLE_INT64:
	case STRATA_TUPLE_DOUBLE:
		if (room) {
			bool i = c->type == STRATA_TUPLE_INT64;
			out[0] = i ? T_INT : T_DOUBLE;
			put_be64(out + 1, i ? (uint64_t)c->u.i ^ SIGN64 : dbl_key(c->u.d));
		}
		return 9;
	default: { /* STRING, checked by the caller */
		const uint8_t *s = c->u.s.ptr;
		size_t n = 3;
		for (size_t i = 0; i < c->u.s.len; i++)
			n += s[i] ? 1 : 2;
		if (!out || (size_t)(end - out) < n)
			return n;
		uint8_t *o = out;
		*o++ = T_STRING;
		for (size_t i = 0; i < c->u.s.len; i++) {
			*o++ = s[i];
			if (!s[i])
				*o++ = 0xff;
		}
		o[0] = 0;
		o[1] = 0;
		return n;
	}
	}
}

int strata_tuple_encode(const strata_tuple_value *cols, size_t n, void *buf, size_t cap,
			size_t *len)
{
	if ((!cols && n) || !len || (!buf && cap))
		return STRATA_EINVAL;
	uint8_t *out = buf, *end = out ? out + cap : NULL;
	size_t total = 0;
	for (size_t i = 0; i < n; i++) {
		const strata_tuple_value *c = &cols[i];
		if ((unsigned)c->type > STRATA_TUPLE_STRING ||
		    (c->type == STRATA_TUPLE_STRING && !c->u.s.ptr && c->u.s.len))
			return STRATA_EINVAL;
		total += enc_col(c, out ? out + (total < cap ? total : cap) : NULL, end);
	}
	*len = total;
	return total > cap ? -ERANGE : 0;
}

/* Decodes one string at p (after its type byte); returns bytes consumed
 * or 0 if malformed. */
static size_t dec_string(const uint8_t *p, size_t avail, strata_tuple_value *c, uint8_t **scr,
			 const uint8_t *scr_end, int *rc)
{
	size_t i = 0, nuls = 0;
	for (;;) {
		if (i >= avail)
			return 0;
		if (p[i]) {
			i++;
			continue;
		}
		if (i + 1 >= avail)
			return 0;
		if (p[i + 1] == 0)
			break;
		if (p[i + 1] != 0xff)
			return 0;
		nuls++;
		i += 2;
	}
	c->type = STRATA_TUPLE_STRING;
	c->u.s.len = i - nuls;
	c->u.s.ptr = p;
	if (nuls) {
		if (!*scr || (size_t)(scr_end - *scr) < i - nuls) {
			*rc = -ERANGE;
			return i + 2;
		}
		uint8_t *o = *scr;
		c->u.s.ptr = o;
		for (size_t j = 0; j < i; j++) {
			*o++ = p[j];
			j += !p[j];
		}
		*scr = o;
	}
	return i + 2;
}

int strata_tuple_decode(const void *buf, size_t len, strata_tuple_value *cols, size_t max,
			size_t *n, void *scratch, size_t scap)
{
	if ((!buf && len) || !n || (!cols && max))
		return STRATA_EINVAL;
	const uint8_t *p = buf, *end = p + len;
	uint8_t *scr = scratch, *scr_end = scr ? scr + scap : NULL;
	strata_tuple_value dummy;
	size_t k = 0;
	int rc = 0;
	while (p < end) {
		strata_tuple_value *c = k < max ? &cols[k] : &dummy;
		uint8_t t = *p++;
		if (t == T_NULL || t == T_FALSE || t == T_TRUE) {
			c->type = t == T_NULL ? STRATA_TUPLE_NULL : STRATA_TUPLE_BOOL;
			c->u.b = t == T_TRUE;
		} else if (t == T_INT || t == T_DOUBLE) {
			if (end - p < 8)
				return STRATA_ECORRUPT;
			uint64_t v = get_be64(p);
			p += 8;
			c->type = t == T_INT ? STRATA_TUPLE_INT64 : STRATA_TUPLE_DOUBLE;
			if (t == T_INT)
				c->u.i = (int64_t)(v ^ SIGN64);
			else if (dbl_key(dbl_unkey(v)) != v)
				return STRATA_ECORRUPT; /* a non-canonical NaN */
			else
				c->u.d = dbl_unkey(v);
		} else if (t == T_STRING) {
			size_t used = dec_string(p, (size_t)(end - p), c, &scr, scr_end, &rc);
			if (!used)
				return STRATA_ECORRUPT;
			p += used;
		} else {
			return STRATA_ECORRUPT;
		}
		k++;
	}
	*n = k;
	return k > max ? -ERANGE : rc;
}

static int type_rank(const strata_tuple_value *c)
{
	switch (c->type) {
	case STRATA_TUPLE_NULL:
		return 0;
	case STRATA_TUPLE_BOOL:
		return c->u.b ? 2 : 1;
	case STRATA_TUPLE_INT64:
		return 3;
	case STRATA_TUPLE_DOUBLE:
		return 4;
	default:
		return 5;
	}
}

static int col_cmp(const strata_tuple_value *a, const strata_tuple_value *b)
{
	int ra = type_rank(a), rb = type_rank(b);
	if (ra != rb)
		return ra < rb ? -1 : 1;
	if (a->type == STRATA_TUPLE_INT64)
		return a->u.i < b->u.i ? -1 : a->u.i > b->u.i;
	if (a->type == STRATA_TUPLE_DOUBLE) {
		uint64_t x = dbl_key(a->u.d), y = dbl_key(b->u.d);
		return x < y ? -1 : x > y;
	}
	if (a->type != STRATA_TUPLE_STRING)
		return 0;
	size_t n = a->u.s.len < b->u.s.len ? a->u.s.len : b->u.s.len;
	int c = n ? memcmp(a->u.s.ptr, b->u.s.ptr, n) : 0;
	if (c)
		return c < 0 ? -1 : 1;
	return a->u.s.len < b->u.s.len ? -1 : a->u.s.len > b->u.s.len;
}

int strata_tuple_compare(const strata_tuple_value *a, size_t na, const strata_tuple_value *b,
			 size_t nb)
{
	size_t n = na < nb ? na : nb;
	for (size_t i = 0; i < n; i++) {
		int c = col_cmp(&a[i], &b[i]);
		if (c)
			return c;
	}
	return na < nb ? -1 : na > nb;
}
