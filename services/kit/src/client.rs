//! The one typed client of the mesh's NATS request APIs (the command line, the services and
//! the tests call through it): [`MeshClient::call`] sends any request of the catalog
//! ([`tributary_proto::requests`]) and reads its reply from the [`NatsReply`] envelope; a few
//! `plugins.*` conveniences add who asks, for the audit log.

use std::time::Duration;

use async_nats::client::RequestErrorKind;
use tributary_proto::manifest::PluginType;
use tributary_proto::requests::plugins::{
    AuditEntry, AuditQuery, Call, ConfigureRequest, DisableRequest, EnableRequest,
    HeartbeatRequest, InstallRequest, InstanceCall, InstanceFilter, InstanceInfo, InstanceView,
    ListPlugins, PluginInfo, PluginList, PluginView, RescanPlugins, RuntimeInstance, RuntimeQuery,
    UninstallOutcome, UninstallRequest, UpgradeRequest,
};
use tributary_proto::requests::{ApiError, ErrorCode, NatsReply, Request};
use tributary_proto::{ServiceName, Subjects};

use crate::nats::NatsError;
use crate::Config;

/// How long a request waits for its answer before giving up.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a request got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// Nobody listens on the subject, or the listener did not answer in time.
    #[error("the {service} does not answer on {subject}; is it running (tributary up)?")]
    NotAnswering {
        /// The service asked (`plugin manager`, `connector service`).
        service: &'static str,
        /// The request subject.
        subject: String,
    },
    /// The service refused the request or failed; it says why.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The request could not be sent.
    #[error("cannot send the request on {subject}: {reason}")]
    Send {
        /// The request subject.
        subject: String,
        /// Why.
        reason: String,
    },
    /// The answer is not a reply envelope of the expected shape.
    #[error("cannot read the answer on {subject}: {reason}")]
    BadReply {
        /// The request subject.
        subject: String,
        /// Why.
        reason: String,
    },
}

impl CallError {
    /// Whether the service said there is no such plugin or instance.
    pub fn is_not_found(&self) -> bool {
        matches!(self, CallError::Api(e) if e.error == ErrorCode::NotFound)
    }
}

/// Who the command line says it is in the audit log: `cli:<user>`, the user named by `$USER`
/// or `$LOGNAME`, else the account of the process's uid in `/etc/passwd` (containers seldom
/// set `$USER`); without a name `cli:uid-<uid>@<host>`, then `cli@<host>`, then `cli:unknown`.
///
/// It is declared by the client, not authenticated: NATS does not tell the plugin manager
/// which NATS user sent a request (the server's permissions decide who may send one at all),
/// so the plugin manager records it only as `claimed_actor`, beside the actor it establishes
/// itself (`nats:admin`).
pub fn actor_from_env() -> String {
    let named = ["USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().and_then(usable));
    let uid = process_uid();
    let user = named.or_else(|| {
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        uid.and_then(|uid| passwd_name(&passwd, uid))
    });
    declared_actor(user, uid, host_name())
}

/// The actor for a user name, else a uid and a host name, as far as they are known.
fn declared_actor(user: Option<String>, uid: Option<u32>, host: Option<String>) -> String {
    match (user, uid, host) {
        (Some(user), _, _) => format!("cli:{user}"),
        (None, Some(uid), Some(host)) => format!("cli:uid-{uid}@{host}"),
        (None, Some(uid), None) => format!("cli:uid-{uid}"),
        (None, None, Some(host)) => format!("cli@{host}"),
        (None, None, None) => "cli:unknown".to_owned(),
    }
}

/// A name worth recording: not blank, no control characters (a NUL would be refused).
fn usable(name: String) -> Option<String> {
    let name = name.trim();
    (!name.is_empty() && !name.chars().any(char::is_control)).then(|| name.to_owned())
}

/// The account name of `uid` in an `/etc/passwd` text (`name:x:uid:gid:…`).
fn passwd_name(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let uid_field = fields.nth(1)?;
        (uid_field.parse::<u32>().ok()? == uid)
            .then(|| usable(name.to_owned()))
            .flatten()
    })
}

/// The uid this process runs as: the owner of `/proc/self`.
fn process_uid() -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").ok().map(|m| m.uid())
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// This machine's name, from the kernel, `/etc/hostname` or `$HOSTNAME`.
fn host_name() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|f| std::fs::read_to_string(f).ok().and_then(usable))
        .or_else(|| std::env::var("HOSTNAME").ok().and_then(usable))
}

/// A connection to the services' NATS request APIs.
#[derive(Debug, Clone)]
pub struct MeshClient {
    /// The NATS connection.
    nats: async_nats::Client,
    /// The deployment's subjects (with its prefix).
    subjects: Subjects,
    /// Who it says asks, sent as `claimed_actor` (a claim the audit log keeps beside the
    /// actor, never as it).
    actor: String,
    /// How long one request waits for its answer.
    timeout: Duration,
}

impl MeshClient {
    /// Connects to the NATS server of `config`, asking as `actor`.
    pub async fn connect(config: &Config, actor: String) -> Result<Self, NatsError> {
        let nats = crate::nats::connect(&config.nats, "tributary-client").await?;
        Ok(Self::new(nats, config.subjects(), actor))
    }

    /// A client over an existing connection.
    pub fn new(nats: async_nats::Client, subjects: Subjects, actor: String) -> Self {
        Self {
            nats,
            subjects,
            actor,
            timeout: REQUEST_TIMEOUT,
        }
    }

    /// The same client, waiting `timeout` for each answer.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends `request` to its service (`R::SERVICE`, `R::VERB`) and reads the reply.
    pub async fn call<R: Request>(&self, request: &R) -> Result<R::Reply, CallError> {
        self.send(R::SERVICE, request.subject(&self.subjects), request)
            .await
    }

    /// Sends `body`, any JSON, on the subject of request type `R` and reads the reply as
    /// `Resp`: for a test or tool that must send what `R` would not allow (a malformed
    /// body, a NUL byte) or read a reply loosely. The subject still comes from the type.
    pub async fn call_with_body<R, Resp>(
        &self,
        body: &impl serde::Serialize,
    ) -> Result<Resp, CallError>
    where
        R: Request,
        Resp: serde::de::DeserializeOwned,
    {
        let subject = self.subjects.request(R::SERVICE, R::VERB);
        self.send(R::SERVICE, subject, body).await
    }

    /// [`MeshClient::call_with_body`] for a [`Request::WILDCARD`] request: sent on
    /// `<service>.<verb>.<token>` (`plugins.runtime.connector`).
    pub async fn call_with_body_on<R, Resp>(
        &self,
        token: &str,
        body: &impl serde::Serialize,
    ) -> Result<Resp, CallError>
    where
        R: Request,
        Resp: serde::de::DeserializeOwned,
    {
        let subject = self
            .subjects
            .request(R::SERVICE, &format!("{}.{token}", R::VERB));
        self.send(R::SERVICE, subject, body).await
    }

    async fn send<Resp: serde::de::DeserializeOwned>(
        &self,
        service: ServiceName,
        subject: String,
        body: &impl serde::Serialize,
    ) -> Result<Resp, CallError> {
        let body = serde_json::to_vec(body).map_err(|e| CallError::Send {
            subject: subject.clone(),
            reason: e.to_string(),
        })?;
        let asked = async_nats::Request::new()
            .payload(body.into())
            .timeout(Some(self.timeout));
        let message = self
            .nats
            .send_request(subject.clone(), asked)
            .await
            .map_err(|e| match e.kind() {
                RequestErrorKind::NoResponders | RequestErrorKind::TimedOut => {
                    CallError::NotAnswering {
                        service: service_label(service),
                        subject: subject.clone(),
                    }
                }
                _ => CallError::Send {
                    subject: subject.clone(),
                    reason: e.to_string(),
                },
            })?;
        match serde_json::from_slice::<NatsReply<Resp>>(&message.payload) {
            Ok(NatsReply::Ok(value)) => Ok(value),
            Ok(NatsReply::Error(e)) => Err(CallError::Api(e)),
            Err(e) => Err(CallError::BadReply {
                subject,
                reason: e.to_string(),
            }),
        }
    }

    /// The NATS connection it asks through.
    pub fn nats(&self) -> &async_nats::Client {
        &self.nats
    }

    /// The deployment's subjects.
    pub fn subjects(&self) -> &Subjects {
        &self.subjects
    }

    /// Who it asks as.
    pub fn actor(&self) -> &str {
        &self.actor
    }

    /// A request about one instance, asked as this client's actor.
    pub fn instance_call<B>(&self, instance_id: &str, body: B) -> InstanceCall<B> {
        InstanceCall {
            instance_id: instance_id.to_owned(),
            claimed_actor: Some(self.actor.clone()),
            body,
        }
    }

    /// A request not about one instance, asked as this client's actor.
    pub fn as_actor<B>(&self, body: B) -> Call<B> {
        Call {
            claimed_actor: Some(self.actor.clone()),
            body,
        }
    }

    /// `plugins.list`: every plugin discovered, valid and invalid.
    pub async fn plugins(&self) -> Result<PluginList, CallError> {
        self.call(&ListPlugins {}).await
    }

    /// `plugins.rescan`: scans the plugin directories again and answers with the list.
    pub async fn rescan(&self) -> Result<PluginList, CallError> {
        self.call(&RescanPlugins {}).await
    }

    /// `plugins.info`: one valid plugin.
    pub async fn plugin(&self, plugin_id: &str) -> Result<PluginView, CallError> {
        self.call(&PluginInfo {
            plugin_id: plugin_id.to_owned(),
        })
        .await
    }

    /// `plugins.instances`: every installed instance.
    pub async fn instances(&self) -> Result<Vec<InstanceView>, CallError> {
        self.call(&InstanceFilter::default()).await
    }

    /// The ids of the instances of `plugin_type` whose service should run them now
    /// ([`tributary_proto::requests::plugins::runs_in_state`]).
    pub async fn running_instance_ids(&self, plugin_type: &str) -> Result<Vec<String>, CallError> {
        let filter = InstanceFilter {
            plugin_type: Some(plugin_type.to_owned()),
            state: None,
        };
        Ok(self
            .call(&filter)
            .await?
            .into_iter()
            .filter(|i| tributary_proto::requests::plugins::runs_in_state(&i.state))
            .map(|i| i.id)
            .collect())
    }

    /// `plugins.runtime.<plugin type>`: what the service running instances of `plugin_type`
    /// needs to run one, secrets included; an instance of another type is `not_found`.
    pub async fn runtime(
        &self,
        plugin_type: PluginType,
        instance_id: &str,
    ) -> Result<RuntimeInstance, CallError> {
        self.call(&RuntimeQuery {
            plugin_type: Some(plugin_type),
            instance_id: instance_id.to_owned(),
        })
        .await
    }

    /// `plugins.heartbeat.<plugin type>`: the instance, of a `plugin_type` plugin run by the
    /// service asking, is alive, or failed with `error`; an instance of another type is
    /// `not_found` and unchanged.
    pub async fn heartbeat(
        &self,
        plugin_type: PluginType,
        instance_id: &str,
        error: Option<String>,
    ) -> Result<InstanceView, CallError> {
        self.call(&HeartbeatRequest {
            plugin_type: Some(plugin_type),
            instance_id: instance_id.to_owned(),
            error,
        })
        .await
    }

    /// `plugins.instance`: one instance.
    pub async fn instance(&self, instance_id: &str) -> Result<InstanceView, CallError> {
        self.call(&InstanceInfo {
            instance_id: instance_id.to_owned(),
        })
        .await
    }

    /// `plugins.install`, asked as this client's actor.
    pub async fn install(&self, request: InstallRequest) -> Result<InstanceView, CallError> {
        self.call(&self.as_actor(request)).await
    }

    /// `plugins.configure`: replaces the configuration (secrets left out keep their value).
    pub async fn configure(
        &self,
        instance_id: &str,
        config: serde_json::Value,
    ) -> Result<InstanceView, CallError> {
        self.call(&self.instance_call(instance_id, ConfigureRequest { config }))
            .await
    }

    /// `plugins.enable`, asked as this client's actor.
    pub async fn enable(&self, instance_id: &str) -> Result<InstanceView, CallError> {
        self.call(&self.instance_call(instance_id, EnableRequest {}))
            .await
    }

    /// `plugins.disable`, asked as this client's actor.
    pub async fn disable(&self, instance_id: &str) -> Result<InstanceView, CallError> {
        self.call(&self.instance_call(instance_id, DisableRequest {}))
            .await
    }

    /// `plugins.upgrade`, accepting `accept_permissions` for the new version.
    pub async fn upgrade(
        &self,
        instance_id: &str,
        accept_permissions: Vec<String>,
    ) -> Result<InstanceView, CallError> {
        self.call(&self.instance_call(instance_id, UpgradeRequest { accept_permissions }))
            .await
    }

    /// `plugins.uninstall`, asked as this client's actor.
    pub async fn uninstall(
        &self,
        instance_id: &str,
        purge: bool,
    ) -> Result<UninstallOutcome, CallError> {
        self.call(&self.instance_call(instance_id, UninstallRequest { purge }))
            .await
    }

    /// `plugins.audit`: the newest `limit` entries, of one instance or all, oldest first.
    pub async fn audit(
        &self,
        instance_id: Option<String>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, CallError> {
        self.call(&AuditQuery {
            instance_id,
            limit: Some(limit),
        })
        .await
    }
}

/// How an error names a service.
fn service_label(service: ServiceName) -> &'static str {
    match service {
        ServiceName::PluginManager => "plugin manager",
        ServiceName::Connector => "connector service",
        ServiceName::Etl => "ETL service",
        ServiceName::Channel => "channel service",
        ServiceName::Search => "search service",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_actor_is_the_user_else_the_uid_and_host_else_the_host() {
        let host = || Some("box".to_owned());
        assert_eq!(
            declared_actor(Some("alice".into()), Some(0), host()),
            "cli:alice"
        );
        assert_eq!(declared_actor(None, Some(1000), host()), "cli:uid-1000@box");
        assert_eq!(declared_actor(None, None, host()), "cli@box");
        assert_eq!(declared_actor(None, None, None), "cli:unknown");
    }

    #[test]
    fn the_os_user_is_read_from_passwd_by_uid() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      broken\n\
                      app:x:1000:1000::/home/app:/bin/sh\n";
        assert_eq!(passwd_name(passwd, 1000).as_deref(), Some("app"));
        assert_eq!(passwd_name(passwd, 0).as_deref(), Some("root"));
        assert_eq!(passwd_name(passwd, 4242), None);
    }

    #[test]
    fn without_user_or_logname_the_actor_still_names_who_acted() {
        // nextest runs each test in its own process, so this changes no other test's
        // environment.
        std::env::remove_var("USER");
        std::env::remove_var("LOGNAME");
        let actor = actor_from_env();
        assert_ne!(actor, "cli:unknown");
        assert!(!actor.contains('\0'), "{actor}");
        if let Some(uid) = process_uid() {
            let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
            match passwd_name(&passwd, uid) {
                Some(name) => assert_eq!(actor, format!("cli:{name}")),
                None => assert!(actor.starts_with(&format!("cli:uid-{uid}")), "{actor}"),
            }
        }
    }
}
