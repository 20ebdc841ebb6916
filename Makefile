# Two commands for a newcomer: `make reproduce` and `make test`. Both run `make setup` first.
VENV ?= .venv
PY := $(VENV)/bin/python
RESULTS ?= results

.PHONY: setup test reproduce reproduce-lenet5 clean-results

setup:
	@bash scripts/setup.sh

test: setup
	GLOG_minloglevel=2 $(PY) -m pytest -q

reproduce: setup
	GLOG_minloglevel=2 $(VENV)/bin/deepsz reproduce --net lenet300 --results $(RESULTS)

reproduce-lenet5: setup
	GLOG_minloglevel=2 $(VENV)/bin/deepsz reproduce --net lenet5 --results $(RESULTS)

clean-results:
	rm -rf $(RESULTS)
