//! The response cache across jobs: successful answers kept in a SQLite file of their own
//! (`$XDG_CACHE_HOME/promptmill/cache.db` by default; the CLI chooses the path), keyed by
//! [`key::Scope::key`], so that a row whose request was answered before, by any job, is done
//! without a request.
//!
//! The file is created exclusively with mode 0600 in a directory made 0700, runs in WAL mode
//! with a busy timeout, so several jobs (processes) can read and write it at once. It holds the
//! answer's body as received (the family parses it again on a hit, so a cached row's output
//! equals the original's) and when it was stored; never a key or a header. What is worth
//! storing is [`cacheable`]'s decision; the pipeline asks before the limiter, the window and the
//! budget, and stores after a row's outcome.
//!
//! A cache that cannot be opened or read warns once (through `tracing`, i.e. on stderr) and the
//! run goes on without it: the cache saves money, it never stops a job. Lookups are made a page
//! of rows at a time ([`Cache::lookup_many`], on a blocking thread, not the worker loop's).
//! Writes go to a thread of their own ([`Cache::put`] only queues, on a bounded queue, so a
//! slow disk holds the run back rather than filling memory), which commits what has gathered
//! in one transaction of up to [`MAX_GROUP`] answers; [`Cache::close`] ends it once the run is
//! over. A kill loses at most the answers queued and not committed: those rows are done in the
//! checkpoint anyway, and only a later job would send them again.
//!
//! Why the table is what it is (measured by `examples/cache_lookup.rs`, 200,000 answers): the
//! key is a hash, so its order is random. Keyed by it (`WITHOUT ROWID`), every insert lands on
//! a random page of a table of whole answers, and each commit rewrote about as many pages as it
//! stored answers: 42 µs an answer. Stored in rowid order with a separate index on the key,
//! only the index's small entries land at random: 15 µs; with bigger groups, a page cache that
//! holds the index and a WAL checkpointed less often: 5.5 µs.

pub mod key;
mod maintenance;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::mpsc;

use promptmill_core::family::Completion;

pub use key::{Key, Scope};
pub use maintenance::{clear, prune, stats, CacheStats};

/// How long a statement waits for another job's lock on the file before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// The schema version this build writes (`PRAGMA user_version`). Version 1 keyed answers by a
/// key made differently (`key.rs`'s tag): its table is dropped, its entries would never hit.
const SCHEMA: i64 = 2;
/// Answers one write transaction stores at most.
const MAX_GROUP: usize = 8192;
/// How long the writer lets answers gather before it commits fewer than [`MAX_GROUP`].
const GATHER: Duration = Duration::from_millis(50);
/// Answers queued for the writer at most; [`Cache::put`] waits while the queue is full.
const QUEUE: usize = 16 * 1024;
/// The page cache of each connection, in KiB (SQLite's negative `cache_size`): the key
/// index of about a million answers.
const PAGE_CACHE_KIB: i64 = 64 * 1024;
/// WAL pages before SQLite copies them into the database (its default is 1,000).
const WAL_PAGES: i64 = 16 * 1024;

const CREATE: &str = "
    DROP TABLE IF EXISTS answers;
    CREATE TABLE answers (
        id          INTEGER PRIMARY KEY,      -- in the order stored (see the module's docs)
        key         BLOB    NOT NULL UNIQUE,  -- key.rs: SHA-256 of family, target and digest
        family      TEXT    NOT NULL,         -- the family's name (chat, responses, ...)
        response    TEXT    NOT NULL,         -- the answer's body as received
        created_at  INTEGER NOT NULL          -- unix ms
    );
    CREATE INDEX answers_created ON answers (created_at);
";

/// Finish reasons that mean the answer is cut short or refused: never cached.
const NOT_CACHED_REASONS: &[&str] = &["length", "max_tokens", "content_filter", "refusal"];

/// Whether an answer may be stored: a whole, not refused answer.
pub fn cacheable(c: &Completion) -> bool {
    let reason = c.finish_reason.as_deref().unwrap_or("");
    // A chat refusal ends with `stop`: its `message.refusal` says it.
    !NOT_CACHED_REASONS.contains(&reason) && c.refusal.is_none()
}

/// One answer queued for the writer thread.
struct Entry {
    key: Key,
    family: &'static str,
    response: String,
}

/// An open cache: see the module's documentation.
pub struct Cache {
    path: PathBuf,
    /// Lookups. A std Mutex: a lookup is one indexed read (microseconds), never held across an
    /// await; `None` once the cache has failed.
    reader: Mutex<Option<Connection>>,
    /// Answers to store, to the writer thread; `None` when read only. Dropped by
    /// [`Cache::close`], which ends the thread once it has committed what was queued.
    writes: Mutex<Option<mpsc::Sender<Entry>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Set by the first failure, which is the only one warned about.
    failed: AtomicBool,
}

impl Cache {
    /// Opens (creating it if need be) the cache at `path`; with `read_only`, [`Cache::put`]
    /// stores nothing. An error says what failed; the caller warns and goes on without it.
    pub fn open(path: &Path, read_only: bool) -> anyhow::Result<Cache> {
        let conn = open_conn(path)?;
        let (writes, writer) = if read_only {
            (None, None)
        } else {
            let conn = open_conn(path)?;
            let (tx, rx) = mpsc::channel(QUEUE);
            let shown = path.display().to_string();
            let handle = std::thread::Builder::new()
                .name("cache-writer".into())
                .spawn(move || write_loop(conn, rx, &shown))?;
            (Some(tx), Some(handle))
        };
        Ok(Cache {
            path: path.to_path_buf(),
            reader: Mutex::new(Some(conn)),
            writes: Mutex::new(writes),
            writer: Mutex::new(writer),
            failed: AtomicBool::new(false),
        })
    }

    /// [`Cache::open`], or `None` after one warning: a run goes on without its cache.
    pub fn open_or_warn(path: &Path, read_only: bool) -> Option<Cache> {
        match Cache::open(path, read_only) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(
                    "the response cache {} cannot be used ({e:#}); going on without it",
                    path.display()
                );
                None
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The answer stored for `key`, if any. A read error warns once and turns the cache off.
    pub fn lookup(&self, key: &Key) -> Option<String> {
        self.lookup_many(&[Some(*key)]).pop().flatten()
    }

    /// The answers stored for `keys`, one for each (`None` for a miss, or where there is no
    /// key), in one read transaction. Blocks: call it off the worker loop. A read error warns
    /// once and turns the cache off.
    pub fn lookup_many(&self, keys: &[Option<Key>]) -> Vec<Option<String>> {
        let mut reader = self.reader.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(conn) = reader.as_ref() else {
            return vec![None; keys.len()];
        };
        match read_all(conn, keys) {
            Ok(found) => found,
            Err(e) => {
                *reader = None;
                self.fail(&e.into());
                vec![None; keys.len()]
            }
        }
    }

    /// Queues an answer to store (nothing when read only or after a failure); waits while the
    /// writer's queue is full.
    pub async fn put(&self, key: Key, family: &'static str, response: String) {
        let Some(tx) = self.sender() else { return };
        // The writer thread only ends after a failure it has warned about.
        let _ = tx
            .send(Entry {
                key,
                family,
                response,
            })
            .await;
    }

    /// [`Cache::put`] outside an async runtime (tests, examples).
    pub fn put_blocking(&self, key: Key, family: &'static str, response: String) {
        let Some(tx) = self.sender() else { return };
        let _ = tx.blocking_send(Entry {
            key,
            family,
            response,
        });
    }

    fn sender(&self) -> Option<mpsc::Sender<Entry>> {
        if self.failed.load(Ordering::Relaxed) {
            return None;
        }
        self.writes.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Commits what is queued and ends the writer thread.
    pub fn close(&self) {
        drop(self.writes.lock().unwrap_or_else(PoisonError::into_inner).take());
        if let Some(handle) = self.writer.lock().unwrap_or_else(PoisonError::into_inner).take() {
            let _ = handle.join();
        }
    }

    fn fail(&self, e: &anyhow::Error) {
        if !self.failed.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "the response cache {} cannot be read ({e:#}); going on without it",
                self.path.display()
            );
        }
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
        self.close();
    }
}

/// One read transaction: the answer stored for each key.
fn read_all(conn: &Connection, keys: &[Option<Key>]) -> rusqlite::Result<Vec<Option<String>>> {
    if keys.iter().all(Option::is_none) {
        return Ok(vec![None; keys.len()]);
    }
    let tx = conn.unchecked_transaction()?;
    let mut select = tx.prepare_cached("SELECT response FROM answers WHERE key = ?1")?;
    let mut found = Vec::with_capacity(keys.len());
    for key in keys {
        found.push(match key {
            Some(k) => select.query_row(params![&k[..]], |r| r.get(0)).optional()?,
            None => None,
        });
    }
    drop(select);
    tx.finish()?;
    Ok(found)
}

/// Stores queued answers, each group in one transaction, until every sender is gone: a group
/// is what has gathered within [`GATHER`] of its first answer, at most [`MAX_GROUP`]. A failure
/// warns once and drops the rest (the run does not depend on them).
fn write_loop(mut conn: Connection, mut rx: mpsc::Receiver<Entry>, shown: &str) {
    while let Some(first) = rx.blocking_recv() {
        let started = std::time::Instant::now();
        let mut group = vec![first];
        let mut open = true;
        while open && group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(e) => group.push(e),
                Err(mpsc::error::TryRecvError::Disconnected) => open = false,
                Err(mpsc::error::TryRecvError::Empty) if started.elapsed() < GATHER => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(mpsc::error::TryRecvError::Empty) => break,
            }
        }
        if let Err(e) = store(&mut conn, &group) {
            tracing::warn!(
                "the response cache {shown} cannot be written ({e:#}); answers of this run are not kept"
            );
            return;
        }
    }
}

fn store(conn: &mut Connection, group: &[Entry]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT OR REPLACE INTO answers (key, family, response, created_at) VALUES (?1, ?2, ?3, ?4)",
        )?;
        let now = crate::store::now_ms();
        for e in group {
            insert.execute(params![&e.key[..], e.family, e.response, now])?;
        }
    }
    tx.commit()
}

/// Opens the file (creating it, and its directory, private to the user), in WAL mode, with the
/// schema in place.
pub(crate) fn open_conn(path: &Path) -> anyhow::Result<Connection> {
    create_private(path)?;
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > SCHEMA {
        anyhow::bail!("written by a newer promptmill (schema {version}, this one knows {SCHEMA})");
    }
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "cache_size", -PAGE_CACHE_KIB)?;
    conn.pragma_update(None, "wal_autocheckpoint", WAL_PAGES)?;
    if version < SCHEMA {
        // Under the write lock, and asked again: another job may have just done it.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version < SCHEMA {
            tx.execute_batch(CREATE)?;
            tx.pragma_update(None, "user_version", SCHEMA)?;
        }
        tx.commit()?;
    }
    Ok(conn)
}

/// Creates `path`'s directory (0700) and the file itself, exclusively and 0600, unless it
/// exists; SQLite gives its `-wal` and `-shm` files the database file's mode.
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::fs::{DirBuilder, OpenOptions};
    #[cfg(unix)]
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};

    let dir = promptmill_core::files::dir_of(path);
    let mut builder = DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(0o700);
    builder.create(dir)?;
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests;
