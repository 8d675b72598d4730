#!/bin/sh
# Runs in the arm64 Dom0 on the arm64 media kernel (tests/vm/xen-vm-arm64 run
# --media --dom0-args "vivid.allocators=1"): gntdev dma-buf on Arm, then the
# camera service with vivid on dma-contig (a SoC camera's allocator):
#  1. xmb-dmabuf-probe: dma-heap and udmabuf buffers granted with imp_to_refs
#     and read back through the grants; exp_from_refs, which x86 refuses, must
#     work here (grant refs -> a Dom0 dma-buf);
#  2. one PV DomU, two devices on vivid, streamed one after the other:
#     0 be-alloc: the camera's own dma-contig buffers granted to the guest
#       (imp_to_refs), 0 bytes copied;
#     1 the guest's own buffers: the service exports them as dma-bufs
#       (exp_from_refs) for the camera to import; vivid on dma-contig refuses
#       scattered guest pages (no IOMMU: not contiguous) at the first QBUF and
#       offers no USERPTR, so the service falls back to copies, logged;
#     the DomU checks vivid's colour bars in both (media-domu.sh);
#     2 and 3 on xmb-sgcap (our vb2-dma-sg test device built into the media
#       kernel, tests/vm/kernel/xmb-sgcap.c: it takes any dma-buf, as an
#       IOMMU-backed SoC camera does): 2 the guest's own buffers exported
#       (exp_from_refs) and captured into as V4L2 DMABUF, 3 be-alloc (its
#       dma-sg buffers granted); every frame checked pixel-exact by the DomU;
#  3. the same DomU encodes through three codec services, FWHT each:
#     vcodec/0 (be-alloc) on vicodec's encoder: the guest's INPUT and OUTPUT
#     buffers are vicodec's own (MMAP, exported, granted), so it renders into
#     the encoder's memory and reads the bitstream there: 0 raw and 0
#     compressed bytes copied;
#     vcodec/1 on xmb-sgenc (our vb2-dma-sg FWHT encoder, built into the media
#     kernel: tests/vm/kernel/xmb-sgenc.c): the guest's own INPUT pages,
#     granted writable (input-dmabuf), exported (exp_from_refs) and queued as
#     V4L2 DMABUF -- not mapped in Dom0, not copied; its stream comes back
#     over the DomU's console and vicodec's decoder (GStreamer v4l2fwhtdec)
#     must decode every frame to the pattern the DomU encoded (PSNR);
#     vcodec/3 the same through the guest-side GStreamer element
#     (videotestsrc ! xmbencoder ! video/x-fwht in the DomU, run --domu-gst);
#     vcodec/2 on vicodec with the guest's own pages: vb2-vmalloc cannot read
#     an import without vmap, so vicodec refuses the first dma-buf and the
#     frames are mapped and copied (vb2 refuses to pin read-only pages).
#  4. a second DomU streams device 2 (its pages imported by the camera as
#     dma-bufs) and is destroyed mid-stream: the service releases everything
#     of it, gntdev reports every export released (exp_wait_released: status
#     "dma-bufs 0"), Xen frees the domain (no dying domain left), and a third
#     DomU is served on the same device, pixel-exact.
set -u
# shellcheck source=tests/vm/arm64/lib.sh disable=SC1091 # /test/lib.sh in the VM
. /test/lib.sh
fail() { echo "arm64-media: FAIL: $*"; [ -f /tmp/service.log ] && tail -n 40 /tmp/service.log; exit 1; }
echo "arm64-media: $(uname -m), Xen $(cat /sys/hypervisor/version/major).$(cat /sys/hypervisor/version/minor), kernel $(uname -r)"
case $(uname -r) in *-xmb-media) ;; *) fail "not the media kernel" ;; esac
for d in /dev/dma_heap/system /dev/udmabuf /dev/xen/gntdev; do [ -e "$d" ] || fail "$d is missing"; done

# ---- 1. gntdev dma-buf on Arm
out=$(xmb-dmabuf-probe 4 2>&1); rc=$?
echo "$out" | sed 's/^/arm64-media: probe: /'
[ $rc = 0 ] || fail "xmb-dmabuf-probe exited $rc"
[ "$(echo "$out" | grep -c 'exp_from_refs(domid 0): succeeded')" = 2 ] ||
	fail "exp_from_refs did not turn refs into a dma-buf for both sources (it must on Arm)"

# ---- 2. the camera service, vivid on dma-contig
vid=""
for d in /sys/class/video4linux/video*; do
	[ "$(cat "$d/name")" = vivid-000-vid-cap ] && vid=/dev/${d##*/}
done
[ -n "$vid" ] || fail "no vivid capture node"
grep -q '^1' /sys/module/vivid/parameters/allocators || fail "vivid is not on dma-contig (vivid.allocators=1)"
sg=""
for d in /sys/class/video4linux/video*; do
	[ "$(cat "$d/name")" = xmb-sgcap ] && sg=/dev/${d##*/}
done
[ -n "$sg" ] || fail "no xmb-sgcap capture node (CONFIG_VIDEO_XMB_SGCAP)"
{
	printf '[camera vivid]\nsource = v4l2:%s\nformats = YUYV\n' "$vid"
	printf '[camera sgcap]\nsource = v4l2:%s\nformats = YUYV\n' "$sg"
	guest_device be-alloc 0 vivid be-alloc
	guest_device own-buffers 1 vivid
	guest_device sg-own-buffers 2 sgcap
	guest_device sg-be-alloc 3 sgcap be-alloc
} > /tmp/cameras.conf
xmb-camera-service --config /tmp/cameras.conf --check || fail "--check"
XMB_LOG=info xmb-camera-service --config /tmp/cameras.conf 2> /tmp/service.log &
svc=$!
echo 16384 > /sys/module/xen_gntalloc/parameters/limit # Dom0 grants the be-alloc buffers
node_named() {
	for d in /sys/class/video4linux/video*; do
		[ "$(cat "$d/name")" = "$1" ] && echo "/dev/${d##*/}"
	done
}
vicenc=$(node_named stateful-encoder) sgenc=$(node_named xmb-sgenc)
[ -n "$vicenc" ] || fail "no vicodec encoder node"
[ -n "$sgenc" ] || fail "no xmb-sgenc node (CONFIG_VIDEO_XMB_SGENC)"
XMB_LOG=info xmb-codec-service --encoder "v4l2:$vicenc" --guest domain=domu,codecs=fwht,be-alloc=yes \
	2> /tmp/codec.log &
csvc=$!
XMB_LOG=info xmb-codec-service --encoder "v4l2:$sgenc" --status-socket /run/xmb-codec-sgenc.sock \
	--guest domain=domu,device=1,codecs=fwht --guest domain=domu,device=3,codecs=fwht,name=gst \
	2> /tmp/codec-sgenc.log &
sgsvc=$!
XMB_LOG=info xmb-codec-service --encoder "v4l2:$vicenc" --status-socket /run/xmb-codec-vicodec.sock \
	--guest domain=domu,device=2,codecs=fwht 2> /tmp/codec-vicodec.log &
vicsvc=$!
run_domu 400 || fail "xl create"
first=${st:-}
# The DomU printed the xmb-sgenc stream (base64): split it into frames
# (a v4l2fwhtdec buffer is one frame: 44-byte header, payload size at 40).
domu_said | sed -n '/XMB-STREAM-BEGIN/,/XMB-STREAM-END/p' | sed '1d;$d' | tr -d '\r' | base64 -d > /tmp/sg.fwht
sg_bytes=$(wc -c < /tmp/sg.fwht) pos=0 nfr=0
while [ "$pos" -lt "$sg_bytes" ] && [ $nfr -lt 64 ]; do
	# shellcheck disable=SC2046 # the four bytes, split on purpose
	set -- $(od -An -tu1 -j $((pos + 40)) -N 4 /tmp/sg.fwht)
	len=$((44 + ($1 << 24) + ($2 << 16) + ($3 << 8) + $4))
	tail -c +$((pos + 1)) /tmp/sg.fwht | head -c "$len" > "/tmp/sg.$(printf %03d $nfr)"
	pos=$((pos + len)) nfr=$((nfr + 1))
done
sg_frames=$nfr
sg_sgenc=$(cat /sys/module/xmb_sgenc/parameters/dmabuf_frames)
sg_dmabuf=$(cat /sys/module/xmb_sgcap/parameters/dmabuf_frames)

# ---- 4. a DomU destroyed while the camera writes its pages through dma-bufs
start_domu xmb.phase=endless || fail "xl create (endless)"
dead=$(xl domid domu)
wait_log "dom$dead vcamera/2's buffers, imported as dma-bufs" 60
n0=$(grep -c "dom$dead vcamera/2's buffers, imported as dma-bufs" /tmp/service.log)
sleep 2
held=$(xmb-camera-service --status 2>&1 | grep "dom$dead vcamera/2")
xl destroy domu
wait_log "dom$dead vcamera/2: closing" 20
i=0
while [ $i -lt 20 ] && [ "$(xl list | grep -vc '^Name\|^Domain-0')" != 0 ]; do sleep 0.5; i=$((i + 1)); done
leftover=$(xl list | grep -v '^Name\|^Domain-0')
status=$(xmb-camera-service --status 2>&1)
echo "--- the DomU destroyed mid-stream (dom$dead)"
echo "while streaming: $held"
grep -E "dom$dead (vcamera/2: closing|is gone)|still holds" /tmp/service.log
echo "after: $(echo "$status" | grep "dom$dead vcamera/2")"
run_domu 300 xmb.phase=after || fail "xl create (after)"
after=${st:-}
# Decode the xmb-sgenc stream with vicodec's decoder. GStreamer 1.22's
# v4l2fwhtdec ends before the last frames come out (tests/xen/codec-v4l2-xen.sh):
# 4 repeats of the last frame pad the stream.
i=0
while [ $i -lt 4 ]; do
	cp "/tmp/sg.$(printf %03d $((sg_frames - 1)))" "/tmp/sg.$(printf %03d $((sg_frames + i)))"; i=$((i + 1))
done
gst-launch-1.0 -q multifilesrc location=/tmp/sg.%03d index=0 stop-index=$((sg_frames + 3)) \
	caps="video/x-fwht,width=640,height=480,framerate=30/1,colorimetry=bt601,parsed=true" ! v4l2fwhtdec ! \
	video/x-raw,format=I420 ! filesink location=/tmp/sg.yuv > /tmp/gst-dec.log 2>&1
sg_decoded=$(($(wc -c < /tmp/sg.yuv 2>/dev/null || echo 0) / (640 * 480 * 3 / 2)))
xmb-pattern-psnr /tmp/sg.yuv 640x480 8 35 4 > /tmp/psnr.txt 2>&1; sg_psnr=$?
kill "$svc" "$csvc" "$sgsvc" "$vicsvc"; wait "$svc"; wait "$csvc"; wait "$sgsvc"; wait "$vicsvc"
# Every DomU is done: the stream's base64 need not be printed with the console.
sed -i '/XMB-STREAM-BEGIN/,/XMB-STREAM-END/c\(the xmb-sgenc stream, base64: checked above)' /var/log/xen/console/guest-domu.log
echo "--- service: dma-buf, tiers, closing lines"
grep -E "dma-buf|streaming|closing|cannot|copy mode" /tmp/service.log
echo "--- codec services: vicodec be-alloc, xmb-sgenc (guest pages as dma-bufs), vicodec (guest pages)"
grep -E "encoder|opened|USERPTR|copied|closing" /tmp/codec.log
grep -E "encoder:|opened|dma-buf|closing" /tmp/codec-sgenc.log
grep -E "encoder:|opened|dma-buf|copied|closing" /tmp/codec-vicodec.log
echo "--- xmb-sgenc: $sg_sgenc frames read from imported dma-bufs; stream back: $sg_bytes bytes, $sg_frames frames; v4l2fwhtdec decoded $sg_decoded"
cat /tmp/psnr.txt
[ "${first:-x}" = 0 ] || fail "the DomU's checks failed (status ${first:-none})"
echo "--- xmb-sgcap: $(cat /sys/module/xmb_sgcap/parameters/frames) frames written, $sg_dmabuf into imported dma-bufs in the first DomU"
grep -q "camera sgcap: streaming.*zero-copy into dom[0-9]* vcamera/2's buffers, imported as dma-bufs" /tmp/service.log ||
	fail "device 2: the guest's pages were not captured into as dma-bufs by xmb-sgcap"
grep -q "vcamera/2: closing.*[1-9][0-9]* frames, 0 bytes copied" /tmp/service.log ||
	fail "device 2 (guest pages as dma-bufs): frames were copied or none came"
[ "$sg_dmabuf" -ge 60 ] || fail "xmb-sgcap wrote $sg_dmabuf frames into imported dma-bufs (at least the 60 checked)"
grep -q "vcamera/3: streaming, device buffers granted (dma-buf)" /tmp/service.log ||
	fail "be-alloc device 3 was not given xmb-sgcap's own buffers"
grep -q "vcamera/3: closing.*[1-9][0-9]* frames, 0 bytes copied" /tmp/service.log ||
	fail "device 3 (xmb-sgcap be-alloc): frames were copied or none came"
[ "$n0" -ge 1 ] || fail "the DomU destroyed mid-stream did not stream into dma-bufs of its pages"
echo "$held" | grep -q "dma-bufs [1-9]" || fail "while streaming, no dma-buf of the DomU's pages was counted: $held"
echo "$status" | grep "dom$dead vcamera/2" | grep -q "mapped-pages 0 granted-pages 0 dma-bufs 0" ||
	fail "dom$dead's pages are still mapped, granted or held as dma-bufs after its death"
[ -z "$leftover" ] || fail "a dying domain is left (Dom0 still maps its pages?): $leftover"
[ "${after:-x}" = 0 ] || fail "the DomU after the destroyed one was not served (status ${after:-none})"
grep -q "export-from-refs yes, import-to-refs yes" /tmp/service.log ||
	fail "the service's probe did not find gntdev dma-buf both ways"
grep -q "vcamera/0: streaming, device buffers granted (dma-buf)" /tmp/service.log ||
	fail "be-alloc device 0 was not given the camera's own buffers"
grep -q "vcamera/0: closing.*[1-9][0-9]* frames, 0 bytes copied" /tmp/service.log ||
	fail "device 0: frames were copied or none came"
grep -q "the camera cannot import dom[0-9]* vcamera/1's buffers as dma-bufs" /tmp/service.log ||
	fail "device 1: the guest's buffers were not offered to the camera as dma-bufs (exp_from_refs)"
grep -q "vcamera/1: closing.*[1-9][0-9]* frames, [1-9][0-9]* bytes copied" /tmp/service.log ||
	fail "device 1 (guest pages, dma-contig camera): no copied frames"
grep -q "encoder: V4L2 /dev/video" /tmp/codec.log || fail "the codec service found no V4L2 encoder (vicodec)"
grep -q "vcodec/0: opened .*raw frames in its own buffers, granted to the guest.*bitstream in its own buffers, granted" \
	/tmp/codec.log || fail "vcodec: the be-alloc guest does not use vicodec's own buffers"
grep -q "vcodec/0: closing.* 12 frames in, 12 bitstreams, 0 raw bytes copied, 0 compressed bytes copied" /tmp/codec.log ||
	fail "vcodec: not 12 frames of 640x480 encoded in vicodec's own buffers without a copy"
grep -q "vcodec/1: opened .*the guest's pages as dma-bufs (DMABUF zero-copy)" /tmp/codec-sgenc.log ||
	fail "vcodec/1: xmb-sgenc was not set up for the guest's pages as dma-bufs (input-dmabuf)"
grep -q "the guest's frames go in as dma-bufs of its pages" /tmp/codec-sgenc.log ||
	fail "vcodec/1: the guest's first frame did not go in as a dma-buf"
grep -q "vcodec/1: closing.* 8 frames in, 8 bitstreams, 0 raw bytes copied, .* 8 frames read as dma-bufs of its pages" \
	/tmp/codec-sgenc.log || fail "vcodec/1: not 8 frames read by xmb-sgenc as dma-bufs of the guest's pages, uncopied"
[ "$sg_sgenc" -ge 8 ] || fail "xmb-sgenc read $sg_sgenc frames from imported dma-bufs, want 8"
[ "$sg_frames" = 8 ] || fail "the DomU's xmb-sgenc stream has $sg_frames FWHT frames, want 8"
[ "$sg_decoded" -ge 8 ] || { cat /tmp/gst-dec.log; fail "v4l2fwhtdec decoded $sg_decoded of the 8 frames"; }
[ "$sg_psnr" = 0 ] || fail "the decoded xmb-sgenc frames are not the pattern the DomU encoded"
grep -q "vcodec/3: closing.* 8 frames in, 8 bitstreams, 0 raw bytes copied, .* 8 frames read as dma-bufs of its pages" \
	/tmp/codec-sgenc.log || fail "vcodec/3 (xmbencoder in the DomU): not 8 frames read by xmb-sgenc as dma-bufs, uncopied"
grep -q "cannot read the guest's pages as a dma-buf" /tmp/codec-vicodec.log ||
	fail "vcodec/2: vicodec (vb2-vmalloc) did not refuse the guest's dma-buf"
grep -q "vcodec/2: closing.* 12 frames in, 12 bitstreams, [1-9][0-9]* raw bytes copied" /tmp/codec-vicodec.log ||
	fail "vcodec/2: the fallback did not encode the 12 frames (copied)"
echo "arm64-media: PASS"
