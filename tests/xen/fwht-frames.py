#!/usr/bin/env python3
"""Check a stream of vicodec FWHT frames and split it, one file per frame.

usage: fwht-frames.py STREAM FRAMES WIDTH HEIGHT PREFIX
Every frame must carry the FWHT header magic and WIDTHxHEIGHT, the stream
must be exactly FRAMES frames; frame n is written to STREAM.nnn (a GStreamer
video/x-fwht buffer is one frame).  struct fwht_cframe_hdr
(drivers/media/test-drivers/vicodec/codec-fwht.h): magic1 0x4f4f4f4f,
magic2 0xffffffff, then big-endian version, width, height, flags,
colorspace, xfer_func, ycbcr_enc, quantization, size.
"""
import struct
import sys

path, want, w, h, prefix = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
data = open(path, "rb").read()
pos = n = 0
while pos < len(data):
    m1, m2 = struct.unpack_from("<II", data, pos)
    ver, fw, fh, flags, cs, xf, ye, qu, size = struct.unpack_from(">9I", data, pos + 8)
    assert (m1, m2) == (0x4F4F4F4F, 0xFFFFFFFF), f"frame {n}: bad magic at {pos}"
    assert (fw, fh) == (w, h), f"frame {n}: {fw}x{fh}"
    open(f"{path}.{n:03d}", "wb").write(data[pos:pos + 44 + size])
    pos += 44 + size
    n += 1
assert pos == len(data) and n == want, f"{n} frames, {len(data) - pos} stray bytes"
print(f"{prefix}: {n} FWHT frames of {w}x{h}, {len(data) // n} bytes per frame on average")
