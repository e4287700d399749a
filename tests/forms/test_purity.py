"""`forms` stays pure: importing all of it pulls in no web, ORM, broker or storage code."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ["litestar", "piccolo", "dramatiq", "minio", "storage", "web", "runtime", "builder"]


def test_forms_imports_nothing_forbidden() -> None:
    code = (
        "import sys, forms, forms.permissions, forms.sensitive, forms.json_schema, forms.check;"
        f"print(sorted(m for m in {FORBIDDEN!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
