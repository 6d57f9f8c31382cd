//! The driver against a fake service that takes a part's requests inline in the create call, as
//! Anthropic's Message Batches do: a part goes `planned` → `creating` → `submitted` with no
//! upload, a create whose answer was lost is looked up and found rather than made again, and a
//! look that cannot tell stops the run without a second create (then and on the next run).

use std::sync::Mutex;

use bytes::Bytes;

use super::calls::{Calls, Step};
use super::driver::{Driver, Ending};
use super::service::{
    BatchService, BatchView, Counts, Create, End, Found, FoundUpload, Input, Intake, LineOutcome, ResultLine,
    State,
};
use super::tests::{limits, settings, store};
use super::ApiError;
use crate::store::{stage, Store};
use promptmill_core::family::Endpoint;

#[derive(Default)]
struct Made {
    /// Every batch created: its id and its requests.
    batches: Vec<(String, Bytes)>,
    calls: Vec<&'static str>,
    /// The next create is made, and its answer lost.
    lose_create: bool,
    /// Looks cannot tell whether a batch was made.
    ambiguous: bool,
}

#[derive(Default)]
struct Inline(Mutex<Made>);

impl Inline {
    fn made(&self) -> std::sync::MutexGuard<'_, Made> {
        self.0.lock().unwrap()
    }
}

fn ended(id: &str) -> BatchView {
    BatchView {
        id: id.to_string(),
        status: "ended".into(),
        state: State::Ended(End::Completed),
        counts: Counts::default(),
        errors: Vec::new(),
        output: Some(id.to_string()),
        error_output: None,
    }
}

fn refused(what: &str) -> ApiError {
    ApiError::Unexpected {
        what: what.into(),
        detail: "an inline service has no such call".into(),
    }
}

impl BatchService for Inline {
    fn intake(&self) -> Intake {
        Intake::Inline
    }

    fn encode(&self, custom_id: &str, body: &str, _endpoint: Endpoint) -> Result<Vec<u8>, String> {
        let body: serde_json::Value = serde_json::from_str(body).map_err(|e| e.to_string())?;
        let mut line = serde_json::json!({"custom_id": custom_id, "params": body}).to_string();
        line.push('\n');
        Ok(line.into_bytes())
    }

    async fn upload(&self, _filename: &str, _content: Bytes) -> Result<String, ApiError> {
        self.made().calls.push("upload");
        Err(refused("upload"))
    }

    async fn find_upload(&self, _calls: &Calls, _filename: &str, _bytes: u64) -> Step<FoundUpload> {
        self.made().calls.push("find_upload");
        Ok(FoundUpload::default())
    }

    async fn delete_upload(&self, _id: &str) -> Result<(), ApiError> {
        Err(refused("delete"))
    }

    async fn create(&self, request: &Create) -> Result<BatchView, ApiError> {
        let mut m = self.made();
        m.calls.push("create");
        let Input::Inline(requests) = &request.input else {
            return Err(refused("create from a file"));
        };
        let id = format!("msgbatch_{}", m.batches.len());
        m.batches.push((id.clone(), requests.clone()));
        if std::mem::take(&mut m.lose_create) {
            return Err(ApiError::NoAnswer {
                what: "create".into(),
                detail: "connection reset".into(),
            });
        }
        Ok(BatchView {
            status: "in_progress".into(),
            state: State::Running,
            ..ended(&id)
        })
    }

    async fn find_created(&self, _calls: &Calls, request: &Create) -> Step<Found> {
        let mut m = self.made();
        m.calls.push("find_created");
        if m.ambiguous {
            return Ok(Found::Ambiguous(
                "two batches of 3 requests were created within the minute".into(),
            ));
        }
        let Input::Inline(requests) = &request.input else {
            return Ok(Found::Nothing);
        };
        Ok(match m.batches.iter().find(|(_, r)| r == requests) {
            Some((id, _)) => Found::Batch(ended(id)),
            None => Found::Nothing,
        })
    }

    async fn poll(&self, id: &str) -> Result<BatchView, ApiError> {
        Ok(ended(id))
    }

    async fn cancel(&self, _id: &str) -> Result<BatchView, ApiError> {
        Err(refused("cancel"))
    }

    fn has_ended(&self, status: &str) -> bool {
        status == "ended"
    }

    /// Each request answered with a chat completion of its custom_id.
    async fn download<F>(&self, location: &str, mut each: F) -> anyhow::Result<()>
    where
        F: FnMut(&[u8]) -> anyhow::Result<()> + Send,
    {
        let requests = {
            let m = self.made();
            let found = m.batches.iter().find(|(id, _)| id == location);
            found.map(|(_, r)| r.clone()).unwrap_or_default()
        };
        for line in std::str::from_utf8(&requests)?.lines() {
            let v: serde_json::Value = serde_json::from_str(line)?;
            let id = v["custom_id"].as_str().unwrap_or_default();
            let answer = serde_json::json!({"custom_id": id, "status": 200, "body": {
                "id": "c", "model": "m",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": format!("inline {id}")},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}});
            each(format!("{answer}\n").as_bytes())?;
        }
        Ok(())
    }

    fn read_line<'a>(&self, line: &'a str) -> Option<ResultLine<'a>> {
        #[derive(serde::Deserialize)]
        struct Answer<'a> {
            #[serde(borrow)]
            custom_id: std::borrow::Cow<'a, str>,
            status: u16,
            #[serde(borrow)]
            body: &'a serde_json::value::RawValue,
        }
        let a: Answer<'a> = serde_json::from_str(line).ok()?;
        Some(ResultLine {
            custom_id: a.custom_id,
            outcome: LineOutcome::Response {
                status: a.status,
                body: a.body.get(),
            },
        })
    }
}

async fn drive(
    service: &Inline,
    dir: &tempfile::TempDir,
    store: &mut Store,
    job: &promptmill_core::job::JobRecord,
) -> anyhow::Result<Ending> {
    let stop = tokio_util::sync::CancellationToken::new();
    Driver::new(service, store, job, settings(dir, limits(10, None)), stop)
        .run()
        .await
}

#[tokio::test]
async fn an_inline_service_gets_the_requests_in_the_create_and_nothing_is_uploaded() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, job) = store(&dir, 5, |_| false);
    let service = Inline::default();
    assert_eq!(
        drive(&service, &dir, &mut store, &job).await.unwrap(),
        Ending::Finished
    );
    let m = service.made();
    assert_eq!(m.calls, ["create"]);
    assert_eq!(std::str::from_utf8(&m.batches[0].1).unwrap().lines().count(), 5);
    let part = store.part(1).unwrap();
    assert_eq!((part.stage.as_str(), part.file_id), (stage::COLLECTED, None));
    let c = store.counts().unwrap();
    assert_eq!((c.done, c.prompt_tokens), (5, 15));
}

#[tokio::test]
async fn a_lost_inline_create_is_found_and_not_made_again() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, job) = store(&dir, 3, |_| false);
    let service = Inline::default();
    service.made().lose_create = true;
    assert_eq!(
        drive(&service, &dir, &mut store, &job).await.unwrap(),
        Ending::Finished
    );
    let m = service.made();
    assert_eq!(m.calls, ["create", "find_created"], "a look, not a second create");
    assert_eq!(m.batches.len(), 1);
    assert_eq!(store.counts().unwrap().done, 3);
}

#[tokio::test]
async fn a_look_that_cannot_tell_stops_the_run_and_never_creates_a_second_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, job) = store(&dir, 3, |_| false);
    let service = Inline::default();
    {
        let mut m = service.made();
        m.lose_create = true;
        m.ambiguous = true;
    }
    let e = drive(&service, &dir, &mut store, &job).await.unwrap_err();
    assert!(e.to_string().contains("do not say whether it was made"), "{e:#}");
    assert!(e.to_string().contains("within the minute"), "{e:#}");
    assert_eq!(
        store.part(1).unwrap().stage,
        stage::CREATING,
        "left to be looked for again"
    );
    // The next run looks again, and stops again: still one batch.
    assert!(drive(&service, &dir, &mut store, &job).await.is_err());
    let m = service.made();
    assert_eq!(m.batches.len(), 1);
    assert_eq!(m.calls.iter().filter(|c| **c == "create").count(), 1);
}
