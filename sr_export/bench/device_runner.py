"""Times one artifact on the machine it runs on; the file sr-bench copies to a device.

Self-contained on purpose: it needs the Python standard library, numpy and
the device's own runtime (onnxruntime, ai_edge_litert / tflite_runtime, or
TensorRT's trtexec), never sr_export, so a bare Jetson or phone board can run
it. It is also what ``sr-bench`` runs for local targets, so local and remote
numbers come from the same code.

    python device_runner.py job.json

Progress goes to stderr, one ``@progress`` line per step; the result is one
JSON object on stdout, printed only at the end, so a run cut short leaves no
result that could be mistaken for a complete one.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time

try:  # 'resource' is Unix-only; peak RSS is then reported as unknown.
    import resource
except ImportError:  # pragma: no cover
    resource = None  # type: ignore[assignment]


class JobError(Exception):
    """Something the user must fix on the device (missing runtime, unreadable artifact)."""


def progress(text):
    sys.stderr.write(f"@progress {text}\n")
    sys.stderr.flush()


def peak_rss_mb():
    if resource is None:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def stats(samples_s):
    import numpy as np

    values = np.asarray(samples_s, dtype=np.float64) * 1e3
    return {
        "runs": int(values.size),
        "min_ms": round(float(values.min()), 4),
        "median_ms": round(float(np.median(values)), 4),
        "mean_ms": round(float(values.mean()), 4),
        "p90_ms": round(float(np.percentile(values, 90)), 4),
        "p99_ms": round(float(np.percentile(values, 99)), 4),
        "max_ms": round(float(values.max()), 4),
    }


def _read(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError:
        return None


def _command(args, timeout=5.0):
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (done.stdout or done.stderr).strip() or None


def _tegrastats_sample():
    """One tegrastats line (Jetson): RAM, CPU and GPU load, clocks, temperatures, power rails."""
    tool = shutil.which("tegrastats")
    if not tool:
        return None
    try:
        proc = subprocess.Popen([tool, "--interval", "200"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    except OSError:
        return None
    try:
        line = proc.stdout.readline().strip() if proc.stdout else ""
    finally:
        proc.kill()
        proc.wait()
    return line or None


def device_facts(runtime_versions):
    import numpy as np

    facts = {
        "hostname": platform.node(),
        "system": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cpu_count": os.cpu_count(),
    }
    cpuinfo = _read("/proc/cpuinfo") or ""
    for key in ("model name", "Hardware", "Model"):
        match = re.search(rf"^{key}\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
        if match:
            facts["cpu"] = match.group(1).strip()
            break
    else:
        facts["cpu"] = platform.processor() or platform.machine()
    meminfo = re.search(r"^MemTotal:\s*(\d+) kB", _read("/proc/meminfo") or "", re.MULTILINE)
    if meminfo:
        facts["memory_gb"] = round(int(meminfo.group(1)) / 1024 / 1024, 1)
    model = _read("/proc/device-tree/model")
    if model:
        facts["board"] = model.rstrip("\x00")
    tegra = _read("/etc/nv_tegra_release")
    if tegra:
        facts["l4t"] = tegra.splitlines()[0]
    if shutil.which("nvpmodel"):
        facts["nvpmodel"] = _command(["nvpmodel", "-q"])
    tegrastats = _tegrastats_sample()
    if tegrastats:
        facts["tegrastats"] = tegrastats
    governor = _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    if governor:
        facts["cpu_governor"] = governor
    facts.update(runtime_versions)
    return facts


# Pre- and post-processing as a video pipeline does it: 8-bit HWC frame in,
# 8-bit HWC frame out. End-to-end time includes both; inference-only does not.
def make_frame(height, width, channels):
    import numpy as np

    rows = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    cols = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    base = 0.5 + 0.25 * np.sin(12 * rows) * np.cos(9 * cols) + 0.2 * rows * cols
    noise = np.random.default_rng(0).random((height, width, channels), dtype=np.float32) * 0.1
    frame = np.clip(base[:, :, None] + noise, 0, 1) * 255
    return frame.round().astype(np.uint8)


def preprocess(frame, data_range, nhwc):
    import numpy as np

    batch = frame.astype(np.float32) * (data_range / 255.0)
    batch = batch[None] if nhwc else batch.transpose(2, 0, 1)[None]
    return np.ascontiguousarray(batch)


def postprocess(output, data_range, nhwc):
    import numpy as np

    image = output[0] if nhwc else output[0].transpose(1, 2, 0)
    return (np.clip(image, 0, data_range) * (255.0 / data_range)).round().astype(np.uint8)


class OnnxRuntimeSession:
    nhwc = False

    def __init__(self, path, threads):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise JobError(f"onnxruntime is not installed for {sys.executable} on the device ({exc})") from exc
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.versions = {"runtime": f"onnxruntime {ort.__version__}", "providers": "CPUExecutionProvider"}

    def prepare(self, height, width):
        return None

    def infer(self, batch):
        return self.session.run(None, {self.input_name: batch})[0]


class LiteRtSession:
    nhwc = True

    def __init__(self, path, threads):
        interpreter_class, version = None, ""
        try:
            from ai_edge_litert.interpreter import Interpreter as interpreter_class  # noqa: N813

            version = "ai_edge_litert"
        except ImportError:
            try:
                from tflite_runtime.interpreter import Interpreter as interpreter_class  # noqa: N813

                version = "tflite_runtime"
            except ImportError as exc:
                raise JobError("neither ai_edge_litert nor tflite_runtime is installed for "
                               f"{sys.executable} on the device") from exc
        self.interpreter = interpreter_class(model_path=path, num_threads=threads or None)
        detail = self.interpreter.get_input_details()[0]
        self.nhwc = int(detail["shape"][-1]) in (1, 3)
        self.input_index, self.shape = detail["index"], tuple(int(v) for v in detail["shape"])
        self.versions = {"runtime": version}

    def prepare(self, height, width):
        shape = (1, height, width, self.shape[-1]) if self.nhwc else (1, self.shape[1], height, width)
        if shape != self.shape:
            try:
                self.interpreter.resize_tensor_input(self.input_index, list(shape), strict=False)
            except Exception as exc:  # noqa: BLE001 - the runtime's own message says why
                raise JobError(f"the TFLite artifact takes {self.shape}, not {shape}: {exc}") from exc
        self.interpreter.allocate_tensors()
        self.shape = shape

    def infer(self, batch):
        self.interpreter.set_tensor(self.input_index, batch)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.interpreter.get_output_details()[0]["index"])


def run_session(job, session):
    """Time inference alone and the whole frame pipeline at every size."""
    results = []
    channels, data_range, scale = job["in_channels"], job["data_range"], job["scale"]
    for height, width in job["sizes"]:
        label = f"{height}x{width}"
        session.prepare(height, width)
        frame = make_frame(height, width, channels)
        batch = preprocess(frame, data_range, session.nhwc)
        for index in range(job["warmup"]):
            output = session.infer(batch)
            progress(f"{label} warm-up {index + 1}/{job['warmup']}")
        inference, end_to_end = [], []
        for index in range(job["runs"]):
            start = time.perf_counter()
            output = session.infer(batch)
            inference.append(time.perf_counter() - start)
            start = time.perf_counter()
            postprocess(session.infer(preprocess(frame, data_range, session.nhwc)), data_range, session.nhwc)
            end_to_end.append(time.perf_counter() - start)
            progress(f"{label} run {index + 1}/{job['runs']}")
        out_hw = list(output.shape[1:3] if session.nhwc else output.shape[2:4])
        results.append(size_result((height, width), out_hw, inference, end_to_end, scale))
    return results


def size_result(input_hw, output_hw, inference_s, end_to_end_s, scale):
    inference = stats(inference_s)
    end_to_end = stats(end_to_end_s) if end_to_end_s else None
    megapixels = output_hw[0] * output_hw[1] / 1e6
    return {
        "input_hw": list(input_hw),
        "output_hw": list(output_hw),
        "scale": scale,
        "inference": inference,
        "end_to_end": end_to_end,
        "fps": round(1e3 / inference["median_ms"], 3),
        "output_mpix_per_s": round(megapixels * 1e3 / inference["median_ms"], 4),
        "peak_rss_mb": peak_rss_mb(),
    }


def find_trtexec():
    for candidate in (shutil.which("trtexec"), "/usr/src/tensorrt/bin/trtexec", "/usr/local/tensorrt/bin/trtexec"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise JobError("trtexec is not on PATH nor in /usr/src/tensorrt/bin on the device (install TensorRT / JetPack)")


def run_trtexec(job):
    """TensorRT through trtexec: the engine is built on the device from the ONNX file, then timed."""
    trtexec = find_trtexec()
    version = _command([trtexec, "--help"], timeout=30) or ""
    match = re.search(r"TensorRT v?(\d+)", version)
    versions = {"runtime": f"TensorRT (trtexec) {match.group(1) if match else 'unknown'}"}
    results = []
    for height, width in job["sizes"]:
        label = f"{height}x{width}"
        times_file = os.path.abspath(f"times-{height}x{width}.json")
        shape = f"{job['input_name']}:1x{job['in_channels']}x{height}x{width}"
        args = [trtexec, f"--onnx={job['artifact']}", f"--shapes={shape}", f"--iterations={job['runs']}",
                "--warmUp=500", "--avgRuns=1", "--duration=0", f"--exportTimes={times_file}"]
        if job["precision"] in ("fp16", "int8"):
            args.append("--fp16")
        if job["precision"] == "int8":
            args.append("--int8")
        progress(f"{label} building and timing a TensorRT engine (trtexec)")
        done = subprocess.run(args, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = [line for line in (done.stdout + done.stderr).splitlines() if "ERROR" in line] or ["(no ERROR line)"]
            raise JobError(f"trtexec failed at {label}: {tail[-1].strip()}")
        with open(times_file, encoding="utf-8") as handle:
            times = json.load(handle)
        compute = [t["computeMs"] / 1e3 for t in times]
        latency = [t["latencyMs"] / 1e3 for t in times]
        memory = re.search(r"GPU Memory:?\s*([\d.]+)\s*MiB", done.stdout)
        result = size_result((height, width), [height * job["scale"], width * job["scale"]], compute, latency,
                             job["scale"])
        result["end_to_end_note"] = "host-to-device copy + compute + device-to-host copy (trtexec latencyMs)"
        if memory:
            result["device_memory_mb"] = float(memory.group(1))
        results.append(result)
        progress(f"{label} done")
    return versions, results


def run_job(job):
    artifact = job["artifact"]
    if not os.path.isfile(artifact):
        raise JobError(f"artifact {artifact} is missing on the device")
    if job["runtime"] == "trtexec":
        versions, sizes = run_trtexec(job)
    else:
        session_class = {"onnxruntime": OnnxRuntimeSession, "tflite": LiteRtSession}.get(job["runtime"])
        if session_class is None:
            raise JobError(f"the device runner has no runtime '{job['runtime']}'")
        progress(f"loading {os.path.basename(artifact)} with {job['runtime']}")
        session = session_class(artifact, job.get("threads"))
        versions, sizes = session.versions, run_session(job, session)
    return {"ok": True, "device": device_facts(versions), "sizes": sizes,
            "conditions": {"warmup": job["warmup"], "runs": job["runs"], "threads": job.get("threads"),
                           "precision": job["precision"], "runtime": job["runtime"]}}


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: device_runner.py job.json\n")
        return 2
    try:
        import numpy  # noqa: F401
    except ImportError:
        print(json.dumps({"ok": False, "error": f"numpy is not installed for {sys.executable} on the device"}))
        return 3
    with open(argv[1], encoding="utf-8") as handle:
        job = json.load(handle)
    os.chdir(os.path.dirname(os.path.abspath(argv[1])))
    try:
        result = run_job(job)
    except JobError as exc:
        print(json.dumps({"ok": False, "error": str(exc)}))
        return 3
    except Exception as exc:  # noqa: BLE001 - whatever the runtime raises, report it as one line
        text = str(exc).strip().splitlines()
        print(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {text[0] if text else ''}"}))
        return 3
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
