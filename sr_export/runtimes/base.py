"""What every runtime plugin declares and does, and the runner every tool drives (after Polygraphy).

A *runtime* is one plugin: a :class:`Runtime` subclass whose class attributes
are its descriptor (what it consumes, the formats it reads and writes, its
precisions, its pip extra, its typed options, its device-side session) and
whose methods build artifacts and open them as runners.

A *runner* is one opened artifact (or model): :meth:`Runner.activate` loads
it, :meth:`Runner.infer` runs NCHW float32 batches in the model's data range
and records its own duration in :attr:`Runner.last_inference_time`,
:meth:`Runner.deactivate` frees it; a runner is its own context manager.
Parity checks, ``sr-bench eval`` and ``sr-bench speed`` only ever see runners,
so they work with any runtime.
"""

from __future__ import annotations

import importlib.util
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from sr_export.core.artifacts import Artifact
from sr_export.core.errors import MissingDependencyError, SrExportError, first_line
from sr_export.core.formats import Format
from sr_export.core.sizes import Size
from sr_export.runtimes.options import NoOptions, parse_options

if TYPE_CHECKING:
    from sr_export.models.loader import LoadedModel
    from sr_export.quantize.calibration_data import CalibrationSet


class Inferring(Protocol):
    """Anything with a name that maps NCHW float32 batches to outputs (a :class:`Runner`, or a test double)."""

    name: str

    def infer(self, batch: np.ndarray) -> np.ndarray: ...


class Runner(ABC):
    """One opened artifact: activate, infer, deactivate.

    Concrete runners load in :meth:`_activate` (their constructors activate, so
    a bad file fails where it is opened) and release in :meth:`_deactivate`.
    """

    name: str = "runner"
    # The LR sizes a runner with a bounded dynamic input takes (TensorRT's
    # shape profile): (smallest, largest). None: any size it takes at all.
    size_bounds: tuple[Size, Size] | None = None

    def __init__(self) -> None:
        self.is_active = False
        self.last_inference_time: float | None = None

    def activate(self) -> Runner:
        if not self.is_active:
            self._activate()
            self.is_active = True
        return self

    def deactivate(self) -> None:
        if self.is_active:
            self._deactivate()
            self.is_active = False

    def __enter__(self) -> Runner:
        return self.activate()

    def __exit__(self, *exc_info: object) -> None:
        self.deactivate()

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Run one NCHW float32 batch; return the NCHW float32 output. Times itself."""
        if not self.is_active:
            self.activate()
        started = time.perf_counter()
        try:
            output = self._infer(batch)
        except (SrExportError, KeyboardInterrupt, MemoryError):
            raise
        except Exception as exc:  # a runtime's own exception: the artifact (or its input) is at fault, not sr-export
            shape = "x".join(str(d) for d in getattr(batch, "shape", ()))
            raise SrExportError(f"{self.name} failed on a {shape} input: {first_line(exc)}; the artifact may be "
                                "damaged (re-export it) or the input outside what it takes") from exc
        self.last_inference_time = time.perf_counter() - started
        return output

    def _activate(self) -> None:  # noqa: B027 - most runners load in it, wrappers need not
        """Load what inference needs (a session, an interpreter)."""

    def _deactivate(self) -> None:  # noqa: B027
        """Release it."""

    @abstractmethod
    def _infer(self, batch: np.ndarray) -> np.ndarray:
        """Run one batch (the runner is active)."""


@dataclass(frozen=True)
class DeviceSession:
    """The device-side half of a runtime, for the self-contained runner sr-bench copies to a device.

    ``module`` names a module whose *file* is copied next to the runner; it may
    import only the standard library, numpy and the runtime's own package.
    ``cls`` is a class in it taking ``(artifact_path, threads, **params)``.
    """

    module: str
    cls: str
    params: Mapping[str, Any] = field(default_factory=dict)
    # What the session is given: the runtime's "artifact", or the "prepared" graph it builds its own
    # artifact from on the device (TensorRT: trtexec builds the engine there).
    takes: str = "artifact"

    def file(self) -> Path:
        spec = importlib.util.find_spec(self.module)
        if spec is None or spec.origin is None:
            raise SrExportError(f"the device session module {self.module} is not importable")
        return Path(spec.origin)


class Runtime(ABC):
    """A runtime plugin: its descriptor (class attributes) and its verbs (build, open, describe)."""

    name: ClassVar[str]
    label: ClassVar[str] = ""  # how people write it ("TensorRT"), for messages; default: the name
    description: ClassVar[str] = ""
    # What a build starts from: "onnx" (a proven ONNX export, see build) or "pytorch" (see from_model).
    consumes: ClassVar[str] = "onnx"
    reads: ClassVar[tuple[str, ...]] = ()  # formats (core.formats names) its runner opens
    writes: ClassVar[tuple[str, ...]] = ()  # formats its builds write
    formats: ClassVar[tuple[Format, ...]] = ()  # formats this plugin brings beyond sr_export.core.formats
    precisions: ClassVar[tuple[str, ...]] = ("fp32",)
    extra: ClassVar[str | None] = None  # pip extra that installs what it needs: sr-export[extra]
    packages: ClassVar[tuple[str, ...]] = ()  # import names its builds and runner need
    options: ClassVar[type] = NoOptions  # frozen dataclass read from a profile's [options]
    device_session: ClassVar[DeviceSession | None] = None
    fixed_size: ClassVar[bool] = False  # its artifacts take one input size each (one file per size)
    keeps_export: ClassVar[bool] = False  # a build from a model keeps the ONNX export beside its artifact
    # INT8 artifacts are also judged on the Y-PSNR they lose on the built-in images; False where running
    # them here is too slow for that (Core ML's numpy reference executor): output PSNR bounds only.
    dataset_check: ClassVar[bool] = True

    # --- descriptor helpers ------------------------------------------------

    def parse_options(self, values: Mapping[str, Any] | Any = None, *, where: str = "") -> Any:
        """``values`` (a mapping, or already this runtime's options) as its options dataclass."""
        if isinstance(values, self.options):
            return values
        return parse_options(self.options, values, runtime=self.label or self.name, where=where)

    def missing_packages(self) -> list[str]:
        return [name for name in self.packages if importlib.util.find_spec(name) is None]

    def require_packages(self) -> None:
        missing = self.missing_packages()
        if missing:
            raise MissingDependencyError(missing[0], self.extra, purpose=f"the {self.name} runtime")

    def check_precision(self, precision: str) -> None:
        if precision not in self.precisions:
            raise SrExportError(f"the {self.name} runtime runs {', '.join(self.precisions)}, not {precision}")

    # --- building ----------------------------------------------------------

    def prepare(self, onnx_artifact: Artifact, folder: Path, *, precision: str = "fp32", options: Any = None,
                calibration: CalibrationSet | None = None) -> Artifact:
        """The ONNX graph :meth:`build` compiles, when it is one a CPU can prove first (TensorRT's
        FP16 or QDQ graph). The default: the export itself."""
        return onnx_artifact

    def build(self, onnx_artifact: Artifact, output: Path | None, *, precision: str = "fp32", options: Any = None,
              calibration: CalibrationSet | None = None) -> Artifact:
        """Compile ``onnx_artifact`` for this runtime (runtimes that consume ONNX).

        ``output`` is the file to write, or a folder to write it in (None:
        beside the ONNX file); ``options`` are this runtime's options (a
        mapping or the dataclass); ``calibration`` feeds INT8 builds.
        """
        raise SrExportError(f"the {self.name} runtime converts from PyTorch, not from ONNX files; "
                            f"build it from the model (--model ...)")

    def from_model(self, model: LoadedModel, output: Path, *, precision: str = "fp32", shape: Size | None = None,
                   options: Any = None, calibration: CalibrationSet | None = None) -> Artifact:
        """Build ``model`` for this runtime into the folder ``output``.

        The default route: a verified ONNX export (dynamic unless ``shape``
        fixes the LR size), written beside, then :meth:`build`.
        """
        from sr_export.export.onnx import ExportOptions, save_export

        exported = save_export(model, ExportOptions(shape=shape), output)
        return self.build(exported, output, precision=precision, options=options, calibration=calibration)

    # --- running -----------------------------------------------------------

    @abstractmethod
    def load(self, artifact: Artifact, *, threads: int | None = None) -> Runner:
        """Open ``artifact`` for inference (at the sizes the artifact itself takes)."""

    @abstractmethod
    def describe(self) -> dict[str, str]:
        """Runtime versions and device, for reports."""

    def check_sizes(self, artifact: Artifact) -> tuple[Size, ...] | None:
        """The LR sizes an artifact of this runtime is best checked at (None: the usual parity sizes)."""
        return None

    def device_job(self, artifact: Artifact, options: Any) -> dict[str, Any]:
        """What the device session needs beyond the artifact (e.g. TensorRT's trtexec command lines)."""
        return {}

    # --- runtime versions ------------------------------------------------------

    # Python source a device runs to say which release of this runtime it has: one line "<package> <version>"
    # (None: the device is not asked before a run).
    version_probe: ClassVar[str | None] = None

    def file_requirements(self, path: Path) -> dict[str, Any]:
        """What a file of this runtime needs (``min_runtime``, ``set_by``), computed from the file itself: for
        files whose metadata does not record it ({} where the file cannot tell)."""
        return {}

    def too_old_for(self, requirements: Mapping[str, Any], found: str) -> str | None:
        """Why a device whose runtime reports ``found`` (the probe's line) cannot run a file that needs
        ``requirements``; None when it can or cannot be told."""
        return None
