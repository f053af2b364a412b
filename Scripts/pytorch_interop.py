#!/usr/bin/env python3
"""Checks weight exchange between LeNetKit and PyTorch on real CIFAR-10 (run by hand).

    python3 Scripts/pytorch_interop.py --data DIR --lenet .build/release/lenet \
        [--checkpoint FILE_WRITTEN_BY_LENET_TRAIN]

1. LeNetKit → PyTorch: loads a `lenet train --output` checkpoint into the
   PyTorch model with load_state_dict (strict) and evaluates it in PyTorch;
   compares with `lenet eval --json` on the same file.
2. PyTorch → LeNetKit: trains the PyTorch model for one epoch, saves its
   state_dict with safetensors.torch.save_file, evaluates it in PyTorch, and
   compares with `lenet eval --json` on that file.
Needs torch, numpy, safetensors.
"""
import argparse, json, os, subprocess, sys, tempfile
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_reference import CifarLeNet  # noqa: E402


def load_cifar(directory, files):
    base = os.path.join(directory, "cifar-10-batches-bin")
    if not os.path.isdir(base):
        base = directory
    raw = np.concatenate([np.fromfile(os.path.join(base, f), dtype=np.uint8).reshape(-1, 3073) for f in files])
    labels = torch.from_numpy(raw[:, 0].astype(np.int64))
    images = torch.from_numpy(raw[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / 255.0)
    return (images - 0.5) / 0.5, labels


def accuracy(model, images, labels):
    model.eval()
    with torch.no_grad():
        correct = sum((model(images[i:i + 1000]).argmax(1) == labels[i:i + 1000]).sum().item()
                      for i in range(0, len(labels), 1000))
    return correct / len(labels)


def lenet_eval(lenet, weights, data):
    out = subprocess.run([lenet, "eval", "--weights", weights, "--data", data, "--json"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)["accuracy"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--lenet", required=True)
    ap.add_argument("--checkpoint")
    args = ap.parse_args()
    torch.manual_seed(0)
    test_x, test_y = load_cifar(args.data, ["test_batch.bin"])

    if args.checkpoint:
        model = CifarLeNet()
        model.load_state_dict(load_file(args.checkpoint))  # strict: every name and shape must match
        ours, theirs = lenet_eval(args.lenet, args.checkpoint, args.data), accuracy(model, test_x, test_y)
        print(f"LeNetKit → PyTorch: {args.checkpoint}: lenet eval {ours:.4f}, PyTorch {theirs:.4f}")

    train_x, train_y = load_cifar(args.data, [f"data_batch_{i}.bin" for i in range(1, 6)])
    model = CifarLeNet()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    perm = torch.randperm(len(train_y))
    for i in range(0, len(perm), 36):
        idx = perm[i:i + 36]
        opt.zero_grad()
        F.cross_entropy(model(train_x[idx]), train_y[idx]).backward()
        opt.step()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "pytorch.safetensors")
        save_file(model.state_dict(), path)
        theirs, ours = accuracy(model, test_x, test_y), lenet_eval(args.lenet, path, args.data)
        print(f"PyTorch → LeNetKit: one PyTorch epoch: PyTorch {theirs:.4f}, lenet eval {ours:.4f}")


if __name__ == "__main__":
    main()
