#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Run every libFuzzer target of a build for SECONDS each, starting from a copy
# of its seed corpus (tests/fuzz/corpus/<target>/) in a temporary directory,
# so the committed corpus is never modified.  Fails if any target crashes,
# leaks, times out or breaks an invariant; the crash input is kept and its
# path printed.
#
#   CXX=clang++ CC=clang meson setup build-fuzz -Dfuzzers=enabled -Dtests=disabled
#   ninja -C build-fuzz
#   tests/fuzz/run-fuzzers.sh build-fuzz 60
#
# Extra arguments after SECONDS go to every fuzzer (e.g. -jobs=2 -workers=2).
set -u

if [ $# -lt 2 ]; then
	echo "usage: $0 BUILD_DIR SECONDS [libFuzzer args...]" >&2
	exit 2
fi
build=$1
seconds=$2
shift 2

here=$(cd "$(dirname "$0")" && pwd)
bindir=$build/tests/fuzz
work=$(mktemp -d "${TMPDIR:-/tmp}/xmb-fuzz.XXXXXX")

is_fuzzer() {
	[ -f "$1" ] && [ -x "$1" ] || return 1
	case $(basename "$1") in fuzz-replay-*) return 1 ;; esac
	return 0
}

found=0
failed=
for bin in "$bindir"/fuzz-*; do
	is_fuzzer "$bin" || continue
	found=$((found + 1))
	name=$(basename "$bin")
	name=${name#fuzz-}
	corpus=$work/$name/corpus
	artifacts=$work/$name/artifacts
	mkdir -p "$corpus" "$artifacts"
	if [ -d "$here/corpus/$name" ]; then
		cp "$here/corpus/$name"/* "$corpus"/ 2>/dev/null
	fi
	dict=
	if [ -f "$here/$name.dict" ]; then
		dict=-dict=$here/$name.dict
	fi
	log=$work/$name/log
	echo "== $name: ${seconds}s"
	# shellcheck disable=SC2086 # $dict is empty or one word
	"$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$artifacts/" $dict "$@" "$corpus" >"$log" 2>&1
	rc=$?
	grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb|DONE' "$log" | sed 's/^/   /'
	crashes=$(find "$artifacts" -type f | wc -l)
	if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
		echo "!! $name FAILED (exit $rc); log: $log" >&2
		tail -n 40 "$log" >&2
		find "$artifacts" -type f | sed 's/^/!! artifact: /' >&2
		failed="$failed $name"
	fi
done

if [ "$found" -eq 0 ]; then
	echo "$0: no libFuzzer binaries in $bindir (configure with clang and -Dfuzzers=enabled)" >&2
	rm -rf "$work"
	exit 2
fi
if [ -n "$failed" ]; then
	echo "FAILED:$failed (inputs and logs kept in $work)" >&2
	exit 1
fi
echo "all fuzzers ran ${seconds}s without a crash"
rm -rf "$work"
