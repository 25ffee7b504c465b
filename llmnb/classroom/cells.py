"""What a notebook's cells ask of a student: check ids, solution regions and answer lines.

Plain text in, plain text out; no kernel and no nbformat. `release` uses these to make a student
copy and to list the questions; `grade` uses them to tell a deleted check from one that never ran.

* a solution region is the lines from `### BEGIN SOLUTION` to `### END SOLUTION` (nbgrader's
  markers, at any indentation); a student copy gets nbgrader's stub in its place;
* a question is a `check("ID", ...)` call (llmnb.check), found with Python's parser so that a
  call in a comment or a string does not count;
* an answer line is an assignment `answer_N = ...` in a cell that calls `check(`.
"""
from __future__ import annotations

import ast
import io
import json
import re
import tokenize
from pathlib import Path

from llmnb.errors import LlmnbError

BEGIN = re.compile(r"^([ \t]*)#+[ \t]*BEGIN SOLUTION\b")
END = re.compile(r"^[ \t]*#+[ \t]*END SOLUTION\b")
CODE_STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")  # nbgrader's stub for code cells
TEXT_STUB = "YOUR ANSWER HERE"                                     # ... and for markdown cells
ANSWER = re.compile(r"answer_\w+")
CHECK_CALL = re.compile(r"""(?<![\w.])check\(\s*(?:exercise_id\s*=\s*)?["']([^"'\n]+)["']""")


def read_notebook(path: Path) -> dict:
    """The notebook's JSON, or an LlmnbError naming the file when it is not a notebook."""
    try:
        nb = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise LlmnbError(f"Cannot read {path}: {e}") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise LlmnbError(f"{path} is not a Jupyter notebook (no list of cells).")
    return nb


def source_of(cell: dict) -> str:
    """A cell's source as one string (notebook files store either a string or a list of lines)."""
    source = cell.get("source", "")
    return source if isinstance(source, str) else "".join(source)


def as_lines(text: str) -> list[str]:
    """A source string as the list of lines that Jupyter writes (each but the last ends in \\n)."""
    return text.splitlines(keepends=True)


# ---- solution regions

def strip_solutions(text: str, markdown: bool = False, where: str = "a cell") -> tuple[str, int]:
    """`text` with every solution region (markers included) replaced by the stub, indented like
    its BEGIN marker, and the number of regions replaced. An unclosed or stray marker raises."""
    out, count, indent = [], 0, None
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        begin, end = BEGIN.match(line), END.match(line)
        if indent is None and begin:
            indent, count = begin.group(1), count + 1
        elif indent is None and end:
            raise LlmnbError(f"{where}: line {number} ends a solution that never began (no BEGIN SOLUTION above it).")
        elif indent is not None and begin:
            raise LlmnbError(f"{where}: line {number} begins a solution inside another one.")
        elif indent is not None and end:
            stub = [TEXT_STUB] if markdown else [indent + s for s in CODE_STUB]
            out.append("\n".join(stub) + ("\n" if line.endswith("\n") else ""))
            indent = None
        elif indent is None:
            out.append(line)
    if indent is not None:
        raise LlmnbError(f"{where}: a BEGIN SOLUTION line has no END SOLUTION after it.")
    return "".join(out), count


def has_solution(text: str) -> bool:
    return any(BEGIN.match(line) for line in text.splitlines())


# ---- check calls

def _blank_magics(lines: list[str]) -> list[str]:
    """IPython magics and shell lines as `pass`, at their indentation, so the rest parses as Python."""
    return [line[:len(line) - len(line.lstrip())] + "pass" if line.lstrip().startswith(("%", "!")) else line
            for line in lines]


def _parse(text: str) -> ast.Module | None:
    """The cell as Python, or None when it is not (IPython magics and shell lines are blanked)."""
    try:
        return ast.parse("\n".join(_blank_magics(text.splitlines())))
    except (SyntaxError, ValueError):
        return None


def check_calls(text: str) -> dict[str, str]:
    """The `check("ID", ANSWER)` calls of a cell, in order, each id once: id -> the source of its
    answer expression (e.g. "answer_1", "word_pieces"; "" when the call gives none). A call spelled
    `check(...)` or `anything.check(...)` counts; one in a comment or a string does not."""
    tree = _parse(text)
    if tree is None:  # not Python: fall back to the text (a comment may then count too)
        return {found: "" for found in CHECK_CALL.findall(text)}
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
             and getattr(node.func, "id", getattr(node.func, "attr", None)) == "check"]
    calls.sort(key=lambda node: (node.lineno, node.col_offset))
    lines = text.splitlines()
    found: dict[str, str] = {}
    for call in calls:
        arguments = {k.arg: k.value for k in call.keywords}
        first = call.args[0] if call.args else arguments.get("exercise_id")
        answer = call.args[1] if len(call.args) > 1 else arguments.get("answer")
        if isinstance(first, ast.Constant) and isinstance(first.value, str) and first.value not in found:
            found[first.value] = (ast.get_source_segment("\n".join(_blank_magics(lines)), answer) or "") if answer else ""
    return found


def check_ids(text: str) -> list[str]:
    """The ids of the `check("ID", ...)` calls in a cell, in order, each once."""
    return list(check_calls(text))


def calls_check(text: str) -> bool:
    return bool(re.search(r"(?<![\w.])check\(", text))


def question_cells(cells: list[dict]) -> dict[str, int]:
    """Question id -> the 1-based number of the first cell that checks it (markdown cells count)."""
    where: dict[str, int] = {}
    for number, cell in enumerate(cells, start=1):
        if cell.get("cell_type") == "code":
            for question in check_ids(source_of(cell)):
                where.setdefault(question, number)
    return where


def notebook_questions(nb: dict) -> list[str]:
    """Every question id a notebook checks, in the order of its cells."""
    return list(question_cells(nb["cells"]))


def notebook_answers(nb: dict) -> dict[str, str]:
    """Question id -> the expression its first `check(...)` call is given as the answer."""
    answers: dict[str, str] = {}
    for cell in nb["cells"]:
        if cell.get("cell_type") == "code":
            for question, answer in check_calls(source_of(cell)).items():
                answers.setdefault(question, answer)
    return answers


# ---- answer lines

def _column(line: str, byte_offset: int) -> int:
    """ast gives columns in UTF-8 bytes; this is the same place in characters."""
    return len(line.encode("utf-8")[:byte_offset].decode("utf-8", errors="ignore"))


def blank_answers(text: str) -> tuple[str, int]:
    """`text` with the value of every `answer_N = <anything>` assignment set back to None
    (comments, spacing and the rest of the line kept), and the number of answers blanked."""
    tree = _parse(text)
    if tree is None:
        return _blank_answers_by_line(text)
    spans, count = [], 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets = [node.target]
        else:
            continue
        if any(isinstance(t, ast.Name) and ANSWER.fullmatch(t.id) for t in targets):
            count += 1
            value = node.value
            if not (isinstance(value, ast.Constant) and value.value is None):
                spans.append((value.lineno, value.col_offset, value.end_lineno, value.end_col_offset))
    lines = text.splitlines(keepends=True)
    for first, start, last, stop in sorted(spans, reverse=True):  # from the end: earlier spans keep their place
        head = lines[first - 1][:_column(lines[first - 1], start)]
        tail = lines[last - 1][_column(lines[last - 1], stop):]
        lines[first - 1:last] = [head + "None" + tail]
    return "".join(lines), count


def _blank_answers_by_line(text: str) -> tuple[str, int]:
    """The same for a cell that is not plain Python (it has a magic): one line at a time."""
    pattern = re.compile(r"^(\s*answer_\w+\s*(?::[^=\n]+)?=(?!=)\s*)(.*)$")
    out, count = [], 0
    for line in text.splitlines(keepends=True):
        body, newline = (line[:-1], "\n") if line.endswith("\n") else (line, "")
        match = pattern.match(body)
        if match:
            count += 1
            value = match.group(2)
            comment = _comment_start(value)
            gap = len(value[:comment]) - len(value[:comment].rstrip())
            body = match.group(1) + "None" + value[comment - gap:]
        out.append(body + newline)
    return "".join(out), count


def _comment_start(code: str) -> int:
    """Where the comment of one line of Python begins (its length when it has none)."""
    try:
        for token in tokenize.generate_tokens(io.StringIO(code).readline):
            if token.type == tokenize.COMMENT:
                return token.start[1]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return len(code)
