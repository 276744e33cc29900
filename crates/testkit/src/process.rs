//! Child processes a test starts, and kills by PID: the only processes a test may kill.

use anyhow::Context as _;
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::process::{Child, Command};

/// Path of a binary built by cargo in this workspace (`target/<profile>/<name>`), found next to
/// the running test executable (`target/<profile>/deps/<test>`).
pub fn workspace_binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("current_exe")?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .context("test executable is not under target/<profile>/deps")?;
    let path = profile_dir.join(name);
    anyhow::ensure!(
        path.exists(),
        "{} is not built: run `cargo build --bins` first (make test does)",
        path.display()
    );
    Ok(path)
}

/// A service process started by a test, with its output in a log file.
pub struct ServiceProcess {
    child: Child,
    pub log: PathBuf,
}

impl ServiceProcess {
    /// Starts `binary args…` with exactly `envs` added to the environment.
    pub fn spawn(
        binary: &Path,
        args: &[&str],
        envs: &[(String, String)],
        log: PathBuf,
    ) -> anyhow::Result<Self> {
        let out =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        let mut cmd = Command::new(binary);
        cmd.args(args)
            .envs(envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .with_context(|| format!("spawning {}", binary.display()))?;
        Ok(Self { child, log })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// SIGKILL: no shutdown hook runs, like a crashed pod.
    pub async fn kill_hard(&mut self) -> anyhow::Result<()> {
        if let Some(pid) = self.child.id() {
            let pid = i32::try_from(pid).context("pid out of range")?;
            signal::kill(Pid::from_raw(pid), Signal::SIGKILL)?;
        }
        self.child.wait().await?;
        Ok(())
    }

    /// SIGTERM and wait: the graceful path.
    pub async fn terminate(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        if let Some(pid) = self.child.id() {
            let pid = i32::try_from(pid).context("pid out of range")?;
            signal::kill(Pid::from_raw(pid), Signal::SIGTERM)?;
        }
        Ok(self.child.wait().await?)
    }

    /// The log so far, for assertion messages.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A TCP port on 127.0.0.1 kept for one test process until dropped, for a child's listener.
///
/// A port the kernel hands out for `bind(0)` lies in its ephemeral range, where it can be taken
/// again at once, by another test's `bind(0)` or as the local port of any outgoing connection,
/// before the child binds it; a test could then find someone else's service on "its" port.
/// So ports come from [`RESERVED_PORTS`], below Linux's ephemeral range, and each is held by an
/// exclusive lock on a file in the temporary directory: the other test processes skip it.
pub struct ReservedPort {
    port: u16,
    _lock: std::fs::File,
}

/// The ports [`reserve_port`] chooses from: below Linux's default ephemeral range (32768–60999).
pub const RESERVED_PORTS: std::ops::Range<u16> = 20_000..32_000;

impl ReservedPort {
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

/// Reserves a port of [`RESERVED_PORTS`] that no other test process holds and that nothing has
/// bound, starting from a random place in the range.
pub fn reserve_port() -> anyhow::Result<ReservedPort> {
    let dir = std::env::temp_dir().join("jifen-test-ports");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let span = RESERVED_PORTS.end - RESERVED_PORTS.start;
    let start = (uuid::Uuid::new_v4().as_u128() % u128::from(span)) as u16;
    for i in 0..span {
        let port = RESERVED_PORTS.start + (start + i) % span;
        let path = dir.join(port.to_string());
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => continue,
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", path.display()));
            }
        }
        // Held by no test; skip it if anything else on the machine listens there.
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(ReservedPort { port, _lock: file });
        }
    }
    anyhow::bail!("no free port in {RESERVED_PORTS:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reserved_port_is_not_handed_out_twice_and_is_bindable() -> anyhow::Result<()> {
        let ports: Vec<ReservedPort> = (0..50).map(|_| reserve_port()).collect::<Result<_, _>>()?;
        let distinct: std::collections::HashSet<u16> =
            ports.iter().map(ReservedPort::port).collect();
        assert_eq!(distinct.len(), ports.len());
        for p in &ports {
            assert!(RESERVED_PORTS.contains(&p.port()));
            std::net::TcpListener::bind(p.addr())?;
        }
        Ok(())
    }
}
