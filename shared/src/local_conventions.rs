//! The local stack's conventions, shared by the local stack (`offers-local`)
//! and `offers --local`: the tables of template.yaml are created as
//! `<LOCAL_TABLE_PREFIX><LogicalId>` on DynamoDB Local at
//! `LOCAL_DYNAMODB_ENDPOINT`. Kept here so that the CLI needs no dependency on
//! the local stack. Nothing deployed reads them.

pub const LOCAL_TABLE_PREFIX: &str = "offers-local-";
pub const LOCAL_DYNAMODB_ENDPOINT: &str = "http://127.0.0.1:8000";
/// The signing secret of the local stack and the tests: an obviously fake
/// value that exists only on this machine (moto's server keeps it in memory).
pub const LOCAL_SIGNING_SECRET: &str = "whsec_local_only_not_a_real_secret";
/// The local stand-in for the dispatcher's SQS on-failure destination: a
/// local-only table (HASH `id`) of the stream batches that exhausted their
/// retries. Each item: `id` (S), `timestamp` (S, RFC 3339), `condition` (S,
/// e.g. `RetryAttemptsExhausted`), `batchSize` (N: records in the batch),
/// `message` (S: the JSON Lambda sends to an on-failure destination, with
/// `DDBStreamBatchInfo`), `records` (S: JSON list of the batch's
/// `{sequenceNumber, userId, sortKey}`).
pub const LOCAL_ON_FAILURE_TABLE: &str = "offers-local-DispatcherOnFailure";

/// The local stand-in for a stream function's on-failure queue: the
/// dispatcher's is [`LOCAL_ON_FAILURE_TABLE`], any other function's
/// `offers-local-<LogicalId without "Function">OnFailure` (challenge
/// progress: `offers-local-ChallengeProgressOnFailure`). Same item layout;
/// each record also carries its stream `keys`.
pub fn local_on_failure_table(function_logical_id: &str) -> String {
    match function_logical_id {
        "OfferDispatcherFunction" => LOCAL_ON_FAILURE_TABLE.to_owned(),
        other => format!(
            "{LOCAL_TABLE_PREFIX}{}OnFailure",
            other.strip_suffix("Function").unwrap_or(other)
        ),
    }
}

/// moto's server in the local stack: S3 (the distributed plan's audiences
/// and results) and Secrets Manager.
pub const LOCAL_S3_ENDPOINT: &str = "http://127.0.0.1:8084";
/// The local stack's stand-in for Step Functions (the distributed plan).
pub const LOCAL_STEP_FUNCTIONS_ENDPOINT: &str = "http://127.0.0.1:8083";
/// The local bucket of template.yaml's `PlanBucket` (audiences/, plan-results/).
pub const LOCAL_PLAN_BUCKET: &str = "offers-local-plans";
/// The ARN the local stand-in gives a state machine of template.yaml.
pub fn local_state_machine_arn(logical_id: &str) -> String {
    format!("arn:aws:states:us-east-1:local:stateMachine:{LOCAL_TABLE_PREFIX}{logical_id}")
}
/// The ARN the local stand-in gives a function of template.yaml (`!GetAtt X.Arn`).
pub fn local_function_arn(logical_id: &str) -> String {
    format!("arn:aws:lambda:us-east-1:local:function:{LOCAL_TABLE_PREFIX}{logical_id}")
}
/// The local distributed plan's state machine (template.yaml `PlanStateMachine`).
pub const PLAN_STATE_MACHINE: &str = "PlanStateMachine";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_stream_function_has_its_own_failure_table() {
        assert_eq!(
            local_on_failure_table("OfferDispatcherFunction"),
            LOCAL_ON_FAILURE_TABLE
        );
        assert_eq!(
            local_on_failure_table("ChallengeProgressFunction"),
            "offers-local-ChallengeProgressOnFailure"
        );
    }
}
