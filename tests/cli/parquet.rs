//! Parquet in and out: inputs written by pyarrow, run against the mock, outputs read back by
//! pyarrow with their types checked. Without pyarrow these tests skip with a printed reason,
//! unless `PROMPTMILL_REQUIRE_SERVERS` is set (as in CI, which installs it): then they fail.

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::util::*;

/// Runs a Python script with pyarrow in `dir`, giving back what it printed; `None` (after saying
/// why) when pyarrow is not installed and the environment does not require it.
pub(crate) fn python(dir: &Dir, script: &str) -> Option<String> {
    let probe = Command::new("python3").args(["-c", "import pyarrow"]).output();
    if !probe.as_ref().is_ok_and(|o| o.status.success()) {
        if std::env::var_os("PROMPTMILL_REQUIRE_SERVERS").is_some() {
            panic!("pyarrow is not installed for python3, and PROMPTMILL_REQUIRE_SERVERS is set");
        }
        eprintln!("skipped: pyarrow is not installed for python3 (pip install pyarrow)");
        return None;
    }
    let prelude = "import json, sys\nimport pyarrow as pa, pyarrow.parquet as pq\n";
    let out = Command::new("python3")
        .current_dir(dir.path(""))
        .args(["-c", &format!("{prelude}{script}")])
        .stdin(Stdio::null())
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "python failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(stdout)
}

/// A Parquet file's schema (`name: type` per column) and its rows as JSON objects.
fn read_parquet(dir: &Dir, name: &str) -> Option<(Vec<String>, Vec<Value>)> {
    let script = format!(
        "t = pq.read_table('{name}')\n\
         print(json.dumps([f'{{f.name}}: {{f.type}}' for f in t.schema]))\n\
         print(json.dumps(t.to_pylist(), default=str))"
    );
    let out = python(dir, &script)?;
    let mut lines = out.lines();
    let schema = serde_json::from_str(lines.next()?).expect("schema line");
    let rows = serde_json::from_str(lines.next()?).expect("rows line");
    Some((schema, rows))
}

/// `n` rows with an id, a prompt, and columns of each kind a template can meet.
fn write_prompts(dir: &Dir, name: &str, n: usize) -> Option<()> {
    let script = format!(
        "n = {n}\n\
         t = pa.table({{\n\
           'id': [f'r{{i}}' for i in range(n)],\n\
           'prompt': [f'Say something about item {{i}}.' for i in range(n)],\n\
           'count': pa.array(range(n), pa.int64()),\n\
           'small': pa.array([i % 100 for i in range(n)], pa.int32()),\n\
           'score': pa.array([i / 4 for i in range(n)], pa.float64()),\n\
           'flag': [i % 2 == 0 for i in range(n)],\n\
           'tags': pa.array([['a', f't{{i}}'] for i in range(n)], pa.list_(pa.string())),\n\
           'meta': pa.array([{{'k': i, 'v': 'x'}} for i in range(n)]),\n\
         }})\n\
         pq.write_table(t, '{name}', row_group_size=500)"
    );
    python(dir, &script).map(|_| ())
}

fn parquet_job(dir: &Dir, mock: &Mock, input: &str, output: &str) -> Command {
    let mut cmd = promptmill(dir);
    cmd.args([
        "run",
        input,
        "-o",
        output,
        "--model",
        "m",
        "--base-url",
        &mock.url,
    ]);
    cmd
}

#[test]
fn a_parquet_input_runs_into_a_parquet_output_with_typed_columns() {
    let dir = Dir::new();
    let Some(()) = write_prompts(&dir, "p.parquet", 3) else {
        return;
    };
    let mock = Mock::start(&[]);
    let out = run(parquet_job(&dir, &mock, "p.parquet", "out.parquet").args([
        "--template",
        "{prompt} n={count} s={score} f={flag} tags={tags} meta={meta}",
    ]));
    assert_eq!(out.code(), 0, "{}", out.stderr);

    let prompts: HashSet<String> = requests_per_prompt(&mock.requests()).into_keys().collect();
    let expected = r#"Say something about item 1. n=1 s=0.25 f=false tags=["a","t1"] meta={"k":1,"v":"x"}"#;
    assert!(
        prompts.contains(expected),
        "lists and structs are JSON in the template: {prompts:?}"
    );

    let Some((schema, rows)) = read_parquet(&dir, "out.parquet") else {
        return;
    };
    for column in [
        "id: string",
        "row: int64",
        "prompt: string",
        "count: int64",
        "small: int32",
        "score: double",
        "flag: bool",
        "tags: list<element: string>",
        "meta: struct<k: int64, v: string>",
        "status: string",
        "completion: string",
        "prompt_tokens: int64",
        "completion_tokens: int64",
        "total_tokens: int64",
        "cached_tokens: int64",
        "cost: double",
        "model: string",
        "error: string",
    ] {
        assert!(schema.iter().any(|c| c == column), "{column} in {schema:?}");
    }
    assert_eq!(rows.len(), 3);
    let r1 = &rows[1];
    assert_eq!(r1["id"], "r1");
    assert_eq!(r1["row"], 2);
    assert_eq!(r1["count"], 1);
    assert_eq!(r1["small"], 1);
    assert_eq!(r1["score"], 0.25);
    assert_eq!(r1["flag"], false);
    assert_eq!(r1["tags"], json!(["a", "t1"]));
    assert_eq!(r1["meta"], json!({"k": 1, "v": "x"}));
    assert_eq!(r1["status"], "done");
    assert_eq!(r1["error"], Value::Null);
    assert!(r1["completion"].as_str().is_some_and(|c| !c.is_empty()), "{r1}");
    let (p, c, t) = (
        &r1["prompt_tokens"],
        &r1["completion_tokens"],
        &r1["total_tokens"],
    );
    assert!(p.as_i64().unwrap() > 0, "{r1}");
    assert_eq!(
        p.as_i64().unwrap() + c.as_i64().unwrap(),
        t.as_i64().unwrap(),
        "{r1}"
    );
}

#[test]
fn sigkill_mid_run_then_resume_with_parquet_input_sends_no_done_row_twice() {
    let dir = Dir::new();
    let Some(()) = write_prompts(&dir, "p.parquet", 2000) else {
        return;
    };
    let mock = Mock::start(&["--latency", "20ms", "--latency-jitter", "10ms"]);
    let mut child = parquet_job(&dir, &mock, "p.parquet", "out.parquet")
        .args(["--concurrency", "16", "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(60), "300 requests at the server", || {
        mock.requests().len() >= 300
    });
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let snapshot =
        run(promptmill(&dir).args(["export", "out.parquet.promptmill.db", "-o", "snapshot.jsonl"]));
    assert_eq!(snapshot.code(), 0, "{}", snapshot.stderr);
    let done_before: HashSet<String> = dir
        .jsonl("snapshot.jsonl")
        .into_iter()
        .filter(|r| r["status"] == "done")
        .map(|r| r["id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        !done_before.is_empty() && done_before.len() < 2000,
        "{}",
        done_before.len()
    );

    let out = run(parquet_job(&dir, &mock, "p.parquet", "out.parquet").args(["--concurrency", "16"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(out.stderr.contains("resuming"), "{}", out.stderr);

    let per_prompt = requests_per_prompt(&mock.requests());
    for id in &done_before {
        let prompt = format!("Say something about item {}.", &id[1..]);
        assert_eq!(
            per_prompt.get(&prompt),
            Some(&1),
            "row {id} was done, then sent again"
        );
    }
    let Some((_, rows)) = read_parquet(&dir, "out.parquet") else {
        return;
    };
    assert_eq!(rows.len(), 2000, "every input row has one output row");
    let ids: HashSet<&str> = rows.iter().filter_map(|r| r["id"].as_str()).collect();
    assert_eq!(ids.len(), 2000, "no row is written twice");
    assert!(rows.iter().all(|r| r["status"] == "done"));
}

#[test]
fn a_template_column_the_parquet_file_lacks_is_refused_naming_file_and_column() {
    let dir = Dir::new();
    let Some(()) = write_prompts(&dir, "p.parquet", 3) else {
        return;
    };
    let mock = Mock::start(&[]);
    let out =
        run(parquet_job(&dir, &mock, "p.parquet", "out.parquet").args(["--template", "{prompt} {colour}"]));
    assert_ne!(out.code(), 0);
    assert!(out.stderr.contains("p.parquet"), "{}", out.stderr);
    assert!(out.stderr.contains("colour"), "{}", out.stderr);
    assert!(mock.requests().is_empty(), "nothing was sent");
}

#[test]
fn a_null_where_text_is_needed_names_file_row_and_column() {
    let dir = Dir::new();
    let script = "pq.write_table(pa.table({'id': ['a', 'b', 'c'], 'prompt': ['x', None, 'z']}), 'p.parquet')";
    let Some(_) = python(&dir, script) else { return };
    let mock = Mock::start(&[]);
    let out = run(&mut parquet_job(&dir, &mock, "p.parquet", "out.parquet"));
    assert_ne!(out.code(), 0);
    assert!(out.stderr.contains("p.parquet:2:"), "row 2 named: {}", out.stderr);
    assert!(out.stderr.contains("`prompt`"), "{}", out.stderr);
    assert!(mock.requests().is_empty(), "nothing was sent");

    let skipped = run(parquet_job(&dir, &mock, "p.parquet", "out.parquet").arg("--skip-invalid"));
    assert_eq!(
        skipped.code(),
        3,
        "finished, with an invalid row: {}",
        skipped.stderr
    );
    let Some((_, rows)) = read_parquet(&dir, "out.parquet") else {
        return;
    };
    let status: Vec<&str> = rows.iter().filter_map(|r| r["status"].as_str()).collect();
    assert_eq!(status, ["done", "invalid", "done"]);
    assert_eq!(rows[1]["prompt"], Value::Null, "the null stays a null");
}

#[test]
fn a_file_that_is_not_parquet_or_is_cut_short_is_refused_naming_it() {
    let dir = Dir::new();
    let Some(()) = write_prompts(&dir, "whole.parquet", 50) else {
        return;
    };
    let bytes = std::fs::read(dir.path("whole.parquet")).unwrap();
    dir.write("cut.parquet", &bytes[..bytes.len() / 2]);
    dir.write("text.parquet", "id,prompt\n1,hello\n");
    let mock = Mock::start(&[]);
    for name in ["cut.parquet", "text.parquet"] {
        let out = run(&mut parquet_job(&dir, &mock, name, "out.parquet"));
        assert_ne!(out.code(), 0, "{name}");
        assert!(out.stderr.contains(name), "{name}: {}", out.stderr);
        assert!(
            out.stderr.contains("not a readable Parquet file"),
            "{name}: {}",
            out.stderr
        );
        assert!(!dir.exists("out.parquet"), "{name}: no output was written");
    }
    let out = run(parquet_job(&dir, &mock, "-", "out.parquet").args(["--format", "parquet", "--db", "x.db"]));
    assert_ne!(out.code(), 0);
    assert!(out.stderr.contains("not standard input"), "{}", out.stderr);
    assert!(mock.requests().is_empty(), "nothing was sent");
}

#[test]
fn export_writes_a_jsonl_job_as_parquet_with_text_input_columns() {
    let dir = Dir::new();
    dir.write(
        "p.jsonl",
        "{\"id\":\"a\",\"prompt\":\"one\",\"n\":1}\n{\"id\":\"b\",\"prompt\":\"two\",\"n\":2}\n",
    );
    let mock = Mock::start(&[]);
    let out = run(&mut run_job(&dir, &mock));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let export = run(promptmill(&dir).args(["export", "out.jsonl.promptmill.db", "-o", "x.parquet"]));
    assert_eq!(export.code(), 0, "{}", export.stderr);
    let Some((schema, rows)) = read_parquet(&dir, "x.parquet") else {
        return;
    };
    assert!(schema.contains(&"prompt: string".to_string()), "{schema:?}");
    assert!(
        schema.contains(&"n: string".to_string()),
        "JSONL fields are text: {schema:?}"
    );
    let jsonl = dir.jsonl("out.jsonl");
    assert_eq!(rows.len(), jsonl.len());
    for (p, j) in rows.iter().zip(&jsonl) {
        assert_eq!(p["id"], j["id"]);
        assert_eq!(p["completion"], j["completion"]);
        assert_eq!(p["prompt_tokens"], j["usage"]["prompt_tokens"]);
        assert_eq!(p["n"], json!(j["input"]["n"].to_string()));
    }
    let meta = python(
        &dir,
        "print(pq.ParquetFile('x.parquet').metadata.row_group(0).column(0).compression)",
    );
    assert_eq!(meta.as_deref().map(str::trim), Some("SNAPPY"));
}

/// An input of nested columns with nulls at each level: lists of text, of int32 and of int64,
/// a struct, a list of structs, and a map.
const NESTED: &str = "\
tags = [['a', None, 'b'], [], None, ['c']]
t = pa.table({
  'id': ['r0', 'r1', 'r2', 'r3'],
  'prompt': ['one', 'two', 'three', 'four'],
  'tags': pa.array(tags, pa.list_(pa.string())),
  'small': pa.array([[1, -2], None, [], [None]], pa.list_(pa.int32())),
  'big': pa.array([[2**53 + 1], [], None, [0, -1]], pa.list_(pa.int64())),
  'meta': pa.array([{'a': 1, 'b': 'x'}, {'a': None, 'b': None}, None, {'a': -5, 'b': ''}],
                   pa.struct([('a', pa.int64()), ('b', pa.string())])),
  'items': pa.array([[{'n': 'p', 'q': 1}, None, {'n': None, 'q': 2}], None, [], [{'n': 'z', 'q': None}]],
                    pa.list_(pa.struct([('n', pa.string()), ('q', pa.int32())]))),
  'counts': pa.array([[('x', 1), ('y', None)], [], None, [('z', 3)]], pa.map_(pa.string(), pa.int64())),
})
pq.write_table(t, 'nested.parquet', row_group_size=3)
";

/// Each column of `input` beside the same column of `output`, as pyarrow reads them: the type,
/// the nullability and the values, one JSON line per column.
fn compare_columns(dir: &Dir, input: &str, output: &str) -> Option<Vec<Value>> {
    let script = format!(
        "a, b = pq.read_table('{input}'), pq.read_table('{output}')\n\
         for f in a.schema:\n\
         \x20   g = b.schema.field(f.name)\n\
         \x20   print(json.dumps({{'name': f.name, 'in': [str(f.type), f.nullable], 'out': [str(g.type), g.nullable],\n\
         \x20     'same': f.type == g.type and f.nullable == g.nullable,\n\
         \x20     'values_in': a.column(f.name).to_pylist(), 'values_out': b.column(f.name).to_pylist()}}))"
    );
    let out = python(dir, &script)?;
    Some(
        out.lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect(),
    )
}

#[test]
fn nested_input_columns_keep_their_parquet_types_in_run_and_export_outputs() {
    let dir = Dir::new();
    let Some(_) = python(&dir, NESTED) else {
        return;
    };
    let mock = Mock::start(&[]);
    let out = run(parquet_job(&dir, &mock, "nested.parquet", "out.parquet").args(["--template", "{prompt}"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let export = run(promptmill(&dir).args(["export", "out.parquet.promptmill.db", "-o", "x.parquet"]));
    assert_eq!(export.code(), 0, "{}", export.stderr);
    for output in ["out.parquet", "x.parquet"] {
        let Some(columns) = compare_columns(&dir, "nested.parquet", output) else {
            return;
        };
        let names: Vec<&str> = columns.iter().filter_map(|c| c["name"].as_str()).collect();
        assert_eq!(
            names,
            ["id", "prompt", "tags", "small", "big", "meta", "items", "counts"]
        );
        for c in columns.iter().filter(|c| c["name"] != "id") {
            assert_eq!(c["same"], true, "{output}: type and nullability kept: {c}");
            assert_eq!(c["in"], c["out"], "{output}: {c}");
            assert_eq!(c["values_in"], c["values_out"], "{output}: values kept: {c}");
        }
        let types: Vec<&Value> = columns.iter().map(|c| &c["out"][0]).collect();
        assert_eq!(types[2], "list<element: string>");
        assert_eq!(types[6], "list<element: struct<n: string, q: int32>>");
        // pyarrow names a Parquet map's column in its type's text: `map<string, int64 ('counts')>`.
        assert!(
            types[7]
                .as_str()
                .is_some_and(|t| t.starts_with("map<string, int64")),
            "{}",
            types[7]
        );
    }
}

#[test]
fn a_schema_job_writes_its_outcome_and_a_string_column_per_property() {
    let dir = Dir::new();
    let rows = [
        json!({"id": "r1", "product": "a lamp"}),
        json!({"id": "r2", "product": "[[mock:reply=refusal]] a chair"}),
    ];
    dir.write("p.jsonl", rows.map(|r| format!("{r}\n")).concat());
    let mock = Mock::start(&[]);
    let out = run(promptmill(&dir).args([
        "run",
        "p.jsonl",
        "-o",
        "out.parquet",
        "--model",
        "gpt-4o-mini",
        "--base-url",
        &mock.url,
        "--template",
        "Describe {product}",
        "--fields",
        "title, price: number",
    ]));
    assert!(matches!(out.code(), 0 | 3), "{}", out.stderr);
    let Some((schema, rows)) = read_parquet(&dir, "out.parquet") else {
        return;
    };
    let tail = [
        "cached: bool",
        "schema: string",
        "data.title: string",
        "data.price: string",
    ];
    assert!(schema.ends_with(&tail.map(String::from)), "{schema:?}");
    let (valid, refused) = (&rows[0], &rows[1]);
    assert_eq!(valid["schema"], "valid", "{valid}");
    assert!(
        valid["data.title"].as_str().is_some_and(|t| !t.is_empty()),
        "{valid}"
    );
    let price = valid["data.price"].as_str().expect("the price as text");
    price.parse::<f64>().expect("a number's JSON text");
    assert_eq!(valid["cached"], false);
    assert_eq!(refused["schema"], "refused", "{refused}");
    assert_eq!(refused["status"], "failed");
    assert_eq!(refused["data.title"], Value::Null);
    assert_eq!(refused["data.price"], Value::Null);
}

#[test]
fn a_job_without_a_schema_has_no_schema_columns_in_parquet() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 2);
    let mock = Mock::start(&[]);
    let out = run(&mut parquet_job(&dir, &mock, "p.jsonl", "out.parquet"));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let Some((schema, rows)) = read_parquet(&dir, "out.parquet") else {
        return;
    };
    assert_eq!(
        schema.last().map(String::as_str),
        Some("cached: bool"),
        "{schema:?}"
    );
    assert!(rows.iter().all(|r| r["cached"] == false), "{rows:?}");
}
