"""What a value is (``--value ce|kl|dp``): the per-target quantities the store holds and the analyses summarize.

:data:`CE` is the stored per-target cross-entropy; :data:`KL` and :data:`DP` the
divergence from a reference model that ``pctce score --reference`` stores beside
it (docs/definitions.md, "Divergence from a reference model"). A kind knows its
column, its names, whether it sums into a word, and which checkpoints and units
it refuses (:meth:`ValueKind.check`). Re-exported by :mod:`pctce_cli.units`. No torch import here.
"""

from __future__ import annotations

from dataclasses import dataclass

from pctce_cli.errors import UsageError

__all__ = ["CE", "DP", "KL", "VALUE_KINDS", "ValueKind", "value_named"]


@dataclass(frozen=True)
class ValueKind:
    """A per-target quantity the store holds and the analyses summarize.

    Attributes:
        column: The token column its values are read from.
        label: How titles name it (``CE``).
        measure: Its measurement unit (``nats``).
        word_sum: Whether a word's value is the sum of its tokens' (CE: yes).
    """

    column: str
    label: str
    measure: str
    word_sum: bool = True


    def check(self, ck, unit) -> None:  # unit: a pctce_cli.units.Unit (a layer above; not imported)
        """Refuse a checkpoint that does not store this value, or a unit it has no form in (named, with what to do).

        Raises:
            UsageError: the checkpoint was scored without ``--reference``; or
                ``--unit byte`` (no divergence per byte), or ``--unit word`` for a value that does not sum into words.
        """
        if self is CE:
            return
        if unit.name == "byte" or (unit.name == "word" and not self.word_sum):
            how = "a divergence is taken per prediction and has no byte form" if unit.name == "byte" else f"{self.label} is a token quantity (it does not sum into words)"
            raise UsageError(f"value {self.column} with unit {unit.name}: {how}; use unit token" + (" or word" if self.word_sum else ""), param=("value", "unit", "unit"))
        if getattr(ck.manifest, "reference", None) is None:
            raise UsageError(
                f"value {self.column}: '{ck.id}' in {ck.root} was scored without a reference model; "
                f"score it with 'pctce score CHECKPOINT --reference REF --force' to store its divergence (docs/kl.md)",
                param="value",
            )


CE = ValueKind("ce", "CE", "nats")
# divergence from a reference model (docs/definitions.md#divergence-from-a-reference-model): stored by `pctce score --reference`
KL = ValueKind("kl", "KL", "nats")
DP = ValueKind("dp", "Δp", "probability", word_sum=False)
VALUE_KINDS = {k.column: k for k in (CE, KL, DP)}


def value_named(name: "str | ValueKind") -> ValueKind:
    """The :class:`ValueKind` called ``name`` (``--value``); a kind passes through.

    Example:
        >>> value_named("kl").label, value_named("dp").word_sum
        ('KL', False)
        >>> value_named("nll")
        Traceback (most recent call last):
        ...
        pctce_cli.errors.UsageError: value must be one of ce, kl, dp, got 'nll'
    """
    if isinstance(name, ValueKind):
        return name
    if name not in VALUE_KINDS:
        raise UsageError(f"value must be one of {', '.join(VALUE_KINDS)}, got '{name}'", param="value")
    return VALUE_KINDS[name]
