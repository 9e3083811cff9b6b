//! `tributary send <instance> --to <address> <text>`: sends a message through a channel
//! instance (`channel.send.<instance>`) and prints how it went. Exit codes: 0 the provider
//! took it, 1 it failed or could not be sent.

use crate::outln;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use tributary_channel::api::{SendMessage, SendOutcome, SendRequest};
use tributary_kit::client::{self, MeshClient};
use tributary_kit::Config;
use uuid::Uuid;

use crate::plugins_cli::{print_json, report};

/// `tributary send`: the message and where it goes.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// The channel instance to send through.
    pub instance: String,
    /// The text to send.
    pub text: String,
    /// A recipient, in the channel's addressing (a phone number, a chat or user id, an
    /// e-mail address); repeat for several.
    #[arg(long = "to", value_name = "ADDRESS")]
    pub to: Vec<String>,
    /// A subject line, for e-mail.
    #[arg(long)]
    pub subject: Option<String>,
    /// The provider's conversation or thread to send in (a Slack channel id).
    #[arg(long = "conversation", value_name = "ID")]
    pub conversation_id: Option<String>,
    /// The provider's id of the message this replies to.
    #[arg(long = "reply-to", value_name = "ID")]
    pub in_reply_to: Option<String>,
    /// The message's id, to make a retried command send at most once; a new one by default.
    #[arg(long)]
    pub id: Option<Uuid>,
    /// Seconds to wait for the channel service's answer (it retries the provider meanwhile).
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `tributary send` and returns its exit code.
pub async fn run(config: &Config, args: SendArgs) -> ExitCode {
    match execute(config, args).await {
        Ok(code) => code,
        Err(e) => report(&e),
    }
}

async fn execute(config: &Config, args: SendArgs) -> anyhow::Result<ExitCode> {
    let client = MeshClient::connect(config, client::actor_from_env())
        .await?
        .with_timeout(Duration::from_secs(args.timeout.max(1)));
    let request = SendMessage {
        instance_id: args.instance,
        message: SendRequest {
            id: args.id,
            to: args.to,
            text: args.text,
            subject: args.subject,
            conversation_id: args.conversation_id,
            in_reply_to: args.in_reply_to,
        },
    };
    let outcome: SendOutcome = client.call(&request).await?;
    if args.json {
        print_json(&outcome)?;
    } else if outcome.is_sent() {
        let again = if outcome.repeated {
            " (sent before; not sent again)"
        } else {
            ""
        };
        outln!(
            "Sent {} through {}: {}{again}, provider id {}",
            outcome.message_id,
            outcome.instance_id,
            outcome.status,
            outcome.provider_message_id.as_deref().unwrap_or("-"),
        );
    } else {
        eprintln!(
            "Message {} was not sent: {}",
            outcome.message_id,
            outcome.error.as_deref().unwrap_or(&outcome.status)
        );
    }
    Ok(if outcome.is_sent() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
