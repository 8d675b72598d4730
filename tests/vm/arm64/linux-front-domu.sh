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
# The xenbus device behind a node: vcamera-<n>, our device n; device 0
# (frontend-allocated) first, be-alloc (1) last.
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
	echo "--- $xb: v4l2-compliance"
	v4l2-compliance -d "$dev" > /tmp/compliance.txt 2>&1
	grep -E "fail:|Total for" /tmp/compliance.txt
	for mem in mmap user; do
		echo "--- $xb: v4l2-ctl --stream-$mem"
		rm -f /tmp/s.raw
		if ! v4l2-ctl -d "$dev" --set-fmt-video=width=320,height=240,pixelformat=YUYV \
			--stream-$mem --stream-count "$FRAMES" --stream-to /tmp/s.raw > /tmp/ctl.txt 2>&1; then
			echo "$xb $mem: v4l2-ctl failed: $(tail -n 3 /tmp/ctl.txt | tr '\n' ' ')"
			rc=1
			continue
		fi
		if r=$(xmb-pattern-check /tmp/s.raw YUYV 320x240 "$FRAMES"); then
			echo "$xb $mem: $r"
		else
			echo "$xb $mem: FAIL: $r"; rc=1
		fi
	done
done
dmesg | grep -iE "xen_camera|vcamera|ballooned|bug|oops" | tail -n 20
exit $rc
