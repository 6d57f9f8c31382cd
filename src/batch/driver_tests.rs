//! Specifications of the driver's "look before trying again" rule against an in-process
//! [`BatchApi`] that can fail a call *after* doing it, as a gateway answering 5xx for a backend
//! that stored the upload or created the batch would. Third-party servers (aimock) inject their
//! faults before doing anything, so this case is pinned here.

use std::sync::Mutex;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::client::{ApiError, BatchApi, CreateBatch};
use super::driver::{Driver, DriverSettings, Ending};
use super::wire::{Batch, BatchStatus, FileObject, List, RequestCounts};
use crate::config::BatchSettings;
use crate::job::JobRecord;
use crate::store::{NewRow, Store};

/// A Batch API that keeps files and batches in memory, completes a batch on its first
/// retrieve, and logs every call.
#[derive(Default)]
struct Fake {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    files: Vec<(FileObject, Bytes)>,
    batches: Vec<Batch>,
    calls: Vec<&'static str>,
    /// The next upload is stored, then answered with this status.
    upload_stored_then: Option<u16>,
    /// The next create makes the batch, then answers with this status.
    create_made_then: Option<u16>,
    /// The next create is refused with this status, making nothing.
    create_refused: Option<u16>,
}

fn status(what: &str, status: u16) -> ApiError {
    ApiError::Status {
        what: what.into(),
        status,
        message: "injected".into(),
        retry_after: Some(std::time::Duration::from_millis(10)),
    }
}

impl Fake {
    fn calls(&self) -> Vec<&'static str> {
        self.state.lock().unwrap().calls.clone()
    }

    fn count(&self, call: &str) -> usize {
        self.calls().iter().filter(|c| **c == call).count()
    }
}

impl BatchApi for Fake {
    async fn upload(&self, filename: &str, content: Bytes) -> Result<FileObject, ApiError> {
        let mut s = self.state.lock().unwrap();
        s.calls.push("upload");
        let file = FileObject {
            id: format!("file-{}", s.files.len() + 1),
            bytes: Some(content.len() as u64),
            filename: Some(filename.into()),
            purpose: Some("batch".into()),
        };
        s.files.push((file.clone(), content));
        match s.upload_stored_then.take() {
            Some(code) => Err(status("uploading", code)),
            None => Ok(file),
        }
    }

    async fn list_files(&self, _after: Option<&str>) -> Result<List<FileObject>, ApiError> {
        let mut s = self.state.lock().unwrap();
        s.calls.push("list_files");
        let data = s.files.iter().rev().map(|(f, _)| f.clone()).collect();
        Ok(List {
            data,
            has_more: false,
            last_id: None,
        })
    }

    async fn delete_file(&self, id: &str) -> Result<(), ApiError> {
        let mut s = self.state.lock().unwrap();
        s.calls.push("delete_file");
        s.files.retain(|(f, _)| f.id != id);
        Ok(())
    }

    async fn create(&self, request: &CreateBatch) -> Result<Batch, ApiError> {
        let mut s = self.state.lock().unwrap();
        s.calls.push("create");
        if let Some(code) = s.create_refused.take() {
            return Err(status("creating", code));
        }
        let batch = Batch {
            id: format!("batch-{}", s.batches.len() + 1),
            status: BatchStatus::Validating,
            input_file_id: Some(request.input_file_id.clone()),
            output_file_id: None,
            error_file_id: None,
            request_counts: None,
            errors: None,
            metadata: Some(request.metadata.clone()),
        };
        s.batches.push(batch.clone());
        match s.create_made_then.take() {
            Some(code) => Err(status("creating", code)),
            None => Ok(batch),
        }
    }

    /// Completes the batch: one output line per input line, each a chat completion.
    async fn retrieve(&self, id: &str) -> Result<Batch, ApiError> {
        let mut s = self.state.lock().unwrap();
        s.calls.push("retrieve");
        let i = s.batches.iter().position(|b| b.id == id).expect("a known batch");
        if s.batches[i].status != BatchStatus::Completed {
            let input = s.batches[i].input_file_id.clone().unwrap_or_default();
            let content = s
                .files
                .iter()
                .find(|(f, _)| f.id == input)
                .expect("its input")
                .1
                .clone();
            let mut out = String::new();
            let mut n = 0;
            for line in String::from_utf8_lossy(&content).lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                let body = serde_json::json!({"choices": [{"index": 0, "message": {"role": "assistant",
                    "content": "ok"}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 1,
                    "completion_tokens": 1, "total_tokens": 2}});
                let line = serde_json::json!({"custom_id": v["custom_id"],
                    "response": {"status_code": 200, "body": body}, "error": null});
                out.push_str(&format!("{line}\n"));
                n += 1;
            }
            let file = FileObject {
                id: format!("file-{}", s.files.len() + 1),
                bytes: Some(out.len() as u64),
                filename: None,
                purpose: Some("batch_output".into()),
            };
            let b = &mut s.batches[i];
            b.status = BatchStatus::Completed;
            b.output_file_id = Some(file.id.clone());
            b.request_counts = Some(RequestCounts {
                total: n,
                completed: n,
                failed: 0,
            });
            s.files.push((file, Bytes::from(out)));
        }
        Ok(s.batches[i].clone())
    }

    async fn cancel(&self, _id: &str) -> Result<Batch, ApiError> {
        unreachable!("the driver never cancels")
    }

    async fn list_batches(&self, _after: Option<&str>) -> Result<List<Batch>, ApiError> {
        let mut s = self.state.lock().unwrap();
        s.calls.push("list_batches");
        let data = s.batches.iter().rev().cloned().collect();
        Ok(List {
            data,
            has_more: false,
            last_id: None,
        })
    }

    async fn download<F>(&self, id: &str, mut each: F) -> anyhow::Result<()>
    where
        F: FnMut(&[u8]) -> anyhow::Result<()> + Send,
    {
        let content = {
            let mut s = self.state.lock().unwrap();
            s.calls.push("download");
            s.files
                .iter()
                .find(|(f, _)| f.id == id)
                .expect("a known file")
                .1
                .clone()
        };
        each(&content)
    }
}

/// Drives a job of `n` rows through `api` to its end; returns the store and how it ended.
async fn drive(api: &Fake, n: u64) -> (Store, Ending) {
    let job = JobRecord::example();
    let mut store = Store::open_in_memory().unwrap();
    let ids: Vec<String> = (1..=n).map(|i| format!("r{i}")).collect();
    let mut ingest = store.begin_ingest().unwrap();
    for (i, id) in ids.iter().enumerate() {
        let seq = i as u64 + 1;
        let row = NewRow {
            seq,
            id,
            line: seq,
            fields: "{\"prompt\":\"hi\"}",
            request: Some(
                "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
            ),
            error: None,
        };
        ingest.add(&row).unwrap().unwrap();
    }
    ingest.commit(&job, n).unwrap();
    let spool = tempfile::tempdir().unwrap();
    let settings = DriverSettings {
        batch: BatchSettings {
            poll_interval: std::time::Duration::from_millis(10),
            ..BatchSettings::default()
        },
        no_wait: false,
        submit: true,
        tag: "test".into(),
        spool: spool.path().join("db"),
        quiet: true,
    };
    let ending = Driver::new(api, &mut store, &job, settings, CancellationToken::new())
        .run()
        .await
        .unwrap();
    (store, ending)
}

#[tokio::test(start_paused = true)]
async fn a_batch_created_behind_a_5xx_is_found_and_not_created_again() {
    let api = Fake::default();
    api.state.lock().unwrap().create_made_then = Some(502);
    let (store, ending) = drive(&api, 3).await;
    assert_eq!(ending, Ending::Finished);
    assert_eq!(store.counts().unwrap().done, 3);
    assert_eq!(api.count("create"), 1, "{:?}", api.calls());
    assert_eq!(
        api.calls()[..3],
        ["upload", "create", "list_batches"],
        "the 502 is followed by a look, not a second create"
    );
    assert_eq!(store.part(1).unwrap().batch_id.as_deref(), Some("batch-1"));
}

#[tokio::test(start_paused = true)]
async fn an_upload_stored_behind_a_5xx_is_reused_and_not_uploaded_again() {
    let api = Fake::default();
    api.state.lock().unwrap().upload_stored_then = Some(500);
    let (store, ending) = drive(&api, 3).await;
    assert_eq!(ending, Ending::Finished);
    assert_eq!(store.counts().unwrap().done, 3);
    assert_eq!(api.calls()[..3], ["upload", "list_files", "create"]);
    assert_eq!(api.count("upload"), 1, "{:?}", api.calls());
    assert_eq!(store.part(1).unwrap().file_id.as_deref(), Some("file-1"));
}

#[tokio::test(start_paused = true)]
async fn a_429_on_create_made_nothing_so_it_is_sent_again_without_a_look() {
    let api = Fake::default();
    api.state.lock().unwrap().create_refused = Some(429);
    let (store, ending) = drive(&api, 3).await;
    assert_eq!(ending, Ending::Finished);
    assert_eq!(store.counts().unwrap().done, 3);
    assert_eq!(api.calls()[..3], ["upload", "create", "create"]);
    assert_eq!(api.count("list_batches"), 0);
}
