# syntax=docker/dockerfile:1
#
# Images of the metaprune services: one target per service on node:20-bookworm-slim, CUDA
# variants of the two tensor services (tfjs-node-gpu), and the CLI. docs/deploy.md has the
# whole procedure; in short:
#
#   docker build --target weight-generator     -t metaprune/weight-generator:0.1.0 .
#   docker build --target controller           -t metaprune/controller:0.1.0 .
#   docker build --target evaluator            -t metaprune/evaluator:0.1.0 .
#   docker build --target latency-profiler     -t metaprune/latency-profiler:0.1.0 .
#   docker build --target weight-generator-gpu -t metaprune/weight-generator:0.1.0-gpu .
#   docker build --target evaluator-gpu        -t metaprune/evaluator:0.1.0-gpu .
#   docker build --target cli                  -t metaprune/cli:0.1.0 .
#
# Every image runs as uid/gid 10001 with a read-only /app, under tini (signals, reaping).
# deploy/test/dockerfile.test.ts checks this file's structure against the services' code.

ARG NODE_IMAGE=node:20-bookworm-slim
# full Debian image (python3, make, g++): tfjs-node-gpu may have to compile its binding
ARG NODE_BUILD_IMAGE=node:20-bookworm
# libtensorflow 2.9 (tfjs-node-gpu 4.x) needs CUDA 11.x and cuDNN 8; amd64 only
ARG CUDA_IMAGE=nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04

# ---- package manifests only, so `npm ci` stays cached until one of them changes ----------
FROM ${NODE_IMAGE} AS manifests
WORKDIR /app
COPY . .
RUN find . -type f ! -name package.json ! -name package-lock.json -delete \
 && find . -mindepth 1 -type d -empty -delete

# ---- build: all dependencies, gRPC code generation, TypeScript, then prune dev deps ------
FROM ${NODE_IMAGE} AS build
ENV TURBO_TELEMETRY_DISABLED=1 DO_NOT_TRACK=1 NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false NPM_CONFIG_AUDIT=false
WORKDIR /app
COPY --from=manifests /app ./
RUN --mount=type=cache,target=/root/.npm npm ci
COPY . .
# codegen (buf + ts-proto, all local) and tsc for the services, the CLI and what they import
RUN npx turbo run build --filter='./services/*' --filter=@metaprune/cli --output-logs=errors-only
RUN npm prune --omit=dev \
 && rm -rf docs proto scripts tmp .turbo deploy/base deploy/nats deploy/overlays deploy/src \
           deploy/test deploy/tsconfig*.json \
 && find tests -mindepth 1 ! -name package.json -prune -exec rm -rf {} + \
 && find libs services -mindepth 2 -maxdepth 2 \
         \( -name src -o -name test -o -name .turbo -o -name 'tsconfig*.json' \) -prune \
         -exec rm -rf {} + \
 && find . -name '*.map' -type f -delete

# ---- Fashion-MNIST from Debian (read from /usr/share/datasets/fashion-mnist) ---------------
FROM ${NODE_IMAGE} AS datasets
RUN apt-get update \
 && apt-get install -y --no-install-recommends dataset-fashion-mnist \
 && rm -rf /var/lib/apt/lists/*

# ---- CPU runtime: tfjs with its WebAssembly backend ----------------------------------------
FROM ${NODE_IMAGE} AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 metaprune \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
            --shell /usr/sbin/nologin metaprune \
 && install -d -o 10001 -g 10001 /var/lib/metaprune
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app /app
USER 10001:10001
ENTRYPOINT ["/usr/bin/tini", "--"]

# ---- GPU dependencies: tfjs-node-gpu of the same version as @tensorflow/tfjs ----------------
# Its install script downloads libtensorflow (GPU) and a prebuilt binding: needs the network.
FROM ${NODE_BUILD_IMAGE} AS gpu-deps
ENV NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false NPM_CONFIG_AUDIT=false
WORKDIR /app
COPY --from=build /app /app
RUN TFJS_VERSION="$(node -p "require('@tensorflow/tfjs/package.json').version")" \
 && npm install --no-save --omit=dev "@tensorflow/tfjs-node-gpu@${TFJS_VERSION}" \
 && node -e "require.resolve('@tensorflow/tfjs-node-gpu')"

# ---- GPU runtime: CUDA + cuDNN base, the Node binary of NODE_IMAGE ---------------------------
FROM ${NODE_IMAGE} AS node
FROM ${CUDA_IMAGE} AS runtime-gpu
COPY --from=node /usr/local/bin/node /usr/local/bin/node
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 metaprune \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
            --shell /usr/sbin/nologin metaprune \
 && install -d -o 10001 -g 10001 /var/lib/metaprune
# CUDA's JIT cache must be writable: the root filesystem is read-only in Kubernetes
ENV NODE_ENV=production CUDA_CACHE_PATH=/tmp/.nv/ComputeCache TF_CPP_MIN_LOG_LEVEL=1
WORKDIR /app
COPY --from=gpu-deps /app /app
USER 10001:10001
ENTRYPOINT ["/usr/bin/tini", "--"]

# ==== service targets ========================================================================

FROM runtime AS weight-generator
COPY --from=datasets /usr/share/datasets /usr/share/datasets
ENV WEIGHTGEN_HOST=0.0.0.0 \
    WEIGHTGEN_CHECKPOINT_ROOT=/var/lib/metaprune/checkpoints \
    WEIGHTGEN_EXPORT_ROOT=/var/lib/metaprune/exports
EXPOSE 50051
VOLUME ["/var/lib/metaprune"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "/app/deploy/docker/healthcheck.mjs", "WEIGHTGEN_PORT", "50051"]
CMD ["node", "services/weight-generator/dist/main.js"]

FROM runtime AS controller
ENV CONTROLLER_HOST=0.0.0.0
EXPOSE 50052
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "/app/deploy/docker/healthcheck.mjs", "CONTROLLER_PORT", "50052"]
CMD ["node", "services/controller/dist/main.js"]

FROM runtime AS evaluator
COPY --from=datasets /usr/share/datasets /usr/share/datasets
ENV EVALUATOR_HEALTH_HOST=0.0.0.0
EXPOSE 50054
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "/app/deploy/docker/healthcheck.mjs", "EVALUATOR_HEALTH_PORT", "50054"]
CMD ["node", "services/evaluator/dist/main.js"]

FROM runtime AS latency-profiler
ENV LATENCY_PROFILER_HOST=0.0.0.0
EXPOSE 50053
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "/app/deploy/docker/healthcheck.mjs", "LATENCY_PROFILER_PORT", "50053"]
CMD ["node", "services/latency-profiler/dist/main.js"]

FROM runtime-gpu AS weight-generator-gpu
COPY --from=datasets /usr/share/datasets /usr/share/datasets
ENV WEIGHTGEN_HOST=0.0.0.0 \
    WEIGHTGEN_CHECKPOINT_ROOT=/var/lib/metaprune/checkpoints \
    WEIGHTGEN_EXPORT_ROOT=/var/lib/metaprune/exports \
    WEIGHTGEN_BACKEND=tensorflow-gpu
EXPOSE 50051
VOLUME ["/var/lib/metaprune"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
  CMD ["node", "/app/deploy/docker/healthcheck.mjs", "WEIGHTGEN_PORT", "50051"]
CMD ["node", "services/weight-generator/dist/main.js"]

FROM runtime-gpu AS evaluator-gpu
COPY --from=datasets /usr/share/datasets /usr/share/datasets
ENV EVALUATOR_HEALTH_HOST=0.0.0.0 \
    EVALUATOR_BACKEND=tensorflow-gpu
EXPOSE 50054
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
  CMD ["node", "/app/deploy/docker/healthcheck.mjs", "EVALUATOR_HEALTH_PORT", "50054"]
CMD ["node", "services/evaluator/dist/main.js"]

# the command-line interface, e.g. in-cluster:
#   kubectl run metaprune-cli -it --rm --image=metaprune/cli:0.1.0 -- search --controller controller:50052 ...
FROM runtime AS cli
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/libs/cli/dist/main.js"]
CMD ["--help"]
