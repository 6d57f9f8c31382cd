//! The batch side's calls as the driver accounts for them: [`Calls`] counts them (the summary's
//! "requests" in batch mode), retries the calls that may be retried with backoff, and makes every
//! wait or call give way to the run's stop signal; [`Failure`] is how a step that failed for good
//! ends the drive (a refused key, no credit, a redirect, a stop, anything else).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::api_error::ApiError;
use promptmill_core::retry::Backoff;

/// Attempts of one API call that fails transiently before the run gives up (and can be resumed).
pub const MAX_TRIES: u32 = 8;

/// An API call failed for good; all but `Other` end the drive with a message instead of an error.
#[derive(Debug)]
pub enum Failure {
    Auth {
        status: u16,
        message: String,
    },
    Quota {
        message: String,
    },
    Redirected {
        message: String,
        location: Option<String>,
    },
    Interrupted,
    Other(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        match e.downcast_ref::<ApiError>() {
            Some(api @ ApiError::Status { status, .. }) if api.is_auth() => Failure::Auth {
                status: *status,
                message: api.to_string(),
            },
            Some(ApiError::Quota { message, .. }) => Failure::Quota {
                message: message.clone(),
            },
            Some(api @ ApiError::Redirect { location, .. }) => Failure::Redirected {
                message: api.to_string(),
                location: location.clone(),
            },
            _ => Failure::Other(e),
        }
    }
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Failure::from(anyhow::Error::from(e))
    }
}

impl Failure {
    /// A failure that may pass: no answer, or a status that says "later".
    pub fn is_transient(&self) -> bool {
        matches!(self, Failure::Other(e) if e.downcast_ref::<ApiError>().is_some_and(ApiError::is_transient))
    }

    /// The server's `Retry-After`, when it gave one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Failure::Other(e) => e.downcast_ref::<ApiError>().and_then(ApiError::retry_after),
            _ => None,
        }
    }
}

pub type Step<T> = Result<T, Failure>;

/// The drive's call counters and stop signal. Created by the driver for one drive and lent to
/// the service's lookups; `stop` is the run's (cancelled by a signal), never cancelled here.
pub struct Calls {
    stop: CancellationToken,
    made: AtomicU64,
    retried: AtomicU64,
}

impl Calls {
    pub fn new(stop: CancellationToken) -> Calls {
        Calls {
            stop,
            made: AtomicU64::new(0),
            retried: AtomicU64::new(0),
        }
    }

    pub fn stopped(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// API calls made so far, and how many of them were attempts after a failure.
    pub fn counters(&self) -> (u64, u64) {
        (
            self.made.load(Ordering::Relaxed),
            self.retried.load(Ordering::Relaxed),
        )
    }

    pub fn count(&self, retry: bool) {
        self.made.fetch_add(1, Ordering::Relaxed);
        if retry {
            self.retried.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Awaits a call (an upload, a create) once, unless the run is stopped first. Dropping one
    /// midway is safe: the part's stage (`uploading`, `creating`) makes the next run look before
    /// trying again.
    pub async fn once<T>(&self, call: impl std::future::Future<Output = T>) -> Step<T> {
        self.count(false);
        tokio::select! {
            answer = call => Ok(answer),
            _ = self.stop.cancelled() => Err(Failure::Interrupted),
        }
    }

    pub async fn sleep(&self, d: Duration) -> Step<()> {
        tokio::select! {
            _ = tokio::time::sleep(d) => Ok(()),
            _ = self.stop.cancelled() => Err(Failure::Interrupted),
        }
    }

    /// Calls the API, trying again after transient failures (no answer, 429, 5xx) with backoff.
    /// Only idempotent calls, or calls whose effect the caller looks for first, go through here.
    pub async fn retried<T, F, Fut>(&self, mut f: F) -> Step<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, ApiError>>,
    {
        let mut tries = 0;
        loop {
            tries += 1;
            self.count(tries > 1);
            match f().await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_transient() && tries < MAX_TRIES => {
                    let wait = Backoff::default().delay(
                        tries,
                        e.retry_after(),
                        e.status() == Some(429),
                        &mut rand::rng(),
                    );
                    tracing::info!("{e}; trying again in {wait:?}");
                    self.sleep(wait).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}
