"""What both command-line tools share: model arguments, error handling, output.

Nothing heavy is imported at module level: ``sr-export --help`` must not pay
for torch.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from sr_export.core.errors import SrExportError, SrExportWarning
from sr_export.export.budget import MAX_EXPORT_TIMEOUT_S

if TYPE_CHECKING:
    from rich.console import Console

    from sr_export.models.loader import ModelRequest

DEBUG_ENV = "SR_EXPORT_DEBUG"


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one 'error:' line like every other error."""

    def error(self, message: str) -> NoReturn:
        _print_error(f"{_option_first(message)} (see {self.prog} --help)")
        raise SystemExit(2)


# The argument types below word their refusals to follow the option's name ("must be a whole number ...",
# "size 0x0: sizes must be positive"); argparse puts "argument --threads: " before them, which becomes
# "--threads must be ..." and "--shape 0x0: sizes must be positive".
_TYPED_REFUSAL = re.compile(r"argument (?P<option>[^:]+): (?:size )?(?P<rest>(?:must |'|[-+0-9]).*)", re.S)


def _option_first(message: str) -> str:
    match = _TYPED_REFUSAL.fullmatch(message)
    return f"{match['option']} {match['rest']}" if match else message


def add_model_arguments(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    group = parser.add_argument_group("model")
    group.add_argument(
        "--model",
        required=required,
        help="zoo name (see `sr-export models`), path/to/file.py:ClassName, package.module:ClassName "
        "or a TorchScript file",
    )
    group.add_argument("--app-dir", metavar="DIR",
                       help="folder a package.module:ClassName model is imported from (default: the current folder)")
    group.add_argument("--scale", type=scale_argument, help="upscaling factor (default: read off the checkpoint, else 4)")
    group.add_argument("--weights", help="checkpoint path (.pth, .safetensors, or .caffemodel for idn), "
                       "or 'official' for the authors' published weights")
    group.add_argument("--prototxt", help="deploy graph of a .caffemodel (default: the one beside it)")
    group.add_argument("--model-kwargs", default="{}", help="JSON object of constructor arguments")
    group.add_argument("--data-range", type=data_range_argument, help="input/output range the model expects: 1 or 255")
    group.add_argument("--in-channels", type=channels_argument, help="input channels (3 RGB, 1 luma)")
    group.add_argument("--pad-to", type=multiple_argument, metavar="N",
                       help="pad inputs (reflect) to a multiple of N and crop outputs back, for models that "
                       "only run on such sizes (detected for your own models)")


def add_export_arguments(parser: argparse.ArgumentParser, *, shape: bool = True) -> None:
    """How a model is traced to ONNX: the same flags on every command that exports."""
    group = parser.add_argument_group("export")
    group.add_argument("--exporter", choices=("auto", "dynamo", "legacy"), default="auto",
                       help="ONNX exporter: auto (default) tries dynamo, then legacy, and keeps the first graph "
                       "proven right at several sizes")
    group.add_argument("--opset", type=opset_argument, default=18, help="ONNX opset (default 18)")
    if shape:
        sizes = group.add_mutually_exclusive_group()
        sizes.add_argument("--shape", type=size_argument, metavar="HxW",
                           help="fixed LR input size (other sizes then run tiled)")
        sizes.add_argument("--dynamic", action="store_true", help="dynamic batch/height/width (the default)")
    group.add_argument("--no-simplify", action="store_true", help="skip onnxsim")
    group.add_argument("--export-timeout", type=export_timeout_argument, default=None, metavar="SECONDS",
                       help="seconds each exporter attempt may take before it is stopped and auto moves on to the "
                       "next (default 300)")


def export_options_from_args(args: argparse.Namespace) -> Any:
    from sr_export.export.onnx import ExportOptions

    timeout = {} if args.export_timeout is None else {"timeout": args.export_timeout}
    return ExportOptions(opset=args.opset, shape=getattr(args, "shape", None), simplify=not args.no_simplify,
                         exporter=args.exporter, **timeout)


def export_timeout_keyword(seconds: float | None) -> dict[str, float]:
    """``--export-timeout`` as the pipeline's ``export_timeout`` keyword, only where given (else its default)."""
    return {} if seconds is None else {"export_timeout": seconds}


def add_tiling_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tile-overlap", type=overlap_argument, metavar="PX",
                        help="for fixed-size artifacts: LR pixels of context around each tile "
                        "(default: the model's measured receptive field, at most a quarter tile)")


def request_from_args(args: argparse.Namespace) -> ModelRequest:
    from sr_export.models.loader import ModelRequest

    try:
        kwargs = json.loads(args.model_kwargs or "{}")
    except json.JSONDecodeError as exc:
        raise SrExportError(f"--model-kwargs is not valid JSON ({exc.msg}); e.g. --model-kwargs '{{\"nf\": 64}}'") from exc
    if not isinstance(kwargs, dict):
        raise SrExportError("--model-kwargs must be a JSON object, e.g. '{\"nf\": 64}'")
    return ModelRequest(
        model=args.model,
        scale=args.scale,
        weights=args.weights,
        kwargs=kwargs,
        data_range=args.data_range,
        in_channels=args.in_channels,
        pad_to=args.pad_to,
        prototxt=args.prototxt,
        app_dir=args.app_dir,
    )


def load_requested_model(args: argparse.Namespace, console: Console) -> Any:
    from sr_export.models.loader import load_model

    with console.status(f"loading {args.model}"):
        model = load_model(request_from_args(args))
    for note in model.notes:
        warn(console, note)
    return model


def size_argument(text: str) -> tuple[int, int]:
    """The one size parser (sr_export.core.sizes) as an argparse type: a bad size is one line."""
    from sr_export.core.sizes import parse_size

    try:
        return parse_size(text)
    except SrExportError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def sizes_argument(text: str) -> list[tuple[int, int]]:
    """'64x64,45x71'; an empty list or item ('32x32,,') is refused, not skipped."""
    from sr_export.core.sizes import parse_sizes

    try:
        return parse_sizes(text)
    except SrExportError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("size list ")) from exc


def chw_argument(text: str) -> str:
    """'3x256x256' or '256x256', checked now (the channels default to the model's, known only once it is
    loaded); the text is kept."""
    from sr_export.core.sizes import parse_chw

    try:
        parse_chw(text, 1)
    except SrExportError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return text


def name_list(text: str) -> list[str]:
    """'a,b' -> ['a', 'b']; an empty list or an empty item ('a,,b', ',') is refused, not skipped."""
    names = [part.strip() for part in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"must be names separated by single commas (e.g. a,b), got {text!r}")
    return names


@dataclass(frozen=True)
class WholeNumber:
    """An argparse type for counts, sizes in MB, run numbers: whole numbers in ``[minimum, maximum]``."""

    minimum: int
    maximum: int

    def __call__(self, text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            value = None
        if value is None or not self.minimum <= value <= self.maximum:
            raise argparse.ArgumentTypeError(
                f"must be a whole number from {self.minimum} to {self.maximum}, got {text!r}")
        return value


@dataclass(frozen=True)
class FiniteNumber:
    """An argparse type for thresholds and ranges: a finite number in ``[minimum, maximum]`` (``above``: a
    strict lower bound). NaN and infinities are refused: every comparison with NaN is false, so a NaN
    threshold passes everything."""

    minimum: float = -math.inf
    maximum: float = math.inf
    above: bool = False

    def __call__(self, text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        low_ok = value > self.minimum if self.above else value >= self.minimum
        if not math.isfinite(value) or not low_ok or value > self.maximum:
            raise argparse.ArgumentTypeError(f"must be {self.describe()}, got {text!r}")
        return value

    def describe(self) -> str:
        low = f"{'>' if self.above else '>='} {self.minimum:g}" if math.isfinite(self.minimum) else ""
        high = f"<= {self.maximum:g}" if math.isfinite(self.maximum) else ""
        return "a finite number " + " and ".join(p for p in (low, high) if p)


def percent_argument(text: str) -> float:
    """'10%' or '0.1' -> 0.10, finite and >= 0 (a NaN bound would pass every regression)."""
    from sr_export.bench.compare import parse_percent

    try:
        return parse_percent(text)
    except SrExportError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a percentage such as 10% or a fraction such as 0.1 (finite, >= 0)") from None


# Bounds of the numeric options: wide enough for any real use, narrow enough that a typo fails in one line
# before a model is loaded, not as an allocation failure or an hour-long loop.
MAX_COUNT = 1_000_000
threads_argument = WholeNumber(1, 1024)
runs_argument = WholeNumber(1, MAX_COUNT)
count_argument = WholeNumber(0, MAX_COUNT)  # warm-up runs, patches: 0 is allowed (none, or skip)
scale_argument = WholeNumber(1, 16)
opset_argument = WholeNumber(7, 30)
channels_argument = WholeNumber(1, 64)
multiple_argument = WholeNumber(1, 1024)  # --pad-to
overlap_argument = WholeNumber(0, 16384)  # --tile-overlap, LR px (the largest side sr-export handles)
run_number_argument = WholeNumber(1, 2**63 - 1)  # SQLite's INTEGER
data_range_argument = FiniteNumber(0.0, 65535.0, above=True)
export_timeout_argument = FiniteNumber(0.0, MAX_EXPORT_TIMEOUT_S, above=True)  # seconds per exporter attempt


def add_output_argument(parser: argparse.ArgumentParser, help_text: str, *, default: Path | None = None,
                        old_names: tuple[str, ...] = (), suppress_default: bool = False) -> None:
    """``-o/--output`` for the file or folder a command writes, on every command; earlier spellings
    (``--out-dir``, ``--out``) keep working, unlisted."""
    value_default = argparse.SUPPRESS if suppress_default else default
    parser.add_argument("-o", "--output", type=Path, default=value_default, metavar="PATH", help=help_text)
    add_force_argument(parser)
    for name in old_names:
        parser.add_argument(name, dest="output", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def add_runtime_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runtime", metavar="NAME",
                        help="runtime to run the artifact with, among those that read its format (default: the one "
                        "it was built for; see `sr-export runtimes`)")


# Tables are wide; when output goes to a file or CI log, do not wrap them at 80 columns.
_LOG_WIDTH = 200


def stderr_console() -> Console:
    """The console for progress, warnings and tables; its ``status`` prints timed lines when stderr is not a
    terminal (sr_export.cli.progress)."""
    from sr_export.cli.progress import LoggingConsole

    return LoggingConsole(stderr=True, highlight=False, width=None if sys.stderr.isatty() else _LOG_WIDTH)


def stdout_console() -> Console:
    from sr_export.cli.progress import LoggingConsole

    return LoggingConsole(highlight=False, width=None if sys.stdout.isatty() else _LOG_WIDTH)


def warn(console: Console, message: str) -> None:
    console.print(f"[yellow]warning:[/yellow] {message}", soft_wrap=True)


def emit_json(data: Any, destination: str | None, console: Console, *, force: bool = False) -> None:
    """Write ``data`` as JSON to a file (atomically) or to stdout for '-'; a file sr-export did not write is
    replaced only with ``force``."""
    if destination is None:
        return
    from sr_export.core.io import _json_default, write_json_atomic

    if destination == "-":
        sys.stdout.write(json.dumps(data, indent=2, default=_json_default) + "\n")
    else:
        write_json_atomic(destination, data, force=force)
        console.print(f"wrote {destination}")


def add_json_argument(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--json", nargs="?", const="-", metavar="PATH", help=f"write the {what} as JSON to PATH (stdout if no PATH)"
    )
    add_force_argument(parser)


def add_force_argument(parser: argparse.ArgumentParser) -> None:
    """``--force``, on every command that writes files (added once, by whichever output option comes first)."""
    if "--force" not in parser._option_string_actions:
        parser.add_argument("--force", action="store_true",
                            help="replace output files that sr-export did not write (never a device or a pipe)")


def progress_bar(console: Console) -> Any:
    """A transient progress bar on a terminal; progress lines (count and time, every ~10 s) anywhere else."""
    from sr_export.cli import progress

    return progress.progress_bar(console)


def run(build_parser: Callable[[], argparse.ArgumentParser], argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen handler; every failure becomes one line on stderr.

    This is the one place exceptions become exit statuses (:func:`exit_status`).
    ``SR_EXPORT_DEBUG=1`` adds the traceback; it never changes the status.
    """
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exit_:  # a usage error (its one line printed), --help, --version: a status, as below
            return exit_.code if isinstance(exit_.code, int) else 0 if exit_.code is None else 2
        check_named_outputs(args)
        with one_line_warnings():
            return args.handler(args)
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - every failure ends as one line and a status
        code, message = exit_status(exc)
        if os.environ.get(DEBUG_ENV):
            shown = exc.__cause__ if isinstance(exc, SrExportError) and exc.__cause__ is not None else exc
            traceback.print_exception(shown)
        _print_error(message)
        return code


@contextlib.contextmanager
def one_line_warnings() -> Iterator[None]:
    """sr-export's own warnings (:class:`SrExportWarning`) print as ``warning: ...``, one line like :func:`warn`'s,
    not as Python's ``file:line: UserWarning`` plus a source line; other libraries' warnings keep Python's format.

    Only the text changes (``warnings.formatwarning``): a caller that records warnings instead of printing them
    (``pytest.warns``) still gets the warning object itself.
    """
    original = warnings.formatwarning

    def formatted(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  line: str | None = None) -> str:
        if issubclass(category, SrExportWarning):
            return f"warning: {message}\n"
        return original(message, category, filename, lineno, line)

    warnings.formatwarning = formatted
    try:
        yield
    finally:
        warnings.formatwarning = original


# Options that name a file a command writes at its end: checked before any work.
_REPORT_OPTIONS = ("json", "junit", "plot")


def check_named_outputs(args: argparse.Namespace) -> None:
    """Refuse, before any work, report files that must not be replaced, and an ``-o`` that is a device or pipe
    (what ``-o`` must be, a file or a folder, each command checks where it knows)."""
    from sr_export.core.provenance import check_output

    force = bool(getattr(args, "force", False))
    for name in _REPORT_OPTIONS:
        value = getattr(args, name, None)
        if value is not None and str(value) != "-":
            check_output(Path(value), force=force)
    output = getattr(args, "output", None)
    if output is None or not Path(output).exists():
        return
    if Path(output).is_file():  # a file the command would replace (or must not write into)
        check_output(Path(output), force=force)
    elif not Path(output).is_dir():
        raise SrExportError(f"cannot write {output}: it is not a regular file (a device, pipe or socket); "
                            "choose a file or folder path (-o)")


def exit_status(exc: BaseException) -> tuple[int, str]:
    """The exit status and the one-line message for ``exc``: 2 bad input or environment, 1 a failed check,
    4 a runtime missing here, 130 interrupted, 3 a bug in sr-export."""
    if isinstance(exc, SrExportError):
        return exc.exit_code, str(exc)
    if isinstance(exc, KeyboardInterrupt):
        return 130, "interrupted"
    if isinstance(exc, MemoryError):
        return 2, "out of memory; use smaller sizes (--shape, --sizes) or a machine with more memory"
    if isinstance(exc, OSError):  # disk full, permissions, a folder where a file should be
        names = [str(n) for n in (exc.filename, exc.filename2) if n]
        where = f": {' -> '.join(names)}" if names else ""
        return 2, f"{exc.strerror or exc}{where}"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return 3, f"internal error: {type(exc).__name__}: {first} (set {DEBUG_ENV}=1 for the traceback)"


def _print_error(message: str) -> None:
    sys.stderr.write(f"error: {' '.join(message.split())}\n")


def existing_path(text: str) -> Path:
    """A file or a folder artifact (an .mlpackage) that exists."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"not found: {text}")
    return path


def existing_file(text: str) -> Path:
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; give a file")
    if path.exists() and not path.is_file():
        raise argparse.ArgumentTypeError(f"{text} is not a regular file (a device, pipe or socket); give a file")
    if not path.exists():
        raise argparse.ArgumentTypeError(f"file not found: {text}")
    return path
