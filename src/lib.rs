//! `tinygen`: the work behind every command of the `tinygen` command line, as library code that
//! the binary, the tests and the benchmarks call. The binary (`src/main.rs`, `src/cli/`) parses
//! arguments and prints.
#![deny(missing_docs)]

pub mod device;
pub mod eval;
pub mod export;
pub mod files;
pub mod import;
pub mod quickstart;
pub mod report;
pub mod sample;
pub mod verify;
