#!/bin/sh
# The other direction, in ONE process on the loopback platform (test/demo
# facility, not Xen): a guest pipeline (videotestsrc ! xmbguestsink) sends raw
# frames to a Dom0 pipeline (xmbguestsrc ! vp8enc ! webmmux) that records them.
# Zero copy: videotestsrc renders into the pages the guest grants; Dom0 encodes
# them where they are mapped.  Run from a build:
#   meson devenv -C build sh examples/gst/loopback-guest-frames.sh [OUT.webm]
set -eu
OUT=${1:-/tmp/xmb-guest-frames.webm}
gst-launch-1.0 -q \
  videotestsrc num-buffers=60 ! video/x-raw,format=I420,width=640,height=480,framerate=30/1 ! \
    xmbguestsink platform=loopback loopback-domid=1 sync=false \
  xmbguestsrc platform=loopback loopback-guest-domid=1 eos-on-drain=true ! \
    videoconvert ! vp8enc deadline=1 ! webmmux ! filesink location="$OUT"
gst-launch-1.0 -q filesrc location="$OUT" ! matroskademux ! vp8dec ! video/x-raw,format=I420 ! \
  filesink location="$OUT.yuv"
frames=$(( $(stat -c %s "$OUT.yuv") / (640 * 480 * 3 / 2) ))
rm -f "$OUT.yuv"
echo "$OUT: $frames frames decode"
[ "$frames" -eq 60 ]
