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

/// A free TCP port on 127.0.0.1 (bound then released; good enough for a child's listener).
pub fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}
