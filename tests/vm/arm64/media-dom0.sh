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
#  3. the same DomU encodes 12 frames through xmb-codec-service --encoder v4l2
#     (vicodec's FWHT encoder, found by capability, the service cross-built
#     without GStreamer) on a be-alloc vcodec device: the guest's INPUT and
#     OUTPUT buffers are vicodec's own (MMAP, exported, granted), so it
#     renders into the encoder's memory and reads the bitstream there: 0 raw
#     and 0 compressed bytes copied (the guest's own read-only pages vb2
#     refuses to pin: EFAULT, seen here; they would be copied).
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
{
	printf '[camera vivid]\nsource = v4l2:%s\nformats = YUYV\n' "$vid"
	guest_device be-alloc 0 vivid be-alloc
	guest_device own-buffers 1 vivid
} > /tmp/cameras.conf
xmb-camera-service --config /tmp/cameras.conf --check || fail "--check"
XMB_LOG=info xmb-camera-service --config /tmp/cameras.conf 2> /tmp/service.log &
svc=$!
echo 16384 > /sys/module/xen_gntalloc/parameters/limit # Dom0 grants the be-alloc buffers
XMB_LOG=info xmb-codec-service --encoder v4l2 --guest domain=domu,codecs=fwht,be-alloc=yes 2> /tmp/codec.log &
csvc=$!
run_domu 400 || fail "xl create"
kill "$svc" "$csvc"; wait "$svc"; wait "$csvc"
echo "--- service: dma-buf, tiers, closing lines"
grep -E "dma-buf|streaming|closing|cannot|copy mode" /tmp/service.log
echo "--- codec service"
grep -E "encoder|opened|USERPTR|copied|closing" /tmp/codec.log
[ "${st:-x}" = 0 ] || fail "the DomU's checks failed (status ${st:-none})"
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
echo "arm64-media: PASS"
