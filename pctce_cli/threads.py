"""CPU threading policy, applied before torch is imported.

Why: on a shared machine (every CI runner) OpenMP worker threads that *spin*
while they wait for work steal the cores other processes need. Two ``pctce
score`` runs on 2 cores took 2.9× as long as one run alone with OpenMP's
default waiting, 1.47× with passive waiting (issue 14). And a process confined
by a cgroup CPU quota (containers, CI runners) or a CPU affinity mask sees
every core of the host in ``os.cpu_count()`` and would start that many threads.

So, unless the user has decided already:

* ``OMP_WAIT_POLICY=PASSIVE``: idle OpenMP threads sleep instead of spinning;
* ``OMP_NUM_THREADS``: the CPUs this process may really use, the smallest of
  its affinity mask and its cgroup CPU quota (rounded up).

The user decides by setting ``OMP_WAIT_POLICY`` or ``OMP_NUM_THREADS``
themselves, by ``pctce score --threads N``, or by ``PCTCE_THREAD_POLICY=native``
(leave the OpenMP defaults entirely alone). The variables must be set before
the OpenMP runtime starts, which is when torch is imported: the CLI calls
:func:`configure_threads` first thing.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

from pctce_cli.errors import UsageError

CGROUP_ROOT = Path("/sys/fs/cgroup")


def cgroup_cpu_limit(root: Path = CGROUP_ROOT) -> int | None:
    """CPUs allowed by the cgroup CPU quota (rounded up), or None without a quota.

    Reads cgroup v2 ``cpu.max`` (``"<quota> <period>"`` or ``"max <period>"``),
    else cgroup v1 ``cpu/cpu.cfs_quota_us`` and ``cpu.cfs_period_us``.

    Examples:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> _ = (d / "cpu.max").write_text("150000 100000\\n")
        >>> cgroup_cpu_limit(d)
        2
        >>> _ = (d / "cpu.max").write_text("max 100000\\n")
        >>> cgroup_cpu_limit(d) is None
        True
    """
    try:
        v2 = root / "cpu.max"
        if v2.is_file():
            quota, _, period = v2.read_text().strip().partition(" ")
            if quota == "max":
                return None
            return max(1, math.ceil(int(quota) / int(period or 100000)))
        v1 = root / "cpu" / "cpu.cfs_quota_us"
        if v1.is_file():
            quota_us = int(v1.read_text().strip())
            period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text().strip())
            return None if quota_us <= 0 or period_us <= 0 else max(1, math.ceil(quota_us / period_us))
    except (OSError, ValueError):
        return None  # an unreadable or unexpected file means: no quota we can use
    return None


def usable_cpus(root: Path = CGROUP_ROOT) -> int:
    """CPUs this process can really use: its affinity mask, capped by the cgroup CPU quota."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS, Windows
        n = os.cpu_count() or 1
    quota = cgroup_cpu_limit(root)
    return max(1, min(n, quota) if quota else n)


def configure_threads(threads: int | None = None, environ=None, root: Path = CGROUP_ROOT) -> dict[str, str]:
    """Set the OpenMP waiting policy and thread count (see the module docstring).

    Args:
        threads: ``--threads``: threads for this process; overrides everything.
        environ: the environment to update (default ``os.environ``).
        root: cgroup mount point (for tests).

    Returns:
        The variables this call set (empty when the user had decided everything).

    Raises:
        UsageError: ``threads`` below 1, or a non-numeric ``OMP_NUM_THREADS``.
    """
    env = os.environ if environ is None else environ
    if threads is not None and threads < 1:
        raise UsageError(f"threads must be at least 1, got {threads}")
    if env.get("PCTCE_THREAD_POLICY", "").lower() == "native" and threads is None:
        return {}
    changed: dict[str, str] = {}
    if "OMP_WAIT_POLICY" not in env:
        changed["OMP_WAIT_POLICY"] = "PASSIVE"
    if threads is not None:
        changed["OMP_NUM_THREADS"] = str(threads)
    elif "OMP_NUM_THREADS" not in env:
        changed["OMP_NUM_THREADS"] = str(usable_cpus(root))
    else:
        raw = env["OMP_NUM_THREADS"]
        if not raw.strip().isdigit() or int(raw) < 1:
            raise UsageError(f"OMP_NUM_THREADS must be a whole number of at least 1, got '{raw}'")
    env.update(changed)
    if "torch" in sys.modules and "OMP_NUM_THREADS" in changed and environ is None:
        # torch's OpenMP runtime already read the environment: set its pool directly (the wait policy cannot change now)
        sys.modules["torch"].set_num_threads(int(changed["OMP_NUM_THREADS"]))
    return changed

