# Shared by the real-Xen test scripts (sourced, not run): the test's name,
# its work directory, the guest capture tool and the helpers every script
# needed.  Everything here runs at TCG speed inside Dom0, where each process
# costs 50-500 ms: waits use bash builtins between checks.
#
#   . "$(dirname "$0")/lib.sh" NAME BUILD_DIR
# sets: $test (NAME), $build, $work (a fresh /tmp dir; $work/service.log is
# the service's log by convention), $guest (xmb-camera-guest)
test=${1:?usage: . lib.sh NAME BUILD_DIR}
build=${2:?usage: . lib.sh NAME BUILD_DIR}
work=$(mktemp -d "/tmp/xmb-$test.XXXXXX")
guest=$build/bridge/frontend/xmb-camera-guest
[ -x "$guest" ] || guest=$build/bridge/xmb-camera-guest

# fail WHY...: say why, show the service log (XMB_FAIL_LOG_LINES: only its tail), exit 1
fail() {
	echo "$test: FAIL: $*" >&2
	if [ -f "$work/service.log" ]; then
		echo "--- service log" >&2
		if [ -n "${XMB_FAIL_LOG_LINES:-}" ]; then
			tail -n "$XMB_FAIL_LOG_LINES" "$work/service.log" >&2
		else
			while IFS= read -r l; do echo "$l" >&2; done < "$work/service.log"
		fi
	fi
	exit 1
}
# pause SECONDS: sleep without a process
pause() { read -r -t "$1" <> <(:) || true; }
# wait_log PATTERN SECONDS: until the service log has PATTERN
wait_log() {
	local deadline=$((SECONDS + $2))
	while ((SECONDS < deadline)); do
		grep -q "$1" "$work/service.log" && return 0
		pause 0.2
	done
	return 1
}
