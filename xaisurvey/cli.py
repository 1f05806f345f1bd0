"""The ``xaisurvey`` command line: explanations without writing code, and the data tools.

    xaisurvey explain IMAGE_OR_FOLDER... --model NAME --method grad-cam [--target CLASS] -o OUT
    xaisurvey models
    xaisurvey data fetch [PREFIX]
    xaisurvey data check [PREFIX]

``explain`` writes one overlay PNG per image into OUT, named ``<image>_<method>_<class>.png``.
Every argument is checked before any work starts, and the PNGs are written to a temporary folder
that is moved into OUT only when all images succeeded: a failure leaves no partial output.
Errors print one line naming the problem and exit with status 2.
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

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
# Methods that need a layer use the model's default target layer unless --layer is given.
METHODS = ("grad-cam", "guided-grad-cam", "visual-backprop", "cam", "saliency", "smoothgrad", "guided-backprop")
BATCH = 8


class CliError(Exception):
    """A problem with the user's input, reported as one line and exit status 2."""


def _explainer(method: str, layer: str | None) -> Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]:
    """A function (model, x, target) -> (N, H, W) map for ``method``."""
    from xaisurvey import attribution as xa

    def to_map(maps: torch.Tensor) -> torch.Tensor:
        return xa.reduce_channels(maps, "max_abs") if maps.dim() == 4 else maps

    table: dict[str, Callable[..., torch.Tensor]] = {
        "grad-cam": lambda m, x, t: xa.grad_cam(m, x, t, layer=layer),
        "guided-grad-cam": lambda m, x, t: xa.guided_grad_cam(m, x, t, layer=layer),
        "visual-backprop": lambda m, x, t: xa.visual_backprop(m, x, t),
        "cam": lambda m, x, t: xa.cam(m, x, t),
        "saliency": lambda m, x, t: xa.saliency(m, x, t),
        "smoothgrad": lambda m, x, t: xa.smoothgrad(m, x, t),
        "guided-backprop": lambda m, x, t: xa.guided_backprop(m, x, t),
    }
    return lambda m, x, t: to_map(table[method](m, x, t))


def collect_images(paths: Sequence[str]) -> list[Path]:
    """The image files named, with folders expanded (recursively, sorted); errors name the bad path."""
    images: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not found:
                raise CliError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in folder {raw}")
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
    """``None`` (explain the predicted class), a class index, or a class name (case-insensitive)."""
    if target is None:
        return None
    if re.fullmatch(r"\d+", target):
        index = int(target)
        if classes is not None and index >= len(classes):
            raise CliError(f"class index {index} is out of range: the model has {len(classes)} classes (0..{len(classes) - 1})")
        return index
    if classes is None:
        raise CliError(f"the model has no class names; give the target as an index, not {target!r}")
    lowered = [c.lower() for c in classes]
    if target.lower() in lowered:
        return lowered.index(target.lower())
    close = difflib.get_close_matches(target.lower(), lowered, n=3)
    hint = f"; did you mean {', '.join(repr(classes[lowered.index(c)]) for c in close)}?" if close else ""
    raise CliError(f"unknown class {target!r}{hint}")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "class"


def explain(args: argparse.Namespace) -> int:
    from xaisurvey import models
    from xaisurvey.plot import blend

    images = collect_images(args.images)  # validated before the model is loaded
    try:
        loaded = models.load(args.model)
    except KeyError as error:
        raise CliError(str(error.args[0])) from None
    target = resolve_target(args.target, loaded.classes)
    layer = args.layer or loaded.target_layer
    if args.method in ("grad-cam", "guided-grad-cam") and layer is None:
        raise CliError(f"model {args.model!r} has no default layer for {args.method}; pass --layer")
    explain_batch = _explainer(args.method, layer)
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise CliError(f"output {out} exists and is not a folder")
    pictures = [_read(path) for path in images]  # every image readable before any work starts

    created_out = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".xaisurvey-", dir=out))
    try:
        written = []
        with tqdm(total=len(images), desc=f"{args.method} on {args.model}", unit="image", disable=args.quiet) as bar:
            for start in range(0, len(images), BATCH):
                x = torch.stack([loaded.preprocess(p) for p in pictures[start : start + BATCH]])
                with torch.no_grad():
                    predicted = loaded.model(x).argmax(dim=1)
                targets = predicted if target is None else torch.full_like(predicted, target)
                maps = explain_batch(loaded.model, x, targets).detach()
                for offset, (image, heat, t) in enumerate(zip(x, maps, targets.tolist())):
                    path = images[start + offset]
                    name = loaded.classes[t] if loaded.classes else str(t)
                    overlay = blend(image, heat, alpha=args.alpha)
                    file = staging / f"{path.stem}_{args.method}_{_slug(name)}.png"
                    if file.exists():
                        raise CliError(f"two images would write the same file {file.name}; rename one of them")
                    Image.fromarray((overlay * 255).round().astype(np.uint8)).save(file)
                    written.append(file)
                bar.update(len(x))
        for file in written:
            file.replace(out / file.name)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created_out:
            shutil.rmtree(out, ignore_errors=True)
        raise
    shutil.rmtree(staging, ignore_errors=True)
    if not args.quiet:
        print(f"wrote {len(written)} overlay(s) to {out}")
    return 0


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
    parser = argparse.ArgumentParser(prog="xaisurvey", description="Explain CNN decisions; fetch and verify the book's data.")
    commands = parser.add_subparsers(dest="command", required=True)

    ex = commands.add_parser("explain", help="write heat-map overlays for images")
    ex.add_argument("images", nargs="+", help="image files or folders of images")
    ex.add_argument("--model", required=True, help="a registered model (see `xaisurvey models`)")
    ex.add_argument("--method", required=True, choices=METHODS)
    ex.add_argument("--target", help="class name or index to explain (default: each image's predicted class)")
    ex.add_argument("--layer", help="layer for grad-cam / guided-grad-cam (default: the model's target layer)")
    ex.add_argument("--alpha", type=float, default=0.5, help="opacity of the heat map (default 0.5)")
    ex.add_argument("-o", "--output", required=True, help="output folder for the PNGs")
    ex.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    ex.set_defaults(run=explain)

    ls = commands.add_parser("models", help="list the registered models")
    ls.set_defaults(run=list_models)

    data_parser = commands.add_parser("data", help="fetch or verify the data files")
    data_commands = data_parser.add_subparsers(dest="data_command", required=True)
    for name, run, text in (("fetch", data_fetch, "download missing files, verify checksums"), ("check", data_check, "verify present files against the checksums")):
        sub = data_commands.add_parser(name, help=text)
        sub.add_argument("prefix", nargs="?", default=None, help="only files under this path, e.g. camvid/")
        sub.add_argument("-q", "--quiet", action="store_true")
        sub.set_defaults(run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except CliError as error:
        print(f"xaisurvey: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
