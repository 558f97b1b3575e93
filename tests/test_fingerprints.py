"""Weight fingerprints hashed in the background equal the sequential ones (checkpoints.Fingerprints)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pctce_cli.checkpoints import Fingerprints, discover, weights_fingerprint

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"


def test_background_fingerprints_equal_sequential_ones():
    specs = discover([SAMPLE / "distill" / "teacher", SAMPLE / "finetune" / "facts"])
    assert any(s.kind == "adapter" for s in specs)  # adapters share one base, hashed once in the background
    fps = Fingerprints(specs)
    try:
        fps.start(specs[0])
        got = [fps.get(s) for s in specs]
    finally:
        fps.close()
    assert got == [weights_fingerprint(s) for s in specs]
    assert len(set(got)) == len(specs)


def test_background_fingerprint_errors_reach_the_caller(monkeypatch):
    import pctce_cli.checkpoints as checkpoints

    def unreadable(spec):
        raise OSError(f"{spec.path}: unreadable")

    monkeypatch.setattr(checkpoints, "weights_fingerprint", unreadable)
    specs = discover([SAMPLE / "distill" / "teacher"])
    fps = Fingerprints(specs)
    try:
        with pytest.raises(OSError, match="unreadable"):
            fps.get(specs[0])
    finally:
        fps.close()
