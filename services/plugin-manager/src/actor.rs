//! Who made a change, as the audit log and the `plugins.*` events record it.
//!
//! The actor is always an identity the plugin manager established itself, never what a request
//! says: over HTTP the admin token's name ([`crate::http_api::admin_actor`]); over NATS, which
//! does not tell a responder who sent a message, the NATS user that deploy/nats-server.conf lets
//! publish the subject ([`NATS_ADMIN_ACTOR`] for the CLI's changes, `nats:connector` or
//! `nats:channel` for a service's heartbeat); or the plugin manager itself (`oauth-broker`). A
//! name the request gives (`cli:alice`) is kept beside it as a claim only: the audit entry's
//! `detail.claimed_actor` and the event's `claimed_actor` (issue 27, Low).

use std::borrow::Cow;
use std::fmt;

use serde_json::Value;
use tributary_proto::manifest::PluginType;
use tributary_proto::requests::plugins::{nats_service_actor, NATS_ADMIN_ACTOR};

use crate::error::RegistryError;
use crate::validate;

/// The key of the audit detail and of the event field that keep a claimed name.
pub const CLAIMED_ACTOR: &str = "claimed_actor";

/// Who made a change: an established identity, and what the request claimed, if anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The identity recorded as the actor.
    name: Cow<'static, str>,
    /// What the request said about who asks; never recorded as the actor.
    claimed: Option<String>,
}

impl Actor {
    /// A fixed actor of the plugin manager's own (`oauth-broker`).
    pub const fn fixed(name: &'static str) -> Self {
        Self {
            name: Cow::Borrowed(name),
            claimed: None,
        }
    }

    /// An actor the plugin manager established (an admin token's name).
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: Cow::Owned(name.into()),
            claimed: None,
        }
    }

    /// A change asked over NATS on a subject only `admin` may publish: the actor is
    /// [`NATS_ADMIN_ACTOR`], and `claimed` (the request's `claimed_actor`) a claim beside it.
    /// A claim holding a NUL byte is refused naming the field.
    pub fn nats_admin(claimed: Option<String>) -> Result<Self, RegistryError> {
        if let Some(claimed) = &claimed {
            validate::text(CLAIMED_ACTOR, claimed)?;
        }
        Ok(Self {
            name: Cow::Borrowed(NATS_ADMIN_ACTOR),
            claimed: claimed.filter(|c| !c.is_empty()),
        })
    }

    /// A report on `plugins.heartbeat.<plugin_type>`, which only the NATS user of the service
    /// running that type of plugin may publish: `nats:connector`, `nats:channel`.
    pub fn nats_service(plugin_type: PluginType) -> Self {
        Self::new(nats_service_actor(plugin_type))
    }

    /// The identity recorded as the actor.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the request claimed, if it named anyone.
    pub fn claimed(&self) -> Option<&str> {
        self.claimed.as_deref()
    }

    /// `detail` with the claim added as [`CLAIMED_ACTOR`] (a detail that is no object is kept
    /// under `detail`).
    pub(crate) fn with_claim(&self, detail: Value) -> Value {
        let Some(claimed) = &self.claimed else {
            return detail;
        };
        let mut detail = match detail {
            Value::Object(map) => map,
            Value::Null => serde_json::Map::new(),
            other => serde_json::Map::from_iter([("detail".to_owned(), other)]),
        };
        detail.insert(CLAIMED_ACTOR.to_owned(), Value::from(claimed.as_str()));
        Value::Object(detail)
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.claimed {
            Some(claimed) => write!(f, "{} (claimed {claimed:?})", self.name),
            None => f.write_str(&self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_is_kept_beside_the_actor_never_as_it() {
        let actor = Actor::nats_admin(Some("admin-api:forged".into())).unwrap_or_else(|e| {
            panic!("a claim without NUL is taken: {e}");
        });
        assert_eq!(actor.name(), "nats:admin");
        assert_eq!(actor.claimed(), Some("admin-api:forged"));
        assert_eq!(
            actor.with_claim(serde_json::json!({ "from": "1.0.0" })),
            serde_json::json!({ "from": "1.0.0", "claimed_actor": "admin-api:forged" })
        );
        assert_eq!(
            Actor::nats_service(PluginType::Channel).name(),
            "nats:channel"
        );
    }

    #[test]
    fn a_claim_with_a_nul_byte_is_refused_naming_the_field() {
        let refused = Actor::nats_admin(Some("a\0b".into()));
        assert!(
            matches!(refused, Err(RegistryError::NulByte(CLAIMED_ACTOR))),
            "{refused:?}"
        );
    }
}
