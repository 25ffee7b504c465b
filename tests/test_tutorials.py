"""Every tutorial keeps the course's rules (../shared/COURSE.md), checked without running it:
a bilingual title, its own Colab badge, an install cell that acts only on Colab, a `parameters`
cell reading LLMNB_PROFILE, closing self-checks, and one to three "your turn" coding exercises in
the nbgrader layout that a student release relies on. tests/test_notebooks.py runs them."""
import ast
import io
import json
import re
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "tutorials").glob("*.ipynb"))
CHAPTERS = ["00_quickstart", "01_background", "02_core_concepts", "03_algorithm", "03b_inside_gpt", "04_math", "05_project",
            "06_applications", "07_tools", "08_trends_challenges", "09_faq", "10_assistant", "11_rewards"]


def cells(path):
    return [(c["cell_type"], "".join(c["source"]), c.get("metadata", {})) for c in json.loads(path.read_text())["cells"]]


def test_binder_environment_is_complete():
    binder = ROOT / "binder"
    requirements = (binder / "requirements.txt").read_text()
    assert re.search(r"^torch==[\d.]+\+cpu$", requirements, re.M), "Binder must get the CPU build of torch"
    assert re.match(r"python-3\.\d+$", (binder / "runtime.txt").read_text().strip())
    post_build = (binder / "postBuild").read_text()
    assert "set -e" in post_build and "pip install" in post_build
    assert (binder / "postBuild").stat().st_mode & 0o111, "postBuild must be executable"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_tutorial_follows_the_course_rules(path):
    content = cells(path)
    first_markdown = next(text for kind, text, _ in content if kind == "markdown")
    title = first_markdown.splitlines()[0]
    assert title.startswith("# Chapter ") and re.search(r"[\u4e00-\u9fff]", title), f"bilingual title: {title}"
    assert f"colab.research.google.com/github/llmnb/llmnb/blob/main/tutorials/{path.name})" in first_markdown
    code = [text for kind, text, _ in content if kind == "code"]
    assert 'if "google.colab" in sys.modules' in code[0], "the first code cell installs llmnb on Colab only"
    parameters = [text for kind, text, meta in content if "parameters" in meta.get("tags", [])]
    assert parameters and "LLMNB_PROFILE" in parameters[0], "a `parameters` cell reads LLMNB_PROFILE"
    # Self-checks only ("CC.N", or "03b.N" for a chapter placed between two); the coding exercises
    # ("CC.eN") are counted by the rule below.
    checks = sum(len(re.findall(r'^check\("\d+[a-z]?\.\d+"', text, re.M)) for text in code)
    assert 3 <= checks <= 6, f"{checks} self-check calls; the course asks for 3 to 6"
    assert any("progress(" in text for text in code[-2:])


SOLUTION_REGION = re.compile(r"^([ \t]*)### BEGIN SOLUTION\n.*?^[ \t]*### END SOLUTION[ \t]*$", re.M | re.S)


def student_version(source):
    """What a student release (nbgrader) makes of a solution cell: each marked region becomes a stub."""
    return SOLUTION_REGION.sub(lambda m: f"{m[1]}# YOUR CODE HERE\n{m[1]}raise NotImplementedError()", source)


def names_used(source):
    """The identifiers in a cell's code, not in its strings or comments (IPython magics tokenize too)."""
    try:
        return {t.string for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type == tokenize.NAME}
    except (tokenize.TokenError, SyntaxError):
        return set(re.findall(r"\w+", source))


def nbgrader(meta):
    return meta.get("nbgrader", {})


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_tutorial_has_your_turn_exercises(path):
    """1-3 exercises "CC.eN", in order, each: a "### Your turn (CC.eN): ..." markdown cell, a solution
    cell with the markers and nbgrader's solution metadata, then a locked, graded cell that registers
    the exercise and checks the learner's function. The rest of the notebook must run with the
    solutions stubbed out, so no other cell uses what a solution cell defines."""
    content = cells(path)
    chapter = path.stem.split("_")[0]  # "03", or "03b" for the chapter that follows 03
    starts = [i for i, (kind, text, _) in enumerate(content)
              if kind == "markdown" and text.startswith("### Your turn (")]
    ids = [re.match(r"### Your turn \((\d+[a-z]?\.e\d+)\): \S", content[i][1]) for i in starts]
    assert all(ids), [content[i][1].splitlines()[0] for i in starts]
    ids = [m[1] for m in ids]
    assert 1 <= len(ids) <= 3, f"{len(ids)} exercises; each chapter has one to three"
    assert ids == [f"{chapter}.e{n}" for n in range(1, len(ids) + 1)], ids
    assert not any("BEGIN SOLUTION" in text for kind, text, _ in content[:starts[0]]), "a solution outside an exercise"
    # Each exercise sits where the chapter teaches its idea, so before the closing self-checks.
    self_checks = next(i for i, (kind, text, _) in enumerate(content)
                       if kind == "code" and f'"{chapter}.1"' in text)
    assert starts[-1] + 2 < self_checks, "the exercises come before the closing self-checks"
    for start, exercise in zip(starts, ids):
        (sol_kind, solution, sol_meta), (chk_kind, checking, chk_meta) = content[start + 1], content[start + 2]
        assert sol_kind == "code" and chk_kind == "code", exercise
        assert nbgrader(sol_meta) == {"solution": True, "grade": False, "locked": False,
                                      "grade_id": f"{exercise}-solution", "schema_version": 3}, exercise
        assert nbgrader(chk_meta) == {"grade": True, "solution": False, "locked": True, "points": 1,
                                      "grade_id": exercise, "schema_version": 3}, exercise
        lines = [line.strip() for line in solution.splitlines()]
        assert lines.count("### BEGIN SOLUTION") == 1 and lines.count("### END SOLUTION") == 1, exercise
        assert lines.index("### BEGIN SOLUTION") < lines.index("### END SOLUTION"), exercise
        stub = student_version(solution)
        assert "BEGIN SOLUTION" not in stub and "raise NotImplementedError()" in stub, exercise
        compile(stub, exercise, "exec")  # the student's copy still defines the function
        defined = {node.name for node in ast.parse(solution).body if isinstance(node, ast.FunctionDef)}
        assert defined, f"{exercise}: the solution cell defines the learner's function"
        assert f'register(Exercise(\n    "{exercise}"' in checking or f'register(Exercise("{exercise}"' in checking, exercise
        call = re.fullmatch(rf'check\("{re.escape(exercise)}", (\w+)\);', checking.rstrip().splitlines()[-1])  # ';': no stray True
        assert call and call[1] in defined, f"{exercise}: the graded cell ends by checking the learner's function"
        assert "predicate(" in checking and "BEGIN SOLUTION" not in checking, exercise
        others = [text for i, (kind, text, _) in enumerate(content) if kind == "code" and i not in (start + 1, start + 2)]
        for name in defined:
            users = [text.splitlines()[0] for text in others if name in names_used(text)]
            assert not users, f"{exercise}: {name} is used outside its exercise, which breaks a student copy: {users}"


def test_every_chapter_of_the_course_has_a_notebook():
    assert [p.stem for p in NOTEBOOKS] == CHAPTERS
