# Two commands on a fresh machine: `make run` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench clean build

# The compiled hot path (setup.py): the listed modules' sources; a change to any rebuilds what changed,
# so `make test` and `make run` use what ships. The install above builds them too (a fresh clone).
ACCEL_SRC := $(shell sed -e 's/\#.*//' -e '/^ *$$/d' -e 's/ //g' engine/accel_modules.txt | tr . / | sed 's/$$/.py/')
ACCEL     := $(VENV)/.accel-built

$(STAMP): pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

$(ACCEL): $(STAMP) setup.py engine/accel.py engine/accel_modules.txt $(ACCEL_SRC)
	$(BIN)/python setup.py -q build_ext --inplace
	touch $(ACCEL)

build: $(ACCEL)

run: $(ACCEL)
	$(BIN)/huren keys init
	@# a development client for trying the API; its id:secret is kept in var/demo-client.txt (dev only)
	@test -s var/demo-client.txt || $(BIN)/huren client add demo-his --scope "system/*.cruds" \
	    | sed -n 's/^client secret.*: /demo-his:/p' > var/demo-client.txt
	@echo "development client credentials (id:secret) in var/demo-client.txt"
	$(BIN)/huren serve --replay examples/feeds

test: $(ACCEL)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

bench: $(STAMP)
	for f in $$(ls bench/*.py | grep -v bench/common.py); do $(BIN)/python $$f --quick || exit 1; done

clean:
	rm -rf $(VENV) var .pytest_cache build
	find engine adapters conformance -name '*.so' -delete
