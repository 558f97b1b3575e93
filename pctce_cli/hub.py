"""Checkpoints named by a Hugging Face Hub repository and revision (``org/name@step1000``).

A Hub reference resolves to a local snapshot directory (downloaded once into the
Hub cache, or found there when offline) and the commit it points at; from there
on it is scored like any local checkpoint. Only the files scoring needs are
fetched: configuration, tokenizer and safetensors weights (pickled ``.bin``
weights are never downloaded; pctce refuses to unpickle them anyway).

The environment is read at call time, not at import: ``HF_HUB_OFFLINE``,
``HF_HUB_CACHE`` (or ``HF_HOME``), and the usual token (``HF_TOKEN`` or a saved
login) are respected.

Reference syntax:

* ``org/name`` — the default branch (``main``);
* ``org/name@REV`` — a branch, tag or commit;
* ``org/name@GLOB`` — every branch and tag matching the glob (``step*``),
  ordered by the step parsed from its name; ``org/name@GLOB[LO:HI]`` keeps the
  revisions whose step lies in ``[LO, HI]`` (either end may be left out) and
  ``org/name@GLOB[LO:HI:K]`` every K-th of those.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass
from pathlib import Path

from pctce_cli.errors import CheckpointError

# What scoring reads from a repository: configuration, tokenizer, safetensors weights, adapters.
ALLOW_PATTERNS = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "tokenizer.model",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
    "*.safetensors",
    "model.safetensors.index.json",
    "adapter_config.json",
)

_REPO = r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*"
_REF_RE = re.compile(rf"^(?P<repo>{_REPO})(?:@(?P<rev>[^\[\]@\s]+)(?:\[(?P<range>[^\]]*)\])?)?$")
# Pythia "step1000", OLMo "stage1-step1000-tokens4B", "global_step500", "iter_2000", "ckpt-30".
_STEP_RE = re.compile(r"(?:^|[^A-Za-z])(?:global[-_]?step|step|steps|iter|iteration|ckpt|checkpoint)[-_=]?(\d+)", re.IGNORECASE)
_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class HubRef:
    """A parsed Hub reference.

    Attributes:
        repo_id: ``org/name``.
        revision: A branch, tag or commit (``None`` for the default branch), or a glob.
        lo, hi, every: The step range and stride of a pattern (``None`` when not given).
    """

    repo_id: str
    revision: str | None = None
    lo: int | None = None
    hi: int | None = None
    every: int | None = None

    @property
    def is_pattern(self) -> bool:
        """True when the revision is a glob to match against the repository's branches and tags."""
        return self.revision is not None and bool(_GLOB_CHARS & set(self.revision))

    def __str__(self) -> str:
        return self.repo_id if self.revision is None else f"{self.repo_id}@{self.revision}"


@dataclass(frozen=True)
class HubCheckpoint:
    """A Hub revision resolved to a local snapshot.

    Attributes:
        repo_id: ``org/name``.
        revision: The revision asked for (``main`` when none was given).
        commit: The 40-hex commit the revision pointed at when resolved.
        path: The local snapshot directory holding the fetched files.
    """

    repo_id: str
    revision: str
    commit: str
    path: Path

    @property
    def name(self) -> str:
        """The repository's name without its owner (``pythia-160m``)."""
        return self.repo_id.split("/", 1)[1]

    def record(self) -> dict:
        """What the manifest records of it."""
        return {"repo_id": self.repo_id, "revision": self.revision, "commit": self.commit}


def parse_ref(arg: str) -> HubRef | None:
    """Parse ``org/name[@REV[LO:HI:K]]``; None when ``arg`` is not spelled like a Hub reference.

    A path that exists locally always wins: the caller checks that first.

    Raises:
        CheckpointError: a range that is not ``LO:HI`` or ``LO:HI:K`` with integers, or a range on a non-pattern.

    Examples:
        >>> parse_ref("EleutherAI/pythia-160m@step1000")
        HubRef(repo_id='EleutherAI/pythia-160m', revision='step1000', lo=None, hi=None, every=None)
        >>> parse_ref("EleutherAI/pythia-160m@step*[1000:5000:2]").every
        2
        >>> parse_ref("runs/teacher/checkpoint-5") is None
        True
    """
    m = _REF_RE.match(arg)
    if m is None:
        return None
    ref = HubRef(m["repo"], m["rev"])
    if m["range"] is None:
        return ref
    if not ref.is_pattern:
        raise CheckpointError(f"{arg}: a step range [LO:HI:K] follows a revision pattern such as @step*, not a single revision")
    parts = m["range"].split(":")
    if len(parts) not in (2, 3) or not all(p.strip().isdigit() or p.strip() == "" for p in parts):
        raise CheckpointError(f"{arg}: expected a step range [LO:HI] or [LO:HI:K] of whole numbers, got [{m['range']}]")
    vals = [int(p) if p.strip() else None for p in parts] + [None] * (3 - len(parts))
    if vals[2] is not None and vals[2] < 1:
        raise CheckpointError(f"{arg}: the stride K in [LO:HI:K] must be at least 1, got {vals[2]}")
    return HubRef(ref.repo_id, ref.revision, vals[0], vals[1], vals[2])


def offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` is set to a true value (read now, not at import)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")


def cache_dir() -> Path:
    """The Hub cache pctce reads and fills: ``HF_HUB_CACHE``, else ``HF_HOME/hub``, else ``~/.cache/huggingface/hub``."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    return Path.home() / ".cache" / "huggingface" / "hub"


def _where() -> str:
    return f"the Hub cache {cache_dir()}"


def _fail(ref: str, e: Exception) -> CheckpointError:
    """One line for each way fetching a revision can fail."""
    from huggingface_hub import errors as E

    if isinstance(e, E.RevisionNotFoundError):
        return CheckpointError(f"{ref}: no such revision in the repository (check the branch or tag name)")
    if isinstance(e, E.GatedRepoError):
        return CheckpointError(f"{ref}: the repository is gated; accept its terms on the Hub and log in (`hf auth login`) or set HF_TOKEN")
    if isinstance(e, E.RepositoryNotFoundError):
        return CheckpointError(f"{ref}: repository not found, or private and no token given (log in with `hf auth login` or set HF_TOKEN)")
    if isinstance(e, (E.LocalEntryNotFoundError, E.OfflineModeIsEnabled)):
        if offline():
            return CheckpointError(f"{ref}: not in {_where()} and HF_HUB_OFFLINE is set; unset HF_HUB_OFFLINE to download it, or point HF_HUB_CACHE at a cache that holds it")
        return CheckpointError(f"{ref}: cannot reach the Hugging Face Hub and it is not in {_where()}; check the network, or set HF_HUB_OFFLINE=1 with HF_HUB_CACHE pointing at a cache that holds it")
    if isinstance(e, E.HfHubHTTPError):
        return CheckpointError(f"{ref}: the Hub refused the request ({str(e).splitlines()[0]})")
    return CheckpointError(f"{ref}: cannot fetch from the Hugging Face Hub ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); check the network, or set HF_HUB_OFFLINE=1 with HF_HUB_CACHE pointing at a cache that holds it")


def fetch(repo_id: str, revision: str | None = None) -> HubCheckpoint:
    """Resolve one revision to a local snapshot, downloading what scoring needs when online.

    Args:
        repo_id: ``org/name``.
        revision: Branch, tag or commit; ``None`` for ``main``.

    Returns:
        The resolved checkpoint (its commit is the snapshot directory's name).

    Raises:
        CheckpointError: an unknown revision, a private repository without a token,
            or the network or cache failing (naming ``HF_HUB_OFFLINE`` and the cache).
    """
    from huggingface_hub import snapshot_download

    rev = revision or "main"
    ref = f"{repo_id}@{rev}"
    try:
        path = snapshot_download(
            repo_id,
            revision=rev,
            cache_dir=str(cache_dir()),
            local_files_only=offline(),
            allow_patterns=list(ALLOW_PATTERNS),
        )
    except CheckpointError:
        raise
    except Exception as e:  # huggingface_hub and its HTTP client raise many types; each becomes one line
        raise _fail(ref, e) from None
    path = Path(path)
    return HubCheckpoint(repo_id, rev, path.name, path)


def _cached_refs(repo_id: str) -> list[str]:
    refs = cache_dir() / f"models--{repo_id.replace('/', '--')}" / "refs"
    if not refs.is_dir():
        return []
    return sorted(str(p.relative_to(refs)) for p in refs.rglob("*") if p.is_file())


def list_revisions(repo_id: str) -> tuple[list[str], str | None]:
    """The repository's branches and tags, and a note when they come from the cache (offline).

    Raises:
        CheckpointError: offline with nothing cached, or the listing fails online.
    """
    if offline():
        names = _cached_refs(repo_id)
        if not names:
            raise CheckpointError(
                f"{repo_id}: listing its revisions needs the Hub, and HF_HUB_OFFLINE is set with none of them in {_where()}; "
                "unset HF_HUB_OFFLINE or name the revisions one by one"
            )
        return names, f"{repo_id}: HF_HUB_OFFLINE is set, so its revisions were matched among the {len(names)} in {_where()}"
    from huggingface_hub import list_repo_refs

    try:
        refs = list_repo_refs(repo_id)
    except Exception as e:  # as in fetch: one line per failure
        raise _fail(repo_id, e) from None
    return sorted({r.name for r in refs.branches} | {r.name for r in refs.tags}), None


def revision_step(name: str) -> int | None:
    """The training step a revision's name carries, if any.

    Examples:
        >>> revision_step("step1000"), revision_step("stage1-step5000-tokens21B"), revision_step("v1.0")
        (1000, 5000, None)
    """
    m = _STEP_RE.search(name)
    return int(m.group(1)) if m else None


def select_revisions(names, ref: HubRef) -> list[str]:
    """The revisions of ``names`` that a pattern reference selects, in step order.

    Examples:
        >>> names = ["main", "step0", "step1000", "step2000", "step3000", "step4000"]
        >>> select_revisions(names, parse_ref("o/m@step*"))
        ['step0', 'step1000', 'step2000', 'step3000', 'step4000']
        >>> select_revisions(names, parse_ref("o/m@step*[1000:4000:2]"))
        ['step1000', 'step3000']
    """
    hits = [n for n in names if fnmatch.fnmatchcase(n, ref.revision)]
    hits.sort(key=lambda n: (revision_step(n) is None, revision_step(n) or 0, n))
    if ref.lo is not None or ref.hi is not None:
        lo = ref.lo if ref.lo is not None else -1
        hi = ref.hi if ref.hi is not None else float("inf")
        hits = [n for n in hits if revision_step(n) is not None and lo <= revision_step(n) <= hi]
    return hits[:: ref.every or 1]


def resolve(ref: HubRef) -> tuple[list[HubCheckpoint], list[str]]:
    """Every checkpoint a reference names, fetched, and notes for the user.

    Raises:
        CheckpointError: as :func:`fetch`, or a pattern that matches no revision.
    """
    if not ref.is_pattern:
        return [fetch(ref.repo_id, ref.revision)], []
    names, note = list_revisions(ref.repo_id)
    chosen = select_revisions(names, ref)
    if not chosen:
        shown = ", ".join(names[:8]) + (", …" if len(names) > 8 else "")
        raise CheckpointError(f"{ref}: matches none of the repository's {len(names)} revisions ({shown})")
    return [fetch(ref.repo_id, r) for r in chosen], [note] if note else []


__all__ = ["ALLOW_PATTERNS", "HubCheckpoint", "HubRef", "cache_dir", "fetch", "list_revisions", "offline", "parse_ref", "resolve", "revision_step", "select_revisions"]
