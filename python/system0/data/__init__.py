"""system0.data: contracts, the Rust codec fast path, validation policies and drift checks.

- :mod:`system0.data.models`: the pydantic contracts ``GameState``, ``Action``,
  ``TrainingSample`` and their JSON Schema;
- :mod:`system0.data.serialization`: ``decode_game_states`` / ``decode_training_samples``
  (JSON, NDJSON, msgpack, protobuf -> Arrow with per-row errors), ``features(batch)``,
  JSON / Arrow IPC / Parquet / protobuf encoding, checksummed batch files;
- :mod:`system0.data.validation`: ``Validator`` policies (warn / quarantine / fail),
  ``Quarantine`` (SQLite), and the drift checks ``ReferenceProfile`` / ``DriftReport``.

The names below are the part's surface (see ``system0.facade`` for how they load);
``system0.data.storage`` is a package of its own.
"""

from typing import TYPE_CHECKING

from system0.facade import lazy_exports

if TYPE_CHECKING:
    from system0.data.models import (
        Action as Action,
    )
    from system0.data.models import (
        GameState as GameState,
    )
    from system0.data.models import (
        TrainingSample as TrainingSample,
    )
    from system0.data.serialization import (
        DecodedBatch as DecodedBatch,
    )
    from system0.data.serialization import (
        decode_game_states as decode_game_states,
    )
    from system0.data.serialization import (
        decode_training_samples as decode_training_samples,
    )
    from system0.data.serialization import (
        features as features,
    )
    from system0.data.storage import ScalableStorage as ScalableStorage
    from system0.data.validation import (
        DriftReport as DriftReport,
    )
    from system0.data.validation import (
        Quarantine as Quarantine,
    )
    from system0.data.validation import (
        ReferenceProfile as ReferenceProfile,
    )
    from system0.data.validation import (
        Validator as Validator,
    )

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "system0.data.models": (
            "Action",
            "GameState",
            "TrainingSample",
        ),
        "system0.data.serialization": (
            "DecodedBatch",
            "decode_game_states",
            "decode_training_samples",
            "features",
        ),
        "system0.data.storage": ("ScalableStorage",),
        "system0.data.validation": (
            "DriftReport",
            "Quarantine",
            "ReferenceProfile",
            "Validator",
        ),
    },
)
