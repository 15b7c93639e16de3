//! The permissions a function's DynamoDB calls need, recorded by an
//! interceptor on its client (the IAM policy tests compare them with
//! template.yaml).

use crate::bed::TestBed;
use aws_sdk_dynamodb::operation::{
    batch_get_item::BatchGetItemInput, batch_write_item::BatchWriteItemInput,
    delete_item::DeleteItemInput, get_item::GetItemInput, put_item::PutItemInput,
    query::QueryInput, scan::ScanInput, transact_write_items::TransactWriteItemsInput,
    update_item::UpdateItemInput,
};
use aws_sdk_dynamodb::Client;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_types::config_bag::ConfigBag;
use offers_shared::dynamo::dynamodb_client;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// One permission a DynamoDB call needs: the IAM action, the table, and
/// the index for a Query.
pub type Permission = (String, String, Option<String>);

/// Records, from a client's calls, every (action, table, index) they need:
/// a transaction needs the actions of its parts.
#[derive(Debug, Default, Clone)]
pub struct PermissionRecorder(Arc<Mutex<BTreeSet<Permission>>>);

impl PermissionRecorder {
    pub fn recorded(&self) -> BTreeSet<Permission> {
        self.0.lock().map(|set| set.clone()).unwrap_or_default()
    }

    fn record(&self, action: &str, table: Option<&str>, index: Option<&str>) {
        if let Ok(mut set) = self.0.lock() {
            set.insert((
                format!("dynamodb:{action}"),
                table.unwrap_or("?").to_owned(),
                index.map(str::to_owned),
            ));
        }
    }
}

impl Intercept for PermissionRecorder {
    fn name(&self) -> &'static str {
        "PermissionRecorder"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let input = context.input();
        if let Some(i) = input.downcast_ref::<GetItemInput>() {
            self.record("GetItem", i.table_name(), None);
        } else if let Some(i) = input.downcast_ref::<PutItemInput>() {
            self.record("PutItem", i.table_name(), None);
        } else if let Some(i) = input.downcast_ref::<UpdateItemInput>() {
            self.record("UpdateItem", i.table_name(), None);
        } else if let Some(i) = input.downcast_ref::<DeleteItemInput>() {
            self.record("DeleteItem", i.table_name(), None);
        } else if let Some(i) = input.downcast_ref::<QueryInput>() {
            self.record("Query", i.table_name(), i.index_name());
        } else if let Some(i) = input.downcast_ref::<ScanInput>() {
            self.record("Scan", i.table_name(), i.index_name());
        } else if let Some(i) = input.downcast_ref::<BatchGetItemInput>() {
            for table in i.request_items().into_iter().flat_map(|items| items.keys()) {
                self.record("BatchGetItem", Some(table), None);
            }
        } else if let Some(i) = input.downcast_ref::<BatchWriteItemInput>() {
            for table in i.request_items().into_iter().flat_map(|items| items.keys()) {
                self.record("BatchWriteItem", Some(table), None);
            }
        } else if let Some(i) = input.downcast_ref::<TransactWriteItemsInput>() {
            for item in i.transact_items() {
                if let Some(put) = item.put() {
                    self.record("PutItem", Some(put.table_name()), None);
                }
                if let Some(delete) = item.delete() {
                    self.record("DeleteItem", Some(delete.table_name()), None);
                }
                if let Some(update) = item.update() {
                    self.record("UpdateItem", Some(update.table_name()), None);
                }
                if let Some(check) = item.condition_check() {
                    self.record("ConditionCheckItem", Some(check.table_name()), None);
                }
            }
        } else {
            self.record("Unrecognized", None, None);
        }
        Ok(())
    }
}

impl TestBed {
    /// A function's DynamoDB client, as main.rs builds it, that also records
    /// the permissions its calls need.
    pub fn recording_client(
        &self,
        settings: &offers_shared::config::SdkSettings,
        recorder: &PermissionRecorder,
    ) -> Client {
        let client = dynamodb_client(&self.sdk, settings);
        let config = client
            .config()
            .to_builder()
            .interceptor(recorder.clone())
            .build();
        Client::from_conf(config)
    }

    /// The logical id of a table of this bed, from its physical name.
    pub fn logical_id(&self, physical: &str) -> String {
        self.tables
            .names
            .iter()
            .find(|(_, name)| name.as_str() == physical)
            .map(|(logical, _)| logical.clone())
            .unwrap_or_else(|| physical.to_owned())
    }
}
