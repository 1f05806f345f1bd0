"""Pointing game: hits, misses, tolerance and the edge cases that must never count as hits."""
import pytest
import torch

from xaisurvey.evaluation import pointing_game, pointing_hit


def _mask(h, w, cells):
    m = torch.zeros(h, w, dtype=torch.bool)
    for r, c in cells:
        m[r, c] = True
    return m


def test_hit_and_miss():
    a = torch.zeros(4, 4)
    a[1, 2] = 3.0
    assert pointing_hit(a, _mask(4, 4, [(1, 2)])) is True
    assert pointing_hit(a, _mask(4, 4, [(3, 3)])) is False


def test_empty_mask_is_excluded_never_a_hit():
    a = torch.rand(4, 4)
    assert pointing_hit(a, torch.zeros(4, 4, dtype=torch.bool)) is None
    r = pointing_game([a, a], [torch.zeros(4, 4), _mask(4, 4, [(0, 0)])])
    assert r.hits[0] is None and r.n_excluded == 1 and r.n_scored == 1


def test_all_zero_map_is_a_miss_even_when_the_mask_covers_everything():
    assert pointing_hit(torch.zeros(3, 3), torch.ones(3, 3, dtype=torch.bool)) is False


def test_ties_need_every_peak_inside():
    a = torch.zeros(3, 3)
    a[0, 0] = a[2, 2] = 1.0
    assert pointing_hit(a, _mask(3, 3, [(0, 0)])) is False
    assert pointing_hit(a, _mask(3, 3, [(0, 0), (2, 2)])) is True


def test_tolerance_is_euclidean_distance():
    a = torch.zeros(5, 5)
    a[0, 0] = 1.0
    mask = _mask(5, 5, [(3, 4)])  # distance sqrt(9 + 16) = 5
    assert pointing_hit(a, mask, tolerance=4.99) is False
    assert pointing_hit(a, mask, tolerance=5.0) is True


def test_channels_are_summed_and_mask_can_be_float():
    a = torch.zeros(2, 3, 3)
    a[0, 1, 1] = 1.0
    a[1, 1, 1] = 1.0
    a[0, 0, 0] = 1.5  # one channel alone is higher, but the summed map peaks at (1, 1)
    assert pointing_hit(a, _mask(3, 3, [(1, 1)]).float()) is True


def test_game_accuracy():
    maps = torch.zeros(4, 3, 3)
    masks = torch.zeros(4, 3, 3, dtype=torch.bool)
    for i in range(4):
        maps[i, i % 3, 0] = 1.0
        masks[i, 0, 0] = True
    # images 0 and 3 peak at (0, 0): 2 hits out of 4
    r = pointing_game(maps, masks)
    assert r.hits == (True, False, False, True)
    assert r.accuracy == 0.5


def test_errors():
    with pytest.raises(ValueError, match="every mask is empty"):
        pointing_game([torch.rand(2, 2)], [torch.zeros(2, 2)])
    with pytest.raises(ValueError, match="2 maps but 1 masks"):
        pointing_game([torch.rand(2, 2)] * 2, [torch.ones(2, 2)])
    with pytest.raises(ValueError, match="mask shape"):
        pointing_hit(torch.rand(2, 2), torch.ones(3, 3))
    with pytest.raises(ValueError, match="NaN"):
        pointing_hit(torch.tensor([[float("nan"), 0.0]]), torch.ones(1, 2))
    with pytest.raises(ValueError, match="tolerance"):
        pointing_hit(torch.rand(2, 2), torch.ones(2, 2), tolerance=-1)
