//! The `host` interface of the WIT package: the instance's PluginContext, each call checked
//! as it is for a built-in plugin.

use std::str::FromStr;

use secrecy::SecretString;
use serde_json::Value;
use tributary_plugin_sdk::{EntityType, JournalLevel, PluginError as SdkError};
use uuid::Uuid;

use crate::bindings::host::{self, HttpRequest, HttpResponse, LogLevel, SecretAuth};
use crate::bindings::{ConfigProblem, Header, HttpProblem, PluginError};
use crate::http::read_response;
use crate::state::HostState;

/// The longest key of the instance's store, in bytes.
const MAX_KEY_BYTES: usize = 256;
/// The largest value of the instance's store, in bytes.
const MAX_VALUE_BYTES: usize = 64 * 1024;
/// The most random bytes one call hands out.
const MAX_RANDOM_BYTES: u32 = 1024;

/// An SDK error as the guest sees it.
pub(crate) fn to_guest(error: SdkError) -> PluginError {
    match error {
        SdkError::PermissionDenied(denied) => PluginError::Denied(denied.to_string()),
        SdkError::Config { field, message } => {
            PluginError::Config(ConfigProblem { field, message })
        }
        SdkError::Http { status, message } => PluginError::Http(HttpProblem { status, message }),
        SdkError::Transient(message) => PluginError::Transient(message),
        SdkError::Other(message) => PluginError::Other(message),
    }
}

/// A guest's error as the services see it.
pub(crate) fn from_guest(error: PluginError) -> SdkError {
    match error {
        PluginError::Denied(message)
        | PluginError::Limit(message)
        | PluginError::Other(message) => SdkError::Other(message),
        PluginError::Config(ConfigProblem { field, message }) => {
            SdkError::Config { field, message }
        }
        PluginError::Http(HttpProblem { status, message }) => SdkError::Http { status, message },
        PluginError::Transient(message) => SdkError::Transient(message),
    }
}

impl HostState {
    /// Writes down a refusal and hands it to the guest.
    fn refuse(&self, error: SdkError) -> PluginError {
        if let SdkError::PermissionDenied(denied) = &error {
            self.shared.refused(denied);
        }
        to_guest(error)
    }

    /// The value of secret field `field`, if it is one and is set.
    fn secret_value(&self, field: &str) -> Result<String, PluginError> {
        if !self.shared.secret_fields.iter().any(|f| f == field) {
            return Err(PluginError::Denied(format!(
                "`{field}` is not a secret field of the instance's config (a `writeOnly` property of its configSchema); read other fields with config()"
            )));
        }
        match self.shared.ctx.config().get(field) {
            Some(Value::String(value)) => Ok(value.clone()),
            Some(Value::Null) | None => Err(PluginError::Config(ConfigProblem {
                field: field.to_owned(),
                message: "is not set".to_owned(),
            })),
            Some(other) => Ok(other.to_string()),
        }
    }

    async fn fetch(&mut self, request: HttpRequest) -> Result<HttpResponse, PluginError> {
        let method = tributary_plugin_sdk::Method::from_bytes(request.method.as_bytes())
            .map_err(|e| PluginError::Other(format!("invalid method `{}`: {e}", request.method)))?;
        let mut builder = self.shared.ctx.http().request(method, &request.url);
        for Header { name, value } in &request.headers {
            builder = builder.header(name, value);
        }
        match &request.auth {
            None => {}
            Some(SecretAuth::Bearer(field)) => {
                let token = SecretString::from(self.secret_value(field)?);
                builder = builder.bearer_auth(&token);
            }
            Some(SecretAuth::Basic(basic)) => {
                let password = SecretString::from(self.secret_value(&basic.password_field)?);
                builder = builder.basic_auth(&basic.user, Some(&password));
            }
            Some(SecretAuth::Header(header)) => {
                let value = self.secret_value(&header.field)?;
                builder = builder.header(&header.name, &value);
            }
        }
        if let Some(ms) = request.timeout_ms {
            builder = builder.timeout(std::time::Duration::from_millis(u64::from(ms.max(1))));
        }
        if let Some(body) = request.body {
            builder = builder.body(body);
        }
        let response = builder.fetch().await.map_err(|e| self.refuse(e))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| Header {
                name: name.as_str().to_owned(),
                value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
            })
            .collect();
        let body = read_response(response).await.map_err(to_guest)?;
        Ok(HttpResponse {
            status,
            headers,
            body: body.to_vec(),
        })
    }

    fn check_key(key: &str) -> Result<(), PluginError> {
        if key.is_empty() || key.len() > MAX_KEY_BYTES {
            return Err(PluginError::Limit(format!(
                "a key of the instance's store has 1 to {MAX_KEY_BYTES} bytes, this one {}",
                key.len()
            )));
        }
        Ok(())
    }
}

impl crate::bindings::connector::tributary::plugin::types::Host for HostState {}

impl host::Host for HostState {
    async fn plugin_id(&mut self) -> wasmtime::Result<String> {
        Ok(self.shared.ctx.plugin_id().to_owned())
    }

    async fn instance_id(&mut self) -> wasmtime::Result<String> {
        Ok(self.shared.ctx.instance_id().to_owned())
    }

    async fn config(&mut self) -> wasmtime::Result<String> {
        let mut config = self.shared.ctx.config().clone();
        if let Value::Object(fields) = &mut config {
            for secret in &self.shared.secret_fields {
                fields.remove(secret);
            }
        }
        Ok(config.to_string())
    }

    async fn secret(&mut self, field: String) -> wasmtime::Result<Result<String, PluginError>> {
        let value = self.secret_value(&field);
        if value.is_ok() {
            self.shared.ctx.log_info(&format!(
                "The plugin read the secret config field `{field}`."
            ));
        }
        Ok(value)
    }

    async fn log(&mut self, level: LogLevel, message: String) -> wasmtime::Result<()> {
        let (admitted, dropped_before) = self.log.admit();
        let ctx = &self.shared.ctx;
        if let Some(dropped) = dropped_before {
            ctx.log_warn(&format!(
                "{dropped} log lines of the plugin dropped: over its {} lines a second",
                self.shared.limits.log_lines_per_second
            ));
        }
        if !admitted {
            return Ok(());
        }
        let limit = self.shared.limits.log_line_bytes;
        let line = if message.len() > limit {
            let mut end = limit;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            format!("{}… ({} bytes cut)", &message[..end], message.len() - end)
        } else {
            message
        };
        ctx.span().in_scope(|| match level {
            LogLevel::Debug => tracing::debug!(target: "plugin", "{line}"),
            LogLevel::Info => tracing::info!(target: "plugin", "{line}"),
            LogLevel::Warn => tracing::warn!(target: "plugin", "{line}"),
            LogLevel::Error => tracing::error!(target: "plugin", "{line}"),
        });
        // Debug lines stay in the service's log; the rest are the instance's timeline too.
        let journal = match level {
            LogLevel::Debug => None,
            LogLevel::Info => Some(JournalLevel::Info),
            LogLevel::Warn => Some(JournalLevel::Warn),
            LogLevel::Error => Some(JournalLevel::Error),
        };
        if let Some(journal) = journal {
            ctx.keep_in_journal(journal, &line);
        }
        Ok(())
    }

    async fn http_fetch(
        &mut self,
        request: HttpRequest,
    ) -> wasmtime::Result<Result<HttpResponse, PluginError>> {
        Ok(self.fetch(request).await)
    }

    async fn emit_event(
        &mut self,
        subject: String,
        payload: String,
    ) -> wasmtime::Result<Result<(), PluginError>> {
        let payload: Value = match serde_json::from_str(&payload) {
            Ok(payload) => payload,
            Err(e) => {
                return Ok(Err(PluginError::Other(format!(
                    "the event payload is not JSON: {e}"
                ))))
            }
        };
        let ctx = self.shared.ctx.clone();
        Ok(ctx
            .emit_event(&subject, payload)
            .await
            .map_err(|e| self.refuse(e)))
    }

    async fn data_get(
        &mut self,
        entity: String,
        id: String,
    ) -> wasmtime::Result<Result<Option<String>, PluginError>> {
        let Ok(entity_type) = EntityType::from_str(&entity) else {
            return Ok(Err(PluginError::Other(format!(
                "`{entity}` is no entity type of the unified model"
            ))));
        };
        let Ok(id) = Uuid::parse_str(&id) else {
            return Ok(Err(PluginError::Other(format!("`{id}` is not a UUID"))));
        };
        let ctx = self.shared.ctx.clone();
        Ok(ctx
            .data()
            .get(entity_type, id)
            .await
            .map(|found| found.map(|v| v.to_string()))
            .map_err(|e| self.refuse(e)))
    }

    async fn kv_get(
        &mut self,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, PluginError>> {
        if let Err(e) = Self::check_key(&key) {
            return Ok(Err(e));
        }
        Ok(self.shared.ctx.kv().get(&key).await.map_err(to_guest))
    }

    async fn kv_set(
        &mut self,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), PluginError>> {
        if let Err(e) = Self::check_key(&key) {
            return Ok(Err(e));
        }
        if value.len() > MAX_VALUE_BYTES {
            return Ok(Err(PluginError::Limit(format!(
                "a value of the instance's store has at most {MAX_VALUE_BYTES} bytes, this one {}",
                value.len()
            ))));
        }
        Ok(self
            .shared
            .ctx
            .kv()
            .set(&key, &value)
            .await
            .map_err(to_guest))
    }

    async fn kv_delete(&mut self, key: String) -> wasmtime::Result<Result<(), PluginError>> {
        if let Err(e) = Self::check_key(&key) {
            return Ok(Err(e));
        }
        Ok(self.shared.ctx.kv().delete(&key).await.map_err(to_guest))
    }

    async fn now_ms(&mut self) -> wasmtime::Result<u64> {
        Ok(u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0))
    }

    async fn random_bytes(&mut self, len: u32) -> wasmtime::Result<Vec<u8>> {
        let mut bytes = vec![0; len.min(MAX_RANDOM_BYTES) as usize];
        getrandom::fill(&mut bytes)
            .map_err(|e| wasmtime::format_err!("the system has no randomness to give: {e}"))?;
        Ok(bytes)
    }

    async fn cancelled(&mut self) -> wasmtime::Result<bool> {
        Ok(self.meter.cancel.load(std::sync::atomic::Ordering::Relaxed))
    }
}
