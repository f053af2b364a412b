#!/usr/bin/env python3
"""Writes small valid inputs for each fuzz target, so that libFuzzer starts
from files that pass the readers' checks and mutates them from there.

    Fuzz/make_seeds.py DIR     writes DIR/<target>/seed-*

Standard library only; the files are a few kilobytes in all."""
import gzip
import json
import os
import struct
import sys


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


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_seeds.py DIR")
    main(sys.argv[1])
