/* model.c — see model.h. */
#include <criterion/logging.h>

#include "support/model.h"

uint64_t rng_next(test_rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t rng_below(test_rng *r, uint64_t n)
{
	return n ? rng_next(r) % n : 0;
}

void test_report(void *ctx, const char *message)
{
	(void)ctx;
	cr_log_error("check: %s", message);
}
