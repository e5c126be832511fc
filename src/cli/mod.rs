//! Subcommands of the `tinygen` command line, one module each; `main` dispatches to
//! `cli::<command>::run(args)`.
pub mod export;
mod files;
pub mod sample;
pub mod train;
pub mod verify;
