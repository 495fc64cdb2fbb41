//! The `asycamore` binary.
fn main() {}
