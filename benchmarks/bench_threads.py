"""Torch threads on a busy machine: one static frame pair with 1 thread, all cores, and autocar's default.

autocar's default (:func:`autocar.pipeline.workflow.available_threads`) takes the cores that
no other job keeps busy. This measures why: the same reconstruction (a held-out synthetic
pair, masks to centre lines, the shipped network) timed

- on an idle machine, and
- beside ``--hogs`` busy processes (pure-Python loops, one core each, started here),

with 1 thread, with one thread per core, and with the default (decided after the hogs have
run long enough to show in the load average). Prints the median of ``--repeats`` runs of each
and the ratio to 1 thread in the same condition.

Run (about 3 min on 2 cores):

    python benchmarks/bench_threads.py
    python benchmarks/bench_threads.py --hogs 1 --repeats 5
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time

import numpy as np
import torch

from autocar.pipeline.static import ReconstructConfig, default_model, reconstruct_pair
from autocar.pipeline.workflow import available_threads
from autocar.synth.cases import SynthCaseConfig, synthesize_case


def _hog(stop) -> None:  # pragma: no cover - runs in a child process
    x = 0
    while not stop.is_set():
        x = (x * 1103515245 + 12345) % 2147483648


def _time(masks, views, model, threads: int, repeats: int) -> float:
    torch.set_num_threads(threads)
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        reconstruct_pair(masks, views, model, ReconstructConfig(threads=threads))
        runs.append(time.perf_counter() - t0)
    return float(np.median(runs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hogs", type=int, default=1, help="busy processes beside the run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--settle", type=float, default=45.0, help="seconds the hogs run before the default is read")
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    sc = synthesize_case(SynthCaseConfig(frames=1, lag_range=(0.0, 0.0), view_b_delay_s=(0.0, 0.0)), rng=2_000_000)
    a, b = sc.case.views
    masks, views = [a.frames[0], b.frames[0]], [a.view, b.view]
    model = default_model()
    reconstruct_pair(masks, views, model)  # warm-up
    print(f"{cores} cores; load average now {os.getloadavg()[0]:.2f}")
    idle_default = available_threads()
    rows = [("idle", 1, _time(masks, views, model, 1, args.repeats)),
            ("idle", cores, _time(masks, views, model, cores, args.repeats))]
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    hogs = [ctx.Process(target=_hog, args=(stop,), daemon=True) for _ in range(args.hogs)]
    for h in hogs:
        h.start()
    try:
        time.sleep(args.settle)
        busy_default = available_threads()
        rows += [("busy", 1, _time(masks, views, model, 1, args.repeats)),
                 ("busy", cores, _time(masks, views, model, cores, args.repeats))]
    finally:
        stop.set()
        for h in hogs:
            h.join(timeout=5)
    base = {cond: s for cond, n, s in rows if n == 1}
    for cond, n, s in rows:
        default = idle_default if cond == "idle" else busy_default
        mark = "  <- autocar's default here" if n == default else ""
        print(f"{cond:5s} ({args.hogs if cond == 'busy' else 0} hog): {n} thread(s) {s:6.2f} s "
              f"({s / base[cond]:.2f}x the 1-thread time){mark}")
    print(f"default threads: idle {idle_default}, beside {args.hogs} busy process(es) {busy_default}")


if __name__ == "__main__":
    main()
