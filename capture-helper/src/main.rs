//! `netwatch-capture`: thin binary over the `netwatch_capture` library.
fn main() {}
