"""Per-target KL(p_ref ‖ p_cand), Δp and top-1 agreement against brute force (docs/definitions.md, divergence)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pctce_cli.scoring.divergence import divergence


def brute(ref: torch.Tensor, cand: torch.Tensor, targets: torch.Tensor):
    """float64 reference: torch.nn.functional.kl_div over full logits, and probabilities from softmax."""
    r, c = ref.double(), cand.double()
    kl = torch.nn.functional.kl_div(torch.log_softmax(c, -1), torch.log_softmax(r, -1), reduction="none", log_target=True).sum(-1)
    p_r, p_c = torch.softmax(r, -1), torch.softmax(c, -1)
    t = targets.view(-1, 1)
    dp = (p_c.gather(1, t) - p_r.gather(1, t)).view(-1)
    same = [int(np.argmax(a)) == int(np.argmax(b)) for a, b in zip(r.numpy(), c.numpy())]
    return kl, dp, torch.tensor(same)


@pytest.mark.parametrize("vocab", [2, 17, 5000])
def test_divergence_matches_brute_force_in_float64(vocab):
    g = torch.Generator().manual_seed(vocab)
    ref = torch.randn(64, vocab, generator=g) * 3
    cand = ref + torch.randn(64, vocab, generator=g)
    targets = torch.randint(0, vocab, (64,), generator=g)
    kl, dp, same = divergence(ref, cand, targets)
    bkl, bdp, bsame = brute(ref, cand, targets)
    assert kl.dtype == dp.dtype == torch.float32 and same.dtype == torch.bool
    assert torch.allclose(kl.double(), bkl, rtol=1e-5, atol=1e-6)
    assert torch.allclose(dp.double(), bdp, atol=1e-6)
    assert torch.equal(same, bsame)
    assert (kl >= 0).all()


def test_a_model_against_itself_is_exactly_zero_and_agrees_everywhere():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(50, 300, generator=g) * 5
    targets = torch.randint(0, 300, (50,), generator=g)
    kl, dp, same = divergence(logits, logits.clone(), targets)
    assert kl.tolist() == [0.0] * 50 and dp.tolist() == [0.0] * 50 and same.all()


def test_uniform_against_uniform_is_zero_and_ties_break_to_the_lower_id():
    kl, dp, same = divergence(torch.zeros(3, 8), torch.full((3, 8), 2.5), torch.tensor([0, 4, 7]))
    assert kl.tolist() == [0.0] * 3 and dp.abs().max() < 1e-7 and same.all()


def test_direction_is_reference_first():
    # p_ref = (1/2, 1/2), p_cand = softmax(0, 2): KL(ref‖cand) = ln(1/2) - ½ ln p0 - ½ ln p1 differs from KL(cand‖ref).
    ref, cand = torch.tensor([[0.0, 0.0]]), torch.tensor([[0.0, 2.0]])
    kl, _, _ = divergence(ref, cand, torch.tensor([0]))
    p = torch.softmax(cand.double(), -1)[0]
    expected = float(0.5 * (np.log(0.5) - np.log(p[0])) + 0.5 * (np.log(0.5) - np.log(p[1])))
    reverse = float(p[0] * (np.log(p[0]) - np.log(0.5)) + p[1] * (np.log(p[1]) - np.log(0.5)))
    assert abs(float(kl[0]) - expected) < 1e-6 and abs(expected - reverse) > 0.05


def test_a_minus_infinity_logit_in_both_contributes_nothing():
    ref = torch.tensor([[0.0, 1.0, -float("inf")]])
    cand = torch.tensor([[0.5, 1.0, -float("inf")]])
    kl, dp, same = divergence(ref, cand, torch.tensor([1]))
    bkl, _, _ = brute(ref[:, :2], cand[:, :2], torch.tensor([1]))
    assert torch.isfinite(kl).all() and abs(float(kl[0]) - float(bkl[0])) < 1e-6


def test_different_vocabularies_are_refused():
    with pytest.raises(ValueError, match=r"differ in shape: \(1, 3\) vs \(1, 4\)"):
        divergence(torch.zeros(1, 3), torch.zeros(1, 4), torch.tensor([0]))
