#!/usr/bin/env bash
# cli_case.sh — one test case of the `strata` command-line tool: runs the
# binary and checks its exit status, stdout and stderr. The cases are the
# tool's contract: help and version succeed, every usage error exits 2 with
# the usage on stderr, demo writes its report, a failing demo exits 1.
# Usage: cli_case.sh CASE STRATA_BINARY EXPECTED_VERSION
set -euo pipefail

case_name=$1 strata=$2 version=$3
tmp=$(mktemp -d "${TMPDIR:-/tmp}/strata-cli.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
out=$tmp/stdout err=$tmp/stderr

fail() {
	printf 'cli %s: FAIL: %s\n--- stdout:\n%s\n--- stderr:\n%s\n' "$case_name" "$1" \
		"$(cat "$out" 2>/dev/null)" "$(cat "$err" 2>/dev/null)" >&2
	exit 1
}

# run WANT_STATUS ARGS...: runs strata ARGS, checks the exit status.
run() {
	local want=$1 status=0
	shift
	"$strata" "$@" >"$out" 2>"$err" || status=$?
	[[ $status -eq $want ]] || fail "strata $* exited $status, expected $want"
}
stdout_has() { grep -Eq -- "$1" "$out" || fail "stdout lacks /$1/"; }
stderr_has() { grep -Eq -- "$1" "$err" || fail "stderr lacks /$1/"; }
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

"case_${case_name//-/_}"
echo "cli $case_name: ok"
