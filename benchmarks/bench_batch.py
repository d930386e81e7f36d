"""Scaling of ``autocar batch``: the same archive with 1 and 2 local workers, and on a Dask LocalCluster.

The archive: ``--studies`` synthetic mask cases (seeds 4,300,000+, left / right alternating,
``--frames`` frames per view, weakly synchronised as ``autocar synth`` makes them) plus two
bad studies (a broken ``case.json`` and a case whose view A masks are empty). Each
configuration reconstructs it from scratch into its own folder with the default options
(dynamic, report written), then the 1-worker run is resumed once more (nothing to do: every
study is done or fails again). Prints wall time, studies per minute and the speed-up over
1 worker measured in the same run, and checks that every configuration gives the same
statuses.

Run (about 6 min on 2 cores with the defaults):

    python benchmarks/bench_batch.py
    python benchmarks/bench_batch.py --studies 18 --frames 4 --dask
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from autocar.io.images import write_frame
from autocar.pipeline.batch import find_studies, run_batch
from autocar.pipeline.workflow import RunOptions
from autocar.synth.cases import SynthCaseConfig, synthesize_case, write_synth_case

SEED0 = 4_300_000


def make_archive(root: Path, studies: int, frames: int) -> None:
    for i in range(studies):
        side = "left" if i % 2 == 0 else "right"
        write_synth_case(synthesize_case(SynthCaseConfig(side=side, frames=frames), rng=SEED0 + i), root / f"study{i:03d}")
    (root / "bad_json").mkdir()
    (root / "bad_json" / "case.json").write_text("{ broken")
    sc = synthesize_case(SynthCaseConfig(frames=frames), rng=SEED0 + 999)
    write_synth_case(sc, root / "bad_empty")
    for png in (root / "bad_empty" / "A").glob("*.png"):
        write_frame(png, np.zeros(sc.case.views[0].view.shape, np.uint8))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--studies", type=int, default=8, help="good studies (two bad ones are added)")
    ap.add_argument("--frames", type=int, default=3)
    ap.add_argument("--dask", action="store_true", help="also run on a Dask LocalCluster with 2 worker processes")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="autocar-batch-"))
    try:
        archive = tmp / "archive"
        make_archive(archive, args.studies, args.frames)
        studies = find_studies(archive)
        configs = [("1 worker", {"workers": 1}), ("2 workers", {"workers": 2})]
        if args.dask:
            configs.append(("dask LocalCluster, 2 workers", {"dask": 2}))
        results = {}
        for name, cfg in configs:
            out = tmp / name.replace(" ", "_").replace(",", "")
            t0 = time.perf_counter()
            if "dask" in cfg:
                from distributed import Client, LocalCluster

                with LocalCluster(n_workers=cfg["dask"], threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, Client(cluster) as client:
                    res = run_batch(studies, out, RunOptions(), scheduler=client, progress=False)
            else:
                res = run_batch(studies, out, RunOptions(), workers=cfg["workers"], progress=False)
            seconds = time.perf_counter() - t0
            results[name] = (seconds, [r["status"] for r in res.rows])
            print(f"{name:30s}: {seconds:7.1f} s, {res.count('ok')} ok, {res.count('failed')} failed, "
                  f"{60 * len(studies) / seconds:.1f} studies/min", flush=True)
        t0 = time.perf_counter()
        again = run_batch(studies, tmp / "1_worker", RunOptions(), workers=1, progress=False)
        print(f"{'resume of the 1-worker run':30s}: {time.perf_counter() - t0:7.1f} s, "
              f"{again.count('done earlier')} done earlier, {again.count('failed')} failed again")
        base = results["1 worker"][0]
        for name, (seconds, statuses) in results.items():
            same = statuses == results["1 worker"][1]
            print(f"speed-up over 1 worker, {name}: {base / seconds:.2f}x (same statuses: {same})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
