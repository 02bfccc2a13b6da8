"""What ``system0 gate MODEL`` gates: a safetensors weights file, or a registry version folder.

A version folder ``ROOT/NAME/VERSION/`` holds ``weights.safetensors`` and ``version.json``
(``{"name", "version", "content_hash", "config_hash", "created"}``, the registry's layout). The
gate loads the weights, recomputes their content hash and refuses a folder whose weights are
not the ones its ``version.json`` names (:class:`~system0.errors.IntegrityError`, both hashes
given): the report must be bound to what will actually be deployed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from system0.errors import IntegrityError, ValidationError
from system0.interfaces.model_interface import NumpyModelInterface

__all__ = ["GateTarget", "resolve_model"]

WEIGHTS = "weights.safetensors"
VERSION_FILE = "version.json"


@dataclass(frozen=True)
class GateTarget:
    """The model to gate, a label for the report, and the config hash its version names."""

    model: NumpyModelInterface
    source: str
    config_hash: str | None


def resolve_model(path: str | os.PathLike[str] | None) -> GateTarget:
    """``path``: a weights file, a version folder, or None for the shipped policy."""
    if path is None:
        from system0.game.policy import policy_weights_path

        weights = policy_weights_path()
        return GateTarget(
            NumpyModelInterface(name="policy").load(weights), f"shipped policy {weights.name}", None
        )
    p = Path(path)
    if p.is_dir():
        return _version_folder(p)
    if not p.is_file():
        raise ValidationError(
            f"{os.fspath(p)}: no such file or folder; give a .safetensors weights file or a "
            f"registry version folder holding {WEIGHTS} and {VERSION_FILE}"
        )
    return GateTarget(NumpyModelInterface(name=p.stem).load(p), os.fspath(p), None)


def _version_folder(folder: Path) -> GateTarget:
    weights, meta = folder / WEIGHTS, folder / VERSION_FILE
    missing = [f.name for f in (weights, meta) if not f.is_file()]
    if missing:
        raise ValidationError(
            f"{os.fspath(folder)}: a registry version folder holds {WEIGHTS} and "
            f"{VERSION_FILE}; missing {', '.join(missing)}"
        )
    try:
        doc = json.loads(meta.read_text())
    except ValueError as exc:
        raise ValidationError(f"{os.fspath(meta)}: not JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("content_hash"), str):
        raise ValidationError(f"{os.fspath(meta)}: needs a string 'content_hash'")
    name = f"{doc.get('name', folder.parent.name)}@{doc.get('version', folder.name)}"
    model = NumpyModelInterface(name=str(name)).load(weights)
    found = model.introspect().content_hash
    if found != doc["content_hash"]:
        raise IntegrityError(
            f"{os.fspath(folder)}: {WEIGHTS} has content hash {found}, but {VERSION_FILE} names "
            f"{doc['content_hash']}; the folder was altered, publish the version again"
        )
    config_hash = doc.get("config_hash")
    return GateTarget(model, os.fspath(folder), None if config_hash is None else str(config_hash))
