// peer_boost.cpp — Boost.Geometry's rtree as the xtree suite's 2-D peer:
// rstar<16> (the parameters the issue quotes), built by inserts or by the
// packing constructor. Values are (box, id) pairs. Queries return the hit
// count (window) or the sum of the ids of the k nearest (kNN), for the
// suite's cross-check. The C interface is in peer_spatial.h.
#include <boost/geometry.hpp>
#include <boost/geometry/index/rtree.hpp>

#include <iterator>
#include <utility>
#include <vector>

#include "peer_spatial.h"

namespace bg = boost::geometry;
namespace bgi = boost::geometry::index;
using point = bg::model::point<double, 2, bg::cs::cartesian>;
using box = bg::model::box<point>;
using value = std::pair<box, uint64_t>;
using tree = bgi::rtree<value, bgi::rstar<16>>;

struct peer_boost {
	tree t;
};

static box make_box(const double *lo, const double *hi)
{
	return box(point(lo[0], lo[1]), point(hi[0], hi[1]));
}

extern "C" peer_boost *peer_boost_build(const double *lo, const double *hi, const uint64_t *ids,
					size_t n, int packed)
{
	std::vector<value> v;
	v.reserve(n);
	for (size_t i = 0; i < n; i++)
		v.emplace_back(make_box(lo + 2 * i, hi + 2 * i), ids[i]);
	if (packed)
		return new peer_boost{tree(v.begin(), v.end())};
	auto *b = new peer_boost{};
	for (const value &x : v)
		b->t.insert(x);
	return b;
}

// Counts through an output iterator: no result vector to grow.
struct counter {
	uint64_t *n;
	counter &operator*() { return *this; }
	counter &operator++() { return *this; }
	counter operator++(int) { return *this; }
	counter &operator=(const value &) { ++*n; return *this; }
};

extern "C" uint64_t peer_boost_window(peer_boost *b, const double *lo, const double *hi)
{
	uint64_t n = 0;
	b->t.query(bgi::intersects(make_box(lo, hi)), counter{&n});
	return n;
}

extern "C" uint64_t peer_boost_knn(peer_boost *b, const double *pt, unsigned k)
{
	uint64_t sum = 0;
	for (auto it = b->t.qbegin(bgi::nearest(point(pt[0], pt[1]), k)); it != b->t.qend(); ++it)
		sum += it->second;
	return sum;
}

extern "C" void peer_boost_free(peer_boost *b)
{
	delete b;
}
