//! Stage: the HTTP Host of a flow's first request, for its accounting record (CNT-3).
//! Looks only at the first segment with payload; a request split before its Host line is
//! recorded without one.

use crate::msg::HOST_MAX;

const METHODS: [&[u8]; 9] = [
    b"GET ",
    b"POST ",
    b"HEAD ",
    b"PUT ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"TRACE ",
];

/// The Host header of the HTTP/1.x request that starts `payload`, trimmed, at most
/// [`HOST_MAX`] bytes; `None` if `payload` is not a request or has no Host line.
pub fn host(payload: &[u8]) -> Option<&[u8]> {
    if !METHODS.iter().any(|m| payload.starts_with(m)) {
        return None;
    }
    let mut lines = payload.split(|b| *b == b'\n').skip(1);
    lines.find_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() < 5 || !line[..5].eq_ignore_ascii_case(b"host:") {
            return None;
        }
        let v = line[5..].trim_ascii();
        (!v.is_empty()).then(|| &v[..v.len().min(HOST_MAX)])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_host() {
        assert_eq!(
            host(b"GET /a HTTP/1.1\r\nUser-Agent: x\r\nHost: example.com\r\n\r\n"),
            Some(&b"example.com"[..])
        );
        assert_eq!(
            host(b"POST / HTTP/1.1\r\nhost:   Example.ORG:8080 \r\n"),
            Some(&b"Example.ORG:8080"[..])
        );
        assert_eq!(host(b"GET / HTTP/1.0\r\n\r\n"), None);
        assert_eq!(host(b"\x16\x03\x01 TLS hello"), None);
        let long = format!("GET / HTTP/1.1\r\nHost: {}\r\n", "a".repeat(100));
        assert_eq!(host(long.as_bytes()).unwrap().len(), HOST_MAX);
    }
}
