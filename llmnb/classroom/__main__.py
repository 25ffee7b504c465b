"""Command line of the classroom tools: `python -m llmnb.classroom release|grade ...`.

Exit status: 0 when the release was written or the grading completed (wrong answers included),
2 for a usage mistake, which is explained in one paragraph on stderr with nothing written.
"""
from __future__ import annotations

import argparse
import sys
import textwrap

from llmnb.errors import LlmnbError

EXAMPLES = """examples:
  python -m llmnb.classroom release tutorials/ student/
  python -m llmnb.classroom release tutorials/03_algorithm.ipynb week3/
  python -m llmnb.classroom grade submitted/ --out grades.csv --release student/
docs/teaching.md walks through a whole course."""


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m llmnb.classroom", epilog=EXAMPLES,
                                  formatter_class=argparse.RawDescriptionHelpFormatter,
                                  description="Release student copies of the tutorials and grade the submissions.")
    commands = top.add_subparsers(dest="command", required=True, metavar="release|grade")
    release = commands.add_parser("release", help="write student copies of the notebooks and release.json",
                                  description="Write a student copy of each notebook into OUT: outputs cleared, "
                                              "solutions replaced by stubs, self-check answers set to None; and "
                                              "OUT/release.json, the questions that grading expects.")
    release.add_argument("source", help="a folder of notebooks (e.g. tutorials/) or one .ipynb file")
    release.add_argument("out", help="the folder for the student copies (not the source folder, nor inside it)")
    release.add_argument("--no-keys", dest="keys", action="store_false",
                         help="do not run the source notebooks for the keys (quicker; the release then cannot be graded)")
    release.add_argument("--timeout", type=float, default=1200, metavar="SECONDS",
                         help="time limit for each source notebook's run (default: 1200)")
    release.add_argument("--sandbox", choices=("auto", "bwrap", "none"), default="auto",
                         help="where the source notebooks run for their keys (default: auto)")
    grade = commands.add_parser("grade", help="run the submitted notebooks and write a CSV of grades",
                                description="Run each student's notebooks in a fresh kernel and write one CSV row "
                                            "per student and question.")
    grade.add_argument("submissions", help="a folder with one folder per student: SUBMISSIONS/<student>/<nb>.ipynb "
                                           "or SUBMISSIONS/<student>/<assignment>/<nb>.ipynb")
    grade.add_argument("--out", default="grades.csv", help="the CSV to write (default: grades.csv)")
    grade.add_argument("--release", metavar="OUT", help="the release folder (or its release.json) that lists the "
                                                        "questions (default: a release.json in SUBMISSIONS or its parent)")
    grade.add_argument("--timeout", type=float, default=600, metavar="SECONDS",
                       help="time limit per notebook; its kernel is killed after it (default: 600)")
    grade.add_argument("--keep-going", action="store_true",
                       help="run the cells after one that raises, as nbgrader does (default: stop there)")
    grade.add_argument("--kernel", default="python3", help="the Jupyter kernel to run the notebooks (default: python3)")
    grade.add_argument("--sandbox", choices=("auto", "bwrap", "none"), default="auto",
                       help="auto: confine student code with bubblewrap where it works, else run it with your rights "
                            "and say so; bwrap: confine it or refuse; none: run it with your rights (default: auto)")
    grade.add_argument("--memory", type=float, default=4096, metavar="MB",
                       help="memory limit per notebook; its kernel is stopped past it (default: 4096)")
    return top


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "release":
            from llmnb.classroom.release import release

            from llmnb.classroom.sandbox import Sandbox

            release(args.source, args.out, keys=args.keys, timeout=args.timeout, sandbox=Sandbox.choose(args.sandbox))
        else:
            from llmnb.classroom.grade import grade

            grade(args.submissions, out=args.out, release=args.release, timeout=args.timeout,
                  keep_going=args.keep_going, kernel=args.kernel, sandbox=args.sandbox, memory_mb=args.memory)
    except LlmnbError as e:
        print(textwrap.fill(f"error: {e}", width=100), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
