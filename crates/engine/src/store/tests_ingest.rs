//! Disk use of reading an input in: the rows are written to the database once, not through a
//! WAL as large as the database, and the checkpoint is back in WAL mode afterwards.

use std::path::Path;

use super::tests::{job, valid};
use super::*;

/// Bytes of the database and of its `-wal` and `-journal` files.
fn on_disk(db: &Path) -> u64 {
    ["", "-wal", "-journal"]
        .iter()
        .map(|suffix| {
            let mut p = db.as_os_str().to_owned();
            p.push(suffix);
            std::fs::metadata(p).map_or(0, |m| m.len())
        })
        .sum()
}

fn journal_mode(store: &mut Store) -> String {
    store
        .conn()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_large_ingest_needs_little_more_disk_than_the_checkpoint_it_makes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    let mut store = Store::open(&path, true).unwrap();
    let fields = format!("{{\"prompt\":\"{}\"}}", "x".repeat(1000));
    let mut peak = 0;
    let mut ingest = store.begin_ingest().unwrap();
    for seq in 1..=20_000u64 {
        let id = format!("r{seq}");
        ingest
            .add(&NewRow {
                fields: &fields,
                ..valid(seq, &id)
            })
            .unwrap()
            .unwrap();
        if seq % 500 == 0 {
            peak = peak.max(on_disk(&path));
        }
    }
    ingest.commit(&job(), 20_000).unwrap();
    let after = on_disk(&path);
    peak = peak.max(after);
    let db = std::fs::metadata(&path).unwrap().len();
    assert!(db > 20_000_000, "the rows are in the database: {db}");
    assert!(
        peak as f64 <= 1.2 * db as f64,
        "peak {peak} bytes on disk for a {db}-byte checkpoint (after the commit: {after})"
    );
    assert_eq!(journal_mode(&mut store), "wal");
    assert!(!dir.path().join("c.db-journal").exists());
    assert_eq!(store.counts().unwrap().total, 20_000);
}

#[test]
fn a_dropped_ingest_leaves_nothing_and_the_checkpoint_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    let mut store = Store::open(&path, true).unwrap();
    {
        let mut ingest = store.begin_ingest().unwrap();
        ingest.add(&valid(1, "a")).unwrap().unwrap();
    }
    assert_eq!(journal_mode(&mut store), "wal");
    assert_eq!(store.job().unwrap(), None);
    assert_eq!(store.counts().unwrap().total, 0);
    assert!(!dir.path().join("c.db-journal").exists());
}

#[test]
fn an_ingest_beside_another_reader_stays_in_wal_mode_and_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    let mut store = Store::open(&path, true).unwrap();
    // Another process's connection (say `promptmill status`) keeps the WAL mode in place.
    let other = rusqlite::Connection::open(&path).unwrap();
    let _: i64 = other
        .query_row("SELECT count(*) FROM rows", [], |r| r.get(0))
        .unwrap();
    let mut ingest = store.begin_ingest().unwrap();
    ingest.add(&valid(1, "a")).unwrap().unwrap();
    ingest.commit(&job(), 1).unwrap();
    assert_eq!(journal_mode(&mut store), "wal");
    let seen: i64 = other
        .query_row("SELECT count(*) FROM rows", [], |r| r.get(0))
        .unwrap();
    assert_eq!(seen, 1);
}
