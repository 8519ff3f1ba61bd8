"""The embedded LLM: llama.cpp's own OpenAI-compatible HTTP server (from the xllamacpp wheel) on one
GGUF model file, for `rea dev`, `npm run demo`, the tests and the benchmark.

    .venv/bin/python scripts/llm_server.py --model .llm/model.gguf --port 0 --alias qwen2.5-coder-1.5b

Prints one JSON line on stdout once it listens ({"url": "http://127.0.0.1:PORT"}), then serves until
SIGTERM, SIGINT, or its standard input closes: the parent holds that pipe open, so the server never
outlives the process that started it, even one killed with SIGKILL. xllamacpp has no command-line
entry point of its own; this file is that entry point and nothing more.
"""

import argparse
import json
import os
import signal
import sys


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="path of the GGUF model file")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0: a free port, printed when ready")
    ap.add_argument("--alias", required=True, help="the model name clients send")
    ap.add_argument("--ctx", type=int, default=8192, help="context size in tokens")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--parallel", type=int, default=1, help="requests decoded at once")
    ap.add_argument(
        "--poll",
        type=int,
        default=0,
        help="how hard idle threads spin for work, 0..100 (llama.cpp's default is 50; 0 yields the CPU)",
    )
    args = ap.parse_args()
    if not os.path.isfile(args.model):
        sys.exit(f"llm_server: no model file at {args.model}")

    import xllamacpp  # imported late, so that a bad argument fails fast and clearly

    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.hostnames = [args.host]
    params.port = args.port
    params.model_alias = {args.alias}
    params.n_ctx = args.ctx * args.parallel
    params.n_parallel = args.parallel
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.cpuparams.poll = args.poll
    params.cpuparams_batch.poll = args.poll
    # The web chat page and the slot inspector are not rea's business: serve the API only.
    params.ui = False
    params.endpoint_slots = False

    # Server() loads the model and serves from its own threads; it returns once it listens.
    server = xllamacpp.Server(params)
    print(json.dumps({"url": server.listening_address, "model": args.alias}), flush=True)

    def stop(*_: object) -> None:
        # The server's threads are not daemons: leave without joining them.
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        while sys.stdin.buffer.read(4096):
            pass
    finally:
        stop()


if __name__ == "__main__":
    main()
