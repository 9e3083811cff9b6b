//! Components made from WAT in the test, written as plugins into a directory the plugin
//! manager scans: components importing what no permission can grant, and one whose manifest
//! names another digest than its file's.

use std::path::Path;

use serde_json::json;
use sha2::{Digest, Sha256};

/// A connector whose component imports `wasi:sockets/tcp@0.2.3`.
pub const SOCKETS: &str = "test.hostile.sockets";
/// The import [`SOCKETS`] is refused for.
pub const SOCKETS_IMPORT: &str = "wasi:sockets/tcp@0.2.3";
/// A connector whose component imports `wasi:filesystem/preopens@0.2.3`.
pub const FILESYSTEM: &str = "test.hostile.filesystem";
/// The import [`FILESYSTEM`] is refused for.
pub const FILESYSTEM_IMPORT: &str = "wasi:filesystem/preopens@0.2.3";
/// A connector whose manifest's `sha256` is not its component's.
pub const TAMPERED: &str = "test.hostile.tampered";

/// A component importing `interface` with the items `items` (WAT instance type fields), and
/// nothing else.
fn importing(interface: &str, items: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(component (import "{interface}" (instance {items})))"#
    ))
    .expect("the fixture's WAT parses")
}

/// The hex SHA-256 of `bytes`.
fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Writes plugin `id` into `<dir>/<id>/`: `component` as `<name>.wasm`, and a connector manifest
/// saying its digest is `sha256`.
fn write_plugin(dir: &Path, id: &str, name: &str, component: &[u8], sha256: &str) {
    let dir = dir.join(id);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.wasm")), component).unwrap();
    let manifest = json!({
        "id": id,
        "name": format!("Hostile fixture: {name}"),
        "version": "0.1.0",
        "type": "connector",
        "entrypoint": format!("wasm:{name}.wasm"),
        "sha256": sha256,
        "permissions": ["data:write:documents"],
        "configSchema": { "type": "object" }
    });
    std::fs::write(dir.join("plugin.json"), manifest.to_string()).unwrap();
}

/// [`TAMPERED`]'s component, and the digest its manifest names: a harmless component's,
/// changed (a custom section appended) after its digest was taken, as a swapped file would be.
fn tampered() -> (Vec<u8>, String) {
    let original = importing("tributary:plugin/host@0.1.0", "");
    let mut tampered = original.clone();
    tampered.extend_from_slice(&[0, 2, 1, b'x']);
    (tampered, sha256_hex(&original))
}

/// The digest [`TAMPERED`]'s manifest names, and its file's.
pub fn tampered_digests() -> (String, String) {
    let (bytes, claimed) = tampered();
    (claimed, sha256_hex(&bytes))
}

/// Writes [`SOCKETS`], [`FILESYSTEM`] and [`TAMPERED`] into `dir`.
pub fn write_all(dir: &Path) {
    let sockets = importing(
        SOCKETS_IMPORT,
        r#"(export "tcp-socket" (type (sub resource)))"#,
    );
    write_plugin(dir, SOCKETS, "sockets", &sockets, &sha256_hex(&sockets));
    let preopens = importing(FILESYSTEM_IMPORT, r#"(export "get-directories" (func))"#);
    write_plugin(
        dir,
        FILESYSTEM,
        "filesystem",
        &preopens,
        &sha256_hex(&preopens),
    );
    let (bytes, claimed) = tampered();
    write_plugin(dir, TAMPERED, "tampered", &bytes, &claimed);
}
