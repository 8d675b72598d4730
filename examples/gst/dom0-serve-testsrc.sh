#!/bin/sh
# Dom0 (real Xen, as root): serve a test picture to guest $1 (domain name or id)
# as its vcamera 0.  In the guest: examples/gst/guest-view.sh
set -eu
GUEST=${1:?usage: $0 GUEST [DEVICE]}
DEVICE=${2:-0}
exec gst-launch-1.0 -e \
  videotestsrc is-live=true ! video/x-raw,format=NV12,width=1280,height=720,framerate=30/1 ! \
  xmbcamerasink guest="$GUEST" device="$DEVICE"
