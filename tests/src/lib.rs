//! Helpers shared by the end-to-end tests: locating the built binaries, fixtures, temp dirs.
#![forbid(unsafe_code)]
