#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the seed corpora of the fuzz targets into tests/fuzz/corpus/<target>/.

Seeds are small, deterministic, and cover both valid input and the hostile
cases the unit tests name (overflowing indices, cycles, malformed keys...).
Re-run after changing an input format:  python3 tests/fuzz/make_corpus.py
"""

import os
import shutil
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")

# ---- cameraif (see <xen/io/cameraif.h>) ----
OPS = {
    "CONFIG_SET": 0x00, "CONFIG_GET": 0x01, "CONFIG_VALIDATE": 0x02,
    "FRAME_RATE_SET": 0x03, "BUF_GET_LAYOUT": 0x04, "BUF_REQUEST": 0x05,
    "BUF_CREATE": 0x06, "BUF_DESTROY": 0x07, "BUF_QUEUE": 0x08,
    "BUF_DEQUEUE": 0x09, "CTRL_ENUM": 0x0A, "CTRL_SET": 0x0B,
    "CTRL_GET": 0x0C, "STREAM_START": 0x0D, "STREAM_STOP": 0x0E,
}
YUYV = 0x56595559


def req(rid, op, body=b"", reserved=b"\0" * 5):
    """One 64-byte xencamera_req."""
    return (struct.pack("<HB", rid, op) + reserved + body).ljust(64, b"\0")


def valid_body(op):
    if op in (OPS["CONFIG_SET"], OPS["CONFIG_VALIDATE"]):
        return struct.pack("<III", YUYV, 640, 480)
    if op == OPS["FRAME_RATE_SET"]:
        return struct.pack("<II", 30, 1)
    if op == OPS["BUF_REQUEST"]:
        return bytes([4])
    if op == OPS["BUF_CREATE"]:
        return struct.pack("<B3x4II", 1, 0, 0, 0, 0, 100)
    if op in (OPS["BUF_DESTROY"], OPS["BUF_QUEUE"], OPS["BUF_DEQUEUE"], OPS["CTRL_ENUM"]):
        return bytes([1])
    if op == OPS["CTRL_SET"]:
        return struct.pack("<B7xq", 0, -5)
    if op == OPS["CTRL_GET"]:
        return bytes([3])
    return b""


def sring(req_prod, rsp_prod, requests, first_index=None, req_event=1, rsp_event=1):
    """A shared ring page image: header + requests placed at their slots."""
    first = rsp_prod if first_index is None else first_index
    slots = [b"\0" * 64] * 32
    for i, r in enumerate(requests):
        slots[(first + i) & 31] = r
    used = max(((first + i) & 31) for i in range(len(requests))) + 1 if requests else 0
    hdr = struct.pack("<IIII", req_prod & 0xFFFFFFFF, req_event & 0xFFFFFFFF,
                      rsp_prod & 0xFFFFFFFF, rsp_event & 0xFFFFFFFF).ljust(64, b"\0")
    return hdr + b"".join(slots[:used])


def ring_input(page, cmds=(), front=False):
    hdr = (0x80 if front else 0) | len(cmds)
    script = b"".join(struct.pack("<BI", op, arg & 0xFFFFFFFF) for op, arg in cmds)
    return bytes([hdr]) + script + page


def ring_seeds():
    every_op = [req(i, op, valid_body(op)) for i, op in enumerate(OPS.values())]
    bad = [
        req(1, OPS["CONFIG_SET"], struct.pack("<III", YUYV, 0, 480)),
        req(2, OPS["CONFIG_SET"], struct.pack("<III", YUYV, 9000, 480)),
        req(3, OPS["FRAME_RATE_SET"], struct.pack("<II", 30, 0)),
        req(4, OPS["BUF_CREATE"], struct.pack("<B3x4II", 1, 0, 0, 0, 0, 0)),
        req(5, OPS["BUF_CREATE"], struct.pack("<B3B4II", 1, 1, 0, 0, 0, 0, 0, 0, 100)),
        req(6, OPS["CTRL_ENUM"], bytes([4])),
        req(7, OPS["CTRL_SET"], struct.pack("<B7xq", 9, 1)),
        req(8, OPS["CTRL_GET"], bytes([200])),
        req(9, 0x0F),
        req(10, 0xFF),
        req(11, OPS["STREAM_START"], reserved=b"\0\0\x01\0\0"),
    ]
    start = 0xFFFFFFF0
    wrap_reqs = [req(i, OPS["CONFIG_GET"]) for i in range(32)]
    return {
        "empty": ring_input(b""),
        "every_op": ring_input(sring(15, 0, every_op)),
        "malformed_requests": ring_input(sring(len(bad), 0, bad)),
        "full_ring": ring_input(sring(32, 0, wrap_reqs)),
        "overflow_req_prod": ring_input(sring(33, 0, every_op)),
        "backwards_req_prod": ring_input(sring(5, 5, []), [(5, 3), (0, 0)]),
        "wrap_around": ring_input(sring(start + 32, start, wrap_reqs, req_event=start + 1,
                                        rsp_event=start + 1),
                                  [(0, 0), (6, 32), (0, 0), (6, 16), (1, 8), (2, 4), (3, 0), (4, 0)]),
        "partial_take_then_more": ring_input(sring(10, 0, every_op[:10]),
                                             [(1, 5), (6, 20), (1, 32), (2, 3), (3, 0), (6, 10),
                                              (0, 0), (4, 0)]),
        "unanswered_then_overflow": ring_input(sring(32, 0, wrap_reqs), [(1, 32), (6, 1), (1, 1)]),
        "scribbles": ring_input(sring(4, 0, every_op[:4]),
                                [(8, 0x1100), (9, 77), (7, 3), (10, 0), (0, 0), (8, 0xFF02)]),
        "front_honest": ring_input(b"", [(0, 0x000D0001), (0, 0x000E0002), (1, 0), (5, 2), (2, 0)],
                                   front=True),
        "front_unrequested_responses": ring_input(
            b"", [(0, 1), (1, 0), (4, 5), (2, 0), (4, 1), (3, 0)], front=True),
        "front_full": ring_input(b"", [(0, i) for i in range(33)] + [(1, 0), (5, 32), (2, 0)],
                                 front=True),
    }


# ---- gref directory ----
def record(nxt, fill=7, entries=()):
    return struct.pack("<IIB", nxt, fill, len(entries)) + b"".join(struct.pack("<I", e) for e in entries)


def walk(size, max_pages, first, records=(), flags=0):
    sz = struct.pack("<Q", size) if flags & 8 else struct.pack("<I", size)
    return bytes([flags]) + sz + struct.pack("<HI", max_pages, first) + b"".join(records)


def roundtrip(n, seed=1, dir_base=100, slack=0, garbage=0xAA):
    return bytes([2]) + struct.pack("<HIIHB", n, seed, dir_base, slack, garbage)


def gref_seeds():
    P = 4096
    return {
        "single_page": walk(10 * P, 100, 5, [record(0)]),
        "single_page_partial": walk(P + 1, 100, 5, [record(0, 9, [1, 2])]),
        "three_pages_2500": walk(2500 * P, 4000, 5, [record(6), record(7), record(0)]),
        "boundary_1023": walk(1023 * P, 2000, 5, [record(0)]),
        "boundary_1024": walk(1024 * P, 2000, 5, [record(6), record(0)]),
        "cycle_self": walk(1500 * P, 2000, 5, [record(5), record(0)]),
        "cycle_earlier": walk(4000 * P, 5000, 5, [record(6), record(7), record(6), record(0)]),
        "short_chain": walk(2500 * P, 4000, 5, [record(6), record(0), record(0)]),
        "over_long_chain": walk(5 * P, 100, 5, [record(9), record(0)]),
        "data_gref_zero": walk(3 * P, 100, 5, [record(0, 7, [1, 0, 3])]),
        "first_gref_zero": walk(P, 100, 0, [record(0)]),
        "size_zero": walk(0, 100, 5, [record(0)]),
        "over_cap": walk(101 * P, 100, 5, [record(0)]),
        "directory_only": walk(2500 * P, 4000, 5, [record(6, 0), record(7, 0), record(0, 0)], flags=1),
        "short_page": walk(2 * P, 100, 5, [], flags=4),
        "size_u64_max": walk(0xFFFFFFFFFFFFFFFF, 0xFFFF, 5, [record(0)], flags=8),
        "size_near_u64_max": walk(0xFFFFFFFFFFFFF001, 0xFFFF, 5, [record(0)], flags=8),
        "roundtrip_1": roundtrip(1),
        "roundtrip_1023": roundtrip(1023, slack=4095),
        "roundtrip_1024": roundtrip(1024, dir_base=0xFFFFFFFF),
        "roundtrip_2500": roundtrip(2500, seed=42, slack=17),
        "roundtrip_0": roundtrip(0),
    }


# ---- XenStore schema ----
def kv(pairs):
    return "".join(f"{k}={v}\n" for k, v in pairs).encode()


VALID_CONFIG = [
    ("be-alloc", "0"),
    ("unique-id", "usb-0000:00:14.0-1"),
    ("max-buffers", "4"),
    ("controls", "brightness,contrast,saturation,hue"),
    ("formats/YUYV/640x480/frame-rates", "30/1,15/1"),
    ("formats/YUYV/1280x720/frame-rates", "30/1"),
    ("formats/MJPG/1920x1080/frame-rates", "30000/1001,60/1"),
    ("formats/RGB3-BE/8192x8192/frame-rates", "1/4294967295"),
]
VALID_TRANSPORT = [
    ("version", "1"),
    ("req-ring-ref", "8"),
    ("req-event-channel", "17"),
    ("evt-ring-ref", "9"),
    ("evt-event-channel", "18"),
]


def replace(pairs, key, value):
    return [(k, value if k == key else v) for k, v in pairs]


def xenstore_seeds():
    return {
        "valid_config": kv(VALID_CONFIG),
        "valid_transport": kv(VALID_TRANSPORT),
        "valid_both": kv(VALID_CONFIG + VALID_TRANSPORT),
        "minimal_config": kv([("unique-id", "c"), ("max-buffers", "1"),
                              ("formats/Y8/1x1/frame-rates", "1/1")]),
        "bad_max_buffers": kv(replace(VALID_CONFIG, "max-buffers", "03")),
        "bad_be_alloc": kv(replace(VALID_CONFIG, "be-alloc", "yes")),
        "bad_controls": kv(replace(VALID_CONFIG, "controls", "brightness,brightness")),
        "bad_fourcc": kv(VALID_CONFIG + [("formats/ABCDE/640x480/frame-rates", "30/1")]),
        "bad_resolution": kv(VALID_CONFIG + [("formats/YUYV/640X480/frame-rates", "30/1")]),
        "bad_frame_rates": kv(replace(VALID_CONFIG, "formats/YUYV/640x480/frame-rates", "30/0")),
        "bad_ring_ref": kv(replace(VALID_TRANSPORT, "req-ring-ref", "0x8")),
        "bad_version": kv(replace(VALID_TRANSPORT, "version", "3")),
        "no_formats": kv(VALID_CONFIG[:4]),
        "scalars": b"a=4294967296/1\nb=640x480\nc=YUYV-BE\nd=hue,contrast\ne=7\nf=-BE\n",
    }


# ---- event page ----
def ev(mode, start, ops):
    return bytes([mode]) + struct.pack("<I", start) + b"".join(
        struct.pack("<BI", op, arg & 0xFFFFFFFF) for op, arg in ops)


def event_seeds():
    return {
        "in_order": ev(0, 0, [(0, 0)] * 10 + [(2, 0)] * 10),
        "until_full": ev(0, 0, [(1, 70), (2, 0), (0, 0), (0, 0), (7, 0)]),
        "wrap_one_by_one": ev(0, 0xFFFFFFE0, [(0, 0), (2, 0)] * 40),
        "wrap_backlog": ev(0, 0xFFFFFFC0, [(1, 70), (3, 31), (1, 70), (3, 31), (1, 70), (7, 0)]),
        "hostile_in_cons": ev(0, 0, [(0, 0), (4, 5), (0, 0), (4, 1), (0, 0)]),
        "hostile_in_prod": ev(0, 0, [(0, 0), (0, 0), (5, 0), (0, 0), (1, 70)]),
        "reader_honest": ev(1, 0, [(0, 3), (3, 0), (3, 1), (1, 1)]),
        "reader_overflow": ev(1, 0, [(0, 64), (0, 63), (0, 0), (1, 69), (2, 7)]),
    }


# ---- vcodec (protocol/vcodec.h): [mode u8] + payload ----
VOPS = {"OPEN": 0, "GET_LAYOUT": 1, "BUF_CREATE": 2, "BUF_DESTROY": 3, "QUEUE_RAW": 4,
        "QUEUE_OUT": 5, "FORCE_KEY": 6, "SET_BITRATE": 7, "DRAIN": 8, "STOP": 9}
YU12 = 0x32315559


def vreq(rid, op, body=b"", reserved=b"\0" * 5):
    """One 64-octet xenvcodec_req."""
    return (struct.pack("<HB", rid, op) + reserved + body).ljust(64, b"\0")


def vopen(codec, w=640, h=480, bitrate=1000000, rc=0):
    return struct.pack("<IIIIIIIIBBBB", codec, YU12, w, h, 30, 1, bitrate, 0, rc, 0, 0, 0)


def vcodec_seeds():
    session = b"".join([
        vreq(1, VOPS["OPEN"], vopen(1)),
        vreq(2, VOPS["GET_LAYOUT"]),
        vreq(3, VOPS["BUF_CREATE"], struct.pack("<BBxxII", 0, 0, 460800, 8)),
        vreq(4, VOPS["QUEUE_RAW"], struct.pack("<BB6xQ", 0, 1, 1234)),
        vreq(5, VOPS["QUEUE_OUT"], struct.pack("<BB", 1, 0)),
        vreq(6, VOPS["SET_BITRATE"], struct.pack("<I", 500000)),
        vreq(7, VOPS["DRAIN"]),
        vreq(8, VOPS["STOP"]),
    ])
    hostile = b"".join([
        vreq(1, VOPS["OPEN"], vopen(9)),                       # unknown codec
        vreq(2, VOPS["OPEN"], vopen(1, 641, 480)),             # odd width
        vreq(3, VOPS["OPEN"], vopen(1, bitrate=0)),            # no bitrate
        vreq(4, 0x7F),                                         # unknown op
        vreq(5, VOPS["GET_LAYOUT"], reserved=b"\1\0\0\0\0"),  # reserved bytes
        vreq(6, VOPS["BUF_CREATE"], struct.pack("<BBxxII", 0, 200, 4096, 8)),
        vreq(7, VOPS["QUEUE_RAW"], struct.pack("<BB6xQ", 0, 0xFE, 0)),
    ])
    raw = vreq(1, VOPS["OPEN"], vopen(5, bitrate=0))         # codec raw: no bitrate needed
    schema = "\n".join([
        "codecs=vp8,raw", "codec/vp8/raw-formats=YU12,NV12", "codec/vp8/rc-modes=vbr,cbr",
        "codec/vp8/profiles=0", "codec/vp8/levels=0", "codec/raw/raw-formats=YU12",
        "codec/raw/rc-modes=vbr", "codec/raw/profiles=raw", "codec/raw/levels=0",
        "min-size=16x16", "max-size=4096x4096", "max-buffers=8", "max-bitrate=100000000",
        "version=1", "req-ring-ref=8", "req-event-channel=3", "evt-page-ref=9",
        "evt-event-channel=4",
    ]).encode()
    bad_schema = b"codecs=vp8,mpeg2\ncodec/vp8/raw-formats=\nmax-buffers=99\nversion=7\n"
    return {
        "requests_session": b"\0" + session,
        "requests_hostile": b"\0" + hostile,
        "requests_raw": b"\0" + raw,
        "schema_valid": b"\1" + schema,
        "schema_hostile": b"\1" + bad_schema,
    }


def codec_session_seeds():
    """Steps of fuzz_codec_session.cpp: a selector byte, its operands, a loop-turns byte."""
    def request(rid, op, body=b"", fix=False):
        # op bit 7: OPEN gets a valid 16x16 VP8 configuration, BUF_CREATE the real directory
        return b"\0" + vreq(rid, op | (0x80 if fix else 0), body) + b"\1"

    def encoder(action, size=0):
        # actions 0/1 finish a frame (a u32 bitstream size follows), 2 drains, 3 fails (a byte follows)
        operand = struct.pack("<I", size) if action < 2 else (b"\0" if action == 3 else b"")
        return b"\7" + bytes([action]) + operand + b"\1"

    responses = b"\3\1"
    create_in = lambda i: request(10 + i, VOPS["BUF_CREATE"],
                                  struct.pack("<BBxxIIIIII", 0, i, 384, 0, 0, 256, 320, 0), True)
    create_out = lambda i: request(20 + i, VOPS["BUF_CREATE"],
                                   struct.pack("<BBxxII", 1, i, 65536, 0), True)
    setup = b"".join([request(1, VOPS["OPEN"], b"", True), request(2, VOPS["GET_LAYOUT"]),
                      create_in(0), create_in(1), create_out(0), create_out(1),
                      request(3, VOPS["QUEUE_OUT"], struct.pack("<BB", 1, 0)),
                      request(4, VOPS["QUEUE_OUT"], struct.pack("<BB", 1, 1)), responses])
    encode = b"".join([request(5, VOPS["QUEUE_RAW"], struct.pack("<BB6xQ", 0, 0, 1)),
                       request(6, VOPS["QUEUE_RAW"], struct.pack("<BB6xQ", 1, 1, 2)),
                       encoder(0, 1000), encoder(1, 70000), responses,
                       request(7, VOPS["DRAIN"]), encoder(2), responses])
    death = b"\x08\0\1"  # guest destroyed
    return {
        "encode": setup + encode,
        "stop_mid_encode": setup + request(5, VOPS["QUEUE_RAW"], struct.pack("<BB6xQ", 0, 0, 1)) +
                           request(6, VOPS["STOP"]) + encoder(0, 10) + responses,
        "death_mid_encode": setup + request(5, VOPS["QUEUE_RAW"], struct.pack("<BB6xQ", 0, 0, 1)) + death,
        "flapping": setup + b"".join(b"\4" + bytes([st]) + b"\1" for st in (0, 2, 0, 2, 5, 0, 2)),
        "ring_tamper": setup + b"\5\xff\1" + b"\6\xff\xff\xff\x7f\7\1",
    }


def main():
    targets = {
        "codec_session": codec_session_seeds(),
        "ring": ring_seeds(),
        "gref_directory": gref_seeds(),
        "xenstore_schema": xenstore_seeds(),
        "event_page": event_seeds(),
        "vcodec": vcodec_seeds(),
    }
    for target, seeds in targets.items():
        d = os.path.join(CORPUS, target)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        for name, data in seeds.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        print(f"{target}: {len(seeds)} seeds", file=sys.stderr)


if __name__ == "__main__":
    main()
