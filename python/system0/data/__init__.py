"""system0.data: contracts, the Rust codec fast path, validation policies and drift checks.

- :mod:`system0.data.models`: the pydantic contracts ``GameState``, ``Action``,
  ``TrainingSample`` and their JSON Schema;
- :mod:`system0.data.serialization`: ``decode_game_states`` / ``decode_training_samples``
  (JSON, NDJSON, msgpack, protobuf -> Arrow with per-row errors), ``features(batch)``,
  JSON / Arrow IPC / Parquet / protobuf encoding, checksummed batch files;
- :mod:`system0.data.validation`: ``Validator`` policies (warn / quarantine / fail),
  ``Quarantine`` (SQLite), and the drift checks ``ReferenceProfile`` / ``DriftReport``.
"""
