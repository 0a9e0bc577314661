//! The aigc-edge proxy-wasm HTTP filter: a thin shell over the `aigc-edge` core.
//!
//! Everything but the proxy-wasm glue (`glue`, built only for wasm32) is plain Rust and tested
//! natively: [`exchange::Exchange`] is the whole per-request logic as a state machine.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod api;
pub mod body;
pub mod config;
pub mod exchange;
mod fast;
pub mod guard;
pub mod inspect;
pub mod json;
mod lanes;
pub mod metrics;
pub mod platform;
pub mod sse;

#[cfg(target_arch = "wasm32")]
mod glue;
