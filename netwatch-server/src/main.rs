//! `netwatch-server`: thin binary over the `netwatch_server` library.
fn main() {}
