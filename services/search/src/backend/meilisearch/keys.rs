//! The search service's own Meilisearch API key: made, with the master key, by
//! `tributary meili provision` ([`provision_key`]), allowed only the actions the backend uses on
//! its two indexes; and the start-up check that refuses a key able to manage keys
//! ([`refuse_key_manager`]), which the master key and any `*` or `keys.get` key are: such a
//! key reads every key, the default admin key included.
//!
//! Meilisearch derives a key's value from its uid and the master key, so the key made here
//! with a uid fixed by the index name keeps its value from one provisioning to the next;
//! a key of that uid with other actions or indexes (a changed `search.index_name`, a newer
//! version's actions) is deleted and made again, with the same value.

use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::tasks::failed;
use crate::backend::SearchError;

/// Everything the backend asks of Meilisearch (besides `/health`, which needs no key): index
/// creation and settings, document writes and fetches, searches, the task polls, and a
/// rebuild's deletion and swap of indexes (with `indexes.get`: a key allowed only some indexes
/// is not shown a swap's task, so the swap is seen done when the live index's `createdAt` is
/// the newer of the two). Not `version`: Meilisearch refuses a global action on a key scoped to
/// indexes, so [`provision_key`] checks the server's version with the master key instead.
pub const ACTIONS: [&str; 9] = [
    "search",
    "documents.add",
    "documents.get",
    "indexes.create",
    "indexes.get",
    "indexes.delete",
    "indexes.swap",
    "settings.update",
    "tasks.get",
];

/// The indexes the backend works on: the live one and its rebuild.
pub fn indexes(index_name: &str) -> [String; 2] {
    [index_name.to_owned(), format!("{index_name}_rebuild")]
}

/// The uid of the search service's key for `index_name`: the same on every provisioning.
pub fn key_uid(index_name: &str) -> Uuid {
    let digest = Sha256::digest(format!("tributary-search-key:{index_name}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// What [`provision_key`] did.
#[derive(Debug)]
pub struct ProvisionedKey {
    /// The key's uid.
    pub uid: Uuid,
    /// Its value, for the search service alone.
    pub key: SecretString,
    /// Whether it was made (or made again) now, rather than found as it should be.
    pub created: bool,
}

fn http() -> Result<reqwest::Client, SearchError> {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(|e| failed("provision key", e.to_string()))
}

/// `{message} ({code})` of a Meilisearch error answer.
async fn refusal(response: reqwest::Response) -> String {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    match (body["message"].as_str(), body["code"].as_str()) {
        (Some(message), Some(code)) => format!("{status}: {message} ({code})"),
        _ => status.to_string(),
    }
}

/// Makes sure Meilisearch at `url` has the search service's key for `index_name`, with
/// exactly [`ACTIONS`] on exactly [`indexes`] and no expiry, asking with `master_key`, and
/// returns it. Run as often as wanted: a key already right is left alone.
pub async fn provision_key(
    url: &str,
    master_key: &SecretString,
    index_name: &str,
) -> Result<ProvisionedKey, SearchError> {
    let url = url.trim().trim_end_matches('/');
    let master = master_key.expose_secret().trim();
    let http = http()?;
    let uid = key_uid(index_name);
    let wanted_indexes = indexes(index_name);
    let send = |request: reqwest::RequestBuilder| async {
        request
            .bearer_auth(master)
            .send()
            .await
            .map_err(|e| failed("provision key", format!("cannot reach {url}: {e}")))
    };
    let found = send(http.get(format!("{url}/keys/{uid}"))).await?;
    if !matches!(found.status(), StatusCode::OK | StatusCode::NOT_FOUND) {
        return Err(failed(
            "provision key",
            format!(
                "GET /keys/{uid} was refused ({}); search.meilisearch_api_key must be Meilisearch's master key here",
                refusal(found).await
            ),
        ));
    }
    let version = send(http.get(format!("{url}/version"))).await?;
    if !version.status().is_success() {
        return Err(failed(
            "provision key",
            format!("GET /version was refused: {}", refusal(version).await),
        ));
    }
    let version: Value = version
        .json()
        .await
        .map_err(|e| failed("provision key", format!("GET /version: {e}")))?;
    super::tasks::require_version(version["pkgVersion"].as_str().unwrap_or_default())
        .map_err(|message| failed("provision key", message))?;
    if found.status() == StatusCode::OK {
        let key: Value = found
            .json()
            .await
            .map_err(|e| failed("provision key", e.to_string()))?;
        if is_as_wanted(&key, &wanted_indexes) {
            let value = key["key"].as_str().unwrap_or_default().to_owned();
            return Ok(ProvisionedKey {
                uid,
                key: SecretString::from(value),
                created: false,
            });
        }
        // A key's actions and indexes cannot be changed: delete it and make it again.
        let deleted = send(http.delete(format!("{url}/keys/{uid}"))).await?;
        if !deleted.status().is_success() {
            return Err(failed(
                "provision key",
                format!(
                    "cannot delete the outdated key {uid}: {}",
                    refusal(deleted).await
                ),
            ));
        }
    }
    let body = json!({
        "uid": uid,
        "name": "tributary-search",
        "description": format!("The Tributary search service: index {index_name} and its rebuild (made by tributary meili provision)"),
        "actions": ACTIONS,
        "indexes": wanted_indexes,
        "expiresAt": null,
    });
    let created = send(http.post(format!("{url}/keys")).json(&body)).await?;
    if created.status() != StatusCode::CREATED {
        return Err(failed(
            "provision key",
            format!("POST /keys was refused: {}", refusal(created).await),
        ));
    }
    let key: Value = created
        .json()
        .await
        .map_err(|e| failed("provision key", e.to_string()))?;
    let value = key["key"]
        .as_str()
        .filter(|k| !k.is_empty())
        .ok_or_else(|| failed("provision key", "POST /keys answered without a key"))?;
    Ok(ProvisionedKey {
        uid,
        key: SecretString::from(value.to_owned()),
        created: true,
    })
}

/// Whether a key object has exactly the actions and indexes wanted, and no expiry.
fn is_as_wanted(key: &Value, wanted_indexes: &[String]) -> bool {
    let set = |field: &str| {
        let mut values: Vec<String> = key[field]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        values.sort();
        values
    };
    let mut actions: Vec<String> = ACTIONS.iter().map(|a| (*a).to_owned()).collect();
    actions.sort();
    let mut indexes = wanted_indexes.to_vec();
    indexes.sort();
    set("actions") == actions && set("indexes") == indexes && key["expiresAt"].is_null()
}

/// Refuses `api_key` when it may read Meilisearch's API keys: `GET /keys` answers 200 only to
/// the master key and keys with `keys.get` (or `*`), and whoever holds one reads every key,
/// the default admin key included. A scoped key is answered 403, a server without a master
/// key 401; neither is refused here.
pub async fn refuse_key_manager(url: &str, api_key: Option<&str>) -> Result<(), SearchError> {
    let Some(key) = api_key.filter(|k| !k.is_empty()) else {
        return Ok(());
    };
    let url = url.trim().trim_end_matches('/');
    let answer = http()?
        .get(format!("{url}/keys?limit=1"))
        .bearer_auth(key)
        .send()
        .await
        .map_err(|e| failed("check key", format!("cannot reach {url}: {e}")))?;
    if answer.status().is_success() {
        return Err(failed(
            "check key",
            "search.meilisearch_api_key may read Meilisearch's API keys (it is the master key, or a key with `*` or `keys.get`), so whoever took it from the search service would hold every key; give the search service the key `tributary meili provision` makes (search.meilisearch_api_key_file), allowed only what it uses on its own index",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uid_is_fixed_by_the_index_name() {
        assert_eq!(key_uid("tributary"), key_uid("tributary"));
        assert_ne!(key_uid("tributary"), key_uid("other"));
        assert_eq!(key_uid("tributary").get_version_num(), 4);
    }
}
