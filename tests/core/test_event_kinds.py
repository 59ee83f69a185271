"""The event-kind catalogue is used: apps record kinds through their ``kinds.py`` constants, never re-spelled.

``event_record`` already refuses an undeclared kind (tests/core/test_events.py); this catches the other
drift, a declared kind written out again as a string where it is recorded.
"""

from __future__ import annotations

import ast
from pathlib import Path

APPS = Path(__file__).resolve().parents[2] / "apps"


def spelled_kinds() -> list[str]:
    """``path:line kind`` of each event_record call whose kind is a string literal or an f-string."""
    found = []
    for path in sorted(APPS.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name != "event_record":
                continue
            for keyword in node.keywords:
                if keyword.arg == "kind" and isinstance(keyword.value, ast.Constant | ast.JoinedStr | ast.BinOp):
                    where = path.relative_to(APPS.parent)
                    found.append(f"{where}:{node.lineno} {ast.unparse(keyword.value)}")
    return found


def test_apps_record_kinds_by_their_catalogue_constants():
    spelled = spelled_kinds()
    assert not spelled, "record these with the constant from the app's kinds.py:\n" + "\n".join(spelled)
