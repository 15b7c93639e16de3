//! Why a pending row or an assignment can never become an offer.

use crate::limits::bounded_message;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The contract's reason codes (offers-contract.md, section 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasonCode {
    InvalidRow,
    InvalidDates,
    Expired,
    UnknownOffer,
    MissingTemplate,
    UnknownTemplate,
    TemplateMismatch,
    MissingRule,
    UnknownRule,
    InvalidRuleValue,
    InvalidChallenge,
    FrequencyMismatch,
    /// A transaction (contract section 8) that can never count.
    InvalidTransaction,
    /// The campaign's offers budget is used up (section 14).
    BudgetExhausted,
}

impl ReasonCode {
    pub const ALL: [ReasonCode; 14] = [
        ReasonCode::InvalidRow,
        ReasonCode::InvalidDates,
        ReasonCode::Expired,
        ReasonCode::UnknownOffer,
        ReasonCode::MissingTemplate,
        ReasonCode::UnknownTemplate,
        ReasonCode::TemplateMismatch,
        ReasonCode::MissingRule,
        ReasonCode::UnknownRule,
        ReasonCode::InvalidRuleValue,
        ReasonCode::InvalidChallenge,
        ReasonCode::FrequencyMismatch,
        ReasonCode::InvalidTransaction,
        ReasonCode::BudgetExhausted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::InvalidRow => "invalid_row",
            ReasonCode::InvalidDates => "invalid_dates",
            ReasonCode::Expired => "expired",
            ReasonCode::UnknownOffer => "unknown_offer",
            ReasonCode::MissingTemplate => "missing_template",
            ReasonCode::UnknownTemplate => "unknown_template",
            ReasonCode::TemplateMismatch => "template_mismatch",
            ReasonCode::MissingRule => "missing_rule",
            ReasonCode::UnknownRule => "unknown_rule",
            ReasonCode::InvalidRuleValue => "invalid_rule_value",
            ReasonCode::InvalidChallenge => "invalid_challenge",
            ReasonCode::FrequencyMismatch => "frequency_mismatch",
            ReasonCode::InvalidTransaction => "invalid_transaction",
            ReasonCode::BudgetExhausted => "budget_exhausted",
        }
    }
}

/// A reason code this system does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown reason code {0:?}; one of: invalid_row, invalid_dates, expired, unknown_offer, missing_template, unknown_template, template_mismatch, missing_rule, unknown_rule, invalid_rule_value, invalid_challenge, frequency_mismatch, invalid_transaction, budget_exhausted")]
pub struct UnknownReasonCode(pub String);

impl std::str::FromStr for ReasonCode {
    type Err = UnknownReasonCode;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        ReasonCode::ALL
            .into_iter()
            .find(|code| code.as_str() == text)
            .ok_or_else(|| UnknownReasonCode(text.to_owned()))
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A permanent refusal: the code for machines, the message for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Rejection {
    pub code: ReasonCode,
    pub message: String,
}

impl Rejection {
    /// The message is cut to [`crate::limits::MAX_MESSAGE_CHARS`]: whatever it quotes, a
    /// rejection always fits its item.
    pub fn new(code: ReasonCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: bounded_message(message.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_reads_back_from_its_name() {
        for code in ReasonCode::ALL {
            assert_eq!(code.as_str().parse::<ReasonCode>(), Ok(code));
            assert_eq!(code.to_string(), code.as_str());
        }
        let unknown = "not_a_code".parse::<ReasonCode>().unwrap_err();
        assert_eq!(unknown, UnknownReasonCode("not_a_code".into()));
        assert!(unknown.to_string().contains("frequency_mismatch"));
    }
}
