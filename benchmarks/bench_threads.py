"""Torch threads on a busy machine: one static frame pair with 1 thread, all cores, and autocar's default.

autocar's default (:func:`autocar.pipeline.workflow.available_threads`) takes the cores that
no other job keeps busy. This measures why: the same reconstruction (a held-out synthetic
pair, masks to centre lines, the shipped network) timed

- on an idle machine, and
- beside ``--hogs`` busy processes (pure-Python loops, one core each, started here),

with 1 thread and with one thread per core, for two workloads (one static frame pair, masks
to centre lines; the 2D U-Net segmenting two angiograms). The idle runs wait for the load
average to fall below 0.3; the default is read then and after the hogs have run long enough
to show in the load average. Prints the median of ``--repeats`` runs of each
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


def _time(work, threads: int, repeats: int) -> float:
    torch.set_num_threads(threads)
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        work(threads)
        runs.append(time.perf_counter() - t0)
    return float(np.median(runs))


def _wait_for_quiet(limit_s: float = 180.0, below: float = 0.3) -> float:
    """Wait (at most ``limit_s``) until the 1-minute load average is below ``below``; returns it."""
    t0 = time.time()
    while os.getloadavg()[0] >= below and time.time() - t0 < limit_s:
        time.sleep(5.0)
    return os.getloadavg()[0]


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
    from autocar.seg2d.segment import default_model as seg_model, segment_angiograms

    seg = seg_model()
    grey = synthesize_case(SynthCaseConfig(frames=2, kind="image"), rng=2_000_001).case.views[0].frames
    work = {"static pair": lambda n: reconstruct_pair(masks, views, model, ReconstructConfig(threads=n)),
            "2D U-Net, 2 frames": lambda n: segment_angiograms(np.asarray(grey), seg)}
    for w in work.values():
        w(cores)  # warm-up
    print(f"{cores} cores; load average {_wait_for_quiet():.2f} before the idle runs")
    idle_default = available_threads()
    rows = [("idle", name, n, _time(w, n, args.repeats)) for name, w in work.items() for n in (1, cores)]
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    hogs = [ctx.Process(target=_hog, args=(stop,), daemon=True) for _ in range(args.hogs)]
    for h in hogs:
        h.start()
    try:
        time.sleep(args.settle)
        busy_default = available_threads()
        rows += [("busy", name, n, _time(w, n, args.repeats)) for name, w in work.items() for n in (1, cores)]
    finally:
        stop.set()
        for h in hogs:
            h.join(timeout=5)
    base = {(cond, name): s for cond, name, n, s in rows if n == 1}
    for cond, name, n, s in rows:
        default = idle_default if cond == "idle" else busy_default
        mark = "  <- autocar's default here" if n == default else ""
        print(f"{cond:5s} ({args.hogs if cond == 'busy' else 0} hog) {name:20s}: {n} thread(s) {s:6.2f} s "
              f"({s / base[(cond, name)]:.2f}x the 1-thread time){mark}")
    print(f"default threads: idle {idle_default}, beside {args.hogs} busy process(es) {busy_default}")


if __name__ == "__main__":
    main()
