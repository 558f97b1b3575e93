"""What the benchmark scripts record about the machine they ran on (shared by them)."""

from __future__ import annotations


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo, or "unknown"."""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"
