"""`sr-bench` matrix runs into the results history, then `history`, `compare`, `gate` and `report`.

One real matrix run (two models x two targets, tiny sizes) feeds every test.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
MODELS = f"{FIXTURES / 'espcn.py'}:ESPCN,{FIXTURES / 'fsrcnn.py'}:FSRCNN"


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Run two small bring-your-own models (x3) on `cpu` and a one-thread profile; return the paths."""
    from sr_export.cli.bench_cli import main

    folder = tmp_path_factory.mktemp("matrix")
    one_thread = folder / "cpu-1t.toml"
    one_thread.write_text('backend = "onnxruntime"\ndescription = "one thread"\n[runtime]\nthreads = 1\n')
    db = folder / "history.sqlite"
    code = main(["--models", MODELS, "--scale", "3", "--targets", f"cpu,{one_thread}",
                 "--sizes", "24x24,16x32", "--runs", "3", "--warmup", "1", "--db", str(db), "--exporter", "legacy",
                 "--out-dir", str(folder / "out")])
    assert code == 0
    return {"db": db, "folder": folder}


def runs_in(db: Path) -> list[dict]:
    from sr_export.bench.history import open_history

    with open_history(db, create=False) as opened:
        return [r.to_dict() for r in opened.runs()]


def test_every_model_and_target_is_stored_with_what_it_was_measured_on(history: dict) -> None:
    runs = runs_in(history["db"])
    assert sorted((r["model"], r["scale"], r["target"]) for r in runs) == [
        ("espcn", 3, "cpu"), ("espcn", 3, "cpu-1t"), ("fsrcnn", 3, "cpu"), ("fsrcnn", 3, "cpu-1t")]
    assert len({r["batch"] for r in runs}) == 1
    for run in runs:
        assert len(run["artifact_sha256"]) == 64 and run["tool_version"] and run["device"]["cpu"]
        assert run["device"]["runtime"].startswith("onnxruntime") and run["conditions"]["runs"] == 3
        assert [s["input_hw"] for s in run["sizes"]] == [[24, 24], [16, 32]]
        size = run["sizes"][1]
        assert size["output_hw"] == [48, 96] and size["fps"] > 0 and size["output_mpix_per_s"] > 0
        for key in ("min_ms", "median_ms", "p90_ms", "p99_ms"):
            assert size["inference"][key] > 0 and size["end_to_end"][key] > 0
        assert run["params"] > 0 and run["aim_flops"] > 0 and run["psnr_y"] > 0 and run["dataset"] == "builtin"
    one_thread = next(r for r in runs if r["target"] == "cpu-1t")
    assert one_thread["conditions"]["threads"] == 1
    assert all(r["weights_sha256"] is None for r in runs)  # random init, and the history says so
    one_model = [r for r in runs if r["model"] == "espcn"]
    assert one_model[0]["artifact_sha256"] == one_model[1]["artifact_sha256"]  # exported once for both targets


def test_history_lists_the_runs(sr_bench, history: dict) -> None:
    result = sr_bench("history", "--db", history["db"])
    assert result.code == 0, result.err
    assert "espcn x3" in result.out and "fsrcnn x3" in result.out and "cpu-1t" in result.out
    only = sr_bench("history", "--db", history["db"], "--target", "cpu-1t", "--json", "-")
    assert {r["target"] for r in json.loads(only.out)} == {"cpu-1t"}


def test_history_without_a_database_is_one_line(sr_bench, tmp_path: Path) -> None:
    result = sr_bench("history", "--db", tmp_path / "none.sqlite")
    assert result.code == 2 and "no results history at" in result.error()


def test_compare_shows_the_latency_change_per_size(sr_bench, history: dict) -> None:
    ids = sorted(r["id"] for r in runs_in(history["db"]))
    result = sr_bench("compare", ids[0], ids[1], "--db", history["db"], "--json", "-")
    assert result.code == 0, result.err
    delta = json.loads(result.out)
    assert [s["input_hw"] for s in delta["sizes"]] == [[24, 24], [16, 32]]
    first = delta["sizes"][0]
    assert first["slowdown"] == pytest.approx(first["new_median_ms"] / first["base_median_ms"] - 1, abs=1e-3)
    assert sr_bench("compare", "999", ids[0], "--db", history["db"]).error().startswith("error: no run 999")


def test_compare_tells_a_rebuilt_identical_artifact_from_a_changed_one(sr_bench, history: dict,
                                                                       tmp_path: Path) -> None:
    # A second matrix run (a new process would do the same) exports ESPCN again, into a copy of the history.
    db = tmp_path / "history.sqlite"
    shutil.copy(history["db"], db)
    assert sr_bench("--models", MODELS.split(",")[0], "--scale", "3", "--targets", "cpu", "--sizes", "24x24",
                    "--runs", "3", "--warmup", "1", "--db", db, "--exporter", "legacy",
                    "--out-dir", tmp_path / "out").code == 0
    runs = runs_in(db)
    first, again = [r["id"] for r in runs if (r["model"], r["target"]) == ("espcn", "cpu")]
    fsrcnn = next(r["id"] for r in runs if (r["model"], r["target"]) == ("fsrcnn", "cpu"))

    rebuilt = sr_bench("compare", first, again, "--db", db, "--json", "-")
    assert rebuilt.code == 0, rebuilt.err
    assert json.loads(rebuilt.out)["artifact"]["status"] == "identical"
    assert json.loads(rebuilt.out)["artifact"]["rebuilt"] is True
    assert "artifact rebuilt, identical (sha256 " in rebuilt.err and "changed" not in rebuilt.err

    changed = sr_bench("compare", first, fsrcnn, "--db", db)
    assert changed.code == 0, changed.err
    assert re.search(r"artifact changed: sha256 [0-9a-f]{16} -> [0-9a-f]{16}", changed.out)
    assert "rebuilt, identical" not in changed.out


def _baseline(history: dict, tmp_path: Path, *, speed: float = 1.0, psnr: float = 0.0) -> Path:
    """The stored runs as a baseline file, with latencies scaled by ``speed`` and PSNR raised by ``psnr``."""
    runs = runs_in(history["db"])
    for run in runs:
        run["id"] = None
        run["psnr_y"] += psnr
        for size in run["sizes"]:
            size["inference"]["median_ms"] *= speed
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(runs))
    return path


def test_the_gate_passes_runs_against_themselves(sr_bench, history: dict, tmp_path: Path) -> None:
    result = sr_bench("gate", "--db", history["db"], "--baseline", _baseline(history, tmp_path),
                      "--max-slowdown", "10%", "--max-psnr-drop", "0.05")
    assert result.code == 0, result.err
    assert "gate passed" in result.out and result.out.count("worst latency change +0.0%") == 4


def test_the_gate_fails_on_a_planted_slowdown(sr_bench, history: dict, tmp_path: Path) -> None:
    # The baseline claims everything ran 3x faster: today's runs are +200 %.
    result = sr_bench("gate", "--db", history["db"], "--baseline", _baseline(history, tmp_path, speed=1 / 3),
                      "--max-slowdown", "10%")
    assert result.code == 1
    assert re.search(r"regression: .* at 16x32: .* \(\+200% > 10%\)", result.error())
    assert result.out.count("regression:") == 7  # the other 7 of 8 sizes, before the error line


def test_the_gate_fails_on_a_planted_psnr_drop(sr_bench, history: dict, tmp_path: Path) -> None:
    result = sr_bench("gate", "--db", history["db"], "--baseline", _baseline(history, tmp_path, psnr=0.2),
                      "--max-slowdown", "10%", "--max-psnr-drop", "0.05")
    assert result.code == 1 and "0.200 dB below the baseline (> 0.05 dB)" in result.error()


def test_the_gate_takes_a_run_number_as_baseline(sr_bench, history: dict) -> None:
    runs = runs_in(history["db"])
    espcn_cpu = next(r for r in runs if (r["model"], r["target"]) == ("espcn", "cpu"))
    result = sr_bench("gate", "--db", history["db"], "--baseline", espcn_cpu["id"], "--run", espcn_cpu["id"])
    assert result.code == 0, result.err
    bad = sr_bench("gate", "--db", history["db"], "--baseline", "x.json", "--max-slowdown", "ten")
    assert bad.code == 2 and "'ten' is not a percentage" in bad.error()


def test_a_broken_history_file_is_one_line(sr_bench, tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database at all" * 100)
    result = sr_bench("history", "--db", junk)
    assert result.code == 2 and "is not a sr-bench history" in result.error()


def test_the_report_is_markdown_and_self_contained_html(sr_bench, history: dict, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = sr_bench("report", "--db", history["db"], "--out", out)
    assert result.code == 0, result.err
    markdown, page = (out / "report.md").read_text(), (out / "report.html").read_text()
    assert markdown.count("| espcn x3 |") == 4 and "![PSNR vs latency](psnr-vs-latency.png)" in markdown
    for name in ("psnr-vs-latency", "psnr-vs-params", "latency-per-target", "comparison-x3"):
        assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert page.count('src="data:image/png;base64,') == 4 and "src=\"http" not in page and "<link" not in page
    with sqlite3.connect(history["db"]) as connection:  # the report only reads
        assert connection.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 4


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no headless Chromium to render the report (install the 'chromium' package: make ci-deps)")


def test_the_report_renders_in_headless_chromium(sr_bench, history: dict, tmp_path: Path) -> None:
    from PIL import Image

    browser = _chromium()
    out = tmp_path / "report"
    assert sr_bench("report", "--db", history["db"], "--out", out).code == 0
    page = (out / "report.html").read_text()
    # A probe copy reports, after load, how many images decoded to a real size.
    probe = out / "probe.html"
    probe.write_text(page.replace("</body>", "<script>window.addEventListener('load', () => {"
                                  "const imgs = [...document.images];"
                                  "const ok = imgs.filter(i => i.complete && i.naturalWidth > 0).length;"
                                  "document.body.insertAdjacentHTML('beforeend', "
                                  "`<pre id=probe>images ${ok}/${imgs.length}</pre>`);});</script></body>"))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
             "--virtual-time-budget=5000", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([browser, *flags, "--dump-dom", probe.as_uri()], capture_output=True, text=True,
                         timeout=120, check=False)
    assert "images 4/4" in dom.stdout, dom.stderr[-2000:]
    shot = tmp_path / "shot.png"
    subprocess.run([browser, *flags, f"--screenshot={shot}", "--window-size=1280,2400", (out / "report.html").as_uri()],
                   capture_output=True, timeout=120, check=False)
    pixels = Image.open(shot).convert("L")
    low, high = pixels.getextrema()
    assert high - low > 100  # not a blank page
    histogram = pixels.histogram()
    assert sum(histogram[:200]) > 0.02 * sum(histogram)  # text, tables and plots cover part of it
