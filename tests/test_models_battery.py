"""The two networks the evaluation battery trains: the look-alikes classifier and the MNIST memoriser."""
from __future__ import annotations

import os

import pytest

from xaisurvey import models


@pytest.mark.slow
def test_lookalikes_model_learns_the_class_evidence():
    loaded = models.load("lookalikes_gap_cnn", progress=False)
    assert loaded.info["heldout_accuracy"] >= 0.95  # measured: 1.000 on 300 held-out images
    assert loaded.classes == ["square", "triangle", "cross"]


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("XAISURVEY_DATA"), reason="the memoriser needs the real MNIST data")
def test_memoriser_fits_its_shuffled_labels():
    loaded = models.load("mnist_memoriser", progress=False)
    assert loaded.info["fit_accuracy"] >= 0.95  # the data randomisation test needs a real memoriser
    assert loaded.info["heldout_accuracy"] < 0.2  # true held-out labels: near chance (0.1)
