//! A message on `connector.items.<instance>`, as a connector (a plugin, possibly a hostile
//! one) publishes it: decoded by the ETL, then validated and normalised (names, e-mail
//! addresses, phone numbers, HTML to text, times). The subject is the one the item's instance
//! may publish on, so the item gets past the check of its instance.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tributary_etl::normalise::Normaliser;
use tributary_proto::Subjects;

static NORMALISER: OnceLock<(Subjects, Normaliser)> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let (subjects, normaliser) = NORMALISER.get_or_init(|| {
        let subjects = Subjects::new("fuzz");
        let normaliser = Normaliser::new(subjects.clone(), phonenumber::country::Id::US);
        (subjects, normaliser)
    });
    let instance = serde_json::from_slice::<Value>(data)
        .ok()
        .and_then(|v| v.get("instance_id")?.as_str().map(str::to_owned))
        .unwrap_or_default();
    let subject = subjects.connector_items(&instance);
    if let Ok(item) = normaliser.decode(&subject, data) {
        let _ = normaliser.normalise(item);
    }
});
