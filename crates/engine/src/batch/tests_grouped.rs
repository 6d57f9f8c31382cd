//! The driver with an embeddings job: a part's rows go in lines of `--rows-per-request` inputs
//! (a line of one row keeps the row's id), each line's answer settles its rows by `index` with
//! the usage split over them, a vector missing from an answer fails only its row, a failed line
//! fails all its rows, and a changed `--rows-per-request` does not change how a submitted part's
//! lines are read back. The service is a fake upload-intake service; OpenAI's own lookups are
//! `tests.rs`'.

use std::sync::Mutex;

use bytes::Bytes;

use super::calls::{Calls, Step};
use super::driver::{Driver, Ending};
use super::service::{
    BatchService, BatchView, Counts, Create, End, Found, FoundUpload, Input, Intake, LineOutcome, ResultLine,
    State,
};
use super::tests::{limits, settings};
use super::ApiError;
use crate::store::{state, NewRow, Store};
use promptmill_core::family::Endpoint;
use promptmill_core::job::JobRecord;

#[derive(Default)]
struct Files {
    /// Uploaded files by id (`f0`, `f1`, …); a batch's id is its file's.
    uploads: Vec<Bytes>,
    /// Lines whose custom_id is this fail with a 500.
    fail_line: Option<String>,
    /// Answers leave out the vector of this index (of lines of several inputs).
    drop_index: Option<u64>,
}

#[derive(Default)]
struct Embedder(Mutex<Files>);

fn view(id: &str, state: State) -> BatchView {
    BatchView {
        id: id.to_string(),
        status: if matches!(state, State::Ended(_)) {
            "completed"
        } else {
            "in_progress"
        }
        .into(),
        state,
        counts: Counts::default(),
        errors: Vec::new(),
        output: Some(id.to_string()),
        error_output: None,
    }
}

/// The vector the fake gives a text: its length and its first byte.
fn vector(text: &str) -> Vec<f32> {
    vec![
        text.len() as f32,
        f32::from(text.as_bytes().first().copied().unwrap_or(0)),
    ]
}

/// The answer to one line: a vector per input (by index), 2 prompt tokens per input.
fn answer(body: &serde_json::Value, drop_index: Option<u64>) -> serde_json::Value {
    let texts: Vec<&str> = match &body["input"] {
        serde_json::Value::Array(many) => many.iter().filter_map(|t| t.as_str()).collect(),
        one => one.as_str().into_iter().collect(),
    };
    let data: Vec<serde_json::Value> = texts
        .iter()
        .enumerate()
        .filter(|(i, _)| texts.len() == 1 || drop_index != Some(*i as u64))
        .map(|(i, t)| serde_json::json!({"object": "embedding", "index": i, "embedding": vector(t)}))
        .collect();
    let tokens = 2 * texts.len();
    serde_json::json!({"object": "list", "data": data, "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})
}

impl BatchService for Embedder {
    fn intake(&self) -> Intake {
        Intake::Upload
    }

    fn encode(&self, custom_id: &str, body: &str, endpoint: Endpoint) -> Result<Vec<u8>, String> {
        super::openai::input_line(
            custom_id,
            body,
            endpoint,
            &promptmill_core::provider::Provider::OpenAi,
        )
    }

    async fn upload(&self, _filename: &str, content: Bytes) -> Result<String, ApiError> {
        let mut f = self.0.lock().unwrap();
        f.uploads.push(content);
        Ok(format!("f{}", f.uploads.len() - 1))
    }

    async fn find_upload(&self, _calls: &Calls, _filename: &str, _bytes: u64) -> Step<FoundUpload> {
        Ok(FoundUpload::default())
    }

    async fn delete_upload(&self, _id: &str) -> Result<(), ApiError> {
        Ok(())
    }

    async fn create(&self, request: &Create) -> Result<BatchView, ApiError> {
        let Input::File(id) = &request.input else {
            unreachable!("an upload-intake service")
        };
        Ok(view(id, State::Running))
    }

    async fn find_created(&self, _calls: &Calls, _request: &Create) -> Step<Found> {
        Ok(Found::Nothing)
    }

    async fn poll(&self, id: &str) -> Result<BatchView, ApiError> {
        Ok(view(id, State::Ended(End::Completed)))
    }

    async fn cancel(&self, id: &str) -> Result<BatchView, ApiError> {
        Ok(view(id, State::Ended(End::Cancelled)))
    }

    fn has_ended(&self, status: &str) -> bool {
        status == "completed"
    }

    async fn download<F>(&self, location: &str, mut each: F) -> anyhow::Result<()>
    where
        F: FnMut(&[u8]) -> anyhow::Result<()> + Send,
    {
        let (content, fail_line, drop_index) = {
            let f = self.0.lock().unwrap();
            let n: usize = location[1..].parse()?;
            (f.uploads[n].clone(), f.fail_line.clone(), f.drop_index)
        };
        for line in std::str::from_utf8(&content)?.lines() {
            let v: serde_json::Value = serde_json::from_str(line)?;
            let id = v["custom_id"].as_str().unwrap_or_default();
            let (status, body) = if fail_line.as_deref() == Some(id) {
                (
                    500,
                    serde_json::json!({"error": {"message": "the server had an error", "type": "server_error"}}),
                )
            } else {
                (200, answer(&v["body"], drop_index))
            };
            let out = serde_json::json!({"custom_id": id, "response": {"status_code": status, "body": body}});
            each(format!("{out}\n").as_bytes())?;
        }
        Ok(())
    }

    fn read_line<'a>(&self, line: &'a str) -> Option<ResultLine<'a>> {
        let l: super::wire::OutputLine<'a> = serde_json::from_str(line).ok()?;
        let r = l.response?;
        Some(ResultLine {
            custom_id: l.custom_id,
            outcome: LineOutcome::Response {
                status: r.status_code,
                body: r.body.map_or("", |b| b.get()),
            },
        })
    }
}

/// A store of `n` embeddings rows `r1..rn` (texts of different lengths), the job sending
/// `per` rows a request.
fn embeddings_store(dir: &tempfile::TempDir, n: u64, per: usize) -> (Store, JobRecord) {
    let mut store = Store::open(&dir.path().join("job.db"), true).unwrap();
    let mut ingest = store.begin_ingest().unwrap();
    for seq in 1..=n {
        let id = format!("r{seq}");
        let text = format!("{}text {seq}", "x".repeat(seq as usize));
        let request = serde_json::json!({"model": "text-embedding-3-small", "input": text,
            "encoding_format": "float"})
        .to_string();
        ingest
            .add(&NewRow {
                seq,
                id: &id,
                line: seq,
                fields: "{}",
                request: Some(&request),
                error: None,
                input_tokens: None,
                digest: None,
            })
            .unwrap()
            .unwrap();
    }
    let mut job = JobRecord::example();
    job.endpoint = Endpoint::Embeddings;
    job.spec.model = Some("text-embedding-3-small".into());
    job.send.rows_per_request = per;
    ingest.commit(&job, n).unwrap();
    (store, job)
}

async fn drive(e: &Embedder, dir: &tempfile::TempDir, store: &mut Store, job: &JobRecord) -> Ending {
    let stop = tokio_util::sync::CancellationToken::new();
    Driver::new(e, store, job, settings(dir, limits(10, None)), stop)
        .run()
        .await
        .unwrap()
}

/// A row's state, vector, prompt tokens and error.
type Row = (String, Option<Vec<f32>>, Option<i64>, Option<String>);

fn rows(store: &Store) -> Vec<Row> {
    let mut out = Vec::new();
    store
        .for_each_row(|r| {
            out.push((r.state, r.embedding, r.prompt_tokens, r.error));
            Ok(())
        })
        .unwrap();
    out
}

fn text(seq: usize) -> String {
    format!("{}text {seq}", "x".repeat(seq))
}

#[tokio::test]
async fn rows_go_in_lines_of_rows_per_request_and_each_gets_its_own_vector() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, job) = embeddings_store(&dir, 7, 3);
    let e = Embedder::default();
    assert_eq!(drive(&e, &dir, &mut store, &job).await, Ending::Finished);
    let uploaded = e.0.lock().unwrap().uploads[0].clone();
    let lines: Vec<serde_json::Value> = std::str::from_utf8(&uploaded)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: Vec<&str> = lines.iter().map(|l| l["custom_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["promptmill-rows-1-3", "promptmill-rows-4-6", "r7"]);
    assert_eq!(
        lines[0]["body"]["input"],
        serde_json::json!([text(1), text(2), text(3)])
    );
    assert_eq!(
        lines[2]["body"]["input"],
        text(7),
        "a line of one row is the row's request"
    );
    assert_eq!(
        store.part(1).unwrap().bytes,
        uploaded.len() as u64,
        "the exact size, recorded"
    );
    let rows = rows(&store);
    for (i, (state, vector, _, _)) in rows.iter().enumerate() {
        assert_eq!(state, state::DONE);
        assert_eq!(vector.as_deref(), Some(&vector_of(i + 1)[..]), "row {}", i + 1);
    }
    // 2 tokens per input, split over each line's rows: the rows' total is the server's.
    let total: i64 = rows.iter().filter_map(|r| r.2).sum();
    assert_eq!(total, 14);
}

fn vector_of(seq: usize) -> Vec<f32> {
    vector(&text(seq))
}

#[tokio::test]
async fn a_missing_vector_fails_its_row_and_a_failed_line_fails_all_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, job) = embeddings_store(&dir, 6, 3);
    let e = Embedder::default();
    {
        let mut f = e.0.lock().unwrap();
        f.drop_index = Some(1);
        f.fail_line = Some("promptmill-rows-4-6".into());
    }
    assert_eq!(drive(&e, &dir, &mut store, &job).await, Ending::Finished);
    let rows = rows(&store);
    let states: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(states, ["done", "failed", "done", "failed", "failed", "failed"]);
    assert_eq!(rows[0].1.as_deref(), Some(&vector_of(1)[..]));
    assert_eq!(
        rows[2].1.as_deref(),
        Some(&vector_of(3)[..]),
        "by index, not position"
    );
    for r in &rows[3..] {
        assert!(r.3.as_deref().unwrap_or("").contains("500"), "{r:?}");
    }
}

#[tokio::test]
async fn a_submitted_part_is_read_back_by_its_lines_whatever_rows_per_request_is_now() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, mut job) = embeddings_store(&dir, 8, 4);
    let e = Embedder::default();
    let mut s = settings(&dir, limits(10, None));
    s.no_wait = true;
    let stop = tokio_util::sync::CancellationToken::new();
    let ending = Driver::new(&e, &mut store, &job, s, stop).run().await.unwrap();
    assert_eq!(ending, Ending::Submitted { open: 1 });
    // The resume is given --rows-per-request 3: the part's lines still name their rows.
    job.send.rows_per_request = 3;
    assert_eq!(drive(&e, &dir, &mut store, &job).await, Ending::Finished);
    let rows = rows(&store);
    assert!(rows.iter().all(|r| r.0 == state::DONE), "{rows:?}");
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r.1.as_deref(), Some(&vector_of(i + 1)[..]));
    }
}
