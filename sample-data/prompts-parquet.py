"""Writes sample-data/prompts.parquet, the Parquet twin of prompts.jsonl with two typed columns
more (used by docs/FORMATS.md). Run from the repository root: python3 sample-data/prompts-parquet.py
(needs pyarrow)."""
import json

import pyarrow as pa
import pyarrow.parquet as pq

rows = [json.loads(line) for line in open("sample-data/prompts.jsonl", encoding="utf-8")]
table = pa.table(
    {
        "id": [r["id"] for r in rows],
        "prompt": [r["prompt"] for r in rows],
        "words": pa.array([20 + 10 * i for i in range(len(rows))], pa.int32()),
        "tags": pa.array([["sample", f"q{i + 1}"] for i in range(len(rows))], pa.list_(pa.string())),
    }
)
pq.write_table(table, "sample-data/prompts.parquet", compression="snappy")
