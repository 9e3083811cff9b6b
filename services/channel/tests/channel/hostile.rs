//! The hostile-plugin suite, channel side: a WebAssembly channel whose webhook verification
//! misbehaves (`plugins/wasm/js-hostile-chat`, JavaScript through componentize-js), served by
//! the real channel service next to a well-behaved instance: the JavaScript
//! `com.example.js-chat`, or the built-in Telegram channel. The hostile webhooks are answered
//! 5xx within the call limit, nothing of them is stored, and the well-behaved instance's
//! webhooks are accepted meanwhile and after.

use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde_json::{json, Value};
use tributary_channel::registry::channel_name;
use tributary_kit::testing::guests::serve_guests;
use tributary_plugin_sdk::signatures::meta;

use crate::support::{Harness, Signed};

/// The hostile channel: 1 s of CPU a call, 32 MiB of memory.
const HOSTILE: &str = "com.example.js-hostile-chat";
/// Its manifest's entrypoint, which names its routes.
const HOSTILE_ENTRYPOINT: &str = "wasm:js-hostile-chat.wasm";
/// The well-behaved instance.
const STEADY: &str = "steady";
/// The misbehaving instance.
const SUBJECT: &str = "hostile";
/// The well-behaved instance's signing secret.
const SECRET: &str = "hostile-suite-signing-secret";
/// How long the first route of a plugin may take: it loads its component (compiled once per
/// machine into the shared cache, tens of seconds the first time).
const FIRST: Duration = Duration::from_secs(180);
/// The most a refused webhook may take: the hostile channel's call limit, and room for a
/// loaded machine.
const CALL_LIMIT_AND_SLACK: Duration = Duration::from_secs(3);

/// The well-behaved instance beside the hostile one.
#[derive(Debug, Clone, Copy)]
enum Neighbour {
    /// `com.example.js-chat`: a WebAssembly channel too, on the same runtime.
    JsChat,
    /// The built-in Telegram channel.
    Telegram,
}

impl Neighbour {
    /// Its plugin, its route name and its config.
    fn plugin(self) -> (&'static str, String, Value) {
        match self {
            Neighbour::JsChat => (
                "com.example.js-chat",
                channel_name("wasm:js-chat.wasm"),
                json!({ "signingSecret": SECRET }),
            ),
            Neighbour::Telegram => (
                "tributary.telegram",
                channel_name("builtin:telegram"),
                json!({ "botToken": "1:x", "secretToken": SECRET }),
            ),
        }
    }

    /// A message webhook `n`, signed as the channel wants: for `com.example.js-chat`,
    /// `x-signature` is the hex HMAC-SHA256 of the body under the signing secret.
    fn signed(self, n: u64) -> Signed {
        let path = format!("/webhooks/{}/{STEADY}", self.plugin().1);
        let json = ("content-type", "application/json".to_owned());
        match self {
            Neighbour::JsChat => {
                let body = json!({ "id": format!("m-{n}"), "type": "message", "from": "alice", "text": "still here" })
                    .to_string();
                let signature = meta::sign(&SecretString::from(SECRET), body.as_bytes());
                let hex = signature.trim_start_matches("sha256=").to_owned();
                Signed::new(&path, vec![json, ("x-signature", hex)], body)
            }
            Neighbour::Telegram => {
                let body = json!({
                    "update_id": n,
                    "message": {
                        "message_id": n,
                        "from": {"id": 7, "is_bot": false, "first_name": "Bo"},
                        "chat": {"id": 7, "type": "private", "first_name": "Bo"},
                        "date": 1_700_000_000,
                        "text": "still here"
                    }
                })
                .to_string();
                let token = ("x-telegram-bot-api-secret-token", SECRET.to_owned());
                Signed::new(&path, vec![json, token], body)
            }
        }
    }
}

/// The channel service serving `neighbour` and a hostile instance doing `behaviour`.
async fn start(neighbour: Neighbour, behaviour: &str) -> Harness {
    let mesh = Harness::start_with(false, |env| serve_guests(&mut env.config)).await;
    let (plugin, _, config) = neighbour.plugin();
    mesh.serve_within(plugin, STEADY, config, FIRST).await;
    mesh.serve_within(HOSTILE, SUBJECT, json!({ "behaviour": behaviour }), FIRST)
        .await;
    mesh
}

/// A webhook to the hostile instance (whatever it carries, it is never accepted).
fn to_hostile() -> Signed {
    Signed::new(
        &format!("/webhooks/{}/{SUBJECT}", channel_name(HOSTILE_ENTRYPOINT)),
        vec![("content-type", "application/json".into())],
        json!({ "id": "h-1", "text": "verify me" }).to_string(),
    )
}

/// Posts to the hostile instance; checks the answer is a 5xx naming `needle` within the call
/// limit and nothing of it was stored.
async fn refused(mesh: &Harness, needle: &str) {
    let began = Instant::now();
    let (status, body) = mesh.post(&to_hostile()).await;
    let took = began.elapsed();
    eprintln!(
        "the hostile webhook was answered {status} in {took:?}: {}",
        body.trim()
    );
    assert!((500..600).contains(&status), "{status}: {body}");
    assert!(body.contains(needle), "wanted `{needle}` in: {body}");
    assert!(took < CALL_LIMIT_AND_SLACK, "answered after {took:?}");
    let channel = channel_name(HOSTILE_ENTRYPOINT);
    assert_eq!(mesh.stored_webhooks(&channel, SUBJECT).await, 0);
}

/// Posts webhook `n` to the well-behaved instance and checks it is accepted and stored, the
/// `n`-th of that instance.
async fn accepted(mesh: &Harness, neighbour: Neighbour, n: u64) {
    let (status, body) = mesh.post(&neighbour.signed(n)).await;
    assert_eq!(status, 200, "{body}");
    let channel = neighbour.plugin().1;
    assert_eq!(mesh.stored_webhooks(&channel, STEADY).await, n);
}

/// The whole check for a hostile `behaviour` answered with an error naming `needle`: refused
/// (again on a guest made anew), while and after which `neighbour` accepts webhooks; at least
/// `min_during` of them while a hostile verification runs.
async fn refused_while_others_are_accepted(
    neighbour: Neighbour,
    behaviour: &str,
    needle: &str,
    min_during: u64,
) {
    let mesh = start(neighbour, behaviour).await;
    let mut n = 1;
    accepted(&mesh, neighbour, n).await;

    // While the hostile verification runs, the well-behaved instance answers, one webhook
    // every 100 ms.
    let hostile = {
        let (http, url, request) = (mesh.http.clone(), mesh.base_url(), to_hostile());
        tokio::spawn(async move {
            let answer = http
                .post(format!("{url}{}", request.path))
                .header("content-type", "application/json")
                .body(request.body)
                .send()
                .await
                .unwrap();
            (answer.status().as_u16(), answer.text().await.unwrap())
        })
    };
    let mut during = 0;
    while !hostile.is_finished() {
        tokio::time::sleep(Duration::from_millis(100)).await;
        n += 1;
        accepted(&mesh, neighbour, n).await;
        during += 1;
    }
    let (status, body) = hostile.await.unwrap();
    assert!((500..600).contains(&status), "{status}: {body}");
    assert!(body.contains(needle), "wanted `{needle}` in: {body}");
    assert!(
        during >= min_during,
        "{during} webhooks accepted while the hostile one was verified"
    );

    refused(&mesh, needle).await;
    refused(&mesh, needle).await;
    accepted(&mesh, neighbour, n + 1).await;
    let (status, body) = readyz(&mesh).await;
    assert_eq!((status, &body["ready"]), (200, &json!(true)), "{body}");
    mesh.stop().await;
}

/// The channel service's `/readyz`: status and body.
async fn readyz(mesh: &Harness) -> (u16, Value) {
    let answer = mesh
        .http
        .get(format!("{}/readyz", mesh.base_url()))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .unwrap();
    (answer.status().as_u16(), answer.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verification_that_loops_is_answered_5xx_at_the_call_limit_and_stores_nothing() {
    // Its call runs a second: the other channel is answered many times meanwhile.
    refused_while_others_are_accepted(Neighbour::Telegram, "loop", "call exceeded 1 s of CPU", 5)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verification_that_traps_is_answered_5xx_and_stores_nothing() {
    refused_while_others_are_accepted(Neighbour::Telegram, "trap", "the plugin trapped", 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verification_that_exhausts_memory_is_answered_5xx_and_stores_nothing() {
    refused_while_others_are_accepted(
        Neighbour::Telegram,
        "bomb",
        "memory limit 32 MiB exceeded",
        0,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_javascript_channel_beside_one_that_loops_keeps_accepting_webhooks() {
    refused_while_others_are_accepted(Neighbour::JsChat, "loop", "call exceeded 1 s of CPU", 5)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verification_that_traps_is_the_instances_last_error() {
    let mesh = start(Neighbour::Telegram, "trap").await;
    refused(&mesh, "the plugin trapped").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let view = mesh.client().instance(SUBJECT).await.unwrap();
        if view.state == "failed" {
            let error = view.last_error.unwrap_or_default();
            assert!(error.contains("the plugin trapped"), "{error}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{SUBJECT} is {} in the plugin manager, last error {:?}",
            view.state,
            view.last_error
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    mesh.stop().await;
}
