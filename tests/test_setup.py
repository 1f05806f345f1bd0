from __future__ import annotations

import random

import numpy as np
import pytest
import torch

import xaisurvey


def _draw() -> tuple[float, float, float]:
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_setup_makes_every_generator_repeatable() -> None:
    xaisurvey.setup(123)
    first = _draw()
    xaisurvey.setup(123)
    assert _draw() == first
    xaisurvey.setup(124)
    assert _draw() != first


def test_setup_returns_a_seeded_generator() -> None:
    a = torch.rand(3, generator=xaisurvey.setup(7))
    b = torch.rand(3, generator=xaisurvey.setup(7))
    assert torch.equal(a, b)


def test_setup_turns_on_deterministic_algorithms() -> None:
    xaisurvey.setup()
    assert torch.are_deterministic_algorithms_enabled()


@pytest.mark.parametrize("bad", [-1, 1.5, "0", True])
def test_setup_rejects_a_bad_seed(bad: object) -> None:
    with pytest.raises(ValueError, match="seed"):
        xaisurvey.setup(bad)  # type: ignore[arg-type]


def test_glue_outside_the_book_returns_the_value(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import builtins

    real_import = builtins.__import__

    def no_myst_nb(name: str, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        if name == "myst_nb":
            raise ImportError("myst_nb is not installed")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_myst_nb)
    assert xaisurvey.glue("answer", 42, display=True) is None
    assert "answer: 42" in capsys.readouterr().out
    xaisurvey.glue("scalar", np.float64(0.5), display=True)
    xaisurvey.glue("tensor", torch.tensor(3), display=True)
    assert capsys.readouterr().out == "scalar: 0.5\ntensor: 3\n"  # plain Python numbers, not np.float64(0.5)
