#!/usr/bin/env bash
# Run the whole test suite; README's second command and what CI runs.
#
#   scripts/test.sh [--quick]
#
# 1. unit + integration tests (loopback platform, test-pattern camera)
# 2. the same unit tests under ASan+UBSan
# 3. libFuzzer targets, each for XMB_FUZZ_SECONDS (default 20) with clang
# 4. the real-Xen suite: Xen 4.17 + PV Dom0 + PV DomU under QEMU (tests/vm)
#
# --quick runs step 1 only.  XMB_SKIP_VM=1 skips step 4 (says so).
# Ends with one line "N passed, N failed, N skipped".
set -uo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build="$src/build"
quick=0
[ "${1:-}" = "--quick" ] && quick=1

passed=0 failed=0 skipped=0
failures=()

# Add the results of one meson test run (its testlog.json) to the totals.
tally() {
	local log="$1/meson-logs/${3:-testlog.json}" label="$2"
	[ -f "$log" ] || { failed=$((failed + 1)); failures+=("$label: no test log"); return; }
	read -r p f s < <(python3 - "$log" <<'PY'
import json, sys
p = f = s = 0
for line in open(sys.argv[1]):
    r = json.loads(line)["result"]
    if r in ("OK", "EXPECTEDFAIL"): p += 1
    elif r == "SKIP": s += 1
    else: f += 1
print(p, f, s)
PY
)
	passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
	((f)) && failures+=("$label: $f failed (see $log)")
	echo "== $label: $p passed, $f failed, $s skipped" >&2
}

step() { echo; echo "==== $* ====" >&2; }

step "unit and integration tests"
[ -f "$build/build.ninja" ] || meson setup "$build" "$src" >/dev/null
ninja -C "$build" || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }
meson test -C "$build" --print-errorlogs --num-processes 2
tally "$build" "unit"

if ((!quick)); then
	step "unit tests under ASan+UBSan"
	asan="$src/build-asan"
	[ -f "$asan/build.ninja" ] || meson setup "$asan" "$src" -Db_sanitize=address,undefined \
		-Db_lundef=false -Dbuildtype=debug -Dvm_tests=false >/dev/null
	if ninja -C "$asan"; then
		# tests/lsan.supp: third-party allocations kept for the process's life (GLib, plugins);
		# full stacks (fast_unwind_on_malloc=0) so those match by where they were made.
		UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
			ASAN_OPTIONS=detect_leaks=1:fast_unwind_on_malloc=0 \
			LSAN_OPTIONS="suppressions=$src/tests/lsan.supp:print_suppressions=0" \
			meson test -C "$asan" --suite unit --print-errorlogs --num-processes 2 \
			--timeout-multiplier 3
		tally "$asan" "asan+ubsan"
	else
		failed=$((failed + 1)); failures+=("asan build failed")
	fi

	step "fuzzers (${XMB_FUZZ_SECONDS:-20} s each)"
	fuzz="$src/build-fuzz"
	[ -f "$fuzz/build.ninja" ] || CC=clang CXX=clang++ meson setup "$fuzz" "$src" \
		-Dfuzzers=enabled -Dtests=disabled -Dgstreamer=disabled -Dlibcamera=disabled \
		-Db_lundef=false -Dvm_tests=false >/dev/null
	if ninja -C "$fuzz" && "$src/tests/fuzz/run-fuzzers.sh" "$fuzz" "${XMB_FUZZ_SECONDS:-20}"; then
		passed=$((passed + 1)); echo "== fuzzers: passed" >&2
	else
		failed=$((failed + 1)); failures+=("fuzzers failed (see output above)")
	fi

	step "real Xen (QEMU: Xen 4.17, PV Dom0, PV DomU)"
	if [ "${XMB_SKIP_VM:-0}" = 1 ]; then
		echo "== xen: skipped because XMB_SKIP_VM=1" >&2
		skipped=$((skipped + 1))
	else
		start=$(date +%s)
		"$src/tests/vm/xen-vm" prepare
		meson test -C "$build" --setup xen --suite xen --print-errorlogs --num-processes 1
		tally "$build" "xen" "testlog-xen.json"
		echo "== xen suite took $(($(date +%s) - start)) s" >&2
	fi
fi

echo
for f in "${failures[@]}"; do echo "FAILED: $f"; done
echo "$passed passed, $failed failed, $skipped skipped"
((failed == 0))
