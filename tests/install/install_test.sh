#!/usr/bin/env bash
# install_test.sh — the steps of the install test. tests/install/CMakeLists.txt
# runs each step as its own ctest test (label "install"):
#   prefix            cmake --install the build into a scratch prefix
#   pkgconfig-shared  build consumer.c with `pkg-config strata`, run it
#   pkgconfig-static  the same against libstrata.a with `pkg-config --static`
#   cmake             build consumer/ (C++17) with find_package(strata), run it
# Usage: install_test.sh STEP --build=DIR --src=DIR --work=DIR --libdir=REL
#                         --cc=CC --cxx=CXX [--sanitize=LIST] [--config=CFG]
# (name=value options: ctest drops empty positional arguments.)
set -euo pipefail

step=$1
shift
build='' src='' work='' libdir='' cc='' cxx='' sanitize='' config=''
for opt in "$@"; do
	case $opt in
	--build=*) build=${opt#*=} ;;
	--src=*) src=${opt#*=} ;;
	--work=*) work=${opt#*=} ;;
	--libdir=*) libdir=${opt#*=} ;;
	--cc=*) cc=${opt#*=} ;;
	--cxx=*) cxx=${opt#*=} ;;
	--sanitize=*) sanitize=${opt#*=} ;;
	--config=*) config=${opt#*=} ;;
	*)
		echo "install_test.sh: unknown option $opt" >&2
		exit 2
		;;
	esac
done
prefix=$work/prefix

# A sanitized library needs its runtime in the consumer too; pkg-config
# cannot know that, so the test adds the flags the build used.
san_flags=()
if [[ -n $sanitize ]]; then
	san_flags=(-fsanitize="$sanitize" -fno-omit-frame-pointer)
fi

say() { printf 'install_test %s: %s\n' "$step" "$*"; }
die() {
	printf 'install_test %s: FAIL: %s\n' "$step" "$*" >&2
	exit 1
}

step_prefix() {
	rm -rf "$work"
	mkdir -p "$work"
	cmake --install "$build" --prefix "$prefix" ${config:+--config "$config"}
	local f
	for f in bin/strata "$libdir/libstrata.so" "$libdir/libstrata.a" \
		"$libdir/pkgconfig/strata.pc" "$libdir/cmake/strata/strataConfig.cmake" \
		"$libdir/cmake/strata/strataConfigVersion.cmake"; do
		[[ -e $prefix/$f ]] || die "not installed: $f"
	done
	# Exactly the public headers (include/strata/*.h and the generated
	# version.h): internal ones must never ship.
	local headers want
	headers=$(cd "$prefix/include" && find . -type f | sort | tr '\n' ' ')
	want=$( (cd "$src/../../include" && find ./strata -name '*.h'; echo ./strata/version.h) |
		sort -u | tr '\n' ' ')
	[[ $headers == "$want" ]] || die "unexpected installed headers: $headers (expected $want)"
	say "installed into $prefix"
}

# Compiles consumer.c with the pkg-config flags given as arguments.
build_c_consumer() {
	local exe=$1
	shift
	"$cc" -std=c17 -Wall -Wextra -Werror -pedantic "${san_flags[@]}" \
		"$src/consumer.c" -o "$exe" "$@"
}

step_pkgconfig_shared() {
	export PKG_CONFIG_PATH=$prefix/$libdir/pkgconfig
	local exe=$work/consumer-shared cflags libs
	cflags=$(pkg-config --cflags strata)
	libs=$(pkg-config --libs strata)
	say "cflags: $cflags"
	say "libs:   $libs"
	# shellcheck disable=SC2086 # pkg-config output is a list of words
	build_c_consumer "$exe" $cflags $libs
	export LD_LIBRARY_PATH=$prefix/$libdir
	# ldd into a variable: `ldd | grep -q` can die of SIGPIPE under pipefail.
	local deps
	deps=$(ldd "$exe")
	[[ $deps == *"$prefix/$libdir/libstrata.so"* ]] ||
		die "consumer does not load libstrata.so from the prefix: $deps"
	"$exe"
}

# A static-only copy of the prefix: with no libstrata.so beside it the
# linker must take libstrata.a, so every private dependency has to come
# from `pkg-config --static`, as for a user who installs only the archive.
step_pkgconfig_static() {
	local sprefix=$work/prefix-static exe=$work/consumer-static cflags libs
	rm -rf "$sprefix"
	cp -a "$prefix" "$sprefix"
	rm -f "$sprefix/$libdir"/libstrata.so*
	export PKG_CONFIG_PATH=$sprefix/$libdir/pkgconfig
	cflags=$(pkg-config --static --cflags strata)
	libs=$(pkg-config --static --libs strata)
	say "cflags: $cflags"
	say "libs:   $libs"
	# shellcheck disable=SC2086
	build_c_consumer "$exe" $cflags $libs
	local deps
	deps=$(ldd "$exe")
	[[ $deps != *libstrata* ]] || die "static consumer still needs a shared libstrata: $deps"
	"$exe"
}

step_cmake() {
	local bdir=$work/consumer-build
	local args=(-S "$src/consumer" -B "$bdir" -DCMAKE_PREFIX_PATH="$prefix"
		-DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo)
	if [[ -n $sanitize ]]; then
		args+=(-DCMAKE_CXX_FLAGS="${san_flags[*]}" -DCMAKE_EXE_LINKER_FLAGS="${san_flags[*]}")
	fi
	rm -rf "$bdir"
	cmake "${args[@]}"
	# find_package must have found the scratch install, not another one.
	local found
	found=$(sed -n 's/^strata_DIR:PATH=//p' "$bdir/CMakeCache.txt")
	[[ $found == "$prefix/$libdir/cmake/strata" ]] || die "find_package(strata) used $found"
	cmake --build "$bdir" --verbose
	"$bdir/consumer_cxx"
	"$bdir/consumer_cxx_static"
}

case $step in
prefix) step_prefix ;;
pkgconfig-shared) step_pkgconfig_shared ;;
pkgconfig-static) step_pkgconfig_static ;;
cmake) step_cmake ;;
*) die "unknown step '$step'" ;;
esac
say "ok"
