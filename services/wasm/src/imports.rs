//! Which imports a plugin component may have: the WIT package's own interfaces, and the WASI
//! interfaces the host links in a restricted form. Anything else (a filesystem, sockets) is
//! something no permission can grant, and the component is refused before it is compiled,
//! naming the import.

use wasmparser::{Parser, Payload};

/// An import no permission of a plugin can grant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the component imports `{import}`, which no permission can grant: {reason}")]
pub struct RefusedImport {
    /// The import's name, as the component spells it (`wasi:sockets/tcp@0.2.3`).
    pub import: String,
    /// Why it cannot be granted.
    pub reason: &'static str,
}

/// Interfaces a component may import, by name without version: the host links each.
const ALLOWED: [&str; 18] = [
    "tributary:plugin/types",
    "tributary:plugin/host",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:clocks/wall-clock",
    "wasi:clocks/monotonic-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:http/types",
    "wasi:http/outgoing-handler",
    "wasi:cli/terminal-input",
];

/// The terminal interfaces, linked and empty: a plugin has no terminal.
const TERMINALS: [&str; 4] = [
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
];

/// Why an interface family is refused.
fn reason(name: &str) -> &'static str {
    if name.starts_with("wasi:filesystem/") {
        "a plugin has no filesystem; it keeps state through the host's key-value store"
    } else if name.starts_with("wasi:sockets/") {
        "a plugin has no sockets; it reaches the network only through HTTP, to the hosts its `network:outbound` permissions grant"
    } else if name.starts_with("wasi:") {
        "this WASI interface is not part of a plugin's sandbox"
    } else {
        "it is neither part of `tributary:plugin` nor of the WASI interfaces the host links"
    }
}

/// The name of an import without its `@version`.
fn unversioned(name: &str) -> &str {
    name.split_once('@').map_or(name, |(name, _)| name)
}

/// The top-level imports of the component `bytes`, as written.
pub fn imports_of(bytes: &[u8]) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(|e| format!("not a WebAssembly component: {e}"))? {
            Payload::Version { encoding, .. } => {
                if depth == 0 && encoding != wasmparser::Encoding::Component {
                    return Err(
                        "a core WebAssembly module, not a component; build it with a component toolchain (componentize-js, componentize-py, cargo component)".to_owned(),
                    );
                }
                depth += 1;
            }
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(section) if depth == 1 => {
                for import in section {
                    let import = import.map_err(|e| format!("unreadable import: {e}"))?;
                    names.push(import.name.0.to_owned());
                }
            }
            _ => {}
        }
    }
    Ok(names)
}

/// Checks every top-level import of the component `bytes`; the first one no permission can
/// grant is refused.
pub fn check(bytes: &[u8]) -> Result<Vec<String>, RefusedImport> {
    let imports = imports_of(bytes).map_err(|problem| RefusedImport {
        import: "(none)".to_owned(),
        reason: if problem.starts_with("a core") {
            "a core module is not a plugin component"
        } else {
            "the file is not a WebAssembly component"
        },
    })?;
    for import in &imports {
        let name = unversioned(import);
        if !ALLOWED.contains(&name) && !TERMINALS.contains(&name) {
            return Err(RefusedImport {
                import: import.clone(),
                reason: reason(name),
            });
        }
    }
    Ok(imports)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn component_importing(interface: &str) -> Vec<u8> {
        wat::parse_str(format!(r#"(component (import "{interface}" (instance)))"#)).unwrap()
    }

    #[test]
    fn sockets_and_filesystems_are_refused_naming_the_import() {
        let err = check(&component_importing("wasi:sockets/tcp@0.2.3")).unwrap_err();
        assert_eq!(err.import, "wasi:sockets/tcp@0.2.3");
        assert!(err.to_string().contains("no sockets"), "{err}");
        let err = check(&component_importing("wasi:filesystem/preopens@0.2.3")).unwrap_err();
        assert!(
            err.to_string().contains("`wasi:filesystem/preopens@0.2.3`"),
            "{err}"
        );
        assert!(err.to_string().contains("no filesystem"), "{err}");
        let err = check(&component_importing("acme:evil/backdoor")).unwrap_err();
        assert!(err.to_string().contains("`acme:evil/backdoor`"), "{err}");
    }

    #[test]
    fn the_host_interfaces_and_restricted_wasi_are_accepted() {
        for interface in [
            "tributary:plugin/host@0.1.0",
            "wasi:http/types@0.2.3",
            "wasi:io/poll@0.2.3",
        ] {
            assert_eq!(check(&component_importing(interface)).unwrap(), [interface]);
        }
    }

    #[test]
    fn a_core_module_or_junk_is_no_component() {
        let core = wat::parse_str("(module)").unwrap();
        assert!(check(&core).unwrap_err().reason.contains("core module"));
        assert!(check(b"not wasm")
            .unwrap_err()
            .reason
            .contains("not a WebAssembly component"));
    }

    #[test]
    fn imports_of_nested_components_are_not_the_plugins() {
        let bytes = wat::parse_str(
            r#"(component
                 (import "tributary:plugin/host@0.1.0" (instance))
                 (component (import "wasi:sockets/tcp@0.2.3" (instance))))"#,
        )
        .unwrap();
        assert_eq!(check(&bytes).unwrap(), ["tributary:plugin/host@0.1.0"]);
    }

    #[test]
    fn a_forbidden_import_after_a_nested_component_is_still_the_plugins() {
        // The nested component ends before the top-level import: it must not hide it.
        let bytes = wat::parse_str(
            r#"(component
                 (component (import "tributary:plugin/host@0.1.0" (instance)))
                 (import "wasi:sockets/tcp@0.2.3" (instance)))"#,
        )
        .unwrap();
        let err = check(&bytes).unwrap_err();
        assert_eq!(err.import, "wasi:sockets/tcp@0.2.3");
    }
}
