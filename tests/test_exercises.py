"""Exercises with hidden solutions (sphinx-exercise), as the chapters' conventions require.

Every chapter of Parts I-IV (read from ``_toc.yml``) has at least three ``{exercise}`` directives
in its ``## Exercises`` section; every exercise has a label (``ex-...``, or ``project-...`` for
the one open-ended project of each part) and a ``{solution-start}`` for that label, shown as a
dropdown (hidden until opened); at least one solution per chapter executes code; labels are unique
across the whole book; each part has exactly one ``project-`` exercise.

The rules are checked by :func:`problems`, which reads a book from disk: the tests below run it on
small books written to a temporary folder (so the checker itself is tested), then on this book.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
MIN_EXERCISES = 3
PARTS = re.compile(r"^Part (I|II|III|IV)\b")  # the parts whose chapters carry exercises
FENCE = re.compile(r"^(?P<fence>:{3,}|`{3,})\{(?P<name>[a-z-]+)\}\s*(?P<arg>\S*)")
OPTION = re.compile(r"^:(?P<key>[a-z_-]+):\s*(?P<value>.*)$")
EXERCISE = {"exercise", "exercise-start"}
SOLUTION = {"solution", "solution-start"}
SOLUTION_END = {"solution-end"}


@dataclass
class Exercise:
    label: str | None
    line: int
    in_section: bool  # inside the chapter's "## Exercises" section


@dataclass
class Solution:
    target: str
    line: int
    dropdown: bool
    has_code: bool = False


@dataclass
class Chapter:
    path: Path
    exercises: list[Exercise] = field(default_factory=list)
    solutions: list[Solution] = field(default_factory=list)


def toc_parts(root: Path) -> list[tuple[str, list[Path]]]:
    """``[(caption, [chapter source, ...]), ...]`` for every part of ``root/_toc.yml``."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    parts = []
    for part in toc.get("parts", []):
        files = []
        for entry in part.get("chapters", []):
            stem = root / entry["file"]
            source = next((stem.with_suffix(s) for s in (".md", ".ipynb") if stem.with_suffix(s).exists()), None)
            files.append(source if source is not None else stem.with_suffix(".md"))
        parts.append((part.get("caption", ""), files))
    return parts


def read_chapter(path: Path) -> Chapter:
    """The exercises and solutions of one MyST source, with their labels and options."""
    chapter = Chapter(path)
    lines = path.read_text().splitlines()
    section = None  # the current level-2 heading
    open_solution: Solution | None = None
    for number, line in enumerate(lines, start=1):
        if line.startswith("## "):
            section = line[3:].strip()
        match = FENCE.match(line)
        if match is None:
            continue
        name = match["name"]
        if name == "code-cell":
            if open_solution is not None:
                open_solution.has_code = True
            continue
        options = {}
        for following in lines[number:]:
            option = OPTION.match(following)
            if option is None:
                break
            options[option["key"]] = option["value"].strip()
        if name in EXERCISE:
            chapter.exercises.append(Exercise(options.get("label"), number, section == "Exercises"))
        elif name in SOLUTION:
            solution = Solution(match["arg"], number, "dropdown" in options.get("class", "").split())
            chapter.solutions.append(solution)
            open_solution = solution if name == "solution-start" else None
        elif name in SOLUTION_END:
            open_solution = None
    return chapter


def problems(root: Path) -> list[str]:
    """Every way the book at ``root`` breaks the exercise rules, one line each (empty: all good)."""
    found: list[str] = []
    labels: Counter[str] = Counter()
    for caption, files in toc_parts(root):
        checked = PARTS.match(caption) is not None
        projects = []
        for path in files:
            name = path.relative_to(root).as_posix()
            if not path.exists():
                found.append(f"{name}: listed in _toc.yml but missing")
                continue
            chapter = read_chapter(path)
            labels.update(e.label for e in chapter.exercises if e.label)
            if not checked:
                continue
            exercises = chapter.exercises
            if len(exercises) < MIN_EXERCISES:
                found.append(f"{name}: {len(exercises)} exercises, at least {MIN_EXERCISES} wanted")
            solved = {s.target for s in chapter.solutions}
            for exercise in exercises:
                where = f"{name}:{exercise.line}"
                if not exercise.label:
                    found.append(f"{where}: an exercise without a :label:")
                    continue
                if not exercise.label.startswith(("ex-", "project-")):
                    found.append(f"{where}: label {exercise.label!r} starts with neither 'ex-' nor 'project-'")
                if not exercise.in_section:
                    found.append(f"{where}: {exercise.label!r} is outside the '## Exercises' section")
                if exercise.label not in solved:
                    found.append(f"{where}: {exercise.label!r} has no {{solution-start}}")
                if exercise.label.startswith("project-"):
                    projects.append(f"{name}:{exercise.label}")
            own = {e.label for e in exercises}
            for solution in chapter.solutions:
                where = f"{name}:{solution.line}"
                if solution.target not in own:
                    found.append(f"{where}: a solution for {solution.target!r}, no such exercise in this chapter")
                if not solution.dropdown:
                    found.append(f"{where}: the solution of {solution.target!r} is not hidden (:class: dropdown)")
            if exercises and not any(s.has_code for s in chapter.solutions):
                found.append(f"{name}: no solution executes code")
        if checked and len(projects) != 1:
            found.append(f"{caption}: {len(projects)} project- exercises ({', '.join(projects) or 'none'}), one wanted")
    found += [f"label {label!r} is used {count} times" for label, count in sorted(labels.items()) if count > 1]
    return found


# --- the checker on small books ------------------------------------------------------------------

FRONT = "---\njupytext:\n  text_representation:\n    format_name: myst\n---\n\n"


def _exercise(label: str, code: bool = True, dropdown: bool = True) -> str:
    cls = ":class: dropdown\n" if dropdown else ""
    cell = "```{code-cell} ipython3\nprint(1 + 1)\n```\n\n" if code else ""
    return (f":::{{exercise}}\n:label: {label}\nPredict, then run.\n:::\n\n"
            f"::::{{solution-start}} {label}\n{cls}::::\n\n{cell}Because.\n\n::::{{solution-end}}\n::::\n\n")


def _chapter(*labels: str, heading: str = "Exercises", **kwargs: bool) -> str:
    return FRONT + "# A chapter\n\nText.\n\n" + f"## {heading}\n\n" + "".join(_exercise(l, **kwargs) for l in labels)


def _book(tmp_path: Path, chapters: dict[str, str], appendix: dict[str, str] | None = None) -> Path:
    """A book of one part ("Part I: ...") holding ``chapters`` and an unnumbered appendix part."""
    (tmp_path / "chapters").mkdir(parents=True)
    toc = "format: jb-book\nroot: chapters/intro\nparts:\n  - caption: \"Part I: Foundations\"\n    chapters:\n"
    for name, text in chapters.items():
        (tmp_path / "chapters" / f"{name}.md").write_text(text)
        toc += f"      - file: chapters/{name}\n"
    toc += "  - caption: Appendices\n    chapters:\n"
    for name, text in (appendix or {"notation": FRONT + "# Notation\n"}).items():
        (tmp_path / "chapters" / f"{name}.md").write_text(text)
        toc += f"      - file: chapters/{name}\n"
    (tmp_path / "_toc.yml").write_text(toc)
    return tmp_path


GOOD = {
    "a": _chapter("ex-a-one", "ex-a-two", "project-part1-build"),
    "b": _chapter("ex-b-one", "ex-b-two", "ex-b-three"),
}


def test_a_book_that_follows_the_rules_passes(tmp_path: Path) -> None:
    book = _book(tmp_path, GOOD)
    assert problems(book) == []
    chapter = read_chapter(book / "chapters" / "a.md")
    assert [e.label for e in chapter.exercises] == ["ex-a-one", "ex-a-two", "project-part1-build"]
    assert all(s.dropdown and s.has_code for s in chapter.solutions)


def test_the_appendices_need_no_exercises(tmp_path: Path) -> None:
    # the appendix has none, and its page is not checked: only Parts I-IV are
    assert problems(_book(tmp_path, GOOD, appendix={"notation": FRONT + "# Notation\n"})) == []


def test_fewer_than_three_exercises_fail(tmp_path: Path) -> None:
    book = _book(tmp_path, {**GOOD, "b": _chapter("ex-b-one", "ex-b-two")})
    assert problems(book) == ["chapters/b.md: 2 exercises, at least 3 wanted"]


def test_an_exercise_without_a_solution_fails(tmp_path: Path) -> None:
    text = GOOD["b"].replace("::::{solution-start} ex-b-two", "::::{solution-start} ex-b-2")
    found = problems(_book(tmp_path, {**GOOD, "b": text}))
    assert any("'ex-b-two' has no {solution-start}" in p for p in found), found
    assert any("a solution for 'ex-b-2', no such exercise" in p for p in found), found


def test_a_solution_shown_openly_fails(tmp_path: Path) -> None:
    text = _chapter("ex-b-one", "ex-b-two") + _exercise("ex-b-three", dropdown=False)
    found = problems(_book(tmp_path, {**GOOD, "b": text}))
    assert len(found) == 1 and "'ex-b-three' is not hidden" in found[0], found


def test_a_chapter_whose_solutions_run_no_code_fails(tmp_path: Path) -> None:
    book = _book(tmp_path, {**GOOD, "b": _chapter("ex-b-one", "ex-b-two", "ex-b-three", code=False)})
    assert problems(book) == ["chapters/b.md: no solution executes code"]


def test_a_label_used_twice_in_the_book_fails(tmp_path: Path) -> None:
    book = _book(tmp_path, {**GOOD, "b": _chapter("ex-b-one", "ex-a-two", "ex-b-three")})
    assert problems(book) == ["label 'ex-a-two' is used 2 times"]


def test_a_label_reused_in_an_appendix_fails_too(tmp_path: Path) -> None:
    appendix = {"notation": FRONT + "# Notation\n\n" + _exercise("ex-a-one")}
    assert problems(_book(tmp_path, GOOD, appendix=appendix)) == ["label 'ex-a-one' is used 2 times"]


def test_a_part_needs_exactly_one_project(tmp_path: Path) -> None:
    none = {**GOOD, "a": _chapter("ex-a-one", "ex-a-two", "ex-a-three")}
    assert problems(_book(tmp_path / "none", none)) == ["Part I: Foundations: 0 project- exercises (none), one wanted"]
    two = {**GOOD, "b": _chapter("ex-b-one", "ex-b-two", "project-part1-other")}
    found = problems(_book(tmp_path / "two", two))
    assert len(found) == 1 and found[0].startswith("Part I: Foundations: 2 project- exercises"), found


def test_exercises_outside_their_section_and_unlabelled_ones_fail(tmp_path: Path) -> None:
    moved = _chapter("ex-b-one", "ex-b-two", "ex-b-three", heading="Summary")
    found = problems(_book(tmp_path / "moved", {**GOOD, "b": moved}))
    assert len(found) == 3 and all("outside the '## Exercises' section" in p for p in found), found
    unlabelled = GOOD["b"].replace(":label: ex-b-one\n", "")
    found = problems(_book(tmp_path / "unlabelled", {**GOOD, "b": unlabelled}))
    assert any("an exercise without a :label:" in p for p in found), found


def test_a_bad_label_prefix_fails(tmp_path: Path) -> None:
    book = _book(tmp_path, {**GOOD, "b": _chapter("ex-b-one", "ex-b-two", "q3")})
    found = problems(book)
    assert len(found) == 1 and found[0].endswith("label 'q3' starts with neither 'ex-' nor 'project-'"), found


def test_backtick_fences_and_gated_exercises_count(tmp_path: Path) -> None:
    text = (FRONT + "# C\n\n## Exercises\n\n```{exercise}\n:label: ex-c-one\nQ\n```\n\n"
            "```{exercise-start}\n:label: ex-c-two\n```\nQ\n```{exercise-end}\n```\n\n"
            ":::{exercise}\n:label: ex-c-three\nQ\n:::\n\n"
            + "".join(f"````{{solution-start}} ex-c-{n}\n:class: dropdown\n````\n\n```{{code-cell}} ipython3\n1\n```\n\n"
                      f"````{{solution-end}}\n````\n\n" for n in ("one", "two", "three")))
    chapter = read_chapter(_book(tmp_path, {**GOOD, "b": text}) / "chapters" / "b.md")
    assert [e.label for e in chapter.exercises] == ["ex-c-one", "ex-c-two", "ex-c-three"]
    assert [s.target for s in chapter.solutions if s.dropdown and s.has_code] == ["ex-c-one", "ex-c-two", "ex-c-three"]


# --- this book -----------------------------------------------------------------------------------

def test_the_toc_has_the_four_parts_with_exercises() -> None:
    captions = [caption for caption, _ in toc_parts(ROOT) if PARTS.match(caption)]
    assert len(captions) == 4, captions


def test_this_books_exercises_follow_the_rules() -> None:
    found = problems(ROOT)
    assert not found, "\n".join(found)


if __name__ == "__main__":  # pragma: no cover - a quick report: python tests/test_exercises.py
    for chapter_caption, paths in toc_parts(ROOT):
        for source in paths:
            if source.exists():
                print(f"{len(read_chapter(source).exercises):3d}  {source.relative_to(ROOT)}")
    print("\n".join(problems(ROOT)) or "all rules hold")
