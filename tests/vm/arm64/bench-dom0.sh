#!/bin/sh
# The camera benchmark on real Xen (arm64 Dom0 on the media kernel, PV DomU),
# run by hand with --media --domu-gst (not a test: it asserts nothing about speed).
# Under TCG only ratios mean something, never absolute times.
#
# xmb-sgcap is the camera: its frames are written by a kernel worker (the
# "engine"), so the service's own CPU is the bridge's cost alone, as with a
# DMA camera. Per mode, one DomU captures 150 frames at 640x360 (device 0),
# then at 1280x720 (device 1), then 150 at 640x360 through the guest-side
# GStreamer element (device 2: xmbcamerasrc ! fakesink):
#   zero:   into the DomU's own pages, imported by the camera as dma-bufs;
#   device: be-alloc, the camera's own buffers granted to the DomU (gntdev
#           imp_to_refs): no import per frame, the design's main path;
#   copy:   copy = force, the service copies each frame from the camera's
#           buffers into the DomU's pages.
# Before the first mode's camera phases, the platform's floor in the same run
# (xmb-evtchn-bench: one notify, Dom0 <-> DomU round trips back to back and
# paced at 30 fps, with Dom0's CPU per round).
# Before the service starts, the camera's own cost per frame without the
# bridge (xmb-capture-bench: the service's V4L2 source polling, dequeueing and
# queueing xmb-sgcap's buffers, its own (mmap) and imported (dmabuf) ones):
# what any capture program pays, so the bridge's part can be told apart.
# Per phase: the service's CPU per frame (all its threads' schedstat run
# time, sampled when the stream starts and when it closes), bytes copied,
# Dom0's capture->event latency (the service's own stats), and the DomU's
# CPU for its 150 frames (busybox time: 10 ms resolution).
set -u
# shellcheck source=tests/vm/arm64/lib.sh disable=SC1091 # /test/lib.sh in the VM
. /test/lib.sh
sg=""
for d in /sys/class/video4linux/video*; do
	[ "$(cat "$d/name")" = xmb-sgcap ] && sg=/dev/${d##*/}
done
[ -n "$sg" ] || { echo "arm64-bench: no xmb-sgcap node (the media kernel)"; exit 1; }
cpu_ns() { # run time of every thread of process $1, ns
	s=0
	for t in /proc/"$1"/task/*/schedstat; do
		read -r a _ < "$t" && s=$((s + a))
	done
	echo "$s"
}
ticks() { # user and system clock ticks of process $1 (all threads): "U S"
	sed 's/.*) //' /proc/"$1"/stat | awk '{ print $12, $13 }'
}
switches() { # context switches of every thread of process $1 (voluntary: it slept)
	sed -n 's/^voluntary_ctxt_switches:[[:space:]]*//p' /proc/"$1"/task/*/status | awk '{ s += $1 } END { print s }'
}
camfloor=""
for mem in mmap dmabuf; do
	for size in 640x360 1280x720; do
		# A failure is reported in its place, the camera phases still run.
		out=$(xmb-capture-bench --device "$sg" --size $size --frames 150 --memory $mem 2>&1) ||
			out="capture-bench: $mem $size failed: $(echo "$out" | tail -n 2 | tr '\n' ' ')"
		camfloor="$camfloor$out
"
	done
done
for mode in zero device copy; do
	be=$([ $mode = device ] && echo be-alloc)
	{
		printf '[camera sgcap]\nsource = v4l2:%s\nformats = YUYV\n' "$sg"
		[ $mode = copy ] && echo "copy = force"
		guest_device bench-360p 0 sgcap "$be"
		guest_device bench-720p 1 sgcap "$be"
		guest_device bench-gst 2 sgcap "$be"
	} > /tmp/bench.conf
	start_service /tmp/bench.conf > /dev/null || exit 1
	echo "service threads: $(ls /proc/"$svc"/task | wc -l)"
	if [ $mode = zero ]; then
		# The platform's own floor first, in this run: one notify, a round
		# trip Dom0 <-> DomU back to back and paced at 30 fps (the DomU
		# answers, then goes on to the camera phases).
		start_domu "xmb.phase=bench xmb.evtchn=1" || exit 1
		floor=$(xmb-evtchn-bench dom0 --domain "$(xl domid domu)" --rounds 500 --paced 90) ||
			{ echo "arm64-bench: the event-channel floor failed: $floor"; exit 1; }
	else
		start_domu xmb.phase=bench || exit 1
	fi
	for dev in 0 1 2; do
		wait_log "vcamera/$dev: streaming" 120 0.1 # CPU from the stream's start
		c0=$(cpu_ns "$svc") v0=$(switches "$svc") t0=$(ticks "$svc")
		sleep 3 # the latency as the service saw it, mid-stream (--status)
		last=$(xmb-camera-service --status 2>&1 | grep "vcamera/$dev " || true)
		wait_log "vcamera/$dev: closing" 120 0.1
		c1=$(cpu_ns "$svc") v1=$(switches "$svc") t1=$(ticks "$svc")
		# The user share of the service's CPU (the rest is the kernel's: ioctls, hypercalls).
		user=$(echo "$t0 $t1" | awk '{ u = $3 - $1; k = $4 - $2; printf "%d%%", (u + k) ? 100 * u / (u + k) : 0 }')
		line=$(grep "vcamera/$dev: closing" /tmp/service.log | head -n 1) # the first session of the device
		frames=$(echo "$line" | sed -n 's/.*: \([0-9]*\) frames, \([0-9]*\) bytes copied.*/\1/p')
		copied=$(echo "$line" | sed -n 's/.*: \([0-9]*\) frames, \([0-9]*\) bytes copied.*/\2/p')
		lat=$(echo "${last:-}" | sed -n 's/.*latency-us p50 \([0-9]*\) p99 \([0-9]*\).*/\1\/\2/p')
		size=$(case $dev in 0) echo 640x360 ;; 1) echo 1280x720 ;; *) echo "640x360 xmbcamerasrc" ;; esac)
		# The tier the service chose (its log): the row must be the path it names.
		tier=$(grep "vcamera/$dev: streaming" /tmp/service.log | head -n 1 | sed 's/.*streaming, //')
		case "$mode:$tier" in
		zero:"zero-copy (guest pages as dma-bufs"* | device:"device buffers granted (dma-buf)"* | copy:copy*) ;;
		*) echo "arm64-bench: $mode $size was served as \"$tier\""; exit 1 ;;
		esac
		[ "${frames:-0}" -gt 0 ] || { echo "arm64-bench: $mode $size: no frames"; tail -n 20 /tmp/service.log; exit 1; }
		echo "status mid-stream: ${last:-none}"
		row=$(printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |' "$mode" "$size" "$frames" "$(((c1 - c0) / 1000 / frames))" \
			"$(awk -v v=$((v1 - v0)) -v f="$frames" 'BEGIN { printf "%.2f", v / f }')" "$user" \
			"$((copied / frames))" "${lat:-?}" "$tier")
		rows="${rows:-}$row
"
	done
	i=0
	while [ $i -lt 300 ] && ! domu_said | grep -q XMB-DOMU-STATUS; do sleep 0.2; i=$((i + 1)); done
	domu_said | sed -n 's/.*BENCH-DOMU \([0-9]*\) \(.*\)/BENCH-DOMU '$mode' \1 \2/p' | tee -a /tmp/domu-bench.txt
	xl destroy domu 2> /dev/null
	kill "$svc"; wait "$svc"
	sleep 1
done
echo "${floor:-evtchn-bench: not measured}"
printf '%s' "$camfloor"
echo "| mode | size | frames | service CPU µs/frame | service sleeps/frame | of it user | bytes copied/frame | Dom0 capture->event p50/p99 µs | the service's tier |"
echo "|---|---|---|---|---|---|---|---|---|"
printf '%s' "$rows"
echo "arm64-bench: done"
