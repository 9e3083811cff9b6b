//! The unified model's field types for the guest SDKs, generated from the item-data JSON
//! Schemas: `sdk/typescript/src/model.ts` and `sdk/python/tributary_plugin/model.py`.
//!
//! The schemas are read into a small model of named types ([`GuestModel`]) that both
//! renderers print. Only the JSON Schema constructs the contract's schemas use are
//! understood; any other keyword, type or format is an [`UnsupportedSchema`] naming the
//! schema, where in it, and what, so a new field type is never silently typed wrong.

mod python;
mod schema;
mod typescript;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::model::EntityType;
use schema::Reader;

/// Where the generated TypeScript module lives, relative to the repository root.
pub const TYPESCRIPT_PATH: &str = "sdk/typescript/src/model.ts";
/// Where the generated Python module lives, relative to the repository root.
pub const PYTHON_PATH: &str = "sdk/python/tributary_plugin/model.py";

/// A schema construct the generator does not know how to type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot type schema `{schema}` at `{at}` for the guest SDKs: {problem}")]
pub struct UnsupportedSchema {
    /// The schema's title.
    pub schema: String,
    /// A JSON pointer into the schema (`/properties/sent_at`); empty for the schema itself.
    pub at: String,
    /// What is not understood (`keyword \`pattern\` is not handled`).
    pub problem: String,
}

/// The type of a value, as both languages spell it.
#[derive(Debug, Clone, PartialEq)]
enum Ty {
    /// A JSON string (whatever its format).
    String,
    /// `true` or `false`.
    Boolean,
    /// A whole number.
    Integer,
    /// Any number.
    Number,
    /// A list of values of one type.
    Array(Box<Ty>),
    /// A JSON object with any keys and values.
    FreeObject,
    /// One of a few strings.
    Literals(Vec<String>),
    /// A named type of the model (a `$ref` to a `$defs` entry).
    Named(String),
    /// The type, or JSON `null`.
    Nullable(Box<Ty>),
}

/// One property of an object type.
#[derive(Debug, Clone, PartialEq)]
struct Field {
    name: String,
    doc: Option<String>,
    ty: Ty,
    /// Not required, or has a default: the guest may leave it out.
    optional: bool,
}

/// One of the strings a literal type allows, with its description.
#[derive(Debug, Clone, PartialEq)]
struct Literal {
    value: String,
    doc: Option<String>,
}

/// What a named type is.
#[derive(Debug, Clone, PartialEq)]
enum Shape {
    /// An object with exactly these properties.
    Object(Vec<Field>),
    /// One of these strings.
    Literals(Vec<Literal>),
}

/// A named type: an item-data schema or one of its `$defs`.
#[derive(Debug, Clone, PartialEq)]
struct TypeDef {
    name: String,
    doc: Option<String>,
    shape: Shape,
}

/// The named types of the unified model's item data, in the order the modules declare them
/// (every type after the types it refers to), and the fields type of each entity.
#[derive(Debug, Clone, PartialEq)]
pub struct GuestModel {
    types: Vec<TypeDef>,
    entities: Vec<(EntityType, String)>,
}

impl GuestModel {
    /// Reads the item-data schema of each entity type (titled `PersonFields`, …). Fails on
    /// the first construct it does not understand, and on two `$defs` of one name that
    /// differ.
    pub fn from_item_data(schemas: &[(EntityType, Value)]) -> Result<Self, UnsupportedSchema> {
        let mut named: BTreeMap<String, (String, TypeDef)> = BTreeMap::new();
        let mut roots = Vec::new();
        let mut entities = Vec::new();
        for (entity, schema) in schemas {
            let title = schema
                .get("title")
                .and_then(Value::as_str)
                .ok_or_else(|| UnsupportedSchema {
                    schema: entity.as_str().to_owned(),
                    at: String::new(),
                    problem: "the schema has no `title` to name its type".to_owned(),
                })?
                .to_owned();
            let reader = Reader {
                schema: &title,
                defs: schema.get("$defs").and_then(Value::as_object),
            };
            let root = reader.type_def(&title, schema, "", true)?;
            if !matches!(root.shape, Shape::Object(_)) {
                return Err(reader.unsupported("", "an item's data must be an object"));
            }
            let mut found = vec![root];
            if let Some(defs) = reader.defs {
                for (name, def) in defs {
                    found.push(reader.type_def(name, def, &format!("/$defs/{name}"), false)?);
                }
            }
            for def in found {
                if let Some((first, known)) = named.get(&def.name) {
                    if *known != def {
                        return Err(reader.unsupported(
                            &format!("/$defs/{}", def.name),
                            format!(
                                "type `{}` is defined differently here and in `{first}`",
                                def.name
                            ),
                        ));
                    }
                    continue;
                }
                named.insert(def.name.clone(), (title.clone(), def));
            }
            roots.push(title.clone());
            entities.push((*entity, title));
        }
        let types = declaration_order(&roots, &named)?;
        Ok(GuestModel { types, entities })
    }

    /// `sdk/typescript/src/model.ts`.
    pub fn typescript(&self) -> String {
        typescript::module(self)
    }

    /// `sdk/python/tributary_plugin/model.py`.
    pub fn python(&self) -> String {
        python::module(self)
    }
}

/// The named types, each after every type it refers to (Python evaluates a class's
/// annotations when it defines the class), starting from the roots in order.
fn declaration_order(
    roots: &[String],
    named: &BTreeMap<String, (String, TypeDef)>,
) -> Result<Vec<TypeDef>, UnsupportedSchema> {
    fn visit(
        name: &str,
        named: &BTreeMap<String, (String, TypeDef)>,
        visiting: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        out: &mut Vec<TypeDef>,
    ) -> Result<(), UnsupportedSchema> {
        if done.contains(name) {
            return Ok(());
        }
        // Every name reached was checked against `$defs` while reading.
        let Some((schema, def)) = named.get(name) else {
            return Ok(());
        };
        if visiting.iter().any(|v| v == name) {
            return Err(UnsupportedSchema {
                schema: schema.clone(),
                at: format!("/$defs/{name}"),
                problem: format!(
                    "the types refer to each other in a cycle: {} → {name}",
                    visiting.join(" → ")
                ),
            });
        }
        visiting.push(name.to_owned());
        if let Shape::Object(fields) = &def.shape {
            for field in fields {
                let mut referred = Vec::new();
                field.ty.named(&mut referred);
                for r in referred {
                    visit(&r, named, visiting, done, out)?;
                }
            }
        }
        visiting.pop();
        done.insert(name.to_owned());
        out.push(def.clone());
        Ok(())
    }
    let mut out = Vec::new();
    let mut done = BTreeSet::new();
    for root in roots {
        visit(root, named, &mut Vec::new(), &mut done, &mut out)?;
    }
    Ok(out)
}

impl Ty {
    /// The named types this type refers to.
    fn named(&self, out: &mut Vec<String>) {
        match self {
            Ty::Named(name) => out.push(name.clone()),
            Ty::Array(inner) | Ty::Nullable(inner) => inner.named(out),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
