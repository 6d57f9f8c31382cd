//! The checkpoint database's schema and its migrations.
//!
//! Migrations are keyed on `PRAGMA user_version` and applied in one transaction (the habit of
//! cargo's `util/sqlite.rs`): version N means the first N entries of [`MIGRATIONS`] have run.
//! A shipped migration is never edited or removed; a change to the schema is a new entry.

use rusqlite::Connection;

/// The application id stamped into the database header, so that a promptmill checkpoint is
/// recognised as one (`PRAGMA application_id`; "PMIL").
pub const APPLICATION_ID: i64 = 0x504d_494c;

pub const MIGRATIONS: &[&str] = &[
    // 1: the job, its rows, and one record per run of the program.
    r#"
    CREATE TABLE job (
        key          INTEGER PRIMARY KEY CHECK (key = 1),
        record       TEXT    NOT NULL,  -- JSON of job::JobRecord (never the API key)
        total_rows   INTEGER NOT NULL,
        created_at   INTEGER NOT NULL,  -- unix ms
        summary      TEXT               -- JSON of the last run's summary
    );
    CREATE TABLE rows (
        seq               INTEGER PRIMARY KEY,  -- 1-based position in the input
        id                TEXT    NOT NULL,
        line              INTEGER NOT NULL,     -- line of the input the row starts on
        invalid           INTEGER NOT NULL DEFAULT 0,  -- 1: failed validation, never sent
        state             TEXT    NOT NULL,     -- pending | in_flight | done | failed
        attempts          INTEGER NOT NULL DEFAULT 0,
        fields            TEXT    NOT NULL,     -- JSON object of the input fields
        request           TEXT,                 -- the request body as sent (NULL when invalid)
        response          TEXT,                 -- the response body as received, when done
        completion        TEXT,
        finish_reason     TEXT,
        prompt_tokens     INTEGER,
        completion_tokens INTEGER,
        total_tokens      INTEGER,
        model             TEXT,
        response_id       TEXT,
        http_status       INTEGER,
        error             TEXT,
        created_at        INTEGER NOT NULL,
        updated_at        INTEGER NOT NULL
    );
    -- Ids are unique among the rows that are sent; invalid rows keep whatever id they had.
    CREATE UNIQUE INDEX rows_id ON rows (id) WHERE invalid = 0;
    CREATE TABLE runs (
        run          INTEGER PRIMARY KEY,
        started_at   INTEGER NOT NULL,
        ended_at     INTEGER,
        outcome      TEXT,               -- finished | interrupted | auth | error; NULL while running or after a kill
        requests     INTEGER NOT NULL DEFAULT 0,
        retries      INTEGER NOT NULL DEFAULT 0,
        http_429     INTEGER NOT NULL DEFAULT 0,
        done         INTEGER NOT NULL DEFAULT 0,
        failed       INTEGER NOT NULL DEFAULT 0
    );
    "#,
    // 2: the limits each run sent under, and where they came from (JSON of limits::InForce),
    // so that `status` can show limits learned from the server without storing them as the
    // user's own.
    r#"
    ALTER TABLE runs ADD COLUMN limits TEXT;
    "#,
    // 3: the rows `estimate --sample` chose; kept so that a second calibration reuses them.
    r#"
    CREATE TABLE sample (seq INTEGER PRIMARY KEY REFERENCES rows (seq));
    "#,
    // 4: the Batch API (`run --mode batch`). A part is one input file and the batch made of it;
    // its row says how far submitting it got, so that a crash at any point neither uploads nor
    // pays for the same rows twice. A row in a part that is not collected yet is `batched`;
    // `rows.part` stays set after collection, marking the rows done through the Batch API.
    r#"
    CREATE TABLE parts (
        part            INTEGER PRIMARY KEY,   -- 1-based, in the order planned
        model           TEXT    NOT NULL,      -- the model every line names ('' for none)
        filename        TEXT    NOT NULL,      -- the name it is uploaded under, unique to job and part
        rows            INTEGER NOT NULL,
        bytes           INTEGER NOT NULL,      -- size of the input file
        tokens          INTEGER NOT NULL,      -- prompt tokens, for --batch-max-enqueued-tokens
        worst_cost      REAL    NOT NULL,      -- dollars if every row used max_tokens, for --max-cost
        stage           TEXT    NOT NULL,      -- planned | uploading | uploaded | creating | submitted | collected
        file_id         TEXT,
        batch_id        TEXT,
        status          TEXT,                  -- the provider's batch status, as last seen
        completed       INTEGER NOT NULL DEFAULT 0,  -- request_counts, as last seen
        failed          INTEGER NOT NULL DEFAULT 0,
        total           INTEGER NOT NULL DEFAULT 0,
        errors          TEXT,                  -- JSON array of the batch's errors.data
        output_file_id  TEXT,
        error_file_id   TEXT,
        created_at      INTEGER NOT NULL,
        updated_at      INTEGER NOT NULL
    );
    ALTER TABLE rows ADD COLUMN part INTEGER REFERENCES parts (part);
    CREATE INDEX rows_part ON rows (part, state) WHERE part IS NOT NULL;
    "#,
    // 5: the files this job's runs and exports wrote, by canonical path, with the device,
    // inode, size and modification time the file had when it was renamed into place: an
    // existing output is replaced only when it is one of them, unchanged (or with --overwrite).
    r#"
    CREATE TABLE outputs (
        path        TEXT    PRIMARY KEY,
        dev         INTEGER NOT NULL,
        ino         INTEGER NOT NULL,
        size        INTEGER NOT NULL,
        mtime_ns    INTEGER NOT NULL,
        written_at  INTEGER NOT NULL   -- unix ms
    );
    "#,
    // 6: who is running, and what is on the wire: the process id of each run, and the requests
    // it had on the wire at its last commit, so that `status` can tell a run that is going
    // (and what it is doing) from one that was killed.
    r#"
    ALTER TABLE runs ADD COLUMN pid INTEGER;
    ALTER TABLE runs ADD COLUMN on_wire INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE runs ADD COLUMN updated_at INTEGER;
    "#,
    // 7: every request a live run sent, for `promptmill report` (see store/attempts.rs). No
    // index: appended in the writer's grouped commits, read whole by the report.
    r#"
    CREATE TABLE attempts (
        run               INTEGER NOT NULL,
        seq               INTEGER NOT NULL,     -- the row (rows.seq)
        started_at        INTEGER NOT NULL,     -- unix ms
        latency_ms        INTEGER NOT NULL,
        status            INTEGER,              -- HTTP status; NULL: no answer
        class             TEXT,                 -- NULL: gave the completion; else the error class
        wait_ms           INTEGER,              -- the wait before the row's next attempt
        paused            INTEGER,              -- 1: that wait paused every worker
        window            INTEGER,              -- the concurrency window after the answer
        limits_changed    INTEGER,              -- 1: the answer changed the limits to rpm, tpm
        rpm               INTEGER,
        tpm               INTEGER,
        prompt_tokens     INTEGER,
        completion_tokens INTEGER,
        cached_tokens     INTEGER,
        reasoning_tokens  INTEGER,
        cost_nanos        INTEGER               -- billionths of a dollar; NULL: nothing
    );
    "#,
    // 8: per sampled row, the prompt tokens promptmill counted locally, beside the server's
    // (`rows.prompt_tokens`), so the estimate can scale its counts when the tokenizer is not
    // known exactly and show the difference when it is. NULL until the row's answer is in.
    r#"
    ALTER TABLE sample ADD COLUMN local_prompt_tokens INTEGER;
    "#,
    // 9: the usage details of a done row, as the server reported them (NULL: not reported),
    // which its cost depends on: prompt tokens read from the cache and written to it
    // (`prompt_tokens_details`), and the reasoning part of the completion tokens.
    r#"
    ALTER TABLE rows ADD COLUMN cached_tokens INTEGER;
    ALTER TABLE rows ADD COLUMN cache_creation_tokens INTEGER;
    ALTER TABLE rows ADD COLUMN reasoning_tokens INTEGER;
    "#,
    // 10: each state of a part's batch that the batch driver saw when it polled (status and
    // counts), one row per change, for the report's batch timelines (see store/batch_states.rs).
    r#"
    CREATE TABLE batch_states (
        part       INTEGER NOT NULL,   -- parts.part
        at         INTEGER NOT NULL,   -- unix ms, when it was first seen
        status     TEXT    NOT NULL,   -- the provider's batch status
        completed  INTEGER NOT NULL,
        failed     INTEGER NOT NULL,
        total      INTEGER NOT NULL
    );
    CREATE INDEX batch_states_part ON batch_states (part, at);
    "#,
    // 11: a done embeddings row's vector, as the little-endian bytes of its f32 values (4 bytes
    // a value, a quarter of JSON text's size); NULL for every other family.
    r#"
    ALTER TABLE rows ADD COLUMN embedding BLOB;
    "#,
    // 12: a request's prompt tokens, counted when the row was read, for a family that joins
    // rows into one request (embeddings): the weights its answer's usage is split by, so the
    // sending side counts nothing. NULL for every other family, and for rows read before.
    r#"
    ALTER TABLE rows ADD COLUMN input_tokens INTEGER;
    "#,
    // 13: the rows a running run has claimed and not settled, recorded with its counters: a
    // claim no longer marks rows `in_flight` (see store/writer.rs), so `status` reads them here.
    r#"
    ALTER TABLE runs ADD COLUMN claimed INTEGER NOT NULL DEFAULT 0;
    "#,
    // 14: a done row answered from the response cache (`cache/`), not by a request: 1. Its
    // usage is the answer's as first received; it cost nothing, so the bill leaves it out and
    // the summary counts what it saved.
    r#"
    ALTER TABLE rows ADD COLUMN cached INTEGER NOT NULL DEFAULT 0;
    "#,
    // 15: a `--schema` row that failed because its last answer broke the schema: `invalid`,
    // `truncated` or `refused` (NULL for every other row; a done row of a schema job is valid).
    // Such a row keeps its last answer and the usage of every answer it paid for, which the
    // bill counts (see store/usage.rs). `reasked`: the times a Batch API answer of the row was
    // judged invalid or cut and the row sent back to pending for a follow-up batch; while it is
    // above 0 the row's usage columns add up every answer it paid for.
    r#"
    ALTER TABLE rows ADD COLUMN schema TEXT;
    ALTER TABLE rows ADD COLUMN reasked INTEGER NOT NULL DEFAULT 0;
    "#,
    // 16: the request body's digest for the response cache (`cache/key.rs`), taken when the
    // row was read so that the sending side never parses a body to key it; a repeat of an
    // earlier row's request in the same input has its sample number in it. NULL for rows read
    // before, and for invalid rows: their key is made from the body when needed.
    r#"
    ALTER TABLE rows ADD COLUMN digest BLOB;
    "#,
    // 17: how far the answers of the checkpoint were copied into the response cache
    // (`cache/keep.rs`): the rows done by a request and updated at or after `since_ms` are not
    // in it yet. No row: none was copied.
    r#"
    CREATE TABLE cache_copied (since_ms INTEGER NOT NULL);
    "#,
];

/// Brings the schema up to date. Fails if the database was written by a newer promptmill.
pub fn migrate(conn: &mut Connection) -> Result<(), MigrateError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(MigrateError::TooNew {
            found: version,
            known,
        });
    }
    if version == known {
        return Ok(());
    }
    let tx = conn.transaction()?;
    for migration in &MIGRATIONS[version as usize..] {
        tx.execute_batch(migration)?;
    }
    tx.pragma_update(None, "user_version", known)?;
    tx.pragma_update(None, "application_id", APPLICATION_ID)?;
    tx.commit()?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("schema version {found} is newer than this build knows ({known})")]
    TooNew { found: i64, known: i64 },
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}
