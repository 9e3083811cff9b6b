//! Placeholder: the stream benchmark.
fn main() {}
