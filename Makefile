# Two commands set everything up on a fresh machine:
#   make demo   - create .venv, install sr-export with CPU PyTorch, run the default sr-bench
#   make test   - same environment plus test tools, run the whole suite (the tests create side environments
#                 with older device runtimes, tflite-runtime 2.14 and ONNX Runtime 1.15/1.18, under
#                 build/side-envs on first use: about 30 s, reused afterwards)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# A CPU build of PyTorch. On machines whose pip does not have it locally, add
# TORCH_INDEX=--index-url=https://download.pytorch.org/whl/cpu so pip never pulls a CUDA build.
TORCH ?= torch==2.13.0
TORCH_INDEX ?=
# Official checkpoints and Set5 live beside the repository (never inside it).
SHARED ?= $(abspath ../shared)
export SR_EXPORT_SHARED ?= $(SHARED)
export SR_EXPORT_WEIGHTS_DIR ?= $(SHARED)/weights

# TensorRT API names are checked against the real Python bindings of JetPack 6's
# release (10.3) and the newest 11.x; names only TensorRT 10 has live in one module.
# Not checked: CUDA memory (cuda_buffers.py) and what runs trtexec (no Python API).
TRT_API_NAMES ?= $(SHARED)/tools/trt-api-names
TRT_NO_API := $(addprefix sr_export/runtimes/tensorrt/,cuda_buffers.py device.py trtexec.py)
TRT_10_ONLY := sr_export/runtimes/tensorrt/implicit.py
TRT_COMMON = $(filter-out $(TRT_10_ONLY) $(TRT_NO_API),$(wildcard sr_export/runtimes/tensorrt/*.py))

.PHONY: demo test install clean trt-api-check ci-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.torch: | $(BIN)/python
	$(BIN)/python -m pip install --quiet $(TORCH_INDEX) "$(TORCH)"
	@touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.torch
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/sr-bench --target cpu

test: $(VENV)/.installed trt-api-check
	# One OpenMP thread per worker: two workers with two spinning OpenMP threads each on 2 cores measured 12%
	# slower (tests that time or set threads pass them explicitly).
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 --dist loadfile --durations=25

trt-api-check: $(VENV)/.installed
	$(BIN)/python $(TRT_API_NAMES) --versions 10.3.0,11.4.0.106 $(TRT_COMMON)
	$(BIN)/python $(TRT_API_NAMES) --versions 10.3.0 $(TRT_10_ONLY)

# System packages some tests drive for real: an sshd for the remote-device tests,
# headless Chromium for the HTML report. Installed only when missing (Debian/Ubuntu).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
ci-deps:
	@missing=""; \
	[ -x /usr/sbin/sshd ] || missing="$$missing openssh-server"; \
	command -v ssh >/dev/null || missing="$$missing openssh-client"; \
	command -v chromium >/dev/null || command -v chromium-browser >/dev/null || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

clean:
	rm -rf $(VENV) sr-bench-out .pytest_cache build/side-envs
