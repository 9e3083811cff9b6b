//! Regenerates `proto/schemas/`, `docs/events.md` and the guest SDKs' model types
//! (`sdk/typescript/src/model.ts`, `sdk/python/tributary_plugin/model.py`) from the contract
//! types.

use std::path::Path;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    tributary_proto::contract::write_all(&root)?;
    println!(
        "Regenerated proto/schemas/, docs/events.md, {} and {}.",
        tributary_proto::contract::guest_types::TYPESCRIPT_PATH,
        tributary_proto::contract::guest_types::PYTHON_PATH
    );
    Ok(())
}
