#!/usr/bin/env python3
"""Writes Tests/LeNetKitTests/Fixtures/recipe_reference.safetensors: what PyTorch
computes for the pieces of LeNetKit's training recipes, for RecipeTests.

    /path/to/venv/bin/python Scripts/make_recipe_reference.py

Run by hand (never by CI); the file is checked in. Needs torch and safetensors.

  smoothing.logits (7, 10), smoothing.labels (7) as F32: random logits of
    several scales, and labels;
  smoothing.<a>.loss (1), smoothing.<a>.grad (7, 10): nn.CrossEntropyLoss(
    label_smoothing=a) on them and its gradient with respect to the logits,
    for a = 0.0, 0.1, 0.3 (in float64, then stored as float32);
  onecycle.lr (137): OneCycleLR(max_lr=0.004, total_steps=137, cycle_momentum=False)
    on SGD, the rate of each of the 137 steps (get_last_lr() before each step);
  warmup_cosine.lr (30): SequentialLR of LinearLR(start_factor=1/10,
    total_iters=9) and CosineAnnealingLR(T_max=20) at milestone 10, lr 0.002:
    10 warm-up steps of 30;
  ema.weights (12, 37), ema.average (12, 37): a module's 37 weights before each
    of 12 AveragedModel(multi_avg_fn=get_ema_multi_avg_fn(0.9)).update_parameters
    calls (random, of several scales, as a training run changes them), and the
    average after each call.
"""
import os
import torch
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "LeNetKitTests", "Fixtures",
                   "recipe_reference.safetensors")


def rates(scheduler, optimizer, steps):
    out = []
    for _ in range(steps):
        out.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    return torch.tensor(out, dtype=torch.float64)


def main():
    g = torch.Generator().manual_seed(20261203)
    logits = torch.randn(7, 10, generator=g, dtype=torch.float64) * torch.tensor([0.5, 1, 2, 4, 8, 1, 3],
                                                                                 dtype=torch.float64).view(7, 1)
    labels = torch.tensor([0, 3, 9, 9, 1, 5, 2])
    tensors = {"smoothing.logits": logits.float(), "smoothing.labels": labels.float()}
    for a in (0.0, 0.1, 0.3):
        z = logits.clone().requires_grad_(True)
        loss = torch.nn.CrossEntropyLoss(label_smoothing=a)(z, labels)
        loss.backward()
        tensors[f"smoothing.{a}.loss"] = loss.detach().float().view(1)
        tensors[f"smoothing.{a}.grad"] = z.grad.float()

    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.004)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.004, total_steps=137, cycle_momentum=False)
    tensors["onecycle.lr"] = rates(sched, opt, 137).float()

    opt = torch.optim.SGD([p], lr=0.002)
    warm = torch.optim.lr_scheduler.LinearLR(opt, start_factor=1 / 10, end_factor=1.0, total_iters=9)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=20)
    sched = torch.optim.lr_scheduler.SequentialLR(opt, [warm, cosine], milestones=[10])
    tensors["warmup_cosine.lr"] = rates(sched, opt, 30).float()

    module = torch.nn.Linear(37, 1, bias=False)
    average = torch.optim.swa_utils.AveragedModel(module, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(0.9))
    weights, averages = [], []
    for k in range(12):
        with torch.no_grad():
            module.weight.copy_(torch.randn(1, 37, generator=g) * (0.1 + k / 4))
        average.update_parameters(module)
        weights.append(module.weight.detach().clone().view(37))
        averages.append(average.module.weight.detach().clone().view(37))
    tensors["ema.weights"] = torch.stack(weights)
    tensors["ema.average"] = torch.stack(averages)

    save_file(tensors, OUT, metadata={"torch": torch.__version__})
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
