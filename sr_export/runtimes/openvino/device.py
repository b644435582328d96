"""OpenVINO on a device: the session sr-bench's device runner times there, and the compile settings, device
choice, BF16 refusal and IR file check every OpenVINO runner uses.

Copied next to the device runner and loaded by it, so it imports nothing but
the standard library, numpy and ``openvino`` (a Raspberry Pi 5 or an Intel
NUC with only ``pip install openvino numpy`` runs it). The in-process runner
(:mod:`sr_export.runtimes.openvino.runner`) opens IRs through the same
:func:`compile_ir`, so a file is compiled the same way here and on a board.
Failures are ``RuntimeError`` with one line saying what to do; the runner
here turns them into sr-export's one-line errors.
"""

from __future__ import annotations

import hashlib
import os
import sys
import xml.etree.ElementTree as ElementTree

# Where the IR's own metadata lives in its rt_info (the .bin's size and sha256: the .xml vouches for its weights).
RT_INFO_SECTION = "sr_export"
# What an sr-export precision asks of OpenVINO's INFERENCE_PRECISION_HINT. FP32 is asked for explicitly:
# CPUs with AMX and every GPU would otherwise pick a 16-bit precision by themselves.
INFERENCE_PRECISION = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}
# The /proc/cpuinfo flags of CPUs whose BF16 is native (OpenVINO lists BF16 in OPTIMIZATION_CAPABILITIES then).
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def bin_path(xml_path):
    return os.path.splitext(xml_path)[0] + ".bin"


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def ir_info(xml_path):
    """What sr-export recorded in the .xml's rt_info (the .bin's size and sha256, the device it was proven on);
    empty for an IR made elsewhere."""
    try:
        root = ElementTree.parse(xml_path).getroot()
    except (ElementTree.ParseError, OSError) as exc:
        raise RuntimeError(f"{xml_path} is not an OpenVINO IR .xml ({exc}); re-export it") from exc
    section = root.find(f"rt_info/{RT_INFO_SECTION}")
    return {} if section is None else {item.tag: item.get("value") for item in section}


def check_ir_files(xml_path):
    """The .bin beside ``xml_path`` is there and is the one the .xml was written with (size and sha256)."""
    weights = bin_path(xml_path)
    if not os.path.isfile(weights):
        raise RuntimeError(f"{os.path.basename(weights)}, the weights of {xml_path}, is missing: an OpenVINO IR is "
                           "the .xml and the .bin beside it; copy both, or re-export it")
    info = ir_info(xml_path)
    size, sha = info.get("bin_size"), info.get("bin_sha256")
    actual = os.path.getsize(weights)
    if size is not None and str(actual) != size:
        raise RuntimeError(f"{weights} is {actual} bytes, and its .xml was written with {size}: truncated or "
                           "replaced; re-export it")
    if sha is not None and file_sha256(weights) != sha:
        raise RuntimeError(f"{weights} changed since sr-export wrote it (its sha256 no longer matches its .xml): "
                           "damaged or replaced; re-export it")


def cpu_flags():
    """The CPU feature flags /proc/cpuinfo lists (empty where there is none: macOS, Windows)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith(("flags", "Features")):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def bf16_refusal(capabilities, cpu_name, flags):
    """Why BF16 cannot run on this CPU (None: it can): native BF16 is OpenVINO's BF16 capability, which it
    reports for CPUs with AVX512_BF16 or AMX; elsewhere OpenVINO would quietly run FP32 and call it BF16."""
    if "BF16" in capabilities:
        return None
    has = [flag for flag in BF16_CPU_FLAGS if flag in flags]
    seen = f" (it has {', '.join(has)}, but OpenVINO does not use it)" if has else ""
    return (f"BF16 needs a CPU with native BF16, the avx512_bf16 or amx_bf16 CPU flag; {cpu_name} has neither{seen}: "
            "use fp32 (target openvino-cpu) or int8 here")


def choose_device(core, device):
    """``device`` checked against the devices this machine has: a one-line error listing them otherwise."""
    present = list(core.available_devices)
    wanted = [device.split(":", 1)[0]]
    if ":" in device:
        wanted = device.split(":", 1)[1].split(",")
    elif device.split(".")[0] in ("AUTO", "MULTI", "HETERO", "BATCH"):
        wanted = []
    missing = [name for name in wanted if not _present(name, present)]
    if missing or not present:
        raise RuntimeError(f"OpenVINO device {missing[0] if missing else device} is not present here; devices "
                           f"present: {', '.join(present) or 'none'}")
    return device


def _present(name, present):
    """GPU is present when GPU.0 is (OpenVINO numbers devices of a kind when there are several)."""
    return name in present or ("." not in name and any(p.split(".")[0] == name for p in present))


def compile_settings(precision="fp32", threads=None, streams=1, performance_hint="LATENCY", device="CPU"):
    """OpenVINO properties for compiling an IR of ``precision`` (threads apply to CPUs only)."""
    settings = {"PERFORMANCE_HINT": performance_hint, "NUM_STREAMS": str(streams),
                "INFERENCE_PRECISION_HINT": INFERENCE_PRECISION.get(precision, "f32")}
    if threads and device.split(".")[0] == "CPU":
        settings["INFERENCE_NUM_THREADS"] = int(threads)
    return settings


def compile_ir(path, precision="fp32", threads=None, device="CPU", streams=1, performance_hint="LATENCY"):
    """(compiled model, OpenVINO core, device facts) for the IR at ``path``, checked first."""
    try:
        import openvino as ov
    except ImportError as exc:
        raise RuntimeError(f"openvino is not installed for {sys.executable} ({exc}); pip install openvino") from exc
    check_ir_files(path)
    core = ov.Core()
    device = choose_device(core, device)
    physical = device.split(":", 1)[-1].split(",")[0] if ":" in device else device
    if precision == "bf16":
        if physical.split(".")[0] != "CPU":
            raise RuntimeError(f"BF16 is a CPU precision in OpenVINO; {device} is not a CPU: use device CPU")
        name = core.get_property("CPU", "FULL_DEVICE_NAME")
        refusal = bf16_refusal(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"), name, cpu_flags())
        if refusal:
            raise RuntimeError(refusal)
    settings = compile_settings(precision, threads, streams, performance_hint, physical)
    try:
        compiled = core.compile_model(core.read_model(path), device, settings)
    except Exception as exc:  # noqa: BLE001 - OpenVINO raises its own exception types; report one line
        text = str(exc).strip().splitlines()
        raise RuntimeError(f"OpenVINO cannot compile {path} for {device}: {text[0] if text else type(exc).__name__}") \
            from exc
    facts = {"runtime": f"openvino {ov.__version__}", "device_name": device_name(core, physical),
             "ov_device": device, "inference_precision": settings["INFERENCE_PRECISION_HINT"],
             "streams": str(streams), "performance_hint": performance_hint, "threads": str(threads or "all")}
    return compiled, core, facts


def device_name(core, device):
    try:
        return str(core.get_property(device, "FULL_DEVICE_NAME"))
    except Exception:  # noqa: BLE001 - virtual devices (AUTO) have no full name
        return device


class OpenVinoSession:
    """An OpenVINO IR compiled for one device; any LR size (the IR's height and width are dynamic)."""

    nhwc = False

    def __init__(self, path, threads=None, device="CPU", streams=1, performance_hint="LATENCY", precision="fp32",
                 **_unused):
        self.compiled, _core, facts = compile_ir(path, precision, threads, device, streams, performance_hint)
        self.request = self.compiled.create_infer_request()
        self.versions = facts

    def prepare(self, height, width):
        return None

    def infer(self, batch):
        # share_outputs=False: the result is the caller's to keep after the next request overwrites the buffer.
        return self.request.infer({0: batch}, share_outputs=False)[self.compiled.output(0)]
