//! The `tributary plugins …` commands that go through the plugin manager on NATS.

use crate::{out, outln};
use std::io::{BufRead, IsTerminal, Write};

use anyhow::anyhow;
use serde_json::json;
use std::time::Duration;

use tributary_channel::api::{WebhookRequest, WebhookView};
use tributary_plugin_manager::config_schema;
use tributary_proto::requests::plugins::{InstallRequest, InstanceView, PluginView};
use tributary_proto::requests::{ApiError, ErrorCode};

use super::config_input::{self, BuiltConfig, ConfigArgs};
use super::{print_json, render};
use tributary_kit::client::{CallError, MeshClient};

/// `plugins list`.
pub async fn list(client: &MeshClient, json: bool) -> anyhow::Result<()> {
    let plugins = client.plugins().await?;
    let instances = client.instances().await?;
    if json {
        print_json(&json!({ "plugins": plugins, "instances": instances }))
    } else {
        out!(
            "{}",
            render::plugin_list(&plugins.plugins, &plugins.invalid, &instances)
        );
        Ok(())
    }
}

/// `plugins rescan`.
pub async fn rescan(client: &MeshClient, json: bool) -> anyhow::Result<()> {
    let plugins = client.rescan().await?;
    if json {
        print_json(&plugins)
    } else {
        out!(
            "{}",
            render::plugin_table(&plugins.plugins, &plugins.invalid)
        );
        Ok(())
    }
}

/// `plugins info <id>`: the instance with that id, else the plugin. With `json`:
/// `{"instance": …}` or `{"plugin": …}`.
pub async fn info(client: &MeshClient, id: &str, json: bool) -> anyhow::Result<()> {
    match client.instance(id).await {
        Ok(instance) => {
            let webhook = webhook_of(client, &instance).await;
            if json {
                let mut answer = json!({ "instance": instance });
                if let Some(Ok(view)) = &webhook {
                    answer["webhook"] = json!(view);
                }
                return print_json(&answer);
            }
            let webhook = webhook.map(render_webhook);
            out!("{}", render::instance_details(&instance, webhook.as_ref()));
            Ok(())
        }
        Err(e) if e.is_not_found() => match client.plugin(id).await {
            Ok(plugin) if json => print_json(&json!({ "plugin": plugin })),
            Ok(plugin) => {
                out!("{}", render::plugin_details(&plugin));
                Ok(())
            }
            Err(e) if e.is_not_found() => Err(ApiError::new(
                ErrorCode::NotFound,
                format!("no instance or plugin `{id}`; `tributary plugins list` shows both"),
            )
            .into()),
            Err(e) => Err(e.into()),
        },
        Err(e) => Err(e.into()),
    }
}

/// What `plugins install` was asked.
#[derive(Debug, Clone)]
pub struct Install {
    /// The plugin.
    pub plugin_id: String,
    /// The instance id to use; the plugin manager makes one up when absent.
    pub instance_id: Option<String>,
    /// Its configuration.
    pub config: ConfigArgs,
    /// Whether the person accepted the plugin's permissions on the command line.
    pub accept_permissions: bool,
}

/// `plugins install`: refuses unless the plugin's permissions are accepted, on the command
/// line or (on a terminal) at a prompt. With `json`: the instance, and for a channel its
/// `webhook` as `info --json` has it.
pub async fn install(client: &MeshClient, args: Install, json: bool) -> anyhow::Result<()> {
    let plugin = client.plugin(&args.plugin_id).await?;
    let secret_fields = config_schema::secret_fields(&plugin.config_schema);
    // The configuration is read first, so a mistake in it shows before any question.
    let config = config_input::build(
        &args.config,
        None,
        &plugin.config_schema,
        &secret_fields,
        env_var,
    )?;
    warn_secrets_on_command_line(config.as_ref());
    if !args.accept_permissions && !plugin.permissions.is_empty() && !ask_to_accept(&plugin)? {
        let mut refusal = ApiError::new(
            ErrorCode::PermissionsNotAccepted,
            format!(
                "`{}` was not installed: it asks for these permissions; re-run with --accept-permissions to accept them",
                plugin.id
            ),
        );
        refusal.permissions = plugin.permissions.clone();
        return Err(refusal.into());
    }
    let request = InstallRequest {
        plugin_id: plugin.id.clone(),
        instance_id: args.instance_id,
        config: config.map(|c| c.config),
        accept_permissions: plugin.permissions.clone(),
    };
    let instance = client.install(request).await.map_err(|e| {
        with_hint(
            e,
            "the plugin changed since it was read; run the command again to see what it asks for",
        )
    })?;
    if json {
        // The instance, and for a channel the webhook URL to give the provider, as `info` has it.
        let mut answer = serde_json::to_value(&instance)?;
        if let Some(Ok(view)) = webhook_of(client, &instance).await {
            answer["webhook"] = json!(view);
        }
        return print_json(&answer);
    }
    outln!(
        "Installed `{}` ({} {}).",
        instance.id,
        instance.plugin_id,
        instance.version
    );
    outln!();
    let webhook = webhook_of(client, &instance).await.map(render_webhook);
    out!("{}", render::instance_details(&instance, webhook.as_ref()));
    outln!();
    if let Some(render::Webhook::Url { url, .. }) = &webhook {
        outln!("Give the provider this webhook URL: {url}");
    }
    outln!(
        "It runs once enabled: `tributary plugins enable {}`.",
        instance.id
    );
    Ok(())
}

/// `plugins configure`: `--config-json` replaces the configuration; `--set` and
/// `--secret-from-env` change fields of the current one.
pub async fn configure(
    client: &MeshClient,
    instance_id: &str,
    args: &ConfigArgs,
    json: bool,
) -> anyhow::Result<()> {
    if args.is_empty() {
        return Err(anyhow!(
            "give the configuration: --config-json <file>, --set key=value or --secret-from-env key=ENV_VAR"
        ));
    }
    let current = client.instance(instance_id).await?;
    let secret_fields: Vec<String> = current.secrets.keys().cloned().collect();
    // `--set` reads values as the plugin's schema types them. The plugin manager knows the
    // newest version's schema, which the instance's follows but for what an upgrade changed;
    // without it (the plugin is gone), values are read as JSON when they parse.
    let schema = match client.plugin(&current.plugin_id).await {
        Ok(plugin) => plugin.config_schema,
        Err(e) if e.is_not_found() => serde_json::Value::Null,
        Err(e) => return Err(e.into()),
    };
    let built = config_input::build(
        args,
        Some(&current.config),
        &schema,
        &secret_fields,
        env_var,
    )?
    .ok_or_else(|| anyhow!("no configuration given"))?;
    warn_secrets_on_command_line(Some(&built));
    let instance = client.configure(instance_id, built.config).await?;
    if json {
        return print_json(&instance);
    }
    outln!("Configured `{}`.", instance.id);
    outln!();
    let webhook = webhook_of(client, &instance).await.map(render_webhook);
    out!("{}", render::instance_details(&instance, webhook.as_ref()));
    Ok(())
}

/// `plugins enable` and `plugins disable`.
pub async fn set_enabled(
    client: &MeshClient,
    instance_id: &str,
    enabled: bool,
    json: bool,
) -> anyhow::Result<()> {
    let instance = if enabled {
        client.enable(instance_id).await?
    } else {
        client.disable(instance_id).await?
    };
    if json {
        return print_json(&instance);
    }
    outln!("`{}` is {}.", instance.id, instance.state);
    Ok(())
}

/// `plugins upgrade`: with `accept`, accepts every permission the newest version asks for.
pub async fn upgrade(
    client: &MeshClient,
    instance_id: &str,
    accept: bool,
    json: bool,
) -> anyhow::Result<()> {
    let accept_permissions = if accept {
        let current = client.instance(instance_id).await?;
        client.plugin(&current.plugin_id).await?.permissions
    } else {
        Vec::new()
    };
    let instance = client
        .upgrade(instance_id, accept_permissions)
        .await
        .map_err(|e| {
            with_hint(
                e,
                &format!("re-run `tributary plugins upgrade {instance_id} --accept-permissions` to accept them"),
            )
        })?;
    if json {
        return print_json(&instance);
    }
    outln!(
        "Upgraded `{}` to {} {}.",
        instance.id,
        instance.plugin_id,
        instance.version
    );
    Ok(())
}

/// `plugins uninstall`.
pub async fn uninstall(
    client: &MeshClient,
    instance_id: &str,
    purge: bool,
    json: bool,
) -> anyhow::Result<()> {
    let outcome = client.uninstall(instance_id, purge).await?;
    if json {
        return print_json(&outcome);
    }
    if outcome.purged {
        outln!(
            "Uninstalled `{}` and purged its configuration and credentials; {} items it brought in were sent to be deleted.",
            outcome.instance_id, outcome.items_deleted
        );
    } else {
        outln!(
            "Uninstalled `{}`. Its configuration, credentials and data are kept; `tributary plugins uninstall {} --purge` deletes them.",
            outcome.instance_id, outcome.instance_id
        );
    }
    Ok(())
}

/// `plugins audit`.
pub async fn audit(
    client: &MeshClient,
    instance_id: Option<String>,
    limit: i64,
    json: bool,
) -> anyhow::Result<()> {
    let entries = client.audit(instance_id, limit).await?;
    if json {
        print_json(&entries)
    } else {
        out!("{}", render::audit(&entries));
        Ok(())
    }
}

/// How long `info` and `install` wait for the channel service's answer about a webhook: a
/// stopped service answers "no responders" at once, a busy one must not hold the page up.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(3);

/// For a channel instance, its webhook route as the channel service serves it
/// (`channel.webhook`), or why that could not be asked; `None` for any other instance.
async fn webhook_of(
    client: &MeshClient,
    instance: &InstanceView,
) -> Option<Result<WebhookView, CallError>> {
    if instance.plugin_type != "channel" {
        return None;
    }
    let request = WebhookRequest {
        instance_id: instance.id.clone(),
    };
    let answer = client
        .clone()
        .with_timeout(WEBHOOK_TIMEOUT)
        .call(&request)
        .await;
    Some(answer)
}

fn render_webhook(answer: Result<WebhookView, CallError>) -> render::Webhook {
    match answer {
        Ok(WebhookView {
            webhook_url: Some(url),
            served,
            ..
        }) => render::Webhook::Url { url, served },
        Ok(_) => render::Webhook::NoRoute,
        Err(e) => render::Webhook::Unknown(e.to_string()),
    }
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Adds `hint` to a refusal that lists permissions to accept; other errors pass unchanged.
fn with_hint(error: CallError, hint: &str) -> anyhow::Error {
    match error {
        CallError::Api(mut e) if e.error == ErrorCode::PermissionsNotAccepted => {
            e.message = format!("{}; {hint}", e.message);
            e.into()
        }
        other => other.into(),
    }
}

fn warn_secrets_on_command_line(config: Option<&BuiltConfig>) {
    for key in config
        .map(|c| c.secrets_on_command_line.as_slice())
        .unwrap_or_default()
    {
        eprintln!(
            "note: `{key}` is a secret given on the command line (so in your shell history); `--secret-from-env {key}=ENV_VAR` reads it from the environment instead"
        );
    }
}

/// On a terminal, lists the plugin's permissions and asks whether to accept them; elsewhere
/// answers no without asking.
fn ask_to_accept(plugin: &PluginView) -> anyhow::Result<bool> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Ok(false);
    }
    let mut err = std::io::stderr().lock();
    writeln!(err, "`{}` asks for these permissions:", plugin.id)?;
    for permission in &plugin.permissions {
        writeln!(err, "  {permission}")?;
    }
    write!(err, "Accept these permissions? [y/N] ")?;
    err.flush()?;
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim().to_lowercase().as_str(), "y" | "yes"))
}
