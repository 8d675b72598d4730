#!/bin/sh
# Dom0 and a guest in ONE process on the loopback platform (test/demo facility:
# platform=loopback is an in-process hypervisor, not Xen).  The Dom0 half serves
# videotestsrc as vcamera 0 of loopback domain 1; the guest half receives the
# frames (zero copy: videotestsrc renders straight into the guest's buffers)
# and writes PNGs.  Run from a build: `meson devenv -C build sh examples/gst/loopback-demo.sh`
# or with GST_PLUGIN_PATH=build/gst-plugin.
set -eu
OUT=${1:-/tmp/xmb-gst-demo}
mkdir -p "$OUT"
gst-launch-1.0 \
  videotestsrc num-buffers=60 ! video/x-raw,format=NV12,width=640,height=480,framerate=30/1 ! \
    xmbcamerasink platform=loopback loopback-guest-domid=1 \
  xmbcamerasrc platform=loopback loopback-domid=1 num-buffers=30 ! \
    videoconvert ! pngenc ! multifilesink location="$OUT/frame%02d.png"
echo "$(ls "$OUT"/frame*.png | wc -l) PNGs in $OUT"
