"""The command line: overlays for files and folders, clear errors, and no partial output."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from xaisurvey import cli, data

PHOTO = "images/grad-cam-pytorch/cat_dog.png"


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    (folder / "nested").mkdir(parents=True)
    shutil.copy(data.fetch(PHOTO), folder / "cat_dog.png")
    Image.open(data.fetch(PHOTO)).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(folder / "nested" / "flipped.jpg")
    return folder


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli.main(args)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_explain_a_folder_writes_one_overlay_per_image(photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code, text = run(["explain", str(photos), "--model", "mobilenet_v1_025_imagenet", "--method", "grad-cam",
                      "--target", "tabby", "-o", str(out), "-q"], capsys)
    assert code == 0, text
    files = sorted(p.name for p in out.iterdir())
    assert files == ["cat_dog_grad-cam_tabby.png", "flipped_grad-cam_tabby.png"]
    overlay = np.asarray(Image.open(out / "cat_dog_grad-cam_tabby.png"))
    original = np.asarray(Image.open(photos / "cat_dog.png").convert("RGB"))
    assert overlay.shape == (224, 224, 3)
    assert np.abs(overlay.astype(int) - original.astype(int)).mean() > 5  # the heat map is really there


def test_the_overlay_follows_the_explained_class(photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    common = [str(photos / "cat_dog.png"), "--model", "mobilenet_v1_025_imagenet", "--method", "grad-cam", "-q"]
    assert run(["explain", *common, "--target", "281", "-o", str(tmp_path / "cat")], capsys)[0] == 0
    assert run(["explain", *common, "--target", "bull mastiff", "-o", str(tmp_path / "dog")], capsys)[0] == 0
    cat = np.asarray(Image.open(tmp_path / "cat" / "cat_dog_grad-cam_tabby.png"), dtype=float)
    dog = np.asarray(Image.open(tmp_path / "dog" / "cat_dog_grad-cam_bull-mastiff.png"), dtype=float)
    assert np.abs(cat - dog).mean() > 5


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--model", "no_such_model", "--method", "grad-cam"], "unknown model 'no_such_model'"),
        (["--model", "mobilenet_v1_025_imagenet", "--method", "grad-cam", "--target", "tabbby"], "did you mean 'tabby'"),
        (["--model", "mobilenet_v1_025_imagenet", "--method", "grad-cam", "--target", "1000"], "out of range"),
    ],
)
def test_bad_input_is_named_and_leaves_no_output(
    photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    out = tmp_path / "out"
    code, text = run(["explain", str(photos), *extra, "-o", str(out), "-q"], capsys)
    assert code == 2
    assert message in text
    assert not out.exists()


def test_a_missing_image_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, text = run(["explain", str(tmp_path / "nope.png"), "--model", "mobilenet_v1_025_imagenet",
                      "--method", "grad-cam", "-o", str(tmp_path / "out")], capsys)
    assert code == 2 and "no such image or folder" in text
    assert str(tmp_path / "nope.png") in text
    assert not (tmp_path / "out").exists()


def test_a_file_that_is_not_an_image_is_named(photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (photos / "broken.png").write_text("not a png")
    code, text = run(["explain", str(photos), "--model", "mobilenet_v1_025_imagenet", "--method", "grad-cam",
                      "-o", str(tmp_path / "out"), "-q"], capsys)
    assert code == 2 and "cannot read image" in text and "broken.png" in text
    assert not (tmp_path / "out").exists()


def test_an_unknown_method_is_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["explain", str(tmp_path), "--model", "m", "--method", "lemon", "-o", str(tmp_path / "o")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'lemon'" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_a_failure_midway_removes_everything_written(
    photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import xaisurvey.plot

    calls = []
    real_blend = xaisurvey.plot.blend

    def blend_then_fail(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk full\nsecond line")
        return real_blend(*args, **kwargs)

    monkeypatch.setattr(xaisurvey.plot, "blend", blend_then_fail)
    out = tmp_path / "existing"
    out.mkdir()
    (out / "keep.txt").write_text("the user's file")
    code = cli.main(["explain", str(photos), "--method", "grad-cam", "-o", str(out), "-q"])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err == "xaisurvey: error: RuntimeError: disk full second line\n"  # one line, no traceback
    assert captured.out == ""  # nothing reported as done
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]  # no overlay, no staging folder


def test_data_check_verifies_the_files(capsys: pytest.CaptureFixture[str]) -> None:
    code, text = run(["data", "check", "images/", "-q"], capsys)
    assert code == 0, text
    assert "0 missing, 0 corrupt" in text


def test_data_fetch_reports_verified_files(capsys: pytest.CaptureFixture[str]) -> None:
    code, text = run(["data", "fetch", "images/grad-cam-pytorch/", "-q"], capsys)
    assert code == 0, text
    assert "present and verified" in text


def test_data_commands_name_an_unknown_prefix(capsys: pytest.CaptureFixture[str]) -> None:
    code, text = run(["data", "check", "no-such-folder/"], capsys)
    assert code == 2 and "no-such-folder/" in text


# --- issue 12 §5 -------------------------------------------------------------------------------

def test_the_method_choices_are_the_registry_s() -> None:
    from xaisurvey.attribution import registry

    assert cli.METHODS == tuple(spec.cli_name for spec in registry.available())
    parser = cli.build_parser()
    explain = next(a for a in parser._subparsers._group_actions[0].choices["explain"]._actions if a.dest == "method")
    assert tuple(explain.choices) == cli.METHODS


def test_explain_without_model_or_method_uses_the_pretrained_imagenet_model(
    photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from xaisurvey import models

    out = tmp_path / "out"
    code = cli.main(["explain", str(photos / "cat_dog.png"), "-o", str(out), "-q"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert cli.DEFAULT_MODEL == "mobilenet_v1_025_imagenet"
    loaded = models.load(cli.DEFAULT_MODEL)
    x = loaded.preprocess(Image.open(photos / "cat_dog.png").convert("RGB"))[None]
    with torch.no_grad():
        p = loaded.model(x).softmax(1)[0]
    top = int(p.argmax())
    name = loaded.classes[top]
    # the predicted class, its probability, and the file, on one line per image
    assert captured.out == (f"cat_dog.png: predicted {name} ({float(p[top]):.1%}); explained {name} "
                            f"-> cat_dog_grad-cam_{cli._slug(name)}.png\n")
    assert [f.name for f in out.iterdir()] == [f"cat_dog_grad-cam_{cli._slug(name)}.png"]


def replace_defaults(spec):  # type: ignore[no-untyped-def]
    """The spec with its cheap test options as defaults (SmoothGrad: 3 samples)."""
    import dataclasses

    return dataclasses.replace(spec, defaults={**spec.defaults, **spec.quick})


@pytest.mark.parametrize("method", cli.METHODS)
def test_every_registered_method_runs_from_the_command_line(
    method: str, photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from xaisurvey.attribution import registry

    spec = registry.get(method)
    if spec.quick:  # the CLI runs a method with the spec's defaults
        monkeypatch.setitem(registry.METHODS, spec.name, replace_defaults(spec))
    out = tmp_path / "out"
    code, text = run(["explain", str(photos / "cat_dog.png"), "--method", method, "--target", "tabby",
                      "-o", str(out), "-q"], capsys)
    assert code == 0, text
    assert [f.name for f in out.iterdir()] == [f"cat_dog_{method}_tabby.png"]


def test_layer_and_batch_size_are_used(photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from xaisurvey.attribution import registry

    seen: list[tuple[int, object]] = []
    real = registry.explain

    def spy(name, model, x, target, *, layer=None, **options):  # type: ignore[no-untyped-def]
        seen.append((x.shape[0], layer))
        return real(name, model, x, target, layer=layer, **options)

    monkeypatch.setattr(registry, "explain", spy)
    code, text = run(["explain", str(photos), "--layer", "stage3.0", "--batch-size", "1", "-o", str(tmp_path / "o"),
                      "--target", "tabby", "-q"], capsys)
    assert code == 0, text
    assert seen == [(1, "stage3.0"), (1, "stage3.0")]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--device", "cuda:99"] if torch.cuda.is_available() else ["--device", "cuda"],
         "cuda:0..cuda:" if torch.cuda.is_available() else "CUDA is not available"),
        (["--device", "tpu"], "--device must be cpu, cuda or cuda:N, got 'tpu'"),
        (["--batch-size", "0"], "--batch-size must be an int >= 1, got 0"),
        (["--batch-size", "two"], "argument --batch-size: invalid int value: 'two'"),
        (["--layer", "stage9"], "has no layer named 'stage9'"),
        (["--method", "saliency", "--layer", "stage3"], "--layer: saliency takes no layer"),
        (["--alpha", "2"], "--alpha must lie in [0, 1], got 2.0"),
    ],
)
def test_bad_options_are_one_line_with_status_2_and_nothing_written(
    photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    out = tmp_path / "out"
    try:
        code = cli.main(["explain", str(photos), *extra, "-o", str(out), "-q"])
    except SystemExit as error:  # argparse's own errors (an int that is not one)
        code = error.code  # type: ignore[assignment]
    captured = capsys.readouterr()
    assert code == 2
    assert message in captured.err and captured.err.count("\n") == 1 and captured.out == ""
    assert not out.exists()


def test_an_error_raised_inside_a_method_is_one_line(
    photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    # A layer that does not produce a spatial map: Grad-CAM raises inside the method.
    code = cli.main(["explain", str(photos), "--layer", "fc", "-o", str(out), "-q"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert captured.err.startswith("xaisurvey: error: ValueError: grad_cam: layer 'fc'")
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert not out.exists()


class _Steering(torch.nn.Module):
    """A regression network like steering_cnn: one number per image, shape (N,)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU())
        self.head = torch.nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))[:, 0]


@pytest.fixture()
def regression_model(monkeypatch: pytest.MonkeyPatch) -> str:
    from xaisurvey import models
    from xaisurvey.models.registry import LoadedModel

    real_load = models.load

    def load(name: str, **kwargs):  # type: ignore[no-untyped-def]
        if name != "fake_steering":
            return real_load(name, **kwargs)
        torch.manual_seed(0)
        return LoadedModel(
            name=name, model=_Steering().eval(), classes=None, target_layer="features",
            preprocess=lambda image: torch.from_numpy(np.asarray(image.resize((32, 16)), dtype=np.float32) / 255).permute(2, 0, 1),
        )

    monkeypatch.setattr(models, "load", load)
    return "fake_steering"


def test_a_model_that_is_not_a_classifier_needs_a_target(
    regression_model: str, photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = cli.main(["explain", str(photos), "--model", regression_model, "-o", str(out), "-q"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == "" and captured.err.count("\n") == 1
    assert "model 'fake_steering' is not a classifier (it returns shape (2,) for 2 image(s)" in captured.err
    assert "pass --target INDEX" in captured.err
    assert not out.exists()


def test_a_model_that_is_not_a_classifier_explains_the_output_given_by_target(
    regression_model: str, photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code, text = run(["explain", str(photos), "--model", regression_model, "--target", "0", "-o", str(out), "-q"], capsys)
    assert code == 0, text
    assert sorted(f.name for f in out.iterdir()) == ["cat_dog_grad-cam_0.png", "flipped_grad-cam_0.png"]
    assert re.search(r"cat_dog.png: explained output 0 = -?[0-9.e+-]+ -> cat_dog_grad-cam_0.png", text)
    code, text = run(["explain", str(photos), "--model", regression_model, "--target", "3", "-o", str(tmp_path / "o3"),
                      "-q"], capsys)
    assert code == 2 and "--target 3 is not an output of the model" in text and text.count("\n") == 1
    assert not (tmp_path / "o3").exists()
