"""Sphinx extension: under each chapter's title, how long it takes to run and whether it needs the data.

Two badges, neither typed by hand:

- **Run time**, measured: the seconds myst-nb recorded when it executed the page (the same number
  the build-information page's execution table shows; with the execution cache it is the time of
  the execution whose outputs the page shows).
- **Data**, determined by code: the page's code cells are parsed, their ``import`` statements are
  resolved to the objects they name, and every call is followed into the ``xaisurvey`` package
  (through the functions it calls, the classes it builds, and the factory behind
  ``models.load("name")``) until it reaches :func:`xaisurvey.data.paths.fetch`, the one door to
  the real data and the pretrained weights. A page that reaches it needs ``XAISURVEY_DATA``
  (``../shared/data``) or the download on first use; the badge names what it reads.

Pages under ``xaisurvey_badges_prefix`` (default ``chapters/``) that are notebooks get the badges.
"""
from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import re
import textwrap
import types
from pathlib import Path
from typing import Any, Iterable

from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)

PACKAGE = "xaisurvey"
GENERIC = "data files"  # fetch() called directly, not through a named loader
WEIGHTS = "pretrained weights"
NAMES = {  # how a loader is named on the badge; others keep their function name
    "mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", "imagenette": "Imagenette",
    "imagenette_files": "Imagenette", "imagenet_classes": "ImageNet class names", "photo": "photos",
    "camvid": "CamVid", "cifar10_subset": "CIFAR-10",
}
CSS = "xaisurvey_badges.css"


# --- what reads the real data: followed through the package ------------------------------------

class DataReach:
    """Which of the real data an object of the ``xaisurvey`` package may read, found from its source."""

    def __init__(self) -> None:
        paths = importlib.import_module(f"{PACKAGE}.data.paths")
        data = importlib.import_module(f"{PACKAGE}.data")
        self.registry = importlib.import_module(f"{PACKAGE}.models.registry")
        importlib.import_module(f"{PACKAGE}.models")  # registers every model
        self.doors = {paths.fetch, paths.fetch_many, paths.fetch_all}
        self.loaders = {getattr(data, name): name for name in data.__all__ if callable(getattr(data, name))}
        self.memo: dict[int, frozenset[str]] = {}

    # The public answer -------------------------------------------------------------------------
    def of(self, obj: Any) -> frozenset[str]:
        """The names of the data ``obj`` may read (empty: none)."""
        obj = inspect.unwrap(obj) if callable(obj) else obj
        if obj in self.doors:
            return frozenset({GENERIC})
        if not self._ours(obj):
            return frozenset()
        key = id(obj)
        if key in self.memo:
            return self.memo[key]
        self.memo[key] = frozenset()  # recursion guard
        found: set[str] = set()
        if inspect.isclass(obj):
            for member in vars(obj).values():
                member = getattr(member, "__func__", member)  # static and class methods
                if isinstance(member, property):
                    member = member.fget
                if inspect.isfunction(member):
                    found |= self.of(member)
        elif inspect.isfunction(obj):
            found = self._calls(obj)
        if found:
            if obj in self.loaders:
                found = {self.loaders[obj]}
            elif getattr(obj, "__module__", "") == f"{PACKAGE}.models.pretrained" and GENERIC in found:
                found = (found - {GENERIC}) | {WEIGHTS}
        self.memo[key] = frozenset(found)
        return self.memo[key]

    def of_model(self, name: str) -> frozenset[str]:
        """What ``models.load(name)`` may read (the registered factory, or its family's)."""
        if name in self.registry._REGISTRY:
            return self.of(self.registry._REGISTRY[name][0])
        for prefix, (factory, _) in self.registry._FAMILIES.items():
            if name.startswith(prefix):
                return self.of(factory)
        return frozenset()

    def of_models_matching(self, pattern: str | None) -> frozenset[str]:
        """``models.load`` with a name known only in part (an f-string) or not at all (``None``)."""
        names = [n for n in self.registry._REGISTRY if pattern is None or re.fullmatch(pattern, n)]
        return frozenset().union(*(self.of_model(n) for n in names)) if names else frozenset()

    # The walk --------------------------------------------------------------------------------
    @staticmethod
    def _ours(obj: Any) -> bool:
        module = getattr(obj, "__module__", None) or ""
        return (inspect.isfunction(obj) or inspect.isclass(obj)) and (
            module == PACKAGE or module.startswith(PACKAGE + "."))

    def _calls(self, function: types.FunctionType) -> set[str]:
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
        except (OSError, TypeError, SyntaxError):
            return set()
        scope = dict(function.__globals__)
        if function.__closure__:
            scope.update((name, cell.cell_contents) for name, cell in
                         zip(function.__code__.co_freevars, function.__closure__) if _filled(cell))
        scope.update(imported_scope(tree, function.__globals__.get("__package__")))  # imports inside it
        return self.calls_in(tree, scope)

    def calls_in(self, tree: ast.AST, scope: dict[str, Any]) -> set[str]:
        """Everything the calls in ``tree`` may read, names resolved in ``scope``."""
        found: set[str] = set()
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            target = resolve(node.func, scope)
            if target is None:
                continue
            if target is self.registry.load:
                found |= self._load_call(node)
            else:
                found |= self.of(target)
        return found

    def _load_call(self, call: ast.Call) -> frozenset[str]:
        arg = call.args[0] if call.args else next((k.value for k in call.keywords if k.arg == "name"), None)
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            return self.of_model(arg.value)
        if isinstance(arg, ast.JoinedStr):  # f"resnet{depth}_cifar10": every name that fits
            pattern = "".join(re.escape(v.value) if isinstance(v, ast.Constant) else ".+" for v in arg.values)
            return self.of_models_matching(pattern)
        return self.of_models_matching(None)  # a name only known at run time: any model


def _filled(cell: types.CellType) -> bool:
    try:
        cell.cell_contents
    except ValueError:
        return False
    return True


def resolve(node: ast.AST, scope: dict[str, Any]) -> Any:
    """The object a name or dotted attribute (``a.b.c``) refers to in ``scope``, or ``None``."""
    if isinstance(node, ast.Name):
        return scope.get(node.id)
    if isinstance(node, ast.Attribute):
        base = resolve(node.value, scope)
        if isinstance(base, types.ModuleType) or inspect.isclass(base):
            return getattr(base, node.attr, None)
    return None


# --- a page's code ----------------------------------------------------------------------------

def code_cells(path: Path) -> list[str]:
    """The source of every code cell of a MyST notebook (or ``.ipynb``); magics dropped."""
    import jupytext

    notebook = jupytext.read(path) if path.suffix == ".ipynb" else jupytext.read(path, fmt="md:myst")
    cells = []
    for cell in notebook.cells:
        if cell.cell_type == "code":
            lines = [l for l in cell.source.splitlines() if not l.lstrip().startswith(("%", "!"))]
            cells.append("\n".join(lines))
    return cells


def _module(name: str) -> types.ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def imported_scope(tree: ast.AST, package: str | None = None) -> dict[str, Any]:
    """The names the ``import`` statements in ``tree`` bind to the package's objects.

    Only imports of ``xaisurvey`` (absolute, or relative to ``package``) are resolved; others are
    left out, so calls into them are not followed.
    """
    scope: dict[str, Any] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if top != PACKAGE or _module(alias.name) is None:
                    continue
                scope[alias.asname or top] = _module(alias.name if alias.asname else top)
        elif isinstance(node, ast.ImportFrom):
            name = "." * node.level + (node.module or "")
            if node.level:
                if not package:
                    continue
                name = importlib.util.resolve_name(name, package)
            if name.split(".")[0] != PACKAGE or (module := _module(name)) is None:
                continue
            for alias in node.names:
                if alias.name == "*":
                    scope.update({k: v for k, v in vars(module).items() if not k.startswith("_")})
                    continue
                value = getattr(module, alias.name, None)
                if value is None:
                    value = _module(f"{name}.{alias.name}")
                if value is not None:
                    scope[alias.asname or alias.name] = value
    return scope


def data_needed(cells: Iterable[str], reach: DataReach | None = None) -> list[str]:
    """The real data a page's code may read, as names for the badge (sorted; empty: none)."""
    reach = reach or DataReach()
    tree = ast.Module(body=[], type_ignores=[])
    for source in cells:
        try:
            tree.body.extend(ast.parse(source).body)
        except SyntaxError:
            continue
    found = reach.calls_in(tree, imported_scope(tree))
    return sorted({NAMES.get(name, name) for name in found}, key=lambda n: (n in (GENERIC, WEIGHTS), n.lower()))


def format_runtime(seconds: float) -> str:
    if seconds < 1:
        return "under a second"
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min"


# --- the badges on the page --------------------------------------------------------------------

def _reach(app: Sphinx) -> DataReach:
    if getattr(app, "_xaisurvey_reach", None) is None:
        app._xaisurvey_reach = DataReach()
    return app._xaisurvey_reach


def _runtime(env: Any, docname: str) -> float | None:
    try:
        from myst_nb.sphinx_ import NbMetadataCollector
    except ImportError:
        return None
    data = NbMetadataCollector.get_exec_data(env, docname)
    if not data or data.get("runtime") is None:
        return None
    return float(data["runtime"])


def _badge(kind: str, label: str, *content: nodes.Node | str) -> nodes.inline:
    badge = nodes.inline(classes=["xaisurvey-badge", f"xaisurvey-badge-{kind}"])
    badge += nodes.inline(text=label, classes=["xaisurvey-badge-label"])
    badge += nodes.inline(text=": ", classes=["xaisurvey-badge-sep"])  # for text and LaTeX; hidden by the CSS
    value = nodes.inline(classes=["xaisurvey-badge-value"])
    for part in content:
        value += nodes.Text(part) if isinstance(part, str) else part
    badge += value
    return badge


def badges(app: Sphinx, doctree: nodes.document) -> None:
    env = app.env
    docname = env.docname
    prefix = app.config.xaisurvey_badges_prefix
    source = Path(env.doc2path(docname))
    notebook = source.suffix == ".ipynb" or "format_name: myst" in source.read_text()[:600]
    if not docname.startswith(prefix) or not notebook:
        return
    title = next(iter(doctree.findall(nodes.title)), None)
    if title is None:
        return
    runtime = _runtime(env, docname)
    needed = data_needed(code_cells(source), _reach(app))
    row = nodes.paragraph(classes=["xaisurvey-badges"])
    if runtime is not None:
        row += _badge("runtime", "Run time", format_runtime(runtime))
        row += nodes.inline(text=" \N{MIDDLE DOT} ", classes=["xaisurvey-badge-sep"])
    data_page = app.config.xaisurvey_badges_data_page
    if needed:
        content: list[nodes.Node | str] = [", ".join(needed)]
        if data_page and data_page in env.found_docs:
            link = addnodes.pending_xref("", refdomain="std", reftype="doc", reftarget="/" + data_page,
                                         refexplicit=True, refwarn=True)
            link += nodes.inline(text="how to get it")
            content += [" (", link, ")"]
        row += _badge("data", "Needs the data", *content)
    else:
        row += _badge("nodata", "Data", "nothing to download")
    title.parent.insert(title.parent.index(title) + 1, row)


def _copy_css(app: Sphinx, error: Exception | None) -> None:
    if error is None and app.builder.format == "html":
        target = Path(app.outdir) / "_static" / CSS
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text((Path(__file__).with_name(CSS)).read_text())


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("xaisurvey_badges_prefix", "chapters/", "env")
    app.add_config_value("xaisurvey_badges_data_page", "chapters/appendix/data", "env")
    app.connect("doctree-read", badges)
    app.connect("build-finished", _copy_css)
    app.add_css_file(CSS)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
