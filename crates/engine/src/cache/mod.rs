//! The response cache across jobs: successful answers kept in a SQLite file of their own
//! (`$XDG_CACHE_HOME/promptmill/cache.db` by default; the CLI chooses the path), keyed by
//! [`key::Scope::key`], so that a row whose request was answered before, by any job, is done
//! without a request.
//!
//! The file is created exclusively with mode 0600 in a directory made 0700, runs in WAL mode
//! with a busy timeout, so several jobs (processes) can read and write it at once. It holds the
//! answer's body as received (the family parses it again on a hit, so a cached row's output
//! equals the original's) and when it was stored; never a key or a header.
//!
//! A cache that cannot be opened, read or written warns once (through `tracing`, i.e. on
//! stderr) and the run goes on without it: the cache saves money, it never stops a job.
//! Lookups are made a page of rows at a time ([`Cache::lookup_many`], on a blocking thread, not
//! the worker loop's). Nothing is stored while a run sends: its answers are marked kept in the
//! checkpoint with their outcomes and copied in when the run ends ([`keep::copy_kept`], through
//! [`Cache::store_all`]), a page at a time in key order.
//!
//! Why (measured by `examples/cache_lookup.rs` and the zero-latency benchmark): the key is a
//! hash, so its order is random. Keyed by it (`WITHOUT ROWID`), every insert landed on a random
//! page of a table of whole answers: 42 µs an answer. Stored in rowid order with an index on
//! the key's first 8 bytes, only the index's small entries land at random: about 4 µs. But a
//! writer thread storing answers while the run sent them still took the zero-latency run 15-20 %
//! of its rate on 2 cores (its CPU, and the contention it adds to the worker loop's thread and
//! the checkpoint writer's); copied after the run, in key order, it costs the run that copy's
//! time only.

pub mod keep;
pub mod key;
mod maintenance;
pub mod pending;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

pub use key::{Key, Scope};
pub use maintenance::{clear, prune, stats, CacheStats};

use promptmill_core::family::{ApiFamily, Completion};
use promptmill_core::schema::{Judged, Structured};

/// How long a statement waits for another job's lock on the file before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// The schema version this build writes (`PRAGMA user_version`). Version 1 keyed answers by a
/// key made differently (`key.rs`'s tag): its table is dropped, its entries would never hit.
const SCHEMA: i64 = 2;
/// The page cache, in KiB (SQLite's negative `cache_size`): the key index of about a
/// million answers.
const PAGE_CACHE_KIB: i64 = 32 * 1024;
/// WAL pages before SQLite copies them into the database (its default is 1,000).
const WAL_PAGES: i64 = 16 * 1024;

const CREATE: &str = "
    DROP TABLE IF EXISTS answers;
    CREATE TABLE answers (
        id          INTEGER PRIMARY KEY,      -- in the order stored (see the module's docs)
        short       INTEGER NOT NULL UNIQUE,  -- the key's first 8 bytes: what the index holds
        key         BLOB    NOT NULL,         -- key.rs: SHA-256 of family, target and digest
        family      TEXT    NOT NULL,         -- the family's name (chat, responses, ...)
        response    TEXT    NOT NULL,         -- the answer's body as received
        created_at  INTEGER NOT NULL          -- unix ms
    );
";

/// A stored answer `raw`, read by the job's `family` as a fresh one is (so a cached row's
/// output equals the original's); `None`, a miss, for an entry that no longer reads, would not
/// be stored today (cut short, refused), or breaks the job's `--schema`.
pub fn answer_of(family: &dyn ApiFamily, raw: &str, structured: Option<&Structured>) -> Option<Completion> {
    let valid = |c: &Completion| match structured {
        Some(s) => matches!(c.judged_by(&s.schema), Judged::Valid(_)),
        None => true,
    };
    family
        .parse(raw.as_bytes())
        .ok()
        .filter(Completion::may_be_cached)
        .filter(valid)
}

/// An open cache: see the module's documentation.
pub struct Cache {
    path: PathBuf,
    /// A std Mutex: a lookup is a page of indexed reads, never held across an await; `None`
    /// once the cache has failed.
    conn: Mutex<Option<Connection>>,
    /// With `--cache-read-only`: [`Cache::store_all`] stores nothing.
    read_only: bool,
    /// Set by the first failure, which is the only one warned about.
    failed: AtomicBool,
}

impl Cache {
    /// Opens (creating it if need be) the cache at `path`; with `read_only`, nothing is stored
    /// in it. An error says what failed; the caller warns and goes on without it.
    pub fn open(path: &Path, read_only: bool) -> anyhow::Result<Cache> {
        Ok(Cache {
            path: path.to_path_buf(),
            conn: Mutex::new(Some(open_conn(path)?)),
            read_only,
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

    /// Whether answers are stored (not `--cache-read-only`).
    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// The answer stored for `key`, if any. A read error warns once and turns the cache off.
    pub fn lookup(&self, key: &Key) -> Option<String> {
        self.lookup_many(&[Some(*key)]).pop().flatten()
    }

    /// The answers stored for `keys`, one for each (`None` for a miss, or where there is no
    /// key), in one read transaction. Blocks: call it off the worker loop. A read error warns
    /// once and turns the cache off.
    pub fn lookup_many(&self, keys: &[Option<Key>]) -> Vec<Option<String>> {
        let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(c) = conn.as_ref() else {
            return vec![None; keys.len()];
        };
        match read_all(c, keys) {
            Ok(found) => found,
            Err(e) => {
                *conn = None;
                self.fail("read", &e.into());
                vec![None; keys.len()]
            }
        }
    }

    /// Stores `answers` of `family` (key, body) in one transaction, in key order (so the
    /// index's pages are visited once each); nothing when read only. Returns whether they were
    /// stored; a write error warns once and turns the cache off.
    pub fn store_all(&self, family: &str, answers: &mut [(Key, String)]) -> bool {
        if self.read_only {
            return false;
        }
        let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(c) = conn.as_mut() else {
            return false;
        };
        answers.sort_unstable_by_key(|(k, _)| short(k));
        match write_all(c, family, answers) {
            Ok(()) => true,
            Err(e) => {
                *conn = None;
                self.fail("written", &e.into());
                false
            }
        }
    }

    fn fail(&self, what: &str, e: &anyhow::Error) {
        if !self.failed.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "the response cache {} cannot be {what} ({e:#}); going on without it",
                self.path.display()
            );
        }
    }
}

/// One read transaction: the answer stored for each key.
fn read_all(conn: &Connection, keys: &[Option<Key>]) -> rusqlite::Result<Vec<Option<String>>> {
    if keys.iter().all(Option::is_none) {
        return Ok(vec![None; keys.len()]);
    }
    let tx = conn.unchecked_transaction()?;
    let mut select = tx.prepare_cached("SELECT response FROM answers WHERE short = ?1 AND key = ?2")?;
    let mut found = Vec::with_capacity(keys.len());
    for key in keys {
        found.push(match key {
            Some(k) => select
                .query_row(params![short(k), &k[..]], |r| r.get(0))
                .optional()?,
            None => None,
        });
    }
    drop(select);
    tx.finish()?;
    Ok(found)
}

fn write_all(conn: &mut Connection, family: &str, answers: &[(Key, String)]) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT OR REPLACE INTO answers (short, key, family, response, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        let now = crate::store::now_ms();
        for (key, response) in answers {
            insert.execute(params![short(key), &key[..], family, response, now])?;
        }
    }
    tx.commit()
}

/// The key's first 8 bytes as the integer the index is on. Two keys that share them (one pair
/// in ~10^13 among a million answers) take turns in the cache: the lookup compares the whole
/// key, so a shared prefix is a miss, never another request's answer.
fn short(key: &Key) -> i64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&key[..8]);
    i64::from_le_bytes(first)
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
