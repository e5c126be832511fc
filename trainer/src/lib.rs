//! `tinygen-trainer`: layers with a backward pass, losses, optimisers, models, data and the training loop.
pub mod data;
