//! A request's `--timeout` that a stall of our own process does not spend.
//!
//! reqwest's `.timeout()` is a total deadline checked before the response: after a SIGSTOP it
//! fires the moment the process runs again, although the answer is waiting in the socket. So the
//! live transport applies the timeout itself, around the whole exchange (headers and body): when
//! the deadline passes, and the process stood still meanwhile (the watch in `stall` saw it, or
//! the timer itself fired much later than it was due, which only a stopped or starved process
//! does), the request gets its timeout again from now, and what has arrived is read. Only a
//! deadline that passes while the process was running is a timeout.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use promptmill_core::stall::{Stalls, SLACK};

/// Runs `exchange` under `timeout`; `None` when it timed out while the process was running.
pub async fn within<F: Future>(timeout: Duration, stalls: &Stalls, exchange: F) -> Option<F::Output> {
    tokio::pin!(exchange);
    let mut mark = stalls.mark();
    let mut deadline = Instant::now() + timeout;
    loop {
        tokio::select! {
            biased;
            out = &mut exchange => return Some(out),
            () = tokio::time::sleep_until(deadline) => {}
        }
        let late = Instant::now().saturating_duration_since(deadline);
        let stalled = stalls.since(mark);
        if late <= SLACK && stalled.is_zero() {
            return None;
        }
        tracing::debug!(
            "a request's timeout passed while the process stood still ({:.1?}); its timeout starts again",
            late.max(stalled)
        );
        mark = stalls.mark();
        deadline = Instant::now() + timeout;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::oneshot;

    const TIMEOUT: Duration = Duration::from_secs(2);

    #[tokio::test(start_paused = true)]
    async fn an_exchange_that_outlasts_the_timeout_times_out() {
        let (_tx, rx) = oneshot::channel::<()>();
        let started = Instant::now();
        assert!(within(TIMEOUT, &Stalls::none(), rx).await.is_none());
        assert_eq!(started.elapsed(), TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_timer_that_fires_late_because_the_process_stood_still_starts_again() {
        let (tx, rx) = oneshot::channel::<u8>();
        let task = tokio::spawn(async move { within(TIMEOUT, &Stalls::none(), rx).await });
        tokio::task::yield_now().await;
        // The process stands still for 5 s: the 2 s timer can only fire 3 s late.
        tokio::time::advance(Duration::from_secs(5)).await;
        tokio::task::yield_now().await;
        assert!(!task.is_finished(), "not counted as a timeout");
        // The answer that waited in the socket is read.
        tx.send(7).unwrap();
        assert_eq!(task.await.unwrap().map(Result::ok), Some(Some(7)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stall_the_watch_saw_before_the_deadline_gives_the_timeout_again_once() {
        let real = std::time::Instant::now();
        let stalls = Stalls::manual(real);
        let (_tx, rx) = oneshot::channel::<()>();
        let started = Instant::now();
        let watched = stalls.clone();
        let exchange = async move {
            // A stall of 4 s is recorded while the request is on the wire, then nothing answers.
            watched.tick_at(real + Duration::from_millis(4250));
            rx.await
        };
        assert!(within(TIMEOUT, &stalls, exchange).await.is_none());
        assert_eq!(
            started.elapsed(),
            2 * TIMEOUT,
            "one more timeout, then a real one"
        );
    }
}
