"""The README's Python example runs as it is printed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def readme_python_example() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Python\n"):]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "the README's Python section has no python block"
    return match.group(1)


def test_the_python_example_exports_builds_checks_evaluates_and_times(shared: Path, tmp_path: Path) -> None:
    code = readme_python_example()
    assert 'api.build(onnx_file, "cpu"' in code and "../shared/datasets/Set5" in code
    work = tmp_path / "work"
    work.mkdir()
    (tmp_path / "shared").symlink_to(shared)  # the README runs beside ../shared, as a checkout does
    (work / "example.py").write_text(code, encoding="utf-8")
    done = subprocess.run([sys.executable, "example.py"], cwd=work, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "SR_EXPORT_WEIGHTS_DIR": str(shared / "weights")})
    assert done.returncode == 0, done.stderr[-3000:]
    line = done.stdout.strip().splitlines()[-1]
    parity, psnr, ssim, speedup = (float(v) for v in re.findall(r"(\d+\.\d+)", line))
    assert parity > 80 and 37.5 < psnr < 38.5 and 0.95 < ssim < 0.97 and speedup > 0
    assert (work / "imdn_x2.onnx").is_file() and (work / "build" / "imdn_x2.onnx").is_file()
