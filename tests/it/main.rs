//! The end-to-end tests: one binary, one module per area (linking the AWS
//! SDK and the functions once, not once per area). One area:
//! `cargo test -p offers-integration-tests --test it dispatcher::`.
//!
//! All areas share one process, so nothing here may rely on being alone in
//! it: tests share one DynamoDB Local (`shared_dynamodb`), each on tables of
//! its own; the outage tests freeze a DynamoDB Local they start themselves;
//! no test sets environment variables of the process (functions run as
//! processes get theirs on their command). The tests that had a binary to
//! themselves (the local stack, schemathesis, the two outages) take turns
//! (`HEAVY_TESTS`).

mod activity;
mod always_on;
mod binaries;
mod budgets;
mod campaign_stats;
mod challenge_progress;
mod challenge_progress_outage;
mod dispatcher;
mod dispatcher_assignment;
mod dispatcher_hostile;
mod dispatcher_outage;
mod local_stack;
mod lookup;
mod openapi;
mod support_assignment;
mod template;
mod user_visits;
mod webhook;
