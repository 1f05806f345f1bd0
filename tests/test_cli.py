"""The command line: overlays for files and folders, clear errors, and no partial output."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
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


def test_an_unknown_method_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["explain", str(tmp_path), "--model", "m", "--method", "lime", "-o", str(tmp_path / "o")])
    assert exit_info.value.code == 2
    assert "invalid choice: 'lime'" in capsys.readouterr().err


def test_a_failure_midway_removes_everything_written(
    photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import xaisurvey.plot

    calls = []
    real_blend = xaisurvey.plot.blend

    def blend_then_fail(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return real_blend(*args, **kwargs)

    monkeypatch.setattr(xaisurvey.plot, "blend", blend_then_fail)
    out = tmp_path / "existing"
    out.mkdir()
    (out / "keep.txt").write_text("the user's file")
    with pytest.raises(RuntimeError, match="disk full"):
        cli.main(["explain", str(photos), "--model", "mobilenet_v1_025_imagenet", "--method", "grad-cam", "-o", str(out), "-q"])
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
