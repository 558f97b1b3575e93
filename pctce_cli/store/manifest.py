"""A partition's manifest as a type: read, checked, written, and every legacy schema handled here.

``_manifest.json`` is the completion mark of a partition and the only record
of what was scored: where the weights came from, the run identity
(fingerprints and the settings that change the numbers), the shard records
with their checksums and sums, the labels file. Every reader gets a
:class:`Manifest` from :func:`read_manifest`; nothing outside the store indexes
the JSON.

On disk the identity appears three times for the readers of older pctce (and
of the JSON itself): ``identity``, the ``fingerprints`` (the identity's four
fingerprints and the method) and the ``settings`` (the identity's settings and
the run settings). In memory it is stored once: ``fingerprints`` and
``settings`` are derived from :attr:`Manifest.identity`.

Schema versions:

* 1 — every manifest written before the checksum (pctce has written
  ``schema_version`` since its first store). Read as it is.
* 2 — adds ``checksum``: the SHA-256 of the manifest's canonical content
  (:func:`canonical_sha256`), written in the same atomic replace. A version-2
  manifest without it, or whose content does not match it, is damaged.
  (A single bit flip cannot turn ``2`` into ``1``: 0x32 and 0x31 differ in two bits.)

A manifest with no ``schema_version`` was not written by pctce (an edit or
damage): it is refused, never guessed to be version 1. A newer version than
:data:`SCHEMA_VERSION` is refused naming the version and the file.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

from pctce_cli import atomic
from pctce_cli.errors import StoreError
from pctce_cli.store.layout import (
    LABELS_FILE,
    MANIFEST,
    RUN_STATE,
    damaged,
    lock_is_held,
    partition_dir,
    read_json,
    require_store,
)

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)
FINGERPRINT_KEYS = ("weights", "tokenizer", "data", "documents")
# shard files named by a manifest: only these, so a damaged or hostile manifest cannot point outside its partition
_SHARD_FILE = re.compile(r"^(?:_docs/)?part-\d{5,}\.parquet$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# keys held as fields of Manifest; every other key is kept as stored (``other``)
_FIELDS = ("id", "schema_version", "identity", "fingerprints", "settings", "shards", "labels", "units", "checksum")


def canonical_sha256(obj: Mapping) -> str:
    """SHA-256 of a manifest's content without its ``checksum``: sorted keys, no spaces, UTF-8.

    The content, not the bytes: indentation is not part of it.

    >>> canonical_sha256({"b": 1, "a": [1.5, "é"], "checksum": "x"}) == canonical_sha256({"a": [1.5, "é"], "b": 1})
    True
    """
    body = {k: v for k, v in obj.items() if k != "checksum"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, eq=False)
class Manifest(Mapping):
    """One partition's manifest.

    Attributes are the typed view; the :class:`~collections.abc.Mapping`
    interface (``m["step"]``) reads the JSON as written, for the public API and
    older callers.

    Attributes:
        id: The checkpoint id (the partition's name).
        identity: Fingerprints and result-relevant settings (``None`` only in a
            manifest that never recorded it).
        fingerprint_method: How the weights were fingerprinted.
        run_settings: Settings that do not change the numbers (``batch_tokens``, ``device`` …).
        shards: Shard records (files, SHA-256, rows, documents, ``ce_sum``).
        labels: The labels file record, or ``None``.
        units: Whether byte spans and words are stored (``units.available``), or ``None``.
        other: Every other key, as stored (``path``, ``step``, ``data``, ``versions`` …).
        schema_version: The version read (written: :data:`SCHEMA_VERSION`).
    """

    id: str
    identity: dict | None = None
    fingerprint_method: str | None = None
    run_settings: dict = field(default_factory=dict)
    shards: tuple = ()
    labels: dict | None = None
    units: dict | None = None
    other: dict = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    # ------------------------------------------------------------ JSON

    @classmethod
    def from_json(cls, obj: Mapping) -> Manifest:
        """The manifest of a JSON object (checked by :func:`check_manifest` first when read from a store).

        ``fingerprints`` and ``settings`` that are exactly what the identity
        implies are not kept twice; any that are not (a manifest edited by
        hand, say) are kept as written, so ``to_json(from_json(d)) == d``.

        >>> d = {"id": "a", "identity": {"weights": "w", "tokenizer": "t", "data": "d", "documents": "x", "settings": {"stride": 8}},
        ...      "fingerprints": {"weights": "w", "tokenizer": "t", "data": "d", "documents": "x", "method": "sha256"},
        ...      "settings": {"stride": 8, "device": "cpu"}, "shards": [], "step": 5}
        >>> m = Manifest.from_json(d)
        >>> m.run_settings, m.step, {k: v for k, v in m.to_json().items() if k != "checksum"} == {**d, "schema_version": 2}
        ({'device': 'cpu'}, 5, True)
        """
        other = {k: v for k, v in obj.items() if k not in _FIELDS}
        identity = obj.get("identity")
        fps, settings = obj.get("fingerprints"), obj.get("settings")
        method, run_settings = None, {}
        if isinstance(identity, dict):
            if isinstance(fps, dict) and fps == _fingerprints(identity, fps.get("method")):
                method = fps.get("method")
            elif fps is not None:
                other["fingerprints"] = fps
            id_settings = identity.get("settings", {})
            if isinstance(settings, dict) and all(k in settings and settings[k] == v for k, v in id_settings.items()):
                run_settings = {k: v for k, v in settings.items() if k not in id_settings}
            elif settings is not None:
                other["settings"] = settings
        else:
            for key, value in (("fingerprints", fps), ("settings", settings)):
                if value is not None:
                    other[key] = value
        return cls(
            id=obj.get("id"),
            identity=identity,
            fingerprint_method=method,
            run_settings=run_settings,
            shards=tuple(obj.get("shards") or ()),
            labels=obj.get("labels"),
            units=obj.get("units"),
            other=other,
            schema_version=obj.get("schema_version", SCHEMA_VERSION),
        )

    def to_json(self) -> dict:
        """The JSON object written to ``_manifest.json`` (with its ``checksum`` when version 2)."""
        out = {"id": self.id, "schema_version": self.schema_version, **self.other, "shards": list(self.shards)}
        if self.identity is not None:
            out["identity"] = self.identity
            out.setdefault("fingerprints", self.fingerprints)
            out.setdefault("settings", self.settings)
        for key in ("labels", "units"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.schema_version >= 2:
            out["checksum"] = canonical_sha256(out)
        return out

    @cached_property
    def _json(self) -> dict:
        return self.to_json()

    def __getitem__(self, key):
        return self._json[key]

    def __iter__(self) -> Iterator:
        return iter(self._json)

    def __len__(self) -> int:
        return len(self._json)

    # ------------------------------------------------------------ the typed view

    @property
    def fingerprints(self) -> dict:
        """``weights``, ``tokenizer``, ``data``, ``documents`` fingerprints and ``method`` ({} when unrecorded)."""
        if "fingerprints" in self.other:
            return self.other["fingerprints"]
        return _fingerprints(self.identity, self.fingerprint_method) if self.identity is not None else {}

    @property
    def settings(self) -> dict:
        """Every recorded setting (identity settings, then run settings), keys sorted as on disk."""
        if "settings" in self.other:
            return self.other["settings"]
        if self.identity is None:
            return {}
        return dict(sorted({**self.identity.get("settings", {}), **self.run_settings}.items()))

    @property
    def identity_settings(self) -> dict:
        """The settings that change the numbers ({} when unrecorded)."""
        return (self.identity or {}).get("settings", {})

    @property
    def step(self) -> int | None:
        """Training step (orders checkpoints), or ``None``."""
        return self.other.get("step")

    @property
    def path(self) -> str | None:
        """Where the checkpoint's weights were read."""
        return self.other.get("path")

    @property
    def kind(self) -> str | None:
        """``full`` or ``adapter``."""
        return self.other.get("kind")

    @property
    def tokenizer_path(self) -> str | None:
        """The tokenizer directory the documents were tokenized with."""
        return self.other.get("tokenizer_path")

    @property
    def data(self) -> dict:
        """The scored data: ``files``, ``records``, ``documents``, ``skipped_documents`` ({} when unrecorded)."""
        return self.other.get("data") or {}

    @property
    def data_files(self) -> list[str]:
        """The scored data files, as recorded."""
        return list(self.data.get("files") or [])

    @property
    def versions(self) -> dict:
        """Versions of pctce, Python, torch, transformers …"""
        return self.other.get("versions") or {}

    @property
    def targets(self) -> int:
        """Scored targets (the sum of the shards' rows)."""
        return int(self.other.get("targets") or 0)

    @property
    def documents(self) -> int | None:
        """Scored documents (the sum of the shards' documents)."""
        return self.other.get("documents")

    @property
    def created(self) -> str | None:
        """When the partition was completed (ISO 8601, UTC)."""
        return self.other.get("created")

    @property
    def label_fields(self) -> list[str]:
        """The subset fields of the labels file (none for stores written before subsets)."""
        return list(self.labels.get("fields", [])) if isinstance(self.labels, Mapping) else []

    @property
    def units_available(self) -> bool:
        """Whether the partition stores byte spans and words."""
        return isinstance(self.units, Mapping) and self.units.get("available") is True

    @property
    def hub(self) -> dict | None:
        """Where a Hub checkpoint came from (``repo_id``, ``revision``, ``commit``); None for a local directory."""
        hub = self.other.get("hub")
        return dict(hub) if isinstance(hub, Mapping) else None

    @property
    def reference(self) -> dict | None:
        """The reference model of the divergence columns (``path``, ``fingerprint``, ``hub``); None: scored without one."""
        ref = self.other.get("reference")
        return dict(ref) if isinstance(ref, Mapping) else None

    @property
    def weights_fingerprint(self) -> str | None:
        """The fingerprint of the weights the partition was scored with."""
        return self.fingerprints.get("weights")

    def extra(self, key: str, default=None):
        """A key the manifest records beyond the typed ones (``source``, ``run``, ``engine`` …)."""
        return self.other.get(key, default)

    def with_shards(self, records: list[dict]) -> Manifest:
        """This manifest completed with its shard records and their totals (the store's part of the manifest)."""
        other = dict(self.other)
        other["targets"] = int(sum(r["rows"] for r in records))
        other["documents"] = int(sum(r["documents"] for r in records))
        other["scoring_seconds"] = round(sum(r["seconds"] for r in records), 4)
        if self.units_available:
            # targets with an empty byte span (template markers, end-of-turn tokens): in no word or byte (docs/definitions.md#words-and-bytes)
            other["empty_span_targets"] = int(sum(r.get("empty_span_targets", 0) for r in records))
        return replace(self, shards=tuple(records), other=other, schema_version=SCHEMA_VERSION)

    def with_labels(self, labels: dict) -> Manifest:
        """This manifest naming another labels file."""
        return replace(self, labels=labels, schema_version=SCHEMA_VERSION)

    def write(self, part: Path) -> None:
        """Write ``part/_manifest.json`` atomically (content and checksum in one replace)."""
        atomic.write_json(part / MANIFEST, self.to_json())


def _fingerprints(identity: Mapping, method) -> dict:
    return {**{k: identity[k] for k in FINGERPRINT_KEYS if k in identity}, "method": method}


# ---------------------------------------------------------------- reading and checking


def check_manifest(obj: dict, path: Path, root: str | Path, checkpoint_id: str) -> Manifest:
    """Check the JSON of a manifest (version, checksum, the fields readers rely on); the :class:`Manifest` or a damaged-store error naming the field.

    Raises:
        StoreError: an unknown schema version (named with the file), or damage.
    """
    def bad(field: str, expected: str) -> StoreError:
        got = obj.get(field, "nothing") if "." not in field else "something else"
        return damaged(root, f"{path}: '{field}' should be {expected}, found {_short(got)}")

    if obj.get("id") != checkpoint_id:
        raise bad("id", f"'{checkpoint_id}' (the partition's name)")
    _refuse_newer(obj, path)
    shards = obj.get("shards")
    if not isinstance(shards, list):
        raise bad("shards", "a list of shard records")
    for k, rec in enumerate(shards):
        _check_shard_record(rec, k, path, root)
    if not _count(obj.get("targets")) or obj["targets"] != sum(r["rows"] for r in shards):
        raise bad("targets", f"the sum of the shards' rows ({sum(r['rows'] for r in shards)})")
    if "documents" in obj and obj["documents"] != sum(r["documents"] for r in shards):
        raise bad("documents", f"the sum of the shards' documents ({sum(r['documents'] for r in shards)})")
    if "empty_span_targets" in obj and all("empty_span_targets" in r for r in shards):
        total = sum(r["empty_span_targets"] for r in shards)
        if obj["empty_span_targets"] != total:
            raise bad("empty_span_targets", f"the sum of the shards' empty_span_targets ({total})")
    for key in ("fingerprints", "settings", "identity"):
        if key in obj and not isinstance(obj[key], dict):
            raise bad(key, "an object")
    _check_version(obj, path, root)
    return Manifest.from_json(obj)


def _refuse_newer(obj: dict, path: Path) -> None:
    """A manifest of a newer schema is not checked against this one's fields: refused first, its version named."""
    version = obj.get("schema_version")
    if _count(version) and version > SCHEMA_VERSION:
        raise StoreError(
            f"{path}: schema_version {version} is newer than this pctce reads "
            f"(up to {SCHEMA_VERSION}); upgrade pctce to read this store"
        )


def _check_version(obj: dict, path: Path, root) -> None:
    version = obj.get("schema_version")
    if "schema_version" not in obj:
        # every manifest pctce ever wrote has it: one without was edited or damaged, not an old store
        raise damaged(root, f"{path} has no schema_version (every pctce manifest records one)")
    if not _count(version) or version not in READABLE_VERSIONS:
        raise damaged(root, f"{path}: schema_version should be one of {', '.join(map(str, READABLE_VERSIONS))}, found {_short(version)}")
    if version >= 2:
        stored = obj.get("checksum")
        if not isinstance(stored, str):
            raise damaged(root, f"{path} has no checksum (schema_version {version} records one)")
        if stored != canonical_sha256(obj):
            raise damaged(root, f"{path} does not match its checksum (its content was changed after it was written)")


def _check_shard_record(rec, k: int, path: Path, root) -> None:
    if not isinstance(rec, dict):
        raise damaged(root, f"{path}: 'shards[{k}]' should be an object, found something else")
    for key in ("tokens_file", "docs_file"):
        if not isinstance(rec.get(key), str) or not _SHARD_FILE.match(rec[key]):
            raise damaged(root, f"{path}: shards[{k}].{key} should name a part-NNNNN.parquet file, found {_short(rec.get(key))}")
    for key in ("tokens_sha256", "docs_sha256"):
        if not isinstance(rec.get(key), str) or not _SHA256.match(rec[key]):
            raise damaged(root, f"{path}: shards[{k}].{key} should be a SHA-256 hex digest, found {_short(rec.get(key))}")
    for key in ("rows", "documents"):
        if not _count(rec.get(key)):
            raise damaged(root, f"{path}: shards[{k}].{key} should be a count, found {_short(rec.get(key))}")
    if "ce_sum" in rec and (isinstance(rec["ce_sum"], bool) or not isinstance(rec["ce_sum"], (int, float))):
        raise damaged(root, f"{path}: shards[{k}].ce_sum should be a number, found {_short(rec['ce_sum'])}")
    if "kl_sum" in rec and (isinstance(rec["kl_sum"], bool) or not isinstance(rec["kl_sum"], (int, float))):
        raise damaged(root, f"{path}: shards[{k}].kl_sum should be a number, found {_short(rec['kl_sum'])}")


def _count(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _short(v) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "…"


def read_manifest(root: str | Path, checkpoint_id: str) -> Manifest:
    """The manifest of a complete partition, checked (:func:`check_manifest`).

    Raises:
        StoreError: no such checkpoint, an unfinished one, or a damaged manifest.
    """
    root = Path(root)
    require_store(root)
    part = partition_dir(root, checkpoint_id)
    man = part / MANIFEST
    if not man.is_file():
        if part.exists():
            if (part / RUN_STATE).is_file() or lock_is_held(root):
                raise StoreError(f"checkpoint '{checkpoint_id}' in {root} is incomplete; rerun pctce score to finish it")
            raise damaged(root, f"{man} is missing (the partition is neither complete nor being scored)")
        raise StoreError(f"no checkpoint '{checkpoint_id}' in {root}")
    return check_manifest(read_json(man, root), man, root, checkpoint_id)


def check_labels_record(rec, path: Path, root) -> None:
    """Check the manifest's ``labels`` entry (file name, checksum, fields); raise a damaged-store error naming it."""
    if not isinstance(rec, Mapping):
        raise damaged(root, f"{path}: 'labels' should be an object")
    if not isinstance(rec.get("file"), str) or not LABELS_FILE.match(rec["file"]):
        raise damaged(root, f"{path}: labels.file should name a _labels/labels-<hash>.parquet file, found {rec.get('file')!r}")
    if not isinstance(rec.get("sha256"), str) or not _SHA256.match(rec["sha256"]):
        raise damaged(root, f"{path}: labels.sha256 should be a SHA-256 hex digest")
    fields = rec.get("fields")
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        raise damaged(root, f"{path}: labels.fields should be a list of field names")
    if not isinstance(rec.get("documents"), int) or rec["documents"] < 0:
        raise damaged(root, f"{path}: labels.documents should be a count")


__all__ = ["Manifest", "SCHEMA_VERSION", "canonical_sha256", "check_labels_record", "check_manifest", "read_manifest"]
