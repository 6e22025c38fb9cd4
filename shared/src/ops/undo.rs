//! Compensation steps (undoing what a failed request wrote: an identity,
//! mailbox, file account, document or audit event deleted or put back).
//! Each is tried again while its failure may be passing ([`retried`]), and
//! a delete answered `404` has already happened. Every undo is keyed by
//! what the request wrote, so trying one again is harmless. A step that
//! still fails is logged (never a body) and left: the request's own failure
//! is what the caller sees.

use std::future::Future;

use crate::problem::UpstreamError;
pub use crate::retry::retried;

/// A delete answered `404` has already happened (e.g. by an earlier try of
/// the same request, or an earlier attempt whose answer was lost).
pub fn gone_is_done(r: Result<(), UpstreamError>) -> Result<(), UpstreamError> {
    match r {
        Err(e) if e.status() == Some(404) => Ok(()),
        r => r,
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

    /// Runs `deleted` over `answers` (one per attempt) and says how many it took.
    fn run(answers: Vec<Result<(), UpstreamError>>) -> (Result<(), UpstreamError>, usize) {
        let answers = RefCell::new(answers.into_iter());
        let calls = RefCell::new(0);
        let step = || {
            *calls.borrow_mut() += 1;
            let next = answers.borrow_mut().next().expect("no more attempts than answers");
            async move { next }
        };
        let r = futures::executor::block_on(deleted("x", step));
        (r, calls.into_inner())
    }

    #[test]
    fn a_deletes_404_is_done() {
        assert_eq!(run(vec![Err(status(500)), Err(status(404))]), (Ok(()), 2));
        assert_eq!(run(vec![Err(status(403))]), (Err(status(403)), 1));
        assert_eq!(gone_is_done(Err(status(404))), Ok(()));
        assert!(gone_is_done(Err(status(500))).is_err());
    }
}
