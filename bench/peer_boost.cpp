// peer_boost.cpp — Boost.Geometry's rtree as the xtree suite's 2-D and 3-D
// peer: rstar<16> (the parameters the issue quotes), built by inserts or by
// the packing constructor. Values are (box, id) pairs. A window query
// collects the hit ids into a reused vector and returns their count; kNN
// returns the sum of the ids of the k nearest (the suite cross-checks both). The C interface is in peer_spatial.h; one template
// per dimension count behind one virtual interface.
#include <boost/geometry.hpp>
#include <boost/geometry/index/rtree.hpp>

#include <cstddef>
#include <utility>
#include <vector>

#include "peer_spatial.h"

namespace bg = boost::geometry;
namespace bgi = boost::geometry::index;

struct peer_boost {
	virtual ~peer_boost() = default;
	virtual uint64_t window(const double *lo, const double *hi) = 0;
	virtual uint64_t knn(const double *pt, unsigned k) = 0;
	virtual double knn_dist(const double *pt, unsigned k) = 0;
};

namespace {

template <std::size_t D> struct rt final : peer_boost {
	using point = bg::model::point<double, D, bg::cs::cartesian>;
	using box = bg::model::box<point>;
	using value = std::pair<box, uint64_t>;
	using tree = bgi::rtree<value, bgi::rstar<16>>;

	tree t;

	static point make_point(const double *c)
	{
		point p;
		set_coords(p, c, std::make_index_sequence<D>{});
		return p;
	}
	template <std::size_t... I>
	static void set_coords(point &p, const double *c, std::index_sequence<I...>)
	{
		(bg::set<I>(p, c[I]), ...);
	}
	static box make_box(const double *lo, const double *hi)
	{
		return box(make_point(lo), make_point(hi));
	}

	// The ids of the hits into a vector reused across queries (what the
	// X-tree side does with its blocks of ids: the same result, like for
	// like), through an output iterator Boost inlines into its leaf loop.
	std::vector<uint64_t> hits;
	struct id_out {
		std::vector<uint64_t> *v;
		id_out &operator*() { return *this; }
		id_out &operator++() { return *this; }
		id_out operator++(int) { return *this; }
		id_out &operator=(const value &x) { v->push_back(x.second); return *this; }
	};

	uint64_t window(const double *lo, const double *hi) override
	{
		hits.clear();
		t.query(bgi::intersects(make_box(lo, hi)), id_out{&hits});
		return hits.size();
	}

	uint64_t knn(const double *pt, unsigned k) override
	{
		uint64_t sum = 0;
		for (auto it = t.qbegin(bgi::nearest(make_point(pt), k)); it != t.qend(); ++it)
			sum += it->second;
		return sum;
	}

	double knn_dist(const double *pt, unsigned k) override
	{
		double sum = 0;
		point p = make_point(pt);
		for (auto it = t.qbegin(bgi::nearest(p, k)); it != t.qend(); ++it)
			sum += bg::distance(p, it->first);
		return sum;
	}

	static peer_boost *build(const double *lo, const double *hi, const uint64_t *ids, size_t n,
				 int packed)
	{
		std::vector<value> v;
		v.reserve(n);
		for (size_t i = 0; i < n; i++)
			v.emplace_back(make_box(lo + D * i, hi + D * i), ids[i]);
		auto *b = new rt{};
		if (packed) {
			b->t = tree(v.begin(), v.end());
			return b;
		}
		for (const value &x : v)
			b->t.insert(x);
		return b;
	}
};

} // namespace

extern "C" peer_boost *peer_boost_build(uint32_t d, const double *lo, const double *hi,
					const uint64_t *ids, size_t n, int packed)
{
	if (d == 2)
		return rt<2>::build(lo, hi, ids, n, packed);
	if (d == 3)
		return rt<3>::build(lo, hi, ids, n, packed);
	return nullptr;
}

extern "C" uint64_t peer_boost_window(peer_boost *b, const double *lo, const double *hi)
{
	return b->window(lo, hi);
}

extern "C" uint64_t peer_boost_knn(peer_boost *b, const double *pt, unsigned k)
{
	return b->knn(pt, k);
}

extern "C" double peer_boost_knn_dist(peer_boost *b, const double *pt, unsigned k)
{
	return b->knn_dist(pt, k);
}

extern "C" void peer_boost_free(peer_boost *b)
{
	delete b;
}
