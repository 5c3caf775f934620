#!/usr/bin/env python3
"""Predicted strong scaling of exsal's data-parallel training on a cluster, from one step measured
on one machine (benchmarks/README.md, "Several machines").

A step on p ranks with a fixed global batch of B cells:
    T(p) = C * m(p) / B + F + A(p)
    C     the part of the step that splits over the ranks (forward and backward of the batch's cells)
    m(p)  the expected largest number of the batch's cells on one rank: every rank waits in the sum
          for the one with the most cells (the cells of a random batch fall on the ranks at random;
          B / p on average, computed here by simulation)
    F     the part every rank repeats (Adam on all parameters, the copy into and out of the sum buffer)
    A(p)  ring allreduce of the gradient: 2 (p - 1) / p * bytes / bandwidth + 2 (p - 1) * latency
Speed-up S(p) = (C + F) / T(p), against one rank without communication. It leaves out that matrix
products of fewer cells run less efficiently and that ranks on one machine share its memory
bandwidth, so it is optimistic.

    benchmarks/mpi_model.py --compute-ms 9.2 --fixed-ms 0.84 --bytes 2122824 --batch 128
"""
import argparse
import random

NETWORKS = [  # name, bandwidth in bytes/s, latency per message in s (typical MPI figures)
    ("10 GbE (TCP)", 1.1e9, 30e-6),
    ("InfiniBand HDR", 25e9, 1.5e-6),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--compute-ms", type=float, required=True, help="C: forward + backward of one global batch on one rank")
    ap.add_argument("--fixed-ms", type=float, required=True, help="F: per-step work every rank repeats")
    ap.add_argument("--bytes", type=float, required=True, help="bytes summed per step ((parameters + 2) x 4)")
    ap.add_argument("--batch", type=int, default=128, help="B: cells per global batch")
    ap.add_argument("--ranks", default="2,4,8,16,64")
    a = ap.parse_args()
    ranks = [int(p) for p in a.ranks.split(",")]
    rng = random.Random(1)

    def largest_share(p, batches=2000):
        total = 0
        for _ in range(batches):
            counts = [0] * p
            for _ in range(a.batch):
                counts[rng.randrange(p)] += 1
            total += max(counts)
        return total / batches

    share = {p: largest_share(p) for p in ranks}
    one = a.compute_ms + a.fixed_ms
    print(f"one rank: {one:.2f} ms per step; {a.bytes / 1e6:.2f} MB summed per step\n")
    print("| network | " + " | ".join(f"p = {p}" for p in ranks) + " |")
    print("|---|" + "---|" * len(ranks))
    for name, bandwidth, latency in NETWORKS:
        cells = []
        for p in ranks:
            allreduce = (2 * (p - 1) / p * a.bytes / bandwidth + 2 * (p - 1) * latency) * 1e3
            step = a.compute_ms * share[p] / a.batch + a.fixed_ms + allreduce
            cells.append(f"{step:.2f} ms ({allreduce:.2f} ms sum), {one / step:.2f}x")
        print(f"| {name} | " + " | ".join(cells) + " |")
    cells = [f"{one / (a.compute_ms * share[p] / a.batch + a.fixed_ms):.2f}x" for p in ranks]
    print("| free network (limit) | " + " | ".join(cells) + " |")
    print("| largest share m(p) of the batch's cells | " + " | ".join(f"{share[p]:.1f} (mean {a.batch / p:.1f})" for p in ranks) + " |")


if __name__ == "__main__":
    main()
