//! Components made from WAT in the test, for precise hostile guests: a core module with the
//! `connector` world's metadata embedded, encoded as a component by wit-component.

use std::path::Path;

use wit_component::{embed_component_metadata, ComponentEncoder, StringEncoding};
use wit_parser::Resolve;

/// A bump allocator and a memory, which every fixture needs for the host to hand it strings.
const ALLOCATOR: &str = r#"
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 4096))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $at i32)
    (local.set $at (i32.and (i32.add (global.get $next) (i32.sub (local.get 2) (i32.const 1)))
                            (i32.sub (i32.const 0) (local.get 2))))
    (global.set $next (i32.add (local.get $at) (local.get 3)))
    (local.get $at))
"#;

/// A connector component whose `next-page` runs `body` (WAT instructions leaving the address
/// of its result on the stack; address 0 holds zeros: `ok` of an empty, last page). `imports`
/// are WAT import fields.
pub fn connector(imports: &str, body: &str) -> Vec<u8> {
    let module = format!(
        r#"(module
             {imports}
             {ALLOCATOR}
             (func (export "tributary:plugin/sync@0.1.0#next-page")
               (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)
               {body}))"#
    );
    let mut module = wat::parse_str(&module).unwrap();
    let mut resolve = Resolve::default();
    let wit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto/wit");
    let (package, _) = resolve.push_dir(&wit).unwrap();
    let world = resolve.select_world(&[package], Some("connector")).unwrap();
    embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8).unwrap();
    ComponentEncoder::default()
        .validate(true)
        .module(&module)
        .unwrap()
        .encode()
        .unwrap()
}

/// A guest that ends its sync at once, with no item.
pub fn empty() -> Vec<u8> {
    connector("", "(i32.const 0)")
}

/// A guest that never returns.
pub fn busy_loop() -> Vec<u8> {
    connector("", "(loop $forever (br $forever)) (i32.const 0)")
}

/// A guest that grows its memory a page at a time until it cannot.
pub fn memory_bomb() -> Vec<u8> {
    connector(
        "",
        "(loop $more (br_if $more (i32.ne (memory.grow (i32.const 16)) (i32.const -1)))) (i32.const 0)",
    )
}

/// A guest that traps.
pub fn trap() -> Vec<u8> {
    connector("", "(unreachable)")
}

/// A guest that calls the host's `now-ms` `times` times, then ends its sync (for the
/// benchmark, which includes this module).
#[allow(dead_code)]
pub fn host_calls(times: u32) -> Vec<u8> {
    connector(
        r#"(import "tributary:plugin/host@0.1.0" "now-ms" (func $now (result i64)))"#,
        &format!(
            "(local $i i32)
             (loop $again
               (drop (call $now))
               (local.set $i (i32.add (local.get $i) (i32.const 1)))
               (br_if $again (i32.lt_u (local.get $i) (i32.const {times}))))
             (i32.const 0)"
        ),
    )
}
