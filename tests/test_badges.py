"""The badges under each chapter's title: measured run time, and whether the page needs the real data.

The data answer comes from following a page's calls into the package (``_ext/xaisurvey_badges.py``):
the first tests check that walk on snippets; the last builds a small book with the project's own
``_config.yml`` and the flags of ``make book`` and reads the badges back from the HTML.
"""
from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_book_fails_loudly import FRONT_MATTER, JUPYTER_BOOK, ROOT, _book_flags

spec = importlib.util.spec_from_file_location("xaisurvey_badges", ROOT / "_ext" / "xaisurvey_badges.py")
badges = importlib.util.module_from_spec(spec)
assert spec.loader is not None
sys.modules.setdefault("xaisurvey_badges", badges)
spec.loader.exec_module(badges)


@pytest.fixture(scope="module")
def reach() -> "badges.DataReach":
    return badges.DataReach()


def needed(reach: "badges.DataReach", *cells: str) -> list[str]:
    return badges.data_needed(cells, reach)


def test_synthetic_worlds_and_plain_code_need_no_data(reach: "badges.DataReach") -> None:
    assert needed(reach, "import torch\nx = torch.zeros(3)\nprint(x.sum())") == []
    assert needed(reach, "from xaisurvey.data.worlds import shapes\nw = shapes(8, seed=0)") == []
    assert needed(reach, "import xaisurvey\nxaisurvey.setup()") == []


def test_a_loader_is_found_however_it_is_imported(reach: "badges.DataReach") -> None:
    assert needed(reach, "from xaisurvey.data import photo", "img = photo('cat_dog')") == ["photos"]
    assert needed(reach, "import xaisurvey.data as D\nD.mnist('test')") == ["MNIST"]
    assert needed(reach, "import xaisurvey\nxaisurvey.data.camvid()") == ["CamVid"]
    assert needed(reach, "from xaisurvey import data\nfiles = data.imagenette(limit=4)") == ["Imagenette"]


def test_fetch_itself_is_the_door(reach: "badges.DataReach") -> None:
    assert needed(reach, "from xaisurvey.data import fetch\nfetch('mnist/t10k-labels-idx1-ubyte.gz')") == ["data files"]


def test_models_are_followed_to_what_they_read(reach: "badges.DataReach") -> None:
    # a pretrained network reads its weights through fetch; a network trained on MNIST reads MNIST
    assert needed(reach, "from xaisurvey.models import load\nm = load('mobilenet_v1_025_imagenet')") == [
        "pretrained weights"]
    assert needed(reach, "from xaisurvey import models\nm = models.load('mnist_cnn', progress=False)") == ["MNIST"]
    # a network trained on a synthetic world reads nothing
    assert needed(reach, "from xaisurvey.models import load\nm = load('shapes_gap_cnn')") == []


def test_a_model_name_known_in_part_takes_every_model_that_fits(reach: "badges.DataReach") -> None:
    fits = needed(reach, "from xaisurvey.models import load\nfor d in (20, 56):\n    load(f'resnet{d}_cifar10')")
    assert fits == ["pretrained weights"]
    # a name only known at run time: any registered model, so the union of what they read
    anything = needed(reach, "from xaisurvey.models import load\nname = input()\nload(name)")
    assert {"MNIST", "pretrained weights"} <= set(anything)


def test_calls_inside_the_package_are_followed(reach: "badges.DataReach") -> None:
    # the battery loads its models and images inside a function, with imports local to it
    found = needed(reach, "from xaisurvey.evaluation.battery import load_data\nload_data()")
    assert {"MNIST", "Imagenette", "pretrained weights"} <= set(found), found


def test_magics_and_shell_lines_are_skipped(tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    page.write_text(FRONT_MATTER + "# P\n\n```{code-cell} ipython3\n%matplotlib inline\n!ls\nx = 1\n```\n")
    assert badges.code_cells(page) == ["x = 1"]


@pytest.mark.parametrize("seconds, text", [(0.4, "under a second"), (42.4, "42 s"), (150, "2.5 min")])
def test_run_time_is_written_for_a_reader(seconds: float, text: str) -> None:
    assert badges.format_runtime(seconds) == text


# --- in a built book --------------------------------------------------------------------------

DATA_CHAPTER = FRONT_MATTER + """# Reads photos

```{code-cell} ipython3
import time
from xaisurvey.data import photo

def first_photo():  # defined, not called: the badge is about what the code may read
    return photo("cat_dog")

time.sleep(1.5)
```
"""

PLAIN_CHAPTER = FRONT_MATTER + """# Synthetic only

```{code-cell} ipython3
from xaisurvey.data.worlds import shapes
print(len(shapes(2, seed=0)))
```
"""


@pytest.mark.slow
@pytest.mark.skipif(not JUPYTER_BOOK.exists(), reason="the book extra is not installed")
def test_every_chapter_shows_its_measured_run_time_and_data_need(tmp_path: Path) -> None:
    book = tmp_path / "book"
    (book / "chapters" / "demo").mkdir(parents=True)
    (book / "chapters" / "appendix").mkdir()
    shutil.copy(ROOT / "_config.yml", book / "_config.yml")
    shutil.copy(ROOT / "references.bib", book / "references.bib")
    shutil.copytree(ROOT / "_ext", book / "_ext")
    shutil.copytree(ROOT / "_static", book / "_static", ignore=shutil.ignore_patterns("mathjax"))
    (book / "_toc.yml").write_text(
        "format: jb-book\nroot: index\nchapters:\n  - file: chapters/demo/01-data\n"
        "  - file: chapters/demo/02-plain\n  - file: chapters/appendix/data\n")
    (book / "index.md").write_text("# Index\n\nNo code here, no badges.\n")
    (book / "chapters" / "demo" / "01-data.md").write_text(DATA_CHAPTER)
    (book / "chapters" / "demo" / "02-plain.md").write_text(PLAIN_CHAPTER)
    (book / "chapters" / "appendix" / "data.md").write_text("# Data\n\nWhere the data come from.\n")
    result = subprocess.run([str(JUPYTER_BOOK), "build", str(book), *_book_flags()],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    html = book / "_build" / "html"

    data_page = (html / "chapters" / "demo" / "01-data.html").read_text()
    runtime = re.search(r'xaisurvey-badge-runtime.*?badge-value">([\d.]+) s<', data_page, re.S)
    assert runtime, "no run-time badge"
    assert 1.5 <= float(runtime.group(1)) < 60  # measured: the cell sleeps 1.5 s
    assert re.search(r"Needs the data</span>.*?photos", data_page, re.S)
    assert 'href="../appendix/data.html"' in data_page  # how to get it
    # the badges sit right under the title
    assert data_page.index("Reads photos") < data_page.index("xaisurvey-badges") < data_page.index("first_photo")

    plain_page = (html / "chapters" / "demo" / "02-plain.html").read_text()
    assert "xaisurvey-badge-runtime" in plain_page
    assert re.search(r"Data</span>.*?nothing to download", plain_page, re.S)
    assert "Needs the data" not in plain_page

    assert "xaisurvey-badge" not in (html / "index.html").read_text().split("</head>")[1]
    assert (html / "_static" / "xaisurvey_badges.css").is_file()
