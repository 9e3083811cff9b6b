//! Webhook signature schemes, exactly as each provider documents them, for a channel's
//! [`crate::ChannelPlugin::verify_webhook`]. Every comparison is constant-time; schemes with a
//! timestamp refuse one outside the window. Each scheme also signs, for tests and for
//! channels that send signed webhooks themselves.
//!
//! | Scheme | Covers | Timestamp |
//! |---|---|---|
//! | [`twilio`] `X-Twilio-Signature` | URL + form parameters (or URL with `bodySHA256` for JSON) | none |
//! | [`slack`] `X-Slack-Signature` `v0=` | timestamp + body | `X-Slack-Request-Timestamp`, 5 min |
//! | [`standard_webhooks`] `webhook-signature` `v1,` | `webhook-id` + timestamp + body | `webhook-timestamp`, 5 min |
//! | [`meta`] `X-Hub-Signature-256` `sha256=` | body | none |
//! | [`telegram`] `X-Telegram-Bot-Api-Secret-Token` | nothing: a shared secret sent as is | none |

use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

/// How far a signed timestamp may be from now, either way, where a scheme has one.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// Why a signature did not verify. The message names the header and the problem, never the
/// secret or the expected signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The header carrying the signature (or its timestamp) is absent.
    #[error("the `{0}` header is missing")]
    Missing(&'static str),
    /// The header is there but cannot be read.
    #[error("the `{header}` header is malformed: {problem}")]
    Malformed {
        /// The header.
        header: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// The signature does not match the request: a wrong secret, or a changed body or URL.
    #[error("the `{0}` signature does not match the request")]
    Mismatch(&'static str),
    /// A scheme without a signature (Telegram's) sends a shared secret token as is, and the
    /// one received is not the one configured.
    #[error("the `{0}` secret token does not match the one configured")]
    TokenMismatch(&'static str),
    /// The signed timestamp is outside the window: a replay, or a clock far off.
    #[error(
        "the `{header}` timestamp is {} s {}, more than the {tolerance_secs} s allowed",
        age_secs.unsigned_abs(),
        if *age_secs >= 0 { "ago" } else { "from now" }
    )]
    Stale {
        /// The timestamp header.
        header: &'static str,
        /// How old it is, in seconds: negative for a timestamp in the future.
        age_secs: i64,
        /// The window, in seconds.
        tolerance_secs: u64,
    },
}

type HmacSha1 = Hmac<sha1::Sha1>;
type HmacSha256 = Hmac<sha2::Sha256>;

/// The HMAC `M` of `parts`, one after the other, keyed with `key`.
fn hmac<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    // An HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let mut mac = match <M as Mac>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return Vec::new(),
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    hmac::<HmacSha256>(key, parts)
}

fn hmac_sha1(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    hmac::<HmacSha1>(key, parts)
}

/// Constant-time equality of two byte strings (their lengths are not secret).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

fn check_window(
    header: &'static str,
    timestamp: i64,
    now: DateTime<Utc>,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    // Saturating: the timestamp is the caller's, and `i64::MIN` would overflow.
    let age = now.timestamp().saturating_sub(timestamp);
    if age.unsigned_abs() > tolerance.as_secs() {
        return Err(SignatureError::Stale {
            header,
            age_secs: age,
            tolerance_secs: tolerance.as_secs(),
        });
    }
    Ok(())
}

fn parse_timestamp(header: &'static str, value: &str) -> Result<i64, SignatureError> {
    value
        .trim()
        .parse::<i64>()
        .map_err(|_| SignatureError::Malformed {
            header,
            problem: "not a Unix timestamp in seconds".to_owned(),
        })
}

/// The Unix timestamp in `header`'s `value`, checked to be within `tolerance` of `now`.
fn timestamp_within(
    header: &'static str,
    value: &str,
    now: DateTime<Utc>,
    tolerance: Duration,
) -> Result<i64, SignatureError> {
    let timestamp = parse_timestamp(header, value)?;
    check_window(header, timestamp, now, tolerance)?;
    Ok(timestamp)
}

/// `Malformed` unless `signature` starts with the scheme's `prefix` (`v0=`, `sha256=`).
fn require_prefix(
    header: &'static str,
    signature: &str,
    prefix: &str,
) -> Result<(), SignatureError> {
    if signature.starts_with(prefix) {
        Ok(())
    } else {
        Err(SignatureError::Malformed {
            header,
            problem: format!("does not start with `{prefix}`"),
        })
    }
}

/// `Mismatch` unless the `signature` received (surrounding blanks aside) is the `expected`
/// one, compared in constant time.
fn require_match(
    header: &'static str,
    expected: &str,
    signature: &str,
) -> Result<(), SignatureError> {
    if constant_time_eq(expected.as_bytes(), signature.trim().as_bytes()) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch(header))
    }
}

/// Twilio's request validation: `X-Twilio-Signature` is the Base64 HMAC-SHA1, keyed with the
/// account's auth token, of the full URL Twilio called followed, for a form-encoded POST, by
/// every parameter name and value sorted by name. For a JSON body, the URL carries a
/// `bodySHA256` query parameter (the hex SHA-256 of the body) and the signature covers the
/// URL alone.
pub mod twilio {
    use super::*;

    /// The signature header.
    pub const HEADER: &str = "x-twilio-signature";

    /// The signature of a form-encoded POST to `url` with `params`.
    pub fn sign(auth_token: &SecretString, url: &str, params: &[(String, String)]) -> String {
        let mut sorted: Vec<&(String, String)> = params.iter().collect();
        sorted.sort();
        let mut data = url.to_owned();
        for (name, value) in sorted {
            data.push_str(name);
            data.push_str(value);
        }
        let mac = hmac_sha1(auth_token.expose_secret().as_bytes(), &[data.as_bytes()]);
        base64::engine::general_purpose::STANDARD.encode(mac)
    }

    /// Verifies a form-encoded POST (`params` from its body) or, when `url` has a
    /// `bodySHA256` parameter, a JSON POST whose `body` must hash to it.
    pub fn verify(
        auth_token: &SecretString,
        url: &str,
        params: &[(String, String)],
        body: &[u8],
        signature: Option<&str>,
    ) -> Result<(), SignatureError> {
        let signature = signature.ok_or(SignatureError::Missing("X-Twilio-Signature"))?;
        let body_hash = url::Url::parse(url).ok().and_then(|u| {
            u.query_pairs()
                .find(|(k, _)| k == "bodySHA256")
                .map(|(_, v)| v.into_owned())
        });
        let expected = match body_hash {
            Some(hash) => {
                use sha2::Digest as _;
                let actual = hex::encode(sha2::Sha256::digest(body));
                if !constant_time_eq(actual.as_bytes(), hash.to_ascii_lowercase().as_bytes()) {
                    return Err(SignatureError::Mismatch("X-Twilio-Signature"));
                }
                sign(auth_token, url, &[])
            }
            None => sign(auth_token, url, params),
        };
        require_match("X-Twilio-Signature", &expected, signature)
    }

    /// Verifies a JSON POST: `url` must carry `bodySHA256`, the hex SHA-256 of `body`, since
    /// the signature covers the URL alone. Without it nothing binds the body to the signature,
    /// and one signed URL would authenticate any body, forever, so it is refused.
    pub fn verify_json(
        auth_token: &SecretString,
        url: &str,
        body: &[u8],
        signature: Option<&str>,
    ) -> Result<(), SignatureError> {
        let names_body = url::Url::parse(url)
            .ok()
            .is_some_and(|u| u.query_pairs().any(|(k, _)| k == "bodySHA256"));
        if !names_body {
            return Err(SignatureError::Malformed {
                header: "X-Twilio-Signature",
                problem: "a JSON body must be named by `bodySHA256` in the signed URL; the \
                          signature alone covers only the URL"
                    .to_owned(),
            });
        }
        verify(auth_token, url, &[], body, signature)
    }
}

/// Slack's signed secrets: `X-Slack-Signature` is `v0=` and the hex HMAC-SHA256, keyed with
/// the app's signing secret, of `v0:<X-Slack-Request-Timestamp>:<body>`; the timestamp must be
/// within five minutes.
pub mod slack {
    use super::*;

    /// The signature header.
    pub const HEADER: &str = "x-slack-signature";
    /// The timestamp header.
    pub const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";

    /// The `X-Slack-Signature` value of `body` sent at `timestamp`.
    pub fn sign(signing_secret: &SecretString, timestamp: i64, body: &[u8]) -> String {
        let base = format!("v0:{timestamp}:");
        let mac = hmac_sha256(
            signing_secret.expose_secret().as_bytes(),
            &[base.as_bytes(), body],
        );
        format!("v0={}", hex::encode(mac))
    }

    /// Verifies a request's signature and timestamp at `now`.
    pub fn verify(
        signing_secret: &SecretString,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
        now: DateTime<Utc>,
        tolerance: Duration,
    ) -> Result<(), SignatureError> {
        let timestamp = timestamp.ok_or(SignatureError::Missing("X-Slack-Request-Timestamp"))?;
        let signature = signature.ok_or(SignatureError::Missing("X-Slack-Signature"))?;
        let timestamp = timestamp_within("X-Slack-Request-Timestamp", timestamp, now, tolerance)?;
        require_prefix("X-Slack-Signature", signature, "v0=")?;
        let expected = sign(signing_secret, timestamp, body);
        require_match("X-Slack-Signature", &expected, signature)
    }
}

/// Standard Webhooks (standardwebhooks.com): `webhook-signature` holds space-separated
/// `v1,<base64 HMAC-SHA256>` entries, keyed with the secret's bytes (given as `whsec_` and
/// Base64), over `<webhook-id>.<webhook-timestamp>.<body>`; the timestamp must be within five
/// minutes. Any one matching entry verifies, so secrets can be rotated.
pub mod standard_webhooks {
    use super::*;

    /// The delivery id header.
    pub const ID_HEADER: &str = "webhook-id";
    /// The timestamp header.
    pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
    /// The signature header.
    pub const SIGNATURE_HEADER: &str = "webhook-signature";

    /// The key of a `whsec_…` secret (the prefix is optional); `None` when it is not Base64.
    pub fn key_of(secret: &SecretString) -> Option<Vec<u8>> {
        let text = secret.expose_secret();
        let encoded = text.strip_prefix("whsec_").unwrap_or(text);
        base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .filter(|key| !key.is_empty())
    }

    /// The `webhook-signature` value (`v1,<base64>`) of a delivery.
    pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
        let prefix = format!("{id}.{timestamp}.");
        let mac = hmac_sha256(key, &[prefix.as_bytes(), body]);
        format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(mac)
        )
    }

    /// Verifies a delivery's signature and timestamp at `now`.
    pub fn verify(
        key: &[u8],
        id: Option<&str>,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
        now: DateTime<Utc>,
        tolerance: Duration,
    ) -> Result<(), SignatureError> {
        let id = id.ok_or(SignatureError::Missing("webhook-id"))?;
        let timestamp = timestamp.ok_or(SignatureError::Missing("webhook-timestamp"))?;
        let signature = signature.ok_or(SignatureError::Missing("webhook-signature"))?;
        let timestamp = timestamp_within("webhook-timestamp", timestamp, now, tolerance)?;
        let expected = sign(key, id, timestamp, body);
        let matched = signature
            .split_whitespace()
            .filter(|entry| entry.starts_with("v1,"))
            .fold(false, |found, entry| {
                constant_time_eq(expected.as_bytes(), entry.as_bytes()) | found
            });
        if matched {
            Ok(())
        } else if !signature.split_whitespace().any(|e| e.starts_with("v1,")) {
            Err(SignatureError::Malformed {
                header: "webhook-signature",
                problem: "no `v1,` signature in it".to_owned(),
            })
        } else {
            Err(SignatureError::Mismatch("webhook-signature"))
        }
    }
}

/// Meta's Graph API webhooks (WhatsApp Cloud API, Messenger): `X-Hub-Signature-256` is
/// `sha256=` and the hex HMAC-SHA256 of the body, keyed with the app secret. No timestamp.
pub mod meta {
    use super::*;

    /// The signature header.
    pub const HEADER: &str = "x-hub-signature-256";

    /// The `X-Hub-Signature-256` value of `body`.
    pub fn sign(app_secret: &SecretString, body: &[u8]) -> String {
        let mac = hmac_sha256(app_secret.expose_secret().as_bytes(), &[body]);
        format!("sha256={}", hex::encode(mac))
    }

    /// Verifies a delivery's signature.
    pub fn verify(
        app_secret: &SecretString,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<(), SignatureError> {
        let signature = signature.ok_or(SignatureError::Missing("X-Hub-Signature-256"))?;
        require_prefix("X-Hub-Signature-256", signature, "sha256=")?;
        let expected = sign(app_secret, body);
        require_match("X-Hub-Signature-256", &expected, signature)
    }

    /// Meta's subscription handshake (`GET ?hub.mode=subscribe&hub.verify_token=…&
    /// hub.challenge=…`): the challenge to echo when the token is the configured one.
    pub fn verify_handshake(
        verify_token: &SecretString,
        params: &[(String, String)],
    ) -> Result<String, SignatureError> {
        let get = |name: &str| {
            params
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        if get("hub.mode") != Some("subscribe") {
            return Err(SignatureError::Malformed {
                header: "hub.mode",
                problem: "must be `subscribe`".to_owned(),
            });
        }
        let token = get("hub.verify_token").ok_or(SignatureError::Missing("hub.verify_token"))?;
        let challenge = get("hub.challenge").ok_or(SignatureError::Missing("hub.challenge"))?;
        if constant_time_eq(token.as_bytes(), verify_token.expose_secret().as_bytes()) {
            Ok(challenge.to_owned())
        } else {
            Err(SignatureError::Mismatch("hub.verify_token"))
        }
    }
}

/// Telegram's webhook secret: the `secret_token` given to `setWebhook` comes back as is in
/// `X-Telegram-Bot-Api-Secret-Token`. It proves the sender knows the secret; it does not
/// cover the body, and there is no timestamp (the `update_id` makes a replay harmless).
pub mod telegram {
    use super::*;

    /// The secret header.
    pub const HEADER: &str = "x-telegram-bot-api-secret-token";

    /// Verifies the secret token.
    pub fn verify(secret_token: &SecretString, header: Option<&str>) -> Result<(), SignatureError> {
        let header = header.ok_or(SignatureError::Missing("X-Telegram-Bot-Api-Secret-Token"))?;
        if constant_time_eq(header.as_bytes(), secret_token.expose_secret().as_bytes()) {
            Ok(())
        } else {
            Err(SignatureError::TokenMismatch(
                "X-Telegram-Bot-Api-Secret-Token",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    fn at(ts: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(ts, 0).unwrap_or_default()
    }

    #[test]
    fn a_stale_timestamp_says_how_long_ago_and_a_future_one_how_far_ahead() {
        let now = at(1_700_000_000);
        let past = check_window(
            "X-Slack-Request-Timestamp",
            1_700_000_000 - 3600,
            now,
            DEFAULT_TOLERANCE,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            past,
            "the `X-Slack-Request-Timestamp` timestamp is 3600 s ago, more than the 300 s allowed"
        );
        let future = check_window(
            "webhook-timestamp",
            1_700_000_000 + 3600,
            now,
            DEFAULT_TOLERANCE,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            future,
            "the `webhook-timestamp` timestamp is 3600 s from now, more than the 300 s allowed"
        );
    }

    #[test]
    fn a_timestamp_at_either_end_of_i64_is_stale_not_an_overflow() {
        // Proves: an unauthenticated caller's `X-Slack-Request-Timestamp:
        // -9223372036854775808` (found by the slack_webhook fuzz target) is refused as stale,
        // where subtracting it from now overflowed and panicked.
        let now = at(1_700_000_000);
        for timestamp in [i64::MIN, i64::MAX] {
            let header = timestamp.to_string();
            let refused = timestamp_within("webhook-timestamp", &header, now, DEFAULT_TOLERANCE);
            assert!(
                matches!(refused, Err(SignatureError::Stale { .. })),
                "{timestamp}"
            );
        }
    }

    #[test]
    fn a_wrong_telegram_token_is_a_token_mismatch_not_a_signature() {
        let e = telegram::verify(&secret("the-secret-token"), Some("another")).unwrap_err();
        assert_eq!(
            e,
            SignatureError::TokenMismatch("X-Telegram-Bot-Api-Secret-Token")
        );
        assert!(!e.to_string().contains("signature"), "{e}");
        assert!(e.to_string().contains("secret token does not match"), "{e}");
    }

    /// Twilio's documented example (twilio.com/docs/usage/webhooks/webhooks-security).
    #[test]
    fn twilio_matches_the_documented_example() {
        let token = secret("12345");
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let params: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let signature = twilio::sign(&token, url, &params);
        assert_eq!(signature, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
        assert!(twilio::verify(&token, url, &params, b"", Some(&signature)).is_ok());
        let tampered_url = "https://mycompany.com/myapp.php?foo=1&bar=3";
        assert_eq!(
            twilio::verify(&token, tampered_url, &params, b"", Some(&signature)),
            Err(SignatureError::Mismatch("X-Twilio-Signature"))
        );
        let mut tampered = params.clone();
        tampered[2].1 = "9999".into();
        assert!(twilio::verify(&token, url, &tampered, b"", Some(&signature)).is_err());
        assert!(twilio::verify(&secret("54321"), url, &params, b"", Some(&signature)).is_err());
        assert_eq!(
            twilio::verify(&token, url, &params, b"", None),
            Err(SignatureError::Missing("X-Twilio-Signature"))
        );
    }

    #[test]
    fn twilio_json_bodies_are_checked_against_body_sha256() {
        use sha2::Digest as _;
        let token = secret("12345");
        let body = br#"{"a":1}"#;
        let url = format!(
            "https://example.com/hook?bodySHA256={}",
            hex::encode(sha2::Sha256::digest(body))
        );
        let signature = twilio::sign(&token, &url, &[]);
        assert!(twilio::verify(&token, &url, &[], body, Some(&signature)).is_ok());
        assert!(twilio::verify(&token, &url, &[], br#"{"a":2}"#, Some(&signature)).is_err());
    }

    /// Slack's documented example (api.slack.com/authentication/verifying-requests-from-slack).
    #[test]
    fn slack_matches_the_documented_example() {
        let signing = secret("8f742231b10e8888abcd99yyyzzz85a5");
        let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let expected = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
        assert_eq!(slack::sign(&signing, 1531420618, body), expected);
        let now = at(1531420618 + 60);
        let ok = slack::verify(
            &signing,
            Some("1531420618"),
            Some(expected),
            body,
            now,
            DEFAULT_TOLERANCE,
        );
        assert!(ok.is_ok());
        let stale = slack::verify(
            &signing,
            Some("1531420618"),
            Some(expected),
            body,
            at(1531420618 + 301),
            DEFAULT_TOLERANCE,
        );
        assert!(matches!(stale, Err(SignatureError::Stale { .. })));
        let tampered = slack::verify(
            &signing,
            Some("1531420618"),
            Some(expected),
            b"token=other",
            now,
            DEFAULT_TOLERANCE,
        );
        assert_eq!(tampered, Err(SignatureError::Mismatch("X-Slack-Signature")));
        assert_eq!(
            slack::verify(&signing, None, Some(expected), body, now, DEFAULT_TOLERANCE),
            Err(SignatureError::Missing("X-Slack-Request-Timestamp"))
        );
    }

    /// The Standard Webhooks reference test vector (standard-webhooks, libraries' tests).
    #[test]
    fn standard_webhooks_matches_the_reference_vector() {
        let key = standard_webhooks::key_of(&secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
            .unwrap_or_default();
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let ts = 1614265330;
        let body = br#"{"test": 2432232314}"#;
        let expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        assert_eq!(standard_webhooks::sign(&key, id, ts, body), expected);
        let now = at(ts + 10);
        let header = format!("v1,bm90IHRoaXMgb25l {expected}");
        assert!(standard_webhooks::verify(
            &key,
            Some(id),
            Some(&ts.to_string()),
            Some(&header),
            body,
            now,
            DEFAULT_TOLERANCE
        )
        .is_ok());
        let other_id = standard_webhooks::verify(
            &key,
            Some("msg_other"),
            Some(&ts.to_string()),
            Some(expected),
            body,
            now,
            DEFAULT_TOLERANCE,
        );
        assert_eq!(other_id, Err(SignatureError::Mismatch("webhook-signature")));
        let stale = standard_webhooks::verify(
            &key,
            Some(id),
            Some(&ts.to_string()),
            Some(expected),
            body,
            at(ts - 400),
            DEFAULT_TOLERANCE,
        );
        assert!(matches!(stale, Err(SignatureError::Stale { .. })));
        assert!(standard_webhooks::key_of(&secret("whsec_not base64!")).is_none());
    }

    #[test]
    fn meta_signatures_and_handshake() {
        let app = secret("app-secret");
        let body = br#"{"object":"whatsapp_business_account"}"#;
        let signature = meta::sign(&app, body);
        assert!(signature.starts_with("sha256="));
        assert!(meta::verify(&app, Some(&signature), body).is_ok());
        assert!(meta::verify(&app, Some(&signature), b"{}").is_err());
        assert!(meta::verify(&secret("other"), Some(&signature), body).is_err());
        assert!(matches!(
            meta::verify(&app, Some("abc"), body),
            Err(SignatureError::Malformed { .. })
        ));
        let params = |token: &str| {
            vec![
                ("hub.mode".to_owned(), "subscribe".to_owned()),
                ("hub.verify_token".to_owned(), token.to_owned()),
                ("hub.challenge".to_owned(), "1158201444".to_owned()),
            ]
        };
        let verify = secret("meatyhamhock");
        assert_eq!(
            meta::verify_handshake(&verify, &params("meatyhamhock")),
            Ok("1158201444".to_owned())
        );
        assert!(meta::verify_handshake(&verify, &params("wrong")).is_err());
    }

    #[test]
    fn telegram_secret_token() {
        let token = secret("s3cr3t-token");
        assert!(telegram::verify(&token, Some("s3cr3t-token")).is_ok());
        assert!(telegram::verify(&token, Some("s3cr3t-tokem")).is_err());
        assert_eq!(
            telegram::verify(&token, None),
            Err(SignatureError::Missing("X-Telegram-Bot-Api-Secret-Token"))
        );
    }

    #[test]
    fn errors_never_carry_the_secret() {
        let token = secret("very-secret-value");
        let error = telegram::verify(&token, Some("guess"))
            .unwrap_err()
            .to_string();
        assert!(!error.contains("very-secret-value"));
        assert!(!error.contains("guess"));
    }
}
