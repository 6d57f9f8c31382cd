#!/usr/bin/env python3
"""Counts a JSON Lines file's prompt tokens with Python tiktoken, one thread, as `promptmill
estimate` counts them for a chat model: the `prompt` as ordinary text (special-token text
included) plus the OpenAI cookbook's framing of one user message (3 + the role's 1 + 3 = 7).

The dry-run scenario of examples/bench.rs runs this on the same file as promptmill, in the same
session, and prints the ratio of the two times; it also checks that both counted the same total.

    TIKTOKEN_CACHE_DIR=/path/to/tiktoken-cache python3 tiktoken_count.py FILE [ENCODING]

Prints one line: the total prompt tokens.
"""

import json
import sys

import tiktoken

FRAMING = 3 + 1 + 3


def main():
    path = sys.argv[1]
    enc = tiktoken.get_encoding(sys.argv[2] if len(sys.argv) > 2 else "o200k_base")
    total = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            prompt = json.loads(line)["prompt"]
            total += len(enc.encode(prompt, disallowed_special=())) + FRAMING
    print(total)


if __name__ == "__main__":
    main()
