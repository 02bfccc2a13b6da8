"""The gate's versioned JSON files (golden sets, perf baselines): read one, or say which file
could not be read, was not JSON, or is of another format or version."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from system0.errors import ValidationError

__all__ = ["read_document"]


def read_document(
    path: str | os.PathLike[str], what: str, fmt: str, version: int
) -> dict[str, Any]:
    """The JSON object at ``path`` when its ``format`` is ``fmt`` and its ``version``
    ``version``; ``what`` names the kind of file in the errors (``"golden set"``)."""
    where = os.fspath(path)
    try:
        doc = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ValidationError(f"cannot read {what} {where}: {exc.strerror}") from None
    except ValueError as exc:
        raise ValidationError(f"{where}: {what} is not JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != fmt or doc.get("version") != version:
        raise ValidationError(f"{where}: not a {fmt} v{version} file")
    return doc
