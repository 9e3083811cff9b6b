//! Reading one item-data schema into named types, refusing every construct not understood.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::{Field, Literal, Shape, Ty, TypeDef, UnsupportedSchema};

/// Reads the nodes of one schema, naming it in every error.
pub(super) struct Reader<'a> {
    /// The schema's title, named in every error.
    pub(super) schema: &'a str,
    /// Its `$defs`, which a `$ref` must name.
    pub(super) defs: Option<&'a Map<String, Value>>,
}

/// The keywords that only describe a node and never change its type.
const ANNOTATIONS: [&str; 2] = ["description", "default"];

/// The `format`s a string may carry; none changes its type.
const STRING_FORMATS: [&str; 2] = ["date-time", "uuid"];

/// The `format`s schemars gives Rust's integer types.
const INTEGER_FORMATS: [&str; 10] = [
    "int8", "int16", "int32", "int64", "int", "uint8", "uint16", "uint32", "uint64", "uint",
];

impl Reader<'_> {
    /// The error for `problem` at `at` in this schema.
    pub(super) fn unsupported(&self, at: &str, problem: impl Into<String>) -> UnsupportedSchema {
        UnsupportedSchema {
            schema: self.schema.to_owned(),
            at: at.to_owned(),
            problem: problem.into(),
        }
    }

    /// Fails on any key of `node` outside `allowed` and the annotations.
    fn only(
        &self,
        node: &Map<String, Value>,
        at: &str,
        allowed: &[&str],
    ) -> Result<(), UnsupportedSchema> {
        match node
            .keys()
            .find(|k| !allowed.contains(&k.as_str()) && !ANNOTATIONS.contains(&k.as_str()))
        {
            Some(key) => Err(self.unsupported(at, format!("keyword `{key}` is not handled here"))),
            None => Ok(()),
        }
    }

    fn object<'v>(
        &self,
        node: &'v Value,
        at: &str,
    ) -> Result<&'v Map<String, Value>, UnsupportedSchema> {
        node.as_object()
            .ok_or_else(|| self.unsupported(at, format!("`{node}` is not a schema object")))
    }

    /// A named type: the schema itself (`root`) or one of its `$defs`.
    pub(super) fn type_def(
        &self,
        name: &str,
        node: &Value,
        at: &str,
        root: bool,
    ) -> Result<TypeDef, UnsupportedSchema> {
        let node = self.object(node, at)?;
        check_identifier(name)
            .map_err(|p| self.unsupported(at, format!("type name `{name}` {p}")))?;
        let doc = description(node);
        if node.contains_key("oneOf") || node.contains_key("enum") {
            self.only(node, at, &["oneOf", "enum", "type", "title"])?;
            let literals = self.literals(node, at)?;
            return Ok(TypeDef {
                name: name.to_owned(),
                doc,
                shape: Shape::Literals(literals),
            });
        }
        let allowed: &[&str] = if root {
            &[
                "$schema",
                "title",
                "type",
                "properties",
                "required",
                "additionalProperties",
                "$defs",
            ]
        } else {
            &[
                "title",
                "type",
                "properties",
                "required",
                "additionalProperties",
            ]
        };
        self.only(node, at, allowed)?;
        if node.get("type").and_then(Value::as_str) != Some("object") {
            return Err(self.unsupported(at, "a named type must be an object or a set of strings"));
        }
        match node.get("additionalProperties") {
            None | Some(Value::Bool(false)) => {}
            Some(_) => {
                return Err(self.unsupported(
                    at,
                    "an object with both properties and other keys (`additionalProperties`) is not handled",
                ))
            }
        }
        let empty = Map::new();
        let properties = match node.get("properties") {
            None => &empty,
            Some(p) => self.object(p, &format!("{at}/properties"))?,
        };
        let required: BTreeSet<&str> = match node.get("required") {
            None => BTreeSet::new(),
            Some(Value::Array(names)) => names.iter().filter_map(Value::as_str).collect(),
            Some(other) => {
                return Err(self.unsupported(
                    &format!("{at}/required"),
                    format!("`{other}` is not a list of names"),
                ))
            }
        };
        if let Some(missing) = required.iter().find(|r| !properties.contains_key(**r)) {
            return Err(self.unsupported(
                &format!("{at}/required"),
                format!("`{missing}` is required but not a property"),
            ));
        }
        let mut fields = Vec::new();
        for (prop, schema) in properties {
            let here = format!("{at}/properties/{prop}");
            check_identifier(prop)
                .map_err(|p| self.unsupported(&here, format!("property name `{prop}` {p}")))?;
            let node = self.object(schema, &here)?;
            fields.push(Field {
                name: prop.clone(),
                doc: with_format(description(node), node),
                ty: self.ty(schema, &here)?,
                optional: !required.contains(prop.as_str()) || node.contains_key("default"),
            });
        }
        Ok(TypeDef {
            name: name.to_owned(),
            doc,
            shape: Shape::Object(fields),
        })
    }

    /// The type of a property's (or an array item's) schema.
    fn ty(&self, node: &Value, at: &str) -> Result<Ty, UnsupportedSchema> {
        let node = self.object(node, at)?;
        if let Some(target) = node.get("$ref") {
            self.only(node, at, &["$ref"])?;
            return self.reference(target, at);
        }
        if node.contains_key("enum") || node.contains_key("oneOf") {
            self.only(node, at, &["enum", "oneOf", "type"])?;
            let values = self
                .literals(node, at)?
                .into_iter()
                .map(|l| l.value)
                .collect();
            return Ok(Ty::Literals(values));
        }
        if let Some(options) = node.get("anyOf") {
            // schemars writes `Option<T>` of a named `T` as `anyOf: [T, {type: null}]`.
            self.only(node, at, &["anyOf"])?;
            let options = options.as_array().map(Vec::as_slice).unwrap_or_default();
            let is_null = |v: &Value| {
                v.get("type") == Some(&Value::from("null"))
                    && v.as_object().is_some_and(|o| o.len() == 1)
            };
            return match options {
                [t, n] | [n, t] if is_null(n) && !is_null(t) => Ok(Ty::Nullable(Box::new(
                    self.ty(t, &format!("{at}/anyOf")).map(nullable_once)?,
                ))),
                _ => Err(self.unsupported(at, "`anyOf` other than a type or null is not handled")),
            };
        }
        match node.get("type") {
            Some(Value::String(name)) => self.typed(name, node, at),
            Some(Value::Array(names)) => match names.as_slice() {
                [Value::String(t), Value::String(n)] | [Value::String(n), Value::String(t)]
                    if n == "null" && t != "null" =>
                {
                    Ok(Ty::Nullable(Box::new(self.typed(t, node, at)?)))
                }
                _ => Err(self.unsupported(
                    at,
                    format!(
                        "`type: {}` is not handled (only one type, or one type and null)",
                        Value::Array(names.clone())
                    ),
                )),
            },
            Some(other) => Err(self.unsupported(at, format!("`type: {other}` is not handled"))),
            None => Err(self.unsupported(
                at,
                "a schema without `type` (any JSON value) is not handled",
            )),
        }
    }

    /// The type of a node whose `type` is `name` (null aside).
    fn typed(
        &self,
        name: &str,
        node: &Map<String, Value>,
        at: &str,
    ) -> Result<Ty, UnsupportedSchema> {
        let format = node.get("format").and_then(Value::as_str);
        match name {
            "string" => {
                self.only(node, at, &["type", "format"])?;
                match format {
                    Some(f) if !STRING_FORMATS.contains(&f) => {
                        Err(self.unsupported(at, format!("string format `{f}` is not handled")))
                    }
                    _ => Ok(Ty::String),
                }
            }
            "boolean" => self.only(node, at, &["type"]).map(|()| Ty::Boolean),
            "integer" => {
                self.only(node, at, &["type", "format", "minimum"])?;
                match format {
                    Some(f) if !INTEGER_FORMATS.contains(&f) => {
                        Err(self.unsupported(at, format!("integer format `{f}` is not handled")))
                    }
                    _ => Ok(Ty::Integer),
                }
            }
            "number" => {
                self.only(node, at, &["type", "format"])?;
                match format {
                    Some(f) if f != "float" && f != "double" => {
                        Err(self.unsupported(at, format!("number format `{f}` is not handled")))
                    }
                    _ => Ok(Ty::Number),
                }
            }
            "array" => {
                self.only(node, at, &["type", "items"])?;
                let items = node.get("items").ok_or_else(|| {
                    self.unsupported(at, "an array without `items` is not handled")
                })?;
                Ok(Ty::Array(Box::new(self.ty(items, &format!("{at}/items"))?)))
            }
            "object" => {
                self.only(node, at, &["type", "additionalProperties"])?;
                match node.get("additionalProperties") {
                    None | Some(Value::Bool(true)) => Ok(Ty::FreeObject),
                    Some(_) => Err(self.unsupported(
                        at,
                        "an inline object other than a free one (`additionalProperties: true`) is not handled; name it in `$defs`",
                    )),
                }
            }
            other => Err(self.unsupported(at, format!("type `{other}` is not handled"))),
        }
    }

    /// A `$ref` to one of the schema's `$defs`.
    fn reference(&self, target: &Value, at: &str) -> Result<Ty, UnsupportedSchema> {
        let name = target
            .as_str()
            .and_then(|t| t.strip_prefix("#/$defs/"))
            .ok_or_else(|| {
                self.unsupported(
                    at,
                    format!("`$ref: {target}` is not a reference into `#/$defs/`"),
                )
            })?;
        if !self.defs.is_some_and(|d| d.contains_key(name)) {
            return Err(self.unsupported(at, format!("`$ref` names `{name}`, which `$defs` lacks")));
        }
        Ok(Ty::Named(name.to_owned()))
    }

    /// The strings of `enum: [...]` or of `oneOf: [{const: ...}, ...]`, the two ways schemars
    /// writes a Rust enum of unit variants (the second when the variants are documented).
    fn literals(
        &self,
        node: &Map<String, Value>,
        at: &str,
    ) -> Result<Vec<Literal>, UnsupportedSchema> {
        if node
            .get("type")
            .is_some_and(|t| t.as_str() != Some("string"))
        {
            return Err(self.unsupported(at, "an `enum` of other than strings is not handled"));
        }
        let mut literals = Vec::new();
        if let Some(values) = node.get("enum") {
            for value in values.as_array().map(Vec::as_slice).unwrap_or_default() {
                let value = value.as_str().ok_or_else(|| {
                    self.unsupported(
                        &format!("{at}/enum"),
                        format!("enum value `{value}` is not a string"),
                    )
                })?;
                literals.push(Literal {
                    value: value.to_owned(),
                    doc: None,
                });
            }
        } else if let Some(variants) = node.get("oneOf") {
            for (i, variant) in variants
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                let here = format!("{at}/oneOf/{i}");
                let variant = self.object(variant, &here)?;
                self.only(variant, &here, &["type", "const"])?;
                let string_typed = variant
                    .get("type")
                    .is_none_or(|t| t.as_str() == Some("string"));
                match variant.get("const").and_then(Value::as_str) {
                    Some(value) if string_typed => {
                        literals.push(Literal {
                            value: value.to_owned(),
                            doc: description(variant),
                        });
                    }
                    _ => {
                        return Err(self.unsupported(
                            &here,
                            "a `oneOf` variant other than a string `const` is not handled",
                        ))
                    }
                }
            }
        }
        if literals.is_empty() {
            return Err(self.unsupported(at, "an `enum` or `oneOf` without values is not handled"));
        }
        Ok(literals)
    }
}

/// `Nullable(Nullable(t))` is `Nullable(t)`.
fn nullable_once(ty: Ty) -> Ty {
    match ty {
        Ty::Nullable(inner) => *inner,
        other => other,
    }
}

fn description(node: &Map<String, Value>) -> Option<String> {
    node.get("description")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// A field's description, with its string format said (the guest must write it so).
fn with_format(doc: Option<String>, node: &Map<String, Value>) -> Option<String> {
    let note = match node.get("format").and_then(Value::as_str) {
        Some("date-time") => "An RFC 3339 date-time (`2026-01-31T09:30:00Z`).",
        Some("uuid") => "A UUID (`0190f3c4-7d2e-7b3a-9c1d-2e4f6a8b0c1d`).",
        _ => return doc,
    };
    Some(match doc {
        Some(doc) => format!("{doc}\n\n{note}"),
        None => note.to_owned(),
    })
}

/// Python's reserved words: a `TypedDict` class cannot declare a property so named.
const PYTHON_KEYWORDS: [&str; 35] = [
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield",
];

/// Whether `name` can be a type or property name in both TypeScript and Python unquoted.
fn check_identifier(name: &str) -> Result<(), &'static str> {
    let mut chars = name.chars();
    let starts_well = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !starts_well || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err("is not an identifier ([A-Za-z_][A-Za-z0-9_]*)");
    }
    if PYTHON_KEYWORDS.contains(&name) {
        return Err("is a Python keyword");
    }
    Ok(())
}
