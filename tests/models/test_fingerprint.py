"""A module's fingerprint changes with anything its results depend on: weights, settings, structure and the
code that defines it; two loads of the same model give the same one."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from sr_export.models.fingerprint import module_fingerprint
from sr_export.models.loader import ModelRequest, load_model

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _espcn(path: Path = FIXTURES / "espcn.py", nudge: float = 0.0, **kwargs):
    module = load_model(ModelRequest(f"{path}:ESPCN", scale=2, kwargs={"width": 8, **kwargs})).module
    with torch.no_grad():
        module.last_bias.add_(nudge)
    return module


def test_the_same_model_loaded_twice_has_one_fingerprint() -> None:
    assert module_fingerprint(_espcn()) == module_fingerprint(_espcn())


def test_weights_structure_and_settings_change_it() -> None:
    base = module_fingerprint(_espcn())
    assert base != module_fingerprint(_espcn(nudge=1e-7))
    assert base != module_fingerprint(_espcn(width=16))
    module = _espcn()
    module.act = torch.nn.ReLU()
    assert base != module_fingerprint(module)
    module = _espcn()
    module.mid.padding_mode = "reflect"  # a setting, no tensor changes
    assert base != module_fingerprint(module)


def test_the_defining_source_file_changes_it(tmp_path: Path) -> None:
    copy = tmp_path / "espcn_copy.py"
    shutil.copy(FIXTURES / "espcn.py", copy)
    before = module_fingerprint(_espcn(copy))
    copy.write_text(copy.read_text() + "\n# an edit that could change forward()\n")
    assert before != module_fingerprint(_espcn(copy))
