#!/bin/sh
# The DomU of tests/vm/arm64/bench-dom0.sh: 150 frames at 640x360 from device 0,
# then 150 at 1280x720 from device 1; its own CPU for each (busybox time).
set -u
rc=0
echo 16384 > /sys/module/xen_gntalloc/parameters/limit # 4 buffers of 720p: 1800 pages granted
for dev in 0 1; do
	size=$([ $dev = 0 ] && echo 640x360 || echo 1280x720)
	out=$( { time -p xmb-camera-guest --device "$dev" --format YUYV --size "$size" --frames 150 --quiet; } 2>&1 ) || rc=1
	u=$(echo "$out" | sed -n 's/^user \(.*\)/\1/p')
	s=$(echo "$out" | sed -n 's/^sys \(.*\)/\1/p')
	echo "BENCH-DOMU $dev $size user $u sys $s $(echo "$out" | grep summary)"
	echo "$out" | grep -q summary || echo "$out" | tail -n 5
done
exit $rc
