# syntax=docker/dockerfile:1
#
# BeitV2 for NVIDIA GPUs: the ASP.NET Core service built against the CUDA builds of libtorch and ONNX Runtime.
#
#   docker build -t beitv2:cuda .
#   echo "Security__ApiKey=$(openssl rand -hex 32)" > beitv2.env    # clients send this key
#   docker run --gpus all -p 8080:8080 -v beitv2-data:/data --env-file beitv2.env beitv2:cuda
#
# The container listens on all its interfaces (ASPNETCORE_HTTP_PORTS=8080), so the service needs an
# API key: without Security__ApiKey it exits at once (code 78) with a message saying how to set one.
# Security__AllowAnonymous=true serves without a key on purpose (trusted networks only).
#
# Stage 1 builds with the .NET SDK and `-p:BeitV2Cuda=true`, which swaps the CPU libtorch
# (libtorch-cpu-linux-x64) for TorchSharp-cuda-linux 0.107 = libtorch 2.10 for CUDA 12.8, and the CPU
# ONNX Runtime for Microsoft.ML.OnnxRuntime.Gpu.Linux 1.32.0 (the CUDA execution provider).
# A plain `dotnet build` never asks for the CUDA packages (see BeitV2.Ml/BeitV2.Ml.csproj).
# Stage 2 is the runtime: Ubuntu 24.04 with CUDA 13 + cuDNN 9 and the ASP.NET Core runtime.
# See README.md, "GPU deployment", for configuration and for what has and has not been verified.

# Two CUDA stacks live in this image, one per engine:
# - ONNX Runtime 1.32's CUDA provider (the default serving engine, Inference:Engine=onnx) is a CUDA 13 build: it
#   links libcudart.so.13, libcublas.so.13, libcublasLt.so.13 and libcurand.so.10, and dlopens libcudnn.so.9
#   (and libcufft.so.12, libnvrtc.so.13 when an operator needs them); the package ships none of them
#   (readelf of its libonnxruntime_providers_cuda.so: docs/notes/gpu-probe-2026-12.md). The `cudnn-runtime`
#   flavour of the CUDA 13.0 image carries that set (the `base` flavour has cudart only).
# - libtorch (training, and serving with Inference:Engine=torch) is the "shared-with-deps" build for CUDA 12.8: it
#   carries its own CUDA 12 cuBLAS, cuDNN, ... under renamed sonames, so it needs only the driver.
# The image's NVIDIA_REQUIRE_CUDA check makes the container refuse a driver older than CUDA 13.0 needs (R580+).
ARG CUDA_RUNTIME_IMAGE=nvidia/cuda:13.0.2-cudnn-runtime-ubuntu24.04
ARG DOTNET_SDK_IMAGE=mcr.microsoft.com/dotnet/sdk:10.0-noble
ARG DOTNET_RUNTIME_IMAGE=mcr.microsoft.com/dotnet/aspnet:10.0-noble

# ---------------------------------------------------------------- build
FROM ${DOTNET_SDK_IMAGE} AS build
ARG DEBIAN_FRONTEND=noninteractive
# Node.js and npm: the web project's build runs `npm ci` for the browser UI.
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm \
 && rm -rf /var/lib/apt/lists/*
ENV DOTNET_CLI_TELEMETRY_OPTOUT=1 \
    DOTNET_NOLOGO=1
WORKDIR /src
# Restore first (a cached layer while only sources change). The CUDA packages are large (~3 GB):
# the libtorch-cuda package is split into fragments that its build targets stitch back together.
COPY global.json Directory.Build.props Directory.Build.targets ./
COPY build/ build/
COPY BeitV2.Ml/BeitV2.Ml.csproj BeitV2.Ml/
COPY BeitV2.Web/BeitV2.Web.csproj BeitV2.Web/
RUN dotnet restore BeitV2.Web/BeitV2.Web.csproj -p:BeitV2Cuda=true
COPY . .
RUN dotnet publish BeitV2.Web/BeitV2.Web.csproj -c Release -p:BeitV2Cuda=true -o /app \
 && test -f /app/BeitV2.Web.dll \
 && test -n "$(find /app -name 'libtorch_cuda.so*' -print -quit)" \
 && test -n "$(find /app -name 'libonnxruntime_providers_cuda.so' -print -quit)"

# ---------------------------------------------------------------- runtime
FROM ${DOTNET_RUNTIME_IMAGE} AS dotnet

FROM ${CUDA_RUNTIME_IMAGE} AS runtime
ARG DEBIAN_FRONTEND=noninteractive
# What the ASP.NET Core runtime needs on Ubuntu 24.04 (the aspnet image's own list; tzdata would
# otherwise ask for a time zone, hence the non-interactive frontend), and libgomp1, the OpenMP runtime
# that USearch's native library (the collections' vector index) links.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libicu74 libgomp1 libssl3t64 tzdata zlib1g \
 && rm -rf /var/lib/apt/lists/*
COPY --from=dotnet /usr/share/dotnet /usr/share/dotnet
RUN ln -s /usr/share/dotnet/dotnet /usr/bin/dotnet \
 && useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin beitv2 \
 && mkdir -p /data \
 && chown beitv2:beitv2 /data

ENV DOTNET_ROOT=/usr/share/dotnet \
    DOTNET_CLI_TELEMETRY_OPTOUT=1 \
    ASPNETCORE_ENVIRONMENT=Production \
    ASPNETCORE_HTTP_PORTS=8080 \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    Storage__DataDirectory=/data \
    Ml__Device=auto \
    Ml__InferencePrecision=fp32 \
    Ml__AllowTf32=false \
    Inference__Engine=onnx \
    Inference__Precision=fp32

WORKDIR /app
COPY --from=build /app ./
COPY --chmod=0755 docker/healthcheck.sh /usr/local/bin/beitv2-healthcheck

USER beitv2
EXPOSE 8080
# Models, datasets, jobs, checkpoints and the job queue (SQLite) live here.
VOLUME ["/data"]
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 CMD ["/usr/local/bin/beitv2-healthcheck"]
ENTRYPOINT ["dotnet", "BeitV2.Web.dll"]
