# The rea image: the worker, the gpu-agent, the migrations and the example trainers (docker-compose.yml
# runs each from it). On a Docker host, pip takes PyPI's torch build for the pinned version
# (CUDA-enabled on x86_64), so the gpu-agent can use the GPUs the compose file reserves for it.
#   docker build -t rea .
FROM node:20-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY trainers/requirements.txt trainers/requirements-data.txt trainers/
RUN python3 -m venv .venv && .venv/bin/pip install --no-cache-dir -r trainers/requirements.txt \
  && .venv/bin/pip install --no-cache-dir --no-deps -r trainers/requirements-data.txt
# .dockerignore keeps a checkout's node_modules, .venv, dist and .rea out of this copy.
COPY . .
RUN npx tsc -p . \
  && mkdir -p .rea && chown node:node .rea
# Not root: the trainers run arbitrary model code. .rea (REA_WORK_DIR) is the one writable folder.
USER node
ENV REA_LOG_LEVEL=info
# Two malloc arenas, not glibc's 8 per core: the Temporal core's threads otherwise leave a worker
# with 1,000 hibernating campaigns 140 MB larger (bench/results/orchestration.md).
ENV MALLOC_ARENA_MAX=2
CMD ["node", "bin/rea", "worker"]
