"""Transformers / PEFT loading and the chunked output-layer model adapter.

Torch and transformers are imported here (and in the engine) only, so that the
analysis commands start fast without them.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch

from pctce_cli.checkpoints import TOKENIZER_FILES, CheckpointSpec, read_config
from pctce_cli.errors import CheckpointError, UsageError
from pctce_cli.scoring.engine import chunk_rows
from pctce_cli.scoring.startup import paused_gc

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# One logit chunk holds about this many floats (64 MiB in float32), so the memory
# for the loss never grows with batch_tokens × vocab.
CHUNK_ELEMENTS = 1 << 24


@contextlib.contextmanager
def quiet_transformers():
    """Silence transformers' own logging and warnings during loads (we report errors ourselves)."""
    from transformers.utils import logging as hf_logging

    old = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        hf_logging.set_verbosity(old)
        hf_logging.enable_progress_bar()


def resolve_device(device: str) -> torch.device:
    """Map ``auto|cpu|cuda|mps`` to a torch device, refusing ones that are absent."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("device cuda: no CUDA device is available (use device cpu or auto)", param=("device", "CUDA device", "device"))
    if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UsageError("device mps: MPS is not available on this machine (use device cpu or auto)", param=("device", "device"))
    if device not in ("cpu", "cuda", "mps") and not device.startswith("cuda:"):
        raise UsageError(f"device must be auto, cpu, cuda or mps, got '{device}'", param="device")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """``auto`` is float32 on CPU and MPS, bfloat16 on CUDA when supported, else float16."""
    if dtype == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if dtype not in DTYPES:
        raise UsageError(f"dtype must be auto, float32, bfloat16 or float16, got '{dtype}'", param="dtype")
    if device.type == "cpu" and dtype == "float16":
        raise UsageError("dtype float16 is not supported on CPU; use float32 or bfloat16", param="dtype")
    return DTYPES[dtype]


def _short(e: Exception) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {msg[:200]}" if msg else type(e).__name__


def tokenizer_dir(spec: CheckpointSpec, override: str | Path | None) -> Path:
    """Where a checkpoint's tokenizer lives: the override, the checkpoint, or an adapter's base."""
    if override is not None:
        return Path(override)
    if any((spec.path / f).is_file() for f in TOKENIZER_FILES):
        return spec.path
    if spec.kind == "adapter" and spec.base_model is not None:
        return spec.base_model
    return spec.path


def load_tokenizer(spec: CheckpointSpec, override: str | Path | None = None, trust_remote_code: bool = False):
    """Load the tokenizer for ``spec`` from local files only.

    Raises:
        CheckpointError: no tokenizer files where they were expected, or they fail to load.
    """
    from transformers import AutoTokenizer

    path = tokenizer_dir(spec, override)
    if not path.exists():
        raise CheckpointError(f"tokenizer path not found: {path}")
    if not any((path / f).is_file() for f in TOKENIZER_FILES):
        raise CheckpointError(
            f"{path}: no tokenizer files (tokenizer.json or tokenizer_config.json); pass --tokenizer DIR"
        )
    read_config(path)  # a damaged config.json is the config's fault, not the tokenizer's
    try:
        # the first load imports the model type's modules: frozen, with the tokenizer (alive for the run)
        with quiet_transformers(), paused_gc(freeze_imports=True):
            return AutoTokenizer.from_pretrained(path, local_files_only=True, trust_remote_code=trust_remote_code)
    except Exception as e:  # transformers raises many types for broken files
        raise CheckpointError(f"{path}: cannot load the tokenizer ({_short(e)})") from None


def import_model_modules(path: Path) -> None:
    """Import the modules of the model type in ``path``'s config.json, and freeze what they made.

    The first model load would import them anyway; importing them here, in a
    block that freezes its imports (:func:`paused_gc`), keeps the model itself
    out of the frozen objects. Nothing is raised: a config this cannot read,
    or a model type that needs remote code, is left to the load to report.
    """
    from transformers import MODEL_FOR_CAUSAL_LM_MAPPING, AutoConfig

    try:
        with quiet_transformers(), paused_gc(freeze_imports=True):
            config = AutoConfig.from_pretrained(path, local_files_only=True)
            MODEL_FOR_CAUSAL_LM_MAPPING[type(config)]  # imports modeling_<type>
    except Exception:  # noqa: BLE001 -- the load itself reports what is wrong, with its message
        pass


def _load_causal_lm(path: Path, dtype: torch.dtype, device: torch.device, trust_remote_code: bool):
    from transformers import AutoModelForCausalLM

    read_config(path)
    import_model_modules(path)
    try:
        with quiet_transformers(), paused_gc():  # not frozen: a model is dropped when the next is loaded
            model = AutoModelForCausalLM.from_pretrained(
                path,
                dtype=dtype,
                local_files_only=True,
                trust_remote_code=trust_remote_code,
                weights_only=True,  # .bin weights: never unpickle arbitrary objects
            )
    except ValueError as e:
        if "trust_remote_code" in str(e):
            raise CheckpointError(
                f"{path}: this model needs custom code from its directory; "
                "rerun with --trust-remote-code if you trust it"
            ) from None
        raise CheckpointError(f"{path}: cannot load the model ({_short(e)})") from None
    except Exception as e:
        if "weights_only" in str(e) or "Weights only load failed" in str(e):
            # torch's own advice (weights_only=False) would run arbitrary code from the file
            raise CheckpointError(
                f"{path}: the .bin weights hold pickled objects other than tensors, which pctce refuses to load "
                "(they could run code); save the model as safetensors from a Python session you trust"
            ) from None
        raise CheckpointError(
            f"{path}: cannot load the model weights ({_short(e)}); the file may be truncated or corrupt"
        ) from None
    return model.to(device).eval()


class ModelCache:
    """Loads checkpoints one after another, keeping a base model for PEFT adapters.

    When consecutive adapters share a base model, the base is loaded once and the
    adapters are swapped on it.
    """

    def __init__(self, device: torch.device, dtype: torch.dtype, trust_remote_code: bool = False):
        self.device, self.dtype, self.trust_remote_code = device, dtype, trust_remote_code
        self._base_path: Path | None = None
        self._peft = None  # PeftModel wrapping the cached base
        self._adapter_name: str | None = None

    def load(self, spec: CheckpointSpec):
        """Return the model (in eval mode) for ``spec``."""
        if spec.kind == "model":
            self.release()
            return _load_causal_lm(spec.path, self.dtype, self.device, self.trust_remote_code)
        return self._load_adapter(spec)

    def _load_adapter(self, spec: CheckpointSpec):
        try:
            from peft import PeftModel
        except ImportError:
            raise CheckpointError(
                f"{spec.path}: a PEFT adapter needs the peft package: pip install 'pctce[peft]'"
            ) from None
        base_path = Path(spec.base_model).resolve()
        name = f"a{abs(hash(str(spec.path.resolve())))}"
        try:
            with quiet_transformers():
                if self._peft is None or self._base_path != base_path:
                    self.release()
                    base = _load_causal_lm(base_path, self.dtype, self.device, self.trust_remote_code)
                    self._peft = PeftModel.from_pretrained(base, spec.path, adapter_name=name, is_trainable=False)
                    self._base_path = base_path
                else:
                    old = self._adapter_name
                    self._peft.load_adapter(spec.path, adapter_name=name, is_trainable=False)
                    self._peft.set_adapter(name)
                    if old is not None and old != name:
                        self._peft.delete_adapter(old)
        except CheckpointError:
            raise
        except Exception as e:
            raise CheckpointError(f"{spec.path}: cannot load the adapter ({_short(e)})") from None
        self._adapter_name = name
        return self._peft.to(self.device).eval()

    def release(self) -> None:
        """Drop the cached base model."""
        self._peft, self._base_path, self._adapter_name = None, None, None


def model_context_length(model) -> int | None:
    """The model's context length from its config, if it states one."""
    cfg = getattr(model, "config", None)
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx"):
        v = getattr(cfg, key, None)
        if isinstance(v, int) and v > 0:
            return v
    return None


class HFAdapter:
    """Engine adapter for a transformers causal LM (optionally PEFT-wrapped).

    Fast path: run the backbone, gather hidden states at the scored positions and
    apply the output layer a chunk at a time. The fast path is used only after a
    check on real inputs shows it reproduces the model's own logits; models that
    transform their logits after the output layer (final-logit soft-capping, logit
    scaling, …) fail the check and use the model's own logits instead.

    When the output layer is a plain float32 ``nn.Linear`` (no hooks) and autograd
    is off, the fast path computes each chunk with ``torch.mm``/``torch.addmm``
    (the product ``F.linear`` computes) into one ``chunk × vocab`` float32 buffer,
    allocated once and reused: on CPU a fresh chunk-sized tensor costs its page
    faults on every chunk. Each yielded chunk is then valid only until the next
    one is requested.
    """

    def __init__(self, model, chunk_elements: int = CHUNK_ELEMENTS):
        self.model = model
        inner = model.get_base_model() if hasattr(model, "get_base_model") else model
        self.inner = inner
        self.head = inner.get_output_embeddings()
        self.backbone = getattr(inner, "base_model", None)
        self.vocab_size = int(self.head.weight.shape[0]) if self.head is not None else int(inner.config.vocab_size)
        self.device = next(model.parameters()).device
        self.dtype = next(model.parameters()).dtype
        self.chunk = chunk_rows(self.vocab_size, chunk_elements)
        self.fast: bool | None = None  # decided on the first batch
        self.check_max_abs_diff: float | None = None
        self._logits_buf: torch.Tensor | None = None  # (chunk, V) float32, reused by the fast path

    def _plain_head(self) -> bool:
        """Whether the output layer is a float32 ``nn.Linear`` that nothing hooks into."""
        head = self.head
        if type(head) is not torch.nn.Linear or head.weight.dtype != torch.float32:
            return False
        if head._forward_hooks or head._forward_pre_hooks or "forward" in vars(head):
            return False  # e.g. accelerate's device-placement hooks
        from torch.nn.modules import module as nn_module

        return not (nn_module._global_forward_hooks or nn_module._global_forward_pre_hooks)

    def _project(self, hidden: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """The output layer on hidden states ``(n, D)``: float32 logits ``(n, V)``.

        With a plain float32 head, the product ``F.linear`` computes, written into
        ``out`` if given; otherwise the head module itself, upcast.
        """
        if hidden.dtype != torch.float32 or torch.is_grad_enabled() or not self._plain_head():
            return self.head(hidden).float()
        if out is None:
            out = hidden.new_empty(hidden.shape[0], self.head.weight.shape[0])
        weight, bias = self.head.weight, self.head.bias
        if bias is None:
            return torch.mm(hidden, weight.t(), out=out)
        return torch.addmm(bias, hidden, weight.t(), out=out)

    def _hidden(self, input_ids, attention_mask):
        out = self.backbone(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        return out[0]  # (B, T, D) last hidden state, after the final norm

    def _full_logits(self, input_ids, attention_mask):
        return self.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits  # (B, T, V)

    def _check_fast_path(self, input_ids, attention_mask, rows, cols) -> bool:
        if self.head is None or self.backbone is None or self.backbone is self.inner:
            return False
        b = int(rows[0])
        # a short causal prefix of one window is enough (its logits do not depend on later tokens; a
        # head that differs from the fast path's differs at every position): 8 positions keep the check's
        # two forward passes at 0.08 s on a 135M model, 0.5 s on 360M (32: 0.24 s, 0.72 s; measured)
        cut = int(cols[rows == b].min()) + 8
        sel_cols = cols[(rows == b) & (cols < cut)]
        ids, mask = input_ids[b : b + 1, :cut], attention_mask[b : b + 1, :cut]
        ref = self._full_logits(ids, mask)[0, sel_cols].float()  # (n, V)
        hid = self._hidden(ids, mask)[0, sel_cols]  # (n, D)
        ours = self._project(hid)  # (n, V), as the fast path computes it
        if ours.shape != ref.shape:
            return False
        diff = (ours - ref).abs().max().item()
        self.check_max_abs_diff = diff
        scale = 1.0 + ref.abs().max().item()
        tol = 1e-4 if self.dtype == torch.float32 else 2e-2
        return diff <= tol * scale

    def logits_chunks(self, input_ids, attention_mask, rows, cols) -> Iterator[torch.Tensor]:
        if self.fast is None:
            self.fast = self._check_fast_path(input_ids, attention_mask, rows, cols)
        if self.fast:
            hidden = self._hidden(input_ids, attention_mask)  # (B, T, D)
            picked = hidden[rows, cols]  # (N, D)
            del hidden
            buf = None
            if picked.dtype == torch.float32 and not torch.is_grad_enabled() and self._plain_head():
                buf = self._logits_buf
                if (
                    buf is None
                    or buf.device != picked.device
                    or (buf.is_inference() and not torch.is_inference_mode_enabled())
                ):  # an inference tensor cannot be written outside inference mode
                    buf = self._logits_buf = picked.new_empty(self.chunk, self.head.weight.shape[0])
            for s in range(0, picked.shape[0], self.chunk):
                part = picked[s : s + self.chunk]  # (C, D)
                yield self._project(part, out=None if buf is None else buf[: part.shape[0]])  # (C, V)
        else:
            logits = self._full_logits(input_ids, attention_mask)  # (B, T, V) in the model's dtype
            for s in range(0, rows.shape[0], self.chunk):
                yield logits[rows[s : s + self.chunk], cols[s : s + self.chunk]].float()  # (C, V)


def tokenizer_fingerprint(tokenizer) -> str:
    """sha256 of what determines tokenization: the backend model (or vocab), special tokens, chat template.

    Two copies of the same tokenizer get the same fingerprint, whatever their class
    name or directory, so comparisons can check "same tokenizer" by content.
    """
    import hashlib
    import json

    h = hashlib.sha256()
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        h.update(backend.to_str().encode())
    else:
        h.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
    special = {k: str(v) for k, v in sorted(getattr(tokenizer, "special_tokens_map", {}).items())}
    h.update(json.dumps(special, sort_keys=True).encode())
    h.update(str(getattr(tokenizer, "chat_template", None)).encode())
    return h.hexdigest()
