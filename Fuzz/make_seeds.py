#!/usr/bin/env python3
"""Writes small valid inputs for each fuzz target, so that libFuzzer starts
from files that pass the readers' checks and mutates them from there.

    Fuzz/make_seeds.py DIR     writes DIR/<target>/seed-*

Standard library only; the files are a few kilobytes in all. The JPEG seeds
are the test fixtures (Tests/LeNetKitTests/Fixtures/images/*.jpg, made by
Pillow: baseline, progressive, gray, CMYK, restart markers); the PNG seeds
are written here, one per colour type and bit depth, one interlaced. The
network description seeds are the built-in networks' descriptions (as
`lenet summary --model NAME --json` prints them, compacted), two small ones
that use every layer type and field, and Examples/networks/*.json."""
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


# The built-in networks' descriptions (NetworkDescription.builtIn), as
# `lenet summary --model NAME --json` prints them, so that the seeds need no
# build. Each builds and runs in FuzzNetworkDescription (3×32×32 inputs).
def _conv(name, c, oc, k, table=None):
    layer = {"in_channels": c, "kernel_size": k, "name": name, "out_channels": oc, "padding": 0, "stride": 1,
             "type": "PartialConv2d" if table else "Conv2d"}
    if table:
        layer["table"] = table
    return layer


def _cifar_lenet(batch_norm):
    layers = []
    for i, (c, oc) in enumerate([(3, 16), (16, 32)], 1):
        layers.append(_conv("conv%d" % i, c, oc, 5))
        if batch_norm:
            layers.append({"eps": 1e-05, "momentum": 0.1, "name": "bn%d" % i, "num_features": oc, "type": "BatchNorm2d"})
        layers += [{"kernel_size": 2, "name": "pool%d" % i, "stride": 2, "type": "MaxPool2d"},
                   {"name": "relu%d" % i, "type": "ReLU"}]
    layers += [{"in_features": 800, "name": "fc1", "out_features": 120, "type": "Linear"}, {"name": "relu3", "type": "ReLU"},
               {"in_features": 120, "name": "fc2", "out_features": 84, "type": "Linear"}, {"name": "relu4", "type": "ReLU"},
               {"in_features": 84, "name": "fc3", "out_features": 10, "type": "Linear"}]
    return {"input_shape": [3, 32, 32], "layers": layers, "name": "cifar-lenet-bn" if batch_norm else "cifar-lenet"}


def _lenet5():
    tanh = lambda name: {"amplitude": 1.7159, "name": name, "slope": 0.6666667, "type": "ScaledTanh"}
    c3 = [[0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 5], [4, 5, 0], [5, 0, 1], [0, 1, 2, 3], [1, 2, 3, 4], [2, 3, 4, 5],
          [3, 4, 5, 0], [4, 5, 0, 1], [5, 0, 1, 2], [0, 1, 3, 4], [1, 2, 4, 5], [0, 2, 3, 5], [0, 1, 2, 3, 4, 5]]
    layers = [_conv("c1", 1, 6, 5), tanh("c1.tanh"),
              {"channels": 6, "kernel_size": 2, "name": "s2", "type": "Subsampling"}, tanh("s2.tanh"),
              _conv("c3", 6, 16, 5, c3), tanh("c3.tanh"),
              {"channels": 16, "kernel_size": 2, "name": "s4", "type": "Subsampling"}, tanh("s4.tanh"),
              _conv("c5", 16, 120, 5), tanh("c5.tanh"),
              {"in_features": 120, "name": "f6", "out_features": 84, "type": "Linear"}, tanh("f6.tanh"),
              {"in_features": 84, "name": "output", "out_features": 10, "type": "Linear"}]
    return {"input_shape": [1, 32, 32], "layers": layers, "name": "lenet5"}


def descriptions():
    """(seed name, JSON text) of every description seed."""
    compact = lambda d: json.dumps(d, separators=(",", ":"), sort_keys=True).encode()
    seeds = [("cifar-lenet", compact(_cifar_lenet(False))), ("cifar-lenet-bn", compact(_cifar_lenet(True))),
             ("lenet5", compact(_lenet5()))]
    # docs/LAYERS.md's example, fields with defaults left out.
    seeds.append(("tiny", b"""{"name": "tiny", "input_shape": [1, 28, 28], "layers": [
  {"type": "Conv2d", "name": "conv1", "in_channels": 1, "out_channels": 8, "kernel_size": 5},
  {"type": "BatchNorm2d", "name": "bn1", "num_features": 8},
  {"type": "ReLU", "name": "relu1"},
  {"type": "MaxPool2d", "name": "pool1", "kernel_size": 2},
  {"type": "Flatten", "name": "flatten"},
  {"type": "Dropout", "name": "drop", "p": 0.25},
  {"type": "Linear", "name": "fc", "in_features": 1152, "out_features": 10}]}"""))
    # Every layer type and every field, off the fused kernels' paths: a
    # strided, padded partial convolution, odd windows, a pool with stride 1.
    seeds.append(("every-field", compact({"input_shape": [2, 9, 9], "layers": [
        {"type": "PartialConv2d", "name": "c", "in_channels": 2, "out_channels": 3, "kernel_size": 3, "stride": 2,
         "padding": 1, "table": [[0], [1], [1, 0]]},
        {"type": "BatchNorm2d", "name": "bn", "num_features": 3, "eps": 0.001, "momentum": 0.5},
        {"type": "Tanh", "name": "t"},
        {"type": "Subsampling", "name": "s", "channels": 3, "kernel_size": 2},
        {"type": "ScaledTanh", "name": "st", "amplitude": 1.5, "slope": -0.5},
        {"type": "MaxPool2d", "name": "m", "kernel_size": 2, "stride": 1},
        {"type": "Conv2d", "name": "whole", "in_channels": 3, "out_channels": 4, "kernel_size": 1},
        {"type": "Flatten", "name": "f"},
        {"type": "Dropout", "name": "d", "p": 0},
        {"type": "ReLU", "name": "r"},
        {"type": "Linear", "name": "out", "in_features": 4, "out_features": 2}]})))
    examples = os.path.join(HERE, "..", "Examples", "networks")
    for path in sorted(glob.glob(os.path.join(examples, "*.json"))):
        with open(path, "rb") as f:
            seeds.append((os.path.basename(path), f.read()))
    return seeds


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

    for name, text in descriptions():
        write("FuzzNetworkDescription", name, text)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_seeds.py DIR")
    main(sys.argv[1])
