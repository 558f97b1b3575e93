"""The package's one atomic writer: write to a hidden temporary name beside the target, fsync, rename.

Readers never see a half-written file: either the old content or the new one
exists under the final name. Temporary names start with ``.`` and end with
``.tmp`` so store readers and globbing skip them.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from pctce_cli.errors import UsageError


def temporary_name(path: Path) -> Path:
    """The hidden temporary file that :func:`replacing` writes before renaming onto ``path``."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


@contextlib.contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path; when the block succeeds, fsync it and rename it onto ``path``.

    The parent directory is created. On an exception the temporary file is
    removed and ``path`` keeps its old content (or stays absent).

    Examples:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> with replacing(d / "a.txt") as tmp:
        ...     _ = tmp.write_text("hi")
        >>> (d / "a.txt").read_text(), sorted(p.name for p in d.iterdir())
        ('hi', ['a.txt'])
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with replacing(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically; returns the path."""
    return write_bytes(path, text.encode("utf-8"))


def output_target(path: str | Path, option: str) -> Path:
    """The file an ``option`` path names: symbolic links followed; an empty path refused.

    Writing ``--output link`` writes the link's target (the link stays a
    link), as ``>`` does in a shell.

    Raises:
        UsageError: ``path`` is empty or names a directory.
    """
    if not str(path).strip():
        raise UsageError(f"{option} '': expected a file path")
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{option} {path}: is a directory, expected a file path")
    if path.is_symlink() and not _is_special(path):
        # a link to a regular file is written at its target (a dangling link's target is created); a link
        # to a pipe or a device (/dev/stdout → /proc/self/fd/1 → pipe:[…]) is opened as it is named
        path = path.resolve()
    return path


def _is_special(path: Path) -> bool:
    """Whether ``path`` exists and is not a regular file (a named pipe, a device such as ``/dev/stdout``)."""
    try:
        return not stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return False


def write_output(path: str | Path, data: bytes | str, option: str) -> Path:
    """Write a file the user named with ``option`` (``--output``, ``--out``…).

    A regular file (or a new one) is written atomically; a symbolic link is
    followed and its target written; a named pipe or a character device
    (``/dev/stdout``) is written through, since renaming a file onto it would
    replace the pipe or the device instead of feeding it.

    A path that cannot be written — its directory is a regular file, it is
    read-only, its name is too long — is the user's to fix, so it becomes a
    :class:`~pctce_cli.errors.UsageError` naming the option and the path.

    Examples:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp()); (d / "f").write_text("x")
        1
        >>> try:
        ...     write_output(d / "f" / "out.json", "{}", "--output")
        ... except UsageError as e:
        ...     print(str(e).replace(str(d), "D"))
        --output D/f/out.json: cannot write (D/f is a file, not a directory)
    """
    path = output_target(path, option)
    data = data.encode("utf-8") if isinstance(data, str) else data
    try:
        if _is_special(path):
            with open(path, "wb") as f:
                f.write(data)
            return path
        return write_bytes(path, data)
    except OSError as e:
        blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
        why = f"{blocker} is a file, not a directory" if blocker is not None else e.strerror or str(e)
        raise UsageError(f"{option} {path}: cannot write ({why})") from None


def check_output(path: str | Path, option: str) -> None:
    """Refuse, before any work is done, an output path :func:`write_output` would refuse.

    Raises:
        UsageError: ``path`` is empty, a directory, or below a regular file (as :func:`write_output` words it).
    """
    path = output_target(path, option)
    blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise UsageError(f"{option} {path}: cannot write ({blocker} is a file, not a directory)")


def write_json(path: str | Path, obj, **dump_kw) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically (``indent=2, sort_keys=True`` unless overridden)."""
    kw = {"indent": 2, "sort_keys": True, "default": str} | dump_kw
    return write_text(path, json.dumps(obj, **kw))
