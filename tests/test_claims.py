"""The claims ledger: a false claim fails loudly, true ones are recorded with their values."""
from __future__ import annotations

import json

import numpy as np
import pytest

from xaisurvey.claims import ClaimError, Ledger, bootstrap_interval, difference_interval, load_claims


def test_true_claims_are_recorded_and_false_ones_raise(tmp_path) -> None:
    ledger = Ledger("part9/01-demo", directory=tmp_path)
    ledger.check("two is more than one", 2 > 1, values={"a": np.float64(2.0), "b": 1})
    with pytest.raises(ClaimError, match="'one is more than two' no longer holds"):
        ledger.check("one is more than two", 1 > 2, values={"a": 1, "b": 2})
    recorded = json.loads((tmp_path / "part9__01-demo.json").read_text())
    assert [c["statement"] for c in recorded["claims"]] == ["two is more than one"]
    assert recorded["claims"][0]["values"] == {"a": 2.0, "b": 1}
    assert [c.statement for c in load_claims(tmp_path)] == ["two is more than one"]


def test_sample_claims_use_the_interval_not_one_draw(tmp_path) -> None:
    rng = np.random.default_rng(0)
    ledger = Ledger("part9/02-samples", directory=tmp_path)
    a = rng.normal(1.0, 0.1, 40)
    ledger.check_greater("a is larger on average", a, a - 0.5)
    # Means differ by 0.02 with noise 1: one draw may say "greater", the interval does not.
    b, c = rng.normal(0.02, 1.0, 30), rng.normal(0.0, 1.0, 30)
    with pytest.raises(ClaimError, match="bootstrap 95% interval"):
        ledger.check_greater("b is larger than c", b, c, paired=False)
    ledger.check_less("a - 0.5 is smaller", a - 0.5, a)
    assert len(ledger) == 2


def test_intervals_cover_the_mean_and_reject_bad_input() -> None:
    mean, low, high = bootstrap_interval(np.arange(10.0))
    assert low < mean == 4.5 < high
    with pytest.raises(ValueError, match="no samples"):
        bootstrap_interval([])
    with pytest.raises(ValueError, match="paired samples need equal sizes"):
        difference_interval([1.0, 2.0], [1.0])


def test_nothing_is_written_without_a_directory(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("XAISURVEY_CLAIMS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    ledger = Ledger("part9/03-reader")
    ledger.check("true", True)
    assert ledger.path is None and not list(tmp_path.iterdir())
