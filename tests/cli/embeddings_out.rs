//! An embeddings job's vectors in the outputs beside JSON Lines: Parquet's `embedding` column
//! (`list<float32>`, read back by pyarrow, null for a failed row) from a run and from an export,
//! and the OpenAI Batch output lines, whose bodies are `CreateEmbeddingResponse` objects, for a
//! live job and for a Batch API one. Vectors are compared as the f32 values they are.

use std::collections::HashMap;

use serde_json::Value;

use crate::embeddings::{embed_job, texts_jsonl};
use crate::parquet::python;
use crate::util::*;

/// Rows `e11`..`e15` (one request of 5) are refused by the server; the others are done.
fn with_a_refused_request(i: usize) -> &'static str {
    if i == 11 {
        "[[mock:status=400]] "
    } else {
        ""
    }
}

fn failed(id: &str) -> bool {
    let n: usize = id[1..].parse().expect("ids are e<n>");
    (11..=15).contains(&n)
}

/// A JSON array of numbers as f32 values (`None`: not an array).
fn floats(v: &Value) -> Option<Vec<f32>> {
    v.as_array()?
        .iter()
        .map(|x| x.as_f64().map(|x| x as f32))
        .collect()
}

/// Each row's vector by id (`None`: the row has none).
type Vectors = HashMap<String, Option<Vec<f32>>>;

/// Each row's vector in JSON Lines output rows.
fn jsonl_vectors(rows: &[Value]) -> Vectors {
    rows.iter()
        .map(|r| {
            (
                r["id"].as_str().expect("an id").to_string(),
                floats(&r["embedding"]),
            )
        })
        .collect()
}

/// The `embedding` column of a Parquet file as pyarrow reads it: its type's text, whether it is
/// a list of float32, and each row's vector by id.
fn parquet_vectors(dir: &Dir, name: &str) -> Option<(String, bool, Vectors)> {
    let script = format!(
        "t = pq.read_table('{name}')\n\
         ty = t.schema.field('embedding').type\n\
         print(str(ty))\n\
         print(json.dumps(pa.types.is_list(ty) and ty.value_type == pa.float32()))\n\
         print(json.dumps(dict(zip(t.column('id').to_pylist(), t.column('embedding').to_pylist()))))"
    );
    let out = python(dir, &script)?;
    let mut lines = out.lines();
    let text = lines.next().expect("the type").to_string();
    let is_f32_list = serde_json::from_str(lines.next().expect("a bool")).expect("JSON");
    let rows: HashMap<String, Value> = serde_json::from_str(lines.next().expect("rows")).expect("JSON");
    let vectors = rows.into_iter().map(|(id, v)| (id, floats(&v))).collect();
    Some((text, is_f32_list, vectors))
}

#[test]
fn parquet_output_holds_each_vector_as_list_float32_equal_to_json_lines_and_null_when_failed() {
    let dir = Dir::new();
    texts_jsonl(&dir, 20, with_a_refused_request);
    let mock = Mock::start(&[]);
    let out = run(embed_job(&dir, &mock, "out.parquet").args(["--rows-per-request", "5"]));
    assert_eq!(out.code(), 3, "rows failed: {}", out.stderr);
    for (format, name) in [("jsonl", "out.jsonl"), ("parquet", "export.parquet")] {
        let export = run(promptmill(&dir).args(["export", "out.parquet.promptmill.db", "-o", name]));
        assert_eq!(export.code(), 0, "{format}: {}", export.stderr);
    }
    let expected = jsonl_vectors(&dir.jsonl("out.jsonl"));
    assert_eq!(expected.len(), 20);
    for name in ["out.parquet", "export.parquet"] {
        let Some((text, is_f32_list, vectors)) = parquet_vectors(&dir, name) else {
            return;
        };
        assert!(is_f32_list, "{name}: `embedding` is {text}");
        assert_eq!(text, "list<element: float not null>", "{name}");
        assert_eq!(vectors.len(), 20, "{name}");
        for (id, vector) in &vectors {
            if failed(id) {
                assert_eq!(vector, &None, "{name}: {id} failed, so its vector is null");
            } else {
                let v = vector
                    .as_ref()
                    .unwrap_or_else(|| panic!("{name}: {id} has no vector"));
                assert_eq!(v.len(), 8, "{name}: {id}: dimensions=8");
            }
            assert_eq!(Some(vector), expected.get(id), "{name}: {id}");
        }
    }
}

/// The OpenAI Batch output lines of the job whose checkpoint is `db`, by `custom_id`.
fn batch_lines(dir: &Dir, db: &str) -> HashMap<String, Value> {
    let out = run(promptmill(dir).args(["export", db, "-o", "lines.jsonl", "--format", "openai-batch"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    dir.jsonl("lines.jsonl")
        .into_iter()
        .map(|l| (l["custom_id"].as_str().expect("a custom_id").to_string(), l))
        .collect()
}

/// Checks that a done row's line has the `CreateEmbeddingResponse` of that row alone: its
/// vector, model and usage as the JSON Lines output has them.
fn assert_embedding_body(line: &Value, row: &Value) {
    assert_eq!(line["response"]["status_code"], 200, "{line}");
    assert_eq!(line["error"], Value::Null, "{line}");
    let body = &line["response"]["body"];
    assert_eq!(body["object"], "list", "{body}");
    let data = body["data"].as_array().expect("data is a list");
    assert_eq!(data.len(), 1, "{body}");
    assert_eq!(data[0]["object"], "embedding", "{body}");
    assert_eq!(data[0]["index"], 0, "{body}");
    let vector = floats(&data[0]["embedding"]).expect("an array of numbers");
    assert_eq!(vector.len(), 8);
    assert_eq!(Some(vector), floats(&row["embedding"]), "{body}");
    assert!(body["model"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert_eq!(body["model"], row["model"], "{body}");
    assert_eq!(
        body["usage"]["prompt_tokens"], row["usage"]["prompt_tokens"],
        "{body}"
    );
    assert_eq!(
        body["usage"]["total_tokens"], row["usage"]["total_tokens"],
        "{body}"
    );
}

#[test]
fn openai_batch_output_of_a_live_embeddings_job_has_an_embeddings_list_per_row() {
    let dir = Dir::new();
    texts_jsonl(&dir, 20, with_a_refused_request);
    let mock = Mock::start(&[]);
    let out = run(embed_job(&dir, &mock, "out.jsonl").args(["--rows-per-request", "5"]));
    assert_eq!(out.code(), 3, "rows failed: {}", out.stderr);
    let lines = batch_lines(&dir, "out.jsonl.promptmill.db");
    let rows = dir.jsonl("out.jsonl");
    assert_eq!(lines.len(), 20);
    for row in &rows {
        let id = row["id"].as_str().expect("an id");
        let line = &lines[id];
        if failed(id) {
            assert_eq!(line["response"]["status_code"], 400, "{line}");
            assert!(line["response"]["body"]["error"]["message"].is_string(), "{line}");
        } else {
            assert_embedding_body(line, row);
        }
    }
}

#[test]
fn openai_batch_output_of_a_batch_mode_embeddings_job_has_an_embeddings_list_per_row() {
    let dir = Dir::new();
    texts_jsonl(&dir, 6, |_| "");
    let mock = Mock::start(&["--batch-polls", "1"]);
    let out = run(embed_job(&dir, &mock, "out.jsonl").args(["--mode", "batch", "--poll-interval", "20ms"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let lines = batch_lines(&dir, "out.jsonl.promptmill.db");
    let rows = dir.jsonl("out.jsonl");
    assert_eq!((lines.len(), rows.len()), (6, 6));
    for row in &rows {
        assert_embedding_body(&lines[row["id"].as_str().expect("an id")], row);
    }
}
