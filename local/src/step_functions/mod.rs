//! The local stand-in for Step Functions: the state machines of template.yaml
//! (`AWS::Serverless::StateMachine`), their definition read from the
//! template with its `DefinitionSubstitutions` resolved as CloudFormation
//! would (`asl`), run state by state (`runner`) against DynamoDB Local,
//! moto's S3 and the local functions, behind the few Step Functions API
//! calls that `offers campaign plan --audience s3://...` makes (`api`:
//! StartExecution, DescribeExecution, ListMapRuns, DescribeMapRun). It runs
//! what the distributed plan's definition uses and refuses anything else by
//! name, so that a definition the stand-in cannot run fails loudly instead
//! of running differently (docs/local-stack.md#distributed-plan).

pub mod api;
pub mod asl;
pub mod paths;
pub mod runner;

pub use asl::StateMachineDefinition;
pub use runner::{Execution, ExecutionStatus, MapRunCounts, Services};
