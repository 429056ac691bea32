from __future__ import annotations

import itertools

import numpy as np
import pytest

from ferkit.video import Tracker, assign_min_cost, track_rows


def _consistent(df) -> bool:
    """Each true id maps to exactly one track id and vice versa."""
    pairs = df.groupby("true_id")["face_id"].nunique()
    back = df.groupby("face_id")["true_id"].nunique()
    return bool((pairs == 1).all() and (back == 1).all())


@pytest.mark.parametrize("shape", [(3, 3), (2, 5), (5, 2), (4, 4)])
def test_hungarian_matches_brute_force(shape):
    rng = np.random.default_rng(sum(shape))
    for _ in range(20):
        c = rng.random(shape)
        got = assign_min_cost(c)
        n = min(shape)
        best = min((sum(c[i, j] if shape[0] <= shape[1] else c[j, i] for i, j in zip(range(n), perm)), perm)
                   for perm in itertools.permutations(range(max(shape)), n))
        assert len(got) == n
        assert sum(c[r, k] for r, k in got) == pytest.approx(best[0])


def test_hungarian_gating_and_empty():
    assert assign_min_cost(np.zeros((0, 3))) == []
    c = np.array([[0.1, 1e9], [1e9, 1e9]])
    assert assign_min_cost(c, 1e9) == [(0, 0)]


def test_crossing_faces_keep_their_ids(make_rows):
    # two faces move slowly towards each other, overlap, and pass (3 px per frame, boxes 80 px)
    a = [(f, (100 + 3 * f, 100, 80, 80), "happy") for f in range(120)]
    b = [(f, (460 - 3 * f, 104, 80, 80), "sad") for f in range(120)]
    df = track_rows(make_rows({0: a, 1: b}))
    assert df["face_id"].nunique() == 2
    assert _consistent(df)


def test_crossing_with_missed_detections_during_overlap(make_rows):
    a = [(f, (100 + 3 * f, 100, 80, 80), "happy") for f in range(120)]
    b = [(f, (460 - 3 * f, 100, 80, 80), "sad") for f in range(120) if not 50 <= f < 70]  # hidden while crossing
    df = track_rows(make_rows({0: a, 1: b}))
    assert _consistent(df)


def test_disappear_and_reappear_within_and_beyond_max_missed(make_rows):
    box = (200, 100, 90, 90)
    short_gap = [(f, box, "happy") for f in range(0, 30)] + [(f, box, "happy") for f in range(40, 60)]
    df = track_rows(make_rows({0: short_gap}), max_missed=15)
    assert df["face_id"].nunique() == 1
    long_gap = [(f, box, "happy") for f in range(0, 30)] + [(f, box, "happy") for f in range(80, 100)]
    df = track_rows(make_rows({0: long_gap}), max_missed=15)
    assert sorted(df["face_id"].unique()) == [0, 1]  # a new id after the track retired


def test_new_face_gets_new_id_and_far_jump_is_new(make_rows):
    a = [(f, (100, 100, 80, 80), "happy") for f in range(50)]
    b = [(f, (400, 300, 80, 80), "sad") for f in range(20, 50)]  # enters at frame 20
    df = track_rows(make_rows({0: a, 1: b}))
    assert _consistent(df) and df["face_id"].nunique() == 2
    assert df.loc[df["true_id"] == 1, "face_id"].iloc[0] == 1


def test_missed_frames_counted_in_analysis_steps(make_rows):
    # every 5th frame analysed: a gap of 10 analysed frames is 50 frame indices
    box = (200, 100, 90, 90)
    rows = [(f, box, "happy") for f in range(0, 100, 5)] + [(f, box, "happy") for f in range(150, 200, 5)]
    df = track_rows(make_rows({0: rows}), max_missed=12)
    assert df["face_id"].nunique() == 1


def test_tracker_update_api_and_reset():
    t = Tracker()
    assert t.update(0, 0.0, [[0, 0, 50, 50], [200, 0, 50, 50]]).tolist() == [0, 1]
    assert t.update(1, 0.04, [[202, 1, 50, 50], [1, 0, 50, 50]]).tolist() == [1, 0]
    assert t.update(2, 0.08, np.zeros((0, 4))).tolist() == []
    t.reset("next")
    assert t.update(0, 0.0, [[500, 0, 50, 50]]).tolist() == [0]


def test_random_walk_many_faces_is_fast_and_stable(make_rows):
    rng = np.random.default_rng(0)
    tracks = {}
    for k in range(4):
        x, y = 150 + 300 * k, 200.0
        items = []
        for f in range(300):
            x += rng.normal(0, 1.5)
            y += rng.normal(0, 1.5)
            if rng.random() > 0.1:  # 10 % missed detections
                items.append((f, (x, y, 100, 100), "neutral"))
        tracks[k] = items
    df = track_rows(make_rows(tracks))
    assert _consistent(df)
