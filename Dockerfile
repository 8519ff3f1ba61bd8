# The rea image: the worker, the gpu-agent and the example trainers. On a Docker host, pip takes
# PyPI's torch build for the pinned version (CUDA-enabled on x86_64), so the gpu-agent can use GPUs.
FROM node:20-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY trainers/requirements.txt trainers/requirements-data.txt trainers/
RUN python3 -m venv .venv && .venv/bin/pip install --no-cache-dir -r trainers/requirements.txt \
  && .venv/bin/pip install --no-cache-dir --no-deps -r trainers/requirements-data.txt
COPY . .
RUN npx tsc -p .
ENV REA_LOG_LEVEL=info
CMD ["node", "bin/rea", "worker"]
