#!/usr/bin/env bash
# xt_case.sh — one test case of `strata xt` (the X-tree from the shell) and
# of the X-tree section of `strata check`. Each case runs the built binary
# on fresh stores in a temporary directory and checks exit status and
# output against answers computed here with awk (a brute-force scan):
# window queries (intersects, contains, within), kNN in three metrics with
# ties broken by id, bulk load and insert load, batch files, stats, draw,
# usage errors (exit 2) and failures (exit 1).
# Usage: xt_case.sh CASE STRATA_BINARY
set -euo pipefail

case_name=$1 strata=$2
case_label=xt
# shellcheck source=case_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/case_lib.sh"
stdout_is_file() { cmp -s "$out" "$1" || fail "stdout differs from $(basename "$1"): $(diff "$out" "$1" | head -5)"; }
stdout_has() { grep -Eq -- "$1" "$out" || fail "stdout lacks /$1/"; }
stderr_has() { grep -Eq -- "$1" "$err" || fail "stderr lacks /$1/"; }

# boxes N SEED: N 2-D boxes `id,x1,y1,x2,y2` on a grid of 0..99 (ties).
boxes() {
	awk -v n="$1" -v seed="$2" 'BEGIN { srand(seed); for (i = 1; i <= n; i++) {
		x = int(rand() * 100); y = int(rand() * 100);
		printf "%d,%d,%d,%d,%d\n", i, x, y, x + int(rand() * 4), y + int(rand() * 4) } }'
}

# oracle_window FILE PRED X1 Y1 X2 Y2: ids ascending.
oracle_window() {
	awk -F, -v p="$2" -v a="$3" -v b="$4" -v c="$5" -v d="$6" '
		p == "i" && $2 <= c && $4 >= a && $3 <= d && $5 >= b { print $1 }
		p == "c" && $2 <= a && $4 >= c && $3 <= b && $5 >= d { print $1 }
		p == "w" && $2 >= a && $4 <= c && $3 >= b && $5 <= d { print $1 }' "$1" | sort -n
}

# oracle_knn FILE METRIC X Y K: `id distance`, distance then id ascending.
oracle_knn() {
	awk -F, -v m="$2" -v x="$3" -v y="$4" '
		function gap(v, lo, hi) { return v < lo ? lo - v : (v > hi ? v - hi : 0) }
		{ gx = gap(x, $2, $4); gy = gap(y, $3, $5);
		  d = m == "l1" ? gx + gy : (m == "linf" ? (gx > gy ? gx : gy) : sqrt(gx * gx + gy * gy));
		  printf "%d %.17g\n", $1, d }' "$1" | sort -k2,2g -k1,1n >"$tmp/sorted"
	head -n "$5" "$tmp/sorted" # not in the pipe: pipefail would see SIGPIPE
}

case_query() {
	boxes 3000 7 >"$tmp/b.csv"
	run 0 xt create "$tmp/s" t --dims 2
	run 0 xt load "$tmp/s" t "$tmp/b.csv"
	stdout_has 'loaded 3000 entries \(bulk\)'
	for w in "10 10 30 30" "0 0 99 99" "50 50 50 50" "5 5 6 6" "200 200 300 300"; do
		set -- $w
		oracle_window "$tmp/b.csv" i "$@" >"$tmp/want"
		run 0 xt query "$tmp/s" t --box "$1,$2,$3,$4"
		stdout_is_file "$tmp/want"
		oracle_window "$tmp/b.csv" c "$@" >"$tmp/want"
		run 0 xt query "$tmp/s" t --box "$1,$2,$3,$4" --contains
		stdout_is_file "$tmp/want"
		oracle_window "$tmp/b.csv" w "$@" >"$tmp/want"
		run 0 xt query "$tmp/s" t --box "$1,$2,$3,$4" --within
		stdout_is_file "$tmp/want"
	done
	run 0 check "$tmp/s"
	stdout_has 'x-trees \(1 checked\): clean'
}

case_knn() {
	boxes 2000 11 >"$tmp/b.csv"
	run 0 xt load "$tmp/s" t "$tmp/b.csv" --dims 2
	for m in l2 l1 linf; do
		for k in 1 10 100; do
			oracle_knn "$tmp/b.csv" "$m" 40 60 "$k" >"$tmp/want"
			run 0 xt knn "$tmp/s" t --point 40,60 -k "$k" --metric "$m"
			stdout_is_file "$tmp/want"
		done
	done
	run 0 xt knn "$tmp/s" t --point 40,60 -k 5000
	[[ $(wc -l <"$out") -eq 2000 ]] || fail "k > count: expected all 2000 entries"
}

case_load_inserts() {
	boxes 1000 3 >"$tmp/a.csv"
	boxes 1000 4 | awk -F, -v OFS=, '{ $1 += 1000; print }' >"$tmp/b.csv"
	run 0 xt create "$tmp/s" t --dims 2 --node-size 512
	run 0 xt load "$tmp/s" t "$tmp/a.csv"
	run 0 xt load "$tmp/s" t "$tmp/b.csv"
	stdout_has 'loaded 1000 entries \(inserts\)'
	cat "$tmp/a.csv" "$tmp/b.csv" >"$tmp/all.csv"
	oracle_window "$tmp/all.csv" i 20 20 60 40 >"$tmp/want"
	run 0 xt query "$tmp/s" t --box 20,20,60,40
	stdout_is_file "$tmp/want"
	run 0 xt stats "$tmp/s" t
	stdout_has '^entries: 2000$'
	stdout_has '^height: [3-9]'
	run 0 check "$tmp/s"
	stdout_has 'x-trees \(1 checked\): clean'
}

case_batch() {
	cat >"$tmp/b.txt" <<-'B'
	# points in 3-D
	i 1 0 0 0
	i 2 1 1 1
	i 3 2 2 2 2.5 2.5 2.5
	c
	q 0.5 0.5 0.5 2.2 2.2 2.2
	k 2 1 1 1.2
	d 2 1 1 1
	q 0.5 0.5 0.5 2.2 2.2 2.2
	c
	q 0.5 0.5 0.5 2.2 2.2 2.2
	k 5 0 0 0
	B
	run 0 xt batch "$tmp/s" t "$tmp/b.txt"
	printf '2\n3\n--\n2 0.19999999999999996\n3 1.6248076809271921\n--\n2\n3\n--\n3\n--\n1 0\n3 3.4641016151377544\n--\n' >"$tmp/want"
	stdout_is_file "$tmp/want"
	run 0 xt batch --in-memory "$tmp/b.txt"
	stdout_is_file "$tmp/want"
	printf 'i 1 0 0 0\nd 9 0 0 0\n' >"$tmp/bad.txt"
	run 1 xt batch "$tmp/s" t "$tmp/bad.txt"
	stderr_has 'bad.txt:2: delete: .*not found'
	run 0 xt stats "$tmp/s" t
	stdout_has '^entries: 2$'
}

case_draw() {
	boxes 5000 5 >"$tmp/b.csv"
	run 0 xt create "$tmp/s" t --dims 2 --node-size 1024
	run 0 xt load "$tmp/s" t "$tmp/b.csv"
	run 0 xt draw "$tmp/s" t --svg "$tmp/t.svg"
	grep -q '^<svg' "$tmp/t.svg" || fail "no svg"
	[[ $(grep -c '<rect' "$tmp/t.svg") -gt 100 ]] || fail "too few rectangles"
}

case_errors() {
	run 2 xt
	stderr_has 'missing subcommand'
	run 2 xt create "$tmp/s" t
	stderr_has 'needs --dims'
	run 2 xt create "$tmp/s" t --dims 40
	run 2 xt query "$tmp/s" t
	run 2 xt knn "$tmp/s" t --point 1,2
	run 2 xt knn "$tmp/s" t --point 1,2 -k 1 --metric l3
	run 2 xt frob "$tmp/s" t
	run 2 xt query --in-memory --box 1,2
	run 0 xt create "$tmp/s" t --dims 2
	run 1 xt create "$tmp/s" t --dims 2
	stderr_has 'already present'
	run 1 xt query "$tmp/s" t --box 1,2,3
	stderr_has 'needs 4 or 2'
	run 1 xt query "$tmp/s" t --box 3,3,1,1
	stderr_has 'coordinate'
	run 1 xt knn "$tmp/s" t --point nan,1 -k 1
	run 1 xt query "$tmp/s" nosuch --box 1,2
	printf '1,2,3,4\n' >"$tmp/b3.csv"
	run 1 xt load "$tmp/s" t "$tmp/b3.csv"
	stderr_has 'expected id and 2 or 4'
	run 1 xt query "$tmp/nostore" t --box 1,2
}

"case_${case_name//-/_}"
