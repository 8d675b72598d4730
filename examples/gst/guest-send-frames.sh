#!/bin/sh
# Guest: send 300 frames of a test picture to the Dom0 pipeline serving vcodec
# device $1 (default 0) with xmbguestsink; videotestsrc renders straight into
# the pages granted to Dom0.  In Dom0: examples/gst/dom0-record-guest.sh
set -eu
DEVICE=${1:-0}
exec gst-launch-1.0 -e \
  videotestsrc num-buffers=300 is-live=true ! video/x-raw,format=I420,width=1280,height=720,framerate=30/1 ! \
  xmbguestsink device="$DEVICE"
