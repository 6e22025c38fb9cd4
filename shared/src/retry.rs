//! Trying a step again while its failure may be passing: no answer came (a
//! timeout, a broken connection) or the upstream failed (`5xx`). A refusal
//! (`4xx`) is final. Each step is tried up to [`ATTEMPTS`] times, waiting
//! a little longer before each new try ([`backoff`]): a failure that
//! passes is often a short burst (a restarting pod, a full pool), and
//! trying again at once would meet the same burst.
//!
//! Used where giving up would leave something behind: a compensation step
//! (`ops::undo`), and the lookup that follows a create whose answer was
//! lost, which decides whether that create happened (a lookup that gives up
//! after one `503` leaves an identity or mailbox nobody records).

use std::future::Future;

use crate::problem::UpstreamError;

/// How many times a step is tried. Three were not enough: under a steady 4 %
/// of failed calls the soak met an audit event whose delete failed three
/// times in a row (issue 19, seed 20261207 on Spin 4), and every give-up
/// leaves something behind.
pub const ATTEMPTS: usize = 5;

/// The wait before try `n + 1` (after `n` failures): 50 ms, doubling, so all
/// five tries of a step span at most 750 ms plus their own calls.
pub fn backoff(failures: usize) -> std::time::Duration {
    std::time::Duration::from_millis(50 << failures.saturating_sub(1).min(4))
}

/// Waits before a new try. Only a component waits: native tests run the
/// same tries back to back against in-memory ports that have no bursts.
async fn pause(failures: usize) {
    #[cfg(target_arch = "wasm32")]
    crate::spin::sleep(backoff(failures)).await;
    #[cfg(not(target_arch = "wasm32"))]
    let _ = backoff(failures);
}

/// Whether a failed step is worth trying again.
pub fn passing(e: &UpstreamError) -> bool {
    e.outcome_unknown() || e.status().is_some_and(|s| s >= 500)
}

/// Runs `step` until it succeeds, fails for good, or has been tried
/// [`ATTEMPTS`] times; `what` names it in the log (never a body).
pub async fn retried<T, F, Fut>(what: &str, mut step: F) -> Result<T, UpstreamError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, UpstreamError>>,
{
    let mut tried = 0;
    loop {
        tried += 1;
        match step().await {
            Ok(v) => return Ok(v),
            Err(e) if tried < ATTEMPTS && passing(&e) => {
                eprintln!("{what} failed ({e}); trying again");
                pause(tried).await;
            }
            Err(e) => {
                eprintln!("{what} failed after {tried} attempt(s): {e}");
                return Err(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::{System, UpstreamFailure};
    use std::cell::RefCell;

    fn status(s: u16) -> UpstreamError {
        UpstreamError::new(System::Authentik, UpstreamFailure::Status { status: s, reason: "x".into() })
    }

    /// Runs `retried` over `answers` (one per attempt) and says how many it took.
    fn run(answers: Vec<Result<u8, UpstreamError>>) -> (Result<u8, UpstreamError>, usize) {
        let answers = RefCell::new(answers.into_iter());
        let calls = RefCell::new(0);
        let step = || {
            *calls.borrow_mut() += 1;
            let next = answers.borrow_mut().next().expect("no more attempts than answers");
            async move { next }
        };
        let r = futures::executor::block_on(retried("x", step));
        (r, calls.into_inner())
    }

    #[test]
    fn passing_failures_are_tried_again_up_to_the_limit() {
        let timeout = || Err(UpstreamError::new(System::DataApi, UpstreamFailure::Timeout));
        assert_eq!(run(vec![Err(status(500)), Ok(7)]), (Ok(7), 2));
        assert_eq!(run(vec![timeout(), Err(status(503)), Ok(8)]), (Ok(8), 3));
        let failures = vec![Err(status(500)), Err(status(502)), timeout(), Err(status(503)), Err(status(500))];
        assert_eq!(failures.len(), ATTEMPTS);
        assert_eq!(run(failures), (Err(status(500)), ATTEMPTS));
    }

    #[test]
    fn each_new_try_waits_longer_within_a_bound() {
        let waits: Vec<_> = (1..ATTEMPTS).map(|n| backoff(n).as_millis()).collect();
        assert_eq!(waits, [50, 100, 200, 400]);
        assert!(waits.iter().sum::<u128>() <= 750);
    }

    #[test]
    fn refusals_are_final() {
        assert_eq!(run(vec![Err(status(400))]), (Err(status(400)), 1));
        assert_eq!(run(vec![Err(status(404))]), (Err(status(404)), 1));
    }
}
