"""Benchmark of 2D vessel segmentation: tuned Frangi versus the shipped U-Net.

Run: ``python benchmarks/bench_seg2d.py [--synthetic N] [--dca1-dir DIR]
[--weights PATH] [--threads T] [--json OUT]``.

Prints, for each method (:func:`autocar.seg2d.frangi.frangi_segment`,
:func:`autocar.seg2d.segment.segment_angiogram` at threshold 0.5, and the same
averaged over the four mirror images, ``flips=True``), the mean
(and standard deviation) per-image Dice and 2D clDice
(:mod:`autocar.seg2d.scores`) on

1. N held-out synthetic angiograms
   (:func:`autocar.seg2d.data.synthetic_angiogram` with seeds 2,000,000 + i;
   training uses seeds < 1,000,000, validation 1,000,000 + i), and the
   share of their guiding catheter's pixels called vessel (the catheter is
   not a vessel; :attr:`autocar.seg2d.data.LabelledImage.catheter`);
2. the 40 real DCA1 TESTING images (``Angios_40_testing``; Cervantes-Sanchez
   et al., Appl. Sci. 9, 2019), never used for training or tuning; skipped
   with a note when the data folder is absent;

and the median time per 512 x 512 image of each method (a synthetic
512-px angiogram, ``--runs`` runs after one warm-up, torch on ``--threads``
threads).

Published references on DCA1 (Dice on the testing half): tuned Gaussian
matched / Frangi-type filters about 0.76, deep networks about 0.80-0.81.

``--spacings 0.15,0.22,0.28,0.4`` instead renders held-out trees (seeds
2,000,000 + i, ``--trees`` of them, view A of ``autocar synth``'s pose, with a
catheter) into angiograms of those pixel sizes at the isocentre (mm; a 140 mm
field of view, so 0.15 mm gives 928 x 928 px) and prints the U-Net's Dice and
clDice on each when it is told the pixel size (below ``RESAMPLE_BELOW_MM`` the
wide vessels it finds at ``TARGET_SPACING_MM`` are added, what ``autocar
reconstruct`` does) against the same network on the image as it is, in the
same run. The 3D effect is measured by ``bench_pixel_size.py``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from autocar.seg2d.data import SynthConfig, load_dca1, synthetic_angiogram
from autocar.seg2d.frangi import frangi_segment
from autocar.seg2d.scores import cl_dice_2d, dice_2d
from autocar.seg2d.segment import DEFAULT_WEIGHTS, TARGET_SPACING_MM, load_model, segment_angiogram

BENCH_SEED_BASE = 2_000_000
REPO = Path(__file__).resolve().parents[1]


def _methods(model):
    """The compared segmenters: Frangi, the U-Net, and the U-Net averaged over the image's
    four mirror images (``segment_angiogram(..., flips=True)``, test-time augmentation)."""
    return (("frangi", frangi_segment), ("unet", lambda im: segment_angiogram(im, model)),
            ("unet+flips", lambda im: segment_angiogram(im, model, flips=True)))


def _score(items, model) -> dict[str, dict[str, float]]:
    out = {}
    for name, fn in _methods(model):
        dice, cld, called, catheter = [], [], 0, 0
        for it in items:
            pred = fn(it.image)
            dice.append(dice_2d(pred, it.mask))
            cld.append(cl_dice_2d(pred, it.mask))
            if it.catheter is not None:
                called += int((pred & it.catheter).sum())
                catheter += int(it.catheter.sum())
        out[name] = {
            "dice": float(np.mean(dice)),
            "dice_std": float(np.std(dice)),
            "cldice": float(np.mean(cld)),
            "cldice_std": float(np.std(cld)),
            "n": len(items),
            # Share of the labelled catheter pixels called vessel (synthetic angiograms only).
            "catheter_as_vessel": called / catheter if catheter else None,
        }
    return out


def _time(image: np.ndarray, model, runs: int) -> dict[str, float]:
    out = {}
    for name, fn in _methods(model):
        fn(image)  # warm-up
        ts = []
        for _ in range(runs):
            t0 = time.perf_counter()
            fn(image)
            ts.append(time.perf_counter() - t0)
        out[name] = statistics.median(ts)
    return out


def spacing_table(spacings: list[float], trees: int, model) -> None:
    """Dice / clDice of the U-Net with and without the pixel size, per isocentre pixel size."""
    from autocar.synth.angiogram import render_angiogram
    from autocar.synth.cases import SynthCaseConfig, synthesize_case
    from autocar.synth.render import render_mask

    rows = {s: {"as is": [], "in mm": []} for s in spacings}
    for i in range(trees):
        sc = synthesize_case(SynthCaseConfig(side="left" if i % 2 == 0 else "right", frames=1, lag_range=(0, 0),
                                             view_b_delay_s=(0, 0)), rng=BENCH_SEED_BASE + i)
        tree, v0 = sc.truth[0], sc.case.views[0].view
        for iso in spacings:
            det = iso * v0.magnification
            size = int(round(140.0 / iso)) // 16 * 16
            view = v0.replace(spacing_mm=(det, det), rows=size, columns=size)
            image = render_angiogram(tree, view, rng=i, catheter=True)
            truth = render_mask(tree, view) > 0
            for key, spacing in (("as is", None), ("in mm", iso)):
                pred = segment_angiogram(image, model, spacing_mm=spacing)
                rows[iso][key].append((dice_2d(pred, truth), cl_dice_2d(pred, truth)))
    print(f"U-Net on {trees} held-out trees per pixel size (target {TARGET_SPACING_MM} mm/px)")
    print(f"{'mm/px':>6} {'size':>5} {'Dice as is':>11} {'in mm':>6} {'ratio':>6} {'clDice as is':>13} {'in mm':>6}")
    for iso, r in rows.items():
        a, b = np.array(r["as is"]), np.array(r["in mm"])
        print(f"{iso:6.2f} {int(round(140.0 / iso)) // 16 * 16:5d} {a[:, 0].mean():11.3f} {b[:, 0].mean():6.3f} "
              f"{b[:, 0].mean() / a[:, 0].mean():6.3f} {a[:, 1].mean():13.3f} {b[:, 1].mean():6.3f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--synthetic", type=int, default=40, help="number of held-out synthetic angiograms")
    p.add_argument("--synth-size", type=int, default=SynthConfig().size,
                   help="side of the synthetic angiograms, px (512 with --synth-scale 1,1: the pipeline's scale)")
    p.add_argument("--synth-scale", default=",".join(str(v) for v in SynthConfig().spacing_scale),
                   help="LOW,HIGH range of the pixel-spacing factor of the synthetic angiograms")
    p.add_argument("--dca1-dir", default=str(REPO.parent / "shared" / "data" / "dca1-angiograms"))
    p.add_argument("--weights", default=str(DEFAULT_WEIGHTS))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    p.add_argument("--spacings", default=None, help="comma-separated isocentre pixel sizes (mm): the pixel-size "
                   "table instead (see the module doc)")
    p.add_argument("--trees", type=int, default=6, help="trees of the --spacings table")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    model = load_model(a.weights)
    if a.spacings:
        spacing_table([float(x) for x in a.spacings.split(",")], a.trees, model)
        return
    results: dict = {"weights": a.weights, "threads": a.threads}

    low, high = (float(v) for v in a.synth_scale.split(","))
    synth_cfg = SynthConfig(size=a.synth_size, spacing_scale=(low, high))
    synth = [synthetic_angiogram(BENCH_SEED_BASE + i, synth_cfg) for i in range(a.synthetic)]
    results["synthetic"] = _score(synth, model)
    test_dir = Path(a.dca1_dir) / "Angios_40_testing"
    if test_dir.is_dir():
        results["dca1_testing"] = _score(load_dca1(test_dir), model)
    else:
        print(f"note: {test_dir} is absent, the real DCA1 testing half is skipped")
    big = synthetic_angiogram(BENCH_SEED_BASE - 1, SynthConfig(size=512)).image
    results["seconds_per_512px_image"] = _time(big, model, a.runs)

    print(f"weights: {a.weights}  (torch threads: {a.threads})")
    print(f"{'set':<14} {'method':<10} {'n':>3} {'Dice':>14} {'clDice':>14} {'catheter called vessel':>23}")
    for key in ("synthetic", "dca1_testing"):
        if key not in results:
            continue
        for method, s in results[key].items():
            print(
                f"{key:<14} {method:<10} {s['n']:>3} {s['dice']:>7.4f} +-{s['dice_std']:.3f}"
                f" {s['cldice']:>7.4f} +-{s['cldice_std']:.3f}"
                + (f" {s['catheter_as_vessel']:>23.3f}" if s["catheter_as_vessel"] is not None else "")
            )
    for method, t in results["seconds_per_512px_image"].items():
        print(f"time per 512 x 512 image, {method}: {t * 1000:.0f} ms")
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
