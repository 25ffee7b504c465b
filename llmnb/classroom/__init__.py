"""Teaching with the tutorials: release student copies, then grade what the students hand back.

    python -m llmnb.classroom release tutorials/ student/
    python -m llmnb.classroom grade submitted/ --out grades.csv --release student/

or from Python, `from llmnb.classroom.release import release` and
`from llmnb.classroom.grade import grade` (the functions are not re-exported here, so that each
name stays its module). `release` strips the "your turn" solutions (nbgrader's
`### BEGIN SOLUTION` markers), blanks the self-check answers, clears outputs and keys every
question from one run of the instructor's notebook; `grade` runs each submitted notebook in a
fresh, confined kernel (sandbox.py), reads the answers out of it (values.py) and judges them
against the keys in its own process, one CSV row per student and question. docs/teaching.md walks
an instructor through both, on a laptop and on a JupyterHub, and says what is protected.
"""
