# case_lib.sh — what every command-line case script shares (cli_case.sh,
# kv_case.sh, xt_case.sh): a temporary directory removed on exit, the
# captured stdout and stderr of the last run, fail() and run(). Sourced
# after the script sets case_label (cli, kv, xt), case_name and strata.

tmp=$(mktemp -d "${TMPDIR:-/tmp}/strata-$case_label.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
out=$tmp/stdout err=$tmp/stderr

# fail MESSAGE: says which case failed and why, with the last run's stdout
# (its first 3000 bytes) and stderr, and exits 1.
fail() {
	printf '%s %s: FAIL: %s\n--- stdout:\n%s\n--- stderr:\n%s\n' "$case_label" "$case_name" \
		"$1" "$(head -c 3000 "$out" 2>/dev/null)" "$(cat "$err" 2>/dev/null)" >&2
	exit 1
}

# run WANT_STATUS ARGS...: runs strata ARGS, checks the exit status.
run() {
	local want=$1 status=0
	shift
	"$strata" "$@" >"$out" 2>"$err" || status=$?
	[[ $status -eq $want ]] || fail "strata $* exited $status, expected $want"
}
