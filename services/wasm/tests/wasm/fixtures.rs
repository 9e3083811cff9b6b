//! Components made from WAT in the test, for precise hostile guests: a core module with the
//! `connector` world's metadata embedded, encoded as a component by wit-component.

use std::path::Path;

use wit_component::{embed_component_metadata, ComponentEncoder, StringEncoding};
use wit_parser::Resolve;

/// The memory of a fixture that needs no more than a page.
const ONE_PAGE: &str = r#"(memory (export "memory") 1)"#;

/// A bump allocator from `start` up, which every fixture needs for the host to hand it
/// strings.
fn allocator(start: u32) -> String {
    format!(
        r#"
  (global $next (mut i32) (i32.const {start}))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $at i32)
    (local.set $at (i32.and (i32.add (global.get $next) (i32.sub (local.get 2) (i32.const 1)))
                            (i32.sub (i32.const 0) (local.get 2))))
    (global.set $next (i32.add (local.get $at) (local.get 3)))
    (local.get $at))
"#
    )
}

/// A connector component whose `next-page` runs `body` (WAT instructions leaving the address
/// of its result on the stack; address 0 holds zeros: `ok` of an empty, last page). `imports`
/// are WAT import fields.
pub fn connector(imports: &str, body: &str) -> Vec<u8> {
    connector_with_memory(ONE_PAGE, 4096, imports, body)
}

/// [`connector`] with its own `memory` field, allocating from `heap` up.
fn connector_with_memory(memory: &str, heap: u32, imports: &str, body: &str) -> Vec<u8> {
    let allocator = allocator(heap);
    let module = format!(
        r#"(module
             {imports}
             {memory}
             {allocator}
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

/// A guest compiled ahead of time as a Rust or Go guest would be: it hands over `pages` pages
/// of `per_page` document items (the same item each time, its JSON built by the test), with a
/// checkpoint per page. What it costs is the host's side of an item: the canonical ABI's
/// lifting, the JSON parse, the contract's item.
#[allow(dead_code)]
pub fn precompiled_pages(pages: u32, per_page: u32, data: &str, raw: &str) -> Vec<u8> {
    // Strings, then the items, then two results: with and without a next page.
    let mut memory: Vec<u8> = Vec::new();
    let base = 8192u32;
    let put = |bytes: &[u8], memory: &mut Vec<u8>| -> (u32, u32) {
        while !memory.len().is_multiple_of(4) {
            memory.push(0);
        }
        let at = base + memory.len() as u32;
        memory.extend_from_slice(bytes);
        (at, bytes.len() as u32)
    };
    let entity = put(b"documents", &mut memory);
    let external = put(b"task-1", &mut memory);
    let modified = put(b"2026-01-01T00:00:00Z", &mut memory);
    let data = put(data.as_bytes(), &mut memory);
    let raw = put(raw.as_bytes(), &mut memory);
    let checkpoint = put(b"{\"v\":1}", &mut memory);
    let next = put(b"{}", &mut memory);
    while !memory.len().is_multiple_of(4) {
        memory.push(0);
    }
    let items_at = base + memory.len() as u32;
    for _ in 0..per_page {
        let mut item = Vec::with_capacity(44);
        for (ptr, len) in [entity, external] {
            item.extend_from_slice(&ptr.to_le_bytes());
            item.extend_from_slice(&len.to_le_bytes());
        }
        item.extend_from_slice(&[0, 0, 0, 0]); // operation: upsert, padded
        for (ptr, len) in [modified, data, raw] {
            item.extend_from_slice(&ptr.to_le_bytes());
            item.extend_from_slice(&len.to_le_bytes());
        }
        memory.extend_from_slice(&item);
    }
    let result = |with_next: bool, memory: &mut Vec<u8>| -> u32 {
        let at = base + memory.len() as u32;
        let mut r = vec![0u8; 36];
        r[4..8].copy_from_slice(&items_at.to_le_bytes());
        r[8..12].copy_from_slice(&per_page.to_le_bytes());
        r[12] = 1;
        r[16..20].copy_from_slice(&checkpoint.0.to_le_bytes());
        r[20..24].copy_from_slice(&checkpoint.1.to_le_bytes());
        if with_next {
            r[24] = 1;
            r[28..32].copy_from_slice(&next.0.to_le_bytes());
            r[32..36].copy_from_slice(&next.1.to_le_bytes());
        }
        memory.extend_from_slice(&r);
        at
    };
    let more = result(true, &mut memory);
    let last = result(false, &mut memory);
    let escaped: String = memory.iter().map(|b| format!("\\{b:02x}")).collect();
    // The heap after the data, with 16 pages (1 MiB) for what the host hands over.
    let heap = (base as usize + memory.len()).div_ceil(8) * 8;
    let module_memory = format!("(memory (export \"memory\") {})", heap / 65536 + 17);
    connector_with_memory(
        &module_memory,
        heap as u32,
        &format!(r#"(data (i32.const {base}) "{escaped}") (global $page (mut i32) (i32.const 0))"#),
        &format!(
            "(global.set $page (i32.add (global.get $page) (i32.const 1)))
             (if (result i32) (i32.lt_u (global.get $page) (i32.const {pages}))
               (then (i32.const {more})) (else (i32.const {last})))"
        ),
    )
}
