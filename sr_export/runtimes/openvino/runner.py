"""Running an OpenVINO IR in-process: the device session's own compile step, any LR size."""

from __future__ import annotations

import numpy as np

from sr_export.core.artifacts import Artifact
from sr_export.core.errors import SrExportError
from sr_export.runtimes.base import Runner
from sr_export.runtimes.openvino.device import OpenVinoSession, ir_info


class OpenVinoRunner(Runner):
    """One IR compiled for the device it was proven on (recorded in its .xml; CPU for IRs made elsewhere),
    at the precision its metadata names (BF16 through the inference-precision hint)."""

    def __init__(self, artifact: Artifact, threads: int | None = None) -> None:
        super().__init__()
        self.artifact = artifact
        self.threads = threads
        self.activate()
        self.name = f"openvino-{self.device.lower()} {artifact.metadata.precision}"

    def _activate(self) -> None:
        path = str(self.artifact.path)
        try:
            self.device = ir_info(path).get("device") or "CPU"
            self._session = OpenVinoSession(path, self.threads, device=self.device,
                                            precision=self.artifact.metadata.precision)
        except RuntimeError as exc:  # the session's own one-line reasons (missing .bin, absent device, no BF16)
            raise SrExportError(str(exc)) from exc
        self.facts = self._session.versions

    def _deactivate(self) -> None:
        del self._session

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        return self._session.infer(np.ascontiguousarray(batch, np.float32))
