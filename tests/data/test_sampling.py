"""Sampled indices, exactly: TSN sparse training and test offsets, dense runs, multi-clip, short videos."""

import numpy as np
import pytest

from ean.data.sampling import SegmentSampler, expand_offsets, sparse_test_offsets, sparse_train_offsets


class FixedRng:
    """Returns the given draws from ``integers`` and records the bounds asked for."""

    def __init__(self, draws):
        self.draws, self.calls = np.asarray(draws), []

    def integers(self, high, size):
        self.calls.append((high, size))
        return self.draws[:size]


def test_train_offsets_take_one_random_frame_per_segment():
    rng = FixedRng([0, 1, 2, 3, 4, 0, 4, 2])
    offsets = sparse_train_offsets(40, 8, 1, rng)
    assert rng.calls == [(5, 8)]  # segments of 5 frames
    assert offsets.tolist() == [0, 6, 12, 18, 24, 25, 34, 37]


def test_train_offsets_stay_inside_their_segments():
    rng = np.random.default_rng(0)
    for num_frames in (16, 37, 100, 301):
        for _ in range(20):
            offsets = sparse_train_offsets(num_frames, 8, 1, rng)
            segment = num_frames // 8
            assert ((offsets // segment) == np.arange(8)).all()


def test_train_offsets_for_dense_runs_leave_room_for_l_frames():
    rng = FixedRng([3] * 8)  # the largest draw in segments of (40 - 5 + 1) // 8 = 4 frames
    offsets = sparse_train_offsets(40, 8, 5, rng)
    assert rng.calls == [(4, 8)]
    assert offsets.tolist() == [3, 7, 11, 15, 19, 23, 27, 31]
    assert offsets.max() + 5 <= 40


def test_short_videos_are_handled_as_tsn_does():
    # more frames than segments but fewer than T * L: sorted random starts among the valid ones
    rng = FixedRng([5, 0, 3, 3, 1, 5, 2, 0])
    assert sparse_train_offsets(10, 8, 5, rng).tolist() == [0, 0, 1, 2, 3, 3, 5, 5]
    assert rng.calls == [(6, 8)]
    # fewer frames than segments: every segment starts at frame 0; exactly T frames: one each
    assert sparse_train_offsets(7, 8, 1, np.random.default_rng(0)).tolist() == [0] * 8
    assert sparse_train_offsets(8, 8, 1, np.random.default_rng(0)).tolist() == list(range(8))
    assert sparse_train_offsets(3, 8, 1, np.random.default_rng(0)).tolist() == [0] * 8


def test_test_offsets_are_segment_centres():
    assert sparse_test_offsets(40, 8, 1).tolist() == [2, 7, 12, 17, 22, 27, 32, 37]
    assert sparse_test_offsets(40, 8, 5).tolist() == [2, 6, 11, 15, 20, 24, 29, 33]  # tick 36 / 8 = 4.5
    assert sparse_test_offsets(4, 8, 1).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]  # short: frames repeat evenly


def test_k_test_clips_start_at_c_over_k_of_every_segment_as_the_authors_place_them():
    """The authors' ``_get_test_indices``: ``int(tick * x)`` and ``int(tick * x + tick / 2.0)`` for 2 clips,
    ``int(tick * x + tick * c / k)`` for 3 and 5 (their frame numbers start at 1, ours at 0)."""
    assert sparse_test_offsets(40, 8, 1, clip=0, clips=2).tolist() == [0, 5, 10, 15, 20, 25, 30, 35]
    assert sparse_test_offsets(40, 8, 1, clip=1, clips=2).tolist() == [2, 7, 12, 17, 22, 27, 32, 37]
    for clips in (2, 3, 5, 10):
        tick = (37 - 5 + 1) / 8
        for clip in range(clips):
            authors = [int(tick * x + tick * clip / clips) for x in range(8)]
            assert sparse_test_offsets(37, 8, 5, clip=clip, clips=clips).tolist() == authors


def test_dense_runs_repeat_the_last_frame_past_the_end():
    assert expand_offsets(np.array([0, 3]), 5, 6).tolist() == [[0, 1, 2, 3, 4], [3, 4, 5, 5, 5]]
    sampler = SegmentSampler(num_segments=8, frames_per_segment=5)
    assert sampler.test(3)[0].tolist() == [[0, 1, 2, 2, 2]] * 8


def test_sampler_shapes_and_reproducibility():
    sampler = SegmentSampler(num_segments=8, frames_per_segment=5, test_clips=3)
    assert sampler.train(50, np.random.default_rng(1)).shape == (8, 5)
    assert sampler.test(50).shape == (3, 8, 5)
    a = sampler.train(50, np.random.default_rng(7))
    b = sampler.train(50, np.random.default_rng(7))
    assert (a == b).all()
    runs = sampler.test(50)[0]
    assert (np.diff(runs, axis=1) == 1).all()  # 5 consecutive frames per segment


def test_sampler_rejects_nonsense():
    with pytest.raises(ValueError):
        SegmentSampler(num_segments=0)
