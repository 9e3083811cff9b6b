use chrono::TimeZone;
use serde_json::json;

use super::*;

fn person(text: &str) -> (PersonFields, Option<DateTime<Utc>>) {
    let mapped = map_vcard(text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(mapped.entity_type, EntityType::Person);
    let fields = serde_json::from_value(mapped.data).unwrap();
    (fields, mapped.modified_at)
}

#[test]
fn a_vcard_3_maps_names_addresses_and_organisation() {
    let (p, rev) = person(
        "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:ada-1\r\nFN:Ada Lovelace\r\nN:Lovelace;Ada;Augusta;;\r\n\
         EMAIL;TYPE=INTERNET,HOME:ada@home.example\r\nitem1.EMAIL;TYPE=INTERNET;TYPE=pref:Ada@Work.example\r\n\
         TEL;TYPE=CELL:+44 20 7946 0958\r\nORG:Analytical Engines Ltd.;Research\r\nTITLE:Mathematician\r\n\
         REV:2024-01-02T03:04:05Z\r\nEND:VCARD\r\n",
    );
    assert_eq!(p.display_name, "Ada Lovelace");
    assert_eq!(p.given_name.as_deref(), Some("Ada"));
    assert_eq!(p.family_name.as_deref(), Some("Lovelace"));
    // The preferred address first; the ETL lower-cases and checks them.
    assert_eq!(p.emails, ["Ada@Work.example", "ada@home.example"]);
    assert_eq!(p.phones, ["+44 20 7946 0958"]);
    assert_eq!(p.organization.as_deref(), Some("Analytical Engines Ltd."));
    assert_eq!(p.extra["org_units"], json!(["Research"]));
    assert_eq!(p.title.as_deref(), Some("Mathematician"));
    assert_eq!(p.extra["uid"], "ada-1");
    assert_eq!(p.extra["vcard_version"], "3.0");
    assert_eq!(
        rev,
        Some(Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap())
    );
}

#[test]
fn a_vcard_4_maps_uri_values_and_preferences() {
    let (p, rev) = person(
        "BEGIN:VCARD\nVERSION:4.0\nFN:Grace Hopper\nEMAIL;PREF=2:grace@navy.example\n\
         EMAIL;PREF=1:mailto:grace@cobol.example\nTEL;VALUE=uri;TYPE=\"voice,cell\":tel:+1-415-555-0132;ext=12\n\
         REV:20240102T030405Z\nEND:VCARD\n",
    );
    assert_eq!(p.emails, ["grace@cobol.example", "grace@navy.example"]);
    assert_eq!(p.phones, ["+1-415-555-0132"]);
    assert_eq!(
        rev,
        Some(Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap())
    );
}

#[test]
fn folded_lines_and_escaped_characters_are_read() {
    let (p, _) = person(
        "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ada\r\n  King\\, Countess of\r\n\t Lovelace\r\nORG:Smith\\; Sons\\, Ltd.\r\n\
         NOTE:line one\\nline two\\\\end\r\nEND:VCARD\r\n",
    );
    assert_eq!(p.display_name, "Ada King, Countess of Lovelace");
    assert_eq!(p.organization.as_deref(), Some("Smith; Sons, Ltd."));
    assert_eq!(p.extra["note"], "line one\nline two\\end");
}

#[test]
fn without_fn_the_name_comes_from_n_then_org_then_email() {
    let (p, rev) = person("BEGIN:VCARD\nVERSION:3.0\nN:Hopper;Grace;;;\nEND:VCARD\n");
    assert_eq!(p.display_name, "Grace Hopper");
    assert_eq!(rev, None);
    let (p, _) = person("BEGIN:VCARD\nVERSION:3.0\nORG:ACME\nEMAIL:x@acme.example\nEND:VCARD\n");
    assert_eq!(p.display_name, "ACME");
    let (p, _) = person("BEGIN:VCARD\nVERSION:4.0\nEMAIL:x@acme.example\nEND:VCARD\n");
    assert_eq!(p.display_name, "x@acme.example");
    // Nothing to name the person by: left empty, for the ETL to refuse with its reason.
    let (p, _) = person("BEGIN:VCARD\nVERSION:4.0\nNOTE:?\nEND:VCARD\n");
    assert_eq!(p.display_name, "");
}

#[test]
fn other_properties_are_kept_in_extra() {
    let (p, _) = person(
        "BEGIN:VCARD\nVERSION:3.0\nFN:A\nNICKNAME:Al,Ally\nBDAY:1990-01-02\nURL:https://a.example\n\
         CATEGORIES:friends,chess\nADR;TYPE=home:;;1 Main St;Town;;12345;UK\nEND:VCARD\n",
    );
    assert_eq!(p.extra["nicknames"], json!(["Al", "Ally"]));
    assert_eq!(p.extra["urls"], json!(["https://a.example"]));
    assert_eq!(p.extra["categories"], json!(["friends", "chess"]));
    assert_eq!(
        p.extra["addresses"][0]["formatted"],
        "1 Main St, Town, 12345, UK"
    );
    assert_eq!(p.extra["birthday"], "1990-01-02");
    let (p, _) = person("BEGIN:VCARD\nVERSION:4.0\nFN:A\nBDAY:--0102\nEND:VCARD\n");
    assert_eq!(p.extra["birthday"], "--01-02");
}

#[test]
fn text_that_is_not_a_vcard_is_an_error() {
    assert!(matches!(map_vcard("hello"), Err(MapError::Invalid(_))));
    assert!(matches!(map_vcard(""), Err(MapError::Invalid(_))));
    let calendar = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nEND:VEVENT\nEND:VCALENDAR\n";
    assert!(matches!(map_vcard(calendar), Err(MapError::Invalid(_))));
}
