#!/bin/sh
# Runs inside a PV DomU (started by device-buffers-xen.sh): capture FRAMES
# frames from vcamera 0 with xmb-camera-guest, keeping every 10th, then print
# the last kept frame as base64 between markers on the console, for Dom0 to
# check.  usage: capture-guest.sh XMB-CAMERA-GUEST FOURCC|- WxH FRAMES BUFFERS
# (FOURCC "-": the first format the camera advertises)
set -e
mkdir -p /tmp/frames
fmt=""
[ "$2" = "-" ] || fmt="--format $2"
# shellcheck disable=SC2086
"$1" --device 0 $fmt --size "$3" --frames "$4" --buffers "$5" --every 10 \
	--save-raw /tmp/frames --quiet
last=$(ls /tmp/frames | tail -n 1)
echo "XMB-FRAME-BEGIN $last"
base64 "/tmp/frames/$last"
echo XMB-FRAME-END
