//! The distributed plan's parts for a test or a bench: moto with the plan
//! bucket, the real plan-chunk binary run as Lambda runs it (each batch it
//! gets recorded), and the local Step Functions stand-in serving the
//! template's `PlanStateMachine` (with the given parameters), for `offers
//! campaign plan --audience s3://...` to start and follow.

use crate::{free_port, function_binary, shared_dynamodb, TestBed, PENDING};
use offers_local::functions::{FunctionSpec, LocalFunction};
use offers_local::invoke::Invoke;
use offers_local::moto::MotoServer;
use offers_local::step_functions::api::StepFunctions;
use offers_local::step_functions::runner::Lambdas;
use offers_local::step_functions::Services;
use offers_shared::local_conventions::{
    local_function_arn, local_state_machine_arn, LOCAL_PLAN_BUCKET, PLAN_STATE_MACHINE,
};
use serde_json::Value;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

pub const PLAN_CHUNK: &str = "PlanChunkFunction";

/// The plan-chunk function as the map invokes it, each batch recorded.
pub struct Recording {
    pub function: Arc<LocalFunction>,
    /// Each batch: its users' lines and its BatchInput.
    pub batches: Mutex<Vec<(Vec<u64>, Value)>>,
    in_flight: AtomicUsize,
    pub most_in_flight: AtomicUsize,
}

impl Lambdas for Recording {
    async fn invoke(
        &self,
        function_arn: &str,
        payload: Value,
    ) -> Result<Value, offers_local::InvokeError> {
        assert_eq!(function_arn, local_function_arn(PLAN_CHUNK));
        let lines = payload["Items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|item| item["index"].as_u64().unwrap_or(u64::MAX) + 1)
                    .collect()
            })
            .unwrap_or_default();
        self.batches
            .lock()
            .expect("batches")
            .push((lines, payload["BatchInput"].clone()));
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_in_flight.fetch_max(now, Ordering::SeqCst);
        let answer = self.function.invoke(payload).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        answer
    }
}

/// moto with the plan bucket, the plan-chunk binary, the stand-in serving
/// the template's state machine (with `parameters`).
pub struct PlanStack {
    pub moto: MotoServer,
    pub s3: aws_sdk_s3::Client,
    pub recording: Arc<Recording>,
    pub step_functions: SocketAddr,
    _stop: watch::Sender<bool>,
}

impl PlanStack {
    /// `dynamodb`: the endpoint the plan-chunk function writes to.
    pub async fn start(
        bed: &TestBed,
        parameters: &[(&str, &str)],
        dynamodb: &str,
        write_concurrency: &str,
    ) -> PlanStack {
        let moto = MotoServer::start().expect("moto");
        moto.create_bucket(LOCAL_PLAN_BUCKET).await.expect("bucket");
        let s3 = moto.s3_client().await;
        let (stop, stopped) = watch::channel(false);
        let mut variables = bed.environment(
            PLAN_CHUNK,
            &[("PLAN_CHUNK_WRITE_CONCURRENCY", write_concurrency)],
        );
        variables.insert("AWS_LAMBDA_LOG_LEVEL".into(), "WARN".into());
        let template = bed.template.clone().with_parameters(parameters);
        let function = LocalFunction::start(
            FunctionSpec {
                logical_id: PLAN_CHUNK.into(),
                binary: function_binary("plan-chunk"),
                variables,
                endpoint: dynamodb.to_owned(),
                timeout: Duration::from_secs(300),
                instances: 4,
                log_file: None,
            },
            stopped.clone(),
        )
        .await
        .expect("plan-chunk starts");
        assert!(
            function.ready(Duration::from_secs(60)).await,
            "plan-chunk ready"
        );
        let recording = Arc::new(Recording {
            function: Arc::new(function),
            batches: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            most_in_flight: AtomicUsize::new(0),
        });
        let definition = template
            .state_machine_definition(PLAN_STATE_MACHINE, &bed.tables)
            .expect("definition");
        let api = Arc::new(StepFunctions::new(
            [(local_state_machine_arn(PLAN_STATE_MACHINE), definition)].into(),
            Services {
                dynamodb: bed.client.clone(),
                s3: s3.clone(),
                lambdas: recording.clone(),
            },
        ));
        let step_functions = SocketAddr::from(([127, 0, 0, 1], free_port()));
        tokio::spawn(api.serve(step_functions, stopped));
        PlanStack {
            moto,
            s3,
            recording,
            step_functions,
            _stop: stop,
        }
    }

    pub async fn put_audience(&self, key: &str, text: &str) -> String {
        self.s3
            .put_object()
            .bucket(LOCAL_PLAN_BUCKET)
            .key(key)
            .body(text.as_bytes().to_vec().into())
            .send()
            .await
            .expect("put audience");
        format!("s3://{LOCAL_PLAN_BUCKET}/{key}")
    }

    /// `offers campaign plan` against the bed's tables, this moto and this stand-in.
    pub fn offers(&self, offers: &str, bed: &TestBed, args: &[&str]) -> Command {
        let prefix = bed
            .table(PENDING)
            .strip_suffix(PENDING)
            .expect("prefix")
            .to_owned();
        let mut command = Command::new(offers);
        for variable in [
            "AWS_PROFILE",
            "AWS_ENDPOINT_URL",
            "AWS_ENDPOINT_URL_DYNAMODB",
            "CAMPAIGNS_TABLE_NAME",
            "PENDING_TABLE_NAME",
        ] {
            command.env_remove(variable);
        }
        command
            .args([
                "--endpoint-url",
                // The bed's DynamoDB Local (a bench gives each side its own).
                &bed.sdk
                    .endpoint_url()
                    .map_or_else(|| shared_dynamodb().endpoint(), str::to_owned),
                "--region",
                "us-east-1",
            ])
            .args(["--table-prefix", &prefix])
            .args(args)
            .env("AWS_ACCESS_KEY_ID", "fake")
            .env("AWS_SECRET_ACCESS_KEY", "fake")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_ENDPOINT_URL_S3", self.moto.endpoint())
            .env(
                "AWS_ENDPOINT_URL_SFN",
                format!("http://{}", self.step_functions),
            )
            .env(
                "OFFERS_PLAN_STATE_MACHINE_ARN",
                local_state_machine_arn(PLAN_STATE_MACHINE),
            );
        command
    }
}
