"""Paste the real output of `pctce demo` into README.md (between its demo-output markers).

    python scripts/gen_readme_demo.py [--out DIR]

Runs the demo at 100 columns (scoring the sample checkpoints unless DIR already
holds their scores); tests/test_demo.py checks that the README still matches.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

os.environ["COLUMNS"] = "100"
os.environ["NO_COLOR"] = "1"
os.environ["TERM"] = "dumb"

from pctce_cli.threads import configure_threads  # noqa: E402

# as `pctce demo` does before torch is imported: without it OpenMP threads spin while they
# wait, and on a busy 2-core machine this script ran the demo ~10x slower than the command
configure_threads()

from typer.testing import CliRunner  # noqa: E402

from pctce_cli.cli import app  # noqa: E402

README = Path(__file__).resolve().parents[1] / "README.md"


def main(argv: list[str]) -> None:
    res = CliRunner().invoke(app, ["demo", "-q", *argv], prog_name="pctce")
    if res.exit_code != 0:
        sys.exit(f"pctce demo failed:\n{res.output}")
    # the cache path of whoever ran this means nothing to a reader
    text = res.stdout.replace(str(Path.home()), "~")
    text = "\n".join(line.rstrip() for line in text.splitlines()) + "\n"
    readme = README.read_text(encoding="utf-8")
    new, n = re.subn(r"(<!-- demo-output -->\n```text\n).*?(```)", lambda m: m.group(1) + text + m.group(2), readme, flags=re.S)
    if n != 1:
        sys.exit("README.md has no <!-- demo-output --> block")
    README.write_text(new, encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
