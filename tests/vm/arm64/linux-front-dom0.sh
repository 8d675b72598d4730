#!/bin/sh
# Runs in the arm64 Dom0 (busybox sh) for tests/vm/linux-frontend-arm64: the
# camera service serves two test-pattern cameras to a DomU that runs
# Linux's own xen-camera-front driver (built out of tree, not part of this
# repository): device 0 frontend-allocated (the driver grants its vb2 pages),
# device 1 be-alloc (Dom0's pages granted, the driver maps them).
set -u
# shellcheck source=tests/vm/arm64/lib.sh disable=SC1091 # /test/lib.sh in the VM
. /test/lib.sh
pattern_devices YUYV > /tmp/cameras.conf
svc=""
start_service /tmp/cameras.conf || exit 1
run_domu 240 || exit 1
kill "$svc"; wait "$svc"; svc_rc=$?
echo "--- service: how each device streamed"
grep -E "streaming|closing|protocol|violation|error" /tmp/service.log | head -n 60
[ "$svc_rc" = 0 ] || { echo "linux-front: the service exited with $svc_rc"; exit 1; }
# The DomU says XMB-EARLY-STATUS once every frame was checked, before the
# be-alloc buffers are freed (after which Linux's driver crashes its DomU).
early=$(sed -n 's/.*XMB-EARLY-STATUS \([0-9]*\).*/\1/p' /var/log/xen/console/guest-domu.log | tail -n 1)
if [ "${st:-x}" != 0 ]; then
	if [ "${early:-x}" = 0 ]; then
		echo "linux-front: every frame checked right; the DomU died after (status ${st:-none}): the driver's be-alloc unmap"
	else
		echo "linux-front: the DomU's checks failed (status ${st:-none}, ${early:-none} before be-alloc buffers were freed)"; exit 1
	fi
fi
grep -q "vcamera/1: closing.*[1-9][0-9]* frames, 0 bytes copied" /tmp/service.log ||
	{ echo "linux-front: no be-alloc frame reached the driver"; exit 1; }
echo "linux-front: PASS"
