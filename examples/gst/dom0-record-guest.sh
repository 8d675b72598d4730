#!/bin/sh
# Dom0 (real Xen, as root): record the raw frames guest $1 sends (vcodec device
# $2, default 0) to $3 as WebM/VP8; ends when the guest drains (its EOS).
# In the guest: examples/gst/guest-send-frames.sh
set -eu
GUEST=${1:?usage: $0 GUEST [DEVICE] [OUT.webm]}
DEVICE=${2:-0}
OUT=${3:-/tmp/guest-$GUEST.webm}
exec gst-launch-1.0 -e \
  xmbguestsrc guest="$GUEST" device="$DEVICE" eos-on-drain=true ! videoconvert ! \
  vp8enc deadline=1 ! webmmux ! filesink location="$OUT"
