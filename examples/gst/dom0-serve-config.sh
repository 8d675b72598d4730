#!/bin/sh
# Dom0 (real Xen, as root): serve the pipeline to every guest of a camera
# service configuration whose [camera] has `source = pipeline`, e.g.
#   [camera pipe]
#   source = pipeline
#   [guest kitchen]
#   domain = guest1
#   camera = pipe
#   be-alloc = yes
set -eu
CONF=${1:?usage: $0 CONFIG_FILE}
exec gst-launch-1.0 -e \
  videotestsrc is-live=true ! video/x-raw,format=YUY2,width=640,height=480,framerate=30/1 ! \
  xmbcamerasink config="$CONF"
