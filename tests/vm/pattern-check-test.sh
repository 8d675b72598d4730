#!/bin/bash
# xmb-pattern-check must pass exact pattern frames (gaps allowed, counted),
# and fail a damaged frame, frames out of order, a non-pattern frame and a
# dump with too few frames.
set -euo pipefail
check=${1:?usage: pattern-check-test.sh XMB-PATTERN-CHECK XMB-PATTERN-PSNR}
write=${2:?XMB-PATTERN-PSNR}
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
"$write" --write "$d/p.yuv" 320x240 4 # I420 frames 0..3
f=$((320 * 240 * 3 / 2))
say() { "$check" "$@" || true; } # its verdict, whatever its exit status
frame() { dd if="$d/p.yuv" bs=$f skip="$1" count=1 2>/dev/null; }
"$check" "$d/p.yuv" YU12 320x240 4 | grep -q "4 YU12 320x240 frames pixel-exact (pattern frames 0..3, 0 gaps)" ||
	{ echo "exact frames did not pass"; exit 1; }
{ frame 0; frame 2; frame 3; } > "$d/gap.yuv"
"$check" "$d/gap.yuv" YU12 320x240 3 | grep -q "0..3, 1 gaps" || { echo "a gap was not counted"; exit 1; }
! "$check" "$d/gap.yuv" YU12 320x240 4 > /dev/null || { echo "too few frames passed"; exit 1; }
{ frame 1; frame 0; } > "$d/swapped.yuv"
say "$d/swapped.yuv" YU12 320x240 1 | grep -q "out of order" || { echo "frames out of order passed"; exit 1; }
cp "$d/p.yuv" "$d/damaged.yuv"
printf '\x01' | dd of="$d/damaged.yuv" bs=1 seek=$((f * 2 + 320 * 200)) conv=notrunc 2>/dev/null
say "$d/damaged.yuv" YU12 320x240 1 | grep -q "frame 2 of .* byte $((320 * 200)) differs" ||
	{ echo "a damaged frame passed"; exit 1; }
head -c $f /dev/zero > "$d/black.yuv"
say "$d/black.yuv" YU12 320x240 1 | grep -q "not the pattern" || { echo "a black frame passed"; exit 1; }
echo "pattern checker: OK"
