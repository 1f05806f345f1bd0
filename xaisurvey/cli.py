"""The ``xaisurvey`` command line: explanations without writing code, and the data
tools::

    xaisurvey explain IMAGE_OR_FOLDER... [-o OUT] [--model NAME] [--method METHOD]
                      [--target CLASS] [--layer LAYER] [--device DEVICE]
                      [--batch-size N] [--alpha A] [-q]
    xaisurvey models
    xaisurvey data fetch [PREFIX]
    xaisurvey data check [PREFIX]


``explain`` writes one overlay PNG per image into OUT, named
``<image>_<method>_<class>.png``, and prints each image's predicted class with its
probability. The model defaults to the pretrained ImageNet MobileNet
(``mobilenet_v1_025_imagenet``), the method to Grad-CAM; the methods are those of the
registry (:func:`xaisurvey.attribution.available`, in their CLI spelling), and the
methods that need a layer use the model's default target layer unless ``--layer`` names
another. Every argument is checked and every image is read and classified before
anything is written; the PNGs are written to a temporary folder that is moved into OUT
only when all images succeeded: a failure leaves no partial output. Every error, also
one raised inside a method or by a model that is not a classifier, prints one line
naming the problem and exits with status 2.
"""

from __future__ import annotations

import argparse
import difflib
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from xaisurvey.attribution import registry

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
#: The method choices, in the registry's order and CLI spelling (``grad-cam``).
METHODS = tuple(spec.cli_name for spec in registry.available())
DEFAULT_METHOD = "grad-cam"
DEFAULT_MODEL = "mobilenet_v1_025_imagenet"
BATCH = 8


class CliError(Exception):
    """A problem with the user's input, reported as one line and exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors as one line (no usage block) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {_one_line(message)}", file=sys.stderr)
        raise SystemExit(2)


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


def collect_images(paths: Sequence[str]) -> list[Path]:
    """The image files named, with folders expanded (recursively, sorted); errors name
    the bad path."""
    images: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
            )
            if not found:
                raise CliError(
                    f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in folder {raw}"
                )
            images += found
        elif path.is_file():
            images.append(path)
        else:
            raise CliError(f"no such image or folder: {raw}")
    return images


def _read(path: Path) -> Image.Image:
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError) as error:
        raise CliError(f"cannot read image {path}: {error}") from None


def resolve_target(target: str | None, classes: list[str] | None) -> int | None:
    """``None`` (explain the predicted class), a class index, or a class name
    (case-insensitive)."""
    if target is None:
        return None
    if re.fullmatch(r"\d+", target):
        index = int(target)
        if classes is not None and index >= len(classes):
            raise CliError(
                f"class index {index} is out of range: the model has {len(classes)}"
                f" classes (0..{len(classes) - 1})"
            )
        return index
    if classes is None:
        raise CliError(
            f"the model has no class names; give the target as an index, not {target!r}"
        )
    lowered = [c.lower() for c in classes]
    if target.lower() in lowered:
        return lowered.index(target.lower())
    close = difflib.get_close_matches(target.lower(), lowered, n=3)
    hint = (
        f"; did you mean {', '.join(repr(classes[lowered.index(c)]) for c in close)}?"
        if close
        else ""
    )
    raise CliError(f"unknown class {target!r}{hint}")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "class"


def resolve_device(name: str) -> torch.device:
    """``cpu``, ``cuda``, ``cuda:N`` (or ``mps``) as a device of this machine; else one
    line."""
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise CliError(f"--device must be cpu, cuda or cuda:N, got {name!r}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise CliError(
                f"--device {name}: CUDA is not available here (use --device cpu)"
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise CliError(
                f"--device {name}: there are {count} CUDA device(s),"
                f" cuda:0..cuda:{count - 1}"
            )
    elif device.type == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise CliError(
                f"--device {name}: MPS is not available here (use --device cpu)"
            )
    elif device.type != "cpu":
        raise CliError(f"--device must be cpu, cuda or cuda:N, got {name!r}")
    return device


def _output_target(index: int) -> Callable[[Any], torch.Tensor]:
    """A callable target for a model that is not a classifier: output ``index`` of each
    image."""

    def score(output: Any) -> torch.Tensor:
        if isinstance(output, torch.Tensor) and output.dim() == 1 and index == 0:
            return output
        if (
            isinstance(output, torch.Tensor)
            and output.dim() == 2
            and index < output.shape[1]
        ):
            return output[:, index]
        shape = (
            tuple(output.shape)
            if isinstance(output, torch.Tensor)
            else type(output).__name__
        )
        raise CliError(
            f"--target {index} is not an output of the model, which returns {shape}"
        )

    return score


def _predict(model: torch.nn.Module, x: torch.Tensor, name: str) -> torch.Tensor:
    """Softmax probabilities (N, K) of a classifier; a one-line error for any other
    model."""
    with torch.no_grad():
        output = model(x)
    if not isinstance(output, torch.Tensor) or output.dim() != 2 or output.shape[1] < 2:
        if isinstance(output, torch.Tensor):
            shape = f"shape {tuple(output.shape)}"
        else:
            shape = f"a {type(output).__name__}"
        raise CliError(
            f"model {name!r} is not a classifier (it returns {shape} for {x.shape[0]}"
            " image(s), not (N, classes) scores), so there is no predicted class to"
            " explain; pass --target INDEX to explain one of its outputs"
        )
    return output.float().softmax(dim=1).cpu()


def explain(args: argparse.Namespace) -> int:
    from xaisurvey import models
    from xaisurvey.plot import blend

    images = collect_images(args.images)  # validated before the model is loaded
    spec = registry.get(args.method)
    if args.batch_size < 1:
        raise CliError(f"--batch-size must be an int >= 1, got {args.batch_size}")
    if not 0.0 <= args.alpha <= 1.0:
        raise CliError(f"--alpha must lie in [0, 1], got {args.alpha}")
    device = resolve_device(args.device)
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise CliError(f"output {out} exists and is not a folder")
    try:
        loaded = models.load(args.model)
    except KeyError as error:
        raise CliError(str(error.args[0])) from None
    target = resolve_target(args.target, loaded.classes)
    layer = None
    if spec.needs_layer:
        layer = args.layer or loaded.target_layer
        if layer is None:
            raise CliError(
                f"model {args.model!r} has no default layer for {spec.cli_name}; pass"
                " --layer"
            )
    elif args.layer is not None:
        raise CliError(
            f"--layer: {spec.cli_name} takes no layer (the layer-based methods are "
            f"{', '.join(s.cli_name for s in registry.available() if s.needs_layer)})"
        )
    if layer is not None and layer not in dict(loaded.model.named_modules()):
        names = [n for n, _ in loaded.model.named_modules() if n]
        close = difflib.get_close_matches(layer, names, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise CliError(
            f"--layer: model {args.model!r} has no layer named {layer!r}{hint}"
        )
    model = loaded.model.to(device)
    # every image readable before any work starts
    pictures = [_read(path) for path in images]
    batches = [
        torch.stack([loaded.preprocess(p) for p in pictures[i : i + args.batch_size]])
        for i in range(0, len(pictures), args.batch_size)
    ]
    # Predictions first (cheap, no gradients): a model that is not a classifier is
    # refused before anything is written, unless --target says which output to explain.
    probabilities, values = None, None
    if target is None or loaded.classes is not None:
        probabilities = torch.cat(
            [_predict(model, x.to(device), args.model) for x in batches]
        )
    else:  # not a classifier: the output --target names must exist
        pick = _output_target(target)
        with torch.no_grad():
            values = torch.cat(
                [pick(model(x.to(device))).float().cpu() for x in batches]
            )
    if target is None:
        assert probabilities is not None
        explained = probabilities.argmax(dim=1)
    else:
        explained = torch.full((len(images),), target, dtype=torch.long)

    created_out = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".xaisurvey-", dir=out))
    lines = []
    try:
        written = []
        description = f"{spec.cli_name} on {args.model}"
        with tqdm(
            total=len(images), desc=description, unit="image", disable=args.quiet
        ) as bar:
            start = 0
            for x in batches:
                rows = explained[start : start + len(x)]
                method_target: Any = rows.tolist()
                if probabilities is None:  # not a classifier: explain output --target
                    target_index = int(target)  # type: ignore[arg-type]
                    method_target = _output_target(target_index)
                maps = registry.explain(
                    spec.name, model, x.to(device), method_target, layer=layer
                )
                maps = maps.detach().cpu()
                for offset, (image, heat, t) in enumerate(zip(x, maps, rows.tolist())):
                    path = images[start + offset]
                    name = loaded.classes[t] if loaded.classes else str(t)
                    overlay = blend(image, heat, alpha=args.alpha)
                    file = staging / f"{path.stem}_{spec.cli_name}_{_slug(name)}.png"
                    if file.exists():
                        raise CliError(
                            f"two images would write the same file {file.name}; rename"
                            " one of them"
                        )
                    Image.fromarray((overlay * 255).round().astype(np.uint8)).save(file)
                    written.append(file)
                    lines.append(
                        _describe(
                            path,
                            probabilities,
                            values,
                            start + offset,
                            loaded.classes,
                            name,
                            file.name,
                        )
                    )
                bar.update(len(x))
                start += len(x)
        for file in written:
            file.replace(out / file.name)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created_out:
            shutil.rmtree(out, ignore_errors=True)
        raise
    shutil.rmtree(staging, ignore_errors=True)
    for line in lines:
        print(line)
    if not args.quiet:
        print(f"wrote {len(written)} overlay(s) to {out}")
    return 0


def _describe(
    path: Path,
    probabilities: torch.Tensor | None,
    values: torch.Tensor | None,
    row: int,
    classes: list[str] | None,
    explained: str,
    file: str,
) -> str:
    """One line per image: the predicted class and its probability (or the explained
    output's value for a model that is not a classifier), what was explained, the
    file."""
    if probabilities is None:
        value = f" = {float(values[row]):.4g}" if values is not None else ""
        return f"{path.name}: explained output {explained}{value} -> {file}"
    p = probabilities[row]
    top = int(p.argmax())
    predicted = classes[top] if classes else str(top)
    return (
        f"{path.name}: predicted {predicted} ({float(p[top]):.1%}); "
        f"explained {explained} -> {file}"
    )


def list_models(args: argparse.Namespace) -> int:
    from xaisurvey import models

    for name, description in models.describe().items():
        print(f"{name:32} {description}")
    return 0


def data_fetch(args: argparse.Namespace) -> int:
    from xaisurvey import data

    try:
        paths = data.fetch_all(args.prefix, progress=not args.quiet)
    except data.DataError as error:
        raise CliError(str(error)) from None
    print(f"{len(paths)} file(s) present and verified in {data.data_dir()}")
    return 0


def data_check(args: argparse.Namespace) -> int:
    from xaisurvey import data

    try:
        report = data.check(args.prefix, progress=not args.quiet)
    except data.DataError as error:
        raise CliError(str(error)) from None
    print(report.summary())
    return 0 if report.passed else 1


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="xaisurvey",
        description="Explain CNN decisions; fetch and verify the book's data.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    ex = commands.add_parser("explain", help="write heat-map overlays for images")
    ex.add_argument("images", nargs="+", help="image files or folders of images")
    ex.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=f"a registered model (see `xaisurvey models`; default {DEFAULT_MODEL})",
    )
    ex.add_argument(
        "--method",
        default=DEFAULT_METHOD,
        choices=METHODS,
        help=f"attribution method (default {DEFAULT_METHOD})",
    )
    ex.add_argument(
        "--target",
        help=(
            "class name or index to explain (default: each image's predicted class);"
            " for a model that is not a classifier, the index of the output to explain"
        ),
    )
    layered = ", ".join(s.cli_name for s in registry.available() if s.needs_layer)
    ex.add_argument(
        "--layer", help=f"layer for {layered} (default: the model's target layer)"
    )
    ex.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    ex.add_argument(
        "--batch-size",
        type=int,
        default=BATCH,
        help=f"images per pass (default {BATCH})",
    )
    ex.add_argument(
        "--alpha", type=float, default=0.5, help="opacity of the heat map (default 0.5)"
    )
    ex.add_argument("-o", "--output", required=True, help="output folder for the PNGs")
    ex.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    ex.set_defaults(run=explain)

    ls = commands.add_parser("models", help="list the registered models")
    ls.set_defaults(run=list_models)

    data_parser = commands.add_parser("data", help="fetch or verify the data files")
    data_commands = data_parser.add_subparsers(dest="data_command", required=True)
    for name, run, text in (
        ("fetch", data_fetch, "download missing files, verify checksums"),
        ("check", data_check, "verify present files against the checksums"),
    ):
        sub = data_commands.add_parser(name, help=text)
        sub.add_argument(
            "prefix",
            nargs="?",
            default=None,
            help="only files under this path, e.g. camvid/",
        )
        sub.add_argument("-q", "--quiet", action="store_true")
        sub.set_defaults(run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except CliError as error:
        print(f"xaisurvey: error: {_one_line(str(error))}", file=sys.stderr)
    except KeyboardInterrupt:
        print("xaisurvey: error: interrupted", file=sys.stderr)
    # a method or a model failed: one line, never a traceback
    except Exception as error:
        text = _one_line(str(error)) or "(no message)"
        print(f"xaisurvey: error: {type(error).__name__}: {text}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
