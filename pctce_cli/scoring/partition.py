"""A scoring's partition in the store: what to do with it, why it conflicts, its manifest.

The store-facing decisions of every scoring path (``pctce score``,
``ScoreResult.to_store`` and the training callback), so they cannot drift
apart: whether a partition is complete, resumable or made with another
identity (:func:`open_partition`), the one text saying how it differs
(:func:`conflict_message`), and the manifest written last
(:func:`build_manifest`). Torch-free (``versions`` imports torch to read its
version only when called).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import platform
import sys
from dataclasses import dataclass

from pctce_cli import __version__
from pctce_cli.errors import StoreError
from pctce_cli.store import Manifest, identity_difference, partition_state, read_manifest, start_partition

# how to get past a conflict, in the words of each caller
CLI_REMEDY = "use --force to overwrite or choose another --out"
API_REMEDY = "pass force=True to overwrite or choose another store"


def conflict_message(checkpoint: str, manifest: Manifest, identity: dict, out, remedy: str = API_REMEDY) -> str:
    """Why a stored partition of ``checkpoint`` is not the one ``identity`` would write.

    Args:
        checkpoint: Partition name.
        manifest: What the store holds for it (its manifest).
        identity: The identity of the scores about to be written.
        out: The store.
        remedy: The way out, worded for the caller (:data:`CLI_REMEDY`, :data:`API_REMEDY`).
    """
    return (
        f"{checkpoint}: {out} already holds scores of it made with different "
        f"{identity_difference(manifest.identity or {}, identity)}; {remedy}"
    )


@dataclass
class Decision:
    """What to do with a checkpoint's partition.

    Attributes:
        kind: ``"run"`` (score; the partition is started), ``"done"`` (a complete
            partition with this identity exists) or ``"conflict"``.
        manifest: The stored manifest (``done``) or what conflicts (``conflict``).
        done_shards: Shards already complete (``run`` resuming a partial partition).
    """

    kind: str
    manifest: Manifest | None
    done_shards: list
    note: str | None = None


def moved_note(out, spec) -> str | None:
    """For a Hub revision whose stored partition was scored from another commit: the note that it is re-scored.

    Args:
        out: The store.
        spec: The checkpoint (``spec.extra["hub"]`` for a Hub revision).

    Returns:
        ``"re-scored: REV moved from commit ABC to DEF"``, or None (a local
        directory, nothing stored yet, or the same commit).
    """
    hub = spec.extra.get("hub")
    if not hub:
        return None
    try:
        stored = read_manifest(out, spec.id).hub
    except StoreError:  # nothing complete stored (or damaged: open_partition reports that)
        return None
    if not stored or stored.get("commit") == hub["commit"]:
        return None
    return f"re-scored: {hub['revision']} moved from commit {str(stored.get('commit'))[:7]} to {hub['commit'][:7]}"


def open_partition(out, checkpoint: str, identity: dict, *, force: bool, resume: bool) -> Decision:
    """Decide, and when scoring starts, prepare the partition ``checkpoint`` of ``out``.

    The caller holds the store's lock.

    Args:
        out: The store.
        checkpoint: Partition name.
        identity: Fingerprints and settings of the scores to write.
        force: Replace whatever is stored.
        resume: Keep the shards of an interrupted run with this identity
            (``pctce score``); ``False`` starts afresh (a result written whole).
    """
    state, info = partition_state(out, checkpoint, identity)
    if force:
        state, info = "new", {}
    if state == "conflict":
        return Decision("conflict", info, [])
    if state == "done":
        return Decision("done", info, [])
    start_partition(out, checkpoint, identity, fresh=(state == "new" or not resume))
    return Decision("run", None, sorted(info) if resume else [])


def versions() -> dict:
    """Versions of pctce, Python, torch, transformers (and peft when installed)."""
    import torch
    import transformers

    v = {
        "pctce": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
    peft = sys.modules.get("peft")
    if peft is not None:
        v["peft"] = peft.__version__
    else:  # its installed version, without importing it (0.1 s of a run that loads no adapter)
        from importlib import metadata

        with contextlib.suppress(metadata.PackageNotFoundError):
            v["peft"] = metadata.version("peft")
    return v


def engine_info(adapter) -> dict:
    """The output-layer path the engine took (``None`` values when nothing was scored here)."""
    return {
        "chunked_output_layer": bool(adapter.fast) if adapter is not None and adapter.fast is not None else None,
        "output_layer_check_max_abs_diff": adapter.check_max_abs_diff if adapter is not None else None,
    }


def build_manifest(
    *,
    checkpoint: str,
    path: str | None,
    step: int | None,
    kind: str,
    base_model: str | None,
    tokenizer_path: str | None,
    identity: dict,
    method: str,
    run_settings: dict,
    data: dict,
    engine: dict,
    versions: dict,
    world_size: int,
    wall_seconds: float,
    **extra,
) -> dict:
    """The manifest of a partition, before the store adds its shard records and totals.

    Args:
        checkpoint: Partition name (``id``).
        path, step, kind, base_model, tokenizer_path: Where the weights came from.
        identity: Fingerprints and identity settings.
        method: How the fingerprints were computed (recorded beside them).
        run_settings: Settings that do not change the numbers (``batch_tokens``,
            ``device``, ``trust_remote_code``), recorded after the identity settings.
        data, engine, versions, world_size, wall_seconds: Recorded as given.
        **extra: More keys (``source``, ``run``, ``epoch`` …).
    """
    return {
        "id": checkpoint,
        "path": path,
        "step": step,
        "kind": kind,
        "base_model": base_model,
        "tokenizer_path": tokenizer_path,
        "identity": identity,
        "fingerprints": {
            "weights": identity["weights"],
            "tokenizer": identity["tokenizer"],
            "data": identity["data"],
            "documents": identity["documents"],
            "method": method,
        },
        "settings": {**identity["settings"], **run_settings},
        "data": data,
        "engine": engine,
        "versions": versions,
        "world_size": world_size,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "wall_seconds": wall_seconds,
        **extra,
    }


__all__ = [
    "API_REMEDY",
    "CLI_REMEDY",
    "Decision",
    "build_manifest",
    "conflict_message",
    "engine_info",
    "open_partition",
    "versions",
]


def add_labels(out, checkpoint_id: str, records) -> str:
    """Write the records' subset labels into a complete partition (no re-scoring); a note for the result's message."""
    fields = list(records[0].labels) if records else []
    if not fields:
        return ""
    from pctce_cli.store import write_labels

    changed = write_labels(out, checkpoint_id, {f: [r.labels[f] for r in records] for f in fields}, [r.index for r in records])
    return f"; subset labels {', '.join(fields)} added" if changed else ""
