"""TensorRT on a device: trtexec builds the engine from the prepared ONNX there, then times it.

Copied next to sr-bench's device runner and loaded by it, so it imports only
the standard library (sr-export and TensorRT's Python bindings need not be on
the board; JetPack's trtexec is). The command lines come from the host, made
by :func:`sr_export.runtimes.tensorrt.trtexec.build_command` and
``benchmark_command`` from the target profile's settings, one build line per
TensorRT major version; the session picks the one for the trtexec it finds.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

SEARCH = ("/usr/src/tensorrt/bin/trtexec", "/usr/local/tensorrt/bin/trtexec")


def find_trtexec():
    for candidate in (shutil.which("trtexec"), *SEARCH):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError("trtexec is not on PATH nor in /usr/src/tensorrt/bin on the device (install TensorRT / JetPack)")


def tensorrt_major(trtexec):
    try:
        done = subprocess.run([trtexec, "--help"], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"TensorRT v?(\d+)", done.stdout + done.stderr)
    if not match:
        return None
    number = int(match.group(1))
    return number // 10000 if number >= 100000 else number // 1000 if number >= 1000 else number


def pick_command(commands, major):
    """The build line for ``major``: its own, else the newest one not newer than it (else the oldest)."""
    known = sorted(int(k) for k in commands)
    fitting = [k for k in known if major is not None and k <= major]
    return list(commands[str(fitting[-1] if fitting else known[0])])


def last_error(text):
    lines = [line.strip() for line in text.splitlines() if "ERROR" in line] or ["(no ERROR line)"]
    return lines[-1]


class TrtexecSession:
    nhwc = False

    def __init__(self, path, threads=None, trtexec=None, **_unused):
        self.onnx = path
        self.plan = trtexec or {}
        self.trtexec = find_trtexec()
        self.major = tensorrt_major(self.trtexec)
        self.versions = {"runtime": f"TensorRT (trtexec) {self.major if self.major is not None else 'unknown'}"}
        self.engine = None

    def build(self, progress):
        command = pick_command(self.plan["build"], self.major)
        command[0] = self.trtexec
        progress("building the TensorRT engine from the prepared ONNX (trtexec)")
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"trtexec could not build the engine: {last_error(done.stdout + done.stderr)}")
        self.engine = self.plan["engine"]
        self.build_command = command

    def benchmark(self, height, width, warmup, runs, job, harness):
        """One size timed by trtexec; ``harness`` is the device runner (its progress lines and record format)."""
        progress, size_result = harness.progress, harness.size_result
        if self.engine is None:
            self.build(progress)
        label = f"{height}x{width}"
        times_file = os.path.abspath(f"times-{label}.json")
        command = [self.trtexec if part == "{trtexec}" else part.format(height=height, width=width, runs=runs)
                   for part in self.plan["benchmark"]]
        command.append(f"--exportTimes={times_file}")
        progress(f"{label} timing the engine (trtexec)")
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"trtexec failed at {label}: {last_error(done.stdout + done.stderr)}")
        with open(times_file, encoding="utf-8") as handle:
            times = json.load(handle)
        compute = [t["computeMs"] / 1e3 for t in times]
        latency = [t["latencyMs"] / 1e3 for t in times]
        scale = job["scale"]
        result = size_result((height, width), [height * scale, width * scale], compute, latency, scale)
        result["end_to_end_note"] = "host-to-device copy + compute + device-to-host copy (trtexec latencyMs)"
        result["trtexec_build"] = self.build_command
        memory = re.search(r"GPU Memory:?\s*([\d.]+)\s*MiB", done.stdout)
        if memory:
            result["device_memory_mb"] = float(memory.group(1))
        progress(f"{label} done")
        return result
