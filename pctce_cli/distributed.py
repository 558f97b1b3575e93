"""The one helper for ``torch.distributed``: is there a group, which rank, collectives, teardown.

Used by ``pctce score`` under ``torchrun`` (:meth:`ProcessGroup.launch`
creates the group and :meth:`ProcessGroup.close` tears it down), by
``score_model(distributed=True)`` and the training callback (they join the
group the caller made: :meth:`ProcessGroup.current`) and by ``PercentileCE``
(ragged gathers). Without a group every method is the single-process identity,
so callers never branch on "distributed or not". Torch is imported inside the
functions: importing this module stays torch-free.
"""

from __future__ import annotations

import os

import numpy as np


class ProcessGroup:
    """A ``torch.distributed`` process group seen from one rank, or a single process.

    Attributes:
        rank: This process's rank (0 alone).
        world: Number of processes (1 alone).
        local_rank: Rank on this node (picks the CUDA device under torchrun).
    """

    def __init__(self, dist=None, rank: int = 0, world: int = 1, local_rank: int = 0, owned: bool = False):
        self._dist = dist
        self.rank = rank
        self.world = world
        self.local_rank = local_rank
        self._owned = owned

    @property
    def active(self) -> bool:
        """Whether there are other ranks to talk to."""
        return self._dist is not None

    @classmethod
    def single(cls) -> ProcessGroup:
        """One process, no collectives."""
        return cls()

    @classmethod
    def current(cls, enabled: bool = True) -> ProcessGroup:
        """The initialized default group when it has more than one rank (and ``enabled``), else a single process."""
        if not enabled:
            return cls()
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return cls()
        return cls(dist, dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))

    @classmethod
    def launch(cls) -> ProcessGroup:
        """The group of a ``torchrun`` launch (``WORLD_SIZE`` > 1), created when not yet initialized.

        Rank and world come from torchrun's environment. A group created here is
        owned: :meth:`close` destroys it.
        """
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if world <= 1:
            return cls(None, rank, world, local_rank)
        import torch
        import torch.distributed as dist

        owned = False
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
            owned = True
        return cls(dist, rank, world, local_rank, owned)

    def close(self, finished: bool = True) -> None:
        """Tear down the process group if :meth:`launch` created it.

        Args:
            finished: every rank got here in step. Then wait for the others, so no
                rank tears down gloo while another is still in a collective. On an
                error path a rank may be alone, and waiting would hang until the
                collective timeout; tearing down at once makes the others fail fast.
        """
        if self._dist is not None and self._owned:
            if finished:
                self._dist.barrier()
            # a process that exits with a live gloo group can abort at exit
            # ("terminate called without an active exception"), so never leave one
            self._dist.destroy_process_group()
            self._dist, self._owned = None, False

    def broadcast(self, obj):
        """Rank 0's ``obj`` on every rank (``obj`` itself alone)."""
        if self._dist is None:
            return obj
        box = [obj]
        self._dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj) -> list:
        """Every rank's ``obj``, in rank order, on every rank (``all_gather_object``)."""
        if self._dist is None:
            return [obj]
        out = [None] * self.world
        self._dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        """Wait for every rank."""
        if self._dist is not None:
            self._dist.barrier()

    def all_gather_ragged(self, arrays, dtypes, group=None) -> list[np.ndarray]:
        """All-gather per-rank 1-D arrays of different lengths; rank 0's values first.

        Gathers the lengths, pads to the longest, gathers, trims: tensors, not
        pickled objects, so it is fast for millions of values (and works on NCCL).

        Args:
            arrays: This rank's arrays, all of one length.
            dtypes: Their torch dtypes.
            group: A sub-group to gather over (default: the world).
        """
        if self._dist is None:
            return list(arrays)
        import torch

        dist = self._dist
        device = torch.device("cpu")
        if dist.get_backend(group) == "nccl":
            device = torch.device("cuda", torch.cuda.current_device())
        world = dist.get_world_size(group)
        n = torch.tensor([len(arrays[0])], dtype=torch.int64, device=device)
        sizes = [torch.zeros_like(n) for _ in range(world)]
        dist.all_gather(sizes, n, group=group)
        sizes = [int(s.item()) for s in sizes]
        longest = max(sizes)
        out = []
        for local, dtype in zip(arrays, dtypes):
            padded = torch.zeros(longest, dtype=dtype, device=device)  # (longest,)
            padded[: len(local)] = torch.from_numpy(np.ascontiguousarray(local)).to(device)
            bufs = [torch.empty_like(padded) for _ in range(world)]
            dist.all_gather(bufs, padded, group=group)
            out.append(np.concatenate([b[:k].cpu().numpy() for b, k in zip(bufs, sizes)]))
        return out


def unwrap(model):
    """The module inside ``DistributedDataParallel``/``DataParallel`` wrappers (``model`` itself otherwise)."""
    import torch

    while isinstance(model, (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)):
        model = model.module
    return model


__all__ = ["ProcessGroup", "unwrap"]
