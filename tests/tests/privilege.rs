//! What the running helper may do (needs root to start it): every capability set empty,
//! no_new_privs, seccomp in filter mode on every thread, a forbidden syscall kills it, and
//! without CAP_NET_RAW it refuses to start with a clear message and exit code 4.

mod live_support;

use live_support::*;
use std::process::Command;
use std::time::{Duration, Instant};

fn status_field(status: &str, name: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("no {name} in /proc status"))
}

#[test]
fn running_helper_holds_no_capability_and_is_confined_needs_root() {
    // One capture thread (the default): it captures and exports itself.
    check_confined(&[], 1);
}

#[test]
fn running_helper_with_capture_threads_is_confined_on_every_thread_needs_root() {
    // The export loop on the main thread and two capture threads.
    check_confined(&["--threads", "2"], 3);
}

fn check_confined(args: &[&str], expect_threads: usize) {
    if skip_unless_root() {
        return;
    }
    require(&["ip", "setpriv", "curl"]);
    let dir = TempDir::world_writable("live");
    let pair = VethPair::new();
    let server = Server::start(&dir, None);
    let mut helper = start_helper(&pair, &server.socket, &dir.join("helper.log"), args, &[]);
    server.wait_helper(&pair.va, None);
    let pid = helper.pid();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    for set in ["CapEff", "CapPrm", "CapInh", "CapAmb", "CapBnd"] {
        assert_eq!(
            status_field(&status, set),
            "0000000000000000",
            "{set} of the helper:\n{status}"
        );
    }
    assert_eq!(status_field(&status, "NoNewPrivs"), "1");
    assert_eq!(status_field(&status, "Seccomp"), "2");
    let uid = status_field(&status, "Uid");
    assert!(uid.split_whitespace().all(|u| u == "65534"), "Uid {uid}");
    assert!(
        status_field(&status, "Groups").is_empty(),
        "supplementary groups kept"
    );
    // Every thread is under the filter.
    let mut threads = 0;
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).expect("tasks") {
        let st =
            std::fs::read_to_string(t.expect("task").path().join("status")).expect("task status");
        assert_eq!(
            status_field(&st, "Seccomp"),
            "2",
            "thread without seccomp:\n{st}"
        );
        assert_eq!(status_field(&st, "CapEff"), "0000000000000000");
        threads += 1;
    }
    assert_eq!(threads, expect_threads, "threads of the helper {args:?}");
    let st = helper.term();
    assert!(st.success(), "helper exit {st:?}");
}

#[test]
fn a_syscall_outside_the_allowlist_kills_the_helper_needs_root() {
    if skip_unless_root() {
        return;
    }
    require(&["ip", "setpriv", "curl"]);
    let dir = TempDir::world_writable("live");
    let pair = VethPair::new();
    let server = Server::start(&dir, None);
    let probe = dir.join("forbidden-probe");
    let env = [
        ("NETWATCH_TEST_FORBIDDEN_SYSCALL", "1"),
        (
            "NETWATCH_TEST_FORBIDDEN_PATH",
            probe.to_str().expect("utf8"),
        ),
    ];

    // With seccomp: the first export calls mkdirat and the kernel kills the process (SIGSYS).
    let mut helper = start_helper(&pair, &server.socket, &dir.join("helper.log"), &[], &env);
    let st = helper
        .wait_exit(Duration::from_secs(20))
        .expect("helper still running: the forbidden syscall was allowed");
    assert_eq!(
        exit_signal(&st),
        Some(31),
        "expected death by SIGSYS, got {st:?}"
    );
    assert!(!probe.exists(), "the forbidden mkdirat took effect");

    // Frame injection through the packet socket the helper keeps is refused the same way.
    let inject = [("NETWATCH_TEST_FORBIDDEN_SYSCALL", "inject")];
    let mut helper = start_helper(&pair, &server.socket, &dir.join("inject.log"), &[], &inject);
    let st = helper
        .wait_exit(Duration::from_secs(20))
        .expect("helper still running: a write to the packet socket was allowed");
    assert_eq!(
        exit_signal(&st),
        Some(31),
        "expected death by SIGSYS, got {st:?}"
    );

    // Control: without seccomp the same hook really makes the call (so the kill above is the
    // filter's doing), and the helper keeps running until SIGTERM.
    let mut helper = start_helper(
        &pair,
        &server.socket,
        &dir.join("helper2.log"),
        &["--no-seccomp"],
        &env,
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !probe.exists() {
        assert!(
            Instant::now() < deadline,
            "hook did not run without seccomp"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        helper.wait_exit(Duration::from_millis(500)).is_none(),
        "helper died without seccomp"
    );
    let log = std::fs::read_to_string(dir.join("helper2.log")).unwrap_or_default();
    assert!(
        log.contains("--no-seccomp"),
        "no loud warning for --no-seccomp:\n{log}"
    );
    assert!(helper.term().success());
}

#[test]
fn without_cap_net_raw_the_helper_fails_clearly_needs_root() {
    if skip_unless_root() {
        return;
    }
    require(&["setpriv"]);
    let out = Command::new("setpriv")
        .args([
            "--reuid",
            NOBODY,
            "--regid",
            "nogroup",
            "--clear-groups",
            "--inh-caps=-all",
            "--",
        ])
        .arg(bin("netwatch-capture"))
        .args([
            "--interface",
            "lo",
            "--connect",
            "/nonexistent/capture.sock",
        ])
        .output()
        .expect("run helper");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(4),
        "exit code (documented 4 = no CAP_NET_RAW); stderr:\n{err}"
    );
    assert!(err.contains("cannot open AF_PACKET socket on lo"), "{err}");
    assert!(err.contains("Operation not permitted"), "{err}");
    assert!(
        err.contains("needs CAP_NET_RAW") && err.contains("setcap cap_net_raw"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one clear line, got:\n{err}");

    // Root without --user is refused too: the helper never keeps uid 0.
    let out = Command::new(bin("netwatch-capture"))
        .args([
            "--interface",
            "lo",
            "--connect",
            "/nonexistent/capture.sock",
        ])
        .output()
        .expect("run helper");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("--user"), "{err}");
}
