//! The shipped example configuration (deploy/netwatch.toml) is accepted by the real server,
//! and its `[security]` table works. No root needed.

mod security_support;

use security_support::{workspace, write_token, Server, TempDir, TOKEN};

#[test]
fn example_config_starts_the_server() {
    let cfg = workspace().join("deploy/netwatch.toml");
    let s = Server::start(&["--config", cfg.to_str().expect("utf-8")], &[]);
    let r = s.get("/api/v1/flows", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn security_table_of_the_config_file_is_used() {
    let dir = TempDir::new("cfg");
    let token = write_token(&dir, TOKEN);
    let example = std::fs::read_to_string(workspace().join("deploy/netwatch.toml")).expect("read");
    let cfg = example
        .replace(
            "#token_file = \"/etc/netwatch/token\"",
            &format!("token_file = {:?}", token.to_str().expect("utf-8")),
        )
        .replace("rate_limit_loopback = 1000", "rate_limit_loopback = 3");
    assert_ne!(
        cfg, example,
        "the example's [security] lines changed: update this test"
    );
    let path = dir.join("netwatch.toml");
    std::fs::write(&path, cfg).expect("write");
    let s = Server::start(&["--config", path.to_str().expect("utf-8")], &[]);
    assert_eq!(s.get("/api/v1/flows", &[]).status, 401);
    let auth = format!("Bearer {TOKEN}");
    assert_eq!(
        s.get("/api/v1/flows", &[("Authorization", &auth)]).status,
        200
    );
    // rate_limit_loopback = 3: the 4th request in the minute is refused.
    assert_eq!(
        s.get("/api/v1/flows", &[("Authorization", &auth)]).status,
        200
    );
    assert_eq!(
        s.get("/api/v1/flows", &[("Authorization", &auth)]).status,
        429
    );
    // The flag beats the file.
    drop(s);
    let s = Server::start(
        &[
            "--config",
            path.to_str().expect("utf-8"),
            "--rate-limit-loopback",
            "0",
        ],
        &[],
    );
    for _ in 0..10 {
        assert_eq!(
            s.get("/api/v1/flows", &[("Authorization", &auth)]).status,
            200
        );
    }
}
