#!/bin/bash
# run_fuzzer.sh BIN SEEDS WORK SECONDS MAX_LEN — one bounded libFuzzer run
# of a target: the ctest tests of label `fuzz` (which `make fuzz` runs).
# FUZZ_SECONDS in the environment overrides SECONDS.
#
# WORK/corpus keeps what the fuzzer found, from run to run (SEEDS is only
# read). A crash, leak or hang (-timeout) leaves its input in
# WORK/artifacts/ and makes this script fail with libFuzzer's status. The
# whole log is WORK/last-run.log; NEW/REDUCE lines are not echoed.
set -euo pipefail
bin=$1 seeds=$2 work=$3 seconds=${FUZZ_SECONDS:-$4} max_len=$5
mkdir -p "$work/corpus" "$work/artifacts"
# A UBSan finding is a crash like any other.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
"$bin" -max_total_time="$seconds" -max_len="$max_len" -timeout=10 -rss_limit_mb=4096 \
	-print_final_stats=1 -artifact_prefix="$work/artifacts/" "$work/corpus" "$seeds" \
	2>&1 | tee "$work/last-run.log" | { grep -v -E '^#[0-9]+[[:space:]]+(NEW|REDUCE)' || true; }
# Reached only when libFuzzer exited 0 (pipefail + set -e).
done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$work/last-run.log" | tail -1)
echo "$(basename "$bin"): ${seconds} s, $(ls "$work/corpus" | wc -l) corpus files, ${done_line}"
