#!/usr/bin/python3
"""Checks that exsal and the PyTorch reference compute the same model, so that the timings of
compare.py compare the same work.

bench_autoencoder --mode agreement (double precision) writes its initial parameters (random
biases as PyTorch draws them), the reference's kind of synthetic counts, the loss gradient on the
first batch and the losses of the first Adam steps on consecutive batches. This script loads the
same parameters into torch_reference.Autoencoder (float64), and compares:
  - the reconstruction and orthogonality losses and every parameter's gradient on the first batch
    (relative error ||exsal - torch|| / ||torch||),
  - the losses before each of --steps Adam steps (PyTorch's Adam, the reference's settings).
The trajectories of two implementations drift apart after some steps (rounding differences,
amplified by the softplus with beta = width, which is nearly ReLU); the first steps must agree.

  benchmarks/same_model.py [--build build-bench] [--cells 512 --genes 1000 --batch 128 --steps 8]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "..", "shared", "reference"))
from torch_reference import Autoencoder  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default=os.path.join(ROOT, "build-bench"))
    p.add_argument("--cells", type=int, default=512)
    p.add_argument("--genes", type=int, default=1000)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    torch.set_default_dtype(torch.float64)
    with tempfile.TemporaryDirectory(prefix="exsal_same_model_") as tmp:
        subprocess.run([os.path.join(a.build, "benchmarks", "bench_autoencoder"), "--mode", "agreement", "--out", tmp,
                        "--cells", str(a.cells), "--genes", str(a.genes), "--batch", str(a.batch),
                        "--steps", str(a.steps), "--seed", str(a.seed), "--threads", "1"],
                       check=True, stdout=subprocess.DEVNULL)
        params = np.fromfile(os.path.join(tmp, "params.bin"))
        data = np.fromfile(os.path.join(tmp, "data.bin")).reshape(a.cells, a.genes)  # genes x cells, column-major
        grad = np.fromfile(os.path.join(tmp, "grad.bin"))
        losses = np.fromfile(os.path.join(tmp, "losses.bin")).reshape(a.steps, 2)

    model = Autoencoder(a.genes).double()
    layers = (model.fc1, model.fc2, model.fc3, model.fc4)
    off = 0
    views = []  # (layer, offset of W, offset of b)
    for fc in layers:
        out_, in_ = fc.weight.shape
        fc.weight.data = torch.from_numpy(params[off:off + out_ * in_].reshape(in_, out_).T.copy())
        fc.bias.data = torch.from_numpy(params[off + out_ * in_:off + out_ * in_ + out_].copy())
        views.append((fc, off, off + out_ * in_))
        off += out_ * in_ + out_
    assert off == params.size, "parameter layout differs"
    x = torch.from_numpy(data)
    eye = torch.eye(64)

    def loss_parts(xb):
        _, y = model(xb)
        w = model.fc2.weight
        return F.poisson_nll_loss(y, xb, log_input=False), torch.norm(eye - w @ w.t())

    report = {"cells": a.cells, "genes": a.genes, "batch": a.batch, "steps": a.steps}
    rec, orth = loss_parts(x[:a.batch])
    (rec + orth).backward()
    report["first_batch_loss_rel_err"] = max(abs(float(rec) - losses[0, 0]) / abs(float(rec)),
                                             abs(float(orth) - losses[0, 1]) / abs(float(orth)))
    worst = 0.0
    for fc, w_off, b_off in views:
        out_, in_ = fc.weight.shape
        gw = grad[w_off:w_off + out_ * in_].reshape(in_, out_).T
        gb = grad[b_off:b_off + out_]
        worst = max(worst, np.linalg.norm(gw - fc.weight.grad.numpy()) / np.linalg.norm(fc.weight.grad.numpy()),
                    np.linalg.norm(gb - fc.bias.grad.numpy()) / np.linalg.norm(fc.bias.grad.numpy()))
    report["gradient_rel_err_worst_tensor"] = worst

    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    rows = []
    for s in range(a.steps):
        first = (s * a.batch) % a.cells
        xb = x[first:first + a.batch]
        opt.zero_grad()
        rec, orth = loss_parts(xb)
        rows.append((s, losses[s, 0], float(rec), losses[s, 1], float(orth)))
        (rec + orth).backward()
        opt.step()
    print("| Adam step | exsal reconstruction | PyTorch reconstruction | exsal orthogonality | PyTorch orthogonality |")
    print("|---|---|---|---|---|")
    for s, er, tr, eo, to in rows:
        print(f"| {s} | {er:.10g} | {tr:.10g} | {eo:.10g} | {to:.10g} |")
    report["steps_rel_err"] = [max(abs(er - tr) / abs(tr), abs(eo - to) / abs(to)) for _, er, tr, eo, to in rows]
    print(json.dumps(report))
    ok = report["first_batch_loss_rel_err"] < 1e-10 and worst < 1e-9
    print("same model: " + ("yes" if ok else "NO"), file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
