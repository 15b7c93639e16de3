//! Personalized offers: the ports, the DynamoDB adapter and the services.
//! The domain (pure, no AWS) is its own crate, `offers-domain`, re-exported
//! here as `domain`; the API functions' HTTP plumbing is `offers-http`.

pub use offers_domain as domain;

pub mod activity;
pub mod always_on;
pub mod assign;
pub mod budget_cache;
pub mod campaign_stats;
pub mod catalog_cache;
pub mod challenge_progress;
pub mod config;
pub mod deadline;
pub mod dispatch;
pub mod dynamo;
pub mod error;
pub mod fakes;
pub mod local_conventions;
pub mod lookup;
pub mod metrics;
pub mod plan;
pub mod ports;
pub mod profiles;
pub mod stream;
pub mod support;
pub mod telemetry;
pub mod webhook;
