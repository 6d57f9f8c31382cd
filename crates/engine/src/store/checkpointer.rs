//! The write-ahead log's checkpoint on a thread of its own while a run writes.
//!
//! SQLite copies the WAL back into the database when a commit finds it past
//! `wal_autocheckpoint` pages, on the committing thread: for the checkpoint writer that was
//! about a fifth of its time on a fast run (reading the log, writing the pages, and the syncs
//! `synchronous = NORMAL` makes at each checkpoint), time during which no outcome was recorded.
//! During a live run, and while a Batch job is driven (each collection rewrites a part's rows
//! in one transaction, whose commit would copy tens of megabytes of log), a second connection
//! copies the log in the background instead (`PASSIVE`: it never blocks the writer), and the
//! writer's own automatic checkpoint is moved out to
//! [`WRITER_PAGES`]: it is then the rare catch-up that finds most of the log already copied,
//! and the one that lets the log start over from its beginning (a log is restarted only once
//! it has been copied whole, which a copy racing the writer's commits seldom sees). So the log
//! stays within a few tens of megabytes, and durability is what it was: a commit is durable
//! against a process kill once it is in the log, whoever copies it later.

use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::Store;

/// The writer's automatic checkpoint while the log is copied in the background, in pages
/// (SQLite's default is 1,000).
pub(super) const WRITER_PAGES: i64 = 16_384;
/// SQLite's default, restored when the background copy ends.
pub(super) const DEFAULT_PAGES: i64 = 1_000;
/// Log pages not yet copied that are worth a checkpoint.
const WORTH_COPYING: i64 = 256;
/// How long the checkpointer waits before looking at the log again while it grows; the wait
/// doubles while nothing is written, up to [`LONGEST_PAUSE`] (a Batch job waits hours between
/// collections, and should not look at its log a hundred times a second all that time).
const PAUSE: Duration = Duration::from_millis(10);
const LONGEST_PAUSE: Duration = Duration::from_millis(320);

/// The running checkpointer; [`Store::stop_background_checkpoint`] ends it.
pub struct Checkpointer {
    /// Dropped to stop the thread: its wait ends at once.
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl Store {
    /// Starts copying this checkpoint's log on a thread of its own, and moves this
    /// connection's own automatic checkpoint out to [`WRITER_PAGES`]. `None` for a database in
    /// memory, or when a second connection cannot be opened: this connection's own checkpoint
    /// then does the work, as it always did.
    pub fn start_background_checkpoint(&mut self) -> Option<Checkpointer> {
        let started = Checkpointer::start(self.path())?;
        if let Err(e) = self
            .conn()
            .pragma_update(None, "wal_autocheckpoint", WRITER_PAGES)
        {
            tracing::debug!("background checkpoint not started: {e}");
            started.stop();
            return None;
        }
        Some(started)
    }

    /// Ends a background copy started by [`Store::start_background_checkpoint`] (its last copy
    /// finishes first) and gives this connection its automatic checkpoint back.
    pub fn stop_background_checkpoint(&mut self, started: Option<Checkpointer>) {
        if let Some(c) = started {
            c.stop();
            // Only how often later commits copy the log: not worth failing a command over.
            let _ = self
                .conn()
                .pragma_update(None, "wal_autocheckpoint", DEFAULT_PAGES);
        }
    }
}

impl Checkpointer {
    fn start(path: &Path) -> Option<Checkpointer> {
        if path == Path::new(":memory:") {
            return None;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).ok()?;
        conn.busy_timeout(Duration::from_millis(100)).ok()?;
        let (stop, stopped) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("checkpointer".into())
            .spawn(move || copy_until(&conn, &stopped))
            .ok()?;
        Some(Checkpointer { stop, thread })
    }

    /// Ends the checkpointer and waits for it (its last copy finishes first).
    fn stop(self) {
        drop(self.stop);
        let _ = self.thread.join();
    }
}

/// Copies the log whenever it holds enough pages not yet copied, until told to stop. A failed
/// checkpoint (a full disk, a busy database) is left to the writer's own, which reports errors.
fn copy_until(conn: &Connection, stop: &mpsc::Receiver<()>) {
    let (mut before, mut last_log) = (-1, -1);
    let mut pause = PAUSE;
    loop {
        let left = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
        });
        match left {
            // Pages still to copy, and the last copy got somewhere: go on.
            Ok((log, copied)) if log - copied >= WORTH_COPYING && copied != before => {
                (before, last_log, pause) = (copied, log, PAUSE);
                continue;
            }
            // The log grows (a run is writing): look again soon. Waiting longer here, with
            // the log growing, cost an embeddings run 7 % of its sending rate.
            Ok((log, copied)) if log != last_log => (before, last_log, pause) = (copied, log, PAUSE),
            // Nothing was written since the last look: wait longer each time.
            Ok((_, copied)) => (before, pause) = (copied, (pause * 2).min(LONGEST_PAUSE)),
            Err(e) => tracing::debug!("background checkpoint: {e}"),
        }
        // Nothing is sent on the channel: a wait ends by its time, or at once when the
        // sender is dropped (stop).
        if let Err(mpsc::RecvTimeoutError::Disconnected) = stop.recv_timeout(pause) {
            return;
        }
    }
}
