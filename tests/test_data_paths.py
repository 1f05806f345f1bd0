"""The data directory and the checksummed download, tested against file:// and a loopback server."""
from __future__ import annotations

import hashlib
import http.server
import shutil
import socket
import threading
from pathlib import Path

import pytest

from xaisurvey.data import paths
from xaisurvey.data.paths import ChecksumError, DataError, DataNotFoundError

REAL_DATA = paths.data_dir()  # where the real data is for this run (CI: ../shared/data)
SMALL = "mnist/t10k-labels-idx1-ubyte.gz"  # 5 kB, a real manifest entry
OTHER = "cifar10-test-subset/cat/0000.jpg"
needs_data = pytest.mark.skipif(not (REAL_DATA / SMALL).is_file(), reason="real data not available")


@pytest.fixture
def empty_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    target = tmp_path / "data"
    monkeypatch.setenv("XAISURVEY_DATA", str(target))
    monkeypatch.delenv("XAISURVEY_DATA_URL", raising=False)
    return target


@pytest.fixture
def mirror(tmp_path: Path) -> Path:
    """A folder laid out like the data directory, holding copies of two real files."""
    root = tmp_path / "mirror"
    for relpath in (SMALL, OTHER):
        (root / relpath).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REAL_DATA / relpath, root / relpath)
    return root


@pytest.fixture
def server(mirror: Path):
    """Serve the mirror on 127.0.0.1 (never the network); yields its base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(mirror), **kwargs)

        def log_message(self, *args):  # keep test output clean
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _no_partial_files(folder: Path) -> bool:
    return not any(p.name.endswith(".part") for p in folder.rglob("*")) if folder.exists() else True


def test_data_dir_prefers_env_then_xdg_then_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XAISURVEY_DATA", str(tmp_path / "explicit"))
    assert paths.data_dir() == tmp_path / "explicit"
    monkeypatch.setenv("XAISURVEY_DATA", "  ")  # set but empty: ignored
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert paths.data_dir() == tmp_path / "xdg" / "xaisurvey" / "data"
    monkeypatch.delenv("XAISURVEY_DATA")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert paths.data_dir() == tmp_path / "home" / ".cache" / "xaisurvey" / "data"


def test_upstream_urls_are_pinned_raw_github_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XAISURVEY_DATA_URL", raising=False)
    assert paths.source_url("weights/imagenet_mobilenetv1_025/model_best.pth.tar") == (
        "https://raw.githubusercontent.com/biubug6/Pytorch_Retinaface/"
        "3c31dcd0049aff7fce28394ca96257be0657d17c/model_best.pth.tar"
    )
    assert paths.source_url("imagenette-224-val/val/n01440764/ILSVRC2012_val_00009111.JPEG") == (
        "https://raw.githubusercontent.com/thunderInfy/imagenette/"
        "b850f030ff0701c36a4adc8b928ea9483a46915b/val/n01440764/ILSVRC2012_val_00009111.JPEG"
    )
    assert paths.source_url("camvid/camvid11.png").endswith("bb68b64e72cb004b3ed927fee0f5624dd8097498/Scripts/camvid11.png")
    assert paths.source_url("fashion-mnist/fashion-mnist-sprite.png").endswith("/doc/img/fashion-mnist-sprite.png")
    monkeypatch.setenv("XAISURVEY_DATA_URL", "http://127.0.0.1:9/m/")
    assert paths.source_url(SMALL) == f"http://127.0.0.1:9/m/{SMALL}"
    assert paths.source_url(SMALL, base_url="file:///x") == f"file:///x/{SMALL}"


@needs_data
def test_manifest_agrees_with_the_data_checksum_list() -> None:
    listed = {}
    for line in (REAL_DATA / "SHA256SUMS.files").read_text().splitlines():
        if line.strip():
            digest, relpath = line.split(maxsplit=1)
            listed[relpath.strip()] = digest
    files = paths.manifest()["files"]
    shared = [rel for rel in listed if rel in files]
    assert len(shared) >= 20
    assert all(files[rel][1] == listed[rel] for rel in shared)
    # every weight file and every single file the loaders read is covered by the checksum list
    assert "weights/imagenet_mobilenetv1_025/model_best.pth.tar" in shared
    counts = {prefix: sum(rel.startswith(prefix) for rel in files)
              for prefix in ("imagenette-224-val/", "camvid/val/", "camvid/valannot/", "cifar10-test-subset/")}
    assert counts == {"imagenette-224-val/": 3925, "camvid/val/": 101, "camvid/valannot/": 101,
                      "cifar10-test-subset/": 1000}


def test_unknown_file_is_a_clear_error(empty_data_dir: Path) -> None:
    with pytest.raises(DataError, match="not a known data file"):
        paths.fetch("mnist/train-images-idx3-ubyte.gz")


@needs_data
def test_fetch_from_file_url(empty_data_dir: Path, mirror: Path) -> None:
    path = paths.fetch(SMALL, base_url=mirror.as_uri(), progress=False)
    assert path == empty_data_dir / SMALL
    assert hashlib.sha256(path.read_bytes()).hexdigest() == paths.manifest()["files"][SMALL][1]
    assert _no_partial_files(empty_data_dir)


@needs_data
def test_fetch_over_loopback_http_shows_progress(empty_data_dir: Path, server: str, capsys: pytest.CaptureFixture) -> None:
    path = paths.fetch(SMALL, base_url=server, progress=True)
    assert path.read_bytes() == (REAL_DATA / SMALL).read_bytes()
    assert SMALL in capsys.readouterr().err  # the tqdm bar is labelled with the file
    # a second call finds the file and downloads nothing (the server could be gone)
    assert paths.fetch(SMALL, base_url="http://127.0.0.1:9", progress=False) == path


@needs_data
def test_env_var_mirror_feeds_the_loaders(empty_data_dir: Path, server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XAISURVEY_DATA_URL", server)
    got = paths.fetch_many([SMALL, OTHER], progress=False)
    assert [p.relative_to(empty_data_dir).as_posix() for p in got] == [SMALL, OTHER]
    report = paths.check("mnist/")
    assert report.ok == [SMALL] and not report.corrupt and len(report.missing) == 2
    assert paths.fetch_all(OTHER, progress=False) == [empty_data_dir / OTHER]  # a prefix selects files
    with pytest.raises(DataError, match="no data file starts with"):
        paths.fetch_all("no-such-folder/")


@needs_data
def test_checksum_mismatch_is_an_error_and_deletes_the_download(empty_data_dir: Path, mirror: Path, server: str) -> None:
    (mirror / SMALL).write_bytes(b"not the real file")
    expected = paths.manifest()["files"][SMALL][1]
    actual = hashlib.sha256(b"not the real file").hexdigest()
    with pytest.raises(ChecksumError) as info:
        paths.fetch(SMALL, base_url=server, progress=False)
    message = str(info.value)
    assert SMALL in message and expected in message and actual in message
    assert not (empty_data_dir / SMALL).exists()
    assert _no_partial_files(empty_data_dir)


@needs_data
@pytest.mark.parametrize("kind", ["http-404", "file-missing", "unreachable"])
def test_missing_file_error_says_where_and_how(empty_data_dir: Path, mirror: Path, server: str, kind: str) -> None:
    (mirror / SMALL).unlink()
    if kind == "http-404":
        base = server
    elif kind == "file-missing":
        base = mirror.as_uri()
    else:  # a port nobody listens on
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        base = f"http://127.0.0.1:{port}"
    with pytest.raises(DataNotFoundError) as info:
        paths.fetch(SMALL, base_url=base, progress=False)
    message = str(info.value)
    assert SMALL in message
    assert str(empty_data_dir / SMALL) in message  # where it is expected
    assert f"{base}/{SMALL}" in message  # the URL tried
    assert "XAISURVEY_DATA" in message  # how to get it
    assert isinstance(info.value, FileNotFoundError)
    assert _no_partial_files(empty_data_dir)


@needs_data
def test_present_but_damaged_files_are_errors(empty_data_dir: Path) -> None:
    real = (REAL_DATA / SMALL).read_bytes()
    target = empty_data_dir / SMALL
    target.parent.mkdir(parents=True)
    target.write_bytes(real[:-1])  # truncated: caught by the size check on every fetch
    with pytest.raises(ChecksumError, match="bytes, expected"):
        paths.fetch(SMALL, progress=False)
    target.write_bytes(real[:-1] + bytes([real[-1] ^ 1]))  # same size, one bit flipped
    assert paths.fetch(SMALL, progress=False) == target  # trusted without verify ...
    with pytest.raises(ChecksumError, match="checksum mismatch"):
        paths.fetch(SMALL, verify=True, progress=False)  # ... caught with it
    report = paths.check("mnist/")
    assert [r for r, _, _ in report.corrupt] == [SMALL] and not report.passed
    assert "CORRUPT" in report.summary()


@needs_data
def test_the_real_data_directory_passes_check() -> None:
    report = paths.check()
    assert report.passed, report.summary()
    assert len(report.ok) == len(paths.manifest()["files"])
