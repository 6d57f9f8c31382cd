//! The write-ahead log's checkpoint on a thread of its own while a run writes.
//!
//! SQLite copies the WAL back into the database when a commit finds it past
//! `wal_autocheckpoint` pages, on the committing thread: for the checkpoint writer that was
//! about a fifth of its time on a fast run (reading the log, writing the pages, and the syncs
//! `synchronous = NORMAL` makes at each checkpoint), time during which no outcome was recorded.
//! During a run a second connection copies the log in the background instead (`PASSIVE`: it
//! never blocks the writer), and the writer's own automatic checkpoint is moved out to
//! [`WRITER_PAGES`]: it is then the rare catch-up that finds most of the log already copied,
//! and the one that lets the log start over from its beginning (a log is restarted only once
//! it has been copied whole, which a copy racing the writer's commits seldom sees). So the log
//! stays within a few tens of megabytes, and durability is what it was: a commit is durable
//! against a process kill once it is in the log, whoever copies it later.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// The writer's automatic checkpoint during a run, in pages (SQLite's default is 1,000).
pub(crate) const WRITER_PAGES: i64 = 16_384;
/// SQLite's default, restored when the run's writer ends.
pub(crate) const DEFAULT_PAGES: i64 = 1_000;
/// Log pages not yet copied that are worth a checkpoint.
const WORTH_COPYING: i64 = 256;
/// How long the checkpointer waits before looking at the log again.
const PAUSE: Duration = Duration::from_millis(10);

/// The running checkpointer; [`Checkpointer::stop`] ends it.
pub(crate) struct Checkpointer {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Checkpointer {
    /// Starts copying the log of the database at `path` in the background; `None` for a
    /// database in memory, or when a second connection cannot be opened (the writer's own
    /// checkpoint then does the work, as it always did).
    pub(crate) fn start(path: &Path) -> Option<Checkpointer> {
        if path == Path::new(":memory:") {
            return None;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).ok()?;
        conn.busy_timeout(Duration::from_millis(100)).ok()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("checkpointer".into())
            .spawn(move || copy_until(&conn, &stopped))
            .ok()?;
        Some(Checkpointer { stop, thread })
    }

    /// Ends the checkpointer and waits for it (its last copy finishes first).
    pub(crate) fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

/// Copies the log whenever it holds enough pages not yet copied, until told to stop. A failed
/// checkpoint (a full disk, a busy database) is left to the writer's own, which reports errors.
fn copy_until(conn: &Connection, stop: &AtomicBool) {
    let mut before = -1;
    while !stop.load(Ordering::Relaxed) {
        let left = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
        });
        match left {
            // Pages still to copy, and the last copy got somewhere: go on.
            Ok((log, copied)) if log - copied >= WORTH_COPYING && copied != before => before = copied,
            Ok((_, copied)) => {
                before = copied;
                std::thread::sleep(PAUSE);
            }
            Err(e) => {
                tracing::debug!("background checkpoint: {e}");
                std::thread::sleep(PAUSE);
            }
        }
    }
}
