//! A TCP relay between a function process and DynamoDB Local that lets the
//! first `allowed` calls of one operation through and holds every later one
//! (its request never reaches DynamoDB, its answer never comes): a process
//! stopped midway through its writes, at a point the test chooses, for the
//! test to kill there.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct OperationGate {
    address: std::net::SocketAddr,
    held: Arc<AtomicUsize>,
    relay: tokio::task::JoinHandle<()>,
}

/// The longest operation name looked for, so that one split across two
/// reads is still seen.
const CARRY: usize = 64;

impl OperationGate {
    /// Relays to `upstream` (`http://host:port`), letting `allowed` calls of
    /// `operation` (as in `X-Amz-Target: DynamoDB_20120810.<operation>`) through.
    pub async fn start(upstream: &str, operation: &str, allowed: usize) -> OperationGate {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("a port");
        let address = listener.local_addr().expect("address");
        let target = format!("DynamoDB_20120810.{operation}").into_bytes();
        assert!(target.len() <= CARRY);
        let seen = Arc::new(AtomicUsize::new(0));
        let held = Arc::new(AtomicUsize::new(0));
        let relayed_held = held.clone();
        let relay = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream.as_str()).await else {
                    continue;
                };
                let (seen, held, target) = (seen.clone(), relayed_held.clone(), target.clone());
                tokio::spawn(relay_connection(
                    client, server, target, allowed, seen, held,
                ));
            }
        });
        OperationGate {
            address,
            held,
            relay,
        }
    }

    /// The endpoint to give the function.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// How many calls are being held.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }
}

impl Drop for OperationGate {
    fn drop(&mut self) {
        self.relay.abort();
    }
}

async fn relay_connection(
    client: TcpStream,
    server: TcpStream,
    target: Vec<u8>,
    allowed: usize,
    seen: Arc<AtomicUsize>,
    held: Arc<AtomicUsize>,
) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let answers = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
    });
    let mut carried: Vec<u8> = Vec::new();
    let mut buffer = vec![0_u8; 64 * 1024];
    loop {
        let read = match client_read.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        let chunk = &buffer[..read];
        let mut window = std::mem::take(&mut carried);
        let carried_len = window.len();
        window.extend_from_slice(chunk);
        // Only names that end in this chunk: the carried ones were counted.
        let calls = window
            .windows(target.len())
            .enumerate()
            .filter(|(start, candidate)| {
                start + target.len() > carried_len && *candidate == target.as_slice()
            })
            .count();
        carried = window[window.len().saturating_sub(CARRY)..].to_vec();
        // Clients send one request at a time on a connection (no pipelining):
        // a chunk with a call in it begins that call.
        if calls > 0 && seen.fetch_add(calls, Ordering::SeqCst) + calls > allowed {
            held.fetch_add(1, Ordering::SeqCst);
            // Held: neither forwarded nor answered, until the process dies.
            std::future::pending::<()>().await;
        }
        if server_write.write_all(chunk).await.is_err() {
            break;
        }
    }
    answers.abort();
}
