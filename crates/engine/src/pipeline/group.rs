//! Several rows in one request, for a family that joins them (embeddings): the rows are
//! grouped where they are fed ([`Grouper`]), a group is the unit the worker loop claims, sends
//! and retries, and its answer is split back over its rows, each settled on its own
//! ([`Pipeline::settle_group`]). Every other family sends groups of one row, which carry no
//! extra allocation and take the worker loop's one-row path unchanged.
//!
//! A group closes at `--rows-per-request` rows, before a row whose body differs from the group's
//! in anything but its `input` (another model, or a Batch input line with settings of its own:
//! a joined request carries the first row's settings, so only rows of the same settings may
//! share one), and before a row that would take its summed input past the family's per-request
//! token limit. Tokens are only
//! counted once the group's bytes could pass that limit (a token is at least one byte), so the
//! usual group costs no count here.

use crate::stats::Stats;
use crate::store::writer::{Claimed, Outcome, OutcomeKind, StoreHandle};
use promptmill_core::family::embeddings::MAX_REQUEST_TOKENS;
use promptmill_core::family::ApiFamily;

use super::row::RowRun;
use super::{Pipeline, StopReason};
use crate::api::Transport;

/// Rows sent in one request: the first, and the others of a joined request (empty for a
/// one-row request, so that it allocates nothing).
#[derive(Debug)]
pub struct Group {
    pub first: Claimed,
    pub rest: Vec<Claimed>,
    /// The answer the response cache holds for a one-row group, found as it was fed
    /// (`cached.rs`): the row is settled from it unless it no longer reads.
    pub hit: Option<String>,
}

impl Group {
    pub fn one(row: Claimed) -> Group {
        Group {
            first: row,
            rest: Vec::new(),
            hit: None,
        }
    }

    /// A row the response cache has an answer for: never joined with others.
    pub fn cached(row: Claimed, answer: String) -> Group {
        Group {
            first: row,
            rest: Vec::new(),
            hit: Some(answer),
        }
    }

    fn len(&self) -> usize {
        1 + self.rest.len()
    }
}

/// Makes groups of the rows fed to it, in input order (see the module's documentation).
pub struct Grouper {
    family: &'static dyn ApiFamily,
    rows: usize,
    open: Option<Group>,
    /// The open group's body around its `input` (see [`settings_of`]).
    settings: (String, String),
    bytes: u64,
    /// The open group's input tokens, counted once its bytes could pass the limit.
    tokens: Option<u64>,
}

impl Grouper {
    pub fn new(family: &'static dyn ApiFamily, rows: usize) -> Grouper {
        Grouper {
            family,
            rows: rows.max(1),
            open: None,
            settings: Default::default(),
            bytes: 0,
            tokens: None,
        }
    }

    fn tokens_of(&self, row: &Claimed) -> u64 {
        input_tokens(self.family, row)
    }

    /// Adds a row; returns the group it closed, if it closed one.
    pub fn push(&mut self, row: Claimed) -> Option<Group> {
        let bytes = row.body.len() as u64;
        let Some(open) = &self.open else {
            self.start(row, bytes);
            return None;
        };
        let (before, after) = settings_of(&row.body);
        let full = open.len() >= self.rows || before != self.settings.0 || after != self.settings.1;
        if !full && self.bytes + bytes <= MAX_REQUEST_TOKENS {
            self.add(row, bytes, None);
            return None;
        }
        if !full {
            // The bytes could pass the token limit: count the tokens (the open group's once).
            let open_tokens = match self.tokens {
                Some(t) => t,
                None => std::iter::once(&open.first)
                    .chain(&open.rest)
                    .map(|m| self.tokens_of(m))
                    .sum(),
            };
            let sum = open_tokens + self.tokens_of(&row);
            if sum <= MAX_REQUEST_TOKENS {
                self.add(row, bytes, Some(sum));
                return None;
            }
        }
        let closed = self.take();
        self.start(row, bytes);
        closed
    }

    fn start(&mut self, row: Claimed, bytes: u64) {
        let (before, after) = settings_of(&row.body);
        self.settings = (before.to_string(), after.to_string());
        self.bytes = bytes;
        self.tokens = None;
        self.open = Some(Group {
            hit: None,
            first: row,
            rest: Vec::with_capacity(self.rows - 1),
        });
    }

    fn add(&mut self, row: Claimed, bytes: u64, tokens: Option<u64>) {
        self.bytes += bytes;
        self.tokens = tokens;
        if let Some(g) = &mut self.open {
            g.rest.push(row);
        }
    }

    /// The open group, closed.
    pub fn take(&mut self) -> Option<Group> {
        self.bytes = 0;
        self.tokens = None;
        self.open.take()
    }
}

/// A row's prompt tokens: as counted when it was read, or counted now (a row read before the
/// checkpoint kept counts).
pub fn input_tokens(family: &dyn ApiFamily, row: &Claimed) -> u64 {
    row.tokens.unwrap_or_else(|| family.prompt_tokens(&row.body))
}

/// A request body around its `input` value: what a row shares with the rows it may be joined
/// with. Bodies are written by one serializer, so equal settings are equal bytes. A body without
/// an `input` (or that does not parse) is its own settings, and joins no other.
fn settings_of(body: &str) -> (&str, &str) {
    #[derive(serde::Deserialize)]
    struct Input<'a> {
        #[serde(borrow)]
        input: Option<&'a serde_json::value::RawValue>,
    }
    let input = serde_json::from_str::<Input<'_>>(body).ok().and_then(|b| b.input);
    // The value borrows from `body`: its place in it is the distance between their starts.
    let span = input.and_then(|raw| {
        let start = (raw.get().as_ptr() as usize).checked_sub(body.as_ptr() as usize)?;
        let end = start + raw.get().len();
        Some((body.get(..start)?, body.get(end..)?))
    });
    span.unwrap_or((body, ""))
}

/// The rows of a group, and the joined request: or the rows and why they make none.
type Joined = Result<(Claimed, Vec<Claimed>), (Vec<Claimed>, String)>;

impl<T: Transport> Pipeline<T> {
    /// The group as one request: a row whose body is the joined request (with the first row's
    /// seq and id, for the worker loop's logs), and the group's rows.
    pub(super) fn join(&self, group: Group) -> Joined {
        let mut members = Vec::with_capacity(group.len());
        members.push(group.first);
        members.extend(group.rest);
        let bodies: Vec<&str> = members.iter().map(|m| m.body.as_str()).collect();
        match self.settings.endpoint.family().join(&bodies) {
            Ok(body) => {
                let tokens = members.iter().map(|m| m.tokens).sum();
                let request = Claimed {
                    seq: members[0].seq,
                    id: members[0].id.clone(),
                    body,
                    tokens,
                    digest: None,
                };
                Ok((request, members))
            }
            Err(error) => Err((members, error)),
        }
    }

    /// Fails the rows of a group that makes no request (never sent).
    pub(super) async fn fail_unjoined(&self, members: Vec<Claimed>, error: String, store: &StoreHandle) {
        let outcomes = members
            .into_iter()
            .map(|m| {
                let kind = OutcomeKind::Failed {
                    error: format!("not sent: {error}"),
                    status: None,
                };
                self.count(&m.id, &kind);
                Outcome {
                    seq: m.seq,
                    attempts: 0,
                    kind,
                    tries: Vec::new(),
                }
            })
            .collect();
        if store.finish_all(outcomes, false).await.is_err() {
            self.control
                .abort(StopReason::Checkpoint("the checkpoint writer stopped".into()));
        }
    }

    /// Records each row of a joined request: a done answer is split over the rows by `index`
    /// (a row it has no vector for fails with the reason), a failure or an unfinished request
    /// is every row's. The attempts are the first row's (a request is recorded once); a held
    /// slot is released once their outcomes are durable.
    pub(super) async fn settle_group(&self, mut r: RowRun<'_>, kind: OutcomeKind, store: &StoreHandle) {
        let family = self.settings.endpoint.family();
        let members = std::mem::take(&mut r.group);
        let kinds: Vec<OutcomeKind> = match kind {
            // A joined request bypasses the response cache: `Cached` cannot come here.
            OutcomeKind::Done(answer) | OutcomeKind::Cached(answer) => {
                let tokens: Vec<u64> = members.iter().map(|m| input_tokens(family, m)).collect();
                family
                    .split(answer, &tokens)
                    .into_iter()
                    .map(|one| match one {
                        Ok(c) => OutcomeKind::Done(c),
                        Err(error) => OutcomeKind::Failed { error, status: None },
                    })
                    .collect()
            }
            OutcomeKind::Failed { error, status } => members
                .iter()
                .map(|_| OutcomeKind::Failed {
                    error: error.clone(),
                    status,
                })
                .collect(),
            // A family that joins rows has no structured output; kept whole for the type's sake.
            OutcomeKind::Rejected { error, .. } => members
                .iter()
                .map(|_| OutcomeKind::Failed {
                    error: error.clone(),
                    status: Some(200),
                })
                .collect(),
            OutcomeKind::Unfinished => members.iter().map(|_| OutcomeKind::Unfinished).collect(),
        };
        let mut tries = std::mem::take(&mut r.tries);
        let outcomes: Vec<Outcome> = members
            .into_iter()
            .zip(kinds)
            .map(|(member, kind)| {
                self.count(&member.id, &kind);
                Outcome {
                    seq: member.seq,
                    attempts: r.attempts,
                    kind,
                    tries: std::mem::take(&mut tries),
                }
            })
            .collect();
        // One message for the request's rows; a held slot waits until they are durable.
        let recorded = store.finish_all(outcomes, r.held.is_some()).await;
        drop(r.held.take());
        if recorded.is_err() {
            self.control
                .abort(StopReason::Checkpoint("the checkpoint writer stopped".into()));
        }
    }

    /// Counts a row's outcome in the run's stats.
    pub(super) fn count(&self, id: &str, kind: &OutcomeKind) {
        let stats = &self.stats;
        match kind {
            OutcomeKind::Done(c) => {
                Stats::add(&stats.done, 1);
                stats.add_usage(&c.usage);
            }
            OutcomeKind::Cached(_) => {
                Stats::add(&stats.done, 1);
                Stats::add(&stats.cached, 1);
            }
            OutcomeKind::Failed { error, .. } => {
                Stats::add(&stats.failed, 1);
                tracing::info!(row = %id, "failed: {error}");
            }
            OutcomeKind::Rejected { answer, error, .. } => {
                Stats::add(&stats.failed, 1);
                Stats::add(&stats.rejected, 1);
                stats.add_usage(&answer.usage);
                tracing::info!(row = %id, "failed: {error}");
            }
            OutcomeKind::Unfinished => {}
        }
    }
}
