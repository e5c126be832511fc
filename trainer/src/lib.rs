//! `tinygen-trainer`: layers with a backward pass, losses, optimisers, models, data and the training loop.
pub mod checkpoint;
pub mod data;
pub mod image;
pub mod metrics;
pub mod gemm;
pub mod init;
pub mod loss;
pub mod nn;
pub mod optim;
pub mod models;
pub mod train;
