//! Running the real binary in tests: a clean environment, an ephemeral port, the address (and
//! the embedded-mode token) read from what it prints, and a kill when the handle is dropped so
//! no test leaves a process behind.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The server binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_workspace-server");

/// A running server; killed (SIGKILL) and reaped when dropped.
pub struct ServerProcess {
    pub child: Child,
    pub base: String,
    /// The token printed in embedded mode, if it was asked for.
    pub token: Option<String>,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The binary with an empty environment but `PATH` and quiet logs.
pub fn clean_command() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).env("RUST_LOG", "warn");
    cmd
}

/// Starts `cmd` on an ephemeral port and reads its address; with `expect_token`, also the token
/// that embedded mode prints for local-user.
pub fn spawn(mut cmd: Command, expect_token: bool) -> ServerProcess {
    let mut child = cmd.env("WS_BIND", "127.0.0.1:0").stdout(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = lines
        .by_ref()
        .find_map(|line| line.unwrap().strip_prefix("workspace-server listening on ").map(str::to_owned))
        .expect("the server prints its address");
    let token = expect_token.then(|| {
        let mut lines = lines.by_ref().map(Result::unwrap);
        lines.find(|line| line.starts_with("Token for local-user")).expect("embedded mode prints a token");
        lines.next().expect("the token follows its heading").trim().to_owned()
    });
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    ServerProcess { child, base, token }
}

/// A reqwest client (the tree's reqwest has no TLS provider of its own).
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}
