//! The typed request catalog: every request a service answers on NATS, with its service, its
//! verb and its reply type ([`Request`]), the one table of error codes ([`ErrorCode`]) and the
//! one reply shape ([`NatsReply`]).
//!
//! A request goes to `<service>.<verb>` (`plugins.install`, `connector.sync`), served by the
//! service's NATS micro service, so `$SRV.PING`, `$SRV.INFO` and `$SRV.STATS` see it. The
//! answer is `{"ok": <reply>}`, or `{"error": <ApiError>}` with the `Nats-Service-Error` and
//! `Nats-Service-Error-Code` headers set. Clients and servers name a request by its type,
//! never by a string: `tributary_kit::client::MeshClient::call` sends one,
//! `tributary_kit::requests::serve` answers one.

use schemars::{JsonSchema, Schema};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::subjects::{ServiceName, Subjects};

pub mod error;
pub use error::{ApiError, ConfigProblem, ErrorCode, NatsReply};

/// A request one service answers: its service, verb and reply, and the refusals it can answer
/// with.
pub trait Request: Serialize + DeserializeOwned + JsonSchema + Send + Sync + 'static {
    /// The service that answers it.
    const SERVICE: ServiceName;
    /// Its verb: the subject is `<service domain>.<verb>`.
    const VERB: &'static str;
    /// Whether the subject carries one more token after the verb (`channel.send.<instance>`):
    /// the endpoint then listens on `<verb>.*`.
    const WILDCARD: bool = false;
    /// For a [`Request::WILDCARD`] request: what the token after the verb is, as the catalog
    /// shows it (`channel.send.<instance>`, `plugins.runtime.<plugin type>`).
    const TOKEN_NAME: &'static str = "instance";
    /// The codes of the errors it can be answered with.
    const ERRORS: &'static [ErrorCode];
    /// What it is answered with.
    type Reply: Serialize + DeserializeOwned + JsonSchema + Send + 'static;

    /// For a [`Request::WILDCARD`] request: the token after the verb.
    fn subject_token(&self) -> Option<&str> {
        None
    }

    /// For a [`Request::WILDCARD`] request: takes the token after the verb from the subject
    /// it came on (the body does not repeat it).
    fn set_subject_token(&mut self, _token: &str) {}

    /// The subject it is sent on, in the deployment of `subjects`.
    fn subject(&self, subjects: &Subjects) -> String {
        match self.subject_token() {
            Some(token) if Self::WILDCARD => {
                subjects.request(Self::SERVICE, &format!("{}.{token}", Self::VERB))
            }
            _ => subjects.request(Self::SERVICE, Self::VERB),
        }
    }
}

/// Implements [`Request`] for each listed type of one service.
macro_rules! requests {
    ($service:expr; $($request:ty => $verb:literal, $reply:ty, $errors:expr;)+) => {
        $(
            impl $crate::requests::Request for $request {
                const SERVICE: $crate::subjects::ServiceName = $service;
                const VERB: &'static str = $verb;
                const ERRORS: &'static [$crate::requests::ErrorCode] = $errors;
                type Reply = $reply;
            }
        )+

        /// Every request of this service, for the catalog.
        pub(crate) fn catalog() -> Vec<$crate::requests::CatalogEntry> {
            vec![$($crate::requests::CatalogEntry::of::<$request>()),+]
        }
    };
}
pub(crate) use requests;

pub mod channel;
pub mod connector;
pub mod etl;
pub mod plugins;
pub mod search;

/// One request of the catalog, as the generated schemas and docs show it.
#[derive(Debug, Clone)]
pub struct CatalogEntry {
    /// The service that answers it.
    pub service: ServiceName,
    /// Its verb.
    pub verb: &'static str,
    /// Whether its subject carries one more token (`channel.send.<instance>`).
    pub wildcard: bool,
    /// What that token is ([`Request::TOKEN_NAME`]).
    pub token_name: &'static str,
    /// The request type's Rust name, without module paths (`Call<InstallRequest>`).
    pub request: String,
    /// The reply type's Rust name, without module paths (`Vec<InstanceView>`).
    pub reply: String,
    /// The codes it can be refused with.
    pub errors: &'static [ErrorCode],
    /// The JSON Schema of the request body.
    pub request_schema: fn() -> Schema,
    /// The JSON Schema of the reply envelope (`{"ok": …}` or `{"error": …}`).
    pub reply_schema: fn() -> Schema,
}

impl CatalogEntry {
    /// The entry of `R`.
    pub fn of<R: Request>() -> Self {
        Self {
            service: R::SERVICE,
            verb: R::VERB,
            wildcard: R::WILDCARD,
            token_name: R::TOKEN_NAME,
            request: short_type_name(std::any::type_name::<R>()),
            reply: short_type_name(std::any::type_name::<R::Reply>()),
            errors: R::ERRORS,
            request_schema: || schemars::schema_for!(R),
            reply_schema: || schemars::schema_for!(NatsReply<R::Reply>),
        }
    }

    /// Its subject without a deployment prefix (`plugins.install`, `channel.send.<instance>`).
    pub fn subject(&self) -> String {
        let subject = Subjects::default().request(self.service, self.verb);
        if self.wildcard {
            format!("{subject}.<{}>", self.token_name)
        } else {
            subject
        }
    }
}

/// A Rust type name without its module paths: `alloc::vec::Vec<a::b::InstanceView>` is
/// `Vec<InstanceView>`.
fn short_type_name(full: &str) -> String {
    let mut out = String::with_capacity(full.len());
    let mut word = String::new();
    let mut chars = full.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            word.clear();
        } else if c.is_alphanumeric() || c == '_' {
            word.push(c);
        } else {
            out.push_str(&word);
            word.clear();
            out.push(c);
        }
    }
    out.push_str(&word);
    out
}

/// Every request of every service, by service, then as each service lists them.
pub fn catalog() -> Vec<CatalogEntry> {
    let mut all = plugins::catalog();
    all.extend(connector::catalog());
    all.extend(etl::catalog());
    all.extend(channel::catalog());
    all.extend(search::catalog());
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_type_name_loses_its_module_paths_but_keeps_its_parameters() {
        assert_eq!(
            short_type_name("alloc::vec::Vec<crate::requests::plugins::InstanceView>"),
            "Vec<InstanceView>"
        );
        assert_eq!(
            short_type_name("a::Call<b::c::InstallRequest>"),
            "Call<InstallRequest>"
        );
    }
}
