"""The report opened in a real browser: Debian's chromium, headless, driven by playwright (never a browser playwright downloads).

At 1280 × 800: the first screen shows the Findings heading and at least three
findings; nothing is wider than the window; every image has loaded; no request
leaves the file; every in-page link resolves. Screenshots of the first screen and
the whole page are saved under the test's tmp dir (and ``$PCTCE_ARTIFACTS`` when set).
The tests skip, saying why, when playwright or chromium is missing (`.ci/run`
installs chromium; `pip install -e '.[test]'` installs playwright).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from pctce_cli.catalog import resolve_checkpoints
from tests.helpers import make_store

pytestmark = pytest.mark.slow

CHROMIUM = next((p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if Path(p).exists()), None) or shutil.which("chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WIDTH, HEIGHT = 1280, 800


def _browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install -e '.[test]'")
    if CHROMIUM is None:
        pytest.skip("no chromium browser installed (apt-get install -y chromium); the browser tests need one")
    return sync_api


def runs_store(root: Path) -> tuple[Path, Path]:
    """Four runs of three steps (CE shrinking in the bulk, growing in the tail for two of them), a --meta with run and group."""
    rng = np.random.default_rng(1)
    doc = np.repeat(np.arange(30), 40)
    base = rng.gamma(0.8, 1.5, size=doc.size)
    tail = base > np.quantile(base, 0.95)
    store = root / "scores"
    meta = ["checkpoint,run,group,step,acc"]
    for r, run in enumerate(("teacher", "student-a", "student-b", "scratch")):
        for k, step in enumerate((100, 200, 400)):
            ce = base * (1.2 - 0.1 * k - 0.05 * r)
            if r in (1, 2):
                ce = np.where(tail, ce * (1 + 0.3 * k), ce)
            ck = f"{run}.checkpoint-{step}"
            make_store(store, ck, ce, doc, step=step)
            meta.append(f"{ck},{run},{'controls' if r in (0, 3) else 'distilled'},{step},{0.5 + 0.05 * k - 0.02 * r:.3f}")
    (root / "meta.csv").write_text("\n".join(meta) + "\n", encoding="utf-8")
    return store, root / "meta.csv"


@pytest.fixture(scope="module")
def report_file(tmp_path_factory) -> Path:
    """The report of the demo's distillation store when it is there (``PCTCE_DEMO``), else of a small synthetic store of four runs."""
    from pctce_cli.report import ReportOptions, save_report

    root = tmp_path_factory.mktemp("browser")
    demo = Path(os.environ.get("PCTCE_DEMO", "/nonexistent")) / "distill"
    meta_demo = Path(__file__).resolve().parent.parent / "sample_data" / "meta.csv"
    if demo.is_dir() and meta_demo.exists():
        cks = resolve_checkpoints([demo], meta=meta_demo)
    else:
        store, meta = runs_store(root)
        cks = resolve_checkpoints([store], meta=meta)
    out = root / "report.html"
    save_report(cks, out, ReportOptions(tail_top=5))
    return out


def _artifacts(tmp: Path) -> list[Path]:
    dirs = [tmp]
    if os.environ.get("PCTCE_ARTIFACTS"):
        dirs.append(Path(os.environ["PCTCE_ARTIFACTS"]))
        dirs[-1].mkdir(parents=True, exist_ok=True)
    return dirs


def test_the_report_opens_on_its_findings_and_fits_the_window(report_file, tmp_path):
    sync_api = _browser()
    url = report_file.resolve().as_uri()
    outside: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})

            def route(r):
                if r.request.url.startswith(("file:", "data:")):
                    r.continue_()
                else:
                    outside.append(r.request.url)
                    r.abort()

            page.route("**/*", route)
            page.goto(url, wait_until="load")
            first = [d / "report-first-screen.png" for d in _artifacts(tmp_path)]
            full = [d / "report-full-page.png" for d in _artifacts(tmp_path)]
            for p in first:
                page.screenshot(path=str(p))
            for p in full:
                page.screenshot(path=str(p), full_page=True)
            heading = page.locator("#findings h2")
            box = heading.bounding_box()
            assert box is not None and box["y"] + box["height"] <= HEIGHT, f"the Findings heading is below the first screen: {box}"
            visible = [b for b in (li.bounding_box() for li in page.locator("ol.findings > li").all()) if b is not None and b["y"] + b["height"] <= HEIGHT]
            assert len(visible) >= 3, f"{len(visible)} findings on the first screen"
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= WIDTH, f"the page is {width} px wide at a {WIDTH} px window"
            for d in page.locator("details").all():  # tables on demand must fit too once opened
                d.evaluate("e => e.open = true")
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= WIDTH, f"with every <details> open the page is {width} px wide"
            broken = page.evaluate("[...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt)")
            assert broken == [], f"images that did not load: {broken}"
            assert page.evaluate("document.images.length") >= 3
            dangling = page.evaluate(
                "[...document.querySelectorAll('a[href^=\"#\"]')].map(a => a.getAttribute('href').slice(1)).filter(id => !document.getElementById(id))"
            )
            assert dangling == [], f"in-page links to nothing: {dangling}"
            height = page.evaluate("document.documentElement.scrollHeight")
            (tmp_path / "page-height.txt").write_text(f"{height}\n")
        finally:
            browser.close()
    assert outside == [], f"requests left the file: {outside}"
    assert all(p.stat().st_size > 0 for p in first + full)
