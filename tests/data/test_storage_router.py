"""Routing by size, role and hotness; explain; fallback; compaction; cost telemetry."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pyarrow as pa
import pytest

from system0.data.storage import ScalableStorage
from system0.data.storage.backends.duckdb import DuckDBBackend
from system0.data.storage.policy import StoragePolicy
from system0.data.storage.schema import synthetic_samples
from system0.errors import ConfigError, Unavailable

SMALL = StoragePolicy(hot_max_rows=1000, hot_max_age_s=60.0, hot_min_reads=3)


@pytest.fixture
def storage(tmp_path: Path) -> ScalableStorage:
    s = ScalableStorage(tmp_path / "root", policy=SMALL)
    yield s
    s.close()


def test_small_batches_go_hot_and_large_ones_analytical(storage: ScalableStorage) -> None:
    small, large = synthetic_samples(100), synthetic_samples(5000, seed=1, start_step=100)
    assert storage.explain(samples=small).tier == "local"
    route = storage.explain(samples=large)
    assert route.tier == "analytical" and "hot_max_rows=1000" in str(route)
    storage.commit(small)
    storage.commit(large)
    tiers = {p.rows: p.backend for p in storage.catalog.placements("samples")}
    assert tiers == {100: "local", 5000: "analytical"}
    assert [c.backend for c in storage.costs.recent()] == ["local", "analytical"]


def test_explain_read_names_the_tiers_a_scan_touches(storage: ScalableStorage) -> None:
    storage.commit(synthetic_samples(100))
    storage.commit(synthetic_samples(5000, seed=1, start_step=100))
    scan = storage.explain("scan")
    assert scan.tier == "analytical"
    assert any("100 rows from local" in r for r in scan.reasons)
    lookup = storage.explain("lookup")
    assert lookup.reasons[0].startswith("lookup prefers tiers in the order local")


def test_roles_route_to_configured_tiers_and_say_when_missing(tmp_path: Path) -> None:
    policy = StoragePolicy(shared_datasets=("league",), archive_datasets=("old",))
    extra = DuckDBBackend(tmp_path / "shared", name="distributed")
    with ScalableStorage(tmp_path / "r", policy=policy, backends={"distributed": extra}) as s:
        assert s.explain(dataset="league", rows=10).tier == "distributed"
        r = s.explain(dataset="old", rows=10)
        assert r.tier == "local" and any("no cloud tier" in x for x in r.reasons)
        s.commit(synthetic_samples(10), dataset="league")
        assert extra.list("league")


def test_a_write_falls_back_when_its_tier_goes_away(storage: ScalableStorage) -> None:
    storage.backends["local"].close()  # the hot tier is gone (closed connection)
    v = storage.commit(synthetic_samples(50))
    [p] = storage.catalog.placements("samples")
    assert p.backend == "analytical"
    assert storage.read(version=v.id).num_rows == 50


def test_an_unreachable_configured_backend_is_a_clear_error(tmp_path: Path) -> None:
    pytest.importorskip("pymongo", reason="pymongo is not installed")
    with pytest.raises(Unavailable, match="unreachable"):
        ScalableStorage(tmp_path / "r", mongo_uri="mongodb://127.0.0.1:9/?timeoutMS=300")


def test_compaction_moves_cold_segments_and_keeps_versions(storage: ScalableStorage) -> None:
    for i in range(4):
        storage.commit(synthetic_samples(100, seed=i, start_step=100 * i))
    before = storage.reader(seed=5, batch_size=64).digest()
    heads = [v.id for v in storage.versions()]
    # nothing is cold yet
    assert storage.compact("samples")[0].segments == 0
    # an hour later, the segments are cold: all four merge into one Parquet blob
    later = storage.catalog.placements("samples")[0].created_ns + 3600 * 10**9
    [report] = storage.compact("samples", now_ns=later)
    assert (report.segments, report.rows) == (4, 400)
    placements = storage.catalog.placements("samples")
    assert {p.backend for p in placements} == {"analytical"}
    assert {p.blob for p in placements} == {report.blob}
    assert storage.backends["local"].list("samples") == []
    assert [v.id for v in storage.versions()] == heads
    assert storage.reader(seed=5, batch_size=64).digest() == before
    assert storage.read(version=heads[1]).num_rows == 200
    storage.verify()


def test_frequently_read_segments_stay_hot(storage: ScalableStorage) -> None:
    storage.commit(synthetic_samples(100))
    for _ in range(3):
        storage.lookup("metadata.step", 7)
    p = storage.catalog.placements("samples")[0]
    assert p.reads == 3
    assert p.last_read_ns > p.created_ns
    # old enough (60 s), but read 3 times within the last 60 s: it stays hot
    assert storage.compact("samples", now_ns=p.created_ns + 60 * 10**9)[0].segments == 0
    much_later = p.last_read_ns + 61 * 10**9
    assert storage.compact("samples", now_ns=much_later)[0].segments == 1


def test_sql_sees_the_whole_version_wherever_it_lives(storage: ScalableStorage) -> None:
    storage.commit(synthetic_samples(100))
    storage.commit(synthetic_samples(5000, seed=1, start_step=100))
    out = storage.query("SELECT count(*) AS n, max(metadata.step) AS top FROM samples")
    assert out.to_pylist() == [{"n": 5100, "top": 5099}]
    first = storage.versions()[0].id
    assert storage.query("SELECT count(*) AS n FROM samples", version=first).to_pylist() == [
        {"n": 100}
    ]


def test_lookup_finds_rows_by_key(storage: ScalableStorage) -> None:
    storage.commit(synthetic_samples(300))
    hits = storage.lookup("metadata.step", 42)
    assert hits.num_rows == 1
    assert hits.column("metadata").to_pylist()[0]["step"] == 42


def test_costs_reach_sinks_with_rows_bytes_and_time(tmp_path: Path) -> None:
    seen = []
    with ScalableStorage(tmp_path / "r", cost_sinks=[seen.append]) as s:
        s.commit(synthetic_samples(100))
        s.read()
    store, scan = seen
    assert (store.op, store.rows, scan.op, scan.rows) == ("store", 100, "scan", 100)
    assert store.bytes > 0 and scan.bytes == store.bytes and scan.ms > 0
    assert store.usd == 0.0 and scan.usd == 0.0


def test_async_store_and_batch(storage: ScalableStorage) -> None:
    async def run() -> list[pa.RecordBatch]:
        await storage.store(synthetic_samples(250))
        return [await storage.batch(100) for _ in range(4)]

    batches = asyncio.run(run())
    assert [b.num_rows for b in batches] == [100, 100, 50, 100]  # the 4th opens epoch 1
    steps = [s["step"] for b in batches[:3] for s in b.column("metadata").to_pylist()]
    assert sorted(steps) == list(range(250))


def test_policy_refuses_unknown_keys_and_reads_the_config() -> None:
    with pytest.raises(ConfigError, match="unknown keys"):
        StoragePolicy.from_mapping({"hot_rows": 5})
    assert StoragePolicy.from_mapping({"scan_order": ["local"]}).scan_order == ("local",)
    with pytest.raises(ConfigError, match="unknown tiers"):
        StoragePolicy(scan_order=("tape",))  # type: ignore[arg-type]
    config = pytest.importorskip("system0.core.config")
    policy = StoragePolicy.from_config(config.AIConfig())
    assert policy.hot_max_bytes == config.AIConfig().storage.hot_tier_max_bytes


def test_reads_stay_whole_while_another_process_compacts(tmp_path: Path) -> None:
    import threading

    root = tmp_path / "r"
    with ScalableStorage(root, policy=SMALL) as writer:
        writer.commit(synthetic_samples(100))
    errors: list[BaseException] = []
    done = threading.Event()

    def compact_loop() -> None:
        with ScalableStorage(root, policy=SMALL) as other:
            for i in range(15):
                other.commit(synthetic_samples(50, seed=i + 1, start_step=100 + 50 * i))
                other.compact("samples", force=True)
        done.set()

    def read_loop() -> None:
        with ScalableStorage(root, policy=SMALL) as reader:
            while not done.is_set():
                try:
                    v = reader.resolve()
                    assert reader.read(version=v.id).num_rows == v.rows
                except BaseException as e:
                    errors.append(e)
                    return

    threads = [threading.Thread(target=compact_loop), threading.Thread(target=read_loop)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def _prometheus_value(text: str, line_prefix: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_prefix):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_costs_reach_the_telemetry_registry(tmp_path: Path) -> None:
    telemetry = pytest.importorskip(
        "system0.core.telemetry", reason="system0.core.telemetry is not merged into this build"
    )
    rows = 'system0_storage_rows_total{op="store",backend="local"}'
    queries = 'system0_storage_queries_total{op="scan",backend="local"}'
    before = telemetry.render_prometheus()
    with ScalableStorage(tmp_path / "r") as s:
        s.commit(synthetic_samples(123))
        s.read()
    after = telemetry.render_prometheus()
    assert _prometheus_value(after, rows) - _prometheus_value(before, rows) == 123
    assert _prometheus_value(after, queries) - _prometheus_value(before, queries) == 1
    assert "system0_storage_query_us_bucket" in after


def test_the_compaction_job_ages_hot_data_out_until_stopped(tmp_path: Path) -> None:
    policy = StoragePolicy(hot_max_rows=1000, hot_max_age_s=0.05, hot_min_reads=100)
    with ScalableStorage(tmp_path / "r", policy=policy) as s:

        async def run() -> list:
            stop = asyncio.Event()
            job = asyncio.create_task(s.compaction_job(stop, interval_s=0.02))
            await s.store(synthetic_samples(100))
            for _ in range(200):
                if not s.backends["local"].list("samples"):
                    break
                await asyncio.sleep(0.02)
            stop.set()
            return await job

        reports = asyncio.run(run())
        assert sum(r.segments for r in reports) == 1
        assert {p.backend for p in s.catalog.placements("samples")} == {"analytical"}
        assert s.read().num_rows == 100


def test_a_cloud_tier_without_its_client_library_says_how_to_install_it(tmp_path: Path) -> None:
    try:
        import google.cloud.bigquery  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("google-cloud-bigquery is installed: the missing-library path cannot run")
    with pytest.raises(Unavailable, match=r"pip install 'system0\[bigquery\]'"):
        ScalableStorage(tmp_path / "r", bigquery_project="some-project")


def test_the_config_names_the_root_and_shapes_the_policy(tmp_path: Path) -> None:
    config = pytest.importorskip("system0.core.config")
    cfg = config.AIConfig(
        storage=config.StorageConfig(root=str(tmp_path / "cfg-root"), hot_tier_max_bytes=1000)
    )
    with ScalableStorage(config=cfg) as s:
        assert s.root == tmp_path / "cfg-root"
        assert s.policy.hot_max_bytes == 1000
        assert s.explain(samples=synthetic_samples(10)).tier == "analytical"  # > 1000 bytes
        s.commit(synthetic_samples(10))
    assert (tmp_path / "cfg-root" / "catalog.sqlite").exists()
