"""docs/errors.md documents exactly the catalogue in gateway/errors.py."""
from __future__ import annotations

import re

from gateway.errors import ErrorCode
from tests.wire import REPO_ROOT


def test_every_catalogue_code_is_documented_with_its_side_and_message() -> None:
    doc = (REPO_ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    rows = {m.group(1): (m.group(2), m.group(3)) for m in re.finditer(r"^\| (SCE\d{3}) \| (\w+) \| ([^|]+) \|", doc, re.M)}
    assert rows == {e.code: (e.side.value, e.message) for e in ErrorCode}
