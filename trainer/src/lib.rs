//! `tinygen-trainer`: layers with a backward pass, losses, optimisers, models, data and the training loop.
pub mod checkpoint;
pub mod data;
pub mod eval;
pub mod flow;
pub mod gemm;
pub mod image;
pub mod init;
pub mod loss;
pub mod metrics;
pub mod models;
pub mod nn;
pub mod optim;
pub mod train;
