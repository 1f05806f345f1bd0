import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from xaisurvey.foundations import avg_pool2d, max_pool2d, pool2d


def test_by_hand():
    x = np.array([[1.0, 2.0, 5.0, 6.0], [3.0, 4.0, 7.0, -8.0]])
    np.testing.assert_array_equal(max_pool2d(x), [[4.0, 7.0]])
    np.testing.assert_array_equal(avg_pool2d(x), [[2.5, 2.5]])
    np.testing.assert_array_equal(max_pool2d(x, 2, stride=1), [[4.0, 7.0, 7.0]])


def test_against_torch_over_a_grid():
    rng = np.random.default_rng(0)
    for h, w, size, stride in itertools.product([4, 5, 8], [4, 7], [2, 3], [None, 1, 2, 3]):
        if size > min(h, w):
            continue
        x = rng.normal(size=(2, 3, h, w))
        xt = torch.tensor(x)
        np.testing.assert_allclose(max_pool2d(x, size, stride), F.max_pool2d(xt, size, stride).numpy(), atol=1e-12)
        np.testing.assert_allclose(avg_pool2d(x, size, stride), F.avg_pool2d(xt, size, stride).numpy(), atol=1e-12)


def test_bad_input():
    with pytest.raises(ValueError, match="op"):
        pool2d(np.ones((4, 4)), 2, op="median")
    with pytest.raises(ValueError, match="two axes"):
        pool2d(np.ones(4), 2)
