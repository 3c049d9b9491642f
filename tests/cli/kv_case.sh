#!/usr/bin/env bash
# kv_case.sh — one test case of `strata kv` (the B+tree from the shell) and
# of the B+tree section of `strata check`. Each case runs the built binary
# on fresh stores in a temporary directory and checks exit status and
# output: escaped keys/values round-trip, scan bounds and limits, load
# (bulk when sorted into an empty tree, puts otherwise), batch files,
# stats, usage errors (exit 2) and failures (exit 1).
# Usage: kv_case.sh CASE STRATA_BINARY
set -euo pipefail

case_name=$1 strata=$2
case_label=kv
# shellcheck source=case_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/case_lib.sh"
stdout_is() { [[ $(cat "$out") == "$1" ]] || fail "stdout is not '$1'"; }
stdout_has() { grep -Eq -- "$1" "$out" || fail "stdout lacks /$1/"; }
stderr_has() { grep -Eq -- "$1" "$err" || fail "stderr lacks /$1/"; }

case_put_get_del() {
	local s=$tmp/s
	run 0 kv put "$s" t hello world
	run 0 kv put "$s" t 'bin\x00\xff' 'tab\there\\'
	run 0 kv get "$s" t hello
	stdout_is world
	run 0 kv get "$s" t 'bin\x00\xff'
	stdout_is 'tab\there\\'
	run 0 kv put "$s" t hello again
	run 0 kv get "$s" t hello
	stdout_is again
	run 0 kv del "$s" t hello
	run 1 kv get "$s" t hello
	stderr_has 'not found'
	run 1 kv del "$s" t hello
	run 1 kv get "$tmp/nostore" t k
	stderr_has 'no store here'
	[[ ! -e $tmp/nostore ]] || fail "get created a store"
	run 0 check "$s"
	stdout_has '^b\+trees \(1 checked\): clean$'
}

case_scan() {
	local s=$tmp/s
	for k in b d a c e; do run 0 kv put "$s" t "$k" "v$k"; done
	run 0 kv scan "$s" t
	stdout_is $'a\tva\nb\tvb\nc\tvc\nd\tvd\ne\tve'
	run 0 kv scan "$s" t --from b --to d
	stdout_is $'b\tvb\nc\tvc'
	run 0 kv scan "$s" t --from bb --limit 2
	stdout_is $'c\tvc\nd\tvd'
	run 0 kv scan "$s" t --from z
	stdout_is ''
}

case_load() {
	local s=$tmp/s i
	for ((i = 1; i <= 5000; i++)); do printf 'key%06d\tvalue %d\n' $i $i; done >"$tmp/sorted.tsv"
	run 0 kv load "$s" t "$tmp/sorted.tsv" --node-size 512
	stdout_is 'loaded 5000 entries (bulk)'
	run 0 kv stats "$s" t
	stdout_has '^keys +5000$'
	stdout_has '^node size +512 '
	run 0 kv get "$s" t key004321
	stdout_is 'value 4321'
	# Not empty any more: the same file goes in by puts (overwrites).
	run 0 kv load "$s" t "$tmp/sorted.tsv"
	stdout_is 'loaded 5000 entries (puts)'
	# Unsorted input into an empty tree: refused by bulk load, then puts.
	sort -r "$tmp/sorted.tsv" >"$tmp/rev.tsv"
	run 0 kv load "$tmp/s2" t "$tmp/rev.tsv"
	stderr_has 'not sorted'
	stdout_is 'loaded 5000 entries (puts)'
	run 0 kv scan "$tmp/s2" t --limit 1
	stdout_is $'key000001\tvalue 1'
	printf 'good\tline\nno tab here\n' >"$tmp/bad.tsv"
	run 1 kv load "$tmp/s3" t "$tmp/bad.tsv"
	stderr_has 'bad.tsv:2: not `key<TAB>value`'
	run 0 check "$s"
	stdout_has '^b\+trees \(1 checked\): clean$'
	run 0 kv load "$tmp/ignored" t "$tmp/sorted.tsv" --in-memory
	stdout_is 'loaded 5000 entries (bulk)'
	[[ ! -e $tmp/ignored ]] || fail "--in-memory touched DIR"
}

case_batch() {
	cat >"$tmp/b.txt" <<'B'
# a comment
p k1 one
p k2 two words
g k2
c
d k1
g k1
s k0 k9
p k\x20 space
B
	run 0 kv batch "$tmp/s" t "$tmp/b.txt"
	stdout_is $'k2\ttwo words\n# not found: k1\nk2\ttwo words'
	run 0 kv get "$tmp/s" t 'k\x20'
	stdout_is space
	printf 'p k v\nx nonsense\np k2 v\n' >"$tmp/bad.txt"
	run 1 kv batch "$tmp/s" t "$tmp/bad.txt"
	stderr_has 'bad.txt:2: bad line'
	# The failed batch's open transaction was aborted: k is not there.
	run 1 kv get "$tmp/s" t k
}

case_usage() {
	run 2 kv
	stderr_has 'missing SUBCOMMAND'
	run 2 kv frob "$tmp/s" t
	stderr_has "unknown subcommand 'frob'"
	run 2 kv get "$tmp/s" t
	stderr_has 'needs 3 arguments'
	run 2 kv get "$tmp/s" t k extra
	stderr_has 'too many arguments'
	run 2 kv scan "$tmp/s" t --limit x
	stderr_has "bad value 'x' for --limit"
	run 2 kv get "$tmp/s" t k --from a
	stderr_has "unknown option '--from'"
	run 2 kv put "$tmp/s" t 'bad\q' v
	stderr_has 'bad escape'
	run 2 kv put "$tmp/s" t k v --node-size 100
	run 0 kv --help
	stdout_has '^usage: strata kv SUB DIR NAME'
	# A key longer than the tree's maximum (40 bytes at node size 256).
	run 0 kv put "$tmp/s" t k v --node-size 256
	run 1 kv put "$tmp/s" t "$(printf 'x%.0s' {1..41})" v
	stderr_has 'key size'
}

"case_${case_name//-/_}"
echo "kv $case_name: ok"
