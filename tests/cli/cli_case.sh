#!/usr/bin/env bash
# cli_case.sh — one test case of the `strata` command-line tool: runs the
# binary and checks its exit status, stdout and stderr. The cases are the
# tool's contract: help and version succeed, every usage error exits 2 with
# the usage on stderr, demo writes its report, a failing demo exits 1;
# `info` and `wal` describe store directories written by MKSTORE (the test
# helper mkstore.c), report damaged ones, and never change a byte; `check`
# and `checkpoint` open real DURABLE stores that MKSTORE writes through the
# public API, and check names each damaged node image.
# Usage: cli_case.sh CASE STRATA_BINARY EXPECTED_VERSION MKSTORE_BINARY
set -euo pipefail

case_name=$1 strata=$2 version=$3 mkstore=${4:-}
case_label=cli
# shellcheck source=case_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/case_lib.sh"
stdout_has() { grep -Eq -- "$1" "$out" || fail "stdout lacks /$1/"; }
stderr_has() { grep -Eq -- "$1" "$err" || fail "stderr lacks /$1/"; }
stdout_lacks() { ! grep -Eq -- "$1" "$out" || fail "stdout has /$1/"; }
# stdout_count N REGEX: exactly N lines of stdout match.
stdout_count() {
	local n
	n=$(grep -Ec -- "$2" "$out" || true)
	[[ $n -eq $1 ]] || fail "stdout has $n lines matching /$2/, expected $1"
}
stdout_empty() { [[ ! -s $out ]] || fail "stdout should be empty"; }
stderr_empty() { [[ ! -s $err ]] || fail "stderr should be empty"; }

# A usage error: status 2, the reason and a usage line on stderr, no stdout.
usage_error() {
	local reason=$1
	shift
	run 2 "$@"
	stderr_has "$reason"
	stderr_has '^usage: strata'
	stdout_empty
}

case_help() {
	local flag
	for flag in --help -h help; do
		run 0 "$flag"
		stdout_has '^usage: strata COMMAND'
		stdout_has '^  help '
		stdout_has '^  version '
		stdout_has '^  demo \[DIR\] '
		stdout_has '^  info DIR '
		stdout_has '^  wal DIR \[--from LSN\] \[--limit N\] \[--frames\] '
		stdout_has '^  check DIR '
		stdout_has '^  checkpoint DIR '
		stdout_has '^  compact DIR '
		stderr_empty
	done
}

case_command_help() {
	run 0 help demo
	stdout_has '^usage: strata demo \[DIR\]$'
	run 0 demo --help
	stdout_has '^usage: strata demo \[DIR\]$'
	run 0 version -h
	stdout_has '^usage: strata version$'
	run 0 help info
	stdout_has '^usage: strata info DIR \[--stats\]$'
	run 0 info --help
	stdout_has '^usage: strata info DIR \[--stats\]$'
	run 0 wal --help
	stdout_has '^usage: strata wal DIR \[--from LSN\] \[--limit N\] \[--frames\]$'
	stdout_has 'read-only'
	run 0 wal "$tmp" --frames -h
	stdout_has '^usage: strata wal DIR '
	run 0 help check
	stdout_has '^usage: strata check DIR$'
	stdout_has 'recovers it'
	run 0 checkpoint --help
	stdout_has '^usage: strata checkpoint DIR$'
}

case_version() {
	run 0 version
	[[ $(cat "$out") == "strata $version" ]] || fail "expected 'strata $version'"
	stderr_empty
}

case_usage_errors() {
	usage_error 'no command given'
	usage_error "unknown command 'frobnicate'" frobnicate
	usage_error "unknown option '--frobnicate'" --frobnicate
	usage_error 'takes no arguments' version extra
	usage_error 'too many arguments' demo "$tmp/a" "$tmp/b"
	usage_error "bad argument '--bogus'" demo --bogus
	usage_error "bad argument ''" demo ''
	usage_error "unknown command 'nosuch'" help nosuch
	usage_error 'too many arguments' help demo version
	usage_error 'missing DIR' info
	usage_error 'too many arguments' info "$tmp" "$tmp"
	usage_error "bad argument '--bogus'" info --bogus
	usage_error 'missing DIR' wal
	usage_error 'missing DIR' wal --frames
	usage_error 'too many arguments' wal "$tmp" "$tmp"
	usage_error "unknown option '--bogus'" wal "$tmp" --bogus
	usage_error '--from needs a value' wal "$tmp" --from
	usage_error "bad --from value 'x12'" wal "$tmp" --from x12
	usage_error "bad --from value '-1'" wal "$tmp" --from -1
	usage_error '--from 0x41: frames start at multiples of 8' wal "$tmp" --from 0x41
	usage_error "bad --limit value '3k'" wal "$tmp" --limit 3k
	usage_error '--limit must be at least 1' wal "$tmp" --limit 0
	local cmd
	for cmd in check checkpoint; do
		usage_error 'missing DIR' $cmd
		usage_error 'too many arguments' $cmd "$tmp" "$tmp"
		usage_error "bad argument '--bogus'" $cmd --bogus
		usage_error "bad argument ''" $cmd ''
	done
	build_store "$tmp/store"
	usage_error 'is past any possible log' wal "$tmp/store" --from 0xfffffffffffffff8
}

case_demo() {
	local dir=$tmp/nested/demo-dir report
	run 0 demo "$dir"
	report=$dir/demo-report.txt
	[[ -f $report ]] || fail "no $report"
	grep -q '^    strata_check: clean$' "$report" || fail "report lacks the clean check line"
	grep -q 'DURABLE mode' "$report" || fail "report does not say which mode ran"
	grep -q '^Store statistics' "$report" || fail "report lacks the statistics"
	stdout_has '^    strata_check: clean$'
	stdout_has "^Report written to $dir/demo-report.txt\$"
	# The terminal shows the report, then where it was written.
	head -c "$(wc -c <"$report")" "$out" | cmp -s - "$report" ||
		fail "stdout and the report differ"
	stderr_empty
}

case_demo_fails() {
	: >"$tmp/plain-file"
	run 1 demo "$tmp/plain-file/sub"
	stderr_has '^strata demo: .*: Not a directory$'
}

# ---- store directories for info and wal --------------------------------------
# build_store DIR: mkstore writes a store with commits of epochs 2..5 (each
# synced on its own) and prints "commit EPOCH START END" for each; kept in
# $tmp/commits for the LSN helpers below.
build_store() {
	[[ -n $mkstore ]] || fail "no mkstore binary given"
	"$mkstore" build "$1" >"$tmp/commits" || fail "mkstore build $1 failed"
	[[ $(wc -l <"$tmp/commits") -eq 4 ]] || fail "mkstore did not report 4 commits"
}
commit_start() { awk -v e="$1" '$2 == e { print $3 }' "$tmp/commits"; }
commit_end() { awk -v e="$1" '$2 == e { print $4 }' "$tmp/commits"; }
flip() { "$mkstore" flip "$1" "$2" || fail "mkstore flip $1 $2 failed"; }
# With one 1 MiB WAL file, a frame's LSN is its offset in wal.0...0; the
# payload starts 24 bytes in, so this breaks the CRC of the commit's first
# frame (and of nothing else).
flip_commit() { flip "$1/wal.0000000000000000" $(($(commit_start "$2") + 27)); }
commit_line() { echo "^epoch $1 lsn $(commit_start "$1") frames $2\$"; }

case_info() {
	local s=$tmp/store
	build_store "$s"
	run 0 info "$s"
	stdout_has "^Store $s\$"
	stdout_has '^  format version +1$'
	stdout_has '^  current slot +0 \(generation 2\)$'
	stdout_has '^  slot 0 +ok, current$'
	stdout_has '^  slot 1 +ok$'
	stdout_has '^  generation +2$'
	stdout_has '^  store UUID +00112233445566778899aabbccddeeff$'
	stdout_has '^  checkpoint +generation 1, epoch 1, 4096 B \(4\.0 KiB\), header CRC 0xdeadbeef$'
	stdout_has '^  clean shutdown +no$'
	stdout_has '^  WAL start LSN +0$'
	stdout_has '^  WAL file size +1048576 B \(1\.0 MiB\)$'
	stdout_has '^  last epoch +5$'
	stdout_has '^WAL files$'
	stdout_has '^  wal\.0000000000000000  1048576 B \(1\.0 MiB\)  seq 0, salt 0x[0-9a-f]{8}$'
	stdout_has '^Checkpoint files$'
	stdout_has '^  ckpt\.0000000000000001  4096 B \(4\.0 KiB\)$'
	stdout_has '^Data file$'
	stdout_has '^  data  8192 B \(8\.0 KiB\)$'
	stderr_empty
	# Files that are missing, or not of this store, are reported as such.
	rm "$s/data" "$s/ckpt.0000000000000001"
	: >"$s/wal.0000000000000001"
	cp "$s/SUPER" "$s/wal.0000000000000002"
	run 0 info "$s"
	stdout_count 2 '^  none$'
	stdout_has '^  wal\.0000000000000001  0 B  shorter than a WAL file header$'
	stdout_has '^  wal\.0000000000000002  8192 B \(8\.0 KiB\)  bad header: not a Strata store'
}

case_info_not_a_store() {
	mkdir "$tmp/empty"
	run 1 info "$tmp/empty"
	stderr_has "^strata info: $tmp/empty: not a Strata store \\(no SUPER file\\)"
	stdout_empty
	run 1 wal "$tmp/empty"
	stderr_has "^strata wal: $tmp/empty: not a Strata store"
	stdout_empty
	run 1 info "$tmp/missing"
	stderr_has "^strata info: $tmp/missing: No such file or directory$"
	[[ ! -e $tmp/missing ]] || fail "info created the directory it was asked about"
	[[ -z $(ls -A "$tmp/empty") ]] || fail "info wrote into a directory that is not a store"
}

case_info_slot_fallback() {
	local s=$tmp/store
	build_store "$s"
	flip "$s/SUPER" 100 # slot 0, generation 2: the current one
	run 0 info "$s"
	stdout_has '^  current slot +1 \(generation 1\)$'
	stdout_has '^  slot 0 +corruption detected: checksum or structure mismatch$'
	stdout_has '^  slot 1 +ok, current$'
	stdout_has '^  generation +1$'
	stdout_has '^  checkpoint +none yet'
	stdout_has '^  last epoch +1$'
	run 0 wal "$s" # slot 1 gives the same WAL
	stdout_count 4 '^epoch '
	flip "$s/SUPER" $((4096 + 100))
	run 1 info "$s"
	stderr_has "^strata info: $s/SUPER: both superblock slots are corrupt: corruption detected"
	stderr_has '^  slot 0: corruption detected'
	stderr_has '^  slot 1: corruption detected'
	stdout_empty
	run 1 wal "$s"
	stderr_has 'both superblock slots are corrupt'
	stdout_empty
}

case_info_bad_super() {
	mkdir "$tmp/s"
	head -c 8192 /dev/zero >"$tmp/s/SUPER"
	run 1 info "$tmp/s"
	stderr_has "^strata info: $tmp/s/SUPER: not a Strata store"
	stdout_empty
	build_store "$tmp/t"
	truncate -s 4000 "$tmp/t/SUPER"
	run 1 info "$tmp/t"
	stderr_has "^strata info: $tmp/t/SUPER: shorter than its two 4096-byte slots: file truncated"
	stdout_empty
}

case_wal() {
	local s=$tmp/store
	build_store "$s"
	run 0 wal "$s"
	stdout_has "^WAL of $s from LSN 0 \\(superblock start LSN 0, files of 1\\.0 MiB\\)\$"
	stdout_count 4 '^epoch [0-9]+ lsn [0-9]+ frames [0-9]+$'
	stdout_has "$(commit_line 2 3)"
	stdout_has "$(commit_line 3 3)"
	stdout_has "$(commit_line 4 2)"
	stdout_has "$(commit_line 5 2)"
	stdout_count 0 '^    '
	stdout_has "^summary: commits 4, bytes [0-9]+, end LSN $(commit_end 5), last epoch 5\$"
	stdout_lacks '^replay:'
	stderr_empty
}

case_wal_frames() {
	local s=$tmp/store
	build_store "$s"
	run 0 wal "$s" --frames
	grep '^    ' "$out" >"$tmp/frames" || true
	cat >"$tmp/want" <<-'EOF'
	    NODE id=0x0000001000000040 size=16 kind=1
	    NODE id=0x0000001000000080 size=24 kind=2
	    ROOT name=main id=0x0000001000000040
	    NODE id=0x00000020000000c0 size=16 kind=1
	    RETIRE id=0x0000001000000040
	    ROOT name=main id=0x00000020000000c0
	    RETIRE id=0x0000001000000080
	    ROOT name=aux id=0x0000000000000000
	    NODE id=0x0000003000000101 size=100 kind=3
	    ROOT name=aux id=0x0000003000000101
	EOF
	diff "$tmp/want" "$tmp/frames" >&2 || fail "the frames differ from what mkstore wrote"
	# Each commit line is followed by exactly its frames.
	stdout_count 4 '^epoch '
	grep -A3 "$(commit_line 3 3)" "$out" | tail -1 | grep -q '^    ROOT name=main' ||
		fail "epoch 3's frames do not follow its commit line"
}

case_wal_options() {
	local s=$tmp/store from
	build_store "$s"
	run 0 wal "$s" --limit 2
	stdout_count 2 '^epoch '
	stdout_has "$(commit_line 3 3)"
	stdout_has "^summary: commits 2, .*, end LSN $(commit_end 3), last epoch 3 \\(stopped at --limit\\)\$"
	from=$(commit_start 4)
	run 0 wal "$s" --from "$from"
	stdout_has "^WAL of $s from LSN $from "
	stdout_count 2 '^epoch '
	stdout_has "$(commit_line 4 2)"
	stdout_has "$(commit_line 5 2)"
	run 0 wal --frames --from "$(printf '0x%x' "$from")" --limit 1 "$s"
	stdout_count 1 '^epoch '
	stdout_has "$(commit_line 4 2)"
	stdout_count 2 '^    '
	run 0 wal "$s" --from $((1 << 20))
	stdout_count 0 '^epoch '
	stdout_has "^summary: commits 0, bytes 0, end LSN $((1 << 20)), last epoch 0\$"
	stdout_lacks '^note:'
	# Inside a frame: replay sees a bad frame; the note says why.
	from=$(($(commit_start 3) + 8))
	run 1 wal "$s" --from "$from"
	stdout_count 0 '^epoch '
	stdout_has "^note: no valid frame at LSN $from; --from must be the LSN of a commit"
}

case_wal_torn_tail() {
	local s=$tmp/store
	build_store "$s"
	flip_commit "$s" 5 # the last commit: nothing written after it
	run 0 wal "$s"
	stdout_count 3 '^epoch '
	stdout_lacks '^epoch 5 '
	stdout_has "^summary: commits 3, .*, end LSN $(commit_end 4), last epoch 4\$"
	stdout_has "^replay: torn tail at LSN $(commit_start 5) \\(wal\\.0000000000000000 offset $(commit_start 5)\\)"
	stdout_has '^tail: .* would be cut when the store is opened; strata wal changed nothing$'
	stderr_empty
}

case_wal_corrupt() {
	local s=$tmp/store at
	build_store "$s"
	flip_commit "$s" 3 # epochs 4 and 5 were written after it was synced
	at=$(commit_start 3)
	run 1 wal "$s" --frames
	stdout_count 1 '^epoch '
	stdout_has "$(commit_line 2 3)"
	stdout_count 3 '^    '
	stdout_has "^summary: commits 1, .*, end LSN $at, last epoch 2\$"
	stdout_has "^replay: wal\\.0000000000000000 offset $at \\(LSN $at\\): bad frame, but the commit of epoch 4 after it"
	stderr_has "^strata wal: $s: corruption detected: .*: wal\\.0000000000000000 offset $at \\(LSN $at\\)"
}

# Inspection never changes the store, not even a torn tail replay would cut.
case_read_only() {
	local s=$tmp/store
	build_store "$s"
	flip_commit "$s" 5
	flip "$s/SUPER" 100
	(cd "$s" && ls -l --time-style=+%s && sha256sum -- *) >"$tmp/before"
	run 0 info "$s"
	run 0 wal "$s" --frames
	run 0 wal "$s" --from 0 --limit 1
	(cd "$s" && ls -l --time-style=+%s && sha256sum -- *) >"$tmp/after"
	diff "$tmp/before" "$tmp/after" >&2 || fail "inspecting the store changed it"
}

# ---- real stores for check and checkpoint ------------------------------------
# durable_store DIR: a cleanly closed DURABLE store, epochs 2 and 3, five
# live nodes; where the images of root nodes lie goes to $tmp/images as
# "image ROOT ID FILE OFFSET SIZE".
durable_store() {
	[[ -n $mkstore ]] || fail "no mkstore binary given"
	"$mkstore" durable "$1" >"$tmp/images" || fail "mkstore durable $1 failed"
	[[ $(grep -c '^image ' "$tmp/images") -eq 3 ]] || fail "mkstore did not report 3 images"
}
image_field() { awk -v r="$1" -v f="$2" '$2 == r { print $f }' "$tmp/images"; }
image_id() { image_field "$1" 3; }
# flip_image DIR ROOT: one bit in the middle of that root node's image.
flip_image() {
	local file off size
	file=$(image_field "$2" 4) off=$(image_field "$2" 5) size=$(image_field "$2" 6)
	flip "$1/$file" $((off + size / 2))
}
snapshot_dir() { (cd "$1" && ls -l --time-style=+%s && sha256sum -- *); }

# info --stats opens the store and prints what strata_stats reports.
case_info_stats() {
	local s=$tmp/store
	durable_store "$s"
	run 0 info "$s" --stats
	stdout_has '^Contents$'
	stdout_has '^  nodes +5 live, 0 retired$'
	stdout_has '^  live bytes +[0-9]+ B'
	stdout_has '^  amplification +[0-9]+\.[0-9]{2} \(file bytes / live bytes\)$'
	stdout_has '^  object table +1 chunks on disk, 0 loaded$'
	stderr_empty
	run 2 info "$s" --bogus
	run 2 info "$s" "$s"
}

# compact opens the store, compacts, reports the space before and after;
# the store then checks clean and keeps its nodes.
case_compact() {
	local s=$tmp/store
	durable_store "$s"
	run 0 compact "$s"
	stdout_has '^before: live [0-9]+ B, file [0-9]+ B, amplification [0-9.]+$'
	stdout_has '^moved: [0-9]+ nodes, [0-9]+ B in [0-9]+ rounds; [0-9]+ segments given back$'
	stdout_has '^after: live [0-9]+ B, file [0-9]+ B, amplification [0-9.]+$'
	stderr_empty
	run 0 check "$s"
	stdout_has '^check: 5 nodes, '
	run 2 compact
	run 2 compact "$s" extra
	run 1 compact "$tmp/missing"
}

case_check() {
	local s=$tmp/store
	durable_store "$s"
	snapshot_dir "$s" >"$tmp/before"
	run 0 check "$s"
	stdout_has "^recovery: $s: recovered epoch 3 \\(checkpoint 1 at epoch 3, 0 commits replayed\\)\$"
	stdout_has '^invariants \(.*allocator bitmaps.*\): clean$'
	stdout_has '^images \(5 checked: CRCs, roots resolve\): clean$'
	stdout_count 0 '^problem:'
	stdout_has '^check: 5 nodes, 5 images verified, 0 problems$'
	[[ $(tail -1 "$out") == 'check: 5 nodes, 5 images verified, 0 problems' ]] ||
		fail "the summary is not the last line"
	stderr_empty
	# A clean store needs no recovery and no final checkpoint.
	snapshot_dir "$s" >"$tmp/after"
	diff "$tmp/before" "$tmp/after" >&2 || fail "checking a clean store changed it"
}

case_check_crash() {
	local s=$tmp/store
	"$mkstore" durable-crash "$s" || fail "mkstore durable-crash failed"
	run 0 info "$s"
	stdout_has '^  clean shutdown +no$'
	stdout_has '^  checkpoint +generation 1, epoch 2,'
	run 0 check "$s"
	stdout_has "^recovery: $s: recovered epoch 4 \\(checkpoint 1 at epoch 2, 2 commits replayed\\)"
	stdout_has '^check: 6 nodes, 6 images verified, 0 problems$'
	stderr_empty
	# Opening recovered the store; closing checkpointed what replay rebuilt.
	run 0 info "$s"
	stdout_has '^  clean shutdown +yes$'
	stdout_has '^  checkpoint +generation 2, epoch 4,'
	run 0 check "$s"
	stdout_has "^recovery: .*\\(checkpoint 2 at epoch 4, 0 commits replayed\\)"
	stdout_has '^check: 6 nodes, 6 images verified, 0 problems$'
}

case_check_corrupt() {
	local s=$tmp/store leaf blob
	durable_store "$s"
	leaf=$(image_id leaf) blob=$(image_id blob)
	flip_image "$s" leaf # a small node: its slot in data
	run 1 check "$s"
	stdout_has '^invariants .*: clean$'
	stdout_has "^problem: node $leaf: image \\(200 bytes at data offset $(image_field leaf 5)\\) not readable: corruption detected"
	stdout_has "^problem: root 'leaf': node $leaf does not resolve at epoch 3: corruption detected"
	stdout_count 2 '^problem:'
	stdout_has '^images .*: 2 problems$'
	stdout_has '^check: 5 nodes, 5 images verified, 2 problems$'
	flip_image "$s" blob # a large node: the checkpoint's large section
	run 1 check "$s"
	stdout_has "^problem: node $blob: image \\(100000 bytes at checkpoint file offset [0-9]+\\) not readable"
	stdout_has "^problem: root 'blob': node $blob does not resolve"
	stdout_has "^problem: node $leaf: "
	stdout_has '^check: 5 nodes, 5 images verified, 4 problems$'
	# Nothing changed since the last checkpoint: `strata checkpoint` writes
	# nothing (so the damaged image is not read), and the files stay as
	# they were.
	local files='SUPER data ckpt.0000000000000001 wal.0000000000000000'
	(cd "$s" && sha256sum -- $files) >"$tmp/before"
	run 0 checkpoint "$s"
	(cd "$s" && sha256sum -- $files) >"$tmp/after"
	diff "$tmp/before" "$tmp/after" >&2 || fail "an empty checkpoint changed the store"
	run 1 check "$s"
	stdout_has '^check: 5 nodes, 5 images verified, 4 problems$'
}

case_checkpoint() {
	local s=$tmp/store
	durable_store "$s"
	run 0 info "$s"
	stdout_has '^  checkpoint +generation 1, epoch 3,'
	run 0 checkpoint "$s"
	stdout_has "^recovery: $s: recovered epoch 3 "
	stdout_has '^before: generation 1, epoch 3$'
	# Nothing new since the close that made it: no checkpoint is written.
	stdout_has '^checkpoint: generation 1, epoch 3, clean shutdown yes$'
	stdout_has '^closed: generation 1, epoch 3, clean shutdown yes$'
	stderr_empty
	run 0 info "$s"
	stdout_has '^  checkpoint +generation 1, epoch 3,'
	stdout_has '^  clean shutdown +yes$'
	stdout_has '^  ckpt\.0000000000000001 '
	stdout_lacks '^  ckpt\.000000000000000[23] '
	run 0 check "$s"
	stdout_has "^recovery: .*\\(checkpoint 1 at epoch 3, 0 commits replayed\\)"
	stdout_has '^check: 5 nodes, 5 images verified, 0 problems$'
	# After a crash: the checkpoint holds the replayed commits.
	"$mkstore" durable-crash "$tmp/crashed" || fail "mkstore durable-crash failed"
	run 0 checkpoint "$tmp/crashed"
	stdout_has '2 commits replayed'
	stdout_has '^before: generation 1, epoch 2$'
	stdout_has '^checkpoint: generation 2, epoch 4, clean shutdown no$'
	stdout_has '^closed: generation 2, epoch 4, clean shutdown yes$'
}

case_check_not_a_store() {
	local cmd
	mkdir "$tmp/empty"
	: >"$tmp/plain"
	for cmd in check checkpoint; do
		run 1 $cmd "$tmp/empty"
		stderr_has "^strata $cmd: $tmp/empty: not a Strata store \\(no SUPER file\\)"
		stdout_empty
		run 1 $cmd "$tmp/missing"
		stderr_has "^strata $cmd: $tmp/missing: No such file or directory$"
		run 1 $cmd "$tmp/plain"
		stderr_has "^strata $cmd: $tmp/plain(/SUPER)?: Not a directory\$"
	done
	[[ -z $(ls -A "$tmp/empty") ]] || fail "check wrote into a directory that is not a store"
	[[ ! -e $tmp/missing ]] || fail "check created the directory it was asked about"
	# A store with both superblock slots damaged is refused before opening.
	durable_store "$tmp/s"
	flip "$tmp/s/SUPER" 100
	flip "$tmp/s/SUPER" $((4096 + 100))
	run 1 check "$tmp/s"
	stderr_has 'both superblock slots are corrupt'
	stdout_empty
}

"case_${case_name//-/_}"
echo "cli $case_name: ok"
