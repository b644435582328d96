"""A user's broken model never ends in a traceback or exit 3: one line, the contract's exit status, no file."""

from __future__ import annotations

from pathlib import Path

import pytest

FAULTY = Path(__file__).resolve().parents[1] / "fixtures" / "faulty.py"

# (class, exit status, what the line must say)
FAULTS = [
    ("RaisesInForward", 2, "this model is broken on purpose"),
    ("ReturnsTuple", 2, "returns a tuple"),
    ("WrongChannels", 2, "2 channels"),
    ("NotScaleTimesInput", 2, "not an integer upscaling"),
    ("NeedsArgument", 2, "--model-kwargs"),
    ("not_a_module_class", 2, "is not a torch.nn.Module class"),
]

COMMANDS = {
    "sr-export onnx": ("sr_export", ["onnx", "-o", "{out}/model.onnx"]),
    "sr-bench profile": ("sr_bench", ["profile", "--json", "{out}/profile.json"]),
    "sr-bench eval": ("sr_bench", ["eval", "--dataset", "builtin", "--json", "{out}/eval.json"]),
    "sr-bench speed": ("sr_bench", ["speed", "--sizes", "32x32", "--json", "{out}/speed.json"]),
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(("cls", "code", "message"), FAULTS)
def test_broken_model_gives_one_line_and_leaves_nothing(
    cls: str, code: int, message: str, command: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    fixture, args = COMMANDS[command]
    invoke = request.getfixturevalue(fixture)
    args = [a.format(out=tmp_path) for a in args]
    result = invoke(args[0], "--model", f"{FAULTY}:{cls}", "--scale", "2", *args[1:])
    assert result.code == code, result.err
    assert message in result.error()
    assert list(tmp_path.iterdir()) == []


def test_debug_variable_keeps_the_traceback(tmp_path: Path, sr_export, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SR_EXPORT_DEBUG", "1")
    result = sr_export("onnx", "--model", f"{FAULTY}:RaisesInForward", "--scale", "2", "-o", tmp_path / "m.onnx")
    assert result.code == 2
    assert "Traceback" in result.err and "this model is broken on purpose" in result.err
