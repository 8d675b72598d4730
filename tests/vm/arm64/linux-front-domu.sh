#!/bin/sh
# Runs in the arm64 PV DomU for tests/vm/linux-frontend-arm64: loads Linux's
# xen-camera-front (/xcf/xen_camera_front.ko), then on each of its video
# nodes runs v4l2-compliance and streams the test pattern with v4l2-ctl
# (MMAP and USERPTR), every frame
# checked pixel-exact with xmb-pattern-check.
set -u
FRAMES=${FRAMES:-30}
export LD_LIBRARY_PATH=/usr/lib/aarch64-linux-gnu:/lib/aarch64-linux-gnu
insmod /xcf/xen_camera_front.ko || { echo "linux-front-domu: insmod xen_camera_front failed"; exit 1; }
i=0
while [ $i -lt 60 ] && ! { [ -e /dev/video0 ] && [ -e /dev/video1 ]; }; do sleep 1; i=$((i + 1)); done
ls /dev/video* || { echo "linux-front-domu: the driver made no video node"; dmesg | tail -n 30; exit 1; }
rc=0
# One step: v4l2-compliance, or N frames streamed with v4l2-ctl (mmap or
# user) and checked pixel-exact.
compliance() {
	echo "--- $xb: v4l2-compliance"
	v4l2-compliance -d "$dev" > /tmp/compliance.txt 2>&1
	grep -E "fail:|Total for" /tmp/compliance.txt
}
stream() {
	echo "--- $xb: v4l2-ctl --stream-$1"
	rm -f /tmp/s.raw
	if ! v4l2-ctl -d "$dev" --set-fmt-video=width=320,height=240,pixelformat=YUYV \
		--stream-"$1" --stream-count "$FRAMES" --stream-to /tmp/s.raw > /tmp/ctl.txt 2>&1; then
		echo "$xb $1: v4l2-ctl failed: $(tail -n 3 /tmp/ctl.txt | tr '\n' ' ')"
		rc=1
		return
	fi
	if r=$(xmb-pattern-check /tmp/s.raw YUYV 320x240 "$FRAMES"); then
		echo "$xb $1: $r"
	else
		echo "$xb $1: FAIL: $r"; rc=1
	fi
}
# be-alloc: the driver leaves holes in its memory when it unmaps Dom0's grants
# (REQBUFS 0, close), and the DomU dies at the next use of such a page. So the
# frames are checked while v4l2-ctl still streams, before anything is freed.
stream_live() {
	echo "--- $xb: v4l2-ctl --stream-mmap, checked while streaming"
	rm -f /tmp/s.raw
	v4l2-ctl -d "$dev" --set-fmt-video=width=320,height=240,pixelformat=YUYV \
		--stream-mmap --stream-count 100000 --stream-to /tmp/s.raw > /tmp/ctl.txt 2>&1 &
	ctl=$!
	want=$((FRAMES * 320 * 240 * 2)) i=0
	while [ $i -lt 120 ] && [ "$(stat -c %s /tmp/s.raw 2>/dev/null || echo 0)" -lt $want ]; do
		kill -0 $ctl 2>/dev/null || break
		sleep 1; i=$((i + 1))
	done
	head -c $want /tmp/s.raw > /tmp/first.raw
	if r=$(xmb-pattern-check /tmp/first.raw YUYV 320x240 "$FRAMES"); then
		echo "$xb mmap: $r"
	else
		echo "$xb mmap: FAIL: $r $(tail -n 3 /tmp/ctl.txt | tr '\n' ' ')"; rc=1
	fi
	echo "$xb: stopping v4l2-ctl (the driver now unmaps Dom0's grants)"
	echo "XMB-EARLY-STATUS $rc"
	kill $ctl; wait $ctl
}
# The xenbus device behind a node: vcamera-<n>, our device n. Device 0
# (frontend-allocated): compliance, MMAP, USERPTR. Device 1 (be-alloc): the
# driver maps Dom0's grants over pages of its own and leaves holes in its
# memory when it unmaps them (docs/camera-service.md): one MMAP stream on
# fresh buffers first, checked live, then compliance (which frees and
# reallocates), which the DomU is not expected to survive.
for n in 0 1; do
	node=""
	for v in /sys/class/video4linux/video*; do
		[ "$(basename "$(readlink -f "$v/device")")" = "vcamera-$n" ] && node=$v
	done
	[ -n "$node" ] || { echo "vcamera-$n: no video node"; rc=1; continue; }
	dev=/dev/${node##*/}
	xb=vcamera-$n
	echo "=== $dev ($xb: $(cat "$node/name"))"
	v4l2-ctl -d "$dev" --all 2>&1 | grep -E "Driver name|Width/Height|Pixel Format|Colorspace|Transfer|YCbCr|Quantization"
	if [ $n = 0 ]; then
		compliance; stream mmap; stream user
	else
		stream_live; compliance
	fi
done
dmesg | grep -iE "xen_camera|vcamera|ballooned|bug|oops" | tail -n 20
exit $rc
