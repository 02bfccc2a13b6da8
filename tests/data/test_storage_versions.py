"""Versioned data: content-hashed manifests, tags, pinned resolution, retention."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from system0.data.storage import ScalableStorage
from system0.data.storage.schema import synthetic_samples
from system0.data.storage.versions import Manifest
from system0.errors import NotFound, ValidationError


@pytest.fixture
def storage(tmp_path: Path) -> ScalableStorage:
    s = ScalableStorage(tmp_path / "root")
    yield s
    s.close()


def _batch(i: int, n: int = 200) -> pa.Table:
    return synthetic_samples(n, seed=i, start_step=i * n)


def test_commits_append_and_each_version_keeps_its_rows(storage: ScalableStorage) -> None:
    v1 = storage.commit(_batch(0))
    v2 = storage.commit(_batch(1))
    assert (v1.seq, v2.seq) == (1, 2)
    assert v2.parent == v1.id
    assert v2.manifest.segments[:1] == v1.manifest.segments
    assert storage.read(version=v1.id).num_rows == 200
    assert storage.read(version=v2.id).equals(pa.concat_tables([_batch(0), _batch(1)]))


def test_version_id_is_the_hash_of_the_canonical_manifest(storage: ScalableStorage) -> None:
    v = storage.commit(_batch(0))
    again = Manifest.parse(v.manifest.canonical())
    assert again == v.manifest
    assert again.id == v.id


def test_same_content_on_the_same_parent_has_the_same_name(tmp_path: Path) -> None:
    ids = []
    for name in ("a", "b"):
        with ScalableStorage(tmp_path / name) as s:
            s.commit(_batch(0))
            ids.append(s.commit(_batch(1)).id)
    assert ids[0] == ids[1]


def test_committing_nothing_new_is_a_no_op(storage: ScalableStorage) -> None:
    v1 = storage.commit(_batch(0), overwrite=True)
    v2 = storage.commit(_batch(0), overwrite=True)
    assert v2.id != v1.id  # a new parent: a new version with the same rows
    assert storage.read().num_rows == 200


def test_schema_change_needs_overwrite(storage: ScalableStorage) -> None:
    storage.commit(_batch(0))
    other = pa.table({"x": [1, 2, 3]})
    with pytest.raises(ValidationError, match="schema differs"):
        storage.commit(other)
    v = storage.commit(other, overwrite=True)
    assert storage.read(version=v.id).equals(other)


def test_tags_pin_versions_and_are_immutable_unless_moved(storage: ScalableStorage) -> None:
    v1 = storage.commit(_batch(0))
    storage.tag("train-2024", version=v1.id)
    v2 = storage.commit(_batch(1))
    assert storage.resolve(version="train-2024").id == v1.id
    assert storage.resolve().id == v2.id
    with pytest.raises(ValidationError, match="already pins"):
        storage.tag("train-2024", version=v2.id)
    storage.tag("train-2024", version=v2.id, move=True)
    assert storage.resolve(version="train-2024").id == v2.id


def test_versions_resolve_by_unique_prefix(storage: ScalableStorage) -> None:
    v = storage.commit(_batch(0))
    assert storage.resolve(version=v.id[:10]).id == v.id
    with pytest.raises(NotFound):
        storage.resolve(version=v.id[:4])  # too short to name a version


def test_unknown_version_or_tag_is_a_clear_error(storage: ScalableStorage) -> None:
    storage.commit(_batch(0))
    storage.tag("golden")
    with pytest.raises(NotFound) as err:
        storage.reader(version="no-such-tag")
    assert "no-such-tag" in str(err.value) and "golden" in str(err.value)
    with pytest.raises(NotFound, match="no versions"):
        storage.read("empty-dataset")


def test_retention_never_deletes_tagged_data(storage: ScalableStorage) -> None:
    v1 = storage.commit(_batch(0))
    storage.tag("keep", version=v1.id)
    storage.commit(_batch(1), overwrite=True)
    storage.commit(_batch(2), overwrite=True)
    v4 = storage.commit(_batch(3), overwrite=True)
    dropped = storage.retain(keep_last=1)
    assert len(dropped) == 2 and v1.id not in dropped
    assert [v.id for v in storage.versions()] == [v1.id, v4.id]
    assert storage.read(version="keep").equals(_batch(0))
    assert storage.read().equals(_batch(3))
    storage.verify()
    # the blobs of the dropped versions are gone from the tiers
    live = {s.id for v in storage.versions() for s in v.manifest.segments}
    assert set(storage.backends["local"].list("samples")) == live


def test_retention_keeps_at_least_the_head(storage: ScalableStorage) -> None:
    storage.commit(_batch(0))
    with pytest.raises(ValidationError):
        storage.retain(keep_last=0)


def test_empty_batches_and_bad_dataset_names_are_refused(storage: ScalableStorage) -> None:
    with pytest.raises(ValidationError, match="empty"):
        storage.commit(_batch(0).slice(0, 0))
    with pytest.raises(ValidationError, match="dataset name"):
        storage.commit(_batch(0), dataset="Bad Name")
    with pytest.raises(ValidationError, match="Arrow"):
        storage.commit([{"a": 1}])


def test_version_prefixes_are_text_not_patterns(storage: ScalableStorage) -> None:
    storage.commit(_batch(0))
    for ref in ("________", "%%%%%%%%", "ABCDEF01"):
        with pytest.raises(NotFound):
            storage.resolve(version=ref)
