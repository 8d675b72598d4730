#!/bin/sh
# Runs in the arm64 PV DomU beside media-dom0.sh: devices 0 (be-alloc: the
# camera's own buffers) and 1 (our own pages: copies), 60 frames of YUYV each;
# 2 and 3 (xmb-sgcap, our pages as dma-bufs / its buffers) pattern-checked;
# the last saved frame of each must be vivid's "75% Colorbar": luma falling
# from bar to bar in the lower half (vivid draws its text at the top).
set -u
# Later DomUs of the run (media-dom0.sh): the phase is on the kernel command line.
case $(cat /proc/cmdline) in
*xmb.phase=endless*) # until Dom0 destroys this DomU: our pages, imported by xmb-sgcap
	exec xmb-camera-guest --device 2 --format YUYV --size 640x480 --quiet ;;
*xmb.phase=after*)
	exec xmb-camera-guest --device 2 --format YUYV --size 640x480 --frames 30 --check-pattern --quiet ;;
esac
rc=0 w=640 h=360
for dev in 0 1; do
	rm -rf /tmp/f; mkdir -p /tmp/f
	if ! xmb-camera-guest --device $dev --format YUYV --size ${w}x$h --frames 60 --every 10 \
		--save-raw /tmp/f --quiet; then
		rc=1; continue
	fi
	# shellcheck disable=SC2012 # our own frame-<seq>.YUYV names
	f=/tmp/f/$(ls /tmp/f | tail -n 1)
	y=$((h * 3 / 4)) prev=256 luma="" ok=1
	for k in 0 1 2 3 4 5 6 7; do
		x=$(((2 * k + 1) * w / 16))
		l=$(od -An -tu1 -j $(((y * w + x) * 2)) -N 1 "$f" | tr -d ' ')
		luma="$luma $l"
		[ "$l" -lt $((prev - 5)) ] || ok=0
		prev=$l
	done
	echo "arm64-media-domu: device $dev: luma$luma"
	[ $ok = 1 ] || { echo "arm64-media-domu: device $dev: not vivid's colour bars"; rc=1; }
done
# xmb-sgcap, the test pattern: device 2 into our own pages (imported by the
# camera as dma-bufs), device 3 in its own buffers granted to us; every frame
# pixel-exact.
for dev in 2 3; do
	xmb-camera-guest --device $dev --format YUYV --size 640x480 --frames 60 --check-pattern --quiet ||
		{ echo "arm64-media-domu: xmb-sgcap device $dev: frames not the pattern"; rc=1; }
done
# vcodec/1: 8 frames through xmb-sgenc, which reads our own INPUT pages as
# dma-bufs; the stream goes back to Dom0 over the console to be decoded.
# vcodec/2: 12 frames through vicodec from our pages (it cannot read them as
# dma-bufs: Dom0 maps and copies them).
for dev in 1 2; do
	if [ $dev = 1 ]; then set -- 640x480 8; else set -- 640x480 12; fi
	if ! out=$(xmb-encode-guest --device $dev --codec fwht --size "$1" --frames "$2" --gop 1 \
		--output /tmp/d$dev.fwht 2>&1); then
		echo "$out" | tail -n 5; echo "arm64-media-domu: encode on vcodec/$dev failed"; rc=1
	fi
	echo "arm64-media-domu: vcodec/$dev: $(echo "$out" | tail -n 1)"
done
# vcodec/3: the same through the guest-side GStreamer element (xmbencoder,
# the codec frontend library: INPUT granted writable, Dom0 reads it as
# dma-bufs through xmb-sgenc); videotestsrc renders into the granted pages.
# (GStreamer's libraries are under /lib here, which its default plugin path misses.)
export GST_REGISTRY=/tmp/gst-registry.bin GST_PLUGIN_SYSTEM_PATH=/usr/lib/aarch64-linux-gnu/gstreamer-1.0
if gst-launch-1.0 -q videotestsrc num-buffers=8 ! video/x-raw,format=I420,width=640,height=480,framerate=30/1 ! \
	xmbencoder device=3 key-int-max=1 ! video/x-fwht ! filesink location=/tmp/g.fwht > /tmp/gst.log 2>&1; then
	echo "arm64-media-domu: xmbencoder: $(wc -c < /tmp/g.fwht) bytes of FWHT"
else
	tail -n 20 /tmp/gst.log; echo "arm64-media-domu: the xmbencoder pipeline failed"; rc=1
fi
echo XMB-STREAM-BEGIN
base64 /tmp/d1.fwht
echo XMB-STREAM-END
# vcodec/0: 12 frames of the test pattern through Dom0's vicodec (FWHT), every
# frame a key frame; the stream must hold 12 frames.
if out=$(xmb-encode-guest --codec fwht --size 640x480 --frames 12 --gop 1 --output /tmp/out.fwht 2>&1); then
	echo "arm64-media-domu: encode: $(echo "$out" | tail -n 1)"
	case $out in
	*"12 frames in, 12 encoded"*) ;;
	*) echo "arm64-media-domu: encode: not 12 frames encoded"; rc=1 ;;
	esac
	[ -s /tmp/out.fwht ] || { echo "arm64-media-domu: encode: empty stream"; rc=1; }
else
	echo "$out" | tail -n 5
	echo "arm64-media-domu: encode failed"; rc=1
fi
exit $rc
