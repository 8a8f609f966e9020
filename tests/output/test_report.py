"""OUT/report.html: written by every run, rebuilt by ``snhoo-dask report``, readable offline."""

from __future__ import annotations

import io
import json
import os

import pytest
from helpers import CHROMIUM_ARGS, manifest, run_cli, run_on, small_corpus
from PIL import Image

from snhoo_dask.output.report import _json_for_script
from snhoo_dask.output.sheets import contact_sheet, sheet_frames

pytestmark = pytest.mark.timeout(120)


def test_contact_sheet_spreads_frames_over_the_video(tmp_path):
    folder = tmp_path / "v"
    folder.mkdir()
    with open(folder / "frames.csv", "w") as f:
        f.write("frame,timestamp,file\n")
        for i in range(10):
            Image.new("RGB", (64, 48), (i * 20,) * 3).save(folder / f"{i:06d}.jpg")
            f.write(f"{i},{i / 25:.6f},{i:06d}.jpg\n")
    picked = [os.path.basename(p) for p in sheet_frames(str(folder), 4)]
    assert picked == ["000000.jpg", "000003.jpg", "000006.jpg", "000009.jpg"]
    sheet = Image.open(io.BytesIO(contact_sheet(str(folder), 4, width=64)))
    assert sheet.format == "JPEG" and sheet.size == (4 * 64 + 3 * 2, 48)
    assert contact_sheet(str(tmp_path / "missing")) is None


def test_chart_data_cannot_end_its_script_element():
    """Video names reach the page's chart data: a hostile one stays data."""
    name = "cam/</script><script>alert(1)</script><!--.mp4"
    text = _json_for_script([{"video": [name]}])
    assert "<" not in text and ">" not in text
    assert json.loads(text) == [{"video": [name]}]


@pytest.mark.cluster
@pytest.mark.slow
@pytest.mark.timeout(240)  # a cluster, a run and a browser: minutes on a loaded 2-core machine
def test_run_writes_a_report_that_renders_offline(tmp_path, dask_cluster):
    from playwright.sync_api import sync_playwright

    root = small_corpus(str(tmp_path / "videos"))
    out = str(tmp_path / "out")
    res = run_on(dask_cluster, root, "-o", out, "--every", "5")
    assert res.returncode == 1, res.stderr  # one video failed
    report = os.path.join(out, "report.html")
    assert os.path.exists(report), res.stderr
    html = open(report, encoding="utf-8").read()
    assert "<script src=" not in html and '<link rel="stylesheet" href=' not in html

    # `snhoo-dask report` rebuilds it from the manifest and the frame folders alone.
    os.remove(report)
    res = run_cli("report", out)
    assert res.returncode == 0 and res.stdout.strip() == report, res.stderr

    shots = tmp_path / "screenshots"
    shots.mkdir()
    requested, errors = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))

            def only_the_file(route):
                requested.append(route.request.url)
                if route.request.url == f"file://{report}":
                    route.continue_()
                else:
                    route.abort()

            page.route("**/*", only_the_file)
            page.goto(f"file://{report}")
            page.wait_for_selector("#chart canvas", timeout=20_000)  # BokehJS drew the chart
            # What it drew: a line per worker, ending at the images that worker wrote.
            chart = page.evaluate(
                """() => { const fig = Bokeh.documents[0].roots()[0];
                  const lines = fig.renderers.filter(r => r.glyph.type === "Line");
                  return {legend: fig.legend.items.map(i => i.label.value),
                          totals: lines.map(r => r.data_source.data.n.at(-1))}; }"""
            )
            page.screenshot(path=str(shots / "report.png"), full_page=True)
            summary = page.inner_text("#summary")
            failures = page.inner_text("table.failures")
            sheets = page.eval_on_selector_all("table.videos img", "els => els.map(e => e.naturalWidth)")
        finally:
            browser.close()
    assert requested == [f"file://{report}"], requested  # nothing from the network, ever
    assert errors == []
    per_worker = {}
    for rec in manifest(out):
        if rec["status"] == "ok":
            per_worker[rec["worker"]] = per_worker.get(rec["worker"], 0) + rec["frames"]
    assert chart["legend"] == [f"worker {w}" for w in sorted(per_worker)]
    assert chart["totals"] == [per_worker[w] for w in sorted(per_worker)]
    assert "4\nvideos" in summary and "3\nok" in summary and "1\nfailed" in summary
    assert "cam2/bad.mp4" in failures and "not a readable video" in failures
    assert len(sheets) == 3 and all(w > 0 for w in sheets)  # a decoded contact sheet per good video
