#!/usr/bin/env bash
# The one command that runs edgelstm's real-TensorRT tests: build the TensorRT image, then run
# `pytest -m trt` inside it on the GPU. Needs Docker and the NVIDIA Container Toolkit (--gpus all).
#
#   bash docker/run-trt-tests.sh                 # all trt-marked tests
#   bash docker/run-trt-tests.sh -k fp16         # extra pytest arguments are passed through
#   TRT_IMAGE=nvcr.io/nvidia/tensorrt:25.10-py3 bash docker/run-trt-tests.sh   # another TensorRT
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE="${IMAGE:-edgelstm:tensorrt}"
build_args=()
[[ -n "${TRT_IMAGE:-}" ]] && build_args+=(--build-arg "TRT_IMAGE=${TRT_IMAGE}")
[[ -n "${CUDA_PYTHON:-}" ]] && build_args+=(--build-arg "CUDA_PYTHON=${CUDA_PYTHON}")

docker build -f docker/Dockerfile.tensorrt -t "${IMAGE}" ${build_args[@]+"${build_args[@]}"} .
docker run --rm --gpus all "${IMAGE}" edgelstm doctor
exec docker run --rm --gpus all "${IMAGE}" python -m pytest -m trt -q -rs tests "$@"
