//! Regenerates `proto/schemas/` and `docs/events.md` from the contract types.

use std::path::Path;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    tributary_proto::contract::write_all(&root)?;
    println!("Regenerated proto/schemas/ and docs/events.md.");
    Ok(())
}
