//! What a call to a provider's batch service can fail with, whatever the service: a refusal by
//! status, a redirect, no answer, an answer that is not the documented object, or an account out
//! of credit. The driver's never-twice rule asks it one question above all: may the call have
//! taken effect although it failed ([`ApiError::may_have_taken_effect`])?

use std::time::Duration;

/// A call that did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The server answered with an error status.
    #[error("{what}: HTTP {status}: {message}")]
    Status {
        what: String,
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    /// A 3xx: never followed (the key and the headers would go where it points). A wrong base
    /// URL, not a passing trouble: the run stops and says where it points.
    #[error("{what}: HTTP {status}: {}", crate::api::redirected(location.as_deref()))]
    Redirect {
        what: String,
        status: u16,
        location: Option<String>,
    },
    /// No answer came (connection refused or dropped, timeout): the call may or may not have
    /// taken effect.
    #[error("{what}: {detail}")]
    NoAnswer { what: String, detail: String },
    /// An answer came that is not the object the API documents.
    #[error("{what}: unexpected response: {detail}")]
    Unexpected { what: String, detail: String },
    /// A 429 that says the account is out of credit (`insufficient_quota`): a billing matter,
    /// not a rate limit, so waiting does not help.
    #[error("{what}: HTTP 429: {message}")]
    Quota { what: String, message: String },
}

impl ApiError {
    /// Worth trying again after a wait: no answer, or a status that says "later".
    pub fn is_transient(&self) -> bool {
        match self {
            ApiError::Status { status, .. } => matches!(status, 408 | 409 | 429 | 500..=599),
            ApiError::NoAnswer { .. } => true,
            ApiError::Unexpected { .. } | ApiError::Quota { .. } | ApiError::Redirect { .. } => false,
        }
    }

    /// The call may have taken effect although it failed: no answer came, the server failed
    /// (5xx: a gateway may time out after the backend stored the upload or created the batch), or
    /// a success came that cannot be read. Only a 4xx is a refusal that certainly did nothing.
    pub fn may_have_taken_effect(&self) -> bool {
        match self {
            ApiError::Status { status, .. } => *status >= 500,
            ApiError::NoAnswer { .. } | ApiError::Unexpected { .. } => true,
            ApiError::Quota { .. } | ApiError::Redirect { .. } => false,
        }
    }

    /// The key (or a header) is refused: nothing will work until a person acts.
    pub fn is_auth(&self) -> bool {
        matches!(
            self,
            ApiError::Status {
                status: 401 | 403,
                ..
            }
        )
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The server's `Retry-After`, when it gave one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}
