//! The one table of error codes, the refusal every service answers with, and the reply shape
//! of every request in the mesh.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What kind of failure an [`ApiError`] is. Each code has one HTTP status
/// ([`ErrorCode::http_status`]) and one NATS service error code ([`ErrorCode::nats_code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request cannot be read.
    BadRequest,
    /// No or a wrong bearer token.
    Unauthorized,
    /// No such plugin, instance or route.
    NotFound,
    /// The configuration does not satisfy the plugin's schema.
    InvalidConfig,
    /// The permissions asked for were not all accepted.
    PermissionsNotAccepted,
    /// The instance is not in a state that allows this.
    Conflict,
    /// The route is not served with this method.
    MethodNotAllowed,
    /// Something failed inside the service.
    Internal,
}

impl ErrorCode {
    /// Every code, in the order of the table in the catalog.
    pub const ALL: [ErrorCode; 8] = [
        ErrorCode::BadRequest,
        ErrorCode::Unauthorized,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::PermissionsNotAccepted,
        ErrorCode::Conflict,
        ErrorCode::InvalidConfig,
        ErrorCode::Internal,
    ];

    /// The JSON spelling (`not_found`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::NotFound => "not_found",
            ErrorCode::InvalidConfig => "invalid_config",
            ErrorCode::PermissionsNotAccepted => "permissions_not_accepted",
            ErrorCode::Conflict => "conflict",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP status that goes with it.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::InvalidConfig => 422,
            ErrorCode::PermissionsNotAccepted | ErrorCode::Conflict => 409,
            ErrorCode::Internal => 500,
        }
    }

    /// The code of the `Nats-Service-Error-Code` header a refused request is answered with.
    /// It is the HTTP status, as the NATS micro service tools expect (`nats micro stats`
    /// shows it); the JSON body's `error` tells `conflict` from `permissions_not_accepted`.
    pub fn nats_code(self) -> usize {
        usize::from(self.http_status())
    }

    /// One line on when a service answers with it.
    pub fn description(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "the request cannot be read, or a field is not valid",
            ErrorCode::Unauthorized => "no or a wrong bearer token (HTTP only)",
            ErrorCode::NotFound => "no such plugin, instance or route",
            ErrorCode::MethodNotAllowed => "the route is not served with this method (HTTP only)",
            ErrorCode::PermissionsNotAccepted => {
                "the permissions asked for were not all accepted; `permissions` lists them"
            }
            ErrorCode::Conflict => "the instance or service is not in a state that allows this",
            ErrorCode::InvalidConfig => {
                "the configuration does not satisfy the plugin's schema; `problems` lists each"
            }
            ErrorCode::Internal => "the service failed (the cause is in its log)",
        }
    }
}

/// One problem with a configuration, naming where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConfigProblem {
    /// JSON pointer of the offending value (`/tenantId`); empty for the document itself.
    pub path: String,
    /// What is wrong; a secret's value is never repeated here.
    pub message: String,
}

/// A refused or failed request: the JSON body of every error reply, on NATS and HTTP alike.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, thiserror::Error)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[error("{message}")]
pub struct ApiError {
    /// What kind of failure.
    pub error: ErrorCode,
    /// One line for a person.
    pub message: String,
    /// For `invalid_config`: every problem with its JSON path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<ConfigProblem>,
    /// For `permissions_not_accepted`: the permissions to accept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permissions: Vec<String>,
}

impl ApiError {
    /// An error with a code and a message.
    pub fn new(error: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            error,
            message: message.into(),
            problems: Vec::new(),
            permissions: Vec::new(),
        }
    }

    /// An `internal` error: the service itself failed (its database, NATS), with `e` as the
    /// message.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        Self::new(ErrorCode::Internal, e.to_string())
    }

    /// A `bad_request` error.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }
}

/// The body of every NATS reply in the mesh: the result, or the error. A refused request also
/// carries the `Nats-Service-Error` and `Nats-Service-Error-Code` headers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NatsReply<T> {
    /// It worked.
    Ok(T),
    /// It did not.
    Error(ApiError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_spelled_as_its_json() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_value(code).unwrap_or_default();
            assert_eq!(json, serde_json::Value::from(code.as_str()));
        }
    }

    #[test]
    fn an_error_reply_is_the_error_under_error() {
        let reply = NatsReply::<()>::Error(ApiError::new(ErrorCode::NotFound, "no `x`"));
        assert_eq!(
            serde_json::to_value(reply).unwrap_or_default(),
            serde_json::json!({"error": {"error": "not_found", "message": "no `x`"}})
        );
    }
}
