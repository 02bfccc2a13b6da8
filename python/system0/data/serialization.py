"""The codec fast path: decode, validate, columnarize, featurize, encode.

``decode_game_states`` and ``decode_training_samples`` parse a batch (a JSON array, NDJSON, a
list of one-document ``bytes`` rows, a msgpack array, or for GameState a protobuf
``GameStateBatch`` per ``game_state.proto``) in Rust with simd-json, check every
row against the wire contract (:mod:`system0.data.contract`), and return a :class:`DecodedBatch`:
the valid rows as one Arrow record batch, and each refused row with its reason codes and raw
bytes. A bad row never fails the batch; what happens to it is the caller's policy (see
:mod:`system0.data.validation`).

``DecodedBatch`` speaks the Arrow PyCapsule interface (``__arrow_c_array__``,
``__arrow_c_schema__``, ``__arrow_c_stream__``): ``pyarrow.record_batch(d)``,
``pyarrow.table(d)``, ``polars.from_arrow(d)`` and duckdb read it without a copy.

Feature matrix layout (``features(batch)``, float32, one row per game state,
``len(FEATURE_NAMES)`` columns):

====== =====================================================================
column value
====== =====================================================================
0, 1   position x, y (already in [0, 1])
2      health / 5000
3      mana / 5000
4-9    ability cooldowns in the fixed slot order q, w, e, r, d, f, / 300 s
10     vision score / 100
11     gold advantage / 10000 (signed)
12-    inventory multi-hot over ``ITEM_VOCABULARY``: 1.0 held, 0.0 not
====== =====================================================================

Each value is ``value / scale`` computed in float64, then rounded to float32. Rows added by
``pad_rows_to`` are all ``PAD_VALUE`` (0.0); the first ``batch.num_rows`` rows are real.

Every feature of an admitted row is finite: the contract bounds each dense field
(``system0.data.contract.RANGES``: health and mana <= 100000, cooldowns <= 3600 s, vision
<= 10000, gold advantage within +-1000000), so no column exceeds 100 in magnitude, and a value
outside its range is refused at decode (``less_than_equal`` / ``greater_than_equal``), never
turned into ``inf``. ``tests/data/test_contract_extremes.py`` proves it over the extremes.

``featurize_requests`` is the request path (the inference engine's): a sequence of GameState
requests, each a dict, a :class:`system0.data.models.GameState` or the JSON or msgpack bytes
of one, validated by the same Rust rules as the batch decoders and turned into the same
feature rows, in one call. Errors are ``(index, path, code, message)``, and
:func:`reason_code` writes one as the ``"{code}:{path}"`` string used everywhere.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypeAlias

import numpy as np
import numpy.typing as npt

from system0 import _core
from system0._core import DecodedBatch
from system0.errors import IntegrityError, InvalidArgument, ValidationError

if TYPE_CHECKING:
    import pyarrow as pa

    from system0.data.models import GameState

Format = Literal["json", "msgpack", "protobuf"]
FEATURE_NAMES: tuple[str, ...] = tuple(_core.feature_names())
PAD_VALUE = 0.0
_new_tuple = tuple.__new__
DENSE_SCALES: tuple[float, ...] = tuple(_core.dense_scales())
"""The divisor of each dense feature column, in ``FEATURE_NAMES`` order (``rust/features``)."""
# by field, the six cooldown columns sharing one entry: {"health": 5000.0, "cooldown": 300.0...}
SCALES = {
    ("cooldown" if name.startswith("cooldown_") else name): scale
    for name, scale in zip(FEATURE_NAMES[: len(DENSE_SCALES)], DENSE_SCALES, strict=True)
    if scale != 1.0
}


def decode_game_states(
    data: bytes | bytearray | memoryview | Sequence[bytes], *, format: Format = "json"
) -> DecodedBatch:
    """Decode and validate a batch of GameState rows; see the module docs for input forms."""
    return _core.decode_game_states(_rows(data), format)


def decode_training_samples(
    data: bytes | bytearray | memoryview | Sequence[bytes], *, format: Format = "json"
) -> DecodedBatch:
    """Decode and validate a batch of TrainingSample rows."""
    return _core.decode_training_samples(_rows(data), format)


def _rows(data: Any) -> Any:
    if isinstance(data, bytes | bytearray | memoryview | list):
        return data
    if isinstance(data, Sequence):
        return list(data)
    raise InvalidArgument(
        f"data must be bytes or a sequence of bytes rows, not {type(data).__name__}"
    )


def features(batch: Any, *, pad_rows_to: int | None = None) -> npt.NDArray[np.float32]:
    """The float32 feature matrix of a GameState batch (or of a TrainingSample batch's
    ``state`` column). ``batch`` is a :class:`DecodedBatch` or any Arrow record batch exposing
    ``__arrow_c_array__`` (pyarrow, polars); the matrix is written once, in Rust, with no copy
    afterwards."""
    buf, rows, cols = _core.features_into(batch, pad_rows_to)
    return np.frombuffer(buf, dtype=np.float32).reshape(rows, cols)


GameStateRequest: TypeAlias = "Mapping[str, Any] | GameState | bytes | bytearray | memoryview"
"""One request: a GameState dict, a ``GameState`` model, or the JSON or msgpack bytes of one."""

RequestError: TypeAlias = tuple[int, str, str, str]
"""``(request index, dotted path, code, message)``: one broken rule of one request."""


class FeaturizedRequests(NamedTuple):
    """What :func:`featurize_requests` returns.

    ``matrix``: float32, ``(len(rows), len(FEATURE_NAMES))``, or taller with ``pad_rows_to``
    (padding rows are ``PAD_VALUE``); ``rows[k]``: the request index of matrix row ``k``;
    ``errors``: every broken rule of every refused request, in request order.
    """

    matrix: npt.NDArray[np.float32]
    rows: list[int]
    errors: list[RequestError]


def featurize_requests(
    requests: Sequence[GameStateRequest], *, pad_rows_to: int | None = None
) -> FeaturizedRequests:
    """Validate GameState requests and compute their feature rows, in one Rust call.

    A dict or model is read field by field in Rust (no dump, no JSON text); bytes are JSON,
    or msgpack when the first byte opens a msgpack map. Every request meets the codec's
    rules (those of :func:`decode_game_states`), so a refused one has the codec's reason
    codes; accepted ones become rows of the documented feature layout, in request order. A
    bad request never fails the call. Raises ``ValueError`` when ``requests`` is not a
    sequence or ``pad_rows_to`` is smaller than the number of accepted requests.
    """
    # tuple.__new__ is NamedTuple._make without its Python frame: a third of the facade's
    # cost on a one-request call
    return _new_tuple(FeaturizedRequests, _core.featurize_requests(requests, pad_rows_to))


def reason_code(path: str, code: str) -> str:
    """The reason string of one broken rule: ``"{code}:{path}"`` (``code`` alone at the root)."""
    return f"{code}:{path}" if path else code


def features_from_records(
    records: Sequence[Any], *, pad_rows_to: int | None = None
) -> npt.NDArray[np.float32]:
    """The feature matrix of ``GameState`` models or plain dicts: they are validated by the
    codec on the way (a record that breaks the contract raises ``ValidationError``)."""
    out = featurize_requests(records, pad_rows_to=pad_rows_to)
    if out.errors:
        row, path, code, message = out.errors[0]
        raise ValidationError(
            f"record {row} broke the GameState contract at {path or '<row>'}: {code} ({message})"
        )
    return out.matrix


def features_torch(batch: Any, *, pad_rows_to: int | None = None) -> Any:
    """The feature matrix as a ``torch.Tensor`` sharing the numpy buffer (DLPack, no copy)."""
    import torch  # optional dependency: system0[torch]

    return torch.from_dlpack(features(batch, pad_rows_to=pad_rows_to))


def to_arrow(batch: DecodedBatch) -> pa.RecordBatch:
    """The valid rows as a ``pyarrow.RecordBatch`` (zero-copy import)."""
    import pyarrow as pa

    return pa.record_batch(batch)


def to_json(batch: DecodedBatch, *, ndjson: bool = False) -> bytes:
    """Canonical JSON of a GameState batch (decoding it again yields the same batch)."""
    if batch.contract != "GameState":
        import json

        import pyarrow as pa

        rows = pa.record_batch(batch).to_pylist()
        docs = [json.dumps(r, default=_json_default, separators=(",", ":")) for r in rows]
        return ("\n".join(docs) + "\n" if ndjson else "[" + ",".join(docs) + "]").encode()
    return batch.to_json(ndjson)


def to_protobuf(batch: DecodedBatch) -> bytes:
    """A GameState batch as a protobuf ``GameStateBatch`` message (schema:
    ``system0/data/game_state.proto``, shipped in the package)."""
    return batch.to_protobuf()


def _json_default(value: Any) -> Any:
    from datetime import datetime

    from system0.data.models import format_rfc3339  # on use: models loads pydantic

    if isinstance(value, datetime):
        return format_rfc3339(value)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def write_ipc(batch: Any, path: str) -> None:
    """Write a batch to an Arrow IPC file (the Feather v2 format)."""
    import pyarrow as pa
    import pyarrow.ipc as ipc

    rb = pa.record_batch(batch)
    with ipc.new_file(path, rb.schema) as writer:
        writer.write_batch(rb)


def read_ipc(path: str) -> pa.Table:
    """Read an Arrow IPC file written by :func:`write_ipc` (memory-mapped, no copy)."""
    import pyarrow as pa
    import pyarrow.ipc as ipc

    with pa.memory_map(path) as source:
        return ipc.open_file(source).read_all()


def write_parquet(batch: Any, path: str, *, compression: str = "zstd") -> None:
    """Write a batch to a Parquet file; the contract name and version ride in its metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(batch), path, compression=compression)


def read_parquet(path: str) -> pa.Table:
    """Read a Parquet file written by :func:`write_parquet`."""
    import pyarrow.parquet as pq

    return pq.read_table(path)


def ipc_bytes(batch: Any) -> bytes:
    """A batch as Arrow IPC stream bytes (what :class:`~.validation.Quarantine` and storage
    checksum and persist)."""
    import pyarrow as pa
    import pyarrow.ipc as ipc

    rb = pa.record_batch(batch)
    sink = io.BytesIO()
    with ipc.new_stream(sink, rb.schema) as writer:
        writer.write_batch(rb)
    return sink.getvalue()


def from_ipc_bytes(data: bytes) -> pa.Table:
    import pyarrow as pa
    import pyarrow.ipc as ipc

    try:
        return ipc.open_stream(pa.py_buffer(data)).read_all()
    except pa.ArrowInvalid as exc:
        raise ValidationError(f"not an Arrow IPC stream: {exc}") from exc


_MAGIC = b"S0B1"
_HEADER = struct.Struct("<4sIQ")  # magic, CRC-32C of the payload, payload length


def write_checksummed(batch: Any, path: str | Path) -> int:
    """Store a batch as Arrow IPC behind a header holding its CRC-32C; returns the CRC."""
    payload = ipc_bytes(batch)
    crc = _core.crc32c(payload)
    tmp = Path(f"{path}.tmp")
    with open(tmp, "wb") as f:
        f.write(_HEADER.pack(_MAGIC, crc, len(payload)))
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)  # readers never see a half-written file
    return crc


def read_checksummed(path: str | Path) -> pa.Table:
    """Read a batch written by :func:`write_checksummed`; a corrupt or truncated file raises
    :class:`~system0.errors.IntegrityError` before any row is returned."""
    data = Path(path).read_bytes()
    if len(data) < _HEADER.size:
        raise IntegrityError(f"{path}: truncated batch file ({len(data)} bytes)")
    magic, crc, length = _HEADER.unpack_from(data)
    payload = data[_HEADER.size :]
    if magic != _MAGIC:
        raise IntegrityError(f"{path}: not a system0 batch file (bad magic {magic!r})")
    if len(payload) != length:
        raise IntegrityError(f"{path}: payload is {len(payload)} bytes, header says {length}")
    actual = _core.crc32c(payload)
    if actual != crc:
        raise IntegrityError(
            f"{path}: CRC-32C mismatch (stored {crc:#010x}, computed {actual:#010x}); "
            "the file is corrupt, restore it from its source"
        )
    return from_ipc_bytes(payload)


__all__ = [
    "DENSE_SCALES",
    "FEATURE_NAMES",
    "PAD_VALUE",
    "SCALES",
    "DecodedBatch",
    "FeaturizedRequests",
    "GameStateRequest",
    "RequestError",
    "decode_game_states",
    "decode_training_samples",
    "features",
    "features_from_records",
    "features_torch",
    "featurize_requests",
    "from_ipc_bytes",
    "ipc_bytes",
    "read_checksummed",
    "read_ipc",
    "read_parquet",
    "reason_code",
    "to_arrow",
    "to_json",
    "to_protobuf",
    "write_checksummed",
    "write_ipc",
    "write_parquet",
]
