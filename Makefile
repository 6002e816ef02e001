# The two commands of the quick start: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export PAPERFEED_DATA_DIR ?= $(CURDIR)/var

.PHONY: run test venv lint bench clean

# torch is pinned to the CPU build before the embeddings extra: any other torch
# resolves to a multi-GB CUDA build.
TORCH := torch==2.13.0

# What the product needs to run, with its best ranking (sentence embeddings):
# no test tools (pytest, hypothesis, ruff, aiosmtpd, Playwright).
$(BIN)/paperfeed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[embeddings]'
	touch $@

venv: $(BIN)/paperfeed

run: venv
	$(BIN)/paperfeed migrate
	$(BIN)/paperfeed ingest samples/dumps
	$(BIN)/paperfeed refit
	$(BIN)/paperfeed run --host 127.0.0.1 --port 5000

# The test tools join the same venv (the embeddings tests run for real, not skipped).
$(VENV)/.test-deps: $(BIN)/paperfeed
	$(BIN)/pip install --quiet -e '.[test,embeddings]'
	touch $@

test: $(VENV)/.test-deps
	$(BIN)/python -m pytest -q

lint: $(VENV)/.test-deps  # ruff is a test tool
	$(BIN)/ruff check recommender web tests bench
	$(BIN)/ruff format --check recommender web tests bench

bench: $(VENV)/.test-deps  # web.py and digest.py need aiosmtpd; the engine ones, ../shared/bench (PAPERFEED_BENCH_DIR)
	$(BIN)/python bench/serving.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/evaluate.py
	$(BIN)/python bench/refit.py
	$(BIN)/python bench/rank.py
	$(BIN)/python bench/web.py
	$(BIN)/python bench/rerank.py
	$(BIN)/python bench/digest.py

clean:
	rm -rf $(VENV) var .pytest_cache
