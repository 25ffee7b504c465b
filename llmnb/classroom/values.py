"""Values read out of a notebook's kernel after its cells ran: the notebook's own objects, not its prose.

    code = values_cell({"accuracy": "ft.metrics['eval_accuracy']"}, nonce)
    client.execute_cell(new_code_cell(code), index)      # in the kernel the notebook ran in
    read_values(cell.outputs, nonce)                     # -> {"accuracy": 0.83}

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
def __llmnb_values(__expressions, __nonce):
    import json as __json

    def plain(value):
        if hasattr(value, "tolist"):
            return value.tolist()
        if hasattr(value, "item"):
            return value.item()
        return repr(value)

    found = {{}}
    for name, expression in __expressions.items():
        try:
            found[name] = eval(expression, globals())
        except Exception as error:
            found[name] = {{"error": f"{{type(error).__name__}}: {{error}}"}}
    print(__nonce + __json.dumps(found, default=plain))


__llmnb_values({expressions!r}, {nonce!r})
del __llmnb_values
'''


def values_cell(expressions: dict[str, str], nonce: str) -> str:
    """The source of a cell that prints `expressions` (name -> Python expression), evaluated in the
    notebook's namespace, as one JSON line tagged with `nonce`."""
    return _KERNEL_CODE.format(expressions=dict(expressions), nonce=nonce)


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
