//! How the API says no: a machine-readable [`ErrorCode`] and a message a
//! person can act on.

use serde::{Deserialize, Serialize};

/// Machine-readable error codes, so callers never match on messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidInput,
    NotFound,
    Conflict,
    Unavailable,
    Unauthenticated,
    Forbidden,
    /// The change needs a fresh second factor (`confirm`) first.
    MfaRequired,
    /// No person has unlocked this Warden since it started.
    Locked,
    Internal,
}

#[derive(Debug, Clone, thiserror::Error, Serialize, Deserialize, ts_rs::TS)]
#[error("{message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }
}

impl From<warden_gateway::Error> for ApiError {
    fn from(e: warden_gateway::Error) -> Self {
        use warden_gateway::Error as G;
        let code = match &e {
            G::Config(_) => ErrorCode::InvalidInput,
            G::NotFound(_) => ErrorCode::NotFound,
            G::Conflict(_) => ErrorCode::Conflict,
            G::Unavailable(_) => ErrorCode::Unavailable,
            G::Store(_) => ErrorCode::Internal,
        };
        ApiError::new(code, e.to_string())
    }
}

impl From<warden_store::Error> for ApiError {
    fn from(e: warden_store::Error) -> Self {
        let code = match &e {
            warden_store::Error::Exists(_) => ErrorCode::Conflict,
            warden_store::Error::NotFound(_) => ErrorCode::NotFound,
            warden_store::Error::LogUnavailable(_) => ErrorCode::Unavailable,
            warden_store::Error::Locked => ErrorCode::Locked,
            warden_store::Error::Forged(_) => ErrorCode::Forbidden,
            _ => ErrorCode::Internal,
        };
        ApiError::new(code, e.to_string())
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
