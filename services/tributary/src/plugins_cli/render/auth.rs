//! What `tributary plugins info` and `plugins connect` print about an instance's connection to
//! its account: the Auth section of the instance page, times as people say them ("in 52 min",
//! "expired 3 min ago"), and the scopes asked for but not granted. Every function takes `now`,
//! so the text can be checked without a clock.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use tributary_proto::requests::plugins::{AuthStatus, AuthView};

/// The command that connects (or reconnects) `instance_id`.
pub fn connect_command(instance_id: &str) -> String {
    format!("tributary plugins connect {instance_id}")
}

/// A span of time as people say it: `45 s`, `52 min`, `3 h 5 min`, `2 days`.
pub fn span(seconds: i64) -> String {
    let s = seconds.unsigned_abs();
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..172_800 => match (s % 3600) / 60 {
            0 => format!("{} h", s / 3600),
            m => format!("{} h {m} min", s / 3600),
        },
        _ => format!("{} days", s / 86_400),
    }
}

/// When a token expires, from `now`: `in 52 min`, `expired 3 min ago`, `does not expire`.
pub fn expires_in(expires_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    let Some(at) = expires_at else {
        return "does not expire".to_owned();
    };
    let left = (at - now).num_seconds();
    if left >= 0 {
        format!("in {} ({})", span(left), timestamp(at))
    } else {
        format!("expired {} ago ({})", span(left), timestamp(at))
    }
}

/// A past moment with how long ago it was: `2026-12-01 17:36:03 UTC (3 min ago)`; `never`.
pub fn ago(at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match at {
        None => "never".to_owned(),
        Some(at) => {
            let past = (now - at).num_seconds().max(0);
            format!("{} ({} ago)", timestamp(at), span(past))
        }
    }
}

/// A moment as the instance page writes it.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// The scopes of a consent URL's `scope` (and Slack's `user_scope`) parameter: what was asked
/// for, whichever separator the provider takes (a space, or Slack's comma).
pub fn asked_scopes(consent_url: &str) -> Vec<String> {
    let Ok(url) = reqwest::Url::parse(consent_url) else {
        return Vec::new();
    };
    let mut scopes: Vec<String> = Vec::new();
    for (name, value) in url.query_pairs() {
        if name == "scope" || name == "user_scope" {
            for scope in value.split([' ', ',']).filter(|s| !s.is_empty()) {
                if !scopes.iter().any(|s| s == scope) {
                    scopes.push(scope.to_owned());
                }
            }
        }
    }
    scopes
}

/// Scopes that ask for a refresh token or an identity rather than for access to data:
/// providers often leave them out of the scopes they answer with, so their absence says
/// nothing.
const IMPLICIT_SCOPES: [&str; 4] = ["offline_access", "openid", "profile", "email"];

/// The scopes of `asked` the provider did not grant. A provider may answer a scope by its
/// short name (Microsoft answers `Mail.Read` for `https://graph.microsoft.com/Mail.Read`), so
/// a scope counts as granted when its last path segment is; case is ignored.
pub fn missing_scopes(asked: &[String], granted: &[String]) -> Vec<String> {
    let short = |s: &str| s.rsplit('/').next().unwrap_or(s).to_lowercase();
    asked
        .iter()
        .filter(|scope| !IMPLICIT_SCOPES.contains(&scope.as_str()))
        .filter(|scope| {
            !granted
                .iter()
                .any(|g| g.eq_ignore_ascii_case(scope) || short(g) == short(scope))
        })
        .cloned()
        .collect()
}

/// The Auth section of `plugins info <instance>`: where the connection stands, for whom,
/// with which scopes, until when, how the refreshes go, and what to run when it needs a person.
pub fn section(auth: &AuthView, instance_id: &str, now: DateTime<Utc>) -> String {
    let mut out = String::from("\nAuth:\n");
    let line = |out: &mut String, label: &str, value: &str| {
        let _ = writeln!(out, "  {:<20}{value}", format!("{label}:"));
    };
    line(
        &mut out,
        "provider",
        &format!("{} ({})", auth.provider, auth.grant),
    );
    let status = match auth.status {
        AuthStatus::NotConnected => "not connected",
        AuthStatus::Connected => "connected",
        AuthStatus::NeedsReconnect => "needs reconnect",
    };
    line(&mut out, "status", status);
    if auth.status == AuthStatus::NotConnected {
        let _ = writeln!(
            out,
            "  Not connected yet: run `{}`.",
            connect_command(instance_id)
        );
        return out;
    }
    line(
        &mut out,
        "connected as",
        auth.connected_as
            .as_deref()
            .unwrap_or("(the provider does not say)"),
    );
    let scopes = if auth.scopes.is_empty() {
        "(none listed by the provider)".to_owned()
    } else {
        auth.scopes.join(" ")
    };
    line(&mut out, "scopes", &scopes);
    line(&mut out, "expires", &expires_in(auth.expires_at, now));
    line(&mut out, "connected", &ago(auth.connected_at, now));
    line(&mut out, "last refresh", &ago(auth.last_refresh_at, now));
    if let Some(error) = &auth.last_refresh_error {
        line(
            &mut out,
            "last refresh error",
            &format!("{error} (retried; the connection stands)"),
        );
    }
    if auth.status == AuthStatus::NeedsReconnect {
        let reason = auth
            .reconnect_reason
            .as_deref()
            .unwrap_or("the provider no longer accepts the grant");
        let _ = writeln!(
            out,
            "  Needs reconnect: {reason} — run `{}`",
            connect_command(instance_id)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap()
    }

    fn connected() -> AuthView {
        AuthView {
            provider: "microsoft".into(),
            grant: "authorization_code".into(),
            status: AuthStatus::Connected,
            connected_as: Some("ada@example.com".into()),
            scopes: vec!["offline_access".into(), "Mail.Read".into()],
            expires_at: Some(now() + chrono::Duration::minutes(52)),
            connected_at: Some(now() - chrono::Duration::hours(3)),
            last_refresh_at: Some(now() - chrono::Duration::minutes(8)),
            last_refresh_error: None,
            reconnect_reason: None,
        }
    }

    #[test]
    fn expiry_is_said_as_people_say_it() {
        let at = |minutes| Some(now() + chrono::Duration::minutes(minutes));
        assert!(expires_in(at(52), now()).starts_with("in 52 min ("));
        assert!(expires_in(at(-3), now()).starts_with("expired 3 min ago ("));
        assert!(expires_in(at(185), now()).starts_with("in 3 h 5 min ("));
        assert_eq!(expires_in(None, now()), "does not expire");
        assert_eq!(span(45), "45 s");
        assert_eq!(span(3 * 86_400), "3 days");
    }

    #[test]
    fn a_connected_instance_shows_who_scopes_expiry_and_refreshes() {
        let text = section(&connected(), "mail", now());
        assert!(text.contains("  status:             connected\n"), "{text}");
        assert!(
            text.contains("  connected as:       ada@example.com\n"),
            "{text}"
        );
        assert!(
            text.contains("  scopes:             offline_access Mail.Read\n"),
            "{text}"
        );
        assert!(text.contains("  expires:            in 52 min ("), "{text}");
        assert!(
            text.contains("  last refresh:       2026-12-01 11:52:00 UTC (8 min ago)\n"),
            "{text}"
        );
        assert!(!text.contains("Needs reconnect"), "{text}");
    }

    #[test]
    fn a_failed_refresh_that_kept_the_grant_is_shown_as_retried() {
        let mut auth = connected();
        auth.last_refresh_error = Some("microsoft is failing for now".into());
        let text = section(&auth, "mail", now());
        assert!(
            text.contains("  last refresh error: microsoft is failing for now (retried; the connection stands)\n"),
            "{text}"
        );
    }

    #[test]
    fn needs_reconnect_names_the_reason_and_the_command() {
        let mut auth = connected();
        auth.status = AuthStatus::NeedsReconnect;
        auth.reconnect_reason = Some("invalid_grant: the refresh token was revoked".into());
        let text = section(&auth, "mail", now());
        assert!(
            text.contains("  status:             needs reconnect\n"),
            "{text}"
        );
        assert!(
            text.contains("  Needs reconnect: invalid_grant: the refresh token was revoked — run `tributary plugins connect mail`\n"),
            "{text}"
        );
    }

    #[test]
    fn not_connected_says_what_to_run() {
        let mut auth = connected();
        auth.status = AuthStatus::NotConnected;
        let text = section(&auth, "mail", now());
        assert!(
            text.contains("Not connected yet: run `tributary plugins connect mail`."),
            "{text}"
        );
        assert!(!text.contains("expires"), "{text}");
    }

    #[test]
    fn asked_scopes_come_from_the_consent_url_with_either_separator() {
        let microsoft = "https://login.example/authorize?client_id=x&scope=offline_access+https%3A%2F%2Fgraph.microsoft.com%2FMail.Read&state=s";
        assert_eq!(
            asked_scopes(microsoft),
            ["offline_access", "https://graph.microsoft.com/Mail.Read"]
        );
        let slack = "https://slack.example/oauth/v2/authorize?scope=chat%3Awrite%2Cchannels%3Aread&user_scope=search%3Aread";
        assert_eq!(
            asked_scopes(slack),
            ["chat:write", "channels:read", "search:read"]
        );
        assert!(asked_scopes("not a url").is_empty());
    }

    #[test]
    fn a_scope_granted_by_its_short_name_is_not_missing() {
        let asked: Vec<String> = [
            "offline_access",
            "https://graph.microsoft.com/Mail.Read",
            "https://graph.microsoft.com/Calendars.Read",
        ]
        .map(String::from)
        .to_vec();
        let granted = vec!["Mail.Read".to_owned(), "User.Read".to_owned()];
        assert_eq!(
            missing_scopes(&asked, &granted),
            ["https://graph.microsoft.com/Calendars.Read"]
        );
    }
}
