"""Write README.md's generated tables: the lessons (from the manifest) and the models (from the registry).

    python tools/readme_tables.py           # rewrite the tables between their markers
    python tools/readme_tables.py --check   # exit 1 and say so when README.md is stale

The lesson table comes from `course_utils.lessons.LESSONS`; the model table from
`course_utils.registry.REGISTRY`, with its "lessons" column from `lessons_using(role)`.
tests/test_readme_tables.py fails when README.md differs from what this script writes.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: import the checkout's course_utils
from course_utils.lessons import LESSONS, lessons_using  # noqa: E402 (needs the path above)

README = ROOT / "README.md"
REPOSITORY = "transformers-from-the-inside/course"
BADGE = "[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
MARKERS = {"lessons": ("<!-- lessons:start -->", "<!-- lessons:end -->"),
           "models": ("<!-- models:start -->", "<!-- models:end -->")}


def colab_badge(path: str) -> str:
    """The Open-in-Colab badge for a file of the repository (path from its root)."""
    return f"{BADGE}(https://colab.research.google.com/github/{REPOSITORY}/blob/main/{path})"


def lesson_table() -> str:
    """README's lesson table: number, title (linked, with its badge), summary, time, exercises."""
    rows = ["| # | lesson | what you learn | time | exercises |", "|---|---|---|---|---|"]
    for lesson in LESSONS:
        exercises = f"exercises/release/{lesson.assignment}/{lesson.exercise_notebook}"
        rows.append(f"| {lesson.number} | [{lesson.title}]({lesson.notebook}) "
                    f"{colab_badge(lesson.notebook)} | {lesson.summary} | {lesson.minutes} min | "
                    f"{colab_badge(exercises)} |")
    return "\n".join(rows)


def revision_text(revision: str | None) -> str:
    """A revision as the table shows it: a short commit (pinned), a moving ref, or main."""
    if revision is None:
        return "main (not pinned)"
    if re.fullmatch(r"[0-9a-f]{40}", revision):
        return f"`{revision[:12]}` (pinned)"
    return f"`{revision}` (a moving ref, not a pin)"


def model_table() -> str:
    """README's model table: role, Hub checkpoint, revision, MB, lessons, offline tier."""
    from course_utils.registry import REGISTRY

    rows = ["| role | Hub checkpoint | revision | MB | lessons | offline tier |",
            "|---|---|---|---|---|---|"]
    for spec in REGISTRY.values():
        lessons = ", ".join(lessons_using(spec.role)) or "none"
        rows.append(f"| {spec.role} | [{spec.hub_id}](https://huggingface.co/{spec.hub_id}) | "
                    f"{revision_text(spec.revision)} | {spec.download_mb} | {lessons} | "
                    f"{spec.offline} |")
    return "\n".join(rows)


def with_table(readme: str, name: str, table: str) -> str:
    """`readme` with `table` between the markers of `name` (each marker on its own line)."""
    start, end = MARKERS[name]
    if readme.count(start) != 1 or readme.count(end) != 1:
        raise ValueError(f"README.md needs exactly one {start} and one {end}")
    head, rest = readme.split(start)
    _, tail = rest.split(end)
    return f"{head}{start}\n{table}\n{end}{tail}"


def generated(readme: str) -> str:
    """`readme` with both generated tables brought up to date."""
    readme = with_table(readme, "lessons", lesson_table())
    return with_table(readme, "models", model_table())


def main(argv: list[str] | None = None) -> int:
    """Rewrite README.md's tables, or with --check report whether they are stale."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 when stale")
    args = parser.parse_args(argv)
    current = README.read_text(encoding="utf-8")
    wanted = generated(current)
    if args.check:
        if wanted != current:
            print("README.md's generated tables are stale: run python tools/readme_tables.py",
                  file=sys.stderr)
            return 1
        return 0
    if wanted != current:
        README.write_text(wanted, encoding="utf-8")
        print("wrote README.md's lesson and model tables", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
