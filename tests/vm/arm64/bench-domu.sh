#!/bin/sh
# The DomU of tests/vm/arm64/bench-dom0.sh: 150 frames at 640x360 from device 0,
# then 150 at 1280x720 from device 1, then 150 at 640x360 from device 2 through
# the GStreamer element (xmbcamerasrc ! fakesink); its own CPU for each (busybox time).
set -u
rc=0
echo 16384 > /sys/module/xen_gntalloc/parameters/limit # 4 buffers of 720p: 1800 pages granted
# First, when Dom0 asks (xmb.evtchn=1): the platform's floor between the two
# domains, Dom0 measuring (xmb-evtchn-bench dom0); this answers until it is done.
if grep -q xmb.evtchn=1 /proc/cmdline; then
	xmb-evtchn-bench guest || rc=1
fi
for dev in 0 1; do
	size=$([ $dev = 0 ] && echo 640x360 || echo 1280x720)
	out=$( { time -p xmb-camera-guest --device "$dev" --format YUYV --size "$size" --frames 150 --quiet; } 2>&1 ) || rc=1
	u=$(echo "$out" | sed -n 's/^user \(.*\)/\1/p')
	s=$(echo "$out" | sed -n 's/^sys \(.*\)/\1/p')
	echo "BENCH-DOMU $dev $size user $u sys $s $(echo "$out" | grep summary)"
	echo "$out" | grep -q summary || echo "$out" | tail -n 5
done
export GST_REGISTRY=/tmp/gst-registry.bin GST_PLUGIN_SYSTEM_PATH=/usr/lib/aarch64-linux-gnu/gstreamer-1.0
gst-launch-1.0 -q fakesrc num-buffers=1 ! fakesink > /dev/null 2>&1 # the registry, outside the timing
# 150 frames, then 1 (the pipeline's start-up and teardown alone, to subtract).
for n in 150 1; do
	out=$( { time -p gst-launch-1.0 -q xmbcamerasrc device=2 num-buffers=$n ! \
		video/x-raw,format=YUY2,width=640,height=360 ! fakesink; } 2>&1 ) || { rc=1; echo "$out" | tail -n 5; }
	u=$(echo "$out" | sed -n 's/^user \(.*\)/\1/p')
	s=$(echo "$out" | sed -n 's/^sys \(.*\)/\1/p')
	echo "BENCH-DOMU 2 640x360-xmbcamerasrc-$n-frames user $u sys $s"
done
exit $rc
