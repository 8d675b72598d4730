#!/bin/sh
# Runs in the arm64 PV DomU: the test-pattern devices with every frame
# checked, then vivid (device 2: its frames cannot be checked pixel by pixel).
set -u
# Later DomUs of the same run (camera-dom0.sh): the phase is on the kernel command line.
case $(cat /proc/cmdline) in
*xmb.phase=endless*)
	# Streams until Dom0 destroys this DomU: be-alloc (Dom0's pages granted)
	# and vivid's NV12M into this DomU's own pages (pinned in Dom0 as USERPTR).
	xmb-camera-guest --device 1 --format YUYV --size 320x240 --quiet &
	exec xmb-camera-guest --device 3 --format NV12 --size 640x360 --quiet ;;
*xmb.phase=after*)
	# The same devices again, after a DomU died using them: they must serve.
	rc=0
	xmb-camera-guest --device 1 --format YUYV --size 320x240 --frames 30 --check-pattern --quiet || rc=1
	xmb-camera-guest --device 3 --format NV12 --size 640x360 --frames 30 --quiet || rc=1
	exit $rc ;;
esac
rc=0
for dev in 0 1; do
	xmb-camera-guest --device "$dev" --format YUYV --size 320x240 --frames 60 --check-pattern --quiet || rc=1
done
xmb-camera-guest --device 2 --format YUYV --size 320x180 --frames 60 --quiet || rc=1
# Device 3: vivid's NV12M as NV12, both planes written by vivid into our pages.
# Its last frame must be vivid's "75% Colorbar" in Y (luma falling from bar to
# bar) and in CbCr right after Y (white grey, yellow little Cb, cyan little
# Cr, red much Cr).
w=640 h=360 # vivid draws its text in the top half; the lower half is pure bars
mkdir -p /tmp/nv12
if xmb-camera-guest --device 3 --format NV12 --size ${w}x$h --frames 60 --every 10 \
	--save-raw /tmp/nv12 --quiet; then
	# shellcheck disable=SC2012 # our own frame-<seq>.NV12 names
	f=/tmp/nv12/$(ls /tmp/nv12 | tail -n 1)
	byte() { od -An -tu1 -j "$1" -N 1 "$f" | tr -d ' '; }
	y=$((h * 3 / 4))
	x() { echo $(((2 * $1 + 1) * w / 16)); }  # centre of bar $1
	cb() { byte $((w * h + (y / 2) * w + ($(x "$1") / 2) * 2)); }
	cr() { byte $((w * h + (y / 2) * w + ($(x "$1") / 2) * 2 + 1)); }
	near128() { [ "$1" -ge 120 ] && [ "$1" -le 136 ]; }
	ok=1 prev=256 luma=""
	for k in 0 1 2 3 4 5 6 7; do
		l=$(byte $((y * w + $(x $k))))
		luma="$luma $l"
		[ "$l" -lt $((prev - 5)) ] || ok=0
		prev=$l
	done
	echo "arm64-domu: NV12 from vivid's NV12M: Y$luma, white Cb/Cr $(cb 0)/$(cr 0), yellow Cb $(cb 1), cyan Cr $(cr 2), red Cr $(cr 5)"
	if ! near128 "$(cb 0)" || ! near128 "$(cr 0)" || [ "$(cb 1)" -ge 100 ] || [ "$(cr 2)" -ge 100 ] ||
		[ "$(cr 5)" -le 170 ]; then
		ok=0
	fi
	[ $ok = 1 ] || { echo "arm64-domu: device 3's frame is not vivid's colour bars in both planes"; rc=1; }
else
	rc=1
fi
exit $rc
