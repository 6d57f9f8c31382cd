//! The dry run: read and validate the input exactly as `run` would, render every request, count
//! its tokens, and send nothing.
//!
//! Reading and rendering are sequential (row order decides ids, duplicates and the endpoint), so
//! one thread does them and hands the rendered bodies in chunks to one counting thread per core;
//! tokenizing is most of the work. Each counter keeps its own tallies, merged at the end. Memory
//! does not grow with the prompts: a tally holds counts per distinct prompt length (exact
//! percentiles from a histogram). To catch duplicate ids as `run` does, ids taken from a field
//! are remembered as a 64-bit hash and the line they were first seen on (about 16 bytes a row;
//! ids made from row numbers cannot repeat and are not remembered). Two different ids with the
//! same hash would be reported as duplicates; at a million ids the odds are about 1 in 30
//! million.
//!
//! Rows a run would answer from the response cache are found on the counting threads
//! ([`cached`]) and left out of the tallies.
//!
//! [`report`] turns the tallies, the prices and the limits into what the user reads.

pub mod cached;
pub mod calibrate;
pub mod report;
mod tally;

pub use tally::{Band, ModelTally};

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use crate::cache::key::{Digest, Repeats};
use crate::load::LoadError;
use crate::prepare::Preparer;
use crate::source::InputConfig;
use cached::{CacheProbe, CachedRows};
use promptmill_core::error::InputError;
use promptmill_core::input::RowReader;
use promptmill_core::job::Endpoint;
use promptmill_core::schema::Structured;

/// Rendered bodies handed to a counting thread at a time.
const CHUNK: usize = 512;
/// How many invalid rows the report lists.
const LISTED: usize = 10;

/// What the dry run found in the input.
#[derive(Debug, Clone)]
pub struct Scan {
    pub file: PathBuf,
    pub endpoint: Endpoint,
    /// Rows read, valid or not.
    pub rows: u64,
    /// Rows that `run` would refuse (or, with `--skip-invalid`, record as failed unsent).
    pub invalid: u64,
    pub listed: Vec<InputError>,
    /// Valid rows by the model their request names (`""` when it names none), less those
    /// found in the response cache.
    pub models: BTreeMap<String, ModelTally>,
    /// Valid rows a run would answer from the response cache, when one was looked in.
    pub cached: Option<CachedRows>,
}

impl Scan {
    /// Rows a run would send: valid, and not answered from the response cache.
    pub fn rows_to_send(&self) -> u64 {
        self.rows - self.invalid - self.cached.as_ref().map_or(0, |c| c.rows)
    }
}

/// Reads the whole input of `cfg`, validating and rendering every row as `run` would, and counts
/// the tokens of each request on `threads` threads; with `cache`, the rows a run would answer
/// from it are counted apart. `progress` is called with the rows read.
pub fn scan(
    cfg: &InputConfig,
    threads: usize,
    cache: Option<&CacheProbe>,
    progress: &dyn Fn(u64),
) -> Result<Scan, LoadError> {
    let mut reader = RowReader::open(&cfg.input, cfg.format).map_err(LoadError::Read)?;
    let mut preparer = Preparer::new(cfg.input.clone(), cfg.request.clone());
    if cache.is_some() {
        preparer = preparer.with_digests();
    }
    if reader.has_header() {
        preparer
            .check_columns(reader.columns())
            .map_err(LoadError::Columns)?;
    }
    let threads = threads.max(1);
    let has_header = reader.has_header();
    // A cached answer counts only if it fits the job's schema, as in a run (only the schema
    // judges; the re-ask settings do not matter here).
    let structured = cfg.request.schema.clone().map(|schema| Structured {
        schema,
        retries: 0,
        repair: false,
    });
    let structured = structured.as_ref();
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::sync_channel::<Chunk>(threads * 4);
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        let counters: Vec<_> = (0..threads)
            .map(|_| {
                let rx = std::sync::Arc::clone(&rx);
                s.spawn(move || count_chunks(&rx, cache, structured))
            })
            .collect();
        let read = read_rows(&cfg.input, &mut reader, &mut preparer, tx, progress);
        // The sender is dropped by `read_rows`, so every counter ends.
        let mut models: BTreeMap<String, ModelTally> = BTreeMap::new();
        let mut found = 0;
        for counter in counters {
            let (tallies, cached) = counter
                .join()
                .map_err(|_| anyhow::anyhow!("a token-counting thread panicked"))?;
            for (model, tally) in tallies {
                models.entry(model).or_default().merge(tally);
            }
            found += cached;
        }
        let (rows, invalid, listed) = read?;
        if rows == 0 {
            return Err(LoadError::Empty {
                file: cfg.input.clone(),
                header: has_header,
            });
        }
        Ok(Scan {
            file: cfg.input.clone(),
            endpoint: preparer.endpoint(),
            rows,
            invalid,
            listed,
            models,
            cached: cache.map(|c| CachedRows {
                cache: c.path().to_path_buf(),
                rows: found,
            }),
        })
    })
}

/// Rendered bodies on their way to a counter, with their cache digests (when the cache is
/// looked in) and the job's endpoint (settled by the first of them, so the same for every
/// chunk).
struct Chunk {
    endpoint: Endpoint,
    bodies: Vec<String>,
    digests: Vec<Option<Digest>>,
}

/// The reading side: rows in order, validated and rendered; bodies go to the counters.
fn read_rows(
    file: &Path,
    reader: &mut RowReader,
    preparer: &mut Preparer,
    tx: mpsc::SyncSender<Chunk>,
    progress: &dyn Fn(u64),
) -> Result<(u64, u64, Vec<InputError>), LoadError> {
    let hasher = std::hash::RandomState::new();
    let mut ids: HashMap<u64, u64> = HashMap::new();
    let mut listed = Vec::new();
    let (mut rows, mut invalid) = (0u64, 0u64);
    // Numbered as a run numbers them: the k-th repeat of a request is a cache entry of its own.
    let mut repeats = Repeats::default();
    let (mut chunk, mut digests) = (Vec::with_capacity(CHUNK), Vec::new());
    let mut last_progress = std::time::Instant::now();
    while let Some(item) = reader.next_row() {
        let item = item.map_err(LoadError::Read)?;
        rows += 1;
        let outcome = match item {
            Err(e) => Err(e),
            Ok(row) => match preparer
                .check_flags_fit(&row)
                .map_err(LoadError::Refused)
                .map(|()| preparer.prepare(&row))?
            {
                Err(e) => Err(e),
                Ok(mut prepared) => {
                    prepared.digest = prepared.digest.map(|d| repeats.number(d));
                    match preparer.id_field(&row) {
                        // Ids made from the row number cannot repeat; only named ones are
                        // remembered.
                        None => Ok(prepared),
                        Some(field) => match ids.get(&hasher.hash_one(&prepared.id)) {
                            Some(first) => Err(InputError::new(
                                file,
                                row.line,
                                format!("duplicate id `{}` (first used on line {first})", prepared.id),
                            )
                            .field(field)),
                            None => {
                                ids.insert(hasher.hash_one(&prepared.id), row.line);
                                Ok(prepared)
                            }
                        },
                    }
                }
            },
        };
        match outcome {
            Ok(prepared) => {
                chunk.push(prepared.body);
                if preparer.takes_digests() {
                    digests.push(prepared.digest);
                }
                if chunk.len() == CHUNK {
                    let full = Chunk {
                        endpoint: preparer.endpoint(),
                        bodies: std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK)),
                        digests: std::mem::take(&mut digests),
                    };
                    if tx.send(full).is_err() {
                        break;
                    }
                }
            }
            Err(e) => {
                invalid += 1;
                if listed.len() < LISTED {
                    listed.push(e);
                }
            }
        }
        if last_progress.elapsed() > std::time::Duration::from_millis(200) {
            progress(rows);
            last_progress = std::time::Instant::now();
        }
    }
    if !chunk.is_empty() {
        let _ = tx.send(Chunk {
            endpoint: preparer.endpoint(),
            bodies: chunk,
            digests,
        });
    }
    if invalid > 0 && !reader.has_header() {
        if let Some(message) = preparer.absent_field(reader.columns()) {
            return Err(LoadError::Refused(message));
        }
    }
    Ok((rows, invalid, listed))
}

/// The counting side: tallies per model of every body it receives, and how many of them a run
/// would answer from `cache` (left out of the tallies; answers judged by `structured`).
fn count_chunks(
    rx: &std::sync::Mutex<mpsc::Receiver<Chunk>>,
    cache: Option<&CacheProbe>,
    structured: Option<&Structured>,
) -> (HashMap<String, ModelTally>, u64) {
    let mut tallies: HashMap<String, ModelTally> = HashMap::new();
    let mut cached = 0;
    loop {
        let chunk = match rx.lock() {
            Ok(rx) => match rx.recv() {
                Ok(chunk) => chunk,
                Err(_) => break,
            },
            Err(_) => break,
        };
        let found = match cache {
            Some(cache) => cache.found(chunk.endpoint, &chunk.digests, structured),
            None => Vec::new(),
        };
        let family = chunk.endpoint.family();
        for (i, body) in chunk.bodies.iter().enumerate() {
            if found.get(i).copied().unwrap_or(false) {
                cached += 1;
                continue;
            }
            // The body is JSON this program just serialized; it always parses.
            let Ok((cost, model)) = family.measure(body) else {
                continue;
            };
            let model = model.as_deref().unwrap_or("");
            match tallies.get_mut(model) {
                Some(t) => t.add(&cost, body.len()),
                None => tallies
                    .entry(model.to_string())
                    .or_default()
                    .add(&cost, body.len()),
            }
        }
    }
    (tallies, cached)
}

/// The expectation a calibration sample gives: the mean completion tokens per request, and a
/// 95 % confidence interval of that mean (Student's t for small samples). Scaled by the job's
/// requests, the interval is the interval of the job's completion tokens.
pub fn expectation_from_sample(completions: &[u64]) -> report::Expectation {
    let n = completions.len() as f64;
    let mean = completions.iter().sum::<u64>() as f64 / n.max(1.0);
    let interval = (completions.len() > 1).then(|| {
        let var = completions
            .iter()
            .map(|&c| (c as f64 - mean).powi(2))
            .sum::<f64>()
            / (n - 1.0);
        let half = t_975(completions.len() - 1) * (var / n).sqrt();
        ((mean - half).max(0.0), mean + half)
    });
    report::Expectation {
        per_request: mean,
        interval,
        source: format!("a sample of {} rows", completions.len()),
    }
}

/// The 97.5th percentile of Student's t with `df` degrees of freedom (two-sided 95 %).
pub fn t_975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
        2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
        2.045, 2.042,
    ];
    match df {
        0 => f64::INFINITY,
        1..=30 => TABLE[df - 1],
        31..=60 => 2.000,
        61..=120 => 1.980,
        _ => 1.960,
    }
}
