"""Test sets as LeNetKit reads them, for the Python scripts beside it
(check-onnx, compare-onnxruntime): CIFAR-10's binary test batch, or MNIST /
Fashion-MNIST IDX files (plain or .gz) zero-padded to the model's size. Numpy only."""
import gzip
import os
import struct

import numpy as np


def test_images(directory, shape):
    """Test images as bytes (N, C, H, W) and labels (N), read as LeNetKit reads them."""
    c, h, w = shape
    cifar = os.path.join(directory, "cifar-10-batches-bin")
    for base in (cifar, directory):
        path = os.path.join(base, "test_batch.bin")
        if os.path.exists(path):
            raw = np.fromfile(path, dtype=np.uint8).reshape(-1, 3073)
            return raw[:, 1:].reshape(-1, 3, 32, 32), raw[:, 0].astype(np.int64)

    def idx(name):
        for candidate in (name, name + ".gz"):
            p = os.path.join(directory, candidate)
            if os.path.exists(p):
                blob = open(p, "rb").read()
                return gzip.decompress(blob) if candidate.endswith(".gz") else blob
        raise SystemExit(f"no {name}(.gz) and no test_batch.bin in {directory}")

    images, labels = idx("t10k-images-idx3-ubyte"), idx("t10k-labels-idx1-ubyte")
    count, rows, cols = struct.unpack(">III", images[4:16])
    x = np.frombuffer(images[16:], dtype=np.uint8).reshape(count, 1, rows, cols)
    padded = np.zeros((count, 1, h, w), dtype=np.uint8)
    top, left = (h - rows) // 2, (w - cols) // 2
    padded[:, :, top:top + rows, left:left + cols] = x
    return padded, np.frombuffer(labels[8:], dtype=np.uint8).astype(np.int64)


def normalized(images, mean, std):
    """(x/255 − mean[c]) / std[c] as float32, from comma-separated metadata strings."""
    m = np.array([float(v) for v in mean.split(",")], dtype=np.float32).reshape(1, -1, 1, 1)
    s = np.array([float(v) for v in std.split(",")], dtype=np.float32).reshape(1, -1, 1, 1)
    return ((images.astype(np.float32) / 255.0 - m) / s).astype(np.float32)
