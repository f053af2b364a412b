#!/usr/bin/env python3
"""Writes small valid inputs for each fuzz target, so that libFuzzer starts
from files that pass the readers' checks and mutates them from there.

    Fuzz/make_seeds.py DIR     writes DIR/<target>/seed-*

Standard library only; the files are a few kilobytes in all. The JPEG seeds
are the test fixtures (Tests/LeNetKitTests/Fixtures/images/*.jpg, made by
Pillow: baseline, progressive, gray, CMYK, restart markers); the PNG seeds
are written here, one per colour type and bit depth, one interlaced."""
import glob
import gzip
import json
import os
import struct
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def png(width, height, depth, color, raw, interlace=0, extra=b""):
    """A PNG of IHDR, `extra` chunks, one IDAT of `raw` (filtered rows), IEND."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, interlace)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + extra
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def png_chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def safetensors(tensors, metadata=None):
    """tensors: list of (name, dtype, shape, raw bytes)."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def idx(dims, payload):
    return bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + payload


def main(out):
    def write(target, name, content):
        os.makedirs(os.path.join(out, target), exist_ok=True)
        with open(os.path.join(out, target, "seed-" + name), "wb") as f:
            f.write(content)

    f32 = lambda *v: struct.pack("<%df" % len(v), *v)
    write("FuzzSafetensors", "f32", safetensors(
        [("conv1.weight", "F32", [2, 3], f32(1, 2, 3, 4, 5, 6)), ("conv1.bias", "F32", [2], f32(0.5, -0.5))],
        {"model": "cifar-lenet", "epoch": "1"}))
    write("FuzzSafetensors", "dtypes", safetensors([
        ("a", "F64", [2], struct.pack("<2d", 1.0, 1e300)),
        ("b", "F16", [3], struct.pack("<3H", 0x3C00, 0x7C00, 0x0001)),
        ("c", "BF16", [1, 2], struct.pack("<2H", 0x3F80, 0xFFC0)),
        ("d", "F32", [], f32(7)),
        ("e", "F32", [0, 4], b""),
    ]))
    write("FuzzSafetensors", "empty", safetensors([], {}))

    images = idx([2, 3, 3], bytes(range(18)))
    labels = idx([2], bytes([3, 9]))
    for target in ("FuzzIDX",):
        # The first byte picks the expected magic: 0 none, 1 images, 2 labels.
        write(target, "images", b"\x01" + images)
        write(target, "labels", b"\x02" + labels)
        write(target, "any", b"\x00" + idx([2, 2, 1, 1], bytes(4)))
    write("FuzzGzipIDX", "images", gzip.compress(images, mtime=0))
    write("FuzzGzipIDX", "labels", gzip.compress(labels, mtime=0))
    write("FuzzGzipIDX", "two-members", gzip.compress(images[:10], mtime=0) + gzip.compress(images[10:], mtime=0))
    write("FuzzGzipIDX", "plain", labels)

    record = lambda label, fill: bytes([label]) + bytes([fill]) * 3072
    write("FuzzCIFAR10", "one", record(3, 128))
    write("FuzzCIFAR10", "two", record(0, 0) + record(9, 255))

    fixtures = os.path.join(HERE, "..", "Tests", "LeNetKitTests", "Fixtures", "images")
    for path in sorted(glob.glob(os.path.join(fixtures, "*.jpg"))):
        with open(path, "rb") as f:
            write("FuzzJPEG", os.path.basename(path), f.read())

    rows = lambda n, row: b"".join(b"\x00" + row for _ in range(n))  # filter 0 on every row
    write("FuzzPNG", "gray8", png(3, 2, 8, 0, rows(2, bytes([0, 128, 255]))))
    write("FuzzPNG", "gray1", png(9, 2, 1, 0, rows(2, bytes([0b10110010, 0b10000000]))))
    write("FuzzPNG", "gray16", png(2, 2, 16, 0, rows(2, bytes([0x12, 0x34, 0xFF, 0xFF]))))
    write("FuzzPNG", "rgb8", png(2, 2, 8, 2, rows(2, bytes(range(6)))))
    write("FuzzPNG", "rgba16", png(1, 2, 16, 6, rows(2, bytes(range(8)))))
    write("FuzzPNG", "gray-alpha", png(2, 1, 8, 4, rows(1, bytes([9, 255, 90, 0]))))
    palette = png_chunk(b"PLTE", bytes([255, 0, 0, 0, 255, 0, 0, 0, 255])) + png_chunk(b"tRNS", bytes([0, 128]))
    write("FuzzPNG", "palette2", png(5, 1, 2, 3, rows(1, bytes([0b00011011, 0b11000000])), extra=palette))
    text = png_chunk(b"tEXt", b"Comment\x00hi") + png_chunk(b"gAMA", struct.pack(">I", 45455))
    write("FuzzPNG", "chunks", png(1, 1, 8, 0, rows(1, bytes([42])), extra=text))
    # Adam7 of a 3×3 gray image: passes 1 (0,0), 4 (2,0), 5 (0,2),(2,2), 6 (1,0),(1,2), 7 row 1.
    interlaced = b"\x00\x01" + b"\x00\x03" + b"\x00\x07\x09" + b"\x00\x02" + b"\x00\x08" + b"\x00\x04\x05\x06"
    write("FuzzPNG", "adam7", png(3, 3, 8, 0, interlaced, interlace=1))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_seeds.py DIR")
    main(sys.argv[1])
