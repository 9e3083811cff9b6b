//! The mapping to the wire: each refusal keeps the code and words it always had, and its code
//! is one the requests that can meet it declare.

#![allow(clippy::unwrap_used)]

use tributary_proto::manifest::Permission;
use tributary_proto::requests::{catalog, ApiError, ConfigProblem, ErrorCode};
use tributary_proto::ServiceName;

use super::RegistryError::{self, *};
use crate::adding::Refusal;
use crate::keys::SealError;
use crate::store::StoreError;

fn problem(path: &str) -> ConfigProblem {
    ConfigProblem {
        path: path.to_owned(),
        message: "is required".to_owned(),
    }
}

fn permission(p: &str) -> Permission {
    p.parse().unwrap()
}

/// One error of every variant, as the manager makes them.
async fn one_of_each() -> Vec<RegistryError> {
    let panicked = tokio::spawn(async { panic!("scan") }).await.unwrap_err();
    let add_panicked = tokio::spawn(async { panic!("add") }).await.unwrap_err();
    vec![
        InvalidInstanceId("a b".into()),
        InvalidPermission("network:sideways:x".parse::<Permission>().unwrap_err()),
        NulByte("actor"),
        NotOneOf {
            field: "state",
            allowed: vec!["installed", "enabled"],
            got: "asleep".into(),
        },
        AuditLimit(0),
        UnknownPlugin("com.example.none".into()),
        UnknownInstance("ghost".into()),
        NothingToUninstall("ghost".into()),
        AlreadyExists("work".into()),
        Uninstalled {
            instance_id: "gone".into(),
            plugin_id: "com.example.contacts".into(),
        },
        KeptForAnotherPlugin {
            instance_id: "gone".into(),
            plugin_id: "com.example.contacts".into(),
        },
        PurgePending {
            instance_id: "gone".into(),
            left: 3,
        },
        UpToDate {
            instance_id: "work".into(),
            plugin_id: "com.example.contacts".into(),
            version: "1.0.0".into(),
        },
        MalformedConfig(vec![problem("/a")]),
        ConfigNotAnObject,
        InvalidConfig {
            plugin_id: "com.example.contacts".into(),
            problems: vec![problem("/server")],
        },
        ConfigIncomplete {
            instance_id: "work".into(),
            problems: vec![problem("/password")],
        },
        ConfigUnfitForVersion {
            instance_id: "work".into(),
            version: "2.0.0".into(),
            problems: vec![problem("/tenant")],
        },
        PermissionsNotAccepted {
            plugin_id: "com.example.contacts".into(),
            missing: vec![permission("data:write:persons")],
            asked: vec![
                permission("network:outbound:*.example.com"),
                permission("data:write:persons"),
            ],
        },
        UpgradeHeld {
            instance_id: "work".into(),
            plugin_id: "com.example.contacts".into(),
            from: "1.0.0".into(),
            to: "2.0.0".into(),
            missing: vec![
                permission("data:write:persons"),
                permission("network:inbound"),
            ],
        },
        Store(StoreError::Database(sqlx::Error::PoolTimedOut)),
        SecretUnreadable {
            instance_id: "work".into(),
            field: "password".into(),
            source: SealError::Tampered("k1".into()),
        },
        ScanFailed(panicked),
        PurgeNotPublished {
            instance_id: "work".into(),
            subject: "connector.items.work".into(),
            reason: "no stream".into(),
        },
        NoAuth {
            instance_id: "work".into(),
            plugin_id: "com.example.contacts".into(),
        },
        NoOAuthClient {
            provider: "microsoft".into(),
            redirect_uri: "https://hub.example.com/oauth/callback".into(),
            instance_field: Some("clientId".into()),
        },
        ProviderSetup(tributary_proto::oauth::ProviderSetupError {
            key: "oauth.providers.microsoft.tenant".into(),
            message: "client credentials need the tenant's id or domain, not `common`".into(),
        }),
        OAuthConfig(tributary_kit::ConfigError::new(
            "oauth.providers.github.client_secret",
            "cannot read the file",
        )),
        NotConnected {
            instance_id: "mail".into(),
            provider: "google".into(),
        },
        ReconnectNeeded {
            instance_id: "mail".into(),
            reason: "google refused the refresh: invalid_grant".into(),
        },
        ClientRejected {
            provider: "github".into(),
            reason: "incorrect_client_credentials".into(),
        },
        TokenEndpoint {
            provider: "microsoft".into(),
            reason: "the token endpoint answered 503".into(),
        },
        UnknownAttempt(uuid::Uuid::nil()),
        SecretsNotReentered {
            instance_id: "work".into(),
            moves: "`apiBaseUrl` from https://api.example.com:443 to https://attacker.example:443"
                .into(),
            problems: vec![problem("/token")],
        },
        OtherPluginType {
            verb: "runtime",
            asked: "connector",
            instance_id: "desk".into(),
        },
        NoPluginType("token"),
        PluginRefused(Refusal::AlreadyAdded {
            id: "com.example.tasks".into(),
            version: "1.0.0".into(),
            path: "/var/lib/tributary/plugins/com.example.tasks/1.0.0".into(),
        }),
        PluginRefused(Refusal::Escapes {
            entry: "`../x` in the uploaded archive".into(),
        }),
        PluginRefused(Refusal::Io {
            what: "cannot create",
            path: "/var/lib/tributary/.plugins-incoming/x".into(),
            cause: std::io::Error::other("disk full"),
        }),
        AddFailed(add_panicked),
        TimelineLimit(0),
        TimelineCursor("yesterday".into()),
    ]
}

/// The requests whose use case locks a live instance first (`lock_live`).
const ON_A_LIVE_INSTANCE: &[&str] = &["configure", "enable", "disable", "upgrade", "heartbeat"];

/// The verbs of the `plugins.*` requests whose handler can meet `e`. No `_` arm: a new
/// variant does not compile until it says where it can be met.
fn met_by(e: &RegistryError) -> Vec<&'static str> {
    let live = |more: &[&'static str]| [ON_A_LIVE_INSTANCE, more].concat();
    match e {
        InvalidInstanceId(_) | AlreadyExists(_) | KeptForAnotherPlugin { .. } => vec!["install"],
        PurgePending { .. } | PermissionsNotAccepted { .. } => vec!["install"],
        InvalidPermission(_) => vec!["install", "upgrade"],
        // `actor` on every change, `instance_id` on the audit read.
        NulByte(_) => live(&["install", "uninstall", "audit", "connect"]),
        NotOneOf { .. } => vec!["instances"],
        AuditLimit(_) => vec!["audit"],
        UnknownPlugin(_) => vec!["info", "install"],
        UnknownInstance(_) => live(&[
            "instance",
            "runtime",
            "install",
            "uninstall",
            "connect",
            "token",
        ]),
        NothingToUninstall(_) | PurgeNotPublished { .. } => vec!["uninstall"],
        Uninstalled { .. } => live(&["connect", "token"]),
        UpToDate { .. } | UpgradeHeld { .. } | ConfigUnfitForVersion { .. } => vec!["upgrade"],
        MalformedConfig(_) | ConfigNotAnObject | InvalidConfig { .. } => {
            vec!["install", "configure"]
        }
        ConfigIncomplete { .. } => vec!["enable"],
        Store(_) => live(&[
            "rescan",
            "instances",
            "instance",
            "runtime",
            "install",
            "uninstall",
            "audit",
            "connect",
            "connect_status",
            "token",
        ]),
        SecretUnreadable { .. } => vec![
            "runtime",
            "install",
            "configure",
            "enable",
            "upgrade",
            "connect",
            "token",
        ],
        ScanFailed(_) => vec!["rescan"],
        NoAuth { .. } | NoOAuthClient { .. } | ProviderSetup(_) | OAuthConfig(_) => {
            vec!["connect", "token"]
        }
        NotConnected { .. } => vec!["enable", "token"],
        ReconnectNeeded { .. } | ClientRejected { .. } | TokenEndpoint { .. } => vec!["token"],
        UnknownAttempt(_) => vec!["connect_status"],
        SecretsNotReentered { .. } => vec!["configure"],
        OtherPluginType { .. } | NoPluginType(_) => vec!["runtime", "token", "heartbeat"],
        // Only over HTTP (`POST /api/v1/plugins`) and the console: no `plugins.*` request.
        PluginRefused(_) | AddFailed(_) => vec![],
        // Only over HTTP (`GET /api/v1/instances/<id>/timeline`) and the console.
        TimelineLimit(_) | TimelineCursor(_) => vec![],
    }
}

#[tokio::test]
async fn every_refusal_is_answered_with_a_code_its_requests_declare() {
    let requests: Vec<_> = catalog()
        .into_iter()
        .filter(|entry| entry.service == ServiceName::PluginManager)
        .collect();
    for e in one_of_each().await {
        let verbs = met_by(&e);
        let shown = format!("{e:?}");
        let code = ApiError::from(e).error;
        for verb in &verbs {
            let entry = requests
                .iter()
                .find(|entry| entry.verb == *verb)
                .unwrap_or_else(|| panic!("no request plugins.{verb} in the catalog"));
            assert!(
                entry.errors.contains(&code),
                "plugins.{verb} can answer {shown} as `{}`, which it does not declare ({:?})",
                code.as_str(),
                entry.errors
            );
        }
    }
}

#[tokio::test]
async fn each_refusal_keeps_its_code_message_and_lists() {
    let answered: Vec<ApiError> = one_of_each()
        .await
        .into_iter()
        .map(ApiError::from)
        .collect();
    let expected: [(ErrorCode, &str); 42] = [
        (
            ErrorCode::BadRequest,
            "instance id `a b` must be 1 to 64 letters, digits, `-` or `_`",
        ),
        (
            ErrorCode::BadRequest,
            "`network:sideways:x` is not a valid permission: ",
        ),
        (
            ErrorCode::BadRequest,
            "`actor` contains a NUL byte (\\u0000), which is not allowed",
        ),
        (
            ErrorCode::BadRequest,
            "`state` must be one of installed, enabled; got \"asleep\"",
        ),
        (
            ErrorCode::BadRequest,
            "`limit` must be from 1 to 10000; got 0",
        ),
        (
            ErrorCode::NotFound,
            "no valid plugin `com.example.none`; `tributary plugins list` shows those found",
        ),
        (
            ErrorCode::NotFound,
            "no instance `ghost`; `tributary plugins list` shows the installed ones",
        ),
        (ErrorCode::NotFound, "no instance `ghost`"),
        (ErrorCode::Conflict, "an instance `work` already exists"),
        (
            ErrorCode::Conflict,
            "`gone` is uninstalled (its configuration, credentials and data are kept): bring it \
             back with `tributary plugins install com.example.contacts --id gone`, or delete it \
             with `tributary plugins uninstall gone --purge`",
        ),
        (
            ErrorCode::Conflict,
            "`gone` was an instance of `com.example.contacts`, uninstalled with its configuration \
             and data kept; install `com.example.contacts` under this id to bring it back, or \
             purge it (`tributary plugins uninstall gone --purge`) to reuse the id",
        ),
        (
            ErrorCode::Conflict,
            "the purge of an earlier instance `gone` is not applied yet: the ETL has 3 of its \
             items left to forget; is the ETL running? Install it again once the ETL has caught \
             up, or send the purge again with `tributary plugins uninstall gone --purge`",
        ),
        (
            ErrorCode::Conflict,
            "`work` already runs the newest version found of `com.example.contacts` (1.0.0)",
        ),
        (ErrorCode::InvalidConfig, "the configuration is not valid"),
        (
            ErrorCode::InvalidConfig,
            "the configuration must be a JSON object",
        ),
        (
            ErrorCode::InvalidConfig,
            "the configuration does not satisfy the config schema of `com.example.contacts`",
        ),
        (
            ErrorCode::InvalidConfig,
            "`work` cannot be enabled until its configuration is complete",
        ),
        (
            ErrorCode::InvalidConfig,
            "`work`'s configuration does not satisfy version 2.0.0; configure it for that \
             version first, or disable it",
        ),
        (
            ErrorCode::PermissionsNotAccepted,
            "installing `com.example.contacts` needs its permissions accepted; not accepted: \
             data:write:persons",
        ),
        (
            ErrorCode::PermissionsNotAccepted,
            "version 2.0.0 of `com.example.contacts` asks for more permissions; `work` stays on \
             1.0.0 until they are accepted: data:write:persons, network:inbound",
        ),
        (
            ErrorCode::Internal,
            "the registry failed; the plugin manager's log has the cause",
        ),
        (
            ErrorCode::Internal,
            "the secret `password` of `work` cannot be opened: the secret does not authenticate \
             under key k1: it was altered or moved",
        ),
        (ErrorCode::Internal, "plugin scan failed: task "),
        (
            ErrorCode::Internal,
            "cannot publish the purge of `work` to `connector.items.work`: no stream; nothing \
             was uninstalled",
        ),
        (
            ErrorCode::Conflict,
            "`work` (com.example.contacts) does not connect to an account: its plugin's \
             manifest has no `auth` section",
        ),
        (
            ErrorCode::InvalidConfig,
            "no OAuth client for `microsoft`: register one with the provider (redirect URI \
             https://hub.example.com/oauth/callback) and set \
             `oauth.providers.microsoft.client_id` and `client_secret`, or the instance's \
             `clientId`",
        ),
        (
            ErrorCode::InvalidConfig,
            "`oauth.providers.microsoft.tenant`: client credentials need the tenant's id",
        ),
        (
            ErrorCode::InvalidConfig,
            "invalid configuration: `oauth.providers.github.client_secret`: cannot read",
        ),
        (
            ErrorCode::Conflict,
            "`mail` is not connected to its google account yet: run `tributary plugins \
             connect mail`",
        ),
        (
            ErrorCode::Conflict,
            "reconnect needed: google refused the refresh: invalid_grant; run `tributary \
             plugins connect mail`",
        ),
        (
            ErrorCode::InvalidConfig,
            "`github` refused the OAuth client: incorrect_client_credentials; check \
             `oauth.providers.github` (or the instance's own client)",
        ),
        (
            ErrorCode::Internal,
            "the token endpoint of `microsoft` failed: the token endpoint answered 503; the \
             refresh is tried again",
        ),
        (
            ErrorCode::NotFound,
            "no connect attempt `00000000-0000-0000-0000-000000000000`",
        ),
        (
            ErrorCode::InvalidConfig,
            "`work`'s change moves `apiBaseUrl` from https://api.example.com:443 to \
             https://attacker.example:443; give its stored secrets again in the same request",
        ),
        (
            ErrorCode::NotFound,
            "no connector instance `desk`: plugins.runtime.connector answers only about \
             connector instances",
        ),
        (
            ErrorCode::BadRequest,
            "plugins.token.<plugin type>: the subject's last token must be `connector` or \
             `channel`",
        ),
        // The API's words for `--replace`, and no path of the server's.
        (
            ErrorCode::Conflict,
            "`com.example.tasks` 1.0.0 is already added; `?replace=true` replaces it",
        ),
        (
            ErrorCode::BadRequest,
            "`../x` in the uploaded archive would be written outside the plugin's directory",
        ),
        (
            ErrorCode::Internal,
            "the plugin manager could not write the plugin's files; its log has the cause",
        ),
        (ErrorCode::Internal, "adding the plugin failed: task "),
        (
            ErrorCode::BadRequest,
            "`limit` must be from 1 to 200; got 0",
        ),
        (
            ErrorCode::BadRequest,
            "`before` must be the `next` of an earlier page (`<micros>-<a|t><seq>`); got \"yesterday\"",
        ),
    ];
    assert_eq!(answered.len(), expected.len());
    for (e, (code, message)) in answered.iter().zip(expected) {
        assert_eq!(e.error, code, "{e:?}");
        assert!(
            e.message.starts_with(message),
            "{:?}\nnot {message:?}",
            e.message
        );
    }
    let lists = |i: usize| {
        (
            answered[i].problems.clone(),
            answered[i].permissions.clone(),
        )
    };
    assert_eq!(lists(13).0[0].path, "/a");
    assert_eq!(
        lists(14).0,
        [ConfigProblem {
            path: String::new(),
            message: "must be an object".into()
        }]
    );
    assert_eq!(lists(15).0[0].path, "/server");
    assert_eq!(lists(16).0[0].path, "/password");
    assert_eq!(lists(17).0[0].path, "/tenant");
    // An install lists every permission to accept; a held upgrade only the new ones.
    assert_eq!(
        lists(18).1,
        ["network:outbound:*.example.com", "data:write:persons"]
    );
    assert_eq!(lists(19).1, ["data:write:persons", "network:inbound"]);
    assert_eq!(lists(33).0[0].path, "/token");
    for (i, e) in answered.iter().enumerate() {
        if !(13..=17).contains(&i) && i != 33 {
            assert!(e.problems.is_empty(), "{e:?}");
        }
        if !(18..=19).contains(&i) {
            assert!(e.permissions.is_empty(), "{e:?}");
        }
    }
}
