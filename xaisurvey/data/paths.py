"""Where the real data lives, and how a missing file gets there: a checksummed download.

The data directory is ``$XAISURVEY_DATA`` when it is set and non-empty, else the user
cache ``$XDG_CACHE_HOME/xaisurvey/data`` (``~/.cache/xaisurvey/data``). Every file the
package uses is listed in ``manifest.json.gz`` (next to this module; regenerate it with
``tools/make_data_manifest.py``) with its sha256, its size and the pinned upstream
source it comes from, ``https://raw.githubusercontent.com/OWNER/REPO/COMMIT/PATH``.

:func:`fetch` returns the local path of one file. A missing file is downloaded to a
temporary file next to its destination (with a progress bar), its sha256 is compared
with the manifest, and only then is it moved into place; a mismatch deletes the download
and raises :class:`ChecksumError`. Files already present are trusted after a size check
(a full hash of every file on every load would cost more than the loading);
:func:`check` hashes everything.

The download source can be redirected to a mirror laid out like the data directory, with
the ``base_url`` argument or ``$XAISURVEY_DATA_URL`` (``file://`` and ``http://`` work),
which is how the tests exercise the download path without the network.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

from tqdm import tqdm

__all__ = [
    "DataError",
    "DataNotFoundError",
    "ChecksumError",
    "CheckReport",
    "data_dir",
    "manifest",
    "source_url",
    "fetch",
    "fetch_many",
    "fetch_all",
    "check",
    "sha256_file",
]

_MANIFEST = Path(__file__).with_name("manifest.json.gz")
_CHUNK = 1 << 20


class DataError(RuntimeError):
    """A problem with the real data: unknown, missing, unreadable or corrupt."""


class DataNotFoundError(DataError, FileNotFoundError):
    """A data file is neither in the data directory nor downloadable from its source."""


class ChecksumError(DataError):
    """A file's sha256 (or size) differs from the manifest's."""


def data_dir() -> Path:
    """The real-data directory: ``$XAISURVEY_DATA`` if set and non-empty, else the user
    cache.

    The user cache is ``$XDG_CACHE_HOME/xaisurvey/data`` when ``XDG_CACHE_HOME`` is set,
    else ``~/.cache/xaisurvey/data``. The directory need not exist yet.

    Example:
        >>> (data_dir() / "mnist").name  # e.g. $XAISURVEY_DATA/mnist
        'mnist'
    """
    explicit = os.environ.get("XAISURVEY_DATA", "").strip()
    if explicit:
        return Path(explicit).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME", "").strip()
    base = Path(cache).expanduser() if cache else Path.home() / ".cache"
    return base / "xaisurvey" / "data"


@lru_cache(maxsize=1)
def manifest() -> dict[str, Any]:
    """The parsed manifest: ``{"sources": {key: {...}}, "files": {relpath: [source,
    sha256, size]}}``."""
    with gzip.open(_MANIFEST, "rt", encoding="utf-8") as f:
        return json.load(f)


def _entry(relpath: str) -> tuple[str, str, int]:
    files = manifest()["files"]
    if relpath not in files:
        raise DataError(
            f"{relpath!r} is not a known data file (see"
            " xaisurvey/data/manifest.json.gz; regenerate it with"
            " tools/make_data_manifest.py after adding data)"
        )
    source, digest, size = files[relpath]
    return source, digest, int(size)


def source_url(relpath: str, base_url: str | None = None) -> str:
    """The URL ``relpath`` is downloaded from.

    With ``base_url`` (or ``$XAISURVEY_DATA_URL``) the file is taken from a mirror laid
    out like the data directory: ``base_url + "/" + relpath``; otherwise from its pinned
    upstream repository.

    Example:
        >>> source_url("mnist/t10k-labels-idx1-ubyte.gz", base_url="file:///mirror")
        'file:///mirror/mnist/t10k-labels-idx1-ubyte.gz'
    """
    source, _, _ = _entry(relpath)
    base = (
        base_url
        if base_url is not None
        else os.environ.get("XAISURVEY_DATA_URL", "").strip()
    )
    if base:
        return base.rstrip("/") + "/" + relpath
    info = manifest()["sources"][source]
    rest = relpath[len(info["local"]) :]
    host = "https://raw.githubusercontent.com"
    return f"{host}/{info['repo']}/{info['commit']}/{info['remote']}{rest}"


def sha256_file(path: Path | str) -> str:
    """The hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _how_to_get(relpath: str, target: Path, url: str, reason: str) -> str:
    return (
        f"data file {relpath!r} is missing: it is expected at {target} and could not be"
        f" downloaded from {url} ({reason}). Either set XAISURVEY_DATA to a directory"
        f" that holds a copy of the data (it must contain {relpath}), or download that"
        f" URL yourself to {target}, or set XAISURVEY_DATA_URL to a mirror laid out"
        " like the data directory."
    )


def _download(
    relpath: str, target: Path, url: str, digest: str, size: int, progress: bool
) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # Download next to the destination, then rename: a partial file never has the
        # final name.
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=".part", dir=target.parent
        )
    except OSError as error:
        raise DataNotFoundError(
            _how_to_get(relpath, target, url, f"cannot write there: {error}")
        ) from error
    tmp = Path(tmp_name)
    hasher = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with (
                    urllib.request.urlopen(url, timeout=60) as response,
                    tqdm(
                        total=size,
                        unit="B",
                        unit_scale=True,
                        desc=relpath,
                        disable=not progress,
                        leave=False,
                    ) as bar,
                ):
                    for chunk in iter(lambda: response.read(_CHUNK), b""):
                        out.write(chunk)
                        hasher.update(chunk)
                        bar.update(len(chunk))
            except (urllib.error.URLError, OSError, ValueError) as error:
                raise DataNotFoundError(
                    _how_to_get(relpath, target, url, str(error))
                ) from error
        actual = hasher.hexdigest()
        if actual != digest:
            raise ChecksumError(
                f"checksum mismatch for {relpath!r} downloaded from {url}: expected"
                f" sha256 {digest}, got {actual}; the download was deleted"
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def fetch(
    relpath: str,
    *,
    base_url: str | None = None,
    progress: bool = True,
    verify: bool = False,
) -> Path:
    """The local path of the data file ``relpath``, downloaded first if it is missing.

    Args:
        relpath: the file's path relative to the data directory, as in the manifest,
            e.g. ``"mnist/t10k-images-idx3-ubyte.gz"``.
        base_url: download from this mirror (laid out like the data directory) instead
            of the pinned upstream URL; default ``$XAISURVEY_DATA_URL`` or upstream.
        progress: show a tqdm progress bar while downloading.
        verify: hash a file that is already present (a size check is always done).

    Raises:
        DataError: ``relpath`` is not in the manifest.
        DataNotFoundError: the file is missing and the download failed (the message says
            where the file is expected, the URL, and how to provide it).
        ChecksumError: the downloaded (or, with ``verify``, the present) file has the
            wrong sha256, or a present file has the wrong size.

    Example:
        >>> fetch("mnist/t10k-labels-idx1-ubyte.gz").name
        't10k-labels-idx1-ubyte.gz'
    """
    _, digest, size = _entry(relpath)
    target = data_dir() / relpath
    if target.is_file():
        actual_size = target.stat().st_size
        if actual_size != size:
            raise ChecksumError(
                f"{target} has {actual_size:,} bytes, expected {size:,}: the file is"
                " damaged or partial; delete it and it will be downloaded again"
            )
        if verify:
            actual = sha256_file(target)
            if actual != digest:
                raise ChecksumError(
                    f"checksum mismatch for {target}: expected sha256 {digest}, got"
                    f" {actual}; delete the file and it will be downloaded again"
                )
        return target
    _download(relpath, target, source_url(relpath, base_url), digest, size, progress)
    return target


def fetch_many(
    relpaths: Iterable[str],
    *,
    base_url: str | None = None,
    progress: bool = True,
    verify: bool = False,
) -> list[Path]:
    """Fetch several files; one progress bar counts the files that had to be downloaded.

    ``verify`` also hashes the files that were already present (downloads are always
    verified).
    """
    relpaths = list(relpaths)
    root = data_dir()
    missing = [r for r in relpaths if not (root / r).is_file()]
    if missing:
        for relpath in tqdm(
            missing, desc="downloading data", unit="file", disable=not progress
        ):
            fetch(relpath, base_url=base_url, progress=False)
    return [
        fetch(r, base_url=base_url, progress=False, verify=verify) for r in relpaths
    ]


def _select(prefix: str | None) -> list[str]:
    files = sorted(manifest()["files"])
    selected = [f for f in files if prefix is None or f.startswith(prefix)]
    if not selected:
        raise DataError(f"no data file starts with {prefix!r}")
    return selected


def fetch_all(
    prefix: str | None = None,
    *,
    base_url: str | None = None,
    progress: bool = True,
    verify: bool = True,
) -> list[Path]:
    """Fetch every manifest file (or those whose path starts with ``prefix``, e.g.
    ``"camvid/"``).

    Files already present are hashed too (``verify``; about a second for all 92 MB), so
    on return every file is present and intact. Raises ``ChecksumError`` on the first
    damaged file.
    """
    return fetch_many(
        _select(prefix), base_url=base_url, progress=progress, verify=verify
    )


@dataclass
class CheckReport:
    """The result of :func:`check`: which files are fine, missing or corrupt.

    Attributes:
        root: the data directory checked.
        ok: files present with the right sha256.
        missing: files absent.
        corrupt: ``(relpath, expected sha256, actual sha256)`` for files with the wrong
            content.
    """

    root: Path
    ok: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    corrupt: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every checked file is present and intact."""
        return not self.missing and not self.corrupt

    def summary(self) -> str:
        """One line per problem plus a total, for the CLI."""
        lines = [f"data directory: {self.root}"]
        lines += [f"MISSING  {r}" for r in self.missing]
        lines += [f"CORRUPT  {r} (expected {e}, got {a})" for r, e, a in self.corrupt]
        lines.append(
            f"{len(self.ok)} ok, {len(self.missing)} missing, {len(self.corrupt)}"
            " corrupt"
        )
        return "\n".join(lines)


def check(prefix: str | None = None, *, progress: bool = False) -> CheckReport:
    """Hash every manifest file present in the data directory and compare with the
    manifest.

    Downloads nothing. About a second for the whole data set (92 MB).

    Example:
        >>> report = check("mnist/")
        >>> report.passed
        True
    """
    root = data_dir()
    report = CheckReport(root=root)
    for relpath in tqdm(
        _select(prefix), desc="checking data", unit="file", disable=not progress
    ):
        _, digest, _ = _entry(relpath)
        path = root / relpath
        if not path.is_file():
            report.missing.append(relpath)
            continue
        actual = sha256_file(path)
        if actual == digest:
            report.ok.append(relpath)
        else:
            report.corrupt.append((relpath, digest, actual))
    return report
