#!/bin/sh
# Guest (real Xen, as root): save N frames of the Dom0 camera as PNGs (no display needed).
set -eu
N=${1:-10}
OUT=${2:-/tmp/xmb-guest-shots}
mkdir -p "$OUT"
exec gst-launch-1.0 xmbcamerasrc num-buffers="$N" ! videoconvert ! pngenc ! \
  multifilesink location="$OUT/frame%03d.png"
