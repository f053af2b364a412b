#!/usr/bin/env python3
"""Writes the PyTorch reference for LeNetKit's RBF output, MAP loss and SDLM tests.

Run by hand (never by CI), from the repository root, in an environment with
torch and safetensors:

    python3 Scripts/make_lenet1998_reference.py

The inputs come from torch.manual_seed(0) and are stored with the results.
The digit prototypes are read from Sources/LeNetKit/Layers/RBF.swift (its
`digitDrawings`), so the fixture also pins them. All tensors are F32; labels
are stored as F32. j is 14, LeNetKit's `TrainingOptions.paperMapConstant`.

Fixtures/lenet1998_reference.safetensors:
  prototypes (10, 84): the drawings as ±1;
  RBF and MAP loss on a batch of 4: rbf.x (4, 84), rbf.labels (4),
    rbf.z (4, 10) = −Σ_j (x_j − w_ij)², map.loss (1) the mean MAP loss,
    map.dz (4, 10) its gradient with respect to z, rbf.dx (4, 84) with respect to x;
    double.rbf.z, double.map.loss, double.map.dz, double.rbf.dx: the same in float64;
  one SDLM step of Linear(6→84) → 1.7159·tanh(2a/3) → RBF(84→10) → MAP loss:
    sdlm.weight (84, 6), sdlm.bias (84) the starting parameters,
    sdlm.u (8, 6), sdlm.labels (8): the samples the curvature is estimated on,
    sdlm.curvature.weight (84, 6), sdlm.curvature.bias (84): LeCun et al. 1998's
      Gauss–Newton diagonal averaged over them (the rule below, written out in torch),
    sdlm.step_u (1, 6), sdlm.step_label (1): the sample of the step,
    sdlm.grad.weight, sdlm.grad.bias: its gradient (autograd),
    sdlm.after.weight, sdlm.after.bias: p − η/(μ + h)·g with η = 0.01, μ = 0.02.

The curvature rule: h_z = p(1 − p) with p the softmax over the classes and the
rubbish class; through the RBF, h_x = Σ_i 4(x − w_i)²·h_z,i − 2·Σ_i ∂E/∂z_i; through
the squashing, h_a = f′(a)²·h_x; for the weights, h_W[j,k] = u_k²·h_a,j and h_b = h_a.
"""
import os
import re
import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
FIXTURES = os.path.join(ROOT, "Tests", "LeNetKitTests", "Fixtures")
J = 14.0
A, S = 1.7159, 2.0 / 3.0
ETA, MU = 0.01, 0.02


def prototypes():
    source = open(os.path.join(ROOT, "Sources", "LeNetKit", "Layers", "RBF.swift")).read()
    start = source.index("digitDrawings: [[String]] = [")
    end = source.index("/// `digitDrawings` as")
    rows = re.findall(r'"([.#]{7})"', source[start:end])
    assert len(rows) == 120, len(rows)
    values = [[1.0 if c == "#" else -1.0 for row in rows[d * 12:(d + 1) * 12] for c in row] for d in range(10)]
    return torch.tensor(values, dtype=torch.float32)


def rbf(x, w):
    return -((x[:, None, :] - w[None, :, :]) ** 2).sum(-1)


def map_loss(z, labels):
    rubbish = torch.full((z.shape[0], 1), -J, dtype=z.dtype)
    both = torch.cat([z, rubbish], dim=1)
    return (-z.gather(1, labels[:, None]).squeeze(1) + torch.logsumexp(both, dim=1)).mean()


def rbf_and_loss(x, w, labels):
    x = x.clone().requires_grad_(True)
    z = rbf(x, w)
    z.retain_grad()
    loss = map_loss(z, labels)
    loss.backward()
    return z.detach(), loss.detach().reshape(1), z.grad.detach(), x.grad.detach()


def curvature(weight, bias, u, labels, w):
    a = u @ weight.T + bias
    x = A * torch.tanh(S * a)
    z = rbf(x, w)
    denominator = torch.exp(torch.tensor(-J, dtype=z.dtype)) + torch.exp(z).sum(1, keepdim=True)
    p = torch.exp(z) / denominator
    dz = p - torch.nn.functional.one_hot(labels, 10).to(z.dtype)
    hz = p * (1 - p)
    d = x[:, None, :] - w[None, :, :]  # (N, 10, 84)
    hx = (4 * d * d * hz[:, :, None]).sum(1) - 2 * dz.sum(1, keepdim=True)
    fprime = A * S * (1 - torch.tanh(S * a) ** 2)
    ha = fprime ** 2 * hx  # (N, 84)
    hw = (ha[:, :, None] * (u ** 2)[:, None, :]).mean(0)
    hb = ha.mean(0)
    return hw, hb


def main():
    torch.manual_seed(0)
    w = prototypes()
    out = {"prototypes": w}

    x = (torch.rand(4, 84) * 2 - 1) * 1.6
    labels = torch.tensor([3, 5, 0, 8])
    # One sample near its prototype, so the rubbish class and the softmax both matter.
    x[1] = 0.8 * w[5] + 0.3 * (torch.rand(84) * 2 - 1)
    z, loss, dz, dx = rbf_and_loss(x, w, labels)
    dz_, loss_, dzz, dxx = rbf_and_loss(x.double(), w.double(), labels)
    out.update({"rbf.x": x, "rbf.labels": labels.float(), "rbf.z": z, "map.loss": loss, "map.dz": dz, "rbf.dx": dx,
                "double.rbf.z": dz_.float(), "double.map.loss": loss_.float(), "double.map.dz": dzz.float(),
                "double.rbf.dx": dxx.float()})

    weight = (torch.rand(84, 6) * 2 - 1) * 0.6
    bias = (torch.rand(84) * 2 - 1) * 0.3
    u = torch.rand(8, 6) * 1.275 - 0.1
    sample_labels = torch.randint(0, 10, (8,))
    hw, hb = curvature(weight.double(), bias.double(), u.double(), sample_labels, w.double())
    step_u = torch.rand(1, 6) * 1.275 - 0.1
    step_label = torch.tensor([7])
    W = weight.clone().requires_grad_(True)
    B = bias.clone().requires_grad_(True)
    loss1 = map_loss(rbf(A * torch.tanh(S * (step_u @ W.T + B)), w), step_label)
    loss1.backward()
    after_w = weight - ETA / (MU + hw.float()) * W.grad
    after_b = bias - ETA / (MU + hb.float()) * B.grad
    out.update({"sdlm.weight": weight, "sdlm.bias": bias, "sdlm.u": u, "sdlm.labels": sample_labels.float(),
                "sdlm.curvature.weight": hw.float(), "sdlm.curvature.bias": hb.float(),
                "sdlm.step_u": step_u, "sdlm.step_label": step_label.float(),
                "sdlm.grad.weight": W.grad.detach(), "sdlm.grad.bias": B.grad.detach(),
                "sdlm.after.weight": after_w.detach(), "sdlm.after.bias": after_b.detach()})
    out = {k: v.contiguous().to(torch.float32) for k, v in out.items()}
    path = os.path.join(FIXTURES, "lenet1998_reference.safetensors")
    save_file(out, path)
    print("wrote", path, "map loss", float(loss), "curvature range", float(hw.min()), float(hw.max()))


if __name__ == "__main__":
    main()
