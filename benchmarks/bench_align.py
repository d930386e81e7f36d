"""How well the epipolar alignment (autocar.sbp.epipolar) recovers view B's true drift.

On held-out synthetic pairs (seeds 2,000,000+i as bench_reconstruct.py; left and
right trees alternating), weakly synchronised as ``autocar synth`` makes them
and perfectly synchronised, the generator knows both trees: view A's
(``truth``) and the one view B saw (``truth_b``). Projected into view B,
their difference is B's drift; its component across B's epipolar lines is
what breaks the two-view hull, the component along them only moves the
reconstruction in depth and cannot be seen from two views.

Per set it prints: how many pairs the alignment warps; the RMS over tree
nodes of the across-line drift before and after the warp (px; truth 0);
the same for the warped pairs only; the along-line drift (for scale); and
the time of one alignment against the SBP carving of the same pair, measured
in the same run.

Run: ``python benchmarks/bench_align.py [--cases 20]`` (about 1 min on 2 cores).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from autocar.sbp.carve import SBPConfig, carve
from autocar.sbp.epipolar import estimate_alignment
from autocar.synth.cases import SynthCaseConfig, synthesize_case

SEED0 = 2_000_000


def drift(sc, al) -> tuple[float, float, float]:
    """RMS across-line drift before / after the warp and RMS along-line drift (px) of view B."""
    vb = sc.case.views[1].view
    pa, _ = vb.project(sc.truth[0].nodes)
    pb, _ = vb.project(sc.truth_b[0].nodes)
    across = np.asarray(al.across, float)
    along = np.array([-across[1], across[0]])
    d = pb - pa
    ac = d @ across
    u = (pa - np.asarray(al.centre_rc, float)) @ across
    left = ac - (al.offset_px + al.scale * u) if al.accepted else ac
    rms = lambda x: float(np.sqrt(np.mean(x**2)))  # noqa: E731
    return rms(ac), rms(left), rms(d @ along)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", type=int, default=20)
    args = ap.parse_args()
    print(f"{'set':<8s} {'warped':>7s} {'across before':>14s} {'after':>6s} {'warped: before':>15s} {'after':>6s}"
          f" {'along':>6s} {'align ms':>9s} {'SBP ms':>7s} {'ratio':>6s}")
    for name, sync in (("weak", False), ("sync", True)):
        extra = {"lag_range": (0.0, 0.0), "view_b_delay_s": (0.0, 0.0)} if sync else {}
        rows, t_align, t_sbp = [], [], []
        for i in range(args.cases):
            side = "left" if i % 2 == 0 else "right"
            sc = synthesize_case(SynthCaseConfig(side=side, frames=1, n_stenoses=1, **extra), rng=SEED0 + i)
            a, b = sc.case.views
            masks, views = [a.frames[0] > 0, b.frames[0] > 0], [a.view, b.view]
            t = time.perf_counter()
            al = estimate_alignment(masks, views)
            t_align.append(time.perf_counter() - t)
            t = time.perf_counter()
            carve(masks, views, SBPConfig(margin_px=1.0))
            t_sbp.append(time.perf_counter() - t)
            rows.append((al.accepted, *drift(sc, al)))
        r = np.array(rows, float)
        w = r[:, 0] > 0
        ms_a, ms_s = 1000 * np.median(t_align), 1000 * np.median(t_sbp)
        wb = f"{np.mean(r[w, 1]):15.2f} {np.mean(r[w, 2]):6.2f}" if w.any() else f"{'-':>15s} {'-':>6s}"
        print(f"{name:<8s} {int(w.sum()):>3d}/{len(r):<3d} {np.mean(r[:, 1]):14.2f} {np.mean(r[:, 2]):6.2f} {wb}"
              f" {np.mean(r[:, 3]):6.2f} {ms_a:9.0f} {ms_s:7.0f} {ms_a / ms_s:6.2f}", flush=True)


if __name__ == "__main__":
    main()
