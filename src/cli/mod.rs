//! Subcommands of the `tinygen` command line, one module each: the arguments and what is printed.
//! `main` dispatches to `cli::<command>::run(args)`; the work is in the `tinygen` library.
pub mod compare;
pub mod eval;
pub mod export;
pub mod import;
pub mod quickstart;
pub mod sample;
pub mod train;
pub mod verify;
