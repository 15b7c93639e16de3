//! moto's Secrets Manager server as a child process (PyPI `moto[server]`,
//! installed into `.local/venv` by the project's scripts), so that the
//! functions read their secrets with the very GetSecretValue call they make
//! on AWS. Secrets are created in it with the SDK, as an operator would.

use crate::dynamodb_local::{free_port, spawn_from_lasting_thread};
use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::config::Credentials;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The environment variable that points an SDK's Secrets Manager client at
/// an endpoint (the SDKs' own name for it).
pub const SECRETS_MANAGER_ENDPOINT_VARIABLE: &str = "AWS_ENDPOINT_URL_SECRETS_MANAGER";

pub use offers_shared::local_conventions::LOCAL_SIGNING_SECRET;

#[derive(Debug, thiserror::Error)]
pub enum MotoError {
    #[error("moto_server not found at {0}: run scripts/test.sh or scripts/local.sh once (they install moto[server] into .local/venv), or set MOTO_SERVER")]
    NotInstalled(String),
    #[error("moto_server did not start: {0}")]
    Start(String),
    #[error("creating a secret in moto failed: {0}")]
    Secret(String),
    #[error("moto's S3: {0}")]
    S3(String),
}

/// A running moto server; dropping it kills the process.
pub struct MotoServer {
    child: Option<Child>,
    port: u16,
}

/// Where moto_server is: `MOTO_SERVER`, else the project's venv.
pub fn moto_server_path() -> PathBuf {
    std::env::var_os("MOTO_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            crate::workspace_root()
                .join(".local")
                .join("venv")
                .join("bin")
                .join("moto_server")
        })
}

impl MotoServer {
    /// Starts moto_server on a free port of the loopback interface.
    pub fn start() -> Result<Self, MotoError> {
        Self::start_on(None)
    }

    /// Starts moto_server on `port` of the loopback interface (a free one if `None`).
    pub fn start_on(port: Option<u16>) -> Result<Self, MotoError> {
        let path = moto_server_path();
        if !path.is_file() {
            return Err(MotoError::NotInstalled(path.display().to_string()));
        }
        let port = match port {
            Some(port) => port,
            None => free_port().map_err(|err| MotoError::Start(err.to_string()))?,
        };
        let mut command = Command::new(&path);
        command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // SAFETY: prctl is async-signal-safe; it only sets this child's parent-death signal.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child =
            spawn_from_lasting_thread(command).map_err(|err| MotoError::Start(err.to_string()))?;
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    let _ = pipe.read_to_string(&mut stderr);
                }
                return Err(MotoError::Start(format!("exited with {status}: {stderr}")));
            }
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                break;
            }
            if started.elapsed() > START_TIMEOUT {
                let _ = child.kill();
                return Err(MotoError::Start(format!("no answer on port {port}")));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        drop(child.stderr.take());
        Ok(Self {
            child: Some(child),
            port,
        })
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The SDK's settings for this server: its endpoint, us-east-1, fake keys.
    async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(self.endpoint())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("local", "local", None, None, "moto"))
            .load()
            .await
    }

    /// An S3 client for this server (fake keys, us-east-1, path-style
    /// addressing: moto serves every bucket on its one address).
    pub async fn s3_client(&self) -> aws_sdk_s3::Client {
        let sdk = self.sdk_config().await;
        let config = aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// Creates `bucket` (already there: fine).
    pub async fn create_bucket(&self, bucket: &str) -> Result<(), MotoError> {
        match self
            .s3_client()
            .await
            .create_bucket()
            .bucket(bucket)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(err)
                if err.as_service_error().is_some_and(|e| {
                    e.is_bucket_already_owned_by_you() || e.is_bucket_already_exists()
                }) =>
            {
                Ok(())
            }
            Err(err) => Err(MotoError::S3(format!(
                "creating bucket {bucket}: {}",
                aws_smithy_types::error::display::DisplayErrorContext(err)
            ))),
        }
    }

    /// A Secrets Manager client for this server (fake keys, us-east-1).
    pub async fn client(&self) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::new(&self.sdk_config().await)
    }

    /// Creates a secret whose SecretString is `value`; returns its ARN.
    pub async fn create_secret(&self, name: &str, value: &str) -> Result<String, MotoError> {
        let output = self
            .client()
            .await
            .create_secret()
            .name(name)
            .secret_string(value)
            .send()
            .await
            .map_err(|err| {
                MotoError::Secret(
                    aws_smithy_types::error::display::DisplayErrorContext(err).to_string(),
                )
            })?;
        output
            .arn()
            .map(str::to_owned)
            .ok_or_else(|| MotoError::Secret("no ARN in the answer".into()))
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
