//! io_uring refused by the kernel (`kernel.io_uring_disabled` = 2): the io-uring
//! engine must give up before its first byte and say why. A test binary of its own,
//! because the setting is system-wide for the moment it is on.

use std::io::Write;
use std::net::{TcpListener, TcpStream};

use zcopy::{Engine, EngineChoice, Options, Transfer};

const KNOB: &str = "/proc/sys/kernel/io_uring_disabled";

/// Puts the old value back, even when the test fails.
struct Restore(String);

impl Drop for Restore {
    fn drop(&mut self) {
        std::fs::write(KNOB, &self.0).expect("restore kernel.io_uring_disabled");
    }
}

#[test]
fn io_uring_disabled_falls_back_with_the_reason() {
    let Ok(old) = std::fs::read_to_string(KNOB) else {
        eprintln!("SKIP io_uring_disabled: no {KNOB} (a kernel before 6.6)");
        return;
    };
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIP io_uring_disabled: setting {KNOB} needs root");
        return;
    }
    let mut src = tempfile::tempfile().unwrap();
    src.write_all(b"never sent").unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let sink = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let options = Options::default().engine(EngineChoice::Only(Engine::IoUring));
    let mut transfer = Transfer::new(&src, &sink, options).unwrap();
    let result = {
        let _restore = Restore(old.trim().to_string());
        if std::fs::write(KNOB, "2").is_err() {
            eprintln!("SKIP io_uring_disabled: {KNOB} is read-only here (a container?)");
            return;
        }
        transfer.run()
    };
    let err = result.unwrap_err();
    assert_eq!(
        err.to_string(),
        "io-uring cannot move a regular file to a socket: io_uring_setup: EPERM: \
         Operation not permitted (kernel.io_uring_disabled or a seccomp filter)"
    );
    assert_eq!(transfer.moved(), 0);
    assert_eq!(std::fs::read_to_string(KNOB).unwrap(), old);
}
