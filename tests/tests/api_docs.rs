//! Every `curl` example of docs/API.md, run against a live server that replayed the sample
//! capture the document uses. A line ending in `# NNN` must answer NNN, the others 200.

mod api_support;

use api_support::{fixture, request, workspace, Server};

struct Example {
    line: String,
    method: String,
    path: String,
    status: u16,
}

fn examples() -> Vec<Example> {
    let text = std::fs::read_to_string(workspace().join("docs/API.md")).expect("docs/API.md");
    let mut out = Vec::new();
    let mut in_sh = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("```") {
            in_sh = t == "```sh";
            continue;
        }
        if !in_sh || !t.starts_with("curl ") {
            continue;
        }
        let (cmd, status) = match t.rsplit_once('#') {
            Some((c, s)) => (c.trim(), s.trim().parse().expect("# NNN status")),
            None => (t, 200),
        };
        let url = cmd
            .split('\'')
            .nth(1)
            .unwrap_or_else(|| panic!("no quoted URL in {t}"));
        let path = url
            .strip_prefix("http://localhost:8080")
            .unwrap_or_else(|| panic!("examples use http://localhost:8080: {t}"))
            .to_string();
        let words: Vec<&str> = cmd.split_whitespace().collect();
        let method = words
            .iter()
            .position(|w| *w == "-X")
            .and_then(|i| words.get(i + 1))
            .map_or("GET", |m| *m)
            .to_string();
        out.push(Example {
            line: t.to_string(),
            method,
            path,
            status,
        });
    }
    out
}

#[test]
fn every_curl_example_in_the_api_document_works() {
    let ex = examples();
    assert!(ex.len() >= 20, "only {} examples found", ex.len());
    let server = Server::start(&[]);
    server.replay(&fixture("zeek_http_bro.org.pcap"));
    // The health example expects 503: wait until the server has seen the helper leave.
    server.health_when(|h| h["capture_active"] == false);
    for e in &ex {
        let headers: Vec<(&str, &str)> = if e.method == "GET" {
            vec![]
        } else {
            vec![("Content-Length", "0")]
        };
        let r = request(server.addr, &e.method, &e.path, &headers);
        assert_eq!(r.status, e.status, "{}: {}", e.line, r.text());
        match r.header("content-type") {
            Some("application/json") => {
                let v = r.json();
                if e.status == 200 && e.path.contains("/flows") && !e.path.contains("/flows/") {
                    assert!(
                        v["pagination"]["total_count"].as_u64().unwrap_or(0) > 0,
                        "{}: the example should return flows of the sample capture",
                        e.line
                    );
                }
            }
            Some(t) => assert!(
                t.starts_with("text/csv") || t == "application/yaml",
                "{}: {t}",
                e.line
            ),
            None => panic!("{}: no content type", e.line),
        }
    }
}
