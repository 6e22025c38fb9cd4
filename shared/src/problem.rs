//! Errors an operation can answer with, and their RFC 9457 problem form.

use serde_json::json;

/// The upstream systems an operation talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum System {
    DataApi,
    Authentik,
    Stalwart,
    Ocis,
}

impl System {
    pub fn name(self) -> &'static str {
        match self {
            System::DataApi => "Data API",
            System::Authentik => "Authentik",
            System::Stalwart => "Stalwart",
            System::Ocis => "OCIS",
        }
    }
}

/// How an upstream call failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpstreamFailure {
    /// The upstream answered with an error status; `reason` is its message.
    Status { status: u16, reason: String },
    /// The upstream refused because the name or address is already taken
    /// (Authentik's unique-field `400`, Stalwart's `primaryKeyViolation`,
    /// OCIS's `409 nameAlreadyExists`): a conflict, not an outage.
    Taken(String),
    /// No (complete) answer in time.
    Timeout,
    /// Could not connect, or the connection broke; what happened, in plain
    /// words (the transport's own description stays in the log).
    Unreachable(String),
    /// The host refused the call (not in `allowed_outbound_hosts`).
    Denied(String),
    /// An answer we could not understand.
    BadResponse(String),
    /// The system's variables are empty.
    NotConfigured,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{} {}", system.name(), describe(failure))]
pub struct UpstreamError {
    pub system: System,
    pub failure: UpstreamFailure,
}

fn describe(f: &UpstreamFailure) -> String {
    match f {
        UpstreamFailure::Status { status, reason } => format!("answered {status}: {reason}"),
        UpstreamFailure::Taken(reason) => format!("refused a duplicate: {reason}"),
        UpstreamFailure::Timeout => "timed out".into(),
        UpstreamFailure::Unreachable(e) => format!("could not be reached ({e})."),
        UpstreamFailure::Denied(e) => format!("may not be called from this component: {e}"),
        UpstreamFailure::BadResponse(e) => format!("sent an unexpected answer: {e}"),
        UpstreamFailure::NotConfigured => "is not configured".into(),
    }
}

impl UpstreamError {
    pub fn new(system: System, failure: UpstreamFailure) -> Self {
        Self { system, failure }
    }
    pub fn is_timeout(&self) -> bool {
        self.failure == UpstreamFailure::Timeout
    }
    /// Whether the call may have taken effect although it failed: no
    /// answer came (a timeout, a connection that broke), so a write may
    /// still have been stored. An error status is a definite refusal.
    pub fn outcome_unknown(&self) -> bool {
        matches!(self.failure, UpstreamFailure::Timeout | UpstreamFailure::Unreachable(_))
    }
    pub fn taken(system: System, reason: impl Into<String>) -> Self {
        Self::new(system, UpstreamFailure::Taken(reason.into()))
    }
    /// Whether the upstream refused a duplicate name or address.
    pub fn is_taken(&self) -> bool {
        matches!(self.failure, UpstreamFailure::Taken(_))
    }
    /// The upstream's status, when it answered with one.
    pub fn status(&self) -> Option<u16> {
        match self.failure {
            UpstreamFailure::Status { status, .. } => Some(status),
            _ => None,
        }
    }
}

/// Everything an operation can fail with. Each maps to one HTTP status.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed(&'static [&'static str]),
    #[error("{0}")]
    Conflict(String),
    #[error("request body is larger than 64 KiB")]
    PayloadTooLarge,
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The deployment did not give this component a variable it needs (a
    /// secret left out of its SpinApp, say): which one is no secret, and
    /// saying so is what lets an operator fix it.
    #[error("This deployment does not set the variable {0}, which this operation needs.")]
    Unconfigured(String),
    /// A deployment or programming fault; the detail is for the log, not the caller.
    #[error("{0}")]
    Internal(String),
}

impl Error {
    pub fn bad_request(m: impl Into<String>) -> Self {
        Error::BadRequest(m.into())
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        Error::NotFound(m.into())
    }
    pub fn forbidden(m: impl Into<String>) -> Self {
        Error::Forbidden(m.into())
    }
    pub fn conflict(m: impl Into<String>) -> Self {
        Error::Conflict(m.into())
    }

    pub fn status(&self) -> u16 {
        match self {
            Error::BadRequest(_) => 400,
            Error::Unauthorized(_) => 401,
            Error::Forbidden(_) => 403,
            Error::NotFound(_) => 404,
            Error::MethodNotAllowed(_) => 405,
            Error::Conflict(_) => 409,
            Error::PayloadTooLarge => 413,
            Error::Upstream(u) => match u.failure {
                // Routes turn it into their own 409 message; unmapped, it is
                // still a conflict, never "the upstream is broken".
                UpstreamFailure::Taken(_) => 409,
                UpstreamFailure::Timeout => 504,
                UpstreamFailure::NotConfigured => 503,
                _ => 502,
            },
            Error::Unconfigured(_) => 503,
            Error::Internal(_) => 500,
        }
    }

    /// The RFC 9457 body. Internal details never reach the caller.
    pub fn problem(&self) -> Problem {
        let status = self.status();
        let detail = match self {
            Error::Internal(_) => "The service is misconfigured or hit an unexpected fault.".to_owned(),
            other => other.to_string(),
        };
        Problem { status, title: title(status).to_owned(), detail }
    }
}

/// An `application/problem+json` body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub status: u16,
    pub title: String,
    pub detail: String,
}

impl Problem {
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "type": "about:blank",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }))
        .expect("a problem always serialises")
    }
}

fn title(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Content Too Large",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Internal Server Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_failures_map_to_gateway_statuses() {
        let e = |f| Error::Upstream(UpstreamError::new(System::Authentik, f));
        assert_eq!(e(UpstreamFailure::Timeout).status(), 504);
        assert_eq!(e(UpstreamFailure::NotConfigured).status(), 503);
        assert_eq!(e(UpstreamFailure::Status { status: 500, reason: "boom".into() }).status(), 502);
        assert_eq!(e(UpstreamFailure::Unreachable("connection refused".into())).status(), 502);
        assert_eq!(
            e(UpstreamFailure::Unreachable("connection refused".into())).problem().detail,
            "Authentik could not be reached (connection refused)."
        );
        assert_eq!(e(UpstreamFailure::Taken("username: This field must be unique.".into())).status(), 409);
        assert_eq!(e(UpstreamFailure::Status { status: 500, reason: "boom".into() }).problem().detail, "Authentik answered 500: boom");
    }

    #[test]
    fn a_missing_variable_is_503_naming_it() {
        let p = Error::Unconfigured("`authentik_token`".into()).problem();
        assert_eq!((p.status, p.title.as_str()), (503, "Service Unavailable"));
        assert!(p.detail.contains("`authentik_token`"), "{}", p.detail);
    }

    #[test]
    fn internal_details_stay_out_of_the_problem() {
        let p = Error::Internal("variable data_api_key missing".into()).problem();
        assert_eq!(p.status, 500);
        assert!(!p.detail.contains("data_api_key"));
    }
}
