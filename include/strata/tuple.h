/*
 * tuple.h — typed composite keys and records for the B+tree.
 *
 * A tuple is a sequence of columns, each NULL, a bool, an int64, a double
 * or a byte string (embedded NUL bytes allowed). strata_tuple_encode turns
 * it into bytes whose memcmp order is the tuple order below, so encoded
 * tuples can be B+tree keys; strata_tuple_decode turns the bytes back.
 *
 * Tuple order: column by column; the first difference decides; a tuple
 * that is a prefix of another sorts first. Within a column:
 *   - by type first: NULL < false < true < int64 < double < string
 *     (a schema normally keeps one type per column; int64 and double are
 *     not compared numerically with each other);
 *   - int64: numeric order;
 *   - double: IEEE 754 totalOrder restricted to one NaN: -inf < negative
 *     numbers < -0.0 < +0.0 < positive numbers < +inf < NaN. -0.0 and +0.0
 *     are distinct (-0.0 first), so decode gives back the same bits. Every
 *     NaN is encoded as the one quiet NaN 0x7ff8000000000000, which sorts
 *     above +inf and decodes to that NaN (payloads are not kept);
 *   - string: byte-wise (memcmp), a prefix first.
 * Encoding (design/BPTREE.md): a type byte, then int64 as 8 big-endian
 * bytes with the sign bit flipped, double as 8 bytes of the order-mapped
 * bits, string as its bytes with 0x00 written 0x00 0xFF and ended by
 * 0x00 0x00. Pure functions: thread-safe, no allocation.
 */
#ifndef STRATA_TUPLE_H
#define STRATA_TUPLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strata/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum strata_tuple_type {
	STRATA_TUPLE_NULL = 0,
	STRATA_TUPLE_BOOL = 1,
	STRATA_TUPLE_INT64 = 2,
	STRATA_TUPLE_DOUBLE = 3,
	STRATA_TUPLE_STRING = 4
} strata_tuple_type;

typedef struct strata_tuple_value {
	strata_tuple_type type;
	union {
		bool b;
		int64_t i;
		double d;
		struct {
			const void *ptr; /* NULL only with len 0 */
			size_t len;
		} s;
	} u;
} strata_tuple_value;

/* Encodes cols[0..n) into buf (cap bytes). *len gets the encoded size
 * whether or not it fit, so a call with cap 0 measures.
 * Errors: STRATA_EINVAL (NULL cols with n > 0, NULL len, NULL buf with
 *         cap > 0, unknown type, NULL string with a length),
 *         -ERANGE (cap < *len; buf holds nothing useful). */
STRATA_API int strata_tuple_encode(const strata_tuple_value *cols, size_t n, void *buf, size_t cap,
				   size_t *len);

/* Decodes buf[0..len) into cols[0..max); *n gets the number of columns.
 * String columns point into buf (zero-copy) when they hold no NUL byte;
 * a string with NUL bytes is unescaped into `scratch` (scap bytes, may be
 * NULL when no string holds a NUL) and points there. Pointers stay valid
 * while buf and scratch do.
 * Errors: STRATA_EINVAL (NULL arguments), STRATA_ECORRUPT (not a valid
 *         encoding; nothing useful in cols), -ERANGE (more than max
 *         columns, or scratch too small). */
STRATA_API int strata_tuple_decode(const void *buf, size_t len, strata_tuple_value *cols,
				   size_t max, size_t *n, void *scratch, size_t scap);

/* The tuple order above: <0, 0, >0. The reference the encoding is tested
 * against; also handy for callers that keep decoded tuples. */
STRATA_API int strata_tuple_compare(const strata_tuple_value *a, size_t na,
				    const strata_tuple_value *b, size_t nb);

#ifdef __cplusplus
}
#endif
#endif /* STRATA_TUPLE_H */
