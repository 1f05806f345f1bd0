"""GradSUM on hand-made masks with the arithmetic written out."""
import math

import pytest
import torch

from xaisurvey.evaluation import category_masks, gradsum, gradsum_profile

# A 3 x 4 image: road (label 3) on the bottom row, car (label 8) two pixels, sky (0) elsewhere.
SEG = torch.tensor([
    [0, 0, 0, 0],
    [0, 8, 8, 0],
    [3, 3, 3, 3],
])
M = torch.tensor([
    [0.0, 0.0, 0.0, 0.0],
    [0.0, 2.0, 1.0, 0.0],
    [1.0, 0.0, 0.0, 0.0],
])
CATS = {"sky": [0], "car": [8], "road": [3, 4], "person": [9]}


def test_gradsum_hand_arithmetic():
    r = gradsum(M, SEG, CATS)
    # normalised M = M / 2: car pixels 1.0 and 0.5, road pixels 0.5, 0, 0, 0, sky all 0
    # G[car]  = 100 * (1.0 + 0.5) / 2 = 75
    # G[road] = 100 * 0.5 / 4 = 12.5
    # G[sky]  = 0; person is absent (N = 0): left out of percent
    assert r.percent == {"sky": 0.0, "car": 75.0, "road": 12.5}
    # total heat = 1.0 + 0.5 + 0.5 = 2.0: car holds 1.5 (75 %), road 0.5 (25 %)
    assert r.share == {"sky": 0.0, "car": 75.0, "road": 25.0, "person": 0.0}
    assert r.pixels == {"sky": 6, "car": 2, "road": 4, "person": 0}


def test_gradsum_without_normalisation_uses_raw_values():
    r = gradsum(M, SEG, CATS, normalize=False)
    assert r.percent["car"] == pytest.approx(100 * 3.0 / 2)


def test_zero_map_gives_zeros_not_nan():
    r = gradsum(torch.zeros(3, 4), SEG, CATS)
    assert set(r.percent.values()) == {0.0} and set(r.share.values()) == {0.0}


def test_shares_sum_to_100_when_categories_cover_the_image():
    g = torch.Generator().manual_seed(0)
    r = gradsum(torch.rand(3, 4, generator=g), SEG, {"sky": [0], "car": [8], "road": [3]})
    assert sum(r.share.values()) == pytest.approx(100.0)


def test_profile_averages_present_images_only_and_reports_absent():
    second_seg = torch.full((3, 4), 0)
    second_seg[2] = 9  # a person row, no car, no road
    second_map = torch.zeros(3, 4)
    second_map[2, 0] = 1.0
    a = gradsum(M, SEG, CATS)
    b = gradsum(second_map, second_seg, CATS)
    # b: person G = 100 * 1 / 4 = 25, share 100; sky G = 0
    p = gradsum_profile([a, b])
    assert p.images == {"sky": 2, "car": 1, "road": 1, "person": 1}
    assert p.percent == {"sky": 0.0, "car": 75.0, "road": 12.5, "person": 25.0}
    assert p.share == {"sky": 0.0, "car": 37.5, "road": 12.5, "person": 50.0}
    assert p.absent == () and p.n_images == 2
    only_a = gradsum_profile([a])
    assert only_a.absent == ("person",) and "person" not in only_a.percent
    assert all(not math.isnan(v) for v in only_a.share.values())


def test_category_masks_shapes():
    masks = category_masks(SEG, CATS)
    assert masks.shape == (4, 3, 4) and masks.dtype == torch.bool
    assert masks.sum(dim=(1, 2)).tolist() == [6, 2, 4, 0]


def test_errors():
    with pytest.raises(ValueError, match="negative"):
        gradsum(-M, SEG, CATS)
    with pytest.raises(ValueError, match="upsample"):
        gradsum(torch.zeros(2, 2), SEG, CATS)
    with pytest.raises(ValueError, match="disjoint"):
        gradsum(M, SEG, {"a": [0, 3], "b": [3]})
    with pytest.raises(ValueError, match="integer labels"):
        gradsum(M, SEG.float(), CATS)
    with pytest.raises(ValueError, match="NaN"):
        gradsum(torch.full((3, 4), float("nan")), SEG, CATS)
    with pytest.raises(ValueError, match="same categories"):
        gradsum_profile([gradsum(M, SEG, CATS), gradsum(M, SEG, {"sky": [0]})])
    with pytest.raises(ValueError, match="no results"):
        gradsum_profile([])
