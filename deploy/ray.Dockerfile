# syntax=docker/dockerfile:1
# A Ray node with Tandem installed: the head and the workers of docker-compose.yml's `ray`
# profile, or the image of a KubeRay RayCluster (headGroupSpec / workerGroupSpecs).
#
#   docker build -f deploy/ray.Dockerfile -t tandem-ray .
#
# The official rayproject/ray image (Ray, Ray Data, Python 3.11, CPU); CPU torch and the project
# with its `ray` extra on top, so that every node loads the same embedder (the packaged
# all-MiniLM-L6-v2, offline). Keep RAY_VERSION equal to the driver's Ray (a Ray Client driver
# must match the cluster's Ray and Python versions).
ARG RAY_VERSION=2.60.0
FROM rayproject/ray:${RAY_VERSION}-py311-cpu

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
WORKDIR /home/ray/tandem
COPY --chown=ray:users pyproject.toml README.md ./
COPY --chown=ray:users core ./core
COPY --chown=ray:users smallmodels ./smallmodels
COPY --chown=ray:users stores ./stores
COPY --chown=ray:users indexers ./indexers
COPY --chown=ray:users retrievers ./retrievers
COPY --chown=ray:users training ./training
COPY --chown=ray:users app ./app
RUN pip install ".[ray]" \
    && python -c "import indexers.ray_build, smallmodels.embedder"
WORKDIR /home/ray
