#!/usr/bin/env python3
"""Writes the PyTorch reference fixtures that LeNetKit's tests compare against.

Run by hand (never by CI), from the repository root, in an environment with
torch, numpy and safetensors:

    python3 Scripts/make_reference.py

Weights and inputs are not stored: both sides generate them from the same
integer hash (`fixed_values` here, `FixedValues` in the tests), so the
fixtures stay under 2 MB. What is stored is what PyTorch computed from them.

Fixtures/cifar_lenet_reference.safetensors (the PyTorch tutorial's CIFAR-10 LeNet, batch 4):
  labels (4) as F32, logits (4, 10), loss (1),
  grad.<name> for every parameter after one backward pass,
  adam3.<name>: every parameter after 3 Adam steps (lr 1e-3, defaults) on the same batch,
  adam_grad<t>.<name> for t = 1, 2: the gradient PyTorch's step t + 1 took (at the
  weights after t steps; step 1's is grad.<name>), so the test can give LeNetKit's
  Adam exactly PyTorch's gradients and hold each part to its own error bound.
Fixtures/lenet5_reference.safetensors (LeNet-5 of LeCun et al. 1998, batch 4):
  the same tensors as the CIFAR LeNet's. C3's missing connections are a
  mask on its weight (those weights are 0 from the start and stay 0: their
  gradient is 0), subsampling is avg_pool2d·4·weight + bias, the squashing
  function 1.7159·tanh(2x/3), and the fixed weights follow LeNetKit's
  FixedValues.fill (a 1-D weight takes the fan-in of the tensor before it).
Fixtures/optimizers_reference.safetensors (Linear 6→5, ReLU, Linear 5→3, batch 4):
  labels, and <optimizer>.<name> after 3 steps for sgd (lr 0.1, momentum 0.9,
  weight decay 0.01), nesterov (lr 0.1, momentum 0.9, nesterov), adamwd (Adam
  lr 0.01, weight decay 0.01), adamw (AdamW lr 0.01, weight decay 0.1).
"""
import os
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "Tests", "LeNetKitTests", "Fixtures")
M32 = 0xFFFFFFFF


def mix(i, salt):
    """A 32-bit integer hash; `FixedValues.mix` in the Swift tests is the same."""
    x = (i * 0x9E3779B1 + salt * 0x85EBCA77) & M32
    x ^= x >> 16
    x = (x * 0x85EBCA6B) & M32
    x ^= x >> 13
    x = (x * 0xC2B2AE35) & M32
    x ^= x >> 16
    return x


def fixed_values(count, salt, bound):
    """bound * (2u - 1), u = mix(i, salt) / 2^32, computed in double, rounded to float32."""
    i = np.arange(count, dtype=np.uint64)
    x = (i * np.uint64(0x9E3779B1) + np.uint64((salt * 0x85EBCA77) & M32)) & np.uint64(M32)
    x ^= x >> np.uint64(16)
    x = (x * np.uint64(0x85EBCA6B)) & np.uint64(M32)
    x ^= x >> np.uint64(13)
    x = (x * np.uint64(0xC2B2AE35)) & np.uint64(M32)
    x ^= x >> np.uint64(16)
    assert int(x[min(3, count - 1)]) == mix(min(3, count - 1), salt)
    u = x.astype(np.float64) / 4294967296.0
    return (bound * (2.0 * u - 1.0)).astype(np.float32)


def fixed_labels(count, salt, classes):
    return [mix(i, salt) % classes for i in range(count)]


class CifarLeNet(nn.Module):
    """The PyTorch tutorial's CIFAR-10 LeNet with 16 and 32 channels."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(16, 32, 5)
        self.fc1 = nn.Linear(32 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


# LeNetKit's PartialConv2D.lecunC3Table: the input maps of each of C3's 16 maps.
C3_TABLE = ([[(i + k) % 6 for k in range(3)] for i in range(6)]
            + [[(i + k) % 6 for k in range(4)] for i in range(6)]
            + [[0, 1, 3, 4], [1, 2, 4, 5], [0, 2, 3, 5]]
            + [list(range(6))])


def squash(x):
    return 1.7159 * torch.tanh(x * (2.0 / 3.0))


class Subsampling(nn.Module):
    """LeCun's S2/S4: each map's 2×2 sums times a trainable weight, plus a bias."""

    def __init__(self, channels):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        return F.avg_pool2d(x, 2) * 4 * self.weight[None, :, None, None] + self.bias[None, :, None, None]


class LeNet5(nn.Module):
    """LeNet-5 as LeNetKit builds it (Models.lenet5): parameter names and order match."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 6, 5)
        self.s2 = Subsampling(6)
        self.c3 = nn.Conv2d(6, 16, 5)
        self.s4 = Subsampling(16)
        self.c5 = nn.Conv2d(16, 120, 5)
        self.f6 = nn.Linear(120, 84)
        self.output = nn.Linear(84, 10)
        mask = torch.zeros(16, 6, 1, 1)
        for oc, row in enumerate(C3_TABLE):
            mask[oc, row] = 1
        self.register_buffer("mask", mask)

    def forward(self, x):
        x = squash(self.s2(squash(self.c1(x))))
        x = squash(F.conv2d(x, self.c3.weight * self.mask, self.c3.bias))
        x = squash(self.c5(squash(self.s4(x)))).flatten(1)
        return self.output(squash(self.f6(x)))


def fill_like_lenetkit(model):
    """FixedValues.fill: tensor k gets salt k + 1 and bound 1/sqrt(fan-in), where a
    1-D tensor keeps the fan-in of the last tensor of higher rank."""
    fan_in = 1
    with torch.no_grad():
        for k, (name, p) in enumerate(model.named_parameters()):
            if p.dim() > 1:
                fan_in = int(np.prod(p.shape[1:]))
            p.copy_(torch.from_numpy(fixed_values(p.numel(), k + 1, 1.0 / np.sqrt(fan_in))).reshape(p.shape))
        if isinstance(model, LeNet5):
            model.c3.weight.mul_(model.mask)


def reference(model_class, fill, x, y):
    """Logits, loss, gradients, 3 Adam steps and the gradients they took."""
    out = {}
    model = model_class()
    fill(model)
    logits = model(x)
    loss = F.cross_entropy(logits, y)
    loss.backward()
    out["labels"] = y.float()
    out["logits"] = logits.detach()
    out["loss"] = loss.detach().reshape(1)
    for name, p in model.named_parameters():
        out["grad." + name] = p.grad.detach().clone()
    model = model_class()
    fill(model)
    step_gradients = []
    for name, v in run_steps(model, lambda ps: torch.optim.Adam(ps, lr=1e-3), x, y, 3, step_gradients).items():
        out["adam3." + name] = v
    for name, g in step_gradients[0].items():  # the first step's gradients are grad.<name>
        assert torch.equal(g, out["grad." + name]), name
    for t in (1, 2):
        for name, g in step_gradients[t].items():
            out["adam_grad%d.%s" % (t, name)] = g
    return out


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 5)
        self.fc2 = nn.Linear(5, 3)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


def fill_fixed(model):
    """Parameter k (in state_dict order) gets salt k + 1 and bound 1/sqrt(fan_in)."""
    with torch.no_grad():
        for k, (name, p) in enumerate(model.named_parameters()):
            fan_in = p.shape[1] * int(np.prod(p.shape[2:])) if p.dim() > 1 else None
            if fan_in is None:  # a bias: the fan-in of its weight
                fan_in = fan_in_of[name.rsplit(".", 1)[0]]
            else:
                fan_in_of[name.rsplit(".", 1)[0]] = fan_in
            values = fixed_values(p.numel(), k + 1, 1.0 / np.sqrt(fan_in))
            p.copy_(torch.from_numpy(values).reshape(p.shape))


fan_in_of = {}


def run_steps(model, make_opt, x, y, steps, gradients=None):
    """`steps` optimizer steps on (x, y); each step's gradients go into `gradients` (a list) if given."""
    opt = make_opt(model.parameters())
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        if gradients is not None:
            gradients.append({n: p.grad.detach().clone() for n, p in model.named_parameters()})
        opt.step()
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    # The PyTorch tutorial's CIFAR-10 LeNet, batch 4.
    n = 4
    x = torch.from_numpy(fixed_values(n * 3 * 32 * 32, 1000, 1.0)).reshape(n, 3, 32, 32)
    y = torch.tensor(fixed_labels(n, 2000, 10))
    out = reference(CifarLeNet, fill_fixed, x, y)
    save_file({k: v.contiguous() for k, v in out.items()},
              os.path.join(FIXTURES, "cifar_lenet_reference.safetensors"),
              metadata={"source": "Scripts/make_reference.py", "torch": torch.__version__})

    # LeNet-5, batch 4, on 1×32×32 inputs.
    x = torch.from_numpy(fixed_values(n * 32 * 32, 1000, 1.0)).reshape(n, 1, 32, 32)
    y = torch.tensor(fixed_labels(n, 2000, 10))
    out = reference(LeNet5, fill_like_lenetkit, x, y)
    masked = LeNet5().mask.expand(16, 6, 5, 5) == 0
    for key in ("grad.c3.weight", "adam3.c3.weight"):
        assert torch.all(out[key][masked] == 0), key
    save_file({k: v.contiguous() for k, v in out.items()},
              os.path.join(FIXTURES, "lenet5_reference.safetensors"),
              metadata={"source": "Scripts/make_reference.py", "torch": torch.__version__})

    # Optimizers on a tiny network.
    out = {}
    x = torch.from_numpy(fixed_values(4 * 6, 3000, 1.0)).reshape(4, 6)
    y = torch.tensor(fixed_labels(4, 4000, 3))
    out["labels"] = y.float()
    recipes = {
        "sgd": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01),
        "nesterov": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
        "adamwd": lambda ps: torch.optim.Adam(ps, lr=0.01, weight_decay=0.01),
        "adamw": lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.1),
    }
    for key, make in recipes.items():
        model = Tiny()
        fill_fixed(model)
        for name, v in run_steps(model, make, x, y, 3).items():
            out[key + "." + name] = v
    save_file({k: v.contiguous() for k, v in out.items()},
              os.path.join(FIXTURES, "optimizers_reference.safetensors"),
              metadata={"source": "Scripts/make_reference.py", "torch": torch.__version__})
    print("wrote fixtures to", os.path.normpath(FIXTURES))


if __name__ == "__main__":
    main()
