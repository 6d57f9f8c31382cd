//! The driver against an in-memory provider: parts are planned within their limits and the
//! queue limit, every row is collected once, and an upload or batch creation whose answer was
//! lost — no answer, or a 5xx from a gateway after the backend acted — is found at the provider
//! instead of being made twice, while a 4xx or 429, which did nothing, is simply sent again.
//! Third-party servers (aimock) inject their faults before acting, so these cases live here.
//! The provider is OpenAI's protocol (`openai.rs`) over a fake of its Files and Batches calls.

use std::sync::Mutex;

use bytes::Bytes;

use super::client::{ApiError, CreateBatch, FilesBatchesApi};
use super::driver::{Driver, DriverSettings, Ending};
use super::openai::OpenAiBatches;
use super::wire::{Batch, BatchStatus, FileObject, List, RequestCounts};
use crate::store::{state, NewRow, Store};
use promptmill_core::job::settings::BatchSettings;
use promptmill_core::job::{Endpoint, JobRecord};

#[derive(Default)]
struct Provider {
    files: Vec<(String, String, Bytes)>,
    deleted: Vec<String>,
    batches: Vec<(Batch, u32)>,
    uploads: u32,
    creates: u32,
    /// Every call, in order.
    calls: Vec<&'static str>,
    /// The next upload is stored, and then answered with this failure.
    lose_upload: Option<Lost>,
    /// The next batch is created, and then answered with this failure.
    lose_create: Option<Lost>,
    /// The next create is refused with this status, making nothing.
    refuse_create: Option<u16>,
    /// The next upload is refused with this status, storing nothing.
    refuse_upload: Option<u16>,
    /// Every create is refused: the account is out of credit.
    out_of_quota: bool,
    /// The next upload is stored, and its answer never comes.
    hang_upload: bool,
    /// Retrieves a batch takes to complete.
    polls: u32,
    /// Batches end `expired` after half their lines.
    expire: bool,
    /// Most batches open at once, as seen by creates.
    max_open: usize,
}

#[derive(Default)]
struct Fake(Mutex<Provider>);

/// How an answer is lost.
#[derive(Clone, Copy)]
enum Lost {
    NoAnswer,
    Status(u16),
}

fn failure(what: &str, how: Lost) -> ApiError {
    match how {
        Lost::NoAnswer => ApiError::NoAnswer {
            what: what.into(),
            detail: "connection reset".into(),
        },
        Lost::Status(status) => ApiError::Status {
            what: what.into(),
            status,
            message: "injected".into(),
            retry_after: Some(std::time::Duration::from_millis(10)),
        },
    }
}

fn batch(id: String, file: String, status: BatchStatus) -> Batch {
    Batch {
        id,
        status,
        input_file_id: Some(file),
        output_file_id: None,
        error_file_id: None,
        request_counts: None,
        errors: None,
        metadata: None,
        created_at: None,
    }
}

impl Fake {
    fn p(&self) -> std::sync::MutexGuard<'_, Provider> {
        self.0.lock().unwrap()
    }

    /// Finishes batch `i`: answers each line (a custom_id with "bad" gets a 400), writes the
    /// output and error files.
    fn finish(p: &mut Provider, i: usize) {
        let file = p.batches[i].0.input_file_id.clone().unwrap();
        let input = p.files.iter().find(|f| f.0 == file).unwrap().2.clone();
        let lines: Vec<&str> = std::str::from_utf8(&input).unwrap().lines().collect();
        let run = if p.expire { lines.len() / 2 } else { lines.len() };
        let (mut out, mut err) = (String::new(), String::new());
        let mut counts = RequestCounts {
            total: lines.len() as u64,
            ..Default::default()
        };
        for (n, line) in lines.iter().enumerate() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let id = v["custom_id"].as_str().unwrap();
            if n >= run {
                err += &serde_json::json!({"custom_id": id, "response": null,
                    "error": {"code": "batch_expired", "message": "too late"}})
                .to_string();
                err.push('\n');
            } else if id.contains("bad") {
                counts.failed += 1;
                err += &serde_json::json!({"custom_id": id, "response": {"status_code": 400,
                    "body": {"error": {"message": "no good", "type": "invalid_request_error"}}}, "error": null})
                .to_string();
                err.push('\n');
            } else {
                counts.completed += 1;
                out += &serde_json::json!({"custom_id": id, "response": {"status_code": 200, "body": {
                    "id": format!("c-{id}"), "model": "m",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": format!("answer {id}")},
                                 "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}}, "error": null})
                .to_string();
                out.push('\n');
            }
        }
        let mut add = |content: String, kind: &str| {
            if content.is_empty() {
                return None;
            }
            let id = format!("file-{kind}-{}", p.files.len());
            p.files.push((id.clone(), kind.into(), Bytes::from(content)));
            Some(id)
        };
        let output = add(out, "out");
        let error = add(err, "err");
        let b = &mut p.batches[i].0;
        b.status = if p.expire {
            BatchStatus::Expired
        } else {
            BatchStatus::Completed
        };
        b.output_file_id = output;
        b.error_file_id = error;
        b.request_counts = Some(counts);
    }
}

impl FilesBatchesApi for Fake {
    async fn upload(&self, filename: &str, content: Bytes) -> Result<FileObject, ApiError> {
        let (id, hang) = {
            let mut p = self.p();
            p.calls.push("upload");
            if let Some(status) = p.refuse_upload.take() {
                return Err(failure("upload", Lost::Status(status)));
            }
            p.uploads += 1;
            let id = format!("file-{}", p.files.len());
            p.files.push((id.clone(), filename.into(), content.clone()));
            if let Some(how) = p.lose_upload.take() {
                return Err(failure("upload", how));
            }
            (id, std::mem::take(&mut p.hang_upload))
        };
        if hang {
            return std::future::pending().await;
        }
        Ok(FileObject {
            id,
            bytes: Some(content.len() as u64),
            filename: Some(filename.into()),
            purpose: Some("batch".into()),
            status: None,
            status_details: None,
        })
    }

    async fn list_files(&self, _after: Option<&str>) -> Result<List<FileObject>, ApiError> {
        let mut p = self.p();
        p.calls.push("list_files");
        Ok(List {
            data: p
                .files
                .iter()
                .filter(|f| !p.deleted.contains(&f.0))
                .map(|f| FileObject {
                    id: f.0.clone(),
                    bytes: Some(f.2.len() as u64),
                    filename: Some(f.1.clone()),
                    purpose: Some("batch".into()),
                    status: None,
                    status_details: None,
                })
                .collect(),
            has_more: false,
            last_id: None,
        })
    }

    async fn delete_file(&self, id: &str) -> Result<(), ApiError> {
        self.p().deleted.push(id.into());
        Ok(())
    }

    async fn create(&self, request: &CreateBatch) -> Result<Batch, ApiError> {
        let mut p = self.p();
        p.calls.push("create");
        if p.out_of_quota {
            return Err(ApiError::Quota {
                what: "create".into(),
                message: "You exceeded your current quota (insufficient_quota)".into(),
            });
        }
        if let Some(status) = p.refuse_create.take() {
            return Err(failure("create", Lost::Status(status)));
        }
        p.creates += 1;
        let open = p.batches.iter().filter(|b| !b.0.status.is_terminal()).count() + 1;
        p.max_open = p.max_open.max(open);
        let b = batch(
            format!("batch-{}", p.batches.len()),
            request.input_file_id.clone(),
            BatchStatus::Validating,
        );
        p.batches.push((b.clone(), 0));
        if let Some(how) = p.lose_create.take() {
            return Err(failure("create", how));
        }
        Ok(b)
    }

    async fn retrieve(&self, id: &str) -> Result<Batch, ApiError> {
        let mut p = self.p();
        let i = p.batches.iter().position(|b| b.0.id == id).unwrap();
        p.batches[i].1 += 1;
        if p.batches[i].1 >= p.polls && !p.batches[i].0.status.is_terminal() {
            Fake::finish(&mut p, i);
        }
        Ok(p.batches[i].0.clone())
    }

    async fn cancel(&self, _id: &str) -> Result<Batch, ApiError> {
        unreachable!("not used by the driver")
    }

    async fn list_batches(&self, _after: Option<&str>) -> Result<List<Batch>, ApiError> {
        let mut p = self.p();
        p.calls.push("list_batches");
        Ok(List {
            data: p.batches.iter().rev().map(|b| b.0.clone()).collect(),
            has_more: false,
            last_id: None,
        })
    }

    async fn download<F>(&self, id: &str, mut each: F) -> anyhow::Result<()>
    where
        F: FnMut(&[u8]) -> anyhow::Result<()> + Send,
    {
        let content = self.p().files.iter().find(|f| f.0 == id).unwrap().2.clone();
        // In two chunks, split inside a line.
        let (a, b) = content.split_at(content.len() / 2);
        each(a)?;
        each(b)
    }
}

/// A store in a temporary directory with `n` rows `r1`..`rn` (ids with "bad" in them where
/// `bad(seq)`), each a chat request of 3 words.
pub(super) fn store(dir: &tempfile::TempDir, n: u64, bad: impl Fn(u64) -> bool) -> (Store, JobRecord) {
    let mut store = Store::open(&dir.path().join("job.db"), true).unwrap();
    let mut ingest = store.begin_ingest().unwrap();
    let ids: Vec<String> = (1..=n)
        .map(|s| {
            if bad(s) {
                format!("bad{s}")
            } else {
                format!("r{s}")
            }
        })
        .collect();
    for (i, id) in ids.iter().enumerate() {
        let seq = i as u64 + 1;
        ingest
            .add(&NewRow {
                seq,
                id,
                line: seq,
                fields: "{}",
                request: Some(
                    r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"say one thing"}]}"#,
                ),
                error: None,
                input_tokens: None,
                digest: None,
            })
            .unwrap()
            .unwrap();
    }
    let job = JobRecord::example();
    ingest.commit(&job, n).unwrap();
    (store, job)
}

pub(super) fn settings(dir: &tempfile::TempDir, batch: BatchSettings) -> DriverSettings {
    DriverSettings {
        batch,
        no_wait: false,
        submit: true,
        tag: "t".into(),
        spool: dir.path().join("job.db"),
        quiet: true,
        max_line: crate::api::http::DEFAULT_MAX_RESPONSE_SIZE,
        bar: false,
        structured: None,
    }
}

pub(super) fn limits(max_rows: u64, max_enqueued_tokens: Option<u64>) -> BatchSettings {
    BatchSettings {
        max_rows,
        max_enqueued_tokens,
        poll_interval: std::time::Duration::from_millis(1),
        ..BatchSettings::default()
    }
}

async fn drive(api: &Fake, store: &mut Store, job: &JobRecord, s: DriverSettings) -> Ending {
    try_drive(api, store, job, s).await.unwrap()
}

async fn try_drive(
    api: &Fake,
    store: &mut Store,
    job: &JobRecord,
    s: DriverSettings,
) -> anyhow::Result<Ending> {
    let stop = tokio_util::sync::CancellationToken::new();
    Driver::new(
        &OpenAiBatches::new(api, job.provider.clone()),
        store,
        job,
        s,
        stop,
    )
    .run()
    .await
}

fn done_completions(store: &Store) -> Vec<(String, String, Option<String>)> {
    let mut out = Vec::new();
    store
        .for_each_row(|r| {
            out.push((r.id, r.state, r.completion));
            Ok(())
        })
        .unwrap();
    out
}

#[tokio::test]
async fn rows_go_out_in_parts_and_come_back_joined_on_custom_id() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, job) = store(&dir, 25, |s| s == 7);
    let api = Fake::default();
    api.p().polls = 2;
    let ending = drive(&api, &mut store, &job, settings(&dir, limits(10, None))).await;
    assert_eq!(ending, Ending::Finished);
    let p = api.p();
    assert_eq!((p.uploads, p.creates), (3, 3), "25 rows, 10 a part");
    drop(p);
    let parts = store.parts().unwrap();
    assert_eq!(parts.iter().map(|p| p.rows).collect::<Vec<_>>(), [10, 10, 5]);
    assert!(parts.iter().all(|p| p.stage == "collected"));
    for (id, state, completion) in done_completions(&store) {
        if id == "bad7" {
            assert_eq!(state, state::FAILED);
        } else {
            assert_eq!(
                (state.as_str(), completion),
                (state::DONE, Some(format!("answer {id}")))
            );
        }
    }
    let c = store.counts().unwrap();
    assert_eq!((c.done, c.failed, c.batched, c.prompt_tokens), (24, 1, 0, 72));
    // Done through the Batch API: priced as such.
    let usage = store.usage_by_model(Some("gpt-4o-mini"), &[]).unwrap();
    assert_eq!(usage.of("gpt-4o-mini", false).prompt, 0);
    let batch = usage.of("gpt-4o-mini", true);
    assert_eq!((batch.prompt, batch.completion), (72, 48));
    // The spooled downloads are gone.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".download"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn a_lost_upload_answer_is_found_by_its_file_name_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, job) = store(&dir, 5, |_| false);
    let api = Fake::default();
    api.p().lose_upload = Some(Lost::NoAnswer);
    let ending = drive(&api, &mut store, &job, settings(&dir, limits(10, None))).await;
    assert_eq!(ending, Ending::Finished);
    let p = api.p();
    assert_eq!(
        p.uploads, 1,
        "the upload whose answer was lost is reused, not repeated"
    );
    assert_eq!(p.creates, 1);
    assert_eq!(store.counts().unwrap().done, 5);
}

#[tokio::test]
async fn a_lost_create_answer_is_found_among_the_batches() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, job) = store(&dir, 5, |_| false);
    let api = Fake::default();
    api.p().lose_create = Some(Lost::NoAnswer);
    let ending = drive(&api, &mut store, &job, settings(&dir, limits(10, None))).await;
    assert_eq!(ending, Ending::Finished);
    assert_eq!(
        api.p().creates,
        1,
        "the batch whose answer was lost is found, not created again"
    );
    assert_eq!(store.counts().unwrap().done, 5);
}

#[tokio::test]
async fn a_crash_after_the_upload_resumes_without_uploading_again() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, job) = store(&dir, 5, |_| false);
    let api = Fake::default();
    // As a kill leaves it: the part planned and marked uploading, the file at the provider.
    let part = store
        .plan_part(
            crate::store::PartLimits {
                max_rows: 10,
                max_bytes: 1 << 20,
                max_tokens: None,
                alone_may_exceed: true,
                max_cost: None,
            },
            &mut 0,
            |n| format!("promptmill-t-part{n:04}.jsonl"),
            &mut |c| {
                Ok(crate::store::Measured {
                    size: super::openai::input_line(c.id, c.request, job.endpoint, &job.provider)
                        .unwrap()
                        .len() as u64,
                    ..Default::default()
                })
            },
        )
        .unwrap()
        .unwrap();
    store
        .set_stage(part.part, crate::store::stage::UPLOADING)
        .unwrap();
    let mut content = Vec::new();
    store
        .part_rows(part.part, |id, req| {
            content.extend(super::openai::input_line(id, req, job.endpoint, &job.provider).unwrap());
            Ok(())
        })
        .unwrap();
    // A complete earlier upload, and a truncated one under the same name.
    api.upload(&part.filename, Bytes::from(content.clone()))
        .await
        .unwrap();
    api.upload(&part.filename, Bytes::from(content[..10].to_vec()))
        .await
        .unwrap();
    let ending = drive(&api, &mut store, &job, settings(&dir, limits(10, None))).await;
    assert_eq!(ending, Ending::Finished);
    let p = api.p();
    assert_eq!(p.uploads, 2, "no new upload");
    assert_eq!(p.deleted, ["file-1"], "the truncated upload is deleted");
    assert_eq!(p.batches[0].0.input_file_id.as_deref(), Some("file-0"));
    assert_eq!(store.counts().unwrap().done, 5);
}

#[tokio::test]
async fn the_queue_limit_holds_later_parts_back_until_earlier_ones_finish() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, job) = store(&dir, 12, |_| false);
    let prompt = promptmill_core::tokens::request_cost(
        r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"say one thing"}]}"#,
    )
    .unwrap()
    .prompt_tokens;
    let api = Fake::default();
    api.p().polls = 3;
    // Room for 4 rows' prompts in the queue: parts of 4, one at a time.
    let ending = drive(
        &api,
        &mut store,
        &job,
        settings(&dir, limits(10, Some(prompt * 4))),
    )
    .await;
    assert_eq!(ending, Ending::Finished);
    let p = api.p();
    assert_eq!(p.creates, 3);
    assert_eq!(p.max_open, 1, "never more than the limit in the queue");
    assert_eq!(store.counts().unwrap().done, 12);
    assert!(store.parts().unwrap().iter().all(|p| p.tokens == prompt * 4));
}

#[tokio::test]
async fn an_expired_batch_keeps_its_finished_rows_and_fails_the_rest_for_a_retry() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, job) = store(&dir, 10, |_| false);
    let api = Fake::default();
    api.p().expire = true;
    let ending = drive(&api, &mut store, &job, settings(&dir, limits(10, None))).await;
    assert_eq!(ending, Ending::Finished);
    let c = store.counts().unwrap();
    assert_eq!((c.done, c.failed), (5, 5));
    assert_eq!(store.top_errors(1).unwrap()[0].0, "batch_expired: too late");
    // --retry-failed: only the expired rows go again, in a new batch.
    store.requeue_failed().unwrap();
    api.p().expire = false;
    let ending = drive(&api, &mut store, &job, settings(&dir, limits(10, None))).await;
    assert_eq!(ending, Ending::Finished);
    assert_eq!(store.counts().unwrap().done, 10);
    let p = api.p();
    let second = &p
        .files
        .iter()
        .find(|f| f.1.ends_with("part0002.jsonl"))
        .unwrap()
        .2;
    assert_eq!(std::str::from_utf8(second).unwrap().lines().count(), 5);
}

#[tokio::test]
async fn no_wait_submits_and_returns_and_a_later_drive_collects() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, job) = store(&dir, 4, |_| false);
    let api = Fake::default();
    api.p().polls = 1;
    let mut s = settings(&dir, limits(2, None));
    s.no_wait = true;
    assert_eq!(
        drive(&api, &mut store, &job, s).await,
        Ending::Submitted { open: 2 }
    );
    assert_eq!(store.counts().unwrap().batched, 4);
    let ending = drive(&api, &mut store, &job, settings(&dir, limits(2, None))).await;
    assert_eq!(ending, Ending::Finished);
    assert_eq!(api.p().uploads, 2);
    assert_eq!(store.counts().unwrap().done, 4);
}

/// A ledger for `gpt-4o-mini` (the example job's model) with a budget of `limit` dollars, and
/// the worst case of one test row through the Batch API (no max_tokens: the model's cap).
fn budget(limit: f64) -> (crate::budget::Costing, f64) {
    let book = promptmill_core::models::PriceBook::new(None, None, None).unwrap();
    let models =
        std::collections::BTreeMap::from([("gpt-4o-mini".to_string(), book.lookup("gpt-4o-mini").unwrap())]);
    let costing = crate::budget::Costing::new(&models, Some(limit), 0.0).unwrap();
    let row = promptmill_core::tokens::request_cost(
        r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"say one thing"}]}"#,
    )
    .unwrap();
    let worst = costing.batch_worst("gpt-4o-mini", &row);
    (costing, worst)
}

fn priced(job: &mut JobRecord, limit: f64) {
    job.max_cost = Some(limit);
    job.models = std::collections::BTreeMap::from([(
        "gpt-4o-mini".to_string(),
        promptmill_core::models::PriceBook::new(None, None, None)
            .unwrap()
            .lookup("gpt-4o-mini")
            .unwrap(),
    )]);
}

#[tokio::test]
async fn a_part_holds_no_more_worst_case_than_the_budget_has_left() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, mut job) = store(&dir, 12, |_| false);
    let (_, worst) = budget(1.0);
    // gpt-4o-mini's Batch price: 10 prompt tokens, and 16,384 completion tokens at most.
    assert!(
        (worst - (16_384.0 * 0.3 + 10.0 * 0.075) / 1e6).abs() < 1e-9,
        "{worst}"
    );
    let limit = 2.5 * worst;
    let (costing, _) = budget(limit);
    priced(&mut job, limit);
    let api = Fake::default();
    let stop = tokio_util::sync::CancellationToken::new();
    let mut s = settings(&dir, limits(10, None));
    s.no_wait = true;
    let ending = Driver::new(
        &OpenAiBatches::new(&api, job.provider.clone()),
        &mut store,
        &job,
        s,
        stop,
    )
    .with_budget(&costing)
    .run()
    .await
    .unwrap();
    assert_eq!(ending, Ending::Submitted { open: 1 });
    let parts = store.parts().unwrap();
    assert_eq!(parts[0].rows, 2, "two rows' worst case fit in 2.5 rows' budget");
    assert!((parts[0].worst_cost - 2.0 * worst).abs() < 1e-12);
}

#[tokio::test]
async fn a_budget_smaller_than_one_row_stops_before_anything_is_uploaded() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, mut job) = store(&dir, 3, |_| false);
    let (_, worst) = budget(1.0);
    let (costing, _) = budget(0.9 * worst);
    priced(&mut job, 0.9 * worst);
    let api = Fake::default();
    let stop = tokio_util::sync::CancellationToken::new();
    let ending = Driver::new(
        &OpenAiBatches::new(&api, job.provider.clone()),
        &mut store,
        &job,
        settings(&dir, limits(10, None)),
        stop,
    )
    .with_budget(&costing)
    .run()
    .await
    .unwrap();
    assert!(
        matches!(ending, Ending::Budget { spent, .. } if spent == 0.0),
        "{ending:?}"
    );
    assert_eq!(api.p().uploads, 0);
    assert_eq!(store.counts().unwrap().pending, 3);
}

#[test]
fn parts_hold_one_model_each_and_every_row_lands_in_exactly_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("job.db"), true).unwrap();
    let mut ingest = store.begin_ingest().unwrap();
    let ids: Vec<String> = (1..=9).map(|s| format!("r{s}")).collect();
    let bodies = [
        r#"{"model":"a","messages":[{"role":"user","content":"x"}]}"#,
        r#"{"model":"b","messages":[{"role":"user","content":"x"}]}"#,
    ];
    for (i, id) in ids.iter().enumerate() {
        let seq = i as u64 + 1;
        ingest
            .add(&NewRow {
                seq,
                id,
                line: seq,
                fields: "{}",
                request: Some(bodies[i % 2]),
                error: None,
                input_tokens: None,
                digest: None,
            })
            .unwrap()
            .unwrap();
    }
    ingest.commit(&JobRecord::example(), 9).unwrap();
    let limits = crate::store::PartLimits {
        max_rows: 2,
        max_bytes: 1 << 20,
        max_tokens: None,
        alone_may_exceed: true,
        max_cost: None,
    };
    let mut after = 0;
    let mut parts = Vec::new();
    while let Some(p) = store
        .plan_part(limits, &mut after, |n| format!("p{n}"), &mut |_| {
            Ok(crate::store::Measured {
                size: 10,
                ..Default::default()
            })
        })
        .unwrap()
    {
        let mut rows = Vec::new();
        store
            .part_rows(p.part, |id, _| {
                rows.push(id.to_string());
                Ok(())
            })
            .unwrap();
        parts.push((p.model.clone(), rows));
    }
    // Rows of one model only in each part (the model of its first row), at most 2, and every
    // row in exactly one part, in input order within it; as few parts as the models allow.
    let mut seen = Vec::new();
    for (model, rows) in &parts {
        assert!(rows.len() <= 2);
        for id in rows {
            let n: usize = id[1..].parse().unwrap();
            assert_eq!(model, if n % 2 == 1 { "a" } else { "b" }, "{parts:?}");
            seen.push(n);
        }
        assert!(rows
            .windows(2)
            .all(|w| w[0][1..].parse::<u32>().unwrap() < w[1][1..].parse().unwrap()));
    }
    seen.sort();
    assert_eq!(seen, (1..=9).collect::<Vec<_>>());
    assert_eq!(parts.len(), 5, "{parts:?}");
    assert_eq!(store.counts().unwrap().batched, 9);
}

#[tokio::test(start_paused = true)]
async fn a_batch_created_behind_a_5xx_is_found_and_not_created_again() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, job) = store(&dir, 3, |_| false);
    let api = Fake::default();
    api.p().lose_create = Some(Lost::Status(502));
    let ending = drive(&api, &mut store, &job, settings(&dir, limits(10, None))).await;
    assert_eq!(ending, Ending::Finished);
    assert_eq!(store.counts().unwrap().done, 3);
    let p = api.p();
    assert_eq!(p.creates, 1, "{:?}", p.calls);
    assert_eq!(
        p.calls[..3],
        ["upload", "create", "list_batches"],
        "a look, not a second create"
    );
}

#[tokio::test(start_paused = true)]
async fn an_upload_stored_behind_a_5xx_is_reused_and_not_uploaded_again() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, job) = store(&dir, 3, |_| false);
    let api = Fake::default();
    api.p().lose_upload = Some(Lost::Status(500));
    let ending = drive(&api, &mut store, &job, settings(&dir, limits(10, None))).await;
    assert_eq!(ending, Ending::Finished);
    assert_eq!(store.counts().unwrap().done, 3);
    let p = api.p();
    assert_eq!(p.calls[..3], ["upload", "list_files", "create"]);
    assert_eq!(p.uploads, 1, "{:?}", p.calls);
}

#[tokio::test(start_paused = true)]
async fn a_429_on_create_made_nothing_so_it_is_sent_again_without_a_look() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, job) = store(&dir, 3, |_| false);
    let api = Fake::default();
    api.p().refuse_create = Some(429);
    let ending = drive(&api, &mut store, &job, settings(&dir, limits(10, None))).await;
    assert_eq!(ending, Ending::Finished);
    assert_eq!(store.counts().unwrap().done, 3);
    let p = api.p();
    assert_eq!(p.calls[..3], ["upload", "create", "create"]);
    assert!(!p.calls.contains(&"list_batches"));
}

#[tokio::test]
async fn without_submitting_a_part_that_has_no_batch_is_released_and_its_upload_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, job) = store(&dir, 4, |_| false);
    let api = Fake::default();
    // As a kill after the upload leaves it; then `cancel` (or --finish-live) runs.
    let mut s = settings(&dir, limits(10, None));
    s.no_wait = true;
    api.p().refuse_create = Some(400);
    let stop = tokio_util::sync::CancellationToken::new();
    let ending = Driver::new(
        &OpenAiBatches::new(&api, job.provider.clone()),
        &mut store,
        &job,
        s,
        stop,
    )
    .run()
    .await;
    assert!(ending.is_err(), "the create was refused");
    assert_eq!(store.part(1).unwrap().stage, crate::store::stage::UPLOADED);
    let mut s = settings(&dir, limits(10, None));
    s.submit = false;
    let ending = drive(&api, &mut store, &job, s).await;
    assert_eq!(ending, Ending::Finished);
    let part = store.part(1).unwrap();
    assert_eq!(part.stage, crate::store::stage::RELEASED);
    assert!(!part.is_open());
    assert_eq!(store.counts().unwrap().pending, 4);
    assert!(!store.has_open_parts().unwrap());
    assert_eq!(api.p().deleted, ["file-0"]);
    assert!(api.p().batches.is_empty());
    // A later run plans a new part under a new number: the released name is never reused.
    let ending = drive(&api, &mut store, &job, settings(&dir, limits(10, None))).await;
    assert_eq!(ending, Ending::Finished);
    assert_eq!(store.part(2).unwrap().filename, "promptmill-t-part0002.jsonl");
    assert_eq!(store.counts().unwrap().done, 4);
}

#[tokio::test]
async fn a_part_refused_as_too_large_is_planned_again_under_lower_limits() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, job) = store(&dir, 6, |_| false);
    let api = Fake::default();
    api.p().refuse_upload = Some(413);
    let refused = try_drive(&api, &mut store, &job, settings(&dir, limits(10, None))).await;
    assert!(refused.unwrap_err().to_string().contains("HTTP 413"));
    assert_eq!(store.part(1).unwrap().stage, crate::store::stage::PLANNED);
    // The user lowers --batch-max-rows and runs again.
    let ending = drive(&api, &mut store, &job, settings(&dir, limits(3, None))).await;
    assert_eq!(ending, Ending::Finished);
    assert_eq!(store.part(1).unwrap().stage, crate::store::stage::RELEASED);
    let sizes: Vec<u64> = store.parts().unwrap().iter().skip(1).map(|p| p.rows).collect();
    assert_eq!(sizes, [3, 3]);
    assert_eq!(store.counts().unwrap().done, 6);
}

#[tokio::test]
async fn out_of_quota_stops_at_once_instead_of_retrying() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, job) = store(&dir, 3, |_| false);
    let api = Fake::default();
    api.p().out_of_quota = true;
    let ending = drive(&api, &mut store, &job, settings(&dir, limits(10, None))).await;
    assert!(
        matches!(&ending, Ending::Quota { message } if message.contains("insufficient_quota")),
        "{ending:?}"
    );
    assert_eq!(
        api.p().calls,
        ["upload", "create"],
        "no retry: waiting does not help"
    );
    assert_eq!(
        store.part(1).unwrap().stage,
        crate::store::stage::UPLOADED,
        "a resume creates it"
    );
}

#[test]
fn openai_lines_carry_the_request_as_stored() {
    let request = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"temperature":0.7}"#;
    let line = super::openai::input_line(
        "r1",
        request,
        Endpoint::Chat,
        &promptmill_core::provider::Provider::OpenAi,
    )
    .unwrap();
    let text = String::from_utf8(line).unwrap();
    assert_eq!(
        text,
        format!(r#"{{"custom_id":"r1","method":"POST","url":"/v1/chat/completions","body":{request}}}"#)
            + "\n"
    );
}

#[test]
fn azure_lines_name_the_deployment_as_the_model_and_the_path_without_v1() {
    let azure = promptmill_core::provider::Provider::Azure {
        deployment: "batch-4o".into(),
        api_version: "2024-10-21".into(),
    };
    let request = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":5}"#;
    let line = super::openai::input_line("r1", request, Endpoint::Chat, &azure).unwrap();
    let line: serde_json::Value = serde_json::from_slice(&line).unwrap();
    assert_eq!(line["url"], "/chat/completions");
    assert_eq!(line["body"]["model"], "batch-4o");
    assert_eq!(line["body"]["max_tokens"], 5);
    assert_eq!(line["body"]["messages"][0]["content"], "hi");
    // A request that names no model gets the deployment too.
    let bare = super::openai::input_line("r2", r#"{"prompt":"x"}"#, Endpoint::Chat, &azure).unwrap();
    let bare: serde_json::Value = serde_json::from_slice(&bare).unwrap();
    assert_eq!(bare["body"]["model"], "batch-4o");
    assert!(super::openai::input_line("r3", "[1]", Endpoint::Chat, &azure).is_err());
}

#[tokio::test]
async fn a_stop_during_an_upload_leaves_it_to_be_looked_for_and_the_next_run_reuses_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, job) = store(&dir, 4, |_| false);
    let api = Fake::default();
    api.p().hang_upload = true;
    let stop = tokio_util::sync::CancellationToken::new();
    let stopper = stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        stopper.cancel();
    });
    let ending = Driver::new(
        &OpenAiBatches::new(&api, job.provider.clone()),
        &mut store,
        &job,
        settings(&dir, limits(10, None)),
        stop,
    )
    .run()
    .await
    .unwrap();
    assert_eq!(ending, Ending::Interrupted);
    assert_eq!(store.part(1).unwrap().stage, crate::store::stage::UPLOADING);
    let ending = drive(&api, &mut store, &job, settings(&dir, limits(10, None))).await;
    assert_eq!(ending, Ending::Finished);
    assert_eq!(api.p().uploads, 1, "the upload cut short was found and reused");
    assert_eq!(store.counts().unwrap().done, 4);
}

/// Issue 15: the driver keeps the job's counts (the counts the run started with, plus what the
/// plans refused and the collections settled) instead of counting the whole table at every poll;
/// what it kept is what the table says. A part's file is the lines its plan encoded, kept for the
/// upload: exactly the lines of its rows, in input order.
#[tokio::test]
async fn the_counts_the_driver_keeps_equal_the_tables_and_each_file_is_its_rows_lines() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, job) = store(&dir, 25, |s| s == 7);
    // Row 12's line is longer than a part may be: the plan fails it, and it is never sent.
    let long = serde_json::json!({"model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "x".repeat(5000)}]})
    .to_string();
    store
        .conn()
        .execute("UPDATE rows SET request = ?1 WHERE seq = 12", [&long])
        .unwrap();
    let before = store.counts().unwrap();
    let api = Fake::default();
    let service = OpenAiBatches::new(&api, job.provider.clone());
    let batch = BatchSettings {
        max_bytes: 4000,
        ..limits(10, None)
    };
    let stop = tokio_util::sync::CancellationToken::new();
    let mut driver =
        Driver::new(&service, &mut store, &job, settings(&dir, batch), stop).with_counts(&before);
    assert_eq!(driver.run().await.unwrap(), Ending::Finished);
    let kept = driver.settled();
    drop(driver);
    let c = store.counts().unwrap();
    assert_eq!((c.done, c.failed, c.pending, c.batched), (23, 2, 0, 0));
    assert_eq!(kept, Some((c.done, c.failed + c.invalid, c.total)));
    let mut expected = Vec::new();
    store
        .for_each_row(|r| {
            if r.seq != 12 {
                let request = r.request.unwrap_or_default();
                expected
                    .extend(super::openai::input_line(&r.id, &request, job.endpoint, &job.provider).unwrap());
            }
            Ok(())
        })
        .unwrap();
    let p = api.p();
    let uploaded: Vec<u8> = p
        .files
        .iter()
        .filter(|f| f.1.starts_with("promptmill-"))
        .flat_map(|f| f.2.to_vec())
        .collect();
    assert_eq!(p.uploads, 3, "24 rows sent, 10 a part");
    assert_eq!(
        String::from_utf8_lossy(&uploaded),
        String::from_utf8_lossy(&expected)
    );
}
