#!/bin/sh
# Guest (real Xen, as root): show the Dom0 camera (vcamera device $1, default 0).
set -eu
DEVICE=${1:-0}
exec gst-launch-1.0 xmbcamerasrc device="$DEVICE" ! videoconvert ! autovideosink
