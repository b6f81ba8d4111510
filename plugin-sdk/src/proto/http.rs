//! Minimal HTTP/1.1 request framing, for devices that push over HTTP (plate and container
//! cameras), and a `multipart/form-data` part splitter.
//!
//! The host's HTTP listener answers the device itself and hands the driver every request it
//! received re-serialised as one HTTP/1.1 request with a `Content-Length`: request line,
//! headers, blank line, body. Those bytes reach the driver like any other stream: a request
//! may be split across several feeds, and several requests may arrive back to back.
//! [`RequestFramer`] cuts that stream into [`Request`]s:
//!
//! - the request line must be `METHOD SP target SP HTTP/1.x` with a known method
//!   ([`METHODS`]); lines end with CR LF (a bare LF is accepted);
//! - header names are matched case-insensitively ([`Request::header`]); the head (request
//!   line + headers + blank line) may be at most [`Limits::max_head`] bytes;
//! - the body is exactly `Content-Length` bytes (no `Content-Length`: no body);
//!   `Transfer-Encoding` is refused, since the host always re-frames with a length;
//! - a request whose body exceeds [`Limits::max_body`] is skipped as it streams by, without
//!   being buffered, and reported once as a [`Rejected`] counting all its bytes;
//! - CR and LF right after a request (or line) are ignored (RFC 9112 §2.2); any other bytes
//!   that do not start a request are noise, reported as one rejection per run once the next
//!   request (or line) starts, or as soon as the run reaches [`Limits::max_body`] bytes;
//! - optionally ([`RequestFramer::with_lines`]) the same stream may also carry plain
//!   delimited lines (devices that write to a socket instead of POSTing), recognised by their
//!   first bytes and handed out as [`Item::Line`].
//!
//! As with [`crate::proto::frame::Splitter`], every byte pushed is eventually accounted for:
//! handed out in a request or a line, reported as rejected, ignored as an inter-message CR/LF,
//! or still [`buffered`](RequestFramer::buffered).
//!
//! ```
//! use kakou_plugin_sdk::proto::http::{Item, Limits, Request, RequestFramer};
//!
//! let wire = Request::new("POST", "/anpr")
//!     .with_header("Content-Type", "application/xml")
//!     .with_body(b"<EventNotificationAlert/>".to_vec())
//!     .to_bytes();
//! let mut framer = RequestFramer::new(Limits::default());
//! framer.push(&wire[..10]);
//! assert!(framer.next_item().is_none());
//! framer.push(&wire[10..]);
//! let Some(Item::Request { request: req, bytes }) = framer.next_item() else { panic!() };
//! assert_eq!(bytes, wire.len());
//! assert_eq!(req.header("content-type"), Some("application/xml"));
//! assert_eq!(req.body, b"<EventNotificationAlert/>");
//! ```

use super::frame::Rejected;

/// Default cap on the request head (request line, headers, blank line): 16 KiB.
pub const DEFAULT_MAX_HEAD: usize = 16 * 1024;

/// Default cap on a request body: 4 MiB.
pub const DEFAULT_MAX_BODY: usize = 4 * 1024 * 1024;

/// Methods that may start a request.
pub const METHODS: [&str; 7] = ["POST", "PUT", "GET", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// One header field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Field name as sent.
    pub name: String,
    /// Field value, surrounding whitespace removed.
    pub value: String,
}

/// The first header called `name` (case-insensitive) in `headers`.
pub fn find_header<'a>(headers: &'a [Header], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

/// One HTTP request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    /// Method, e.g. `POST`.
    pub method: String,
    /// Request target, e.g. `/ISAPI/Event/notification`.
    pub target: String,
    /// Protocol version, e.g. `HTTP/1.1`.
    pub version: String,
    /// Header fields in the order received (`Content-Length` included).
    pub headers: Vec<Header>,
    /// The body, exactly `Content-Length` bytes.
    pub body: Vec<u8>,
}

impl Request {
    /// A request with no headers and no body, in HTTP/1.1.
    pub fn new(method: &str, target: &str) -> Self {
        Request {
            method: method.to_owned(),
            target: target.to_owned(),
            version: "HTTP/1.1".to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push(Header {
            name: name.to_owned(),
            value: value.to_owned(),
        });
        self
    }

    /// Sets the body.
    pub fn with_body(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }

    /// The first header called `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The `Content-Type` header.
    pub fn content_type(&self) -> Option<&str> {
        self.header("content-type")
    }

    /// The request as the host hands it to drivers: request line, the headers except
    /// `Content-Length` and `Transfer-Encoding`, `Content-Length: <body length>`, a blank line
    /// and the body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + 256);
        let version = if self.version.is_empty() {
            "HTTP/1.1"
        } else {
            &self.version
        };
        out.extend_from_slice(format!("{} {} {version}\r\n", self.method, self.target).as_bytes());
        for h in &self.headers {
            if h.name.eq_ignore_ascii_case("content-length")
                || h.name.eq_ignore_ascii_case("transfer-encoding")
            {
                continue;
            }
            out.extend_from_slice(format!("{}: {}\r\n", h.name, h.value).as_bytes());
        }
        out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", self.body.len()).as_bytes());
        out.extend_from_slice(&self.body);
        out
    }
}

/// Size limits for [`RequestFramer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest head (request line, headers and blank line) in bytes.
    pub max_head: usize,
    /// Largest body in bytes; larger requests are skipped and rejected.
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head: DEFAULT_MAX_HEAD,
            max_body: DEFAULT_MAX_BODY,
        }
    }
}

/// Plain lines that may share the stream with HTTP requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineSpec {
    /// A line starts with one of these (e.g. `b"{"`, `b"CNTR|"`); must not be empty.
    pub starts: Vec<Vec<u8>>,
    /// End delimiter, included in the line handed out (e.g. `b"\n"`).
    pub end: Vec<u8>,
    /// Longest acceptable line, delimiter included; longer lines are skipped and rejected.
    pub max_len: usize,
}

/// One result of [`RequestFramer::next_item`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A complete request.
    Request {
        /// The request.
        request: Request,
        /// How many stream bytes it took (head and body).
        bytes: usize,
    },
    /// A complete line (see [`RequestFramer::with_lines`]), delimiter included.
    Line(Vec<u8>),
    /// Bytes that were dropped, and why.
    Rejected(Rejected),
}

/// A request head: everything before the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Method.
    pub method: String,
    /// Request target.
    pub target: String,
    /// Protocol version.
    pub version: String,
    /// Header fields.
    pub headers: Vec<Header>,
    /// Bytes in the head, blank line included.
    pub len: usize,
    /// Body length from `Content-Length` (0 without one).
    pub body_len: usize,
}

/// What [`parse_head`] found at the start of a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadStatus {
    /// More bytes are needed.
    Partial,
    /// A complete, well-formed head.
    Complete(Head),
    /// Not a usable request head.
    Invalid(String),
}

/// Whether `buf` starts with a known method followed by a space: `Some(true)` yes,
/// `Some(false)` not yet decidable (`buf` is a prefix of such a start), `None` no.
pub fn request_start(buf: &[u8]) -> Option<bool> {
    let mut partial = false;
    for m in METHODS {
        let m = m.as_bytes();
        if buf.len() > m.len() {
            if buf.starts_with(m) && buf[m.len()] == b' ' {
                return Some(true);
            }
        } else if m.starts_with(buf) {
            partial = true;
        }
    }
    partial.then_some(false)
}

/// The line at the start of `buf`, without its line ending, and the length including it.
fn line_at(buf: &[u8]) -> Option<(&[u8], usize)> {
    let nl = buf.iter().position(|&b| b == b'\n')?;
    let line = &buf[..nl];
    Some((line.strip_suffix(b"\r").unwrap_or(line), nl + 1))
}

fn is_token(s: &[u8]) -> bool {
    !s.is_empty()
        && s.iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn parse_request_line(line: &[u8]) -> Result<(String, String, String), String> {
    let text = std::str::from_utf8(line)
        .map_err(|_| format!("request line is not text: {}", shorten(line)))?;
    let mut parts = text.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!(
            "request line {:?} is not `METHOD target HTTP/1.x`",
            shorten(line)
        ));
    };
    if !METHODS.contains(&method) {
        return Err(format!("unknown method {method:?}"));
    }
    if target.is_empty() || target.bytes().any(|b| b.is_ascii_control()) {
        return Err(format!("bad request target {target:?}"));
    }
    if !matches!(version, "HTTP/1.1" | "HTTP/1.0") {
        return Err(format!("unsupported protocol version {version:?}"));
    }
    Ok((method.to_owned(), target.to_owned(), version.to_owned()))
}

/// At most 40 characters of `bytes`, lossily decoded, for error messages.
fn shorten(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(40)]).into_owned();
    if bytes.len() > 40 {
        format!("{text}…")
    } else {
        text
    }
}

/// Header lines from `buf` until the blank line. `Ok(None)`: incomplete.
fn parse_header_block(buf: &[u8]) -> Result<Option<(Vec<Header>, usize)>, String> {
    let mut headers: Vec<Header> = Vec::new();
    let mut pos = 0;
    loop {
        let Some((line, len)) = line_at(&buf[pos..]) else {
            return Ok(None);
        };
        pos += len;
        if line.is_empty() {
            return Ok(Some((headers, pos)));
        }
        if matches!(line[0], b' ' | b'\t') {
            // Obsolete line folding: continue the previous value.
            let Some(last) = headers.last_mut() else {
                return Err("header block starts with a continuation line".into());
            };
            let more = String::from_utf8_lossy(line);
            last.value.push(' ');
            last.value.push_str(more.trim());
            continue;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(format!("header line {:?} has no colon", shorten(line)));
        };
        let name = &line[..colon];
        if !is_token(name) {
            return Err(format!("bad header name {:?}", shorten(name)));
        }
        headers.push(Header {
            name: String::from_utf8_lossy(name).into_owned(),
            value: String::from_utf8_lossy(&line[colon + 1..])
                .trim()
                .to_owned(),
        });
    }
}

/// The body length the headers announce.
fn body_length(headers: &[Header]) -> Result<usize, String> {
    if let Some(te) = find_header(headers, "transfer-encoding") {
        return Err(format!(
            "Transfer-Encoding {te:?} is not supported: requests must carry a Content-Length"
        ));
    }
    let mut length: Option<usize> = None;
    for h in headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("content-length"))
    {
        let v = h.value.trim();
        let n = if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
            v.parse::<usize>().ok()
        } else {
            None
        }
        .ok_or_else(|| format!("Content-Length {v:?} is not a number"))?;
        if length.is_some_and(|l| l != n) {
            return Err("conflicting Content-Length headers".into());
        }
        length = Some(n);
    }
    Ok(length.unwrap_or(0))
}

/// Parses the request head at the start of `buf` (which must begin with the request line).
/// A malformed line is reported as soon as it is complete; a head longer than `max_head`
/// without its blank line is invalid.
pub fn parse_head(buf: &[u8], max_head: usize) -> HeadStatus {
    let window = &buf[..buf.len().min(max_head)];
    let too_long = || {
        HeadStatus::Invalid(format!(
            "request head exceeds {max_head} bytes without a blank line"
        ))
    };
    let Some((line, first)) = line_at(window) else {
        return if buf.len() >= max_head {
            too_long()
        } else {
            HeadStatus::Partial
        };
    };
    let (method, target, version) = match parse_request_line(line) {
        Ok(parts) => parts,
        Err(e) => return HeadStatus::Invalid(e),
    };
    match parse_header_block(&window[first..]) {
        Err(e) => HeadStatus::Invalid(format!("{method} {target}: {e}")),
        Ok(None) if buf.len() >= max_head => too_long(),
        Ok(None) => HeadStatus::Partial,
        Ok(Some((headers, len))) => match body_length(&headers) {
            Err(e) => HeadStatus::Invalid(format!("{method} {target}: {e}")),
            Ok(body_len) => HeadStatus::Complete(Head {
                method,
                target,
                version,
                headers,
                len: first + len,
                body_len,
            }),
        },
    }
}

/// Bytes being passed over without buffering.
#[derive(Debug, Clone)]
struct Skip {
    reason: String,
    /// Bytes passed over so far.
    done: usize,
    /// Bytes still to pass over, or `None`: up to and including the next line delimiter.
    remaining: Option<usize>,
}

/// Cuts a byte stream into HTTP requests (and optionally plain lines). See the
/// [module documentation](self).
#[derive(Debug, Clone)]
pub struct RequestFramer {
    limits: Limits,
    lines: Option<LineSpec>,
    buf: Vec<u8>,
    /// `buf[..pos]` is consumed.
    pos: usize,
    skip: Option<Skip>,
    /// The last result was a good message (or this is the start of the stream): CR and LF
    /// here are ignored rather than reported as noise.
    after_message: bool,
    /// Noise bytes consumed and not yet reported.
    noise: usize,
}

/// How the bytes at one position start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    Request,
    Line,
    /// Too few bytes to tell.
    Undecided,
    No,
}

impl RequestFramer {
    /// A framer for HTTP requests only.
    pub fn new(limits: Limits) -> Self {
        RequestFramer {
            limits,
            lines: None,
            buf: Vec::new(),
            pos: 0,
            skip: None,
            after_message: true,
            noise: 0,
        }
    }

    /// Also accepts plain lines that begin with one of `spec.starts` and end with `spec.end`.
    /// Empty start markers are ignored.
    pub fn with_lines(mut self, mut spec: LineSpec) -> Self {
        spec.starts.retain(|s| !s.is_empty());
        spec.max_len = spec.max_len.max(spec.end.len() + 1);
        self.lines = Some(spec);
        self
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        if self.pos > 0 && self.pos >= self.buf.len() / 2 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Number of bytes pushed and not yet handed out, rejected or ignored (bytes of a request
    /// being skipped and noise awaiting its report are not buffered and not counted here).
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Hands back every buffered byte and forgets it. A request being skipped and unreported
    /// noise are forgotten too: the rest of a skipped body will then arrive as noise.
    pub fn drain(&mut self) -> Vec<u8> {
        let out = self.buf[self.pos..].to_vec();
        self.buf.clear();
        self.pos = 0;
        self.skip = None;
        self.after_message = true;
        self.noise = 0;
        out
    }

    fn start_at(&self, bytes: &[u8]) -> Start {
        match request_start(bytes) {
            Some(true) => return Start::Request,
            Some(false) => return Start::Undecided,
            None => {}
        }
        if let Some(spec) = &self.lines {
            for s in &spec.starts {
                if bytes.starts_with(s) {
                    return Start::Line;
                }
                if s.starts_with(bytes) {
                    return Start::Undecided;
                }
            }
        }
        Start::No
    }

    /// Length of the noise at the start of `avail`: up to the first position after 0 where a
    /// request or line may start.
    fn noise_len(&self, avail: &[u8]) -> usize {
        // Only positions holding the first byte of some start can start anything: checking
        // those alone keeps a long run of binary noise cheap.
        let mut first = [false; 256];
        for m in METHODS {
            first[usize::from(m.as_bytes()[0])] = true;
        }
        for s in self.lines.iter().flat_map(|l| &l.starts) {
            first[usize::from(s[0])] = true;
        }
        (1..avail.len())
            .find(|&i| first[usize::from(avail[i])] && self.start_at(&avail[i..]) != Start::No)
            .unwrap_or(avail.len())
    }

    fn consume(&mut self, n: usize) -> &[u8] {
        let start = self.pos;
        self.pos += n;
        &self.buf[start..self.pos]
    }

    fn reject(&mut self, reason: String, bytes: usize) -> Item {
        self.pos += bytes;
        self.after_message = false;
        Item::Rejected(Rejected { reason, bytes })
    }

    /// Advances a skip in progress. `Some` when it ended (with its rejection), `None` when
    /// more bytes are needed.
    fn step_skip(&mut self) -> Option<Item> {
        let mut skip = self.skip.take()?;
        let avail = self.buf.len() - self.pos;
        let finished = match skip.remaining {
            Some(n) => {
                let take = n.min(avail);
                skip.done += take;
                self.pos += take;
                skip.remaining = Some(n - take);
                n == take
            }
            None => {
                let end = self
                    .lines
                    .as_ref()
                    .map(|l| l.end.clone())
                    .unwrap_or_default();
                match find(&self.buf[self.pos..], &end) {
                    Some(i) => {
                        skip.done += i + end.len();
                        self.pos += i + end.len();
                        true
                    }
                    None => {
                        // Keep what may be the beginning of the delimiter.
                        let take = avail.saturating_sub(end.len().saturating_sub(1));
                        skip.done += take;
                        self.pos += take;
                        false
                    }
                }
            }
        };
        if finished {
            // The skipped message was complete: what follows starts at a message boundary.
            self.after_message = true;
            Some(Item::Rejected(Rejected {
                reason: skip.reason,
                bytes: skip.done,
            }))
        } else {
            self.skip = Some(skip);
            None
        }
    }

    /// The next request, line or rejection; `None` when more bytes are needed.
    pub fn next_item(&mut self) -> Option<Item> {
        if self.skip.is_some() {
            return self.step_skip();
        }
        let start = loop {
            if self.after_message {
                // CR and LF between messages are ignored.
                let blank = self.buf[self.pos..]
                    .iter()
                    .take_while(|&&b| b == b'\r' || b == b'\n')
                    .count();
                self.pos += blank;
            }
            let avail = &self.buf[self.pos..];
            if avail.is_empty() {
                break None;
            }
            match self.start_at(avail) {
                Start::No => {
                    // Noise: counted now, reported as one run when it ends.
                    let n = self.noise_len(avail);
                    self.pos += n;
                    self.noise += n;
                    self.after_message = false;
                }
                start => break Some(start),
            }
        };
        let run_ended = matches!(start, Some(Start::Request | Start::Line));
        if self.noise > 0 && (run_ended || self.noise >= self.limits.max_body.max(1)) {
            let n = std::mem::take(&mut self.noise);
            return Some(Item::Rejected(Rejected {
                reason: format!("{n} bytes of noise before a request"),
                bytes: n,
            }));
        }
        let avail = &self.buf[self.pos..];
        match start {
            None | Some(Start::Undecided | Start::No) => None,
            Some(Start::Line) => self.next_line(),
            Some(Start::Request) => match parse_head(avail, self.limits.max_head) {
                HeadStatus::Partial => None,
                HeadStatus::Invalid(reason) => {
                    let n = self.noise_len(avail);
                    Some(self.reject(reason, n))
                }
                HeadStatus::Complete(head) => {
                    let total = head.len + head.body_len;
                    if head.body_len > self.limits.max_body {
                        self.skip = Some(Skip {
                            reason: format!(
                                "{} {}: body of {} bytes exceeds the limit of {} bytes; skipped",
                                head.method, head.target, head.body_len, self.limits.max_body
                            ),
                            done: 0,
                            remaining: Some(total),
                        });
                        return self.step_skip();
                    }
                    if avail.len() < total {
                        return None;
                    }
                    let body = self.consume(total)[head.len..].to_vec();
                    self.after_message = true;
                    Some(Item::Request {
                        request: Request {
                            method: head.method,
                            target: head.target,
                            version: head.version,
                            headers: head.headers,
                            body,
                        },
                        bytes: total,
                    })
                }
            },
        }
    }

    fn next_line(&mut self) -> Option<Item> {
        let spec = self.lines.as_ref()?;
        let avail = &self.buf[self.pos..];
        let window = &avail[..avail.len().min(spec.max_len)];
        if let Some(i) = find(window, &spec.end) {
            let line = self.consume(i + spec.end.len()).to_vec();
            self.after_message = true;
            return Some(Item::Line(line));
        }
        if avail.len() < spec.max_len {
            return None;
        }
        self.skip = Some(Skip {
            reason: format!(
                "line longer than {} bytes without its end delimiter; skipped",
                spec.max_len
            ),
            done: 0,
            remaining: None,
        });
        self.step_skip()
    }
}

/// First position of `needle` in `hay`; an empty needle never matches.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let last_start = hay.len().checked_sub(needle.len())?;
    let mut i = 0;
    while i <= last_start {
        let off = hay[i..=last_start].iter().position(|&b| b == first)?;
        i += off;
        if hay[i + 1..i + needle.len()] == *rest {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// The media type of a `Content-Type` value, lower-cased, without parameters
/// (`"Multipart/Form-Data; boundary=x"` → `"multipart/form-data"`).
pub fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// A parameter of a header value such as `Content-Type` or `Content-Disposition`, unquoted
/// (`param("text/xml; charset=\"GBK\"", "charset")` → `Some("GBK")`). Names are matched
/// case-insensitively.
pub fn param(value: &str, name: &str) -> Option<String> {
    let mut rest = value.split_once(';')?.1;
    loop {
        let (key, after) = rest.split_once('=')?;
        let after = after.trim_start();
        let (val, tail) = if let Some(quoted) = after.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            out.push(escaped);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => out.push(c),
                }
            }
            let tail = &quoted[end..];
            (out, tail.split_once(';').map_or("", |(_, t)| t))
        } else {
            let (v, t) = after.split_once(';').unwrap_or((after, ""));
            (v.trim().to_owned(), t)
        };
        if key.trim().eq_ignore_ascii_case(name) {
            return Some(val);
        }
        rest = tail;
    }
}

/// The boundary of a `multipart/*` `Content-Type`, if it is one.
pub fn multipart_boundary(content_type: &str) -> Option<String> {
    if !media_type(content_type).starts_with("multipart/") {
        return None;
    }
    param(content_type, "boundary").filter(|b| !b.is_empty())
}

/// One part of a multipart body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part<'a> {
    /// The part's header fields.
    pub headers: Vec<Header>,
    /// The part's content.
    pub body: &'a [u8],
}

impl Part<'_> {
    /// The first header called `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The part's `Content-Type`.
    pub fn content_type(&self) -> Option<&str> {
        self.header("content-type")
    }

    /// The `name` parameter of its `Content-Disposition` (the form field name).
    pub fn name(&self) -> Option<String> {
        self.header("content-disposition")
            .and_then(|d| param(d, "name"))
    }

    /// The `filename` parameter of its `Content-Disposition`.
    pub fn filename(&self) -> Option<String> {
        self.header("content-disposition")
            .and_then(|d| param(d, "filename"))
    }
}

/// Splits a multipart body (RFC 2046 / RFC 7578) into its parts. Delimiter lines are
/// `--boundary` preceded by CR LF (or a bare LF); the preamble and epilogue are ignored. A
/// body that ends right after a delimiter line without the closing `--` is accepted; a part
/// without a following delimiter is an error.
pub fn split_multipart<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<Part<'a>>, String> {
    let delimiter = format!("--{boundary}").into_bytes();
    // The first delimiter may open the body or follow the preamble's line break.
    let mut pos = if body.starts_with(&delimiter) {
        0
    } else {
        let mut nl = delimiter.clone();
        nl.insert(0, b'\n');
        find(body, &nl).ok_or_else(|| format!("no boundary {boundary:?} in the body"))? + 1
    };
    let mut parts = Vec::new();
    loop {
        pos += delimiter.len();
        let rest = &body[pos..];
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        // Transport padding, then the end of the delimiter line.
        let pad = rest
            .iter()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
        let rest = &rest[pad..];
        let eol = if rest.starts_with(b"\r\n") {
            2
        } else if rest.starts_with(b"\n") {
            1
        } else if rest.is_empty() {
            return Ok(parts);
        } else {
            return Err(format!(
                "boundary line is followed by {:?}",
                shorten(&rest[..rest.len().min(8)])
            ));
        };
        pos += pad + eol;
        if pos == body.len() {
            return Ok(parts);
        }
        let part_no = parts.len() + 1;
        let (headers, head_len) = parse_header_block(&body[pos..])
            .map_err(|e| format!("part {part_no}: {e}"))?
            .ok_or_else(|| format!("part {part_no}: headers do not end"))?;
        pos += head_len;
        let mut next = delimiter.clone();
        next.insert(0, b'\n');
        let end = find(&body[pos..], &next)
            .ok_or_else(|| format!("part {part_no}: no boundary after its content"))?;
        let mut content = &body[pos..pos + end];
        if let Some(c) = content.strip_suffix(b"\r") {
            content = c;
        }
        parts.push(Part {
            headers,
            body: content,
        });
        pos += end + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_all(framer: &mut RequestFramer, data: &[u8]) -> Vec<Item> {
        framer.push(data);
        let mut out = Vec::new();
        while let Some(item) = framer.next_item() {
            out.push(item);
        }
        out
    }

    fn post(target: &str, body: &[u8]) -> Request {
        Request::new("POST", target)
            .with_header("Host", "gate")
            .with_header("Content-Type", "application/xml")
            .with_body(body.to_vec())
    }

    fn requests(items: &[Item]) -> Vec<&Request> {
        items
            .iter()
            .filter_map(|i| match i {
                Item::Request { request, .. } => Some(request),
                _ => None,
            })
            .collect()
    }

    fn rejected(items: &[Item]) -> Vec<&Rejected> {
        items
            .iter()
            .filter_map(|i| match i {
                Item::Rejected(r) => Some(r),
                _ => None,
            })
            .collect()
    }

    /// Every split point and byte-by-byte feeding give the same items (rejections compared
    /// by total bytes, since noise may be reported in pieces).
    fn assert_split_invariant(framer: &RequestFramer, stream: &[u8]) -> Vec<Item> {
        let whole = frame_all(&mut framer.clone(), stream);
        let goods = |items: &[Item]| -> Vec<Item> {
            items
                .iter()
                .filter(|i| !matches!(i, Item::Rejected(_)))
                .cloned()
                .collect()
        };
        let dropped = |items: &[Item]| -> usize { rejected(items).iter().map(|r| r.bytes).sum() };
        for cut in 1..stream.len() {
            let mut f = framer.clone();
            let mut items = frame_all(&mut f, &stream[..cut]);
            items.extend(frame_all(&mut f, &stream[cut..]));
            assert_eq!(goods(&items), goods(&whole), "split at {cut}");
            assert_eq!(dropped(&items), dropped(&whole), "split at {cut}");
        }
        let mut f = framer.clone();
        let mut items = Vec::new();
        for b in stream {
            items.extend(frame_all(&mut f, std::slice::from_ref(b)));
        }
        assert_eq!(goods(&items), goods(&whole), "byte by byte");
        whole
    }

    #[test]
    fn request_round_trip_and_header_case() {
        let req = post("/ISAPI/Event/notification", b"<a>1</a>");
        let wire = req.to_bytes();
        assert!(wire.starts_with(b"POST /ISAPI/Event/notification HTTP/1.1\r\nHost: gate\r\n"));
        let mut f = RequestFramer::new(Limits::default());
        let items = frame_all(&mut f, &wire);
        let got = requests(&items);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].body, b"<a>1</a>");
        assert_eq!(got[0].header("CONTENT-type"), Some("application/xml"));
        assert_eq!(got[0].content_type(), Some("application/xml"));
        assert_eq!(got[0].header("content-length"), Some("8"));
        assert_eq!(got[0].header("x-missing"), None);
        // Re-serialising is stable (Content-Length is replaced, not duplicated).
        assert_eq!(got[0].to_bytes(), wire);
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn back_to_back_requests_any_split() {
        let mut stream = post("/a", b"first").to_bytes();
        stream.extend_from_slice(b"\r\n"); // tolerated between messages
        stream.extend(Request::new("GET", "/status").to_bytes());
        stream.extend(post("/b", b"second body\r\n\r\nwith blank lines").to_bytes());
        let f = RequestFramer::new(Limits::default());
        let items = assert_split_invariant(&f, &stream);
        let got = requests(&items);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].target, "/a");
        assert_eq!(got[1].method, "GET");
        assert!(got[1].body.is_empty());
        assert_eq!(got[2].body, b"second body\r\n\r\nwith blank lines");
        assert!(rejected(&items).is_empty());
    }

    #[test]
    fn bare_lf_and_folded_headers() {
        let wire =
            b"POST /x HTTP/1.0\nContent-Type: text/xml;\n charset=GBK\ncontent-length: 3\n\nabc";
        let mut f = RequestFramer::new(Limits::default());
        let items = frame_all(&mut f, wire);
        let got = requests(&items);
        assert_eq!(got[0].version, "HTTP/1.0");
        assert_eq!(got[0].content_type(), Some("text/xml; charset=GBK"));
        assert_eq!(got[0].body, b"abc");
    }

    #[test]
    fn noise_and_bad_heads_are_rejected_with_counts() {
        let good = post("/ok", b"body").to_bytes();
        let mut stream = b"\x00\xffjunk".to_vec();
        stream.extend_from_slice(&good);
        let bad_line = b"POST /x HTTP/2\r\n\r\n";
        stream.extend_from_slice(bad_line);
        let bad_len = b"PUT /y HTTP/1.1\r\nContent-Length: 1x\r\n\r\n";
        stream.extend_from_slice(bad_len);
        let chunked = b"POST /z HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        stream.extend_from_slice(chunked);
        let no_colon = b"POST /w HTTP/1.1\r\nHost gate\r\n\r\n";
        stream.extend_from_slice(no_colon);
        stream.extend_from_slice(&good);
        let f = RequestFramer::new(Limits::default());
        let items = assert_split_invariant(&f, &stream);
        assert_eq!(requests(&items).len(), 2);
        let rej = rejected(&items);
        let reasons: Vec<&str> = rej.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(rej[0].bytes, 6, "{reasons:?}");
        assert!(reasons[0].contains("noise"), "{reasons:?}");
        assert!(reasons[1].contains("unsupported protocol version \"HTTP/2\""));
        assert!(reasons[2].contains("Content-Length \"1x\" is not a number"));
        assert!(reasons[3].contains("Transfer-Encoding"));
        assert!(reasons[4].contains("has no colon"));
        let dropped: usize = rej.iter().map(|r| r.bytes).sum();
        assert_eq!(
            dropped,
            6 + bad_line.len() + bad_len.len() + chunked.len() + no_colon.len()
        );
    }

    #[test]
    fn oversized_body_is_skipped_unbuffered() {
        let limits = Limits {
            max_head: 1024,
            max_body: 100,
        };
        let big = post("/big", &[0x55; 1000]).to_bytes();
        let small = post("/small", &[0x66; 100]).to_bytes();
        let mut stream = big.clone();
        stream.extend_from_slice(&small);
        let f = RequestFramer::new(limits);
        let items = assert_split_invariant(&f, &stream);
        let rej = rejected(&items);
        assert_eq!(rej.len(), 1);
        assert_eq!(rej[0].bytes, big.len());
        assert!(
            rej[0]
                .reason
                .contains("POST /big: body of 1000 bytes exceeds the limit of 100 bytes"),
            "{}",
            rej[0].reason
        );
        assert_eq!(requests(&items)[0].target, "/small");

        // Fed in small pieces, the framer never holds the big body.
        let mut f = RequestFramer::new(limits);
        for chunk in big.chunks(50) {
            let out = frame_all(&mut f, chunk);
            assert!(f.buffered() <= 200, "{}", f.buffered());
            if !out.is_empty() {
                assert_eq!(rejected(&out)[0].bytes, big.len());
            }
        }
    }

    #[test]
    fn noise_is_reported_once_per_run() {
        let noise: Vec<u8> = (0..1000u32)
            .map(|i| b"xyz\x00\xff"[i as usize % 5])
            .collect();
        let good = post("/a", b"1").to_bytes();
        let mut f = RequestFramer::new(Limits::default());
        let mut items = Vec::new();
        for chunk in noise.chunks(10) {
            items.extend(frame_all(&mut f, chunk));
        }
        assert!(items.is_empty(), "{items:?}");
        assert_eq!(f.buffered(), 0);
        items.extend(frame_all(&mut f, &good));
        assert_eq!(rejected(&items).len(), 1);
        assert_eq!(rejected(&items)[0].bytes, 1000);
        assert_eq!(requests(&items).len(), 1);

        // A long run is reported at the latest every max_body bytes.
        let mut f = RequestFramer::new(Limits {
            max_head: 1024,
            max_body: 300,
        });
        let mut items = Vec::new();
        for chunk in noise.chunks(100) {
            items.extend(frame_all(&mut f, chunk));
        }
        let sizes: Vec<usize> = rejected(&items).iter().map(|r| r.bytes).collect();
        assert_eq!(sizes, [300, 300, 300]);
    }

    #[test]
    fn oversized_head_is_rejected() {
        let limits = Limits {
            max_head: 128,
            max_body: 100,
        };
        let mut stream = b"POST /x HTTP/1.1\r\n".to_vec();
        for i in 0..10 {
            stream.extend_from_slice(format!("X-Filler-{i}: 0123456789\r\n").as_bytes());
        }
        stream.extend_from_slice(b"\r\n");
        let good = post("/ok", b"1").to_bytes();
        stream.extend_from_slice(&good);
        let f = RequestFramer::new(limits);
        let items = assert_split_invariant(&f, &stream);
        assert!(
            rejected(&items)[0]
                .reason
                .contains("request head exceeds 128 bytes")
        );
        assert_eq!(requests(&items).len(), 1);
        let dropped: usize = rejected(&items).iter().map(|r| r.bytes).sum();
        assert_eq!(dropped, stream.len() - good.len());
    }

    #[test]
    fn lines_share_the_stream() {
        let spec = LineSpec {
            starts: vec![b"{".to_vec(), b"CNTR|".to_vec()],
            end: b"\n".to_vec(),
            max_len: 40,
        };
        let f = RequestFramer::new(Limits::default()).with_lines(spec);
        let mut stream = b"{\"a\":1}\n".to_vec();
        stream.extend_from_slice(b"xx");
        stream.extend_from_slice(b"CNTR|L1|t|\r\n");
        stream.extend(post("/c", b"{}").to_bytes());
        stream.extend_from_slice(&[b'{'; 50]);
        stream.extend_from_slice(b"\n{\"b\":2}\n");
        let items = assert_split_invariant(&f, &stream);
        let lines: Vec<&[u8]> = items
            .iter()
            .filter_map(|i| match i {
                Item::Line(l) => Some(l.as_slice()),
                _ => None,
            })
            .collect();
        assert_eq!(
            lines,
            vec![&b"{\"a\":1}\n"[..], b"CNTR|L1|t|\r\n", b"{\"b\":2}\n"]
        );
        assert_eq!(requests(&items).len(), 1);
        let rej = rejected(&items);
        assert_eq!(rej[0].bytes, 2);
        assert_eq!(rej[1].bytes, 51);
        assert!(rej[1].reason.contains("line longer than 40 bytes"));
    }

    #[test]
    fn drain_hands_back_partial_request() {
        let wire = post("/a", b"0123456789").to_bytes();
        let mut f = RequestFramer::new(Limits::default());
        assert!(frame_all(&mut f, &wire[..30]).is_empty());
        assert_eq!(f.buffered(), 30);
        assert_eq!(f.drain(), wire[..30].to_vec());
        assert_eq!(f.buffered(), 0);
        let mut fresh = RequestFramer::new(Limits::default());
        fresh.push(&wire[..30]);
        assert_eq!(requests(&frame_all(&mut fresh, &wire[30..])).len(), 1);
    }

    #[test]
    fn request_start_detection() {
        assert_eq!(request_start(b"POST /"), Some(true));
        assert_eq!(request_start(b"PO"), Some(false));
        assert_eq!(request_start(b"POST"), Some(false));
        assert_eq!(request_start(b"POSTX"), None);
        assert_eq!(request_start(b"{\"a\""), None);
        assert_eq!(request_start(b""), Some(false));
    }

    #[test]
    fn params_and_media_types() {
        let ct = "multipart/form-data; boundary=\"MIME_boundary\"";
        assert_eq!(media_type(ct), "multipart/form-data");
        assert_eq!(multipart_boundary(ct).as_deref(), Some("MIME_boundary"));
        assert_eq!(
            multipart_boundary("Multipart/Form-Data;boundary=abc; charset=x").as_deref(),
            Some("abc")
        );
        assert_eq!(multipart_boundary("text/xml; boundary=abc"), None);
        assert_eq!(
            param("text/xml; Charset=\"G\\\"BK\"", "charset").as_deref(),
            Some("G\"BK")
        );
        let cd = "form-data; name=\"anpr.xml\"; filename=\"anpr.xml\"";
        assert_eq!(param(cd, "name").as_deref(), Some("anpr.xml"));
        assert_eq!(param(cd, "filename").as_deref(), Some("anpr.xml"));
        assert_eq!(param(cd, "size"), None);
        assert_eq!(param("text/plain", "charset"), None);
    }

    #[test]
    fn multipart_parts() {
        let body = b"preamble\r\n--XB\r\nContent-Disposition: form-data; name=\"anpr.xml\"; filename=\"anpr.xml\"\r\nContent-Type: text/xml\r\n\r\n<x/>\r\n--XB\r\nContent-Disposition: form-data; name=\"pic\"; filename=\"p.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n\xff\xd8\r\n--X\xff\xd9\r\n--XB--\r\nepilogue";
        let parts = split_multipart(body, "XB").unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name().as_deref(), Some("anpr.xml"));
        assert_eq!(parts[0].content_type(), Some("text/xml"));
        assert_eq!(parts[0].body, b"<x/>");
        assert_eq!(parts[1].filename().as_deref(), Some("p.jpg"));
        assert_eq!(parts[1].body, b"\xff\xd8\r\n--X\xff\xd9");

        // Bare LF line ends, body starting with the delimiter, no closing "--".
        let lf = b"--b\nContent-Type: text/plain\n\nhi\n--b\n";
        let parts = split_multipart(lf, "b").unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].body, b"hi");

        assert!(
            split_multipart(b"no delimiter", "b")
                .unwrap_err()
                .contains("no boundary")
        );
        assert!(
            split_multipart(b"--b\r\nA: 1\r\n\r\ntruncated", "b")
                .unwrap_err()
                .contains("part 1: no boundary after its content")
        );
        assert!(split_multipart(b"--b\r\nA: 1\r\n", "b").is_err());
        assert_eq!(split_multipart(b"--b--\r\n", "b").unwrap().len(), 0);
    }

    #[test]
    fn find_edge_cases() {
        assert_eq!(find(b"abcabd", b"abd"), Some(3));
        assert_eq!(find(b"ab", b"abc"), None);
        assert_eq!(find(b"abc", b""), None);
        assert_eq!(find(b"aaa", b"a"), Some(0));
        assert_eq!(find(b"xxa", b"a"), Some(2));
    }
}
