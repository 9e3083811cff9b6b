//! Items held to the contract's JSON Schemas (`proto/schemas/connector-item.json` and the
//! entity's `item-data/<entity>.json`), as `tributary plugins test` checks every item a sync
//! yields.

use std::collections::HashMap;

use jsonschema::Validator;
use serde_json::Value;
use tributary_proto::contract::{item_data_schema_path, schema_files};
use tributary_proto::model::EntityType;

use super::KitError;

/// The compiled schemas an item is checked against.
pub struct ItemValidator {
    item: Validator,
    data: HashMap<String, Validator>,
}

impl ItemValidator {
    /// Compiles the contract's item schemas.
    pub fn new() -> Result<Self, KitError> {
        let files = schema_files();
        let compile = |path: &str| -> Result<Validator, KitError> {
            let text = files
                .get(path)
                .ok_or_else(|| KitError::Host(format!("the contract has no schema {path}")))?;
            let schema: Value = serde_json::from_str(text)
                .map_err(|e| KitError::Host(format!("the contract's {path} is not JSON: {e}")))?;
            jsonschema::validator_for(&schema)
                .map_err(|e| KitError::Host(format!("the contract's {path} does not compile: {e}")))
        };
        let item = compile("connector-item.json")?;
        let mut data = HashMap::new();
        for entity in EntityType::ALL {
            let name = serde_json::to_value(entity)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            data.insert(name, compile(&item_data_schema_path(entity))?);
        }
        Ok(ItemValidator { item, data })
    }

    /// Every way `item` (a connector item as JSON) breaks the contract, each naming the field;
    /// a tombstone's data is not checked.
    pub fn problems(&self, item: &Value) -> Vec<String> {
        let mut problems: Vec<String> = self
            .item
            .iter_errors(item)
            .map(|e| format!("{}: {e}", pointer_or_item(&e.instance_path().to_string())))
            .collect();
        // A tombstone's data is ignored by the ETL, so it is not checked.
        if item.get("operation").and_then(Value::as_str) != Some("upsert") {
            return problems;
        }
        let entity = item
            .get("entity_type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if let (Some(validator), Some(data)) = (self.data.get(entity), item.get("data")) {
            problems.extend(
                validator
                    .iter_errors(data)
                    .map(|e| format!("data{}: {e}", e.instance_path())),
            );
        }
        problems
    }
}

fn pointer_or_item(pointer: &str) -> String {
    if pointer.is_empty() {
        "the item".to_owned()
    } else {
        pointer.trim_start_matches('/').replace('/', ".")
    }
}
