//! Putting a rejected pending row back (the `offers rejections retry`
//! command): which rejections may be retried. The rule is the business's;
//! the adapter (`dynamo::rejected`) only says what the stored item is and
//! hands over its row as plain JSON.

use crate::assignment::parse_pending_row;
use crate::rejection::{ReasonCode, Rejection};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// What a rejected table item holds, as far as retrying goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectedItem {
    /// A pending row, whole.
    PendingRow,
    /// A rejected transaction (challenge progress): no pending row.
    Transaction,
    /// Stored as raw text (the stream image could not be read).
    Unreadable,
    /// Stored without some of its attributes (it was too large to keep whole).
    Incomplete,
}

/// Why a rejection is not retried.
#[derive(Debug, Clone, PartialEq)]
pub enum RetrySkip {
    /// Stored as raw text: there is no row to put back.
    Unreadable,
    /// Fails on its own (e.g. `expired`): it would only be rejected again.
    StillInvalid(Rejection),
    /// A newer pending row has the key: never clobbered.
    PendingRowExists,
    /// Someone retried or removed it meanwhile.
    RejectionGone,
    /// The same stream record also made an offer (a rejection stored before
    /// the dispatcher kept one outcome per record): retrying would make a
    /// second offer.
    AlreadyDispatched,
    /// Stored without some of its attributes (it was too large to keep whole).
    Incomplete,
    /// A rejected transaction: there is no pending row to put back (the
    /// transaction counts once it is written again, fixed, to its table).
    NotAPendingRow,
}

/// Whether a rejected item's row may be put back into the pending table:
/// a whole pending row, readable (`row`: the item without what the
/// dispatcher added, as plain JSON, or why it cannot be read) and valid on
/// its own at `now`. Catalog checks are left to the dispatcher, which sees
/// the row again.
pub fn check_retry(
    item: RejectedItem,
    row: impl FnOnce() -> Result<Map<String, Value>, String>,
    now: DateTime<Utc>,
) -> Result<(), RetrySkip> {
    match item {
        RejectedItem::Transaction => return Err(RetrySkip::NotAPendingRow),
        RejectedItem::Unreadable => return Err(RetrySkip::Unreadable),
        RejectedItem::Incomplete => return Err(RetrySkip::Incomplete),
        RejectedItem::PendingRow => {}
    }
    let row = row().map_err(|problem| {
        RetrySkip::StillInvalid(Rejection::new(
            ReasonCode::InvalidRow,
            format!("the stored row cannot be read: {problem}"),
        ))
    })?;
    parse_pending_row(&row, now).map_err(RetrySkip::StillInvalid)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(expiry: &str) -> Map<String, Value> {
        let value = json!({"userId": "u", "sortKey": "k", "offerId": "co",
            "startDate": "2019-01-01T00:00:00Z", "expiryDate": expiry});
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn only_a_whole_readable_row_valid_on_its_own_is_retried() {
        let now = Utc::now();
        let valid = || Ok(row("2099-01-01T00:00:00Z"));
        assert_eq!(check_retry(RejectedItem::PendingRow, valid, now), Ok(()));
        for (item, skip) in [
            (RejectedItem::Transaction, RetrySkip::NotAPendingRow),
            (RejectedItem::Unreadable, RetrySkip::Unreadable),
            (RejectedItem::Incomplete, RetrySkip::Incomplete),
        ] {
            assert_eq!(check_retry(item, valid, now), Err(skip));
        }
        let expired = check_retry(
            RejectedItem::PendingRow,
            || Ok(row("2020-01-01T00:00:00Z")),
            now,
        );
        assert!(
            matches!(expired, Err(RetrySkip::StillInvalid(ref r)) if r.code == ReasonCode::Expired),
            "{expired:?}"
        );
        let unreadable = check_retry(RejectedItem::PendingRow, || Err("bad".into()), now);
        assert!(
            matches!(unreadable, Err(RetrySkip::StillInvalid(ref r)) if r.code == ReasonCode::InvalidRow),
            "{unreadable:?}"
        );
    }
}
