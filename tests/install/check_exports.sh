#!/usr/bin/env bash
# check_exports.sh — the shared library's dynamic symbol table must be the
# public API and nothing else: every STRATA_API function of the public
# headers (strata.h and the indexes' headers) is
# exported, and no other symbol is (the library builds with hidden
# visibility; a leaked internal name would become ABI we must keep).
# Usage: check_exports.sh LIBSTRATA_SO PUBLIC_HEADER...
set -euo pipefail

lib=$1
shift
header="$*"

exported=$(nm -D --defined-only "$lib" | awk '{print $3}' | sort -u)
declared=$(cat "$@" | grep 'STRATA_API' | grep -o 'strata_[a-z0-9_]*(' | tr -d '(' | sort -u)

[[ -n $exported ]] || {
	echo "check_exports: $lib exports nothing" >&2
	exit 1
}
status=0
foreign=$(grep -v '^strata_' <<<"$exported" || true)
if [[ -n $foreign ]]; then
	printf 'check_exports: exported without the strata_ prefix:\n%s\n' "$foreign" >&2
	status=1
fi
missing=$(comm -23 <(echo "$declared") <(echo "$exported"))
if [[ -n $missing ]]; then
	printf 'check_exports: declared STRATA_API but not exported:\n%s\n' "$missing" >&2
	status=1
fi
extra=$(comm -13 <(echo "$declared") <(grep '^strata_' <<<"$exported" || true))
if [[ -n $extra ]]; then
	printf 'check_exports: exported but not declared in %s:\n%s\n' "$header" "$extra" >&2
	status=1
fi
[[ $status -eq 0 ]] && echo "check_exports: $(wc -l <<<"$exported") symbols, all public API"
exit $status
