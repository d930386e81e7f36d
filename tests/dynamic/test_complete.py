from __future__ import annotations

import numpy as np
import pytest

from autocar.geometry.centerline import CenterlineGraph
from autocar.dynamic.complete import complete_from_frames, drop_unsupported_branches, fill_gaps, invert_deformation
from autocar.dynamic.track import TrackConfig, track_tree
from autocar.errors import ShapeError
from autocar.geometry import CArmView
from autocar.synth.render import render_mask
from autocar.synth.trees import generate_tree

VIEWS = [CArmView(30.0, 0.0, 1000.0, 750.0, (0.4, 0.4), 384, 384),
         CArmView(-30.0, 25.0, 1000.0, 750.0, (0.4, 0.4), 384, 384)]
SHIFT = np.array([1.5, -1.0, 2.0])


def _without_leaf_branch(tree: CenterlineGraph, min_mm: float = 10.0) -> tuple[CenterlineGraph, np.ndarray]:
    """The tree with its longest leaf branch (>= min_mm) removed but for the junction node;
    returns (reduced tree, removed node indices of ``tree``)."""
    deg = tree.degrees()
    best, best_len = None, 0.0
    for b in tree.branches():
        if deg[b[0]] >= 3 and deg[b[-1]] == 1 or deg[b[-1]] >= 3 and deg[b[0]] == 1:
            length = float(np.linalg.norm(np.diff(tree.nodes[b], axis=0), axis=1).sum())
            if length > best_len:
                best, best_len = b, length
    assert best is not None and best_len >= min_mm
    removed = best[1:] if deg[best[0]] >= 3 else best[:-1]
    return _without_nodes(tree, removed), removed


def _without_nodes(tree: CenterlineGraph, removed: np.ndarray) -> CenterlineGraph:
    """``tree`` without the nodes ``removed`` and their edges (the others renumbered in order)."""
    keep = np.setdiff1d(np.arange(tree.num_nodes), removed)
    new_index = -np.ones(tree.num_nodes, np.int64)
    new_index[keep] = np.arange(len(keep))
    e = tree.edges[np.all(new_index[tree.edges] >= 0, axis=1)]
    return CenterlineGraph(tree.nodes[keep], tree.radii[keep], new_index[e])


def _statics_with(reduced: CenterlineGraph, extra: CenterlineGraph) -> list[CenterlineGraph]:
    """Static trees of the 4-frame world: the reduced tree in frame 0, the reduced tree plus
    ``extra`` (given at rest) in frames 1-3, each moved by its shift."""
    statics = [reduced]
    for s in (1, 2, 3):
        statics.append(CenterlineGraph(np.vstack([reduced.nodes, extra.nodes]) + s * SHIFT,
                                       np.concatenate([reduced.radii, extra.radii]),
                                       np.vstack([reduced.edges, extra.edges + reduced.num_nodes])))
    return statics


@pytest.fixture(scope="module")
def world():
    tree = generate_tree("left", rng=7, n_stenoses=0).graph
    reduced, removed = _without_leaf_branch(tree)
    frames = [tree.with_nodes(tree.nodes + s * SHIFT) for s in range(4)]
    masks = [np.stack([render_mask(g, v) for g in frames]) for v in VIEWS]
    # The reference frame (0) lost one branch; frames 1-3 (moved by SHIFT, 2 SHIFT, 3 SHIFT) have
    # the whole tree.
    track = track_tree(reduced, 0, VIEWS, masks, config=TrackConfig(iterations=20, refine_reference=False))
    return tree, reduced, removed, frames, masks, track


def test_inverse_deformation_round_trip(world):
    _, reduced, _, _, _, track = world
    rng = np.random.default_rng(0)
    rest = reduced.nodes[::7] + rng.normal(0.0, 2.0, (len(reduced.nodes[::7]), 3))
    moved = track.move_points(rest, 1)
    assert np.median(np.linalg.norm(moved - rest - SHIFT, axis=1)) < 0.4  # the tracked shift
    back = invert_deformation(track, 1, moved)
    assert np.abs(back - rest).max() < 0.01
    with pytest.raises(ShapeError):
        invert_deformation(track, 1, moved[:, :2])


def test_branch_lost_in_reference_is_taken_from_another_frame(world):
    tree, reduced, removed, frames, masks, track = world
    out, rest, added = complete_from_frames(track, reduced, [reduced, *frames[1:]], masks, VIEWS,
                                            bridge_gap_mm=0)
    assert added >= 1
    n = reduced.num_nodes
    assert rest.num_nodes > n and len(out.graphs) == 4
    for k in range(4):  # the reference's own nodes keep their tracked positions, same topology in all frames
        assert np.array_equal(out.graphs[k].nodes[:n], track.graphs[k].nodes)
        assert np.array_equal(out.graphs[k].edges, rest.edges)
    assert rest.is_forest() and rest.components().max() == reduced.components().max()
    # The added nodes lie on the lost branch: at rest in the reference frame, moved by SHIFT in frame 1.
    lost = tree.nodes[removed]
    new_rest = rest.nodes[n:]
    d_rest = np.linalg.norm(new_rest[:, None] - lost[None], axis=2).min(axis=1)
    assert np.median(d_rest) < 0.5, np.median(d_rest)
    d_frame1 = np.linalg.norm(out.graphs[1].nodes[n:, None] - (lost + SHIFT)[None], axis=2).min(axis=1)
    assert np.median(d_frame1) < 0.5
    # ... and they cover it.
    cover = np.linalg.norm(lost[:, None] - new_rest[None], axis=2).min(axis=1)
    assert np.mean(cover < 1.0) > 0.8


def test_nothing_new_in_other_frames_changes_nothing(world):
    _, reduced, _, _, masks, track = world
    moved = [reduced.with_nodes(reduced.nodes + s * SHIFT) for s in (1, 2, 3)]
    out, rest, added = complete_from_frames(track, reduced, [reduced, *moved], masks, VIEWS)
    assert added == 0 and out is track and rest.num_nodes == reduced.num_nodes


def test_branch_seen_in_too_few_frames_is_not_added(world):
    tree, reduced, _, frames, masks, track = world
    # Frames 1 and 2 have the lost branch, frame 3 lost it too: frame 1's branch is supported by one
    # other frame only (the default asks for two), frame 2's likewise.
    lost3 = reduced.with_nodes(reduced.nodes + 3 * SHIFT)
    statics = [reduced, frames[1], frames[2], lost3]
    _, rest, added = complete_from_frames(track, reduced, statics, masks, VIEWS, bridge_gap_mm=0)
    assert added == 0 and rest.num_nodes == reduced.num_nodes
    _, rest, added = complete_from_frames(track, reduced, statics, masks, VIEWS, bridge_gap_mm=0,
                                          min_support_frames=1)
    assert added >= 1 and rest.num_nodes > reduced.num_nodes


def test_piece_not_attached_to_the_tree_is_not_added(world):
    tree, reduced, removed, frames, masks, track = world
    # Frames 1 and 2 hold only the part of the lost branch farther than 4 mm from the tree (the
    # longest such run of nodes): it would float beside the tree.
    lost = tree.nodes[removed]
    far = np.linalg.norm(lost[:, None] - reduced.nodes[None], axis=2).min(axis=1) > 4.0
    runs = np.split(np.arange(len(lost)), np.flatnonzero(np.diff(far.astype(int))) + 1)
    idx = max((r for r in runs if far[r[0]]), key=len)
    assert len(idx) > 20
    piece = CenterlineGraph(lost[idx], tree.radii[removed][idx], np.stack([np.arange(len(idx) - 1),
                                                                          np.arange(1, len(idx))], axis=1))
    statics = _statics_with(reduced, piece)
    _, rest, added = complete_from_frames(track, reduced, statics, masks, VIEWS, bridge_gap_mm=0)
    assert added == 0 and rest.num_nodes == reduced.num_nodes


def test_branch_off_the_masks_is_not_added(world):
    _, reduced, _, _, masks, track = world
    # A 20 mm ghost in empty space next to the tree: no vessel pixel explains it.
    lo, hi = reduced.bounds()
    start = hi + 15.0
    line = start + np.linspace(0.0, 1.0, 21)[:, None] * np.array([20.0, 0.0, 0.0])
    ghost = CenterlineGraph(line, np.full(21, 1.5), np.stack([np.arange(20), np.arange(1, 21)], axis=1))
    statics = _statics_with(reduced, ghost)
    _, rest, added = complete_from_frames(track, reduced, statics, masks, VIEWS, bridge_gap_mm=0,
                                          min_support_frames=0)
    assert added == 0 and rest.num_nodes == reduced.num_nodes


def test_bad_inputs(world):
    _, reduced, _, frames, masks, track = world
    with pytest.raises(ShapeError, match="static graphs"):
        complete_from_frames(track, reduced, [reduced], masks, VIEWS)
    with pytest.raises(ShapeError, match="node count"):
        complete_from_frames(track, frames[0], [reduced, *frames[1:]], masks, VIEWS)


def test_piece_continuing_a_vessel_is_joined_at_its_end_not_before_it():
    from autocar.dynamic.complete import _join_at_free_ends

    # Old tree: a 10 mm line (nodes 0..10 on x) with a side branch at node 3; a new piece
    # continues the line beyond node 10 but was joined (nearest node) to node 9.
    line = np.c_[np.arange(11.0), np.zeros(11), np.zeros(11)]
    side = np.c_[np.full(4, 3.0), np.arange(1.0, 5.0), np.zeros(4)]
    piece = np.c_[np.arange(10.6, 15.0), np.full(5, 0.8), np.zeros(5)]
    nodes = np.vstack([line, side, piece])
    old_edges = [[i, i + 1] for i in range(10)] + [[3, 11], [11, 12], [12, 13], [13, 14]]
    new_edges = [[15 + i, 16 + i] for i in range(4)]
    joined = CenterlineGraph(nodes, np.ones(len(nodes)), np.array(old_edges + new_edges + [[9, 15], [6, 15]]))
    out = _join_at_free_ends(joined, 15)
    assert [9, 15] not in out.edges.tolist() and [10, 15] in out.edges.tolist()
    assert [6, 15] in out.edges.tolist()  # node 6 lies 4 mm from every free end: kept
    assert np.array_equal(out.edges[: len(old_edges) + len(new_edges)], joined.edges[: len(old_edges) + len(new_edges)])


def _alongside(y: float, side_at: int) -> tuple[CenterlineGraph, int]:
    """An old 10 mm line (nodes 0..10 on x) with a 4 mm side branch at node ``side_at``, and a
    new piece that starts beside node 6 at height y mm, runs alongside the line's last 4 mm
    and goes on 4.4 mm beyond its end, with a 2 mm side branch at its third node. The piece is
    joined (nearest node) to node 6. Returns the graph and its number of old nodes."""
    line = np.c_[np.arange(11.0), np.zeros(11), np.zeros(11)]
    side = np.c_[np.full(4, float(side_at)), -np.arange(1.0, 5.0), np.zeros(4)]
    piece = np.c_[np.arange(6.4, 15.0), np.full(9, y), np.zeros(9)]
    twig = np.c_[np.full(2, 8.4), y + np.arange(1.0, 3.0), np.zeros(2)]
    nodes = np.vstack([line, side, piece, twig])
    old = [[i, i + 1] for i in range(10)] + [[side_at, 11], [11, 12], [12, 13], [13, 14]]
    new = [[15 + i, 16 + i] for i in range(8)] + [[17, 24], [24, 25]]
    return CenterlineGraph(nodes, np.ones(len(nodes)), np.array(old + new + [[6, 15]])), 15


def test_piece_alongside_a_vessels_end_is_joined_at_the_end_and_its_double_dropped():
    from autocar.dynamic.complete import _attached, _join_at_free_ends

    joined, n_old = _alongside(0.5, side_at=3)
    out = _join_at_free_ends(joined, n_old)
    # The free end (node 10) lies 4 mm from node 6, beyond the 3 mm reach, but the 4 mm
    # stretch 6..10 runs 0.64 mm from the piece: joined at 10 to the piece's node at
    # x = 10.4 (now node 15), the piece's nodes at x = 6.4..9.4 dropped.
    assert np.array_equal(out.nodes[:n_old], joined.nodes[:n_old])
    assert np.array_equal(out.edges[:14], joined.edges[:14])
    assert [10, 15] in out.edges.tolist()
    assert np.allclose(out.nodes[15], [10.4, 0.5, 0.0])
    assert out.num_nodes == joined.num_nodes - 4
    assert not any(6 in e and max(e) >= n_old for e in out.edges.tolist())
    # The piece's side branch hung on a dropped node: it no longer reaches the tree.
    kept, pieces = _attached(out, n_old)
    assert pieces == 1 and kept.num_nodes == n_old + 5
    assert np.allclose(kept.nodes[n_old:, 0], np.arange(10.4, 15.0))
    assert len(set(kept.components().tolist())) == 1


@pytest.mark.parametrize("y, side_at", [(1.5, 3), (0.5, 8)], ids=["piece-2-mm-off", "stretch-meets-a-junction"])
def test_piece_beside_a_vessel_is_not_moved_when_it_is_not_the_vessels_end_going_on(y, side_at):
    from autocar.dynamic.complete import _join_at_free_ends

    # 1.5 mm beside the line (more than 1 mm), or the stretch from node 6 to the free end
    # passes a junction at node 8 (a vessel goes on there): the join stays at node 6.
    joined, n_old = _alongside(y, side_at)
    out = _join_at_free_ends(joined, n_old)
    assert np.array_equal(out.edges, joined.edges) and out.num_nodes == joined.num_nodes


def test_branch_no_other_frame_shows_is_dropped(world):
    _, reduced, _, _, _, track = world
    # The other frames' static trees all lack one more leaf branch of the reference's tree.
    smaller, gone = _without_leaf_branch(reduced, min_mm=5.0)
    statics = [reduced] + [smaller.with_nodes(smaller.nodes + s * SHIFT) for s in (1, 2, 3)]
    out, rest, dropped = drop_unsupported_branches(track, reduced, statics)
    assert dropped == 1
    kept = np.setdiff1d(np.arange(reduced.num_nodes), gone)
    assert rest.num_nodes == len(kept) == smaller.num_nodes
    assert np.array_equal(rest.nodes, reduced.nodes[kept]) and np.array_equal(rest.edges, smaller.edges)
    for k in range(4):  # every frame keeps the tracked positions of the kept nodes
        assert np.array_equal(out.graphs[k].nodes, track.graphs[k].nodes[kept])
        assert np.array_equal(out.graphs[k].edges, rest.edges)
    # Shown by one of the three other frames: kept (by default only what no other frame shows goes).
    statics[1] = reduced.with_nodes(reduced.nodes + SHIFT)
    _, rest, dropped = drop_unsupported_branches(track, reduced, statics)
    assert dropped == 0 and rest.num_nodes == reduced.num_nodes
    _, _, dropped = drop_unsupported_branches(track, reduced, statics, max_support_frames=1)
    assert dropped == 1
    # Too few other frames to judge: nothing is dropped.
    _, _, dropped = drop_unsupported_branches(track, reduced, [reduced, statics[2], statics[3], None])
    assert dropped == 0


def test_branches_every_frame_shows_are_kept(world):
    _, reduced, _, _, _, track = world
    statics = [reduced] + [reduced.with_nodes(reduced.nodes + s * SHIFT) for s in (1, 2, 3)]
    out, rest, dropped = drop_unsupported_branches(track, reduced, statics)
    assert dropped == 0 and out is track and rest is reduced
    with pytest.raises(ShapeError, match="static graphs"):
        drop_unsupported_branches(track, reduced, statics[:2])


def _line(x0: float, x1: float, y: float = 0.0) -> CenterlineGraph:
    """A straight vessel along x from x0 to x1 mm, nodes 1 mm apart, at height y mm."""
    x = np.arange(x0, x1 + 0.5, 1.0)
    nodes = np.stack([x, np.full_like(x, y), np.zeros_like(x)], axis=1)
    e = np.arange(len(x) - 1)
    return CenterlineGraph(nodes, np.full(len(x), 1.0), np.stack([e, e + 1], axis=1))


def _union(*graphs: CenterlineGraph) -> CenterlineGraph:
    nodes, radii, edges, n = [], [], [], 0
    for g in graphs:
        nodes.append(g.nodes), radii.append(g.radii), edges.append(g.edges + n)
        n += g.num_nodes
    return CenterlineGraph(np.vstack(nodes), np.concatenate(radii), np.vstack(edges))


def test_fill_gaps_closes_a_gap_another_reconstruction_spans():
    tree = _union(_line(0, 14), _line(26, 40))  # 11 mm gap between x = 14 and x = 26
    other = _line(0, 40, y=0.3)
    out, groups = fill_gaps(tree, other)
    assert groups == 1
    assert np.array_equal(out.nodes[:tree.num_nodes], tree.nodes)
    # other's nodes farther than 1.5 mm from the tree: x = 16 ... 24 (x = 15: 1.04 mm from x = 14)
    assert np.allclose(np.sort(out.nodes[tree.num_nodes:, 0]), np.arange(16.0, 25.0))
    assert out.is_forest() and out.components().max() == 0
    assert out.num_edges == out.num_nodes - 1
    assert out.edge_lengths().max() < 2.1  # joined to the nearest tree nodes, no long jumps


def test_fill_gaps_leaves_long_stretches_dead_ends_and_parallel_paths():
    tree = _union(_line(0, 14), _line(26, 40))
    other = _line(0, 40, y=0.3)
    out, groups = fill_gaps(tree, other, max_gap_mm=5.0)  # the stretch is 8 mm long
    assert groups == 0 and out is tree
    # A stretch that leaves one piece and ends (a branch the tree does not have) is no gap.
    spur = _union(_line(0, 14, y=0.3), _line(15, 22, y=0.3))
    spur = CenterlineGraph(spur.nodes, spur.radii, np.vstack([spur.edges, [[14, 15]]]))
    out, groups = fill_gaps(tree, spur)
    assert groups == 0 and out is tree
    # Two stretches across the same gap: one is taken, the result stays a tree.
    out, groups = fill_gaps(tree, _union(_line(0, 40, y=0.3), _line(0, 40, y=-0.4)))
    assert groups == 1 and out.is_forest() and out.components().max() == 0
    assert out.num_edges == out.num_nodes - 1
    # Nothing to fill from.
    assert fill_gaps(tree, CenterlineGraph(np.zeros((0, 3)), np.zeros(0), np.zeros((0, 2), np.int64)))[1] == 0


def _with_middle_gap(tree: CenterlineGraph, gap_mm: float = 6.0) -> tuple[CenterlineGraph, np.ndarray]:
    """The tree without ``gap_mm`` in the middle of its longest branch (the lumen the network
    loses at a tight stenosis); returns (forest, removed node indices of ``tree``)."""
    best = max(tree.branches(), key=lambda b: float(np.linalg.norm(np.diff(tree.nodes[b], axis=0), axis=1).sum()))
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(tree.nodes[best], axis=0), axis=1))])
    assert s[-1] >= 4 * gap_mm
    removed = best[(s > 0.5 * s[-1] - 0.5 * gap_mm) & (s < 0.5 * s[-1] + 0.5 * gap_mm)]
    return _without_nodes(tree, removed), removed


def test_gap_the_reference_lost_in_a_vessel_is_filled_from_other_frames():
    tree = generate_tree("right", rng=3, n_stenoses=0).graph
    reduced, removed = _with_middle_gap(tree)
    assert reduced.components().max() == tree.components().max() + 1
    frames = [tree.with_nodes(tree.nodes + s * SHIFT) for s in range(4)]
    masks = [np.stack([render_mask(g, v) for g in frames]) for v in VIEWS]
    track = track_tree(reduced, 0, VIEWS, masks, config=TrackConfig(iterations=20, refine_reference=False))
    statics = [reduced, *frames[1:]]
    # Whole branches only: the branch through the gap is mostly on the tree already.
    _, _, added = complete_from_frames(track, reduced, statics, masks, VIEWS, bridge_gap_mm=0, max_fill_mm=0)
    assert added == 0
    out, rest, added = complete_from_frames(track, reduced, statics, masks, VIEWS, bridge_gap_mm=0)
    assert added == 1
    assert rest.is_forest() and rest.components().max() == tree.components().max()
    lost = tree.nodes[removed]
    # the added stretch lies on the lost one (within the tracking's error of ~0.5 mm)
    cover = np.linalg.norm(lost[:, None] - rest.nodes[None, reduced.num_nodes:], axis=2).min(axis=1)
    assert np.median(cover) < 1.0 and cover.max() < 1.5, cover
