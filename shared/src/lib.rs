//! Personalized offers: the domain (no AWS), its ports, and the DynamoDB adapter.

pub mod assign;
pub mod catalog_cache;
pub mod config;
pub mod dispatch;
pub mod domain;
pub mod dynamo;
pub mod error;
pub mod http;
pub mod metrics;
pub mod ports;
pub mod support;
pub mod telemetry;
