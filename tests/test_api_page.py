"""The API reference page must list every public function and class of the package."""
from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import xaisurvey

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "chapters" / "appendix" / "api.md"


def documented_modules() -> dict[str, str | None]:
    """Module name -> the explicit ``:members:`` list of its automodule.

    ``None`` means all of ``__all__``; ``"*"`` means every public name (``:ignore-module-all:``).
    """
    text = PAGE.read_text()
    found: dict[str, str | None] = {}
    for match in re.finditer(r"\.\. automodule:: (\S+)\n((?:   :.*\n)*)", text):
        members = re.search(r":members:(.*)", match.group(2))
        listed = members.group(1).strip() if members else ""
        found[match.group(1)] = "*" if ":ignore-module-all:" in match.group(2) else (listed or None)
    return found


def public_names(module_name: str, *, ignore_all: bool = False) -> set[str]:
    module = importlib.import_module(module_name)
    names = None if ignore_all else getattr(module, "__all__", None)
    if names is None:
        names = [n for n, obj in vars(module).items() if not n.startswith("_") and getattr(obj, "__module__", None) == module_name]
    return {n for n in names if inspect.isfunction(getattr(module, n)) or inspect.isclass(getattr(module, n))}


def test_every_public_function_is_on_the_api_page() -> None:
    documented = documented_modules()
    covered: set[tuple[str, str]] = set()  # (defining module, name) of everything the page shows
    for match in re.finditer(r"\.\. auto(?:function|class):: (\S+)\.(\w+)\n", PAGE.read_text()):
        covered.add((match.group(1), match.group(2)))
    for module_name, members in documented.items():
        module = importlib.import_module(module_name)
        if members in (None, "*"):
            names = public_names(module_name, ignore_all=members == "*")
        else:
            names = {m.strip() for m in members.split(",")}
        for name in names:
            obj = getattr(module, name)
            covered.add((getattr(obj, "__module__", module_name), obj.__qualname__ if hasattr(obj, "__qualname__") else name))

    missing = []
    for info in pkgutil.walk_packages(xaisurvey.__path__, prefix="xaisurvey."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue  # private modules: their public names are re-exported by a package
        if info.name == "xaisurvey.cli":
            continue  # the command line is documented by its listed entry points
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if name.startswith("_") or not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            if obj.__module__ != info.name:
                continue  # imported from elsewhere
            if (obj.__module__, obj.__qualname__) not in covered:
                missing.append(f"{info.name}.{name}")
    assert not missing, "public functions/classes missing from the API page (export them from their package's __all__): " + ", ".join(sorted(missing))


def test_the_page_documents_the_main_subpackages() -> None:
    documented = documented_modules()
    for name in ("xaisurvey.attribution", "xaisurvey.data", "xaisurvey.models", "xaisurvey.evaluation", "xaisurvey.hooks"):
        assert name in documented
