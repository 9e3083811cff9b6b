//! A tiny connector, written the way a real one would be, run through `sync`.

use async_trait::async_trait;
use chrono::Utc;
use futures::stream::{self, BoxStream};
use futures::{StreamExt, TryStreamExt};
use serde::Deserialize;
use serde_json::json;
use tributary_plugin_sdk::testing::{FixtureServer, TestContext};
use tributary_plugin_sdk::{
    paginate_pages, require_config, ChannelPlugin, ConnectorItem, ConnectorPlugin, Cursor,
    EntityType, InboundMessage, IncomingEvent, IncomingWebhook, ItemOperation, OutboundMessage,
    Participant, PluginContext, PluginError, SentMessage, SyncRequest, SyncStep,
};
use uuid::Uuid;

use crate::paginate::{fetch_page, serve_three_pages};
use crate::LOCAL;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Config {
    base_url: String,
}

/// Pages through `/page/<n>`, yielding each number as a document and a checkpoint holding
/// the next page after each page.
struct NumbersConnector;

impl ConnectorPlugin for NumbersConnector {
    fn sync(
        &self,
        ctx: PluginContext,
        cursor: Option<Cursor>,
        _request: SyncRequest,
    ) -> BoxStream<'static, Result<SyncStep, PluginError>> {
        let start = (|| {
            let config: Config = require_config(&ctx)?;
            let first = match cursor {
                Some(cursor) => cursor.parse::<String>()?,
                None => "/page/1".to_owned(),
            };
            Ok::<_, PluginError>((config, first))
        })();
        let (config, first) = match start {
            Ok(start) => start,
            Err(e) => return stream::once(async { Err(e) }).boxed(),
        };
        let instance = ctx.instance_id().to_owned();
        let base = config.base_url;
        paginate_pages(first, move |path| {
            fetch_page(ctx.clone(), base.clone(), path)
        })
        .map_ok(move |page| {
            let items = page.items.into_iter().map({
                let instance = instance.clone();
                move |n| {
                    Ok(SyncStep::Item(ConnectorItem {
                        instance_id: instance.clone(),
                        entity_type: EntityType::Document,
                        external_id: n.to_string(),
                        operation: ItemOperation::Upsert,
                        source_modified_at: Utc::now(),
                        data: json!({ "title": n.to_string() }),
                        raw: json!(n),
                    }))
                }
            });
            // The last page has no next cursor; the service keeps the last checkpoint.
            let checkpoint = page
                .next
                .map(|next| Ok(SyncStep::Checkpoint(Cursor(json!(next)))));
            stream::iter(items.chain(checkpoint))
        })
        .try_flatten()
        .boxed()
    }
}

fn describe(steps: &[SyncStep]) -> Vec<String> {
    steps
        .iter()
        .map(|s| match s {
            SyncStep::Item(item) => format!("item {}", item.external_id),
            SyncStep::Checkpoint(cursor) => format!("checkpoint {}", cursor.0),
        })
        .collect()
}

#[tokio::test]
async fn an_example_connector_yields_items_and_checkpoints_and_resumes_from_a_cursor() {
    let server = FixtureServer::start().await.unwrap();
    serve_three_pages(&server);
    let test = TestContext::new(&[LOCAL], json!({ "baseUrl": server.base_url() }));
    // Held as the service would hold it.
    let connector: Box<dyn ConnectorPlugin> = Box::new(NumbersConnector);

    let steps: Vec<SyncStep> = connector
        .sync(test.ctx(), None, SyncRequest::full())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        describe(&steps),
        [
            "item 1",
            "item 2",
            "checkpoint \"/page/2\"",
            "item 3",
            "item 4",
            "checkpoint \"/page/3\"",
            "item 5"
        ]
    );

    // Resuming from the second checkpoint fetches only page 3.
    let before = server.requests().len();
    let steps: Vec<SyncStep> = connector
        .sync(
            test.ctx(),
            Some(Cursor(json!("/page/3"))),
            SyncRequest::incremental(),
        )
        .try_collect()
        .await
        .unwrap();
    assert_eq!(describe(&steps), ["item 5"]);
    assert_eq!(server.requests().len(), before + 1);
}

#[tokio::test]
async fn a_connector_without_its_config_fails_naming_the_field() {
    let test = TestContext::new(&[LOCAL], json!({}));
    let steps: Vec<Result<SyncStep, PluginError>> = NumbersConnector
        .sync(test.ctx(), None, SyncRequest::incremental())
        .collect()
        .await;
    assert!(
        matches!(&steps[..], [Err(PluginError::Config { field, .. })] if field == "baseUrl"),
        "{steps:?}"
    );
}

/// Echoes every message back to its sender.
struct EchoChannel;

#[async_trait]
impl ChannelPlugin for EchoChannel {
    async fn handle_incoming(
        &self,
        _ctx: &PluginContext,
        payload: IncomingWebhook,
    ) -> Result<Vec<IncomingEvent>, PluginError> {
        let provider_message_id = payload
            .header("x-message-id")
            .unwrap_or_default()
            .to_owned();
        let text = String::from_utf8(payload.body)
            .map_err(|_| PluginError::Other("the body is not UTF-8".into()))?;
        Ok(vec![IncomingEvent::Message(InboundMessage {
            provider_message_id,
            conversation_id: None,
            conversation_title: None,
            sender: Participant {
                address: "+15550001".into(),
                display_name: None,
            },
            recipients: vec![],
            text,
            sent_at: payload.received_at,
            raw: json!(null),
        })])
    }

    async fn send_message(
        &self,
        _ctx: &PluginContext,
        msg: OutboundMessage,
    ) -> Result<SentMessage, PluginError> {
        Ok(SentMessage {
            id: msg.id,
            provider_message_id: format!("echo-{}", msg.id),
            status: "sent".into(),
            sender: None,
            sent_at: Utc::now(),
        })
    }
}

#[tokio::test]
async fn a_channel_plugin_can_be_held_as_a_trait_object() {
    let test = TestContext::new(&[], json!({}));
    let channel: Box<dyn ChannelPlugin> = Box::new(EchoChannel);
    let webhook = IncomingWebhook {
        method: "POST".into(),
        url: "https://hub.example.com/webhooks/echo/i1".into(),
        query: None,
        headers: vec![("X-Message-Id".into(), "p-1".into())],
        body: b"hello".to_vec(),
        received_at: Utc::now(),
    };

    // A channel that takes no webhooks refuses them all with 404 by default.
    let refused = channel.verify_webhook(&test.ctx(), &webhook).unwrap_err();
    assert_eq!(refused.status, 404);

    let received = channel.handle_incoming(&test.ctx(), webhook).await.unwrap();
    let [IncomingEvent::Message(received)] = received.as_slice() else {
        panic!("expected one message, got {received:?}");
    };
    assert_eq!(received.text, "hello");
    assert_eq!(received.provider_message_id, "p-1");

    let id = Uuid::new_v4();
    let sent = channel
        .send_message(
            &test.ctx(),
            OutboundMessage {
                id,
                conversation_id: None,
                recipients: vec![received.sender.clone()],
                subject: None,
                text: "hello".into(),
                in_reply_to: Some("p-1".into()),
                status_callback_url: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(sent.id, id);
}
