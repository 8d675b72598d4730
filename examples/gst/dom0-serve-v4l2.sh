#!/bin/sh
# Dom0 (real Xen, as root): serve a V4L2 camera to guest $1 through a pipeline.
# io-mode=userptr lets v4l2src capture straight into the guest's buffers (the
# sink's pool); other io-modes (mmap, dmabuf) work through the copy tier.
set -eu
GUEST=${1:?usage: $0 GUEST [/dev/videoN]}
DEV=${2:-/dev/video0}
exec gst-launch-1.0 -e \
  v4l2src device="$DEV" io-mode=userptr ! video/x-raw,format=YUY2,width=640,height=480 ! \
  xmbcamerasink guest="$GUEST" max-buffers=4
