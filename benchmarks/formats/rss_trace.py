#!/usr/bin/python3
"""Runs a command, samples the resident memory of its process tree, and says in which stage of
velten_pipeline the memory peaked (the stages are the "[m:ss] name" lines the pipeline prints on
stderr when stderr is not a terminal).

    /usr/bin/python3 benchmarks/formats/rss_trace.py [--interval 0.5] [--log run.log] [--samples rss.csv] -- \
        /usr/bin/time -v build/examples/velten_pipeline --expression big.h5ad ...

The command's stdout and stderr are passed through (stderr also into --log, each line with the
seconds since the start). At the end it prints, per stage: when it started, how long it took and
the largest resident set sampled during it (none for a stage shorter than --interval; VmRSS of every process of the tree, summed, every
--interval seconds), then the peak of the command as the kernel counts it (ru_maxrss of the
child, from wait4: the same figure as /usr/bin/time's "Maximum resident set size"). Samples can
miss a short spike between two of them; the kernel's figure cannot.

Standard library only (keeps this process small: Linux counts a child's ru_maxrss from the size
of its parent at fork).
"""

import argparse
import os
import re
import subprocess
import sys
import threading
import time

STAGE = re.compile(r"^\[(\d+):(\d\d)\] (\S.*)$")


def tree_rss_kib(pid):
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open("/proc/%d/status" % p) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
            with open("/proc/%d/task/%d/children" % (p, p)) as f:
                todo.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            pass
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--interval", type=float, default=0.5)
    ap.add_argument("--log", default="", help="also write the command's stderr here, lines timed")
    ap.add_argument("--samples", default="", help="also write the samples here (CSV: seconds, MiB, stage)")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not cmd:
        ap.error("no command")

    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, bufsize=1)
    lines = []  # (seconds, line)
    log = open(args.log, "w") if args.log else None

    def read_stderr():
        for line in proc.stderr:
            t = time.monotonic() - t0
            lines.append((t, line.rstrip("\n")))
            sys.stderr.write(line)
            if log:
                log.write("%9.1f  %s" % (t, line))
                log.flush()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    samples = []  # (seconds, KiB)
    status = None
    while status is None:
        samples.append((time.monotonic() - t0, tree_rss_kib(proc.pid)))
        pid, st, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            status = (st, usage)
            break
        time.sleep(args.interval)
    wall = time.monotonic() - t0
    reader.join(timeout=5)
    proc.returncode = os.waitstatus_to_exitcode(status[0])
    if log:
        log.close()

    stages = [(t, STAGE.match(l).group(3)) for t, l in lines if STAGE.match(l)]
    if not stages:
        stages = [(0.0, "(whole command)")]
    stages = [(0.0, "(start)")] + stages if stages[0][0] > 1.0 else stages
    print("\n| stage | starts at s | takes s | largest sampled RSS MiB |")
    print("|---|---|---|---|")
    best = (0, "")
    for i, (start, name) in enumerate(stages):
        end = stages[i + 1][0] if i + 1 < len(stages) else wall
        during = [k for t, k in samples if start <= t < end]
        top = max(during) if during else 0
        if top > best[0]:
            best = (top, name)
        print("| %s | %.1f | %.1f | %.0f |" % (name, start, end - start, top / 1024.0))
    if args.samples:
        with open(args.samples, "w") as f:
            f.write("seconds,rss_mib,stage\n")
            for t, k in samples:
                name = [n for start, n in stages if start <= t]
                f.write("%.2f,%.1f,%s\n" % (t, k / 1024.0, name[-1] if name else ""))
    print("\nwall %.1f s; exit code %d; peak (ru_maxrss of the child, wait4) %.0f MiB; largest sample %.0f MiB in "
          "stage '%s'; %d samples every %.2f s"
          % (wall, proc.returncode, status[1].ru_maxrss / 1024.0, best[0] / 1024.0, best[1], len(samples), args.interval))
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
