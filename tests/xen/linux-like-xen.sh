#!/bin/bash
# Real Xen, inside Dom0 (run by tests/xen/run-xen-suite.sh under tests/vm/xen-vm):
# xmb-camera-service serves two PV DomUs running xmb-linux-like-guest, a frontend
# with Linux xen-camera-front's wire habits (no version node, stale reserved bytes,
# G_FMT first, S_PARM 0/0 and 1/0, USERPTR buffers 16 bytes into their first page,
# CREATE_BUFS, BUF_DEQUEUE): one with its own buffers, one be-alloc mapping Dom0's
# pages writable. Every frame is checked pixel-exact in the guest.
set -euo pipefail
build=${1:?usage: linux-like-xen.sh BUILD_DIR}
work=$(mktemp -d /tmp/xmb-linux-like.XXXXXX)
peer=$build/tests/xen/xmb-linux-like-guest
fail() {
	echo "linux-like-xen: FAIL: $*" >&2
	echo "--- service log" >&2
	while IFS= read -r l; do echo "$l" >&2; done < "$work/service.log"
	exit 1
}
[ -x "$peer" ] || fail "no $peer"

cat > "$work/cameras.conf" <<CONF
[camera pat1]
source = test-pattern
formats = YUYV, NV12
[camera pat2]
source = test-pattern
formats = YUYV, NV12
[guest own]
domain = xmblin1
camera = pat1
max-buffers = 4
[guest be]
domain = xmblin2
camera = pat2
be-alloc = yes
max-buffers = 4
CONF

XMB_LOG=debug "$build/bridge/xmb-camera-service" --config "$work/cameras.conf" \
	--pidfile "$work/pid" 2> "$work/service.log" &
svc=$!
cleanup() {
	xmb-domu destroy xmblin1 >/dev/null 2>&1 || true
	xmb-domu destroy xmblin2 >/dev/null 2>&1 || true
	kill "$svc" 2>/dev/null || true
	wait "$svc" 2>/dev/null || true
}
trap cleanup EXIT

# Both DomUs at once: one VM, two guests, two cameras.
xmb-domu start xmblin1 --quiet -- "$peer" --frames 30 >/dev/null
xmb-domu start xmblin2 --quiet -- "$peer" --be-alloc --frames 30 >/dev/null
rc=0
for g in xmblin1 xmblin2; do
	set +e
	out=$(xmb-domu wait "$g" --timeout 300 2>&1)
	r=$?
	set -e
	echo "$out" | grep "linux-like-guest" || echo "$out" | tail -20
	[ $r -eq 0 ] || { echo "linux-like-xen: $g exited $r" >&2; rc=1; }
done
[ $rc -eq 0 ] || fail "a Linux-like guest failed"
grep -q "frontend wrote no version" "$work/service.log" \
	|| fail "the service did not log the implied protocol version"
echo "linux-like-xen: PASS"
