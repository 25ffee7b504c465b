"""Values read out of a notebook's kernel after its cells ran: the notebook's own objects, not its prose.

    read_in_kernel(client, {"accuracy": "ft.metrics['eval_accuracy']"})   # -> {"accuracy": 0.83}

(`client`: the nbclient.NotebookClient whose kernel ran the notebook; the lower-level pieces are
`values_cell`, which writes the cell, and `read_values`, which reads its outputs.)

The cell evaluates each expression in the kernel's namespace and prints the results as one JSON
line that starts with `nonce`. The nonce is made by the reader after the notebook's own cells ran,
so no earlier output can carry it, and only the output of this one cell is read. Numbers, strings,
None, lists and dicts come back as such; numpy and torch scalars and arrays and pandas objects
through `.tolist()`; anything else as its repr. An expression that raises gives
`{"error": "NameError: ..."}` under its name instead of a value.

Used by the notebook tests (tests/test_notebooks.py) and by the classroom grader.
"""
from __future__ import annotations

import json
import secrets

TAG = "llmnb-values"


def new_nonce() -> str:
    """A fresh, unguessable tag for one read."""
    return f"{TAG}-{secrets.token_hex(16)}"


# Runs in the kernel: standard library only, and names that cannot clash with the notebook's.
_KERNEL_CODE = '''\
def __llmnb_values(__expressions, __nonce, __setup):
    import json as __json

    def plain(value):
        if hasattr(value, "tolist"):
            return value.tolist()
        if hasattr(value, "item"):
            return value.item()
        return repr(value)

    scope = dict(globals())
    exec(__setup, scope)
    found = {{}}
    for name, expression in __expressions.items():
        try:
            found[name] = eval(expression, scope)
        except Exception as error:
            found[name] = {{"error": f"{{type(error).__name__}}: {{error}}"}}
    print(__nonce + __json.dumps(found, default=plain))


__llmnb_values({expressions!r}, {nonce!r}, {setup!r})
del __llmnb_values
'''


def read_in_kernel(client, expressions: dict[str, str], setup: str = "") -> dict:
    """`expressions` evaluated in the kernel of `client` (an nbclient.NotebookClient) by a cell of
    the reader's own, under a nonce made now. The cell is run at the end of the notebook and taken
    out again, so the notebook is left as it was. {} when the printout did not come back."""
    from nbformat.v4 import new_code_cell

    nonce = new_nonce()
    cell = new_code_cell(values_cell(expressions, nonce, setup))
    cells = client.nb.cells
    cells.append(cell)  # nbclient writes the executed cell back at its index
    try:
        client.execute_cell(cell, len(cells) - 1, store_history=False)
    finally:
        cells.pop()
    return read_values(cell.outputs, nonce) or {}


def values_cell(expressions: dict[str, str], nonce: str, setup: str = "") -> str:
    """The source of a cell that prints `expressions` (name -> Python expression), evaluated in the
    notebook's namespace (plus what the code `setup` defines, e.g. imports of the reader's own),
    as one JSON line tagged with `nonce`."""
    return _KERNEL_CODE.format(expressions=dict(expressions), nonce=nonce, setup=setup)


def read_values(outputs, nonce: str) -> dict | None:
    """The values printed by `values_cell` with this `nonce` among `outputs` (one cell's outputs),
    or None when no output carries it."""
    for output in outputs:
        if output.get("output_type") != "stream" or output.get("name") != "stdout":
            continue
        for line in output.get("text", "").splitlines():
            if line.startswith(nonce):
                try:
                    found = json.loads(line[len(nonce):])
                except json.JSONDecodeError:
                    return None
                return found if isinstance(found, dict) else None
    return None
