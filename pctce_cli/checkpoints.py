"""Find checkpoints on disk, name them, parse their steps and fingerprint them.

No torch import here: discovery must be fast and usable by analysis commands.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from pctce_cli import hub
from pctce_cli.errors import CheckpointError

WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
ADAPTER_WEIGHT_FILES = ("adapter_model.safetensors", "adapter_model.bin")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json", "vocab.txt")

# Names the HF Trainer and common training loops give to checkpoint directories.
_STEP_RE = re.compile(
    r"(?:^|[-_.])(?P<kind>checkpoint|ckpt|global[-_]?step|step|steps|iter|iteration|epoch)[-_=]?(?P<n>\d+)$",
    re.IGNORECASE,
)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
# Files over this size are fingerprinted by sampled blocks: hashing every byte of a
# multi-GB checkpoint would cost more than scoring a small validation set.
_FULL_HASH_LIMIT = 256 * 1024 * 1024
_BLOCK = 1024 * 1024
_SAMPLED_BLOCKS = 64


@dataclass
class CheckpointSpec:
    """One checkpoint to score.

    Attributes:
        path: Directory of the checkpoint (model or adapter).
        id: Stable, filesystem-safe name; the store partition is ``checkpoint=<id>``.
        step: Training step (or epoch) parsed from the directory name, if any.
        kind: ``"model"`` for a ``save_pretrained`` directory, ``"adapter"`` for PEFT.
        base_model: For adapters, the base model directory (``--base-model``, or
            adapter_config.json's ``base_model_name_or_path``; a relative one is taken
            from the working directory, else from the adapter's directory).
    """

    path: Path
    id: str
    step: int | None = None
    kind: str = "model"
    base_model: Path | None = None
    extra: dict = field(default_factory=dict)


def parse_step(name: str) -> int | None:
    """Parse a training step from a checkpoint directory name.

    Examples:
        >>> parse_step("checkpoint-500"), parse_step("step_250"), parse_step("epoch-3")
        (500, 250, 3)
        >>> parse_step("final") is None
        True
    """
    m = _STEP_RE.search(name)
    return int(m.group("n")) if m else None


MAX_ID_CHARS = 120  # ids become directory names "checkpoint=<id>"; most filesystems allow 255 bytes


def safe_id(name: str, distinct: bool = False) -> str:
    """Make a string safe to use as a hive partition value and a directory name.

    ASCII names keep their readable form. A name with other characters, or one
    too long for a directory name, also gets a short hash of the original, so
    that distinct names (``模型`` and ``数据``) stay distinct ids and the same
    name always gives the same id. With ``distinct`` (the ids of checkpoint
    directories), so does every name that had to change: ``x y`` and ``x_y``
    are two directories, hence two ids.

    Examples:
        >>> safe_id("my run/ckpt 3"), safe_id("x_y", distinct=True), safe_id("x y", distinct=True)
        ('my_run_ckpt_3', 'x_y', 'x_y-887fcea6')
        >>> safe_id("模型"), safe_id("数据")
        ('checkpoint-c98e118e', 'checkpoint-5440f742')
        >>> len(safe_id("x" * 300))
        120
    """
    s = _UNSAFE.sub("_", name).strip("._") or "checkpoint"
    if name.isascii() and len(s) <= MAX_ID_CHARS and (s == name or not distinct):
        return s
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
    return f"{s[: MAX_ID_CHARS - 9].rstrip('._-')}-{digest}"


def read_config(model_dir: Path) -> dict | None:
    """The model's ``config.json`` as a dict (None when the directory has none).

    Raises:
        CheckpointError: the file is not a JSON object, named as the config's
            fault (transformers would report it as a tokenizer or weights error).
    """
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        return None
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno}); the model's configuration is damaged") from None
    except (OSError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: cannot read the model's configuration ({e})") from None
    if not isinstance(cfg, dict):
        raise CheckpointError(f"{path}: expected a JSON object, found {type(cfg).__name__}; the model's configuration is damaged")
    return cfg


def has_weights(path: Path) -> bool:
    """True when ``path`` holds full-model weights (safetensors or .bin, sharded or not)."""
    if any((path / f).is_file() for f in WEIGHT_FILES):
        return True
    return any(path.glob("model-*.safetensors")) or any(path.glob("pytorch_model-*.bin"))


def is_checkpoint(path: Path) -> bool:
    """True for a ``save_pretrained`` model directory or a PEFT adapter directory."""
    return path.is_dir() and (
        (path / "adapter_config.json").is_file() or (path / "config.json").is_file()
    )


def _checkpoint_id(path: Path) -> str:
    # "checkpoint-500" alone is ambiguous across runs, so step-like names carry
    # their run directory's name: runs/teacher/checkpoint-500 -> teacher.checkpoint-500.
    name = path.name
    if parse_step(name) is not None and path.parent.name:
        name = f"{path.parent.name}.{name}"
    return safe_id(name, distinct=True)


def _spec(path: Path, base_model: str | Path | None) -> CheckpointSpec:
    step = parse_step(path.name)
    if step is None and (path / "trainer_state.json").is_file():
        try:
            step = int(json.loads((path / "trainer_state.json").read_text())["global_step"])
        except (ValueError, KeyError, TypeError, json.JSONDecodeError):
            step = None
    if (path / "adapter_config.json").is_file():
        try:
            cfg = json.loads((path / "adapter_config.json").read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise CheckpointError(f"{path / 'adapter_config.json'}: not valid JSON ({e})") from None
        base = base_model or cfg.get("base_model_name_or_path")
        extra: dict = {}
        if not base:
            raise CheckpointError(
                f"{path}: adapter_config.json names no base model; pass --base-model PATH"
            )
        base_path = Path(base)
        if not is_checkpoint(base_path) and not is_checkpoint(path / base_path) and (ref := hub.parse_ref(str(base))) is not None:
            # A base named by Hub id (the usual adapter_config.json) resolves like a Hub checkpoint.
            try:
                fetched = hub.fetch(ref.repo_id, ref.revision)
            except CheckpointError as e:
                raise CheckpointError(f"{path}: its base model '{base}' is no local directory, and as a Hub id: {e}") from None
            base_path = fetched.path
            extra = {"base_hub": fetched.record()}
        if base_model is None and not base_path.is_absolute() and not is_checkpoint(base_path) and is_checkpoint(path / base_path):
            # A relative base that is no model from the working directory is read relative to
            # the adapter, so adapters shipped beside their base (sample_data/) score from anywhere.
            base_path = path / base_path
        if not is_checkpoint(base_path):
            raise CheckpointError(
                f"{path}: base model '{base}' is neither a local model directory nor a Hub id (org/name[@revision]); "
                "pass --base-model PATH"
            )
        if not any((path / f).is_file() for f in ADAPTER_WEIGHT_FILES):
            raise CheckpointError(
                f"{path}: adapter_config.json but no adapter weights "
                "(adapter_model.safetensors or adapter_model.bin)"
            )
        return CheckpointSpec(path, _checkpoint_id(path), step, "adapter", base_path, extra)
    if not has_weights(path):
        raise CheckpointError(
            f"{path}: config.json but no model weights (model.safetensors or pytorch_model.bin)"
        )
    return CheckpointSpec(path, _checkpoint_id(path), step, "model")


def hub_id(fetched: hub.HubCheckpoint) -> str:
    """The id of a Hub revision: the repository's name and the revision (``pythia-160m.step1000``).

    Example:
        >>> from pathlib import Path
        >>> hub_id(hub.HubCheckpoint("EleutherAI/pythia-160m", "step1000", "c" * 40, Path(".")))
        'pythia-160m.step1000'
    """
    return safe_id(f"{fetched.name}.{fetched.revision}")


def _hub_specs(raw: str, base_model) -> list[CheckpointSpec]:
    """The checkpoints a Hub reference names (a path that exists locally never comes here)."""
    ref = hub.parse_ref(raw)
    if ref is None:
        raise CheckpointError(f"checkpoint path not found: {raw}")
    fetched, notes = hub.resolve(ref)
    specs = []
    for i, f in enumerate(fetched):
        if not (f.path / "adapter_config.json").is_file() and not any(f.path.glob("*.safetensors")):
            raise CheckpointError(
                f"{f.repo_id}@{f.revision}: the repository has no safetensors weights at this revision "
                "(pctce does not download pickled .bin weights)"
            )
        spec = _spec(f.path, base_model)
        spec.id, spec.step = hub_id(f), hub.revision_step(f.revision)
        spec.extra = {**spec.extra, "hub": f.record(), "notes": notes if i == 0 else []}
        specs.append(spec)
    return specs


def _order_key(spec: CheckpointSpec):
    return (spec.step is None, spec.step if spec.step is not None else 0, spec.path.name)


def discover(paths, base_model: str | Path | None = None) -> list[CheckpointSpec]:
    """Expand the user's checkpoint paths into checkpoints to score.

    A path that is itself a checkpoint is taken as is; otherwise its direct
    subdirectories that are checkpoints are taken (a training run directory),
    ordered by the step parsed from their names, then by name.

    Args:
        paths: Paths given on the command line, in order.
        base_model: Override of every adapter's base model directory.

    Returns:
        The checkpoints, in the order given (each run ordered by step).

    Raises:
        CheckpointError: a path is missing, holds no checkpoint, or two
            checkpoints would share one id.
    """
    specs: list[CheckpointSpec] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            specs.extend(_hub_specs(str(raw), base_model))
            continue
        if is_checkpoint(path):
            specs.append(_spec(path, base_model))
            continue
        if not path.is_dir():
            raise CheckpointError(f"{raw}: not a checkpoint directory")
        children = [c for c in sorted(path.iterdir()) if is_checkpoint(c)]
        if not children:
            raise CheckpointError(
                f"no checkpoint under {raw} (expected config.json with model weights, "
                "or adapter_config.json, in it or in its subdirectories)"
            )
        specs.extend(sorted((_spec(c, base_model) for c in children), key=_order_key))
    seen: dict[str, Path] = {}
    for s in specs:
        if s.id in seen and seen[s.id].resolve() != s.path.resolve():
            raise CheckpointError(
                f"two checkpoints would share the id '{s.id}': {seen[s.id]} and {s.path}; "
                "rename one or score them into different --out directories"
            )
        seen[s.id] = s.path
    # The same directory given twice is scored once.
    unique: dict[str, CheckpointSpec] = {}
    for s in specs:
        unique.setdefault(s.id, s)
    return list(unique.values())


def _hash_file(h, path: Path) -> None:
    size = path.stat().st_size
    h.update(f"{path.name}\0{size}\0".encode())
    with open(path, "rb") as f:
        if size <= _FULL_HASH_LIMIT:
            while chunk := f.read(_BLOCK):
                h.update(chunk)
            return
        step = (size - _BLOCK) // (_SAMPLED_BLOCKS - 1)
        for k in range(_SAMPLED_BLOCKS):
            f.seek(k * step)
            h.update(f.read(_BLOCK))


def fingerprint_files(files) -> str:
    """sha256 over file names, sizes and contents, in sorted name order.

    Files larger than 256 MiB contribute 64 evenly spaced 1 MiB blocks instead
    of every byte (with their size), which is enough to tell checkpoints apart
    while keeping a multi-GB fingerprint to a fraction of a second.
    """
    h = hashlib.sha256()
    for p in sorted(Path(f) for f in files):
        _hash_file(h, p)
    return h.hexdigest()


def weight_files(path: Path) -> list[Path]:
    """The files whose bytes define a model's or adapter's weights and config."""
    pats = (
        "config.json",
        "adapter_config.json",
        "*.safetensors",
        "*.bin",
        "*.safetensors.index.json",
        "*.bin.index.json",
    )
    out = {p for pat in pats for p in path.glob(pat) if p.is_file() and not p.name.startswith("training_args")}
    return sorted(out)


def weights_fingerprint(spec: CheckpointSpec) -> str:
    """Fingerprint of a checkpoint's weights (an adapter's includes its base's)."""
    fp = fingerprint_files(weight_files(spec.path))
    if spec.kind == "adapter" and spec.base_model is not None:
        fp = _with_base(fp, fingerprint_files(weight_files(spec.base_model)))
    return fp


def _with_base(adapter_fp: str, base_fp: str) -> str:
    """An adapter's fingerprint: its own files' and its base model's, combined."""
    return hashlib.sha256(f"{adapter_fp}:{base_fp}".encode()).hexdigest()



class Fingerprints:
    """Weight fingerprints of a run's checkpoints, hashed in one background thread a checkpoint ahead.

    Why: a checkpoint's fingerprint must be known before its store partition is
    opened (skip, resume or conflict depend on it), but hashing the weights is
    file reading and sha256, which release the GIL. So the first checkpoint's
    hash runs while the data is read and tokenized, and each next checkpoint's
    while the current one is scored. The values are those of
    :func:`weights_fingerprint`; a base model shared by adapters is hashed once.
    An error (an unreadable file) is raised by :meth:`get`, as the sequential
    call would raise it.
    """

    def __init__(self, specs, ahead: int = 1):
        from concurrent.futures import ThreadPoolExecutor

        self._specs = list(specs)
        self._index = {id(s): i for i, s in enumerate(self._specs)}
        self._ahead = ahead
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pctce-fingerprint")
        self._futures: dict[int, object] = {}
        self._bases: dict[Path, str] = {}  # only touched by the pool's one thread

    def start(self, spec: CheckpointSpec) -> None:
        """Queue ``spec``'s fingerprint and the next ``ahead`` checkpoints' (no-op for those queued already)."""
        i = self._index.get(id(spec))
        if i is None:
            return
        for k in range(i, min(i + 1 + self._ahead, len(self._specs))):
            if k not in self._futures:
                self._futures[k] = self._pool.submit(self._compute, self._specs[k])

    def get(self, spec: CheckpointSpec) -> str:
        """``spec``'s fingerprint (waits for the background hash; computed here for a spec not in the run)."""
        if id(spec) not in self._index:
            return weights_fingerprint(spec)
        self.start(spec)
        return self._futures[self._index[id(spec)]].result()

    def close(self) -> None:
        """Stop: drop queued hashes, wait for the one running."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _compute(self, spec: CheckpointSpec) -> str:
        if spec.kind != "adapter" or spec.base_model is None:
            return weights_fingerprint(spec)
        base = Path(spec.base_model).resolve()
        if base not in self._bases:
            self._bases[base] = fingerprint_files(weight_files(spec.base_model))
        return _with_base(fingerprint_files(weight_files(spec.path)), self._bases[base])
