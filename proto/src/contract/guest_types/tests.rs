#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, dead_code)]

use schemars::{schema_for, JsonSchema};
use serde_json::{json, Value};

use super::{GuestModel, UnsupportedSchema};
use crate::model::EntityType;

fn model(schema: Value) -> Result<GuestModel, UnsupportedSchema> {
    GuestModel::from_item_data(&[(EntityType::Message, schema)])
}

fn both(schema: Value) -> (String, String) {
    let model = model(schema).unwrap();
    (model.typescript(), model.python())
}

fn fields(properties: Value, required: &[&str]) -> Value {
    json!({
        "title": "MessageFields",
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

fn refused(schema: Value) -> UnsupportedSchema {
    model(schema).expect_err("the schema was accepted")
}

/// A sender or recipient.
#[derive(JsonSchema)]
struct Participant {
    /// The provider's address.
    address: String,
    /// The name shown for it.
    #[serde(default)]
    display_name: Option<String>,
}

/// How far a message got.
#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
enum Delivery {
    /// Handed to the provider.
    Queued,
    /// On the recipient's device.
    Delivered,
}

#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
enum Priority {
    Low,
    High,
}

/// A message with every kind of field schemars writes for a guest-facing type.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
struct MessageFields {
    /// Who sent it.
    sender: Participant,
    /// Who it went to.
    #[serde(default)]
    recipients: Vec<Participant>,
    /// Who it was forwarded by, if anyone.
    #[serde(default)]
    forwarded_by: Option<Participant>,
    /// Where it got.
    delivery: Delivery,
    /// How urgent it is.
    #[serde(default)]
    priority: Option<Priority>,
    /// Labels, when the source has them.
    #[serde(default)]
    labels: Option<Vec<String>>,
    /// Attempts so far.
    attempts: u32,
    /// A score.
    score: f64,
    /// When it was sent.
    sent_at: chrono::DateTime<chrono::Utc>,
    /// Everything else.
    #[serde(default)]
    extra: serde_json::Map<String, Value>,
}

#[test]
fn what_schemars_writes_for_refs_enums_and_options_is_typed_in_both_languages() {
    let (ts, py) = both(schema_for!(MessageFields).to_value());
    for line in [
        "export type MessageFields = {",
        "  sender: Participant;",
        "  recipients?: Participant[];",
        "  forwarded_by?: Participant | null;",
        "  delivery: Delivery;",
        "  priority?: Priority | null;",
        "  labels?: string[] | null;",
        "  attempts: number;",
        "  score: number;",
        "  sent_at: string;",
        "  extra?: Record<string, unknown>;",
        "export type Participant = {",
        "  address: string;",
        "  display_name?: string | null;",
        "export type Delivery = \"queued\" | \"delivered\";",
        " * - `\"queued\"`: Handed to the provider.",
        "export type Priority = \"low\" | \"high\";",
        "  /** Who sent it. */",
        "   * An RFC 3339 date-time (`2026-01-31T09:30:00Z`).",
    ] {
        assert!(ts.lines().any(|l| l == line), "`{line}` not in:\n{ts}");
    }
    for line in [
        "class MessageFields(TypedDict):",
        "    sender: Participant",
        "    recipients: NotRequired[list[Participant]]",
        "    forwarded_by: NotRequired[Participant | None]",
        "    delivery: Delivery",
        "    priority: NotRequired[Priority | None]",
        "    labels: NotRequired[list[str] | None]",
        "    attempts: int",
        "    score: float",
        "    sent_at: str",
        "    extra: NotRequired[dict[str, Any]]",
        "class Participant(TypedDict):",
        "    display_name: NotRequired[str | None]",
        "Delivery = Literal[\"queued\", \"delivered\"]",
        "- `\"delivered\"`: On the recipient's device.",
        "Priority = Literal[\"low\", \"high\"]",
        "    \"\"\"Who sent it.\"\"\"",
        "from typing import Any, Final, Literal, NotRequired, TypedDict",
    ] {
        assert!(py.lines().any(|l| l == line), "`{line}` not in:\n{py}");
    }
    // Python evaluates annotations as it defines a class: what a class names comes first.
    let at = |name: &str| py.find(name).unwrap();
    assert!(at("class Participant(") < at("class MessageFields("));
    assert!(at("Delivery = Literal") < at("class MessageFields("));
}

#[test]
fn a_nullable_field_with_a_default_is_optional_and_a_required_one_is_not() {
    let (ts, py) = both(fields(
        json!({
            "title": {"type": ["string", "null"], "default": null},
            "body": {"type": "string"},
            "flag": {"type": "boolean", "default": false},
            "note": {"type": ["null", "string"]},
        }),
        &["body", "note"],
    ));
    assert!(ts.contains("\n  title?: string | null;\n"), "{ts}");
    assert!(ts.contains("\n  body: string;\n"), "{ts}");
    assert!(ts.contains("\n  flag?: boolean;\n"), "{ts}");
    assert!(ts.contains("\n  note: string | null;\n"), "{ts}");
    assert!(
        py.contains("\n    title: NotRequired[str | None]\n"),
        "{py}"
    );
    assert!(py.contains("\n    body: str\n"), "{py}");
    assert!(py.contains("\n    flag: NotRequired[bool]\n"), "{py}");
    assert!(py.contains("\n    note: str | None\n"), "{py}");
}

#[test]
fn inline_enums_and_arrays_of_them_are_literal_unions() {
    let (ts, py) = both(fields(
        json!({
            "kind": {"type": "string", "enum": ["a", "b"]},
            "kinds": {"type": "array", "items": {"enum": ["x", "y"]}},
            "maybe": {"type": "array", "items": {"type": ["string", "null"]}},
        }),
        &["kind", "kinds", "maybe"],
    ));
    assert!(ts.contains("  kind: \"a\" | \"b\";\n"), "{ts}");
    assert!(ts.contains("  kinds: (\"x\" | \"y\")[];\n"), "{ts}");
    assert!(ts.contains("  maybe: (string | null)[];\n"), "{ts}");
    assert!(py.contains("    kind: Literal[\"a\", \"b\"]\n"), "{py}");
    assert!(
        py.contains("    kinds: list[Literal[\"x\", \"y\"]]\n"),
        "{py}"
    );
    assert!(py.contains("    maybe: list[str | None]\n"), "{py}");
}

#[test]
fn descriptions_cannot_close_the_comment_or_docstring_they_sit_in() {
    let (ts, py) = both(fields(
        json!({
            "a": {"type": "string", "description": "Ends a comment */ here."},
            "b": {"type": "string", "description": "Says \"\"\" and ends with \"quoted\""},
            "c": {"type": "string", "description": "A path C:\\temp.\n\nSecond paragraph."},
        }),
        &[],
    ));
    assert!(ts.contains("/** Ends a comment *\\/ here. */"), "{ts}");
    assert!(!ts.contains("comment */"), "{ts}");
    assert!(
        py.contains(r#""""Says \"\"\" and ends with "quoted\""""#),
        "{py}"
    );
    assert!(
        py.contains("    \"\"\"A path C:\\\\temp.\n\n    Second paragraph.\n    \"\"\"\n"),
        "{py}"
    );
}

#[test]
fn the_contract_model_types_each_entity_and_maps_the_wit_names_to_them() {
    let model = crate::contract::guest_model().unwrap();
    let ts = model.typescript();
    let py = model.python();
    let header =
        "Generated by `cargo run -p tributary-proto --bin generate-contract`; do not edit.\n";
    assert!(ts.starts_with(&format!("// {header}")), "{ts}");
    assert!(py.starts_with(&format!("# {header}")), "{py}");
    let plurals = [
        "persons",
        "organizations",
        "conversations",
        "messages",
        "calendar_events",
        "documents",
    ];
    let ts_union: String = plurals.iter().map(|p| format!("\n  | \"{p}\"")).collect();
    assert!(
        ts.contains(&format!("export type EntityType ={ts_union};\n")),
        "{ts}"
    );
    let py_literal: String = plurals.iter().map(|p| format!("    \"{p}\",\n")).collect();
    assert!(
        py.contains(&format!("EntityType = Literal[\n{py_literal}]\n")),
        "{py}"
    );
    for (plural, fields) in [
        ("persons", "PersonFields"),
        ("organizations", "OrganizationFields"),
        ("conversations", "ConversationFields"),
        ("messages", "MessageFields"),
        ("calendar_events", "CalendarEventFields"),
        ("documents", "DocumentFields"),
    ] {
        assert!(
            ts.contains(&format!("export type {fields} = {{")),
            "{fields}"
        );
        assert!(ts.contains(&format!("  {plural}: {fields};")), "{plural}");
        assert!(
            py.contains(&format!("class {fields}(TypedDict):")),
            "{fields}"
        );
        assert!(
            py.contains(&format!("    \"{plural}\": {fields},")),
            "{plural}"
        );
    }
    assert!(ts.contains("  display_name: string;\n"));
    assert!(ts.contains("  given_name?: string | null;\n"));
    assert!(ts.contains("  starts_at: string;\n"));
    assert!(ts.contains("  attendees?: string[];\n"));
    assert!(py.contains("    all_day: NotRequired[bool]\n"));
}

#[test]
fn an_unknown_construct_is_refused_naming_the_schema_the_place_and_the_construct() {
    let cases = [
        (
            fields(
                json!({"code": {"type": "string", "pattern": "^[a-z]+$"}}),
                &[],
            ),
            "/properties/code",
            "keyword `pattern`",
        ),
        (
            fields(json!({"raw": {"description": "Any JSON."}}), &[]),
            "/properties/raw",
            "without `type`",
        ),
        (
            fields(json!({"when": {"type": "string", "format": "date"}}), &[]),
            "/properties/when",
            "string format `date`",
        ),
        (
            fields(
                json!({"counts": {"type": "object", "additionalProperties": {"type": "integer"}}}),
                &[],
            ),
            "/properties/counts",
            "inline object",
        ),
        (
            fields(json!({"who": {"$ref": "#/$defs/Nobody"}}), &[]),
            "/properties/who",
            "`$defs` lacks",
        ),
        (
            fields(json!({"v": {"type": ["string", "integer"]}}), &[]),
            "/properties/v",
            "one type and null",
        ),
        (
            fields(json!({"from": {"type": "string"}}), &[]),
            "/properties/from",
            "Python keyword",
        ),
        (
            fields(
                json!({"v": {"oneOf": [{"type": "object", "properties": {}}]}}),
                &[],
            ),
            "/properties/v/oneOf/0",
            "keyword `properties`",
        ),
        (
            fields(
                json!({"v": {"anyOf": [{"type": "string"}, {"type": "integer"}]}}),
                &[],
            ),
            "/properties/v",
            "`anyOf`",
        ),
        (
            fields(json!({"a": {"type": "string"}}), &["b"]),
            "/required",
            "`b` is required but not a property",
        ),
    ];
    for (schema, at, problem) in cases {
        let err = refused(schema);
        assert_eq!(err.schema, "MessageFields", "{err}");
        assert_eq!(err.at, at, "{err}");
        assert!(err.problem.contains(problem), "`{problem}` not in: {err}");
        assert!(err.to_string().contains("MessageFields"), "{err}");
    }
}

#[test]
fn a_tagged_enum_like_the_channel_events_is_refused_rather_than_typed_loosely() {
    /// What one webhook carried.
    #[derive(JsonSchema)]
    #[serde(tag = "kind", rename_all = "snake_case")]
    enum Event {
        /// A message.
        Message { text: String },
        /// A status.
        Status { status: String },
    }
    #[derive(JsonSchema)]
    struct MessageFields {
        event: Event,
    }
    let err = refused(schema_for!(MessageFields).to_value());
    assert_eq!(err.at, "/$defs/Event/oneOf/0", "{err}");
}

#[test]
fn one_name_defined_differently_by_two_schemas_is_refused() {
    let with_def = |title: &str, def: Value| {
        json!({
            "title": title, "type": "object",
            "properties": {"p": {"$ref": "#/$defs/Party"}},
            "$defs": {"Party": def},
        })
    };
    let same = json!({"type": "object", "properties": {"a": {"type": "string"}}});
    let other = json!({"type": "object", "properties": {"b": {"type": "string"}}});
    let shared = GuestModel::from_item_data(&[
        (EntityType::Message, with_def("MessageFields", same.clone())),
        (
            EntityType::Document,
            with_def("DocumentFields", same.clone()),
        ),
    ])
    .unwrap();
    assert_eq!(
        shared.typescript().matches("export type Party = {").count(),
        1
    );
    let err = GuestModel::from_item_data(&[
        (EntityType::Message, with_def("MessageFields", same)),
        (EntityType::Document, with_def("DocumentFields", other)),
    ])
    .unwrap_err();
    assert_eq!(err.schema, "DocumentFields");
    assert!(err.problem.contains("defined differently"), "{err}");
    assert!(err.problem.contains("`MessageFields`"), "{err}");
}

#[test]
fn types_that_refer_to_each_other_in_a_cycle_are_refused() {
    let err = refused(json!({
        "title": "MessageFields", "type": "object",
        "properties": {"node": {"$ref": "#/$defs/Node"}},
        "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}},
    }));
    assert!(err.problem.contains("cycle"), "{err}");
    assert_eq!(err.at, "/$defs/Node");
}
