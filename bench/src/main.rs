//! asycamore-bench: load and probing tools.
fn main() {}
