//! The first-answers guard: a run whose first answers all say "wrong setting" stops instead of
//! failing every row.
//!
//! A wrong `--base-url` (a path that is not the API, a port nothing listens on, a host that does
//! not resolve, a URL that redirects) is a setting, not a row problem: without this guard every
//! row of the job would be recorded as failed (404s in milliseconds) or retried for minutes
//! (connection refused). So until the run has heard one answer that is not such a symptom,
//! every answer is judged here. When the first [`DEFAULT`] answers (or all of them, when fewer
//! rows remain to be sent) are the same symptom, the guard trips: the worker loop stops the run
//! with the cause (`StopReason::Misdirected`) and those rows go back to pending. Any other
//! answer (a success, a 500, a 400, a different symptom) disarms the guard for the rest of the
//! run, and a 404 after that fails just its row as before.
//!
//! While the guard is undecided, a row whose answer is a symptom is *parked*: it gives up its
//! window slot and its dispatcher permit (so that other rows can bring the answers the decision
//! needs; at most `threshold − 1` rows are parked) and waits for the decision. Disarmed, it goes
//! on as its answer says (a 404 fails the row, a refused connection is retried); tripped, it
//! ends unfinished. When no row is left that could still answer (the dispatcher has no more rows
//! and every row still in progress is parked), the symptoms heard are all there will be, and
//! the guard trips on them.
//!
//! The guard is one object the worker loop consults, like the limits and the budget; it owns
//! no task. Its `watch` channel carries the decision; the pipeline owns the guard for the run.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;

use crate::api::{ConnectFailure, Reply, SendError};

/// How many identical first answers stop a run.
pub const DEFAULT: usize = 20;

/// An answer that says the run's target is wrong rather than the row.
#[derive(Debug, Clone, PartialEq)]
pub enum Symptom {
    /// A 404; `message` is the server's (the first one heard).
    NotFound { message: String },
    /// A 3xx, with its `Location` (redacted).
    Redirect { status: u16, location: Option<String> },
    /// Nothing listens at the address.
    Refused,
    /// The host name does not resolve.
    Dns,
}

impl Symptom {
    /// The symptom an attempt's result shows, if any.
    pub fn of(result: &Result<Reply, SendError>) -> Option<Symptom> {
        match result {
            Ok(reply) if reply.status == 404 => Some(Symptom::NotFound {
                message: crate::api::error_message(&reply.body),
            }),
            Ok(reply) if (300..400).contains(&reply.status) => Some(Symptom::Redirect {
                status: reply.status,
                location: reply.location.clone(),
            }),
            Err(SendError::Connect {
                failure: ConnectFailure::Refused,
                ..
            }) => Some(Symptom::Refused),
            Err(SendError::Connect {
                failure: ConnectFailure::Dns,
                ..
            }) => Some(Symptom::Dns),
            _ => None,
        }
    }

    /// Whether two answers are "the same": the same kind, and for a redirect the same `Location`
    /// (a 404's message may name the row's model, so it is not compared).
    fn same_as(&self, other: &Symptom) -> bool {
        match (self, other) {
            (Symptom::NotFound { .. }, Symptom::NotFound { .. }) => true,
            (Symptom::Redirect { location: a, .. }, Symptom::Redirect { location: b, .. }) => a == b,
            (a, b) => a == b,
        }
    }
}

/// Why the guard stopped the run: the symptom (as first heard) and how many answers showed it.
#[derive(Debug, Clone, PartialEq)]
pub struct Trip {
    pub symptom: Symptom,
    pub answers: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Decision {
    Undecided,
    Disarmed,
    Tripped(Trip),
}

/// What the worker loop does with an answer.
#[derive(Debug, PartialEq)]
pub enum Judgement {
    /// Handle the answer as its verdict says.
    Proceed,
    /// Park the row until the guard decides ([`Row::wait`]).
    Wait,
    /// The run stops for this cause; the row ends unfinished.
    Stop(Trip),
}

struct State {
    /// The symptom every answer so far has shown, and how many answers.
    symptom: Option<Symptom>,
    streak: usize,
    /// Rows in progress that are not parked.
    active: usize,
    /// The dispatcher has handed out every row.
    exhausted: bool,
}

pub struct FirstAnswers {
    /// 0: the guard is off.
    threshold: usize,
    state: Mutex<State>,
    /// The decision, watched by parked rows. Its receivers live in [`Row::wait`] only.
    decision: watch::Sender<Decision>,
}

impl FirstAnswers {
    /// A guard that trips after `threshold` identical first answers (0: never).
    pub fn new(threshold: usize) -> FirstAnswers {
        let first = if threshold == 0 {
            Decision::Disarmed
        } else {
            Decision::Undecided
        };
        FirstAnswers {
            threshold,
            state: Mutex::new(State {
                symptom: None,
                streak: 0,
                active: 0,
                exhausted: false,
            }),
            decision: watch::Sender::new(first),
        }
    }

    /// A row begins (called by the dispatcher before it spawns the row's task, so that the
    /// row counts from then on); the returned handle judges its answers and ends it when dropped.
    pub fn row(self: &Arc<Self>) -> Row {
        self.lock().active += 1;
        Row {
            guard: Arc::clone(self),
            active: true,
        }
    }

    /// The dispatcher has no more rows: if every row still in progress is parked, the
    /// symptoms heard are all there will be.
    pub fn exhausted(&self) {
        let mut state = self.lock();
        state.exhausted = true;
        self.settle_if_idle(&state);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn decided(&self) -> Decision {
        self.decision.borrow().clone()
    }

    fn judge(&self, symptom: Option<Symptom>) -> Judgement {
        let mut state = self.lock();
        match self.decided() {
            Decision::Disarmed => return Judgement::Proceed,
            Decision::Tripped(trip) => {
                return match symptom {
                    Some(_) => Judgement::Stop(trip),
                    None => Judgement::Proceed,
                }
            }
            Decision::Undecided => {}
        }
        let same = match (&symptom, &state.symptom) {
            (Some(_), None) => true,
            (Some(s), Some(first)) => s.same_as(first),
            (None, _) => false,
        };
        if !same {
            self.decision.send_replace(Decision::Disarmed);
            return Judgement::Proceed;
        }
        if state.symptom.is_none() {
            state.symptom = symptom;
        }
        state.streak += 1;
        if state.streak >= self.threshold {
            let trip = self.trip(&state);
            return Judgement::Stop(trip);
        }
        Judgement::Wait
    }

    fn trip(&self, state: &State) -> Trip {
        let trip = Trip {
            symptom: state.symptom.clone().unwrap_or(Symptom::Refused),
            answers: state.streak,
        };
        self.decision.send_replace(Decision::Tripped(trip.clone()));
        trip
    }

    /// Trips when nothing more can be heard: no more rows to dispatch, none in progress but
    /// parked ones, and every answer so far the same symptom.
    fn settle_if_idle(&self, state: &State) {
        if state.exhausted && state.active == 0 && state.streak > 0 && self.decided() == Decision::Undecided {
            self.trip(state);
        }
    }
}

/// One row's dealings with the guard, from its start to its end.
pub struct Row {
    guard: Arc<FirstAnswers>,
    /// False while parked.
    active: bool,
}

impl Row {
    /// Judges an attempt's answer (`symptom`: what [`Symptom::of`] found in it, or `None`).
    pub fn judge(&self, symptom: Option<Symptom>) -> Judgement {
        self.guard.judge(symptom)
    }

    /// Parks the row until the guard decides: `Some(trip)` when it tripped.
    pub async fn wait(&mut self) -> Option<Trip> {
        let mut decision = self.guard.decision.subscribe();
        {
            let mut state = self.guard.lock();
            state.active -= 1;
            self.active = false;
            self.guard.settle_if_idle(&state);
        }
        // The sender lives as long as the guard, which outlives every row.
        let decided = decision
            .wait_for(|d| *d != Decision::Undecided)
            .await
            .map(|d| d.clone())
            .unwrap_or(Decision::Disarmed);
        self.guard.lock().active += 1;
        self.active = true;
        match decided {
            Decision::Tripped(trip) => Some(trip),
            _ => None,
        }
    }
}

impl Drop for Row {
    fn drop(&mut self) {
        if self.active {
            let mut state = self.guard.lock();
            state.active -= 1;
            self.guard.settle_if_idle(&state);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn not_found() -> Option<Symptom> {
        Some(Symptom::NotFound { message: "no".into() })
    }

    #[test]
    fn the_same_symptom_threshold_times_trips_and_anything_else_disarms() {
        let guard = Arc::new(FirstAnswers::new(3));
        let row = guard.row();
        assert_eq!(row.judge(not_found()), Judgement::Wait);
        assert_eq!(row.judge(not_found()), Judgement::Wait);
        assert!(matches!(
            row.judge(not_found()),
            Judgement::Stop(Trip { answers: 3, .. })
        ));

        let guard = Arc::new(FirstAnswers::new(3));
        let row = guard.row();
        assert_eq!(row.judge(not_found()), Judgement::Wait);
        assert_eq!(row.judge(None), Judgement::Proceed, "a success disarms");
        assert_eq!(
            row.judge(not_found()),
            Judgement::Proceed,
            "for the rest of the run"
        );

        let guard = Arc::new(FirstAnswers::new(3));
        let row = guard.row();
        assert_eq!(row.judge(Some(Symptom::Refused)), Judgement::Wait);
        assert_eq!(
            row.judge(Some(Symptom::Dns)),
            Judgement::Proceed,
            "mixed symptoms disarm"
        );

        let redirect = |to: &str| {
            Some(Symptom::Redirect {
                status: 307,
                location: Some(to.into()),
            })
        };
        let guard = Arc::new(FirstAnswers::new(2));
        let row = guard.row();
        assert_eq!(row.judge(redirect("http://a/")), Judgement::Wait);
        assert_eq!(row.judge(redirect("http://b/")), Judgement::Proceed);

        let off = Arc::new(FirstAnswers::new(0));
        assert_eq!(off.row().judge(not_found()), Judgement::Proceed);
    }

    #[tokio::test]
    async fn parked_rows_trip_the_guard_when_nothing_more_can_be_heard() {
        let guard = Arc::new(FirstAnswers::new(20));
        let mut a = guard.row();
        let mut b = guard.row();
        assert_eq!(a.judge(not_found()), Judgement::Wait);
        assert_eq!(b.judge(not_found()), Judgement::Wait);
        guard.exhausted();
        let (ta, tb) = tokio::join!(a.wait(), b.wait());
        assert_eq!(ta.map(|t| t.answers), Some(2));
        assert_eq!(tb.map(|t| t.answers), Some(2));
    }

    #[tokio::test]
    async fn a_parked_row_goes_on_once_another_answer_disarms() {
        let guard = Arc::new(FirstAnswers::new(20));
        let mut parked = guard.row();
        assert_eq!(parked.judge(Some(Symptom::Refused)), Judgement::Wait);
        let other = guard.row();
        let (tripped, ()) = tokio::join!(parked.wait(), async {
            assert_eq!(other.judge(None), Judgement::Proceed);
        });
        assert_eq!(tripped, None);
    }
}
