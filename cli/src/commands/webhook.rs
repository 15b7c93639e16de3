//! `offers webhook sign FILE`: what a marketing platform sends, for trying
//! the campaign webhook by hand (docs/api-webhook.md).

use crate::aws::Connection;
use crate::cli::WebhookSignArgs;
use crate::error::CliError;
use crate::output::say;
use offers_shared::domain::webhook::{body_fingerprint, signature_header, MAX_WEBHOOK_BODY_BYTES};
use offers_shared::local_conventions::LOCAL_SIGNING_SECRET;
use std::path::Path;

/// The local stack's webhook (scripts/local.sh, default HTTP port).
pub const LOCAL_WEBHOOK_URL: &str = "http://127.0.0.1:3000/campaigns/webhook";

pub fn sign(args: WebhookSignArgs, connection: &Connection) -> Result<(), CliError> {
    let body = std::fs::read(&args.file).map_err(|source| CliError::Read {
        path: args.file.clone(),
        source,
    })?;
    if body.len() > MAX_WEBHOOK_BODY_BYTES {
        return Err(CliError::Invalid(format!(
            "{} is {} bytes; the webhook takes at most {MAX_WEBHOOK_BODY_BYTES}",
            args.file.display(),
            body.len()
        )));
    }
    let secret = secret(&args, connection.is_local())?;
    let lines = signed_request(
        &body,
        secret.as_bytes(),
        chrono::Utc::now().timestamp(),
        args.delivery.as_deref(),
        &args.file,
        args.url
            .as_deref()
            .or(connection.is_local().then_some(LOCAL_WEBHOOK_URL)),
        args.headers,
    )?;
    for line in lines {
        say(line)?;
    }
    Ok(())
}

fn secret(args: &WebhookSignArgs, local: bool) -> Result<String, CliError> {
    if let Some(variable) = &args.secret_env {
        return std::env::var(variable)
            .ok()
            .filter(|secret| !secret.is_empty())
            .ok_or_else(|| CliError::Usage(format!("{variable} is not set")));
    }
    if let Some(path) = &args.secret_file {
        let text = std::fs::read_to_string(path).map_err(|source| CliError::Read {
            path: path.clone(),
            source,
        })?;
        let secret = text.strip_suffix('\n').unwrap_or(&text);
        let secret = secret.strip_suffix('\r').unwrap_or(secret);
        return Ok(secret.to_owned());
    }
    if local {
        return Ok(LOCAL_SIGNING_SECRET.to_owned());
    }
    Err(CliError::Usage(
        "give the shared secret with --secret-env VAR or --secret-file F (or --local for the local stack's)".into(),
    ))
}

/// The headers, or a curl line sending `file` as it is.
pub fn signed_request(
    body: &[u8],
    secret: &[u8],
    now: i64,
    delivery: Option<&str>,
    file: &Path,
    url: Option<&str>,
    headers_only: bool,
) -> Result<Vec<String>, CliError> {
    let delivery = match delivery {
        Some(id) => id.to_owned(),
        None => format!("file-{}", &body_fingerprint(body)[..32]),
    };
    let signature = format!(
        "X-Offers-Signature: {}",
        signature_header(secret, now, body)
    );
    let delivery = format!("X-Offers-Delivery: {delivery}");
    if headers_only {
        return Ok(vec![signature, delivery]);
    }
    let url = url.ok_or_else(|| {
        CliError::Usage(
            "give the webhook's URL with --url (or --local for the local stack's)".into(),
        )
    })?;
    Ok(vec![format!(
        "curl -sS -X POST {} -H {} -H {} -H {} --data-binary @{}",
        shell_quote(url),
        shell_quote("Content-Type: application/json"),
        shell_quote(&signature),
        shell_quote(&delivery),
        shell_quote(&file.display().to_string())
    )])
}

/// Single-quoted for a POSIX shell.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use offers_shared::domain::webhook::verify_signature;

    #[test]
    fn the_curl_line_carries_a_signature_the_webhook_accepts() {
        let body = br#"{"assignments":[]}"#;
        let lines = signed_request(
            body,
            b"s3cret",
            1_800_000_000,
            None,
            Path::new("it's.json"),
            Some("http://127.0.0.1:3000/campaigns/webhook"),
            false,
        )
        .expect("line");
        let line = &lines[0];
        assert!(line.starts_with("curl -sS -X POST 'http://127.0.0.1:3000/campaigns/webhook'"));
        assert!(line.ends_with(r"--data-binary @'it'\''s.json'"), "{line}");
        let header = line
            .split("'X-Offers-Signature: ")
            .nth(1)
            .and_then(|rest| rest.split('\'').next())
            .expect("signature header");
        assert_eq!(
            verify_signature(Some(header), b"s3cret", body, 1_800_000_100).map(|_| ()),
            Ok(())
        );
        assert!(line.contains(&format!(
            "X-Offers-Delivery: file-{}",
            &body_fingerprint(body)[..32]
        )));
        let headers = signed_request(body, b"s3cret", 1, Some("d-9"), Path::new("f"), None, true)
            .expect("headers");
        assert_eq!(headers[1], "X-Offers-Delivery: d-9");
        assert!(signed_request(body, b"s", 1, None, Path::new("f"), None, false).is_err());
    }
}
