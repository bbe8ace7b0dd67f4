//! wiretrace: finds the guidewire in X-ray fluoroscopy frames and sends its centerline to a
//! surgical robot before a deadline.
//!
//! The modules follow the pipeline: [`capture`] → [`vision`] → [`pipeline`] → [`transport`];
//! [`engine`] is the learned segmentation engine, [`eval`] scores centerlines against ground truth, [`bench`](mod@bench) measures latency and memory, and
//! [`demo`] runs the whole chain.

pub mod bench;
pub mod capture;
pub mod config;
pub mod demo;
pub mod engine;
pub mod eval;
pub mod frame;
pub mod gpio;
// The GPU path calls CUDA through cudarc: its launches and driver calls are `unsafe`, each
// with its reason beside it.
#[allow(unsafe_code)]
pub mod gpu;
pub mod pipeline;
pub mod selftest;
pub mod service;
pub mod time;
pub mod transport;
pub mod vision;
