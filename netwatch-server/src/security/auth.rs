//! Static bearer tokens (D-13): loaded from a file or the environment, compared in constant time.
//!
//! The comparison never reveals where two tokens differ nor how long the configured token is:
//! both sides are copied into fixed [`MAX_TOKEN_LEN`]-byte buffers and compared with
//! [`subtle::ConstantTimeEq`] over the whole buffer, together with their lengths; every
//! configured token is compared, without an early exit.
//!
//! Where a request carries its token ([`presented_token`]):
//! - `Authorization: Bearer <token>` (REST, `/metrics`, non-browser WebSocket clients);
//! - for WebSocket upgrades only, a `Sec-WebSocket-Protocol` entry `bearer.<token>` next to
//!   [`WS_PROTOCOL`]: a browser cannot set headers on a WebSocket, and the token must never be in
//!   the URL (D-13). The server answers with `Sec-WebSocket-Protocol: netwatch.v1`.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use subtle::ConstantTimeEq;
use thiserror::Error;
use warp::http;

/// Longest token accepted (bytes). Longer presented tokens are refused without comparison.
pub const MAX_TOKEN_LEN: usize = 256;
/// Shortest token accepted in the configuration (bytes): 128 bits as hex.
pub const MIN_TOKEN_LEN: usize = 32;
/// The WebSocket subprotocol the dashboard offers (and the server selects).
pub const WS_PROTOCOL: &str = "netwatch.v1";
/// Prefix of the `Sec-WebSocket-Protocol` entry that carries the token.
pub const WS_TOKEN_PREFIX: &str = "bearer.";
/// The seeds' example token (SEC-15): refused, so it can never be a production default.
pub const SEED_EXAMPLE_TOKEN: &str = "development-token-change-in-production";

/// Why the configured token(s) could not be used.
#[derive(Debug, Error)]
pub enum TokenError {
    /// The token file could not be read.
    #[error("cannot read token file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The token file can be read by every user of the machine.
    #[error("token file {path} is readable by other users (mode {mode:o}); run: chmod 600 {path}")]
    WorldReadable {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The token file holds no token.
    #[error("token file {0} holds no token (one per line; # starts a comment)")]
    Empty(PathBuf),
    /// A token is too short, too long, or holds characters outside visible ASCII.
    #[error("{origin}: {reason}")]
    Invalid {
        /// Where the token came from (file and line, or the variable).
        origin: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// One configured token. Its `Debug` output never shows the secret.
#[derive(Clone)]
pub struct Token {
    buf: [u8; MAX_TOKEN_LEN],
    len: usize,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// Validates a configured token. `origin` names its source in error messages.
    ///
    /// # Errors
    /// [`TokenError::Invalid`] when it is shorter than [`MIN_TOKEN_LEN`], longer than
    /// [`MAX_TOKEN_LEN`], holds anything but visible ASCII, or is the seeds' example token.
    pub fn parse(text: &str, origin: &str) -> Result<Self, TokenError> {
        let invalid = |reason: String| TokenError::Invalid {
            origin: origin.to_owned(),
            reason,
        };
        let bytes = text.as_bytes();
        if text == SEED_EXAMPLE_TOKEN {
            return Err(invalid(
                "the documentation's example token is refused; generate one: openssl rand -hex 32"
                    .into(),
            ));
        }
        if bytes.len() < MIN_TOKEN_LEN {
            return Err(invalid(format!(
                "token is {} bytes, at least {MIN_TOKEN_LEN} are required (openssl rand -hex 32)",
                bytes.len()
            )));
        }
        if bytes.len() > MAX_TOKEN_LEN {
            return Err(invalid(format!(
                "token is {} bytes, at most {MAX_TOKEN_LEN} are allowed",
                bytes.len()
            )));
        }
        if !bytes.iter().all(|b| b.is_ascii_graphic()) {
            return Err(invalid(
                "token must be visible ASCII without spaces (hex or base64url)".into(),
            ));
        }
        Ok(Self::from_bytes_unchecked(bytes))
    }

    fn from_bytes_unchecked(bytes: &[u8]) -> Self {
        let mut buf = [0u8; MAX_TOKEN_LEN];
        buf[..bytes.len()].copy_from_slice(bytes);
        Self {
            buf,
            len: bytes.len(),
        }
    }

    /// Constant-time comparison with a presented token of at most [`MAX_TOKEN_LEN`] bytes
    /// (already padded into `buf`, true length `len`).
    fn ct_matches(&self, buf: &[u8; MAX_TOKEN_LEN], len: usize) -> subtle::Choice {
        self.buf.ct_eq(buf) & (self.len as u64).ct_eq(&(len as u64))
    }
}

/// The configured tokens; empty means authentication is off (loopback-only, see
/// [`super::check_listen`]).
#[derive(Debug, Clone, Default)]
pub struct TokenSet {
    tokens: Vec<Token>,
}

impl TokenSet {
    /// A set of tokens (empty: authentication off).
    #[must_use]
    pub fn new(tokens: Vec<Token>) -> Self {
        Self { tokens }
    }

    /// True when at least one token is configured.
    #[must_use]
    pub fn enabled(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// Number of configured tokens (several allow rotation without downtime).
    #[must_use]
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// True when no token is configured.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// True when `presented` equals one of the configured tokens. Constant time in the
    /// contents and lengths of the configured tokens; an over-long presented token is refused
    /// before any comparison (its length is the client's own knowledge).
    #[must_use]
    pub fn verify(&self, presented: &[u8]) -> bool {
        if presented.len() > MAX_TOKEN_LEN || presented.is_empty() {
            return false;
        }
        let mut buf = [0u8; MAX_TOKEN_LEN];
        buf[..presented.len()].copy_from_slice(presented);
        let mut ok = subtle::Choice::from(0u8);
        for t in &self.tokens {
            ok |= t.ct_matches(&buf, presented.len());
        }
        bool::from(ok)
    }

    /// Loads tokens from a file (one per line, `#` comments, blank lines ignored) and/or a
    /// variable's value. The file must not be readable by other users.
    ///
    /// # Errors
    /// Any [`TokenError`]: unreadable or world-readable file, a file without tokens, an
    /// invalid token.
    pub fn load(file: Option<&Path>, env_value: Option<(&str, &str)>) -> Result<Self, TokenError> {
        let mut tokens = Vec::new();
        if let Some(path) = file {
            let read_err = |source| TokenError::Read {
                path: path.to_owned(),
                source,
            };
            let meta = fs::metadata(path).map_err(read_err)?;
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o004 != 0 {
                return Err(TokenError::WorldReadable {
                    path: path.to_owned(),
                    mode,
                });
            }
            let text = fs::read_to_string(path).map_err(|source| TokenError::Read {
                path: path.to_owned(),
                source,
            })?;
            let before = tokens.len();
            for (i, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let origin = format!("{}:{}", path.display(), i + 1);
                tokens.push(Token::parse(line, &origin)?);
            }
            if tokens.len() == before {
                return Err(TokenError::Empty(path.to_owned()));
            }
        }
        if let Some((name, value)) = env_value {
            let value = value.trim();
            if !value.is_empty() {
                tokens.push(Token::parse(value, name)?);
            }
        }
        Ok(Self { tokens })
    }
}

/// Where a request's token was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented<'a> {
    /// No token in the request.
    None,
    /// `Authorization: Bearer ...`.
    Header(&'a [u8]),
    /// `Sec-WebSocket-Protocol: netwatch.v1, bearer.<token>` on an upgrade.
    WsProtocol(&'a [u8]),
    /// An `Authorization` header with another scheme or no value.
    Malformed,
}

impl<'a> Presented<'a> {
    /// The token bytes, if any.
    #[must_use]
    pub fn bytes(self) -> Option<&'a [u8]> {
        match self {
            Presented::Header(b) | Presented::WsProtocol(b) => Some(b),
            Presented::None | Presented::Malformed => None,
        }
    }
}

/// Finds the token in a request's headers; `ws_upgrade` allows the subprotocol carrier.
#[must_use]
pub fn presented_token(headers: &http::HeaderMap, ws_upgrade: bool) -> Presented<'_> {
    if let Some(v) = headers.get(http::header::AUTHORIZATION) {
        let v = v.as_bytes();
        // RFC 7235: the scheme is case-insensitive, one or more spaces before the credentials.
        if v.len() > 7 && v[..7].eq_ignore_ascii_case(b"bearer ") {
            let t = trim_ascii(&v[7..]);
            if !t.is_empty() {
                return Presented::Header(t);
            }
        }
        return Presented::Malformed;
    }
    if ws_upgrade {
        for v in headers.get_all(http::header::SEC_WEBSOCKET_PROTOCOL) {
            for item in v.as_bytes().split(|b| *b == b',') {
                let item = trim_ascii(item);
                if let Some(t) = item.strip_prefix(WS_TOKEN_PREFIX.as_bytes()) {
                    return Presented::WsProtocol(t);
                }
            }
        }
    }
    Presented::None
}

/// True when the upgrade request offered [`WS_PROTOCOL`] (the server must then select it).
#[must_use]
pub fn offers_ws_protocol(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .any(|item| trim_ascii(item) == WS_PROTOCOL.as_bytes())
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    const T1: &str = "0123456789abcdef0123456789abcdef";
    const T2: &str = "fedcba9876543210fedcba9876543210ff";

    fn set() -> TokenSet {
        TokenSet::new(vec![
            Token::parse(T1, "t1").expect("valid"),
            Token::parse(T2, "t2").expect("valid"),
        ])
    }

    #[test]
    fn verify_accepts_each_configured_token_only() {
        let s = set();
        assert!(s.verify(T1.as_bytes()));
        assert!(s.verify(T2.as_bytes()));
        assert!(!s.verify(b""));
        assert!(!s.verify(&T1.as_bytes()[..31]), "prefix");
        assert!(!s.verify(format!("{T1}0").as_bytes()), "longer");
        assert!(
            !s.verify(format!("{T1}\0").as_bytes()),
            "padding byte appended"
        );
        assert!(
            !s.verify("0123456789abcdef0123456789abcdeF".as_bytes()),
            "last byte"
        );
        assert!(!s.verify(&[b'a'; MAX_TOKEN_LEN + 1]));
        assert!(!TokenSet::default().verify(T1.as_bytes()));
    }

    #[test]
    fn parse_refuses_weak_or_odd_tokens() {
        assert!(Token::parse("short", "x").is_err());
        assert!(Token::parse(SEED_EXAMPLE_TOKEN, "x").is_err());
        assert!(Token::parse(&"a".repeat(MAX_TOKEN_LEN + 1), "x").is_err());
        assert!(Token::parse("0123456789abcdef 0123456789abcdef", "x").is_err());
        assert!(Token::parse(&"a".repeat(MAX_TOKEN_LEN), "x").is_ok());
        assert_eq!(
            format!("{:?}", Token::parse(T1, "x").expect("ok")),
            "Token(<redacted>)"
        );
    }

    #[test]
    fn presented_token_sources() {
        let mut h = http::HeaderMap::new();
        assert_eq!(presented_token(&h, true), Presented::None);
        h.insert(
            "authorization",
            format!("bearer  {T1} ").parse().expect("hv"),
        );
        assert_eq!(presented_token(&h, false), Presented::Header(T1.as_bytes()));
        h.insert("authorization", "Basic Zm9vOmJhcg==".parse().expect("hv"));
        assert_eq!(presented_token(&h, false), Presented::Malformed);
        let mut h = http::HeaderMap::new();
        h.insert(
            "sec-websocket-protocol",
            format!("netwatch.v1, bearer.{T1}").parse().expect("hv"),
        );
        assert_eq!(
            presented_token(&h, false),
            Presented::None,
            "only on upgrades"
        );
        assert_eq!(
            presented_token(&h, true),
            Presented::WsProtocol(T1.as_bytes())
        );
        assert!(offers_ws_protocol(&h));
    }

    #[test]
    fn load_from_file_and_env() {
        let dir = std::env::temp_dir().join(format!("nw-auth-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("dir");
        let p = dir.join("token");
        fs::write(&p, format!("# rotation\n{T1}\n\n{T2}\n")).expect("write");
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(matches!(
            TokenSet::load(Some(&p), None),
            Err(TokenError::WorldReadable { .. })
        ));
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).expect("chmod");
        let s = TokenSet::load(Some(&p), None).expect("load");
        assert_eq!(s.len(), 2);
        fs::write(&p, "# nothing\n").expect("write");
        assert!(matches!(
            TokenSet::load(Some(&p), None),
            Err(TokenError::Empty(_))
        ));
        let s = TokenSet::load(None, Some(("NETWATCH_TOKEN", T1))).expect("env");
        assert!(s.verify(T1.as_bytes()));
        assert!(TokenSet::load(None, Some(("NETWATCH_TOKEN", "")))
            .expect("empty")
            .is_empty());
        let _ = fs::remove_dir_all(&dir);
    }
}
