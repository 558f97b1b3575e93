"""Per-target divergence of a candidate from a reference model, from one chunk of logits of each.

For a target at position i with next-token distributions p_ref and p_cand over the
whole vocabulary (docs/definitions.md, "Divergence from a reference model"):

* ``kl``  = KL(p_ref ‖ p_cand) = Σ_v p_ref(v) (ln p_ref(v) − ln p_cand(v)), nats, ≥ 0;
  the reference is the first argument, as llama.cpp's ``--kl-divergence`` takes it;
* ``dp``  = p_cand(t) − p_ref(t), the change in the probability of the actual target;
* ``same_top1`` = both argmaxes equal (ties broken by the lower token id).

Everything is computed from log-softmax in float32 or wider, never from
probabilities that may underflow, one ``(C, V)`` chunk at a time, so memory stays at
a few chunk-sized buffers whatever the vocabulary.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch


def divergence(ref_logits: torch.Tensor, cand_logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """KL(p_ref ‖ p_cand), Δp of the target and top-1 agreement, per row.

    Args:
        ref_logits: ``(C, V)`` logits of the reference model. Not modified.
        cand_logits: ``(C, V)`` logits of the candidate at the same positions. Not modified.
        targets: ``(C,)`` int64 target token ids.

    Returns:
        ``kl`` (C,) float32 nats (clamped at 0: a row's round-off can dip below it),
        ``dp`` (C,) float32 and ``same_top1`` (C,) bool.

    Raises:
        ValueError: the two chunks differ in shape (different vocabularies).

    Examples:
        >>> z = torch.zeros(2, 4)
        >>> kl, dp, same = divergence(z, z, torch.tensor([0, 3]))
        >>> kl.tolist(), dp.tolist(), same.tolist()
        ([0.0, 0.0], [0.0, 0.0], [True, True])
        >>> kl, dp, same = divergence(torch.tensor([[0.0, 0.0]]), torch.tensor([[0.0, 2.0]]), torch.tensor([1]))
        >>> round(float(kl[0]), 6), round(float(dp[0]), 6), same.tolist()
        (0.433781, 0.380797, [False])
    """
    if ref_logits.shape != cand_logits.shape:
        raise ValueError(f"reference and candidate logits differ in shape: {tuple(ref_logits.shape)} vs {tuple(cand_logits.shape)}")
    wide = torch.float64 if torch.float64 in (ref_logits.dtype, cand_logits.dtype) else torch.float32
    lp_ref = torch.log_softmax(ref_logits.to(wide), dim=-1)  # (C, V)
    lp_cand = torch.log_softmax(cand_logits.to(wide), dim=-1)  # (C, V)
    # Σ p_ref (ln p_ref − ln p_cand); rows where p_ref(v) underflows to 0 contribute 0 (xlogy semantics).
    terms = lp_ref.exp() * (lp_ref - lp_cand)  # (C, V)
    terms = torch.where(torch.isneginf(lp_ref), torch.zeros((), dtype=wide), terms)  # a -inf logit would give 0·nan
    kl = terms.sum(dim=-1).clamp_min_(0)  # (C,)
    t = targets.view(-1, 1)
    dp = lp_cand.gather(1, t).exp_().sub_(lp_ref.gather(1, t).exp_()).view(-1)  # (C,)
    same = ref_logits.argmax(dim=-1) == cand_logits.argmax(dim=-1)  # torch.argmax returns the first maximum
    return kl.to(torch.float32), dp.to(torch.float32), same


def paired_chunks(cand: Iterator[torch.Tensor], ref: Iterator[torch.Tensor]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The candidate's and the reference's logit chunks cut to the same rows: ``(cand (C, V), ref (C, V))`` pairs, in order.

    Each adapter may yield views of one reused buffer, valid until its next
    chunk is asked for (the engine's adapter contract), and the two may cut
    their rows differently: a chunk is sliced until used up and only then is
    its iterator advanced, so each pair is read before either buffer changes.

    Raises:
        ValueError: the two yield different numbers of rows.

    Examples:
        >>> a = iter([torch.zeros(3, 2), torch.ones(2, 2)])
        >>> b = iter([torch.zeros(2, 2), torch.zeros(3, 2)])
        >>> [(x.shape[0], float(x.sum())) for x, _ in paired_chunks(a, b)]
        [(2, 0.0), (1, 0.0), (2, 4.0)]
    """
    x = y = None
    i = j = 0
    while True:
        if x is None or i == x.shape[0]:
            x, i = next(cand, None), 0
        if y is None or j == y.shape[0]:
            y, j = next(ref, None), 0
        if x is None or y is None:
            if x is not None or y is not None:
                raise ValueError("the candidate and the reference gave different numbers of positions")
            return
        n = min(x.shape[0] - i, y.shape[0] - j)
        yield x[i : i + n], y[j : j + n]
        i, j = i + n, j + n


__all__ = ["divergence", "paired_chunks"]
