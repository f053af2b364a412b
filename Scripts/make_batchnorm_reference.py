#!/usr/bin/env python3
"""Writes the PyTorch reference for LeNetKit's batch normalization and dropout tests.

Run by hand (never by CI), from the repository root, in an environment with
torch, numpy and safetensors:

    python3 Scripts/make_batchnorm_reference.py

Unlike Scripts/make_reference.py, the inputs are stored too: they come from
torch.manual_seed(0), which the Swift tests cannot reproduce, and they are small.
What PyTorch computed is nn.BatchNorm2d(3, eps=1e-5, momentum=0.1), in float32
unless named double.*, on inputs whose channel means are far from 0 (so a
missing mean subtraction shows). All tensors are F32.

Fixtures/batchnorm_reference.safetensors:
  inputs: x (4, 3, 5, 6), x2 (4, 3, 5, 6), dy (4, 3, 5, 6) the upstream gradient,
    weight (3), bias (3), running_mean0 (3), running_var0 (3) the initial running statistics;
  train mode, one forward on x from running_mean0/var0, then y.backward(dy):
    train.y (4, 3, 5, 6), train.dx (4, 3, 5, 6), train.dweight (3), train.dbias (3),
    train.running_mean (3), train.running_var (3) (updated with the unbiased variance);
  a second train-mode forward, on x2, continuing from those statistics:
    train2.running_mean (3), train2.running_var (3);
  eval mode, a fresh module from running_mean0/var0, forward on x, backward with dy:
    eval.y (4, 3, 5, 6), eval.dx (4, 3, 5, 6), eval.dweight (3), eval.dbias (3);
  the train-mode forward and backward in float64 on the same float32 values, so a
  test can bound its float32 error against the exact answer:
    double.train.y (4, 3, 5, 6), double.train.dx (4, 3, 5, 6);
  nn.Dropout(p=0.5) in train mode on x, backward with dy (its mask is torch's random
  draw, so a test checks the convention, not the values: each element is 0 or
  x / (1 - p), and dx keeps exactly the elements y kept, as dy / (1 - p)):
    dropout.y (4, 3, 5, 6), dropout.dx (4, 3, 5, 6).
"""
import os
import torch
import torch.nn as nn
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "Tests", "LeNetKitTests", "Fixtures")
MOMENTUM = 0.1


def per_channel(values):
    return torch.tensor(values).reshape(1, 3, 1, 1)


def make_inputs():
    torch.manual_seed(0)
    shape = (4, 3, 5, 6)
    return {
        "x": torch.randn(shape) * per_channel([1.5, 0.5, 2.0]) + per_channel([0.3, -1.2, 2.5]),
        # Other means and spreads, so the second update moves the statistics again.
        "x2": torch.randn(shape) * per_channel([0.8, 1.2, 0.6]) + per_channel([-0.5, 0.7, 1.0]),
        "dy": torch.randn(shape),
        "weight": 1 + 0.3 * torch.randn(3),
        "bias": 0.2 * torch.randn(3),
        "running_mean0": 0.5 * torch.randn(3),
        "running_var0": 0.5 + torch.rand(3),
    }


def batchnorm(inputs, dtype):
    """A BatchNorm2d holding weight, bias and the initial running statistics."""
    module = nn.BatchNorm2d(3, eps=1e-5, momentum=MOMENTUM).to(dtype)
    with torch.no_grad():
        module.weight.copy_(inputs["weight"])
        module.bias.copy_(inputs["bias"])
        module.running_mean.copy_(inputs["running_mean0"])
        module.running_var.copy_(inputs["running_var0"])
    return module


def forward_backward(module, inputs, dtype):
    x = inputs["x"].to(dtype, copy=True).requires_grad_()  # a fresh leaf: never mark the stored input
    y = module(x)
    y.backward(inputs["dy"].to(dtype))
    return y.detach(), x.grad


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    inputs = make_inputs()
    out = dict(inputs)

    module = batchnorm(inputs, torch.float32).train()
    y, dx = forward_backward(module, inputs, torch.float32)
    out.update({"train.y": y, "train.dx": dx,
                "train.dweight": module.weight.grad, "train.dbias": module.bias.grad,
                "train.running_mean": module.running_mean.clone(),
                "train.running_var": module.running_var.clone()})
    # The running variance takes the unbiased (n - 1) variance, the normalization the biased one.
    expected = (1 - MOMENTUM) * inputs["running_var0"] + MOMENTUM * inputs["x"].var(dim=(0, 2, 3), unbiased=True)
    assert torch.allclose(module.running_var, expected, rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        module(inputs["x2"])
    out["train2.running_mean"] = module.running_mean.clone()
    out["train2.running_var"] = module.running_var.clone()

    module = batchnorm(inputs, torch.float32).eval()
    y, dx = forward_backward(module, inputs, torch.float32)
    out.update({"eval.y": y, "eval.dx": dx,
                "eval.dweight": module.weight.grad, "eval.dbias": module.bias.grad})

    module = batchnorm(inputs, torch.float64).train()
    y, dx = forward_backward(module, inputs, torch.float64)
    out["double.train.y"] = y
    out["double.train.dx"] = dx

    dropout = nn.Dropout(p=0.5).train()
    x = inputs["x"].clone().requires_grad_()
    y = dropout(x)
    y.backward(inputs["dy"])
    kept = y != 0
    assert torch.equal(y[kept], x[kept] * 2) and torch.equal(x.grad, torch.where(kept, inputs["dy"] * 2, 0.0))
    out["dropout.y"] = y
    out["dropout.dx"] = x.grad

    path = os.path.join(FIXTURES, "batchnorm_reference.safetensors")
    save_file({k: v.detach().float().contiguous() for k, v in out.items()}, path,
              metadata={"source": "Scripts/make_batchnorm_reference.py", "torch": torch.__version__})
    print("wrote", os.path.normpath(path))


if __name__ == "__main__":
    main()
