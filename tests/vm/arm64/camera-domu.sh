#!/bin/sh
# Runs in the arm64 PV DomU: the test-pattern devices with every frame
# checked, then vivid (device 2: its frames cannot be checked pixel by pixel).
set -u
rc=0
for dev in 0 1; do
	xmb-camera-guest --device "$dev" --format YUYV --size 320x240 --frames 60 --check-pattern --quiet || rc=1
done
xmb-camera-guest --device 2 --format YUYV --size 320x180 --frames 60 --quiet || rc=1
exit $rc
