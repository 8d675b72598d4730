#!/bin/sh
# Runs in the arm64 Dom0 (busybox sh) under tests/vm/xen-vm-arm64 (with
# --modules vivid): the cross-built camera service serves one PV DomU four
# devices: 0 and 1 test-pattern cameras, 0 with the guest's own buffers, 1
# be-alloc (Dom0's pages granted), every frame checked by the DomU
# (camera-domu.sh); 2 vivid (a real V4L2 driver) into the guest's own buffers;
# 3 a second vivid instance with multiplanar=2 whose NV12M is served as NV12,
# each plane captured straight into the guest's own pages (the zero-copy path
# an x86 PV Dom0 cannot take), its colour bars checked by the DomU. Then a
# DomU destroyed mid-stream, the next one served, and last the cross-built
# GStreamer elements: a Dom0 pipeline served to the DomU by xmbcamerasink.
set -u
# shellcheck source=tests/vm/arm64/lib.sh disable=SC1091 # /test/lib.sh in the VM
. /test/lib.sh
# vivid again, as two instances: 0 single-planar, 1 multi-planar.
if ! rmmod vivid || ! insmod /mods/extra/vivid.ko n_devs=2 multiplanar=1,2; then
	echo "arm64-camera: cannot reload vivid with a multi-planar instance"; exit 1
fi
node() { # the /dev node of the V4L2 device named $1
	for d in /sys/class/video4linux/video*; do
		[ "$(cat "$d/name")" = "$1" ] && { echo "/dev/${d##*/}"; return 0; }
	done
	return 1
}
if ! vid0=$(node vivid-000-vid-cap) || ! vid1=$(node vivid-001-vid-cap); then
	echo "arm64-camera: vivid's capture nodes are missing"; ls /sys/class/video4linux; exit 1
fi
echo "arm64-camera: vivid single-planar $vid0, multi-planar $vid1"
{
	pattern_devices "YUYV, NV12"
	cat <<CONF
[camera vivid]
source = v4l2:$vid0
formats = YUYV
[camera vividmp]
source = v4l2:$vid1
formats = NV12M
CONF
	guest_device vivid 2 vivid
	guest_device vivid-nv12m 3 vividmp
} > /tmp/cameras.conf
ls /dev/video* > /dev/null 2>&1 || { echo "arm64-camera: no /dev/video*: vivid did not load"; exit 1; }
svc=""
start_service /tmp/cameras.conf || exit 1
run_domu 300 || exit 1
first=${st:-}

# A DomU destroyed mid-stream (xl destroy, no frontend shutdown) while Dom0
# captures into its own pages (device 3, USERPTR) and it maps Dom0's
# (device 1, be-alloc): the service must release everything of it and serve
# the next DomU on the same devices.
start_domu xmb.phase=endless || exit 1
i=0
while [ $i -lt 120 ] && [ "$(grep -c "vcamera/[13]: streaming" /tmp/service.log)" -lt 4 ]; do sleep 0.5; i=$((i + 1)); done
sleep 2
dead=$(xl domid domu)
xl destroy domu
i=0
while [ $i -lt 40 ] && [ "$(grep -c "dom$dead vcamera/[13]: closing" /tmp/service.log)" -lt 2 ]; do sleep 0.5; i=$((i + 1)); done
echo "--- the DomU destroyed mid-stream (dom$dead)"
grep -E "dom$dead (vcamera/[13]: closing|is gone)" /tmp/service.log
status=$(xmb-camera-service --status 2>&1)
echo "$status" | grep -E "dom$dead|pages" | head -n 8
run_domu 300 xmb.phase=after || exit 1
after=${st:-}
kill "$svc"; wait "$svc"; svc_rc=$?

# The GStreamer elements, cross-built: a Dom0 pipeline (videotestsrc !
# xmbcamerasink) serves the DomU's device 0, which captures 30 frames. That
# DomU is made by xmb-domu, the x86 harness's DomU tool (bash, in this Dom0
# too): a throw-away DomU holding just the program and its libraries.
export GST_PLUGIN_PATH=/xmb/gst GST_REGISTRY=/tmp/gst-registry.bin
t0=$(cut -d' ' -f1 /proc/uptime)
gst-inspect-1.0 xmbcamerasink > /tmp/gst-inspect.log 2>&1 ||
	{ tail -n 20 /tmp/gst-inspect.log; echo "arm64-camera: the xmb GStreamer plugin does not load"; exit 1; }
echo "arm64-camera: GStreamer $(gst-launch-1.0 --gst-version | sed -n 's/.*version \([0-9.]*\).*/\1/p'), registry built in $(awk -v a="$t0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.1f", b - a }') s"
XMB_LOG=info gst-launch-1.0 videotestsrc is-live=true ! \
	video/x-raw,format=NV12,width=320,height=240,framerate=30/1 ! \
	xmbcamerasink guest=domu > /tmp/gst-pipeline.log 2>&1 &
gst=$!
xmb-domu run domu --timeout 300 -- /xmb/xmb-camera-guest --device 0 --format NV12 --size 320x240 \
	--frames 30 --quiet > /tmp/gst-domu.log 2>&1
gst_st=$?
sed 's/^/xmb-domu: /' /tmp/gst-domu.log
kill "$gst" 2>/dev/null; wait "$gst"
echo "--- the Dom0 pipeline"
grep -E "attached|streaming|closing|ERROR|WARN" /tmp/gst-pipeline.log | head -n 10
echo "--- service log (tail)"
grep -v "^$" /tmp/service.log | tail -n 30
echo "--- service: how each device streamed"
grep -E "streaming|closing" /tmp/service.log
[ "${first:-x}" = 0 ] || { echo "arm64-camera: the DomU's check failed (status ${first:-none})"; exit 1; }
[ "$(grep -c "dom$dead vcamera/[13]: closing.*[1-9][0-9]* frames" /tmp/service.log)" = 2 ] ||
	{ echo "arm64-camera: the DomU destroyed mid-stream did not stream on both devices, or was not released"; exit 1; }
if echo "$status" | grep "dom$dead" | grep -qv "mapped-pages 0 granted-pages 0"; then
	echo "arm64-camera: pages of the destroyed dom$dead are still mapped or granted"; exit 1
fi
[ "${after:-x}" = 0 ] ||
	{ echo "arm64-camera: the DomU after the destroyed one was not served (status ${after:-none})"; exit 1; }
grep -q "vcamera/2: closing.*[1-9][0-9]* frames" /tmp/service.log ||
	{ echo "arm64-camera: no frames from vivid reached the guest"; exit 1; }
grep -q "NV12M served as NV12: 2 memory planes placed in one buffer" /tmp/service.log ||
	{ echo "arm64-camera: vivid's NV12M was not used for device 3"; exit 1; }
if ! grep -q "zero-copy into dom[0-9]* vcamera/3's buffers" /tmp/service.log ||
	! grep -q "vcamera/3: closing.*[1-9][0-9]* frames, 0 bytes copied" /tmp/service.log; then
	echo "arm64-camera: NV12M did not reach the guest's own pages without a copy"; exit 1
fi
[ "$svc_rc" = 0 ] || { echo "arm64-camera: the service exited with $svc_rc"; exit 1; }
[ "${gst_st:-x}" = 0 ] ||
	{ echo "arm64-camera: the DomU did not get 30 frames from the Dom0 GStreamer pipeline (status ${gst_st:-none})"; exit 1; }
grep -q "vcamera/0: closing.*[1-9][0-9]* frames" /tmp/gst-pipeline.log ||
	{ echo "arm64-camera: xmbcamerasink served no frames"; exit 1; }
echo "arm64-camera: PASS"
