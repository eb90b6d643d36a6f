//! The live feed's wire format (documented in docs/WEBSOCKET.md): JSON text frames.
//!
//! Server to client: `{"type": T, "timestamp": ISO-8601, "data": {...}}`.
//! Client to server: `{"type": "subscribe", "topics": [...], "filter": {...}}`,
//! `{"type": "unsubscribe", "topics": [...]}`, `{"type": "ping"}`.
//!
//! Everything here is pure: parsing never panics on any input and never allocates more than
//! the (size-limited) frame it reads.

use serde::Deserialize;
use std::collections::BTreeMap;

/// The subprotocol the dashboard offers and the server selects (the security layer may also
/// carry a token as `bearer.<token>` next to it).
pub const SUBPROTOCOL: &str = "netwatch.v1";

/// Largest client message accepted (bytes); larger frames close the connection.
pub const MAX_CLIENT_MESSAGE: usize = 4096;

/// Keys a flow filter may hold: the query parameters of `GET /api/v1/flows` that select flows.
pub const FILTER_KEYS: [&str; 10] = [
    "src_ip",
    "dst_ip",
    "host",
    "protocol",
    "port",
    "port_min",
    "port_max",
    "status",
    "time_start",
    "time_end",
];

/// A topic a client can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// Per-second traffic and server metrics.
    Metrics,
    /// Top talkers of the last 5 minutes.
    TopTalkers,
    /// Protocol breakdown of the last 5 minutes.
    Protocols,
    /// The health document.
    Health,
    /// Alert transitions.
    Alerts,
    /// Flows changed since the previous push that match the client's filter.
    Flows,
}

impl Topic {
    /// Every topic, in bit order.
    pub const ALL: [Topic; 6] = [
        Topic::Metrics,
        Topic::TopTalkers,
        Topic::Protocols,
        Topic::Health,
        Topic::Alerts,
        Topic::Flows,
    ];

    /// Wire name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Topic::Metrics => "metrics",
            Topic::TopTalkers => "top_talkers",
            Topic::Protocols => "protocols",
            Topic::Health => "health",
            Topic::Alerts => "alerts",
            Topic::Flows => "flows",
        }
    }

    /// Parses a wire name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.name() == s)
    }

    /// Bit in a [`Topics`] set.
    #[must_use]
    pub fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of topics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Topics(pub u8);

impl Topics {
    /// True when `t` is in the set.
    #[must_use]
    pub fn has(self, t: Topic) -> bool {
        self.0 & t.bit() != 0
    }

    /// The names, in bit order.
    #[must_use]
    pub fn names(self) -> Vec<&'static str> {
        Topic::ALL
            .into_iter()
            .filter(|t| self.has(*t))
            .map(Topic::name)
            .collect()
    }
}

/// A flow filter as the client sent it: query-parameter names to values (validated by the
/// same parser as `GET /api/v1/flows`).
pub type RawFilter = BTreeMap<String, String>;

/// A parsed client message.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage {
    /// Adds topics; a filter (for `flows`) replaces the previous one.
    Subscribe {
        /// Topics to add.
        topics: Vec<Topic>,
        /// New flow filter, if given.
        filter: Option<RawFilter>,
    },
    /// Removes topics.
    Unsubscribe {
        /// Topics to remove.
        topics: Vec<Topic>,
    },
    /// Application-level keep-alive; answered with `pong`.
    Ping,
}

/// Why a client message was refused (sent back as an `error` message; the connection stays).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// Not JSON or not an object with a string `type`.
    #[error("message is not a JSON object with a \"type\": {0}")]
    Malformed(String),
    /// A `type` the server does not know.
    #[error("unknown message type \"{0}\" (expected subscribe, unsubscribe or ping)")]
    UnknownType(String),
    /// A topic the server does not know.
    #[error(
        "unknown topic \"{0}\" (expected metrics, top_talkers, protocols, health, alerts or flows)"
    )]
    UnknownTopic(String),
    /// A filter key that is not a flow query parameter.
    #[error("unknown filter key \"{0}\" (expected src_ip, dst_ip, host, protocol, port, status, time_start or time_end)")]
    UnknownFilterKey(String),
    /// A filter value the flow query parser refused.
    #[error("invalid filter: {0}")]
    InvalidFilter(String),
}

impl ProtocolError {
    /// Stable machine-readable code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            ProtocolError::Malformed(_) => "MALFORMED_MESSAGE",
            ProtocolError::UnknownType(_) => "UNKNOWN_TYPE",
            ProtocolError::UnknownTopic(_) => "UNKNOWN_TOPIC",
            ProtocolError::UnknownFilterKey(_) | ProtocolError::InvalidFilter(_) => {
                "INVALID_FILTER"
            }
        }
    }
}

#[derive(Deserialize)]
struct Wire {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    topics: Vec<String>,
    #[serde(default)]
    filter: Option<BTreeMap<String, serde_json::Value>>,
}

/// Parses one client text frame.
pub fn parse_client(text: &str) -> Result<ClientMessage, ProtocolError> {
    let w: Wire =
        serde_json::from_str(text).map_err(|e| ProtocolError::Malformed(e.to_string()))?;
    let topics = || -> Result<Vec<Topic>, ProtocolError> {
        w.topics
            .iter()
            .map(|t| Topic::parse(t).ok_or_else(|| ProtocolError::UnknownTopic(t.clone())))
            .collect()
    };
    match w.kind.as_str() {
        "subscribe" => {
            let filter = match &w.filter {
                None => None,
                Some(map) => {
                    let mut out = RawFilter::new();
                    for (k, v) in map {
                        if !FILTER_KEYS.contains(&k.as_str()) {
                            return Err(ProtocolError::UnknownFilterKey(k.clone()));
                        }
                        let s = match v {
                            serde_json::Value::String(s) => s.clone(),
                            serde_json::Value::Number(n) => n.to_string(),
                            serde_json::Value::Null => continue,
                            other => {
                                return Err(ProtocolError::InvalidFilter(format!(
                                    "{k}: {other} is not a string or number"
                                )))
                            }
                        };
                        if !s.is_empty() {
                            out.insert(k.clone(), s);
                        }
                    }
                    Some(out)
                }
            };
            Ok(ClientMessage::Subscribe {
                topics: topics()?,
                filter,
            })
        }
        "unsubscribe" => Ok(ClientMessage::Unsubscribe { topics: topics()? }),
        "ping" => Ok(ClientMessage::Ping),
        other => Err(ProtocolError::UnknownType(other.to_string())),
    }
}

/// Serialises one server message: `{"type", "timestamp", "data"}`.
#[must_use]
pub fn envelope(kind: &str, timestamp: &str, data: &serde_json::Value) -> String {
    serde_json::json!({ "type": kind, "timestamp": timestamp, "data": data }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribe_with_filter() {
        let m = parse_client(
            r#"{"type":"subscribe","topics":["metrics","flows"],"filter":{"src_ip":"10.0.0.0/8","port":443,"status":null}}"#,
        );
        let mut f = RawFilter::new();
        f.insert("src_ip".into(), "10.0.0.0/8".into());
        f.insert("port".into(), "443".into());
        assert_eq!(
            m,
            Ok(ClientMessage::Subscribe {
                topics: vec![Topic::Metrics, Topic::Flows],
                filter: Some(f)
            })
        );
    }

    #[test]
    fn other_messages() {
        assert_eq!(parse_client(r#"{"type":"ping"}"#), Ok(ClientMessage::Ping));
        assert_eq!(
            parse_client(r#"{"type":"unsubscribe","topics":["flows"]}"#),
            Ok(ClientMessage::Unsubscribe {
                topics: vec![Topic::Flows]
            })
        );
        assert_eq!(
            parse_client(r#"{"type":"subscribe"}"#),
            Ok(ClientMessage::Subscribe {
                topics: vec![],
                filter: None
            })
        );
    }

    #[test]
    fn refusals_name_the_problem() {
        assert!(matches!(
            parse_client("not json"),
            Err(ProtocolError::Malformed(_))
        ));
        assert!(matches!(
            parse_client("[]"),
            Err(ProtocolError::Malformed(_))
        ));
        assert_eq!(
            parse_client(r#"{"type":"dance"}"#),
            Err(ProtocolError::UnknownType("dance".into()))
        );
        assert_eq!(
            parse_client(r#"{"type":"subscribe","topics":["cats"]}"#),
            Err(ProtocolError::UnknownTopic("cats".into()))
        );
        assert_eq!(
            parse_client(r#"{"type":"subscribe","topics":[],"filter":{"limit":"5"}}"#),
            Err(ProtocolError::UnknownFilterKey("limit".into()))
        );
        assert!(matches!(
            parse_client(r#"{"type":"subscribe","topics":[],"filter":{"port":[1]}}"#),
            Err(ProtocolError::InvalidFilter(_))
        ));
    }

    #[test]
    fn topic_sets() {
        let t = Topics(Topic::Metrics.bit() | Topic::Flows.bit());
        assert!(t.has(Topic::Metrics) && t.has(Topic::Flows) && !t.has(Topic::Health));
        assert_eq!(t.names(), vec!["metrics", "flows"]);
        for topic in Topic::ALL {
            assert_eq!(Topic::parse(topic.name()), Some(topic));
        }
    }

    #[test]
    fn envelope_shape() {
        let s = envelope("pong", "2025-01-01T00:00:00Z", &serde_json::json!({}));
        let v: serde_json::Value = serde_json::from_str(&s).expect("json");
        assert_eq!(v["type"], "pong");
        assert_eq!(v["timestamp"], "2025-01-01T00:00:00Z");
        assert!(v["data"].is_object());
    }
}
