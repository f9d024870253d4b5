"""`python -m course_grading grade SUBMISSIONS` and `python -m course_grading release`.

Real subcommands: a submissions folder named `release` is graded like any other. Every grading
setting is an option generated from course_grading.config (its default and help text).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Optional

from .config import EXERCISES, load_settings, settings_help


def parser() -> argparse.ArgumentParser:
    """The command line."""
    top = argparse.ArgumentParser(prog="./course", description="Release and grade the exercises.")
    sub = top.add_subparsers(dest="command", required=True)
    rel = sub.add_parser("release", help="regenerate exercises/release/ with nbgrader")
    rel.add_argument("--assignment", action="append",
                     help="lessonNN, repeatable (default: every exercises/source/lessonNN)")
    rel.add_argument("--exercises", type=Path, default=EXERCISES, help=argparse.SUPPRESS)
    g = sub.add_parser("grade", help="grade a folder of submissions",
                       description="Grade every entry of SUBMISSIONS (STUDENT/NN_topic_exercises"
                                   ".ipynb or STUDENT.ipynb), each in its own sandbox; write "
                                   "OUT/grades.csv and OUT/feedback/. Settings: options below, "
                                   "else c.CourseGrading.<name> in exercises/nbgrader_config.py.")
    g.add_argument("submissions", type=Path, help="folder with one entry per student")
    g.add_argument("--assignment", help="lessonNN (default: what most notebooks are)")
    g.add_argument("--out", type=Path, help="output folder (default: SUBMISSIONS-graded)")
    g.add_argument("--keep-work", action="store_true", help="keep the grader's working folder")
    g.add_argument("--exercises", type=Path, default=EXERCISES, help=argparse.SUPPRESS)
    for name, (default, text) in settings_help().items():
        flag = "--" + name.replace("_", "-")
        if isinstance(default, bool):
            g.add_argument(flag, dest=name, action="store_true", default=None,
                           help=f"{text} (default: {default})")
            g.add_argument("--no-" + name.replace("_", "-"), dest=name, action="store_false",
                           help=argparse.SUPPRESS if name != "sandbox" else
                           "run kernels WITHOUT a sandbox (trusted submissions only)")
        elif isinstance(default, str):
            choices = getattr(traits()[name], "values", None)
            g.add_argument(flag, dest=name, default=None, metavar=name.split("_")[0].upper(),
                           choices=[c for c in choices if c] if choices else None,
                           help=f"{text} (default: {default or 'none'})")
        else:
            g.add_argument(flag, dest=name, type=type(default), default=None,
                           help=f"{text} (default: {default:g})")
    g.add_argument("--engine", choices=["dask", "threads"], default="dask",
                   help=argparse.SUPPRESS)  # "threads": the previous pool, for the benchmark
    return top


def traits() -> dict:
    """The settings' traits (for an option's choices)."""
    from .config import CourseGrading

    return CourseGrading.class_traits(config=True)


def main(argv: Optional[list[str]] = None) -> int:
    """Run a subcommand."""
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == "release":
        from .release import release

        for path in release(args.assignment, args.exercises):
            print(f"wrote {os.path.relpath(path)}")
        return 0
    from .batch import grade

    overrides = {name: getattr(args, name) for name in settings_help()}
    settings = load_settings(args.exercises, **overrides)
    try:
        grade(args.submissions, args.assignment, args.out, args.exercises, settings,
              args.keep_work, engine=args.engine)
    except KeyboardInterrupt:
        out = args.out or args.submissions.with_name(args.submissions.name + "-graded")
        print(f"\ncourse grading: interrupted; what was graded is kept in {out} (the same "
              "command grades only what is missing)", file=sys.stderr)
        return 130
    return 0
