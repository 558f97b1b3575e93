"""The reference model of ``pctce score --reference``: found once, loaded once, kept resident, checked against each candidate.

Every candidate is scored and, on the same batches, the reference too, so each
target gets ``kl``, ``dp`` and ``same_top1`` beside its ``ce`` and ``rank``
(docs/definitions.md, "Divergence from a reference model"). The reference's
weights fingerprint is part of each partition's identity (``identity["reference"]``):
a store scored against another reference is a conflict, named as such, and
``--force`` or another ``--out`` is the way out. A partition scored against a
reference still counts as done for a run without one (its CE is the same).
Torch is imported only when the model is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pctce_cli.checkpoints import CheckpointSpec, discover, weights_fingerprint
from pctce_cli.errors import PctceError, UsageError


@dataclass
class Reference:
    """The reference model of a run: where it is, its fingerprints, and (once loaded) its engine adapter."""

    spec: CheckpointSpec
    fingerprint: str  # weights
    tokenizer: str  # tokenizer fingerprint: candidates must share it
    cache: Any  # an hf.ModelCache of its own: a PEFT candidate's base (the common reference) is wrapped in place
    _adapter: Any = field(default=None, repr=False)

    @classmethod
    def open(cls, path: str, tokenizer: str | None, cache, trust_remote_code: bool = False) -> "Reference":
        """Find the reference checkpoint ``path`` and fingerprint it (weights and tokenizer), without loading it.

        Args:
            path: A checkpoint directory, PEFT adapter or Hub id (one checkpoint).
            tokenizer: ``--tokenizer``, used for the reference as for every candidate.
            cache: An ``hf.ModelCache`` for the reference alone.
            trust_remote_code: Passed to the tokenizer.

        Raises:
            UsageError: the path is not one checkpoint (the message starts with ``--reference``).
        """
        from pctce_cli.scoring import hf

        try:
            specs = discover([path])
            if len(specs) != 1:
                raise UsageError(f"{path} holds {len(specs)} checkpoints; name one of them")
            spec = specs[0]
            tok = hf.tokenizer_fingerprint(hf.load_tokenizer(spec, tokenizer, trust_remote_code))
            return cls(spec, weights_fingerprint(spec), tok, cache)
        except PctceError as e:
            raise UsageError(f"--reference: {e}") from None

    def check(self, spec: CheckpointSpec, tokenizer_fp: str) -> str:
        """The identity entry of a candidate scored against this reference (its weights fingerprint).

        Raises:
            UsageError: the candidate's tokenizer is not the reference's.
        """
        if tokenizer_fp != self.tokenizer:
            raise UsageError(
                f"{spec.id}: its tokenizer differs from the reference's ({self.spec.path}); KL to a reference needs "
                "the same tokenizer, so that both models predict the same targets"
            )
        return self.fingerprint

    def adapter(self, spec: CheckpointSpec, candidate, max_length: int | None = None) -> Any:
        """The reference's engine adapter (loaded on first use, then kept), checked against the candidate's.

        ``max_length``: the candidate's windows, which the reference reads too (a shorter
        reference context would index past its position table).

        Raises:
            UsageError: the two output layers have different vocabulary sizes, or the windows exceed the reference's context.
        """
        from pctce_cli.scoring import hf

        if self._adapter is None:
            self._adapter = hf.HFAdapter(self.cache.load(self.spec))
        ctx = hf.model_context_length(self._adapter.model)
        if max_length is not None and ctx is not None and max_length > ctx:
            raise UsageError(
                f"{spec.id}: its windows of max_length {max_length} tokens exceed the context of the reference "
                f"({self.spec.path}: {ctx} tokens), which reads the same windows; pass max_length {ctx} or less",
                param=("max_length", "max_length"),
            )
        if self._adapter.vocab_size != candidate.vocab_size:
            raise UsageError(
                f"{spec.id}: its output layer has {candidate.vocab_size} entries, the reference's ({self.spec.path}) "
                f"{self._adapter.vocab_size}; KL needs the same vocabulary"
            )
        return self._adapter

    def manifest(self) -> dict:
        """What a partition's manifest records about the reference: path, weights fingerprint, Hub origin."""
        out = {"id": self.spec.id, "path": str(self.spec.path.resolve()), "fingerprint": self.fingerprint, "kind": self.spec.kind}
        for key in ("hub", "base_hub"):
            if self.spec.extra.get(key):
                out[key] = self.spec.extra[key]
        return out

    def release(self) -> None:
        """Free the model."""
        self._adapter = None
        self.cache.release()


__all__ = ["Reference"]
