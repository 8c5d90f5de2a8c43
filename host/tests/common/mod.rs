//! What the cluster tests share: a real `nats-server -js`, started on a loopback port with a
//! temporary store (`NATS_SERVER_BIN` names the binary, default `nats-server`), stopped when
//! dropped.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Nats {
    child: Child,
    _store: tempfile::TempDir,
    pub url: String,
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_nats() -> Nats {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let store = tempfile::tempdir().unwrap();
    let bin = std::env::var("NATS_SERVER_BIN").unwrap_or_else(|_| "nats-server".into());
    // As the README recommends: JetStream syncs every write to disk before it acknowledges it.
    let config = store.path().join("nats.conf");
    std::fs::write(&config, "jetstream {\n  sync_interval: always\n}\n").unwrap();
    let child = Command::new(&bin)
        .arg("-c")
        .arg(&config)
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(store.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {bin} (scripts/test.sh installs it): {e}"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nats-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Nats { child, _store: store, url: format!("nats://127.0.0.1:{port}") }
}
