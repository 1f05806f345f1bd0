import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from xaisurvey.foundations import (
    conv2d_layer,
    conv_output_size,
    convolve1d,
    convolve2d,
    correlate1d,
    correlate2d,
    mean_filter,
    pad,
)


def test_output_size_matches_nn_conv2d_over_a_grid():
    checked = 0
    for n, k, p, s, d in itertools.product(range(1, 10), range(1, 6), range(3), range(1, 4), range(1, 3)):
        conv = torch.nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d, bias=False)
        valid = n + 2 * p >= d * (k - 1) + 1
        if not valid:
            with pytest.raises(ValueError):
                conv_output_size(n, k, p, s, d)
            with pytest.raises(RuntimeError):
                conv(torch.zeros(1, 1, n, n))
            continue
        with torch.no_grad():
            got = conv(torch.zeros(1, 1, n, n)).shape[-1]
        assert conv_output_size(n, k, p, s, d) == got, (n, k, p, s, d)
        checked += 1
    assert checked > 600  # the valid part of the 1,350-point grid


def test_hand_computed_1d():
    x, k = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 0.0, -1.0])
    np.testing.assert_array_equal(correlate1d(x, k), [1 - 3, 2 - 4])
    np.testing.assert_array_equal(convolve1d(x, k), [3 - 1, 4 - 2])
    np.testing.assert_array_equal(correlate1d(x, k, padding=1, stride=2), [0 * 1 - 2, 2 - 4])


@pytest.mark.parametrize("seed", range(5))
def test_1d_against_numpy(seed):
    rng = np.random.default_rng(seed)
    x, k = rng.normal(size=11), rng.normal(size=4)
    np.testing.assert_allclose(convolve1d(x, k), np.convolve(x, k, mode="valid"), atol=1e-12)
    np.testing.assert_allclose(convolve1d(x, k, padding=3), np.convolve(x, k, mode="full"), atol=1e-12)
    np.testing.assert_allclose(correlate1d(x, k), np.correlate(x, k, mode="valid"), atol=1e-12)


def test_hand_computed_2d_and_the_flip():
    x = np.arange(9.0).reshape(3, 3)
    k = np.array([[1.0, 2.0], [3.0, 4.0]])
    # top-left output: correlate 0*1 + 1*2 + 3*3 + 4*4; convolve flips k: 0*4 + 1*3 + 3*2 + 4*1
    assert correlate2d(x, k)[0, 0] == 27.0
    assert convolve2d(x, k)[0, 0] == 13.0
    np.testing.assert_array_equal(convolve2d(x, k), correlate2d(x, k[::-1, ::-1]))


@pytest.mark.parametrize("padding, stride", [(0, 1), (1, 1), (2, 3), ((1, 0), (2, 1))])
def test_correlate2d_matches_torch(padding, stride):
    rng = np.random.default_rng(0)
    x, k = rng.normal(size=(9, 8)), rng.normal(size=(3, 4))
    ref = F.conv2d(torch.tensor(x)[None, None], torch.tensor(k)[None, None], padding=padding, stride=stride)
    np.testing.assert_allclose(correlate2d(x, k, padding, stride), ref[0, 0].numpy(), atol=1e-12)


@pytest.mark.parametrize("mode", ["zeros", "replicate", "circular", "reflect"])
def test_padding_modes_match_nn_conv2d(mode):
    rng = np.random.default_rng(1)
    conv = torch.nn.Conv2d(3, 4, 3, padding=2, stride=2, padding_mode=mode).double()
    x = rng.normal(size=(2, 3, 7, 6))
    with torch.no_grad():
        ref = conv(torch.tensor(x)).numpy()
    ours = conv2d_layer(x, conv.weight.detach().numpy(), conv.bias.detach().numpy(), padding=2, stride=2, mode=mode)
    np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_pad_by_hand():
    x = np.array([1.0, 2.0, 3.0])
    assert pad(x, 2, "zeros").tolist() == [0, 0, 1, 2, 3, 0, 0]
    assert pad(x, 2, "replicate").tolist() == [1, 1, 1, 2, 3, 3, 3]
    assert pad(x, 2, "circular").tolist() == [2, 3, 1, 2, 3, 1, 2]
    assert pad(x, 2, "reflect").tolist() == [3, 2, 1, 2, 3, 2, 1]


def test_multichannel_layer_by_hand():
    x = np.stack([np.ones((3, 3)), 2 * np.ones((3, 3))])  # channel 0 all ones, channel 1 all twos
    w = np.zeros((1, 2, 3, 3))
    w[0, 0, 1, 1], w[0, 1, 0, 0] = 1.0, 10.0
    y = conv2d_layer(x, w, bias=np.array([0.5]))
    np.testing.assert_array_equal(y, [[[1.0 + 20.0 + 0.5]]])


def test_mean_filter():
    # a constant image is unchanged (replicate padding); an impulse spreads into a 3x3 block of 1/9
    np.testing.assert_allclose(mean_filter(np.full((5, 6), 0.7)), 0.7, atol=1e-15)
    impulse = np.zeros((5, 5))
    impulse[2, 2] = 9.0
    out = mean_filter(impulse, mode="zeros")
    expected = np.zeros((5, 5))
    expected[1:4, 1:4] = 1.0
    np.testing.assert_allclose(out, expected, atol=1e-15)
    rgb = np.random.default_rng(0).uniform(size=(6, 7, 3))
    out = mean_filter(rgb)
    assert out.shape == rgb.shape
    np.testing.assert_allclose(out[..., 1], mean_filter(rgb[..., 1]), atol=1e-15)


def test_bad_input():
    with pytest.raises(ValueError, match="channels"):
        conv2d_layer(np.ones((3, 5, 5)), np.ones((2, 1, 3, 3)))
    with pytest.raises(ValueError, match="shorter than the kernel"):
        correlate2d(np.ones((2, 2)), np.ones((3, 3)))
    with pytest.raises(ValueError, match="mode"):
        pad(np.ones(3), 1, "mirror")
    with pytest.raises(ValueError, match="odd"):
        mean_filter(np.ones((4, 4)), size=2)
    with pytest.raises(ValueError, match="bias"):
        conv2d_layer(np.ones((1, 4, 4)), np.ones((2, 1, 3, 3)), bias=np.ones(3))
