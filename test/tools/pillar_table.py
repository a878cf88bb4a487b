"""
Rewrite the README's pillar reference table from the schema.

Why a script: the table is documentation of _utils/ah_schema.py (every key,
its type, default, who sets it and what it does); hand-kept, it drifted from
the code. ``python3 test/tools/pillar_table.py`` rewrites the part of
README.md between the two marker comments; ``--check`` exits 1 when the
README is stale (test/unit/utils/test_ah_schema.py runs the same check).
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from testlib import ROOT, load_module  # noqa: E402

schema = load_module("ah_schema", "utils")
README = ROOT / "README.md"
TABLE_BEGIN = "<!-- BEGIN pillar table (generated from _utils/ah_schema.py by test/tools/pillar_table.py) -->"
TABLE_END = "<!-- END pillar table -->"
WHERE = {schema.PILLAR: "pillar", schema.PARAMETER: "lookup", schema.FLAG: "command line"}
KINDS = {
    "params": "name → scalar",
    "cfg": "section → key → scalar",
    "tz": "time zone",
    "path": "absolute path",
    "map": "mapping",
    "ipv4": "IPv4 address",
}


def _type_text(key):
    if key.kind == "enum":
        return " \\| ".join(f"`{c}`" for c in key.choices)
    if key.kind == "list":
        return f"list of {key.noun or key.item.kind}"
    text = KINDS.get(key.kind, key.kind)
    if key.kind == "int":
        text += f" {key.low}..{'' if key.high is None else key.high}"
    if key.min_len:
        text += f", ≥ {key.min_len} bytes"
    return text + (f" ({key.unit})" if key.unit else "")


def _default_text(key):
    if key.default is None:
        return "—"
    if key.default in ("", [], {}):
        return "empty"
    if isinstance(key.default, bool):
        return f"`{str(key.default).lower()}`"
    if isinstance(key.default, dict):
        return ", ".join(f"{n}={v}" for n, v in key.default.items())
    if isinstance(key.default, list):
        return ", ".join(str(v) for v in key.default)
    return f"`{key.default}`"


def markdown_table():
    """The pillar reference: one row per key a user or lookup may set."""
    rows = ["| key | type | default | set in | what |", "| --- | --- | --- | --- | --- |"]
    for path, key in schema.KEYS.items():
        if key.where == schema.INTERNAL:
            continue
        doc = key.doc.replace("|", "\\|") + (" **secret**" if key.secret else "")
        rows.append(f"| `{path}` | {_type_text(key)} | {_default_text(key)} | {WHERE[key.where]} | {doc} |")
    return "\n".join(rows)


def render(readme_text):
    """``readme_text`` with the part between the table markers regenerated."""
    start, end = readme_text.index(TABLE_BEGIN), readme_text.index(TABLE_END)
    return readme_text[: start + len(TABLE_BEGIN)] + "\n" + markdown_table() + "\n" + readme_text[end:]


def main(argv):
    text = README.read_text()
    new = render(text)
    if "--check" in argv:
        if new != text:
            print(
                "README.md's pillar table is stale: run python3 test/tools/pillar_table.py", file=sys.stderr
            )
            return 1
        return 0
    README.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
