# Two commands for a newcomer: `make reproduce` and `make test`. Both run `make setup` first.
VENV ?= .venv
PY := $(VENV)/bin/python
RESULTS ?= results
# Every table/figure script; the report that assembles them, then the docs' numbers, run last.
EXPERIMENTS := $(basename $(notdir $(filter-out experiments/__init__.py experiments/common.py experiments/reproduction_report.py experiments/docs.py,$(wildcard experiments/*.py))))
export GLOG_minloglevel := 2

# GPU=1: CUDA Caffe in $(VENV) (make setup GPU=1; GPU=0 goes back to CPU_ONLY; unset keeps the venv's choice).
GPU ?= $(DEEPSZ_GPU)
GPU_VENV ?= .venv-gpu

.PHONY: setup gpu-wheel nncodec test reproduce reproduce-lenet5 reproduce-best reproduce-max compare figures experiments bench clean-results

setup:
	@VENV=$(VENV) DEEPSZ_GPU=$(GPU) bash scripts/setup.sh

# CI's compile-only check of the GPU route: sm_90 (or CUDA_ARCH_BIN) into its own venv, then import it.
gpu-wheel:
	@CUDA_ARCH_BIN="$(or $(CUDA_ARCH_BIN),90)" $(MAKE) --no-print-directory setup VENV=$(GPU_VENV) GPU=1
	@GLOG_minloglevel=2 $(GPU_VENV)/bin/python -c 'import caffe, pathlib; k = (pathlib.Path(caffe.__file__).parent / "BUILD_KEY").read_text().strip(); assert "cpu_only_OFF" in k, k; print("GPU caffe imports:", k)'

# NNCodec (MPEG NNR reference codec) in its own .venv-nncodec: it pins numpy<2; .venv is untouched.
nncodec:
	@bash scripts/setup_nncodec.sh

# ruff first (the lint rules, function size included, live in pyproject.toml), then the suite.
test: setup
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

# LeNet-300-100 from scratch to a verified .dsz, then the paper-vs-ours table.
reproduce: setup
	$(VENV)/bin/deepsz reproduce --net lenet300 --results $(RESULTS)

reproduce-lenet5: setup
	$(VENV)/bin/deepsz reproduce --net lenet5 --results $(RESULTS)

# Beyond the paper: both LeNets with every coder (reuses the trained and pruned nets).
reproduce-best: setup
	$(VENV)/bin/deepsz reproduce --net lenet300 --preset best --results $(RESULTS)
	$(VENV)/bin/deepsz reproduce --net lenet5 --preset best --results $(RESULTS)

# Both LeNets with the max preset (zquant: kept weights within the bound of 0 coded as pruned).
reproduce-max: setup
	$(VENV)/bin/deepsz reproduce --net lenet300 --preset max --results $(RESULTS)
	$(VENV)/bin/deepsz reproduce --net lenet5 --preset max --results $(RESULTS)

# Every method, NNCodec included, on both LeNets (docs/nncodec-challenge.md), after the best and
# max runs (and the paper runs of make reproduce reproduce-lenet5, if made); NNCodec needs make nncodec.
compare: setup reproduce-best reproduce-max
	$(VENV)/bin/deepsz compare --net lenet300 --results $(RESULTS)
	$(VENV)/bin/deepsz compare --net lenet5 --results $(RESULTS)

# Redraw every table and figure, and every number in README.md and docs/, from the stored results.
figures: setup
	@for e in $(EXPERIMENTS); do echo "== $$e"; $(PY) -m experiments.$$e --render-only || exit 1; done
	$(PY) -m experiments.docs
	$(PY) -m experiments.reproduction_report

# Recompute every table and figure that can be recomputed here (needs make reproduce[-lenet5]).
experiments: setup
	@for e in $(EXPERIMENTS); do echo "== $$e"; $(PY) -m experiments.$$e || exit 1; done
	$(PY) -m experiments.docs
	$(PY) -m experiments.reproduction_report

# The quick benchmarks (python -m benchmarks.<name>; the ImageNet-scale ones are run by hand, see their docstrings).
bench: setup
	$(PY) -m benchmarks.decode_speed
	$(PY) -m benchmarks.suffix_speedup
	$(PY) -m benchmarks.encode_lenet5
	$(PY) -m benchmarks.codec_throughput
	$(PY) -m benchmarks.beyond_codecs

clean-results:
	rm -rf $(RESULTS)
