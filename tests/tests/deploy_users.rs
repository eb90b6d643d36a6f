//! The two binaries run with the users, capabilities and paths the systemd units give them
//! (deploy/*.service, deploy/sysusers.d), without systemd, and work together on a live
//! interface. Needs root (users, capabilities, network namespaces), `setpriv` (util-linux),
//! `useradd`/`groupadd` (passwd), `ip` (iproute2) and `ping`; prints "SKIPPED: needs root"
//! otherwise.
//!
//! - users as systemd-sysusers creates them from deploy/sysusers.d/netwatch.conf (created here
//!   with `groupadd/useradd --system` when missing, and left in place);
//! - a runtime directory like `/run/netwatch` (0750 netwatch:netwatch, RuntimeDirectory=);
//! - the server as `netwatch`, no capabilities at all, empty bounding set, no_new_privs,
//!   UMask 0077 (like netwatch-server.service);
//! - the helper as `netwatch-capture` (primary group netwatch, no other group) with only
//!   CAP_NET_RAW and CAP_SETPCAP, ambient, and a bounding set of those two, no_new_privs (like
//!   netwatch-capture.service); once running it holds no capability in any set, the bounding
//!   set included, capturing a veth inside a test network namespace while a
//!   second namespace pings through it (addresses exist only in those namespaces).

mod security_support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use security_support::{bin, free_port, have, is_root, run_ok, workspace, TempDir};

struct Proc(std::process::Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Netns(Vec<String>);

impl Drop for Netns {
    fn drop(&mut self) {
        for ns in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn id_of(kind: &str, name: &str) -> Option<(u32, u32)> {
    let out = Command::new("getent").args([kind, name]).output().ok()?;
    let line = String::from_utf8_lossy(&out.stdout).into_owned();
    let f: Vec<&str> = line.trim().split(':').collect();
    match kind {
        "passwd" if f.len() >= 4 => Some((f[2].parse().ok()?, f[3].parse().ok()?)),
        "group" if f.len() >= 3 => Some((f[2].parse().ok()?, 0)),
        _ => None,
    }
}

/// The users of deploy/sysusers.d/netwatch.conf, created like systemd-sysusers would.
fn ensure_users() -> (u32, u32, u32) {
    // Tolerates a concurrent creator: a failed add is fine if the entry exists afterwards.
    if id_of("group", "netwatch").is_none() {
        let _ = Command::new("groupadd")
            .args(["--system", "netwatch"])
            .status();
    }
    for user in ["netwatch", "netwatch-capture"] {
        if id_of("passwd", user).is_none() {
            let _ = Command::new("useradd")
                .args([
                    "--system",
                    "--gid",
                    "netwatch",
                    "--no-create-home",
                    "--home-dir",
                    "/",
                ])
                .args(["--shell", "/usr/sbin/nologin", user])
                .status();
        }
    }
    let gid = id_of("group", "netwatch").expect("group netwatch").0;
    let (srv_uid, srv_gid) = id_of("passwd", "netwatch").expect("user netwatch");
    let (cap_uid, cap_gid) = id_of("passwd", "netwatch-capture").expect("user netwatch-capture");
    assert_eq!(
        srv_gid, gid,
        "user netwatch must have primary group netwatch"
    );
    assert_eq!(
        cap_gid, gid,
        "user netwatch-capture must have primary group netwatch (sysusers.d)"
    );
    (srv_uid, cap_uid, gid)
}

/// (field, value) pairs of /proc/<pid>/status.
fn proc_status(pid: u32) -> std::collections::HashMap<String, String> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

fn get_json(addr: std::net::SocketAddr, path: &str) -> (u16, serde_json::Value) {
    let r = security_support::request(addr, "GET", path, &[]);
    let j = serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null);
    (r.status, j)
}

#[test]
fn units_users_capabilities_and_paths_work_together_root() {
    if !is_root() {
        println!("SKIPPED: needs root (users, capabilities, network namespaces)");
        return;
    }
    for tool in ["setpriv", "useradd", "groupadd", "ip", "ping", "getent"] {
        assert!(have(tool), "needs {tool} (.ci/install.d/50-deploy.sh)");
    }
    let (srv_uid, cap_uid, gid) = ensure_users();

    // /run/netwatch equivalent: the parents are traversable, the directory is the unit's.
    let dir = TempDir::new("deploy");
    let run = dir.join("run");
    let rundir = run.join("netwatch");
    std::fs::create_dir_all(&rundir).expect("mkdir");
    run_ok(Command::new("chmod").arg("755").arg(&dir.0).arg(&run));
    run_ok(Command::new("chown").arg("netwatch:netwatch").arg(&rundir));
    run_ok(Command::new("chmod").arg("750").arg(&rundir));
    let sock = rundir.join("capture.sock");

    // The helper's namespace (capture on its veth end) and the traffic source's.
    let tag = std::process::id() % 100_000;
    let (ns_cap, ns_src) = (format!("nwdc{tag}"), format!("nwds{tag}"));
    let (veth_cap, veth_src) = (format!("nwdc{tag}"), format!("nwds{tag}"));
    let third = tag % 250 + 1;
    let (ip_cap, ip_src) = (format!("10.78.{third}.1"), format!("10.78.{third}.2"));
    let ip = |args: &[&str]| {
        run_ok(Command::new("ip").args(args));
    };
    ip(&["netns", "add", &ns_cap]);
    let _ns = Netns(vec![ns_cap.clone(), ns_src.clone()]);
    ip(&["netns", "add", &ns_src]);
    ip(&[
        "link", "add", &veth_cap, "netns", &ns_cap, "type", "veth", "peer", "name", &veth_src,
        "netns", &ns_src,
    ]);
    ip(&[
        "-n",
        &ns_cap,
        "addr",
        "add",
        &format!("{ip_cap}/30"),
        "dev",
        &veth_cap,
    ]);
    ip(&[
        "-n",
        &ns_src,
        "addr",
        "add",
        &format!("{ip_src}/30"),
        "dev",
        &veth_src,
    ]);
    ip(&["-n", &ns_cap, "link", "set", &veth_cap, "up"]);
    ip(&["-n", &ns_src, "link", "set", &veth_src, "up"]);

    // netwatch-server.service: User=netwatch Group=netwatch, CapabilityBoundingSet= (empty),
    // NoNewPrivileges=yes, UMask=0077, the example config, the socket in the runtime dir.
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let config = workspace().join("deploy/netwatch.toml");
    let server_cmd = format!(
        "umask 0077; exec setpriv --reuid=netwatch --regid=netwatch --init-groups \
--bounding-set=-all --inh-caps=-all --no-new-privs {} --config {} --listen {} --socket {}",
        bin("netwatch-server").display(),
        config.display(),
        listen,
        sock.display()
    );
    let server = Proc(
        Command::new("sh")
            .args(["-c", &server_cmd])
            .env("NETWATCH_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("server.log")).expect("log"))
            .spawn()
            .expect("start server"),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !sock.exists() {
        assert!(
            Instant::now() < deadline,
            "no socket: {}",
            std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let addr: std::net::SocketAddr = listen.parse().expect("addr");
    while security_support::try_request(addr, "GET", "/api/v1/flows", &[]).is_none() {
        assert!(Instant::now() < deadline, "server does not answer");
        std::thread::sleep(Duration::from_millis(50));
    }

    // The socket is the server's, group netwatch, 0660.
    let st = Command::new("stat")
        .args(["-c", "%a %U %G"])
        .arg(&sock)
        .output()
        .expect("stat");
    assert_eq!(
        String::from_utf8_lossy(&st.stdout).trim(),
        "660 netwatch netwatch"
    );

    // netwatch-capture.service: User=netwatch-capture Group=netwatch, no supplementary groups,
    // AmbientCapabilities=CAP_NET_RAW CAP_SETPCAP, CapabilityBoundingSet=CAP_NET_RAW CAP_SETPCAP,
    // NoNewPrivileges=yes.
    let helper = Proc(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns_cap,
                "setpriv",
                "--reuid=netwatch-capture",
                "--regid=netwatch",
                "--init-groups",
            ])
            .args([
                "--inh-caps=-all,+net_raw,+setpcap",
                "--ambient-caps=-all,+net_raw,+setpcap",
                "--bounding-set=-all,+net_raw,+setpcap",
                "--no-new-privs",
            ])
            .arg(bin("netwatch-capture"))
            .args(["--interface", &veth_cap, "--connect"])
            .arg(&sock)
            .env("NETWATCH_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("helper.log")).expect("log"))
            .spawn()
            .expect("start helper"),
    );

    // Traffic through the captured interface, until the flow shows up in the API.
    let wanted = |j: &serde_json::Value| {
        j["flows"].as_array().is_some_and(|flows| {
            flows.iter().any(|f| {
                f["protocolName"] == "icmp"
                    && f["srcIP"] == ip_src.as_str()
                    && f["dstIP"] == ip_cap.as_str()
                    && f["packets"].as_u64().is_some_and(|p| p >= 2)
            })
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let _ = Command::new("ip")
            .args([
                "netns", "exec", &ns_src, "ping", "-c", "2", "-i", "0.2", "-W", "1", &ip_cap,
            ])
            .stdout(Stdio::null())
            .status();
        let (status, flows) = get_json(addr, "/api/v1/flows?protocol=icmp");
        if status == 200 && wanted(&flows) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no ICMP flow {ip_src} -> {ip_cap} after 60 s: {flows}\nserver log:\n{}\nhelper log:\n{}",
            std::fs::read_to_string(dir.join("server.log")).unwrap_or_default(),
            std::fs::read_to_string(dir.join("helper.log")).unwrap_or_default()
        );
    }

    // Health: capture active, one live helper, connected as netwatch-capture.
    let (status, health) = get_json(addr, "/api/v1/health");
    assert_eq!(status, 200, "{health}");
    assert!(
        matches!(health["status"].as_str(), Some("healthy" | "degraded")),
        "{health}"
    );
    assert_eq!(health["capture_active"], true, "{health}");
    let helpers = health["helpers"].as_array().expect("helpers");
    assert!(
        helpers.iter().any(|h| h["connected"] == true
            && h["uid"] == cap_uid
            && h["interface"] == veth_cap.as_str()),
        "{health}"
    );

    // What each process holds once running (what systemd would enforce from outside).
    let hs = proc_status(helper.0.id());
    assert_eq!(
        hs.get("Uid").map(|v| v.split_whitespace().nth(1)),
        Some(Some(cap_uid.to_string().as_str()))
    );
    assert_eq!(
        hs.get("Groups").map(String::as_str),
        Some(gid.to_string().as_str()),
        "helper groups"
    );
    assert_eq!(
        hs["CapEff"], "0000000000000000",
        "helper keeps no effective capability"
    );
    assert_eq!(
        hs["CapPrm"], "0000000000000000",
        "helper keeps no permitted capability"
    );
    assert_eq!(
        hs["CapAmb"], "0000000000000000",
        "helper clears its ambient set"
    );
    assert_eq!(
        hs["CapInh"], "0000000000000000",
        "helper clears its inheritable set"
    );
    assert_eq!(
        hs["CapBnd"], "0000000000000000",
        "helper empties its bounding set (CAP_SETPCAP from the unit)"
    );
    assert_eq!(hs["NoNewPrivs"], "1");
    assert_eq!(hs["Seccomp"], "2", "helper runs under its seccomp filter");
    let ss = proc_status(server.0.id());
    assert_eq!(
        ss.get("Uid").map(|v| v.split_whitespace().nth(1)),
        Some(Some(srv_uid.to_string().as_str()))
    );
    for k in ["CapEff", "CapPrm", "CapAmb", "CapBnd", "CapInh"] {
        assert_eq!(ss[k], "0000000000000000", "server {k}");
    }
    assert_eq!(ss["NoNewPrivs"], "1");

    // Anyone outside group netwatch cannot even reach the socket (0750 runtime directory).
    let out = Command::new("setpriv")
        .args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "--no-new-privs",
            "stat",
        ])
        .arg(&sock)
        .output()
        .expect("stat as nobody");
    assert!(!out.status.success(), "nobody reached the capture socket");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Permission denied"), "{err}");
    drop(helper);
    drop(server);
}
