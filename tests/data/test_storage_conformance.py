"""One conformance suite for every storage backend, run against the real thing.

SQLite and DuckDB/Parquet always run. MongoDB runs when ``SYSTEM0_MONGO_URI`` names a server,
BigQuery when ``SYSTEM0_BIGQUERY_PROJECT`` names a project (with application-default
credentials); otherwise they are skipped with that reason. No backend is ever replaced by a
mock. Each test uses its own dataset name so runs against a shared server do not collide.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from system0.data.storage import ScalableStorage
from system0.data.storage.backends.duckdb import DuckDBBackend
from system0.data.storage.backends.sqlite import SQLiteBackend
from system0.data.storage.policy import StoragePolicy, Tier
from system0.data.storage.schema import synthetic_samples
from system0.data.storage.segments import Backend, sha256
from system0.errors import IntegrityError, NotFound, ValidationError

Factory = Callable[[], Backend]


def _sqlite(tmp: Path) -> Factory:
    return lambda: SQLiteBackend(tmp / "local.sqlite")


def _duckdb(tmp: Path) -> Factory:
    return lambda: DuckDBBackend(tmp / "parquet")


def _mongo(tmp: Path) -> Factory:
    uri = os.environ.get("SYSTEM0_MONGO_URI")
    if not uri:
        pytest.skip("SYSTEM0_MONGO_URI is not set: no MongoDB server to run the suite against")
    pytest.importorskip("pymongo", reason="pymongo is not installed (pip install system0[mongo])")
    from system0.data.storage.backends.mongo import MongoBackend

    return lambda: MongoBackend(uri)


def _bigquery(tmp: Path) -> Factory:
    project = os.environ.get("SYSTEM0_BIGQUERY_PROJECT")
    if not project:
        pytest.skip("SYSTEM0_BIGQUERY_PROJECT is not set: no BigQuery project to run against")
    pytest.importorskip(
        "google.cloud.bigquery",
        reason="google-cloud-bigquery is not installed (pip install system0[bigquery])",
    )
    from system0.data.storage.backends.bigquery import BigQueryBackend

    return lambda: BigQueryBackend(project)


FACTORIES = {"sqlite": _sqlite, "duckdb": _duckdb, "mongodb": _mongo, "bigquery": _bigquery}
TIER_OF: dict[str, Tier] = {
    "sqlite": "local",
    "duckdb": "analytical",
    "mongodb": "distributed",
    "bigquery": "cloud",
}


@pytest.fixture(params=sorted(FACTORIES))
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def factory(kind: str, tmp_path: Path) -> Factory:
    return FACTORIES[kind](tmp_path)


@pytest.fixture
def backend(factory: Factory) -> Iterator[Backend]:
    b = factory()
    yield b
    b.close()


@pytest.fixture
def dataset() -> str:
    return f"conf-{uuid.uuid4().hex[:12]}"


def _blob(n: int, salt: bytes = b"") -> tuple[str, bytes]:
    data = (salt + os.urandom(16)) * (n // 16 + 1)
    data = data[:n]
    return sha256(data), data


def test_is_a_backend(backend: Backend) -> None:
    assert isinstance(backend, Backend)
    assert backend.name in ("local", "analytical", "distributed", "cloud")
    backend.ping()


def test_put_then_get_returns_the_same_bytes(backend: Backend, dataset: str) -> None:
    blob, data = _blob(10_000)
    backend.put(dataset, blob, data)
    assert backend.get(dataset, blob) == data


def test_put_is_idempotent(backend: Backend, dataset: str) -> None:
    blob, data = _blob(1000)
    backend.put(dataset, blob, data)
    backend.put(dataset, blob, data)
    assert backend.list(dataset) == [blob]
    assert backend.get(dataset, blob) == data


def test_a_blob_larger_than_one_document_round_trips(backend: Backend, dataset: str) -> None:
    blob, data = _blob(9 * 1024 * 1024 + 7)  # over MongoDB's 8 MiB part size
    backend.put(dataset, blob, data)
    assert backend.get(dataset, blob) == data


def test_missing_blob_is_not_found_and_names_where(backend: Backend, dataset: str) -> None:
    blob, _ = _blob(10)
    with pytest.raises(NotFound) as err:
        backend.get(dataset, blob)
    assert blob in str(err.value)


def test_list_is_sorted_and_per_dataset(backend: Backend, dataset: str) -> None:
    blobs = [_blob(100 + i) for i in range(5)]
    for b, d in blobs:
        backend.put(dataset, b, d)
    other = dataset + "-other"
    b0, d0 = _blob(50)
    backend.put(other, b0, d0)
    assert backend.list(dataset) == sorted(b for b, _ in blobs)
    assert backend.list(other) == [b0]


def test_delete_removes_and_is_idempotent(backend: Backend, dataset: str) -> None:
    blob, data = _blob(100)
    backend.put(dataset, blob, data)
    backend.delete(dataset, blob)
    backend.delete(dataset, blob)
    assert backend.list(dataset) == []
    with pytest.raises(NotFound):
        backend.get(dataset, blob)


def test_bad_names_are_refused(backend: Backend) -> None:
    _, data = _blob(10)
    with pytest.raises(ValidationError):
        backend.put("../escape", sha256(data), data)
    with pytest.raises(ValidationError):
        backend.put("ok", "not-a-digest", data)


def test_writes_survive_reopening(factory: Factory, dataset: str) -> None:
    blob, data = _blob(5000)
    b = factory()
    b.put(dataset, blob, data)
    b.close()
    again = factory()
    try:
        assert again.get(dataset, blob) == data
    finally:
        again.close()


def test_concurrent_puts_from_threads_all_land(backend: Backend, dataset: str) -> None:
    blobs = [_blob(2000 + i, salt=bytes([i])) for i in range(16)]
    errors: list[BaseException] = []

    def write(chunk: list[tuple[str, bytes]]) -> None:
        try:
            for b, d in chunk:
                backend.put(dataset, b, d)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=write, args=(blobs[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert backend.list(dataset) == sorted(b for b, _ in blobs)
    for b, d in blobs:
        assert backend.get(dataset, b) == d


def _router_on(kind: str, factory: Factory, root: Path) -> ScalableStorage:
    """A router whose store route lands on this backend's tier."""
    tier = TIER_OF[kind]
    policy = StoragePolicy(
        hot_max_rows=10_000 if tier == "local" else 0,
        shared_datasets=("shared",) if tier == "distributed" else (),
    )
    backends: dict[Tier, Backend] = {tier: factory()}
    return ScalableStorage(root, policy=policy, backends=backends)


def test_router_round_trip_and_corruption_on_this_backend(
    kind: str, factory: Factory, tmp_path: Path
) -> None:
    if kind == "bigquery":
        pytest.skip("the cloud tier is reached through archive_datasets, covered by the router")
    dataset = "shared" if kind == "mongodb" else f"conf-{uuid.uuid4().hex[:8]}"
    with _router_on(kind, factory, tmp_path / "root") as storage:
        samples = synthetic_samples(500, seed=3)
        route = storage.explain("store", dataset=dataset, samples=samples)
        assert route.tier == TIER_OF[kind]
        v = storage.commit(samples, dataset=dataset)
        assert storage.read(dataset).equals(samples)
        assert storage.costs.recent()[0].backend == TIER_OF[kind]
        # replace the stored bytes under the same id: the checksum must catch it
        blob = v.manifest.segments[0].id
        backend = storage.backends[TIER_OF[kind]]
        backend.delete(dataset, blob)
        backend.put(dataset, blob, backend_bytes_flipped(samples))
        with pytest.raises(IntegrityError) as err:
            storage.read(dataset)
        assert backend.locate(dataset, blob) in str(err.value)


def backend_bytes_flipped(samples: object) -> bytes:
    from system0.data.storage.segments import encode_segment

    data = bytearray(encode_segment(synthetic_samples(500, seed=4)))
    data[len(data) // 2] ^= 0xFF
    return bytes(data)
