# Two commands on a fresh machine: `make run` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/huren keys init
	@# a development client for trying the API; its id:secret is kept in var/demo-client.txt (dev only)
	@test -s var/demo-client.txt || $(BIN)/huren client add demo-his --scope "system/*.cruds" \
	    | sed -n 's/^client secret.*: /demo-his:/p' > var/demo-client.txt
	@echo "development client credentials (id:secret) in var/demo-client.txt"
	$(BIN)/huren serve --replay examples/feeds

# The suite runs in one process per core (pytest-xdist), each test file whole in one worker, so a
# file's module fixtures are built once; `TEST_WORKERS=0 make test` runs it in this one process.
# Files start longest first (tests/file_costs.json, see tests/conftest.py); the log ends with the
# 15 tests and files that took the most CPU, so a new slow test shows where it is.
# One worker more than the cores (twenty-seventh round): on an idle 2-core machine two workers kept the
# cores ~82 % busy (user+sys 17 m 56 s over a 10 m 52 s run) -- each waits at times on a child process,
# a socket, Chromium or a sync -- and a third fills those waits. (Twenty-eighth round: a fourth, tried,
# was slower: 64 % of the tests in 11 min against 62 % in 9.4 min with three.)
TEST_WORKERS ?= $(shell echo $$(( $$(nproc 2>/dev/null || echo 1) + 1 )))
# The tests' temporary files (each test's stores, logs, Chromium profiles) go to tmpfs when the machine
# has one with room (>= 8 GB free in /dev/shm): every Engine a test opens and closes syncs its SQLite
# files, and on a disk those waits were ~20 % of the suite's time (twenty-sixth round: the 50 longest
# files 149 -> 116 s wall at -n 2). Removed after the run; elsewhere the system's temporary folder.
test: $(STAMP)
	$(BIN)/ruff check .
	@shm=$$(df -Pk /dev/shm 2>/dev/null | awk 'NR == 2 && $$4 > 8000000 {print "/dev/shm"}'); \
	if [ -n "$$shm" ]; then TMPDIR=$$(mktemp -d "$$shm/huren-tests.XXXXXX"); export TMPDIR; \
	    echo "temporary files in $$TMPDIR (tmpfs)"; fi; \
	echo "$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --cpu-durations=15"; \
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --cpu-durations=15; status=$$?; \
	if [ -n "$$shm" ]; then rm -rf "$$TMPDIR"; fi; exit $$status

bench: $(STAMP)
	for f in $$(ls bench/*.py | grep -v bench/common.py); do $(BIN)/python $$f --quick || exit 1; done

clean:
	rm -rf $(VENV) var .pytest_cache
