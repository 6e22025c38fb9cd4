//! Compensation steps (undoing what a failed request wrote: an identity,
//! mailbox, file account, document or audit event deleted or put back).
//! Each is tried up to [`ATTEMPTS`] times, at once (a component cannot
//! sleep cheaply), while its failure may be passing: no answer came (a
//! timeout, a broken connection) or the upstream failed (`5xx`). A refusal
//! (`4xx`) is final, and a delete answered `404` has already happened.
//! Every undo is keyed by what the request wrote, so trying one again is
//! harmless. A step that still fails is logged (never a body) and left:
//! the request's own failure is what the caller sees.

use std::future::Future;

use crate::problem::UpstreamError;

/// How many times a compensation step is tried.
pub const ATTEMPTS: usize = 3;

/// Whether a failed step is worth trying again.
pub fn passing(e: &UpstreamError) -> bool {
    e.outcome_unknown() || e.status().is_some_and(|s| s >= 500)
}

/// A delete answered `404` has already happened (e.g. by an earlier try of
/// the same request, or an earlier attempt whose answer was lost).
pub fn gone_is_done(r: Result<(), UpstreamError>) -> Result<(), UpstreamError> {
    match r {
        Err(e) if e.status() == Some(404) => Ok(()),
        r => r,
    }
}

/// Runs `step` until it succeeds, fails for good, or has been tried
/// [`ATTEMPTS`] times; `what` names it in the log.
pub async fn retried<F, Fut>(what: &str, mut step: F) -> Result<(), UpstreamError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), UpstreamError>>,
{
    let mut tried = 0;
    loop {
        tried += 1;
        match step().await {
            Ok(()) => return Ok(()),
            Err(e) if tried < ATTEMPTS && passing(&e) => eprintln!("{what} failed ({e}); trying again"),
            Err(e) => {
                eprintln!("{what} failed after {tried} attempt(s): {e}");
                return Err(e);
            }
        }
    }
}

/// [`retried`] for a delete: `404` means done.
pub async fn deleted<F, Fut>(what: &str, mut step: F) -> Result<(), UpstreamError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), UpstreamError>>,
{
    retried(what, || {
        let attempt = step();
        async move { gone_is_done(attempt.await) }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::{System, UpstreamFailure};
    use std::cell::RefCell;

    fn status(s: u16) -> UpstreamError {
        UpstreamError::new(System::Authentik, UpstreamFailure::Status { status: s, reason: "x".into() })
    }

    /// Runs `step` over `answers` (one per attempt) and says how many it took.
    fn run(answers: Vec<Result<(), UpstreamError>>, delete: bool) -> (Result<(), UpstreamError>, usize) {
        let answers = RefCell::new(answers.into_iter());
        let calls = RefCell::new(0);
        let step = || {
            *calls.borrow_mut() += 1;
            let next = answers.borrow_mut().next().expect("no more attempts than answers");
            async move { next }
        };
        let r = if delete { futures::executor::block_on(deleted("x", step)) } else { futures::executor::block_on(retried("x", step)) };
        (r, calls.into_inner())
    }

    #[test]
    fn passing_failures_are_tried_again_up_to_the_limit() {
        let timeout = || Err(UpstreamError::new(System::DataApi, UpstreamFailure::Timeout));
        assert_eq!(run(vec![Err(status(500)), Ok(())], false), (Ok(()), 2));
        assert_eq!(run(vec![timeout(), Err(status(503)), Ok(())], false), (Ok(()), 3));
        assert_eq!(run(vec![Err(status(500)), Err(status(502)), Err(status(500))], false), (Err(status(500)), ATTEMPTS));
    }

    #[test]
    fn refusals_are_final_and_a_deletes_404_is_done() {
        assert_eq!(run(vec![Err(status(400))], false), (Err(status(400)), 1));
        assert_eq!(run(vec![Err(status(404))], false), (Err(status(404)), 1));
        assert_eq!(run(vec![Err(status(500)), Err(status(404))], true), (Ok(()), 2));
        assert_eq!(gone_is_done(Err(status(404))), Ok(()));
        assert!(gone_is_done(Err(status(500))).is_err());
    }
}
