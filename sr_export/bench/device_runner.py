"""Times one artifact on the machine it runs on; the file sr-bench copies to a device.

Self-contained on purpose: it needs the Python standard library and numpy,
never sr_export, so a bare Jetson or phone board can run it. The runtime's
own half comes with it: each runtime plugin declares a *device session*, a
module file (standard library, numpy and that runtime only) that sr-bench
copies beside this one; the job names it and its class. A session has
``versions`` (a dict for the record), ``nhwc``, ``prepare(height, width)`` and
``infer(batch)``, or its own ``benchmark(height, width, warmup, runs, job, harness)``
when the runtime times itself (trtexec). It is also what ``sr-bench`` runs
for local targets, so local and remote numbers come from the same code.

    python device_runner.py job.json

Progress goes to stderr, one ``@progress`` line per step; the result is one
JSON object on stdout, printed only at the end, so a run cut short leaves no
result that could be mistaken for a complete one.
"""

from __future__ import annotations

import importlib.util
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


def time_size(job, session, hw):
    """Inference alone and the whole frame pipeline at one size; a session with its own timer
    (``benchmark``: trtexec) reports into the same record."""
    height, width = hw
    count, warmup = job["runs"], job["warmup"]
    if hasattr(session, "benchmark"):
        try:
            return session.benchmark(height, width, warmup, count, job, sys.modules[__name__])
        except RuntimeError as exc:
            raise JobError(str(exc)) from exc
    label = f"{height}x{width}"
    channels, data_range, scale = job["in_channels"], job["data_range"], job["scale"]
    try:
        session.prepare(height, width)
    except RuntimeError as exc:
        raise JobError(str(exc)) from exc
    frame = make_frame(height, width, channels)
    output = None
    for index in range(warmup):
        output = session.infer(preprocess(frame, data_range, session.nhwc))
        progress(f"{label} warm-up {index + 1}/{warmup}")
    # One inference per run, timed inside its frame pipeline (8-bit frame -> input -> output -> 8-bit frame):
    # both figures come from the same calls, so end-to-end >= inference holds for every run and every statistic.
    inference, end_to_end = [], []
    for index in range(count):
        start = time.perf_counter()
        batch = preprocess(frame, data_range, session.nhwc)
        began = time.perf_counter()
        output = session.infer(batch)
        inference.append(time.perf_counter() - began)
        postprocess(output, data_range, session.nhwc)
        end_to_end.append(time.perf_counter() - start)
        progress(f"{label} run {index + 1}/{count}")
    out_hw = list(output.shape[1:3] if session.nhwc else output.shape[2:4])
    return size_result((height, width), out_hw, inference, end_to_end, scale)


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


def load_session(job, artifact):
    """The runtime's device session: a class in a module file copied next to this runner."""
    spec = job.get("session")
    if not spec:
        raise JobError(f"the job names no device session for runtime '{job.get('runtime')}'")
    path = os.path.abspath(spec["file"])
    if not os.path.isfile(path):
        raise JobError(f"the session module {spec['file']} is missing on the device")
    loader = importlib.util.spec_from_file_location(f"sr_bench_session_{job.get('runtime', 'x')}", path)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    session_class = getattr(module, spec["class"], None)
    if session_class is None:
        raise JobError(f"{spec['file']} has no session class {spec['class']}")
    params = {"threads": job.get("threads"), **spec.get("params", {})}
    try:
        return session_class(artifact, **params)
    except RuntimeError as exc:  # the session's own words: what is missing or refused on the device
        raise JobError(str(exc)) from exc


def planned_runs(job):
    """(LR size, artifact file) pairs: one artifact for every size, or one per size (fixed-size formats)."""
    if "plan" in job:
        return [(tuple(entry["size"]), entry["artifact"]) for entry in job["plan"]]
    return [(tuple(size), job["artifact"]) for size in job.get("sizes", [])]


def run_job(job):
    runs = planned_runs(job) or [((0, 0), job.get("artifact", ""))]
    for _, artifact in runs:
        if not os.path.isfile(artifact):
            raise JobError(f"artifact {artifact} is missing on the device")
    sessions, sizes, versions = {}, [], {}
    for hw, artifact in planned_runs(job):
        if artifact not in sessions:
            progress(f"loading {os.path.basename(artifact)} with {job['runtime']}")
            sessions[artifact] = load_session(job, artifact)
        session = sessions[artifact]
        versions = session.versions
        sizes.append(time_size(job, session, hw))
    return {"ok": True, "device": device_facts(versions), "sizes": sizes,
            "conditions": {"warmup": job["warmup"], "runs": job["runs"], "threads": job.get("threads"),
                           "precision": job["precision"], "runtime": job["runtime"]}}


def serve(job):
    """Run one artifact on batches sent one request per stdin line: {"input": NCHW .npy, "output": .npy to write}.

    Answers one ``@reply`` JSON line on stdout per request, the first for the loading (with the session's
    versions), so a caller in another Python environment runs the artifact with this one's runtime.
    """
    import numpy as np

    def reply(record):
        sys.stdout.write("@reply " + json.dumps(record) + "\n")
        sys.stdout.flush()

    session = load_session(job, job["artifact"])
    reply({"ok": True, "versions": session.versions, "nhwc": bool(session.nhwc)})
    for line in sys.stdin:
        request = json.loads(line)
        outputs = []
        for sample in np.load(request["input"]):  # one at a time: fixed-size files take a batch of one
            fed = sample.transpose(1, 2, 0)[None] if session.nhwc else sample[None]
            output = np.asarray(session.infer(np.ascontiguousarray(fed, dtype=np.float32)))
            outputs.append(output.transpose(0, 3, 1, 2) if session.nhwc else output)
        np.save(request["output"], np.concatenate(outputs, axis=0))
        reply({"ok": True})
    return {"ok": True}


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
        result = serve(job) if job.get("mode") == "serve" else run_job(job)
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
