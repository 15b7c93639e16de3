//! A function's `DynamoDB` event: the settings of its event source mapping,
//! as the local stack applies them.

use super::{shape, tagged, SamTemplate, TemplateError};
use yaml_serde::Value;

/// The settings of a function's `DynamoDB` event (its event source mapping).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamMappingSettings {
    /// The table whose stream it reads (the logical id in `!GetAtt X.StreamArn`).
    pub table: String,
    pub batch_size: usize,
    pub batching_window: std::time::Duration,
    /// Retries of a failing batch before it goes to the on-failure destination.
    pub maximum_retry_attempts: u32,
    /// Records older than this go to the on-failure destination unprocessed.
    pub maximum_record_age: std::time::Duration,
    pub bisect_batch_on_function_error: bool,
    pub report_batch_item_failures: bool,
    /// Event names that pass the filter (`{"eventName": [...]}`); `None`: all pass.
    pub event_names: Option<Vec<String>>,
    /// Batches of one shard in flight at once (AWS: 1 to 10).
    pub parallelization_factor: usize,
    /// The table's partition key attribute: records with the same value of
    /// it go to the same concurrent batch slot, in order.
    pub partition_key: String,
}

impl SamTemplate {
    /// The settings of the function's `DynamoDB` event, with parameters at
    /// their defaults. Fails on a filter pattern the local stack cannot apply.
    pub fn stream_mapping(
        &self,
        function_id: &str,
    ) -> Result<StreamMappingSettings, TemplateError> {
        self.stream_mapping_if_any(function_id)?
            .ok_or_else(|| shape(format!("{function_id} has no DynamoDB event")))
    }

    /// As [`Self::stream_mapping`], `None` for a function without a
    /// `DynamoDB` event.
    pub fn stream_mapping_if_any(
        &self,
        function_id: &str,
    ) -> Result<Option<StreamMappingSettings>, TemplateError> {
        let Some((_, event)) = self
            .events(function_id)?
            .into_iter()
            .find(|(kind, _)| kind.as_str() == Some("DynamoDB"))
        else {
            return Ok(None);
        };
        let table = event
            .get("Stream")
            .and_then(|stream| tagged(stream, "!GetAtt"))
            .and_then(|target| target.strip_suffix(".StreamArn"))
            .map(str::to_owned)
            .ok_or_else(|| {
                shape(format!(
                    "{function_id}: Stream is not !GetAtt <Table>.StreamArn"
                ))
            })?;
        let number = |name: &str, default: u64| match event.get(name) {
            Some(value) => self.number(value),
            None => Ok(default),
        };
        let flag = |name: &str| event.get(name).and_then(Value::as_bool).unwrap_or(false);
        let report_batch_item_failures = event
            .get("FunctionResponseTypes")
            .and_then(Value::as_sequence)
            .is_some_and(|types| {
                types
                    .iter()
                    .any(|kind| kind.as_str() == Some("ReportBatchItemFailures"))
            });
        let mut event_names: Option<Vec<String>> = None;
        let patterns = event
            .get("FilterCriteria")
            .and_then(|criteria| criteria.get("Filters"))
            .and_then(Value::as_sequence)
            .cloned()
            .unwrap_or_default();
        for filter in patterns {
            let pattern = filter
                .get("Pattern")
                .and_then(Value::as_str)
                .ok_or_else(|| shape("a filter without a Pattern"))?;
            let names = event_name_pattern(pattern)?;
            event_names.get_or_insert_with(Vec::new).extend(names);
        }
        // AWS: -1 (or absent) is "retry until the record expires"; finite here.
        let retries = number("MaximumRetryAttempts", 10_000)?;
        let parallelization_factor = number("ParallelizationFactor", 1)?;
        if !(1..=10).contains(&parallelization_factor) {
            return Err(shape(format!(
                "{function_id}: ParallelizationFactor {parallelization_factor} is not 1 to 10"
            )));
        }
        let partition_key = self.partition_key(&table)?;
        Ok(Some(StreamMappingSettings {
            table,
            batch_size: number("BatchSize", 100)? as usize,
            batching_window: std::time::Duration::from_secs(number(
                "MaximumBatchingWindowInSeconds",
                0,
            )?),
            maximum_retry_attempts: u32::try_from(retries).unwrap_or(u32::MAX),
            maximum_record_age: std::time::Duration::from_secs(number(
                "MaximumRecordAgeInSeconds",
                604_800,
            )?),
            bisect_batch_on_function_error: flag("BisectBatchOnFunctionError"),
            report_batch_item_failures,
            event_names,
            parallelization_factor: parallelization_factor as usize,
            partition_key,
        }))
    }

    /// The attribute of a table's `KeySchema` that is its `HASH` key.
    fn partition_key(&self, table: &str) -> Result<String, TemplateError> {
        self.properties(table)?
            .get("KeySchema")
            .and_then(Value::as_sequence)
            .and_then(|schema| {
                schema
                    .iter()
                    .find(|key| key.get("KeyType").and_then(Value::as_str) == Some("HASH"))
            })
            .and_then(|key| key.get("AttributeName").and_then(Value::as_str))
            .map(str::to_owned)
            .ok_or_else(|| shape(format!("{table} has no HASH key")))
    }
}

/// The event names of a filter pattern `{"eventName": ["INSERT", ...]}`: the
/// only shape of pattern the local stack applies.
fn event_name_pattern(pattern: &str) -> Result<Vec<String>, TemplateError> {
    let unsupported = || shape(format!("filter pattern {pattern} is not supported locally"));
    let parsed: serde_json::Value = serde_json::from_str(pattern).map_err(|_| unsupported())?;
    let object = parsed.as_object().ok_or_else(unsupported)?;
    if object.len() != 1 {
        return Err(unsupported());
    }
    object
        .get("eventName")
        .and_then(serde_json::Value::as_array)
        .ok_or_else(unsupported)?
        .iter()
        .map(|name| name.as_str().map(str::to_owned).ok_or_else(unsupported))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dispatchers_mapping_comes_from_the_template() {
        let template = SamTemplate::project().expect("template.yaml");
        let mapping = template
            .stream_mapping("OfferDispatcherFunction")
            .expect("mapping");
        assert_eq!(mapping.table, "PendingPersonalizedOffersTable");
        assert_eq!(mapping.batch_size, 100);
        assert_eq!(mapping.batching_window, std::time::Duration::from_secs(1));
        assert_eq!(mapping.maximum_retry_attempts, 10);
        assert_eq!(
            mapping.maximum_record_age,
            std::time::Duration::from_secs(21_600)
        );
        assert!(mapping.bisect_batch_on_function_error);
        assert!(mapping.report_batch_item_failures);
        assert_eq!(mapping.event_names, Some(vec!["INSERT".to_owned()]));
        assert_eq!(
            mapping.parallelization_factor, 10,
            "the parameter's default"
        );
        assert_eq!(mapping.partition_key, "userId");
        let four = template
            .clone()
            .with_parameters(&[("DispatcherParallelizationFactor", "4")]);
        let mapping = four
            .stream_mapping("OfferDispatcherFunction")
            .expect("mapping");
        assert_eq!(mapping.parallelization_factor, 4, "an override");
        let eleven = template.with_parameters(&[("DispatcherParallelizationFactor", "11")]);
        assert!(eleven.stream_mapping("OfferDispatcherFunction").is_err());
    }

    #[test]
    fn the_transaction_functions_keep_one_batch_per_shard() {
        // Their table's partition key is the transaction, not the user: a
        // user's transactions would go to different slots (docs/design.md).
        let template = SamTemplate::project().expect("template.yaml");
        for function in ["ChallengeProgressFunction", "UserVisitsFunction"] {
            let mapping = template.stream_mapping(function).expect("mapping");
            assert_eq!(mapping.partition_key, "transactionId", "{function}");
            assert_eq!(mapping.parallelization_factor, 1, "{function}");
        }
    }

    #[test]
    fn only_event_name_patterns_are_applied() {
        assert_eq!(
            event_name_pattern(r#"{"eventName": ["INSERT", "MODIFY"]}"#).ok(),
            Some(vec!["INSERT".to_owned(), "MODIFY".to_owned()])
        );
        assert!(event_name_pattern(r#"{"dynamodb": {"Keys": {}}}"#).is_err());
        assert!(event_name_pattern("not json").is_err());
    }
}
