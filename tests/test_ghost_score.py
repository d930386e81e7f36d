"""The learned ghost score (autocar.graph.ghost_score): features, fitting, AUC, and its use
as the order of ghost pruning on the four-fold ambiguity scene of tests/test_prune.py."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from autocar.graph.ghost_score import (
    FEATURES,
    GhostScorer,
    branch_features,
    branch_labels,
    default_scorer,
    fit_logistic,
    node_probability,
    weighted_auc,
)
from autocar.pipeline.ghost_training import train_ghost_scorer
from autocar.graph.prune import PruneConfig, prune_redundant_branches
from autocar.synth.render import render_mask

from test_prune import GHOSTS, VIEWS, Z, line_positions, lines

#: Both vessels as wide: widths cannot tell the ghosts (1 mm too) from them.
SAME_WIDTH = [(-15.0, 10.0, 1.0), (15.0, -10.0, 1.0)]
PROB_SCORER = GhostScorer(("prob_mean",), np.array([0.5]), np.array([0.25]), np.array([-4.0]), 0.0)


def _scene():
    truth = lines(SAME_WIDTH)
    masks = [render_mask(truth, v) for v in VIEWS]
    graph = lines(GHOSTS + SAME_WIDTH)  # nodes: ghosts first, then the vessels
    n = len(Z)
    return masks, graph, n


def test_weighted_auc_on_hand_computed_cases():
    # Pairs (positive, negative): (0.35 > 0.1), (0.35 < 0.4), (0.8 > both): 3 of 4.
    assert weighted_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]), np.ones(4)) == pytest.approx(0.75)
    # A tie counts half; weights multiply the pairs.
    assert weighted_auc(np.array([0.5, 0.5]), np.array([0, 1]), np.array([1.0, 3.0])) == pytest.approx(0.5)
    assert weighted_auc(np.array([0.1, 0.4, 0.35]), np.array([0, 0, 1]), np.array([1.0, 3.0, 1.0])) == pytest.approx(0.25)
    assert np.isnan(weighted_auc(np.array([0.1, 0.2]), np.array([1, 1]), np.ones(2)))


def test_fit_logistic_recovers_a_separating_direction():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, len(FEATURES)))
    logit = 3.0 * x[:, FEATURES.index("off_ridge_px")] - 2.0 * x[:, FEATURES.index("prob_mean")]
    y = (rng.random(400) < 1 / (1 + np.exp(-logit))).astype(float)
    s = fit_logistic(x, y, l2=1e-3)
    c = dict(zip(s.features, s.coef))
    assert c["off_ridge_px"] > 1.5 and c["prob_mean"] < -1.0
    assert max(abs(c[f]) for f in FEATURES if f not in ("off_ridge_px", "prob_mean")) < 0.6
    assert weighted_auc(s.ghost_probability(x), y, np.ones(400)) > 0.85
    # Round trip through the JSON form.
    t = GhostScorer.from_dict(json.loads(json.dumps(s.to_dict())))
    np.testing.assert_allclose(t.ghost_probability(x), s.ghost_probability(x))


def test_bad_inputs_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="shape"):
        fit_logistic(np.zeros((3, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="finite"):
        fit_logistic(np.full((3, len(FEATURES)), np.nan), np.zeros(3))
    with pytest.raises(ValueError, match="unknown features"):
        GhostScorer(("colour",), np.zeros(1), np.ones(1), np.zeros(1), 0.0)
    with pytest.raises(ValueError, match="scale"):
        GhostScorer(("tips",), np.zeros(1), np.zeros(1), np.zeros(1), 0.0)
    bad = tmp_path / "scorer.json"
    bad.write_text('{"scorer": {"features": ["tips"]}')
    with pytest.raises(ValueError, match="scorer.json"):
        GhostScorer.load(bad)
    with pytest.raises(ValueError, match="shape"):
        PROB_SCORER.ghost_probability(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="overlap"):
        train_ghost_scorer(tmp_path / "run", cases=4, seed=10, val_seed=12)
    with pytest.raises(ValueError, match="subset"):
        train_ghost_scorer(tmp_path / "run", cases=4, features=("colour",))
    assert not (tmp_path / "run").exists()


def test_node_probability_looks_up_the_voxel_each_node_lies_in():
    hull = SimpleNamespace(coords=np.array([[0, 0, 0], [0, 0, 1], [2, 1, 0]], np.int32),
                           origin_mm=np.array([-1.0, 0.0, 5.0]), voxel_mm=0.5)
    prob = np.array([0.1, 0.7, 0.9])
    nodes = np.array([[-1.0, 0.0, 5.5], [-0.05, 0.6, 5.1], [-1.0, 0.0, 5.0], [3.0, 3.0, 3.0], [-1.2, 0.1, 4.9]])
    np.testing.assert_allclose(node_probability(hull, prob, nodes), [0.7, 0.9, 0.1, 0.0, 0.1])


def test_branch_features_tell_the_four_lines_apart():
    masks, graph, n = _scene()
    branches = graph.branches()
    shares = np.full((2, len(branches)), 0.0)
    prob = np.r_[np.full(2 * n, 0.2), np.full(2 * n, 0.9)]
    x = branch_features(graph, branches, masks, VIEWS, shares, np.zeros(len(branches)), prob)
    assert x.shape == (4, len(FEATURES))
    col = {f: x[:, k] for k, f in enumerate(FEATURES)}
    # (x, y) = (-15, -10) and (15, 10) are the ghosts: x * y > 0.
    ghost = np.array([graph.nodes[b[0], 0] * graph.nodes[b[0], 1] > 0 for b in branches])
    np.testing.assert_allclose(col["prob_mean"][ghost], 0.2)
    np.testing.assert_allclose(col["prob_mean"][~ghost], 0.9)
    np.testing.assert_allclose(col["tips"], 2.0)  # every line has two free ends
    np.testing.assert_allclose(col["log_length"], np.log1p(Z[-1] - Z[0]))
    np.testing.assert_allclose(col["radius_mm"], 1.0)
    # Vertical lines run across both rays: no depth spread; all four project onto the skeletons.
    np.testing.assert_allclose(col["depth_spread"], 0.0, atol=1e-9)
    assert np.all(col["off_ridge_px"] < 2.5)


def test_the_scorer_orders_the_pruning():
    masks, graph, n = _scene()
    believed = np.r_[np.full(2 * n, 0.1), np.full(2 * n, 0.9)]  # network believes the vessels
    pruned, report = prune_redundant_branches(graph, masks, VIEWS, scorer=PROB_SCORER, node_prob=believed)
    assert line_positions(pruned) == {(-15, 10), (15, -10)} and report.removed == 2
    # The same scene with the belief reversed keeps the ghosts: the score, not the
    # widths (all equal here), decided.
    pruned, _ = prune_redundant_branches(graph, masks, VIEWS, scorer=PROB_SCORER, node_prob=believed[::-1])
    assert line_positions(pruned) == {(-15, -10), (15, 10)}


def test_sure_ghosts_go_even_when_they_explain_pixels_alone():
    # One ghost and one of the two vessels: the ghost alone explains the missing
    # vessel's pixels in one view, so it is not redundant.
    truth = lines(SAME_WIDTH)
    masks = [render_mask(truth, v) for v in VIEWS]
    graph = lines(GHOSTS[:1] + SAME_WIDTH[:1])
    n = len(Z)
    belief = np.r_[np.full(n, 0.05), np.full(n, 0.9)]
    kept, report = prune_redundant_branches(graph, masks, VIEWS, scorer=PROB_SCORER, node_prob=belief)
    assert kept.num_nodes == graph.num_nodes and report.removed == 0
    gone, report = prune_redundant_branches(graph, masks, VIEWS, PruneConfig(max_ghost_probability=0.9),
                                            scorer=PROB_SCORER, node_prob=belief)
    assert line_positions(gone) == {(-15, 10)} and report.removed == 1


def test_examples_and_labels():
    masks, graph, n = _scene()
    ex: list = []
    prune_redundant_branches(graph, masks, VIEWS, examples=ex)
    (feats, branches, g), = ex
    assert feats.shape == (4, len(FEATURES)) and g is graph
    y, w = branch_labels(graph, branches, lines(SAME_WIDTH))
    is_ghost = np.array([graph.nodes[b[0], 0] * graph.nodes[b[0], 1] > 0 for b in branches])
    np.testing.assert_array_equal(y, is_ghost.astype(float))
    np.testing.assert_allclose(w, Z[-1] - Z[0])


def test_shipped_scorer_loads_and_finds_low_belief_off_ridge_branches_ghostly():
    s = default_scorer()
    assert set(s.features) <= set(FEATURES)
    x = np.zeros((2, len(FEATURES)))
    x[:, FEATURES.index("log_length")] = np.log1p(20.0)
    x[:, FEATURES.index("radius_mm")] = 1.0
    x[0, FEATURES.index("prob_mean")] = x[0, FEATURES.index("prob_low")] = 0.95
    x[1, FEATURES.index("off_ridge_px")] = 4.0
    p = s.ghost_probability(x)
    assert p[1] > p[0]


@pytest.mark.slow  # long: runs in CI after the default tests (.ci/run)
def test_training_command_writes_a_loadable_scorer(tmp_path):
    from typer.testing import CliRunner

    from autocar.cli import app

    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["train-ghost-scorer", str(out), "--cases", "2", "--val-cases", "1", "--rounds", "1",
                                   "--features", "width_mismatch,off_ridge_px,log_length"])
    assert res.exit_code == 0, res.output
    assert "validation AUC" in res.output
    data = json.loads((out / "ghost_scorer.json").read_text())
    assert data["config"]["features"] == ["width_mismatch", "off_ridge_px", "log_length"]
    s = GhostScorer.load(out / "ghost_scorer.json")
    assert s.features == ("width_mismatch", "off_ridge_px", "log_length")
    ex = np.load(out / "examples.npz")
    assert ex["x"].shape[1] == len(FEATURES) and len(ex["x"]) == len(ex["y"]) == len(ex["w"]) > 10
    assert set(np.unique(ex["y"])) <= {0.0, 1.0} and np.all(ex["w"] > 0)
    assert len((out / "train_log.jsonl").read_text().splitlines()) == 3  # 2 training pairs + 1 validation
    # Off-ridge branches are the ghosts in any sensible fit.
    assert dict(zip(s.features, s.coef))["off_ridge_px"] > 0
