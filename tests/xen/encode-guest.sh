#!/bin/sh
# Runs inside a PV DomU (started by codec-service-xen.sh): encode the test
# pattern through Dom0's vcodec service, then print the stream as base64
# between markers on the console, for Dom0 to decode.
# usage: encode-guest.sh XMB-ENCODE-GUEST CODEC WxH FRAMES OUT [GOP]
set -e
"$1" --codec "$2" --size "$3" --frames "$4" --bitrate 200000 --key-frame 10 ${6:+--gop "$6"} --output "$5"
echo XMB-STREAM-BEGIN
base64 "$5"
echo XMB-STREAM-END
