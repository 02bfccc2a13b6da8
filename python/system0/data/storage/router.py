"""``ScalableStorage``: a cost- and latency-aware router over tiered, versioned storage.

Tiers: ``local`` (SQLite, hot and recent), ``analytical`` (DuckDB over Parquet, scans),
``distributed`` (MongoDB) and ``cloud`` (BigQuery). The first two need no server and are always
there; the others join when given a URI or a project, and an unreachable one is an error at
construction, not a silent omission.

Writes: a batch of samples arrives as Arrow, is encoded once as a Parquet segment named by its
hash, lands on the tier the policy picks (by size, by dataset role), and becomes visible only
when the catalog commits a new version whose manifest lists it. Reads: pinned (dataset,
version or tag, order key, seed, batch size) readers return identical batches everywhere;
scans prefer the analytical tier, point lookups the hot one. ``explain`` answers where an
operation goes and why; every query reports its cost; every read and write is audited when a
ledger is given; datasets may be encrypted at rest through a keyring.

Every write is checked against the contract first (``storage.check``): a batch with a bad
row is refused whole, or, with ``on_invalid="quarantine"``, its bad rows go to the storage's
``Quarantine`` with their reasons and the rest commits. The codec's own ``DecodedBatch`` is
already validated and is not checked again.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from system0.data.storage.backends.duckdb import DuckDBBackend
from system0.data.storage.backends.sqlite import SQLiteBackend
from system0.data.storage.blobs import BlobStore
from system0.data.storage.check import (
    Admitted,
    ContractChoice,
    OnInvalid,
    admit,
    good_rows,
    quarantine_records,
    refusal,
)
from system0.data.storage.compaction import CompactionReport, compact, compaction_job
from system0.data.storage.integrity import VerifyReport, export_parquet, verify
from system0.data.storage.policy import (
    CostLedger,
    Pattern,
    QueryCost,
    Route,
    Sink,
    StoragePolicy,
    Tier,
    route_read,
    route_store,
)
from system0.data.storage.prefetch import column
from system0.data.storage.reader import Pin, PinnedReader
from system0.data.storage.segments import (
    Backend,
    KeyringLike,
    as_table,
    check_dataset,
    decode_segment,
    encode_segment,
    schema_fingerprint,
    sha256,
)
from system0.data.storage.versions import Catalog, Placement, SegmentEntry, Version
from system0.errors import ConfigError, NotFound, Unavailable, ValidationError
from system0.security.audit_sink import AuditSink

if TYPE_CHECKING:
    from system0.data.validation import Quarantine

DEFAULT_ORDER: tuple[str, ...] = ("metadata.match_id", "metadata.step")


class ScalableStorage:
    """Cost-aware, latency-aware storage router (see the module doc)."""

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        *,
        policy: StoragePolicy | Mapping[str, Any] | None = None,
        config: Any = None,
        backends: Mapping[Tier, Backend] | None = None,
        mongo_uri: str | None = None,
        bigquery_project: str | None = None,
        keyring: KeyringLike | None = None,
        audit: AuditSink | None = None,
        subject: str = "system0",
        cost_sinks: Iterable[Sink] = (),
        quarantine: Quarantine | None = None,
    ) -> None:
        storage_cfg = getattr(config, "storage", config)
        if root is None:
            root = getattr(storage_cfg, "root", "system0-data")
        self.root = Path(root)
        if isinstance(policy, Mapping):
            policy = StoragePolicy.from_mapping(policy)
        elif policy is None and storage_cfg is not None:
            policy = StoragePolicy.from_config(storage_cfg)
        self.policy = policy or StoragePolicy()
        self.catalog = Catalog(self.root / "catalog.sqlite")
        given: dict[Tier, Backend] = dict(backends or {})
        self.backends: dict[Tier, Backend] = {
            "local": given.get("local") or SQLiteBackend(self.root / "local.sqlite"),
            "analytical": given.get("analytical") or DuckDBBackend(self.root / "parquet"),
        }
        self.backends.update({t: b for t, b in given.items() if t not in self.backends})
        if mongo_uri:
            from system0.data.storage.backends.mongo import MongoBackend

            self.backends["distributed"] = MongoBackend(mongo_uri)
        if bigquery_project:
            from system0.data.storage.backends.bigquery import BigQueryBackend

            self.backends["cloud"] = BigQueryBackend(bigquery_project)
        self.blobs = BlobStore(
            self.catalog, self.backends, keyring=keyring, audit=audit, subject=subject
        )
        self.quarantine = quarantine  # where commit(on_invalid="quarantine") puts bad rows
        self.costs = CostLedger(sinks=list(cost_sinks))
        self._cursors: dict[tuple[Any, ...], tuple[PinnedReader, int, int]] = {}
        self._executor: ThreadPoolExecutor | None = None

    @property
    def keyring(self) -> KeyringLike | None:
        return self.blobs.keyring

    @property
    def audit(self) -> AuditSink | None:
        return self.blobs.audit

    @property
    def subject(self) -> str:
        return self.blobs.subject

    # routing --------------------------------------------------------------------------------
    def _kinds(self) -> dict[Tier, str]:
        return {t: b.kind for t, b in self.backends.items()}

    def _route_store(self, dataset: str, rows: int, nbytes: int) -> Route:
        return route_store(self.policy, self._kinds(), dataset, rows, nbytes)

    def _route_read(self, pattern: Pattern, version: Version) -> Route:
        order = self.policy.scan_order if pattern == "scan" else self.policy.lookup_order
        chosen = self._choose(version, order)
        return route_read(
            self._kinds(), pattern, order, [(p.backend, p.rows) for p in chosen.values()]
        )

    def explain(
        self,
        op: Pattern = "store",
        *,
        dataset: str = "samples",
        rows: int = 0,
        nbytes: int = 0,
        samples: Any = None,
        version: str | None = None,
    ) -> Route:
        """Which backend ``op`` goes to and why; the very ``Route`` the operation would take."""
        check_dataset(dataset)
        if op == "store":
            if samples is not None:
                t = as_table(samples)
                rows, nbytes = t.num_rows, t.nbytes
            return self._route_store(dataset, rows, nbytes)
        if op in ("scan", "lookup"):
            return self._route_read(op, self.catalog.resolve(dataset, version))
        raise ValidationError(f"explain: op must be 'store', 'scan' or 'lookup', not {op!r}")

    # writing --------------------------------------------------------------------------------
    def _encrypted(self, dataset: str, requested: bool | None) -> bool:
        known = self.catalog.is_encrypted(dataset)
        if known is None:
            enc = bool(requested)
            if enc and self.keyring is None:
                raise ConfigError(f"dataset {dataset!r}: encryption needs a keyring (keyring=...)")
            self.catalog.ensure_dataset(dataset, encrypted=enc)
            return enc
        if requested is not None and requested != known:
            raise ConfigError(
                f"dataset {dataset!r} was created {'with' if known else 'without'} encryption at "
                "rest; that choice is fixed per dataset"
            )
        if known and self.keyring is None:
            raise ConfigError(f"dataset {dataset!r} is encrypted at rest; pass keyring=...")
        return known

    def _will_encrypt(self, dataset: str, requested: bool | None) -> bool:
        """Whether a commit would encrypt, without creating the dataset (as _encrypted does)."""
        known = self.catalog.is_encrypted(dataset)
        return bool(requested) if known is None else known

    def _quarantine(self, dataset: str, admitted: Admitted) -> int:
        assert self.quarantine is not None  # commit checked it before admitting anything
        records = quarantine_records(admitted)
        return self.quarantine.add(str(admitted.contract), records, source=f"storage:{dataset}")

    def commit(
        self,
        samples: Any,
        *,
        dataset: str = "samples",
        encrypt: bool | None = None,
        overwrite: bool = False,
        message: str = "",
        contract: ContractChoice = "auto",
        on_invalid: OnInvalid = "refuse",
    ) -> Version:
        """Store ``samples`` as one new version (synchronously); returns it once durable.

        The values are checked against ``contract`` before anything is written (see
        ``system0.data.storage.check``: ``"auto"`` checks every table shaped like a contract,
        ``None`` marks data that is not). A row that breaks it makes ``on_invalid="refuse"``
        raise ``ValidationError`` naming the first bad rows, with nothing written;
        ``on_invalid="quarantine"`` moves the bad rows to ``self.quarantine`` with their
        reasons and commits the rest (the audit entry counts them).
        """
        check_dataset(dataset)
        if on_invalid not in ("refuse", "quarantine"):
            raise ConfigError(f"on_invalid must be 'refuse' or 'quarantine', not {on_invalid!r}")
        if on_invalid == "quarantine" and self.quarantine is None:
            raise ConfigError(
                "on_invalid='quarantine' needs a quarantine: ScalableStorage(..., "
                "quarantine=Quarantine(path))"
            )
        t0 = time.perf_counter_ns()
        admitted = admit(samples, contract)
        if admitted.total == 0:
            raise ValidationError(f"dataset {dataset!r}: refusing to commit an empty batch")
        if admitted.violations and on_invalid == "refuse":
            raise refusal(dataset, admitted)
        table = good_rows(admitted)
        if admitted.violations and self._will_encrypt(dataset, encrypt):
            raise ConfigError(
                f"dataset {dataset!r} is encrypted at rest, and the quarantine keeps rows in "
                "clear: nothing was stored; fix the bad rows, or commit them with "
                "on_invalid='refuse' to see which they are"
            )
        if table.num_rows == 0:
            self._quarantine(dataset, admitted)
            raise ValidationError(
                f"dataset {dataset!r}: all {admitted.total} rows break the contract; they are "
                "in the quarantine and nothing was committed"
            )
        enc = self._encrypted(dataset, encrypt)
        # bad rows are kept before the write: if the commit then fails, none is lost
        quarantined = self._quarantine(dataset, admitted) if admitted.violations else 0
        route = self._route_store(dataset, table.num_rows, table.nbytes)
        plain = encode_segment(table, compression=self.policy.compression)
        seg = sha256(plain)
        stored = self.blobs.seal(dataset, plain)  # _encrypted() fixed the dataset's choice
        blob = seg if stored is plain else sha256(stored)  # blobs are named by stored bytes
        tier = route.tier
        try:
            self.blobs.put(dataset, tier, blob, stored)
        except (Unavailable, OSError) as e:
            if route.fallback is None:
                raise
            tier = route.fallback  # nothing was acknowledged yet: the fallback tier takes it
            try:
                self.blobs.put(dataset, tier, blob, stored)
            except (Unavailable, OSError) as e2:
                raise Unavailable(
                    f"dataset {dataset!r}: neither {route.tier} ({e}) nor {tier} ({e2}) accepted "
                    "the write; nothing was committed, retry when a tier is back"
                ) from e2
        placement = Placement(seg, tier, blob, 0, table.num_rows, blob, len(stored))
        entry = SegmentEntry(seg, table.num_rows, len(plain))
        version = self.catalog.commit(
            dataset,
            schema_fingerprint(table.schema),
            [entry],
            [placement],
            overwrite=overwrite,
            message=message,
        )
        ms = (time.perf_counter_ns() - t0) / 1e6
        self._cost("store", dataset, tier, table.num_rows, len(stored), ms, 0.0)
        self.blobs.audited(
            "write",
            dataset,
            version.id,
            {"rows": table.num_rows, "tier": tier, "segment": seg, "encrypted": enc}
            | ({"quarantined": quarantined} if quarantined else {}),
        )
        return version

    async def store(self, samples: Any, **kwargs: Any) -> Version:
        """Async ``commit``: the encode and the durable writes run in a worker thread."""
        return await asyncio.to_thread(self.commit, samples, **kwargs)

    # reading --------------------------------------------------------------------------------
    def _choose(self, version: Version, order: Sequence[Tier]) -> dict[str, Placement]:
        """For each segment of ``version``, the placement on the most preferred tier."""
        rank = {t: i for i, t in enumerate(order)}
        best: dict[str, Placement] = {}
        for p in self.catalog.placements(version.dataset):
            if p.backend not in self.backends:
                continue
            cur = best.get(p.segment)
            if cur is None or rank.get(p.backend, 99) < rank.get(cur.backend, 99):  # type: ignore[call-overload]
                best[p.segment] = p
        missing = [s.id for s in version.manifest.segments if s.id not in best]
        if missing:
            raise NotFound(
                f"dataset {version.dataset!r} version {version.id[:12]}: segment(s) "
                f"{', '.join(m[:12] for m in missing[:3])} have no placement on a configured "
                f"tier (configured: {', '.join(self.backends)}); configure the tier that holds them"
            )
        return best

    def _load(
        self,
        version: Version,
        columns: list[str] | None,
        pattern: Pattern = "scan",
        _retry: bool = False,
    ) -> pa.Table:
        """Every row of ``version`` in manifest order, checksums verified, cost recorded."""
        t0 = time.perf_counter_ns()
        dataset = version.dataset
        order = self.policy.scan_order if pattern == "scan" else self.policy.lookup_order
        chosen = self._choose(version, order)
        first: dict[tuple[str, str], Placement] = {}
        for s in version.manifest.segments:
            p = chosen[s.id]
            first.setdefault((p.backend, p.blob), p)

        def fetch(p: Placement) -> tuple[int, pa.Table]:
            n, plain = self.blobs.load(dataset, p)
            return n, decode_segment(plain, columns)

        # hashing, decryption and Parquet decoding release the GIL: blobs load in parallel
        try:
            loaded = dict(zip(first, self._pool().map(fetch, first.values()), strict=True))
        except NotFound:
            if _retry:
                raise
            # a compaction elsewhere moved a segment between our placement lookup and the
            # fetch (it deletes the hot copy only after the new placement commits): look again
            return self._load(version, columns, pattern, _retry=True)
        read_bytes: dict[str, int] = {}
        for (tier, _), (n, _) in loaded.items():
            read_bytes[tier] = read_bytes.get(tier, 0) + n
        parts = [
            loaded[(chosen[s.id].backend, chosen[s.id].blob)][1].slice(
                chosen[s.id].row_offset, chosen[s.id].rows
            )
            for s in version.manifest.segments
        ]
        table = pa.concat_tables(parts) if parts else pa.table({})
        ms = (time.perf_counter_ns() - t0) / 1e6
        for tier, n in read_bytes.items():
            rows = sum(
                chosen[s.id].rows for s in version.manifest.segments if chosen[s.id].backend == tier
            )
            usd = QueryCost.estimate_usd(n, self.backends[tier].usd_per_tib_scanned)  # type: ignore[index]
            self._cost(pattern, dataset, tier, rows, n, ms, usd)
        self.catalog.record_reads(dataset, sorted(chosen))
        return table

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            workers = max(2, min(8, os.cpu_count() or 2))
            self._executor = ThreadPoolExecutor(workers, thread_name_prefix="system0-storage-io")
        return self._executor

    def resolve(self, dataset: str = "samples", version: str | None = None) -> Version:
        """The version named by a tag, an id (or 8+ digit prefix), or the head if None."""
        return self.catalog.resolve(check_dataset(dataset), version)

    def read(
        self,
        dataset: str = "samples",
        *,
        version: str | None = None,
        columns: Sequence[str] | None = None,
    ) -> pa.Table:
        """A scan: every row of a version in commit order (analytical tier preferred)."""
        v = self.resolve(dataset, version)
        table = self._load(v, list(columns) if columns else None, "scan")
        self.blobs.audited("read", dataset, v.id, {"rows": table.num_rows, "pattern": "scan"})
        return table

    def lookup(
        self, key: str, value: Any, *, dataset: str = "samples", version: str | None = None
    ) -> pa.Table:
        """A point lookup: rows whose column ``key`` (dotted path) equals ``value``."""
        v = self.resolve(dataset, version)
        table = self._load(v, None, "lookup")
        hits = table.filter(pc.equal(column(table, key), pa.scalar(value)))
        self.blobs.audited("read", dataset, v.id, {"rows": hits.num_rows, "pattern": "lookup"})
        return hits

    def query(self, sql: str, *, dataset: str = "samples", version: str | None = None) -> pa.Table:
        """SQL (DuckDB) over a version, exposed to the query as the view ``samples``.

        When the version's segments are whole Parquet files on the analytical tier, DuckDB
        reads the files themselves (projection and filters pushed down); otherwise (hot
        segments, encrypted datasets, merged files shared with other versions) it runs over
        the verified, decrypted Arrow table.
        """
        v = self.resolve(dataset, version)
        analytical = self.backends["analytical"]
        if not isinstance(analytical, DuckDBBackend):
            raise ConfigError("query() needs the DuckDB/Parquet backend as the analytical tier")
        t0 = time.perf_counter_ns()
        chosen = self._choose(v, self.policy.scan_order)
        whole: dict[str, int] = {}
        for p in self.catalog.placements(dataset):
            if p.backend == "analytical":
                whole[p.blob] = whole.get(p.blob, 0) + p.rows
        wanted: dict[str, int] = {}
        for p in chosen.values():
            wanted[p.blob] = wanted.get(p.blob, 0) + p.rows if p.backend == "analytical" else -1
        direct = (
            not self.catalog.is_encrypted(dataset)
            and all(p.backend == "analytical" for p in chosen.values())
            and all(whole.get(b) == n for b, n in wanted.items())
        )
        files = {p.blob: p for p in chosen.values()}.values()
        if direct:
            for p in files:
                self.blobs.fetch(dataset, p)  # verify each file before DuckDB trusts it
            out = analytical.query(dataset, sorted(wanted), sql)
        else:
            out = analytical.query_table(self._load(v, None, "scan"), sql)
        ms = (time.perf_counter_ns() - t0) / 1e6
        # bytes: what the query had to scan (the files, at most), not the size of its answer
        scanned = sum(p.blob_bytes for p in files)
        self._cost("query", dataset, "analytical", out.num_rows, scanned, ms, 0.0)
        self.blobs.audited("read", dataset, v.id, {"rows": out.num_rows, "pattern": "sql"})
        return out

    def reader(
        self,
        dataset: str = "samples",
        *,
        version: str | None = None,
        order_by: Sequence[str] = DEFAULT_ORDER,
        seed: int | None = 0,
        batch_size: int = 1024,
        columns: Sequence[str] | None = None,
    ) -> PinnedReader:
        """Deterministic batches of one version: same pin, same batches, on any machine."""
        v = self.resolve(dataset, version)
        pin = Pin(dataset, v.id, tuple(order_by), seed, batch_size)

        def load(version: Version, cols: list[str] | None) -> pa.Table:
            table = self._load(version, cols, "scan")
            self.blobs.audited(
                "read", dataset, version.id, {"rows": table.num_rows, "pin": pin.describe()}
            )
            return table

        return PinnedReader(
            pin,
            v,
            load,
            columns=columns,
            prefetch_batches=self.policy.prefetch_batches,
            prefetch_max_bytes=self.policy.prefetch_max_bytes,
            executor=self._pool(),
        )

    async def batch(
        self,
        batch_size: int,
        *,
        dataset: str = "samples",
        version: str | None = None,
        order_by: Sequence[str] = DEFAULT_ORDER,
        seed: int = 0,
    ) -> pa.RecordBatch:
        """The next batch of a pinned stream; epoch ``e`` is shuffled with seed ``seed + e``.

        The version is resolved on the first call of a stream and stays pinned, so samples
        stored meanwhile never shift a running epoch.
        """
        key = (dataset, version, tuple(order_by), seed, batch_size)
        if key not in self._cursors:
            r = self.reader(
                dataset, version=version, order_by=order_by, seed=seed, batch_size=batch_size
            )
            self._cursors[key] = (r, 0, 0)
        r, epoch, i = self._cursors[key]
        if i >= len(r):
            epoch, i = epoch + 1, 0
            new_seed = (seed + epoch) % 2**64
            r = r.with_seed(new_seed)  # the rows stay loaded; only the order changes
        out = await asyncio.to_thread(r.batch, i)
        self._cursors[key] = (r, epoch, i + 1)
        return out

    # tags, versions, retention ----------------------------------------------------------------
    def datasets(self) -> list[str]:
        return self.catalog.datasets()

    def versions(self, dataset: str = "samples") -> list[Version]:
        return self.catalog.versions(check_dataset(dataset))

    def tag(
        self, tag: str, *, dataset: str = "samples", version: str | None = None, move: bool = False
    ) -> str:
        vid = self.catalog.tag(check_dataset(dataset), tag, version, move=move)
        self.blobs.audited("tag", dataset, vid, {"tag": tag})
        return vid

    def retain(self, dataset: str = "samples", *, keep_last: int) -> list[str]:
        """Drop versions beyond the newest ``keep_last``; tagged versions are always kept."""
        dropped, dead = self.catalog.retain(check_dataset(dataset), keep_last)
        for p in dead:
            if (
                not self.catalog.blob_referenced(dataset, p.backend, p.blob)
                and p.backend in self.backends
            ):
                self.blobs.delete(dataset, p.backend, p.blob)
        if dropped:
            self.blobs.audited(
                "delete", dataset, ",".join(d[:12] for d in dropped), {"versions": len(dropped)}
            )
        return dropped

    def gc(self, dataset: str = "samples", *, grace_s: float = 3600.0) -> int:
        """Delete blobs no placement references (left by crashed writers); returns how many.

        Blobs announced by a writer within ``grace_s`` are kept: that writer may still commit.
        """
        gone = 0
        for tier, backend in self.backends.items():
            keep = self.catalog.in_use(dataset, tier, int(grace_s * 1e9))
            for blob in backend.list(dataset):
                if blob not in keep:
                    backend.delete(dataset, blob)
                    gone += 1
            if isinstance(backend, DuckDBBackend):
                backend.sweep_temporaries(dataset)
        return gone

    def verify(self, dataset: str = "samples", *, version: str | None = None) -> VerifyReport:
        """Check every stored checksum of a version (or all); ``IntegrityError`` names the file."""
        return verify(self.blobs, check_dataset(dataset), version)

    def export_parquet(
        self, path: str | os.PathLike[str], *, dataset: str = "samples", version: str | None = None
    ) -> int:
        """Write a version to one Parquet file (atomically); returns the rows written."""
        return export_parquet(self.read(check_dataset(dataset), version=version), path)

    # compaction lives in storage.compaction to keep this file one concept
    def compact(
        self, dataset: str | None = None, *, force: bool = False, now_ns: int | None = None
    ) -> list[CompactionReport]:
        names = [dataset] if dataset else self.datasets()
        return [compact(self.blobs, self.policy, d, force=force, now_ns=now_ns) for d in names]

    async def compaction_job(
        self, stop: asyncio.Event, *, interval_s: float | None = None
    ) -> list[CompactionReport]:
        """Compact every ``interval_s`` (default: a tenth of ``hot_max_age_s``) until ``stop``
        is set; returns the reports of the passes that moved something."""
        period = interval_s if interval_s is not None else self.policy.hot_max_age_s / 10
        return await compaction_job(self.compact, stop, period)

    # telemetry and audit ------------------------------------------------------------------------
    def _cost(
        self, op: str, dataset: str, tier: str, rows: int, nbytes: int, ms: float, usd: float
    ) -> None:
        self.costs.record(QueryCost(op, dataset, tier, rows, nbytes, ms, usd))

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        for b in self.backends.values():
            b.close()
        self.catalog.close()

    def __enter__(self) -> ScalableStorage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["DEFAULT_ORDER", "CompactionReport", "ScalableStorage", "as_table"]
