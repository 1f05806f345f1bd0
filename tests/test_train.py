"""xaisurvey.train: determinism, history, checkpoints, the cache (keyed by configuration and code),
regression, and clear errors."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from xaisurvey import train as T


def _tiny_data(n: int = 96, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.rand(n, 1, 6, 6, generator=g) * 0.6
    x[:, :, :3] += 0.4 * y[:, None, None, None]  # class 1: the top half is brighter
    return x, y


def _tiny_model() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Dropout(0.2),
                         nn.Linear(4 * 16, 2))


CONFIG = T.TrainConfig(epochs=3, batch_size=16, lr=1e-2, seed=5, checkpoints=True)


def _train_once(config=CONFIG):
    torch.manual_seed(0)
    model = _tiny_model()
    return T.fit(model, _tiny_data(), _tiny_data(48, seed=1), config, progress=False)


def test_same_config_gives_identical_weights_and_history():
    (a, hist_a), (b, hist_b) = _train_once(), _train_once()
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name
    assert hist_a.train_loss == hist_b.train_loss and hist_a.val_metric == hist_b.val_metric
    other, _ = _train_once(T.TrainConfig(epochs=3, batch_size=16, lr=1e-2, seed=6))
    assert not torch.equal(other[-1].weight, a[-1].weight)  # another seed, another batch order


def test_history_checkpoints_and_learning():
    torch.manual_seed(0)
    model = _tiny_model()
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    model, history = T.fit(model, _tiny_data(), _tiny_data(48, seed=1), CONFIG, progress=False)
    assert not model.training
    assert len(history.train_loss) == len(history.val_metric) == len(history.epoch_seconds) == 3
    assert len(history.checkpoints) == 4  # before training, then after each epoch
    assert all(torch.equal(initial[k], history.checkpoints[0][k]) for k in initial)
    assert all(torch.equal(v, history.checkpoints[-1][k]) for k, v in model.state_dict().items())
    # Checkpoints are copies: later training never changes them.
    assert not torch.equal(history.checkpoints[1]["5.weight"], history.checkpoints[3]["5.weight"])
    assert history.metric == "accuracy" and history.val_metric[-1] > 0.75  # chance is ~0.5
    assert history.train_loss[-1] < history.train_loss[0]
    assert history.seconds >= sum(history.epoch_seconds) * 0.99


def test_training_threads_are_fixed_and_the_callers_restored():
    """TrainConfig.threads (default 1) is used while training, whatever the caller set, and the
    caller's setting comes back, also after an error."""
    previous = torch.get_num_threads()
    try:
        results = []
        for caller_threads in (1, 2):
            torch.set_num_threads(caller_threads)
            model, history = _train_once()
            assert torch.get_num_threads() == caller_threads and history.threads == 1
            results.append(model.state_dict())
        assert all(torch.equal(results[0][k], results[1][k]) for k in results[0])
        torch.set_num_threads(2)
        _, history = _train_once(T.TrainConfig(epochs=1, batch_size=16, threads=None))
        assert history.threads == 2
        with pytest.raises(ValueError, match="classification targets must be int64"):
            T.fit(_tiny_model(), (torch.rand(4, 1, 6, 6), torch.rand(4)), None, T.TrainConfig(epochs=1, threads=1),
                  progress=False)
        assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError, match="boom"):
            class Boom(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.linear = nn.Linear(36, 2)

                def forward(self, x):
                    raise RuntimeError("boom")

            T.fit(Boom(), _tiny_data(), None, T.TrainConfig(epochs=1, threads=1), progress=False)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="threads"):
            T.TrainConfig(threads=bad)


def test_fit_restores_the_callers_global_rng():
    torch.manual_seed(123)
    expected = torch.rand(3)
    model = _tiny_model()
    torch.manual_seed(123)
    T.fit(model, _tiny_data(), None, T.TrainConfig(epochs=1, batch_size=32), progress=False)
    assert torch.equal(torch.rand(3), expected)


def test_regression_task():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(128, 1, 4, 4, generator=g)
    y = x.mean((1, 2, 3)) * 4 - 2
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 1))
    model, history = T.fit(model, (x, y), (x, y), T.TrainConfig(epochs=150, batch_size=32, lr=0.05, task="regression"),
                           progress=False)
    # An exactly linear target: the fit recovers it (bias -2, weights 4/16).
    assert history.metric == "mae" and history.val_metric[-1] < 1e-3
    assert float(model[1].bias.detach()) == pytest.approx(-2.0, abs=1e-2)
    with torch.no_grad():
        assert history.val_metric[-1] == pytest.approx(float((model(x)[:, 0] - y).abs().mean()), rel=1e-5)


def test_evaluate_matches_a_hand_count_and_restores_mode():
    model = nn.Sequential(nn.Flatten(), nn.Linear(2, 2, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(torch.eye(2))
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.2, 0.1]]).reshape(4, 1, 1, 2)
    y = torch.tensor([0, 1, 1, 0])
    model.train()
    loss, acc = T.evaluate(model, (x, y))
    assert acc == 0.75 and model.training
    expected = torch.nn.functional.cross_entropy(x.reshape(4, 2), y)
    assert loss == pytest.approx(float(expected), rel=1e-6)


def test_cache_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("XAISURVEY_CACHE", str(tmp_path))
    calls = []

    def make_data():
        calls.append(1)
        return _tiny_data(), _tiny_data(48, seed=1)

    first = T.train_cached("tiny", _tiny_model, make_data, CONFIG, data_spec={"n": 96}, progress=False)
    assert first.path is not None and first.path.is_file() and first.path.parent == tmp_path / "trained"
    assert not first.history.from_cache
    second = T.train_cached("tiny", _tiny_model, make_data, CONFIG, data_spec={"n": 96}, progress=False)
    assert len(calls) == 1 and second.history.from_cache and second.path == first.path
    for k, v in first.model.state_dict().items():
        assert torch.equal(v, second.model.state_dict()[k]), k
    assert second.history.val_metric == first.history.val_metric
    assert second.history.seconds == first.history.seconds
    assert len(second.history.checkpoints) == 4
    assert all(torch.equal(first.history.checkpoints[2][k], second.history.checkpoints[2][k])
               for k in first.history.checkpoints[2])
    assert not second.model.training
    # Any change of configuration or data description is another key.
    third = T.train_cached("tiny", _tiny_model, make_data, T.TrainConfig(epochs=2, seed=5), data_spec={"n": 96},
                           progress=False)
    fourth = T.train_cached("tiny", _tiny_model, make_data, CONFIG, data_spec={"n": 95}, progress=False)
    assert len({first.key, third.key, fourth.key}) == 3 and len(calls) == 3
    # Asking without checkpoints reuses the same file and drops them; a file without them is retrained once.
    plain_config = T.TrainConfig(epochs=3, batch_size=16, lr=1e-2, seed=5)
    plain = T.train_cached("tiny", _tiny_model, make_data, plain_config, data_spec={"n": 96}, progress=False)
    assert plain.key == first.key and plain.history.from_cache and plain.history.checkpoints == []
    assert len(calls) == 3
    # Training in the same process without the cache gives the same weights as the cached run.
    fresh = T.train_cached("tiny", _tiny_model, make_data, CONFIG, data_spec={"n": 96}, use_cache=False, progress=False)
    assert fresh.path is None
    assert all(torch.equal(v, fresh.model.state_dict()[k]) for k, v in first.model.state_dict().items())


def test_checkpoints_requested_after_a_plain_run_retrain_once(tmp_path, monkeypatch):
    monkeypatch.setenv("XAISURVEY_CACHE", str(tmp_path))
    calls = []

    def make_data():
        calls.append(1)
        return _tiny_data(), None

    plain = T.train_cached("tiny", _tiny_model, make_data, T.TrainConfig(epochs=2, seed=1), progress=False)
    with_cp = T.train_cached("tiny", _tiny_model, make_data, T.TrainConfig(epochs=2, seed=1, checkpoints=True),
                             progress=False)
    again = T.train_cached("tiny", _tiny_model, make_data, T.TrainConfig(epochs=2, seed=1, checkpoints=True),
                           progress=False)
    assert len(calls) == 2 and not with_cp.history.from_cache and again.history.from_cache
    assert len(again.history.checkpoints) == 3 and plain.key == with_cp.key
    assert all(torch.equal(v, with_cp.model.state_dict()[k]) for k, v in plain.model.state_dict().items())


def test_code_change_changes_the_key(tmp_path):
    source = tmp_path / "model_code.py"
    source.write_text("x = 1\n")
    before = T._cache_key("m", CONFIG, {}, [source])
    source.write_text("x = 2\n")
    assert T._cache_key("m", CONFIG, {}, [source]) != before
    assert T.code_hash([T]) == T.code_hash([])  # this module is always part of the hash


def test_cache_dir_default(monkeypatch, tmp_path):
    monkeypatch.delenv("XAISURVEY_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert T.cache_dir() == tmp_path / ".cache" / "xaisurvey" / "trained"


@pytest.mark.parametrize("field,value", [("epochs", 0), ("batch_size", -1), ("lr", 0.0), ("optimizer", "lbfgs"),
                                         ("task", "ranking"), ("lr_schedule", "step"), ("seed", -3)])
def test_bad_config_is_a_clear_error(field, value):
    with pytest.raises(ValueError, match=field):
        T.TrainConfig(**{field: value})


def test_bad_data_is_a_clear_error():
    model = _tiny_model()
    x, y = _tiny_data()
    with pytest.raises(TypeError, match=r"an \(images, targets\) pair"):
        T.fit(model, [1, 2, 3], progress=False)
    with pytest.raises(ValueError, match="float"):
        T.fit(model, ((x * 255).long(), y), progress=False)
    with pytest.raises(ValueError, match="int64"):
        T.fit(model, (x, y.float()), progress=False)
    with pytest.raises(ValueError, match="N targets"):
        T.fit(model, (x, y[:5]), progress=False)
    with pytest.raises(ValueError, match="one number per sample"):
        T.fit(model, (x, y.float()), config=T.TrainConfig(task="regression"), progress=False)
    frozen = nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        T.fit(frozen, (torch.rand(4, 2), torch.zeros(4).long()), progress=False)


def test_sgd_and_worldset_input():
    from xaisurvey.data.worlds import terrain_patches

    world = terrain_patches(64, seed=0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(32 * 32, 2))
    model, history = T.fit(model, world, world, T.TrainConfig(epochs=1, optimizer="sgd", lr=0.01), progress=False)
    assert len(history.val_metric) == 1 and 0.0 <= history.val_metric[0] <= 1.0
