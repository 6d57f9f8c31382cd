//! Specifications of the checkpoint: opening and migrating, refusing databases that are not ours,
//! reading the input in one transaction, and the queries that report and requeue rows.

use std::path::Path;

use rusqlite::{params, Connection};

use super::*;
use promptmill_core::job::JobRecord;

pub(super) fn job() -> JobRecord {
    JobRecord::example()
}

pub(super) fn valid(seq: u64, id: &str) -> NewRow<'_> {
    NewRow {
        seq,
        id,
        line: seq + 1,
        fields: "{\"prompt\":\"hi\"}",
        request: Some("{\"model\":\"m\"}"),
        error: None,
        input_tokens: None,
        digest: None,
    }
}

pub(super) fn invalid<'a>(seq: u64, id: &'a str, error: &'a str) -> NewRow<'a> {
    NewRow {
        request: None,
        error: Some(error),
        ..valid(seq, id)
    }
}

/// An in-memory store holding `n` valid rows `r1`..`rn` and the job.
pub(super) fn store_with(n: u64) -> Store {
    fill(Store::open_in_memory().unwrap(), n)
}

/// [`store_with`], in a file at `path`.
pub(super) fn file_store_with(path: &std::path::Path, n: u64) -> Store {
    fill(Store::open(path, true).unwrap(), n)
}

fn fill(mut store: Store, n: u64) -> Store {
    let mut ingest = store.begin_ingest().unwrap();
    for seq in 1..=n {
        let id = format!("r{seq}");
        ingest.add(&valid(seq, &id)).unwrap().unwrap();
    }
    ingest.commit(&job(), n).unwrap();
    store
}

fn pragma(conn: &Connection, name: &str) -> i64 {
    conn.pragma_query_value(None, name, |r| r.get(0)).unwrap()
}

fn set_state(store: &mut Store, seq: i64, state: &str, error: Option<&str>) {
    store
        .conn()
        .execute(
            "UPDATE rows SET state = ?1, error = ?2 WHERE seq = ?3",
            params![state, error, seq],
        )
        .unwrap();
}

fn states(store: &Store) -> Vec<(String, String)> {
    let mut out = Vec::new();
    store
        .for_each_row(|r| {
            out.push((r.id, r.state));
            Ok(())
        })
        .unwrap();
    out
}

fn checkpoint_error<T>(result: anyhow::Result<T>) -> CheckpointError {
    match result {
        Ok(_) => panic!("the database should be refused"),
        Err(e) => e
            .downcast::<CheckpointError>()
            .unwrap_or_else(|e| panic!("not a checkpoint error: {e:#}")),
    }
}

// ---- Opening and migrating ----

#[test]
fn new_store_is_stamped_with_the_latest_schema_version_and_our_application_id() {
    let mut store = Store::open_in_memory().unwrap();
    assert_eq!(pragma(store.conn(), "user_version"), MIGRATIONS.len() as i64);
    assert_eq!(pragma(store.conn(), "application_id"), schema::APPLICATION_ID);
}

#[test]
fn migrating_an_up_to_date_database_changes_nothing() {
    let mut store = store_with(2);
    schema::migrate(store.conn()).unwrap();
    assert_eq!(pragma(store.conn(), "user_version"), MIGRATIONS.len() as i64);
    assert_eq!(store.counts().unwrap().total, 2);
}

#[test]
fn a_version_1_checkpoint_is_upgraded_and_its_runs_read_without_limits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.pragma_update(None, "application_id", schema::APPLICATION_ID)
            .unwrap();
        conn.execute("INSERT INTO runs (started_at, requests) VALUES (1, 5)", [])
            .unwrap();
    }
    let mut store = Store::open(&path, false).unwrap();
    assert_eq!(pragma(store.conn(), "user_version"), MIGRATIONS.len() as i64);
    let runs = store.runs().unwrap();
    assert_eq!((runs[0].requests, runs[0].limits), (5, None));
}

#[test]
fn reopening_a_checkpoint_file_keeps_its_job_rows_and_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    {
        let mut store = Store::open(&path, true).unwrap();
        let mut ingest = store.begin_ingest().unwrap();
        ingest.add(&valid(1, "a")).unwrap().unwrap();
        ingest.commit(&job(), 1).unwrap();
    }
    let mut store = Store::open(&path, false).unwrap();
    assert_eq!(store.path(), path);
    assert_eq!(store.job().unwrap(), Some(job()));
    assert_eq!(store.counts().unwrap().pending, 1);
    assert_eq!(pragma(store.conn(), "user_version"), MIGRATIONS.len() as i64);
}

#[test]
fn opening_a_missing_file_without_create_is_an_error_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.db");
    let e = Store::open(&path, false).err().expect("refused");
    assert!(e.to_string().contains("no such checkpoint database"), "{e}");
    assert!(!path.exists());
}

#[test]
fn database_with_other_tables_is_not_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('mine');")
        .unwrap();
    match checkpoint_error(Store::open(&path, false)) {
        CheckpointError::NotACheckpoint { db, reason } => {
            assert_eq!(db, path);
            assert_eq!(reason, "it holds other tables");
        }
        other => panic!("expected NotACheckpoint, got {other}"),
    }
    let count: i64 = Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'rows'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(count, 0, "no table was added to the foreign database");
}

#[test]
fn file_that_is_not_sqlite_is_not_a_checkpoint_and_is_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.db");
    let bytes: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&path, &bytes).unwrap();
    match checkpoint_error(Store::open(&path, false)) {
        CheckpointError::NotACheckpoint { db, .. } => assert_eq!(db, path),
        other => panic!("expected NotACheckpoint, got {other}"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[test]
fn a_truncated_checkpoint_is_reported_damaged_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    {
        let mut store = Store::open(&path, true).unwrap();
        let mut ingest = store.begin_ingest().unwrap();
        for seq in 1..=2000 {
            let id = format!("r{seq}");
            ingest.add(&valid(seq, &id)).unwrap().unwrap();
        }
        ingest.commit(&job(), 2000).unwrap();
    }
    let len = std::fs::metadata(&path).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(len / 2).unwrap();
    drop(file);
    let damaged = Store::open(&path, false).and_then(|s| s.counts().map_err(|e| explain(&path, e)));
    match checkpoint_error(damaged) {
        CheckpointError::Damaged { db, reason } => {
            assert_eq!(db, path);
            assert_eq!(reason, "database disk image is malformed");
        }
        other => panic!("expected Damaged, got {other}"),
    }
}

#[test]
fn a_directory_is_not_opened_as_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let e = Store::open(dir.path(), true).err().expect("refused");
    assert!(
        e.to_string()
            .ends_with("is a directory, not a checkpoint database"),
        "{e}"
    );
}

#[test]
fn database_from_a_newer_promptmill_is_refused_as_too_new() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    {
        let mut store = Store::open(&path, true).unwrap();
        store
            .conn()
            .pragma_update(None, "user_version", MIGRATIONS.len() as i64 + 1)
            .unwrap();
    }
    match checkpoint_error(Store::open(&path, false)) {
        CheckpointError::TooNew { db, found, known } => {
            assert_eq!(db, path);
            assert_eq!(
                (found, known),
                (MIGRATIONS.len() as i64 + 1, MIGRATIONS.len() as i64)
            );
        }
        other => panic!("expected TooNew, got {other}"),
    }
}

#[test]
fn job_record_that_does_not_parse_is_not_a_checkpoint() {
    let mut store = store_with(1);
    store
        .conn()
        .execute("UPDATE job SET record = '{\"spec\": 1}'", [])
        .unwrap();
    let e = store.job().unwrap_err().downcast::<CheckpointError>().unwrap();
    assert!(matches!(e, CheckpointError::NotACheckpoint { .. }), "{e}");
}

/// The stored record with its `version` field set to `version` (or removed, for `None`).
fn set_record_version(store: &mut Store, version: Option<u32>) {
    let text: String = store
        .conn()
        .query_row("SELECT record FROM job WHERE key = 1", [], |r| r.get(0))
        .unwrap();
    let mut record: serde_json::Value = serde_json::from_str(&text).unwrap();
    let fields = record.as_object_mut().unwrap();
    match version {
        Some(v) => fields.insert("version".into(), v.into()),
        None => fields.remove("version"),
    };
    store
        .conn()
        .execute("UPDATE job SET record = ?1", [record.to_string()])
        .unwrap();
}

#[test]
fn a_job_record_is_written_with_its_version_and_one_without_reads_as_version_one() {
    let mut store = store_with(1);
    let job = store.job().unwrap().unwrap();
    assert_eq!(job.version, promptmill_core::job::JOB_RECORD_VERSION);
    set_record_version(&mut store, None);
    let old = store.job().unwrap().unwrap();
    assert_eq!(
        old.version, 1,
        "records made before the field existed are version 1"
    );
    store.update_job(&old).unwrap();
    let rewritten = store.job().unwrap().unwrap();
    assert_eq!(rewritten.version, promptmill_core::job::JOB_RECORD_VERSION);
}

#[test]
fn a_job_record_from_a_newer_promptmill_is_refused_as_newer_not_as_damaged() {
    let mut store = store_with(1);
    let newer = promptmill_core::job::JOB_RECORD_VERSION + 1;
    set_record_version(&mut store, Some(newer));
    // A newer record may carry fields this build cannot read: it is refused before parsing.
    store
        .conn()
        .execute(
            "UPDATE job SET record = json_set(record, '$.spec', 'something new')",
            [],
        )
        .unwrap();
    let e = store.job().unwrap_err().downcast::<CheckpointError>().unwrap();
    match e {
        CheckpointError::RecordTooNew { found, known, .. } => {
            assert_eq!((found, known), (newer, promptmill_core::job::JOB_RECORD_VERSION));
        }
        other => panic!("expected RecordTooNew, got {other}"),
    }
}

#[cfg(unix)]
#[test]
fn new_checkpoint_files_are_private_to_their_owner() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let mut store = Store::open(&path, true).unwrap();
    let mut ingest = store.begin_ingest().unwrap();
    ingest.add(&valid(1, "a")).unwrap().unwrap();
    // Reading the input in goes through a rollback journal (see ingest.rs).
    let journal = dir.path().join("c.db-journal");
    assert!(journal.exists(), "the ingest journals its changes");
    assert_eq!(mode(&journal), 0o600);
    ingest.commit(&job(), 1).unwrap();
    assert_eq!(mode(&path), 0o600);
    store.counts().unwrap();
    let wal = dir.path().join("c.db-wal");
    assert!(wal.exists(), "the database is in WAL mode");
    assert_eq!(mode(&wal), 0o600);
}

// ---- Reading the input in ----

#[test]
fn committed_ingest_makes_the_rows_and_the_job_visible() {
    let store = store_with(3);
    assert_eq!(store.job().unwrap(), Some(job()));
    assert_eq!(
        store.counts().unwrap(),
        Counts {
            total: 3,
            pending: 3,
            ..Counts::default()
        }
    );
    let mut rows = Vec::new();
    store
        .for_each_row(|r| {
            rows.push((r.seq, r.id, r.state, r.request, r.fields));
            Ok(())
        })
        .unwrap();
    assert_eq!(
        rows[0],
        (
            1,
            "r1".to_string(),
            "pending".to_string(),
            Some("{\"model\":\"m\"}".to_string()),
            "{\"prompt\":\"hi\"}".to_string()
        )
    );
    assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), [1, 2, 3]);
}

#[test]
fn dropping_an_ingest_without_commit_rolls_everything_back() {
    let mut store = Store::open_in_memory().unwrap();
    {
        let mut ingest = store.begin_ingest().unwrap();
        ingest.add(&valid(1, "a")).unwrap().unwrap();
        ingest.add(&valid(2, "b")).unwrap().unwrap();
    }
    assert_eq!(store.counts().unwrap(), Counts::default());
    assert_eq!(store.job().unwrap(), None);
}

#[test]
fn duplicate_id_is_reported_with_the_line_of_its_first_use() {
    let mut store = Store::open_in_memory().unwrap();
    let mut ingest = store.begin_ingest().unwrap();
    ingest.add(&valid(1, "a")).unwrap().unwrap();
    ingest.add(&valid(2, "b")).unwrap().unwrap();
    assert_eq!(
        ingest.add(&valid(3, "a")).unwrap(),
        Err(Duplicate { first_line: 2 })
    );
    ingest.add(&valid(4, "c")).unwrap().unwrap();
    ingest.commit(&job(), 4).unwrap();
    let ids: Vec<String> = states(&store).into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, ["a", "b", "c"]);
}

#[test]
fn invalid_rows_may_share_an_id_with_any_row() {
    let mut store = Store::open_in_memory().unwrap();
    let mut ingest = store.begin_ingest().unwrap();
    ingest.add(&valid(1, "a")).unwrap().unwrap();
    ingest.add(&invalid(2, "a", "bad")).unwrap().unwrap();
    ingest.add(&invalid(3, "a", "bad")).unwrap().unwrap();
    assert_eq!(
        ingest.add(&valid(4, "a")).unwrap(),
        Err(Duplicate { first_line: 2 })
    );
    ingest.commit(&job(), 4).unwrap();
    let c = store.counts().unwrap();
    assert_eq!((c.total, c.pending, c.invalid, c.failed), (3, 1, 2, 0));
}

#[test]
fn invalid_rows_are_stored_failed_with_their_reason() {
    let mut store = Store::open_in_memory().unwrap();
    let mut ingest = store.begin_ingest().unwrap();
    ingest
        .add(&invalid(1, "x", "invalid input at line 2: boom"))
        .unwrap()
        .unwrap();
    ingest.commit(&job(), 1).unwrap();
    store
        .for_each_row(|r| {
            assert_eq!((r.state.as_str(), r.invalid, r.request), ("failed", true, None));
            assert_eq!(r.error.as_deref(), Some("invalid input at line 2: boom"));
            Ok(())
        })
        .unwrap();
}

// ---- Reports and requeues ----

#[test]
fn counts_split_rows_by_state_and_sum_tokens_and_attempts() {
    let mut store = store_with(5);
    store
        .conn()
        .execute_batch(
            "UPDATE rows SET state = 'done', attempts = 1, prompt_tokens = 10, completion_tokens = 2,
                 total_tokens = 12 WHERE seq = 1;
             UPDATE rows SET state = 'done', attempts = 3, prompt_tokens = 5, completion_tokens = 1,
                 total_tokens = 6 WHERE seq = 2;
             UPDATE rows SET state = 'failed', attempts = 2, error = 'x' WHERE seq = 3;
             UPDATE rows SET state = 'in_flight' WHERE seq = 4;",
        )
        .unwrap();
    assert_eq!(
        store.counts().unwrap(),
        Counts {
            total: 5,
            pending: 1,
            in_flight: 1,
            batched: 0,
            done: 2,
            cached: 0,
            failed: 1,
            invalid: 0,
            prompt_tokens: 15,
            completion_tokens: 3,
            total_tokens: 18,
            attempts: 6,
            retried_rows: 2,
            max_attempts: 3,
        }
    );
}

#[test]
fn counts_and_claimable_agree_with_the_two_counts_with_and_without_a_limit() {
    let mut store = store_with(5);
    set_state(&mut store, 1, "done", None);
    set_state(&mut store, 4, "done", None);
    let (all, claimable) = store.counts_and_claimable().unwrap();
    assert_eq!((all.done, all.pending), (2, 3));
    assert_eq!(claimable, all);
    store.claim_through(Some(2));
    let (all, claimable) = store.counts_and_claimable().unwrap();
    assert_eq!(all, store.counts().unwrap());
    assert_eq!(claimable, store.counts_claimable().unwrap());
    assert_eq!((claimable.total, claimable.done, claimable.pending), (2, 1, 1));
    assert_eq!((all.total, all.done), (5, 2));
}

#[test]
fn reset_in_flight_returns_claimed_rows_to_pending() {
    let mut store = store_with(3);
    set_state(&mut store, 1, "in_flight", None);
    set_state(&mut store, 2, "in_flight", None);
    set_state(&mut store, 3, "done", None);
    assert_eq!(store.reset_in_flight().unwrap(), 2);
    let c = store.counts().unwrap();
    assert_eq!((c.pending, c.in_flight, c.done), (2, 0, 1));
    assert_eq!(store.reset_in_flight().unwrap(), 0);
}

#[test]
fn requeue_failed_returns_sent_failures_to_pending_and_clears_their_error() {
    let mut store = Store::open_in_memory().unwrap();
    let mut ingest = store.begin_ingest().unwrap();
    ingest.add(&valid(1, "a")).unwrap().unwrap();
    ingest.add(&valid(2, "b")).unwrap().unwrap();
    ingest.add(&invalid(3, "c", "bad input")).unwrap().unwrap();
    ingest.commit(&job(), 3).unwrap();
    store
        .conn()
        .execute(
            "UPDATE rows SET state = 'failed', error = 'HTTP 400', http_status = 400 WHERE seq = 1",
            [],
        )
        .unwrap();
    assert_eq!(store.requeue_failed().unwrap(), 1);
    let mut rows = Vec::new();
    store
        .for_each_row(|r| {
            rows.push((r.id, r.state, r.error, r.http_status));
            Ok(())
        })
        .unwrap();
    assert_eq!(
        rows,
        [
            ("a".to_string(), "pending".to_string(), None, None),
            ("b".to_string(), "pending".to_string(), None, None),
            (
                "c".to_string(),
                "failed".to_string(),
                Some("bad input".to_string()),
                None
            ),
        ]
    );
}

#[test]
fn top_errors_are_the_most_common_failures_first() {
    let mut store = store_with(7);
    for (seq, error) in [
        (1, "timeout"),
        (2, "HTTP 400"),
        (3, "timeout"),
        (4, "HTTP 500"),
        (5, "HTTP 400"),
    ] {
        set_state(&mut store, seq, "failed", Some(error));
    }
    store
        .conn()
        .execute("UPDATE rows SET error = 'old' WHERE seq = 6", [])
        .unwrap();
    assert_eq!(
        store.top_errors(10).unwrap(),
        [
            ("HTTP 400".to_string(), 2),
            ("timeout".to_string(), 2),
            ("HTTP 500".to_string(), 1)
        ]
    );
    assert_eq!(store.top_errors(1).unwrap(), [("HTTP 400".to_string(), 2)]);
}

#[test]
fn runs_record_their_outcome_and_the_last_summary() {
    let store = store_with(1);
    assert_eq!(store.last_summary().unwrap(), None);
    let first = store.start_run().unwrap();
    store.end_run(first, "interrupted", "{\"done\":0}").unwrap();
    let second = store.start_run().unwrap();
    let runs = store.runs().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(
        (runs[0].run, runs[0].outcome.as_deref()),
        (first, Some("interrupted"))
    );
    assert!(runs[0].ended_at.is_some());
    assert_eq!(
        (runs[1].run, runs[1].outcome.as_deref(), runs[1].ended_at),
        (second, None, None)
    );
    assert_eq!(store.last_summary().unwrap().as_deref(), Some("{\"done\":0}"));
}

#[test]
fn update_job_replaces_the_recorded_job() {
    let store = store_with(1);
    let mut changed = job();
    changed.base_url = "http://127.0.0.1:8/v1".into();
    store.update_job(&changed).unwrap();
    assert_eq!(store.job().unwrap(), Some(changed));
}

#[test]
fn pending_keys_read_a_body_only_for_rows_without_a_digest() {
    let store = store_with(3);
    let digest = [7u8; 32];
    store
        .conn
        .execute("UPDATE rows SET digest = ?1 WHERE seq = 2", [&digest[..]])
        .unwrap();
    // A digest of the wrong length is no key: that row is keyed by its body.
    store
        .conn
        .execute("UPDATE rows SET digest = x'0102' WHERE seq = 3", [])
        .unwrap();
    let keys = store.pending_keys(0, 10).unwrap();
    let seen: Vec<_> = keys
        .iter()
        .map(|k| (k.seq, k.digest, k.request.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            (1, None, "{\"model\":\"m\"}"),
            (2, Some(digest), ""),
            (3, None, "{\"model\":\"m\"}"),
        ]
    );
}
