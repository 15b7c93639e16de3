//! The campaign webhook (contract section 11): how marketing platforms sign
//! a request, what its body holds, and its answer. Pure: the signing key is
//! given by the caller (the function reads it from Secrets Manager at init).
//!
//! Signature: header `X-Offers-Signature: t=<unix seconds>,v1=<hex>`, where
//! `<hex>` is the HMAC-SHA256 of `<t>.<raw body>` with the shared secret.

use crate::limits::quote;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Larger bodies are refused (413) before anything else is done with them.
pub const MAX_WEBHOOK_BODY_BYTES: usize = 1024 * 1024;
/// At most this many assignments in one request (else 413).
pub const MAX_ASSIGNMENTS: usize = 500;
/// `t` may be at most this many seconds away from now, either way.
pub const SIGNATURE_TOLERANCE_SECONDS: i64 = 300;
/// A delivery id is the sender's; it becomes a DynamoDB key.
pub const MAX_DELIVERY_ID_BYTES: usize = 255;
/// The request headers of the scheme (lower case, as HTTP/2 and API Gateway give them).
pub const SIGNATURE_HEADER: &str = "x-offers-signature";
pub const DELIVERY_HEADER: &str = "x-offers-delivery";
/// Longest signature header read: `t=` and 20 digits, `,v1=` and 64 hex
/// digits, with room for a second `v1` during a key rotation.
const MAX_SIGNATURE_HEADER_BYTES: usize = 512;

type HmacSha256 = Hmac<Sha256>;

/// Why a request's signature is refused (401). Each has its own code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the X-Offers-Signature header is missing")]
    Missing,
    #[error("the X-Offers-Signature header is not t=<unix seconds>,v1=<hex HMAC-SHA256>")]
    Malformed,
    #[error("the signature's timestamp is more than {SIGNATURE_TOLERANCE_SECONDS} s from now")]
    Stale,
    #[error("the signature does not match the body")]
    Mismatch,
}

impl SignatureError {
    pub fn code(self) -> &'static str {
        match self {
            SignatureError::Missing => "missing_signature",
            SignatureError::Malformed => "malformed_signature",
            SignatureError::Stale => "stale_signature",
            SignatureError::Mismatch => "invalid_signature",
        }
    }
}

/// The HMAC-SHA256 of `<t>.<body>` with `secret`, as lower-case hex.
pub fn signature_hex(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    hex::encode(signed_mac(secret, timestamp, body).finalize().into_bytes())
}

/// The `X-Offers-Signature` value for `body` signed at `timestamp`.
pub fn signature_header(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!(
        "t={timestamp},v1={}",
        signature_hex(secret, timestamp, body)
    )
}

fn signed_mac(secret: &[u8], timestamp: i64, body: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length (longer keys are hashed first).
    let mut mac = match HmacSha256::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// A signature that matched: its `t` and the MAC (lower-case hex, as this
/// side computed it, whatever case the sender wrote). The MAC identifies the
/// signed request (`t` and body): it is what a delivery uses up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSignature {
    pub timestamp: i64,
    pub mac_hex: String,
}

impl VerifiedSignature {
    /// Until when (unix seconds) the signature could still be accepted: its
    /// `t` plus the tolerance. Saturating: `t` is within the tolerance of a
    /// real clock, far from the limits.
    pub fn acceptable_until(&self) -> i64 {
        self.timestamp.saturating_add(SIGNATURE_TOLERANCE_SECONDS)
    }
}

/// Checks `header` (the `X-Offers-Signature` value, if any) against `body`
/// at `now` (unix seconds). The comparison of the MAC is constant time
/// (`Mac::verify_slice`); any `v1` that matches is enough, so that a sender
/// may sign with the old and the new secret during a rotation.
pub fn verify_signature(
    header: Option<&str>,
    secret: &[u8],
    body: &[u8],
    now: i64,
) -> Result<VerifiedSignature, SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    if header.len() > MAX_SIGNATURE_HEADER_BYTES {
        return Err(SignatureError::Malformed);
    }
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) if timestamp.is_none() => {
                let digits = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
                timestamp = Some(
                    value
                        .parse::<i64>()
                        .ok()
                        .filter(|_| digits)
                        .ok_or(SignatureError::Malformed)?,
                );
            }
            Some(("v1", value)) => {
                signatures.push(hex::decode(value).map_err(|_| SignatureError::Malformed)?)
            }
            // Other schemes (v0, a future v2) are ignored, as senders expect.
            Some((name, _)) if name != "t" => {}
            _ => return Err(SignatureError::Malformed),
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    // Checked: a hostile `t` near i64::MAX must not overflow.
    let skew = now.checked_sub(timestamp).map(i64::unsigned_abs);
    if skew.is_none_or(|skew| skew > SIGNATURE_TOLERANCE_SECONDS.unsigned_abs()) {
        return Err(SignatureError::Stale);
    }
    let mac = signed_mac(secret, timestamp, body);
    if signatures
        .iter()
        .any(|signature| mac.clone().verify_slice(signature).is_ok())
    {
        Ok(VerifiedSignature {
            timestamp,
            mac_hex: hex::encode(mac.finalize().into_bytes()),
        })
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Why a signed body is refused: 400 (JSON, shape) or 413 (too many).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the body is not JSON: {0}")]
    MalformedJson(String),
    #[error("{0}")]
    InvalidBody(String),
    #[error("{0} assignments; at most {MAX_ASSIGNMENTS} in one request")]
    TooManyAssignments(usize),
}

impl BodyError {
    pub fn code(&self) -> &'static str {
        match self {
            BodyError::MalformedJson(_) => "malformed_json",
            BodyError::InvalidBody(_) => "invalid_body",
            BodyError::TooManyAssignments(_) => "too_many_assignments",
        }
    }
}

/// Reads `{ "assignments": [ ... ] }`. Each element is kept as it is: an
/// element that is not a pending row is that assignment's rejection, not
/// the request's.
pub fn parse_webhook_body(body: &[u8]) -> Result<Vec<Value>, BodyError> {
    let value: Value = serde_json::from_slice(body).map_err(|err| {
        // serde_json's message names a line and column, never the input.
        BodyError::MalformedJson(err.to_string())
    })?;
    let Value::Object(mut object) = value else {
        return Err(BodyError::InvalidBody(
            "the body must be a JSON object {\"assignments\": [...]}".into(),
        ));
    };
    if let Some(unknown) = object.keys().find(|name| name.as_str() != "assignments") {
        return Err(BodyError::InvalidBody(format!(
            "unknown field {}; the body has only \"assignments\"",
            quote(unknown)
        )));
    }
    match object.remove("assignments") {
        Some(Value::Array(assignments)) if assignments.len() > MAX_ASSIGNMENTS => {
            Err(BodyError::TooManyAssignments(assignments.len()))
        }
        Some(Value::Array(assignments)) => Ok(assignments),
        Some(_) => Err(BodyError::InvalidBody(
            "assignments must be an array of pending rows".into(),
        )),
        None => Err(BodyError::InvalidBody("assignments is required".into())),
    }
}

/// A delivery id: 1 to [`MAX_DELIVERY_ID_BYTES`] bytes of printable ASCII.
pub fn check_delivery_id(id: Option<&str>) -> Result<&str, String> {
    match id.map(str::trim) {
        None | Some("") => Err("the X-Offers-Delivery header (the delivery id) is required".into()),
        Some(id) if id.len() > MAX_DELIVERY_ID_BYTES => Err(format!(
            "X-Offers-Delivery is {} bytes; at most {MAX_DELIVERY_ID_BYTES}",
            id.len()
        )),
        Some(id) if !id.bytes().all(|b| b.is_ascii_graphic()) => {
            Err("X-Offers-Delivery must be printable ASCII without spaces".into())
        }
        Some(id) => Ok(id),
    }
}

/// Names the assignments a delivery writes (contract section 2,
/// `assignmentId`), so that a rerun of the same delivery writes the same ids:
/// a UUID v5 of the delivery id and the assignment's index (36 characters,
/// whatever the delivery id's length).
pub fn webhook_assignment_id(delivery_id: &str, index: usize) -> String {
    const ASSIGNMENT_NAMESPACE: uuid::Uuid =
        uuid::Uuid::from_u128(0x5c1e_8a2d_73b4_4f96_8e0a_d4c2_b1f3_9e67);
    // A newline cannot be in a delivery id (printable ASCII): no two pairs give one name.
    let name = format!("{delivery_id}\n{index}");
    uuid::Uuid::new_v5(&ASSIGNMENT_NAMESPACE, name.as_bytes()).to_string()
}

/// What tells two bodies of one delivery id apart: the SHA-256 of the raw
/// body. A retry sends the same bytes (only the signature's `t` changes).
pub fn body_fingerprint(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// An assignment refused, by its position in `assignments`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedAssignment {
    pub index: usize,
    pub code: String,
    pub message: String,
}

/// The 202 body: how many assignments became pending rows, and why the others did not.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WebhookReceipt {
    pub accepted: usize,
    pub rejected: Vec<RejectedAssignment>,
}

impl WebhookReceipt {
    /// Whether the assignment at `index` was accepted.
    pub fn accepts(&self, index: usize) -> bool {
        !self.rejected.iter().any(|rejected| rejected.index == index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: &[u8] = b"whsec_local_only_not_a_real_secret";
    const NOW: i64 = 1_800_000_000;

    #[test]
    fn a_signed_body_verifies_and_any_change_does_not() {
        let body = br#"{"assignments":[]}"#;
        let header = signature_header(SECRET, NOW, body);
        assert!(header.starts_with(&format!("t={NOW},v1=")));
        let verified = verify_signature(Some(&header), SECRET, body, NOW).expect("verifies");
        assert_eq!(verified.timestamp, NOW);
        assert_eq!(verified.mac_hex, signature_hex(SECRET, NOW, body));
        assert_eq!(verified.acceptable_until(), NOW + 300);
        // Upper-case hex is the same signature, named as this side computes it.
        let upper = format!("t={NOW},v1={}", verified.mac_hex.to_uppercase());
        assert_eq!(
            verify_signature(Some(&upper), SECRET, body, NOW),
            Ok(verified)
        );
        assert_eq!(
            verify_signature(Some(&header), SECRET, br#"{"assignments": []}"#, NOW),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(Some(&header), b"another secret", body, NOW),
            Err(SignatureError::Mismatch)
        );
        // The timestamp is signed: moving it breaks the signature.
        let moved = header.replace(&format!("t={NOW}"), &format!("t={}", NOW + 1));
        assert_eq!(
            verify_signature(Some(&moved), SECRET, body, NOW),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_known_vector() {
        // printf '1800000000.{}' | openssl dgst -sha256 -hmac key
        assert_eq!(
            signature_hex(b"key", NOW, b"{}"),
            hex::encode({
                let mut mac = HmacSha256::new_from_slice(b"key").expect("key");
                mac.update(b"1800000000.{}");
                mac.finalize().into_bytes()
            })
        );
    }

    #[test]
    fn the_timestamp_may_be_300_seconds_off_either_way() {
        let body = b"{}";
        for (t, expected) in [
            (NOW - 300, Ok(())),
            (NOW + 300, Ok(())),
            (NOW - 301, Err(SignatureError::Stale)),
            (NOW + 301, Err(SignatureError::Stale)),
            (i64::MIN, Err(SignatureError::Stale)),
        ] {
            let header = format!("t={t},v1={}", signature_hex(SECRET, t, body));
            let expected = if t == i64::MIN {
                Err(SignatureError::Malformed)
            } else {
                expected
            };
            assert_eq!(
                verify_signature(Some(&header), SECRET, body, NOW).map(|_| ()),
                expected,
                "{t}"
            );
        }
        let far = format!("t={},v1={}", i64::MAX, "00".repeat(32));
        assert_eq!(
            verify_signature(Some(&far), SECRET, body, i64::MIN + 1),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn malformed_headers_are_told_apart_from_wrong_ones() {
        let body = b"{}";
        let good = signature_hex(SECRET, NOW, body);
        for header in [
            "".to_owned(),
            "v1=abc".to_owned(),
            format!("t={NOW}"),
            format!("t={NOW},v1=zz"),
            format!("t=+{NOW},v1={good}"),
            format!("t=now,v1={good}"),
            format!("t={NOW},t={NOW},v1={good}"),
            format!("t={NOW},v1={good},{}", "x".repeat(600)),
            format!("garbage,t={NOW},v1={good}"),
        ] {
            assert_eq!(
                verify_signature(Some(&header), SECRET, body, NOW),
                Err(SignatureError::Malformed),
                "{header}"
            );
        }
        assert_eq!(
            verify_signature(None, SECRET, body, NOW),
            Err(SignatureError::Missing)
        );
        // A second v1 (key rotation) and an unknown scheme are fine.
        let rotated = format!("t={NOW},v0=ab,v1={},v1={good}", "00".repeat(32));
        assert_eq!(
            verify_signature(Some(&rotated), SECRET, body, NOW).map(|v| v.mac_hex),
            Ok(good.clone())
        );
        let short = format!("t={NOW},v1={}", &good[..10]);
        assert_eq!(
            verify_signature(Some(&short), SECRET, body, NOW),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn the_body_is_an_object_of_at_most_500_assignments() {
        assert_eq!(
            parse_webhook_body(br#"{"assignments":[{"a":1},2]}"#),
            Ok(vec![json!({"a": 1}), json!(2)])
        );
        let codes = |body: &[u8]| parse_webhook_body(body).map_err(|err| err.code());
        assert_eq!(codes(b"{"), Err("malformed_json"));
        assert_eq!(codes(b""), Err("malformed_json"));
        assert_eq!(codes(b"[]"), Err("invalid_body"));
        assert_eq!(codes(b"{}"), Err("invalid_body"));
        assert_eq!(codes(br#"{"assignments":{}}"#), Err("invalid_body"));
        assert_eq!(
            codes(br#"{"assignments":[],"extra":1}"#),
            Err("invalid_body")
        );
        let many = json!({"assignments": vec![json!({}); 501]}).to_string();
        assert_eq!(codes(many.as_bytes()), Err("too_many_assignments"));
        let most = json!({"assignments": vec![json!({}); 500]}).to_string();
        assert_eq!(
            parse_webhook_body(most.as_bytes()).map(|a| a.len()),
            Ok(500)
        );
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(
            codes(deep.as_bytes()),
            Err("malformed_json"),
            "no stack overflow"
        );
    }

    #[test]
    fn delivery_ids_are_bounded_printable_keys() {
        assert_eq!(check_delivery_id(Some("evt_01H")), Ok("evt_01H"));
        assert!(check_delivery_id(None).is_err());
        assert!(check_delivery_id(Some("  ")).is_err());
        assert!(check_delivery_id(Some("a b")).is_err());
        assert!(check_delivery_id(Some("é")).is_err());
        assert!(check_delivery_id(Some(&"d".repeat(256))).is_err());
        assert!(check_delivery_id(Some(&"d".repeat(255))).is_ok());
    }

    proptest::proptest! {
        #[test]
        fn any_header_and_clock_is_answered_without_a_panic(
            header in ".{0,200}",
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256),
            now in proptest::prelude::any::<i64>(),
        ) {
            // Only a signature made with the secret can pass.
            proptest::prop_assert!(verify_signature(Some(&header), SECRET, &body, now).is_err());
        }

        #[test]
        fn what_is_signed_verifies_within_the_tolerance_only(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256),
            t in 0i64..4_000_000_000,
            skew in -600i64..600,
        ) {
            let header = signature_header(SECRET, t, &body);
            let expected = if skew.abs() <= SIGNATURE_TOLERANCE_SECONDS {
                Ok(())
            } else {
                Err(SignatureError::Stale)
            };
            proptest::prop_assert_eq!(verify_signature(Some(&header), SECRET, &body, t + skew).map(|_| ()), expected);
        }

        #[test]
        fn any_body_is_parsed_or_refused_without_a_panic(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
        ) {
            if let Ok(assignments) = parse_webhook_body(&body) {
                proptest::prop_assert!(assignments.len() <= MAX_ASSIGNMENTS);
            }
        }
    }

    #[test]
    fn assignment_ids_are_stable_bounded_and_distinct() {
        let id = webhook_assignment_id("dlv-1", 0);
        assert_eq!(
            id,
            webhook_assignment_id("dlv-1", 0),
            "a rerun writes the same id"
        );
        assert_eq!(id.len(), 36);
        assert_ne!(id, webhook_assignment_id("dlv-1", 1));
        assert_ne!(id, webhook_assignment_id("dlv-2", 0));
        assert_ne!(
            webhook_assignment_id("dlv-1", 10),
            webhook_assignment_id("dlv-11", 0)
        );
        assert_eq!(webhook_assignment_id(&"d".repeat(255), 499).len(), 36);
    }

    #[test]
    fn fingerprints_tell_bodies_apart() {
        assert_eq!(body_fingerprint(b"{}"), body_fingerprint(b"{}"));
        assert_ne!(body_fingerprint(b"{}"), body_fingerprint(b"{ }"));
        assert_eq!(body_fingerprint(b"").len(), 64);
    }
}
