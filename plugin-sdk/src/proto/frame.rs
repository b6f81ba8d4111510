//! The resynchronising frame splitter shared by all serial and socket drivers.
//!
//! A driver receives bytes in arbitrary chunks: a frame may be split at any byte, and noise
//! (line garbage, a half frame from before the port was opened, a corrupted frame) may sit
//! before, between or inside frames. [`Splitter`] buffers the bytes, cuts out candidate frames
//! according to a [`FrameSpec`], asks the driver's `validate` callback (checksum, format) about
//! each candidate, and reports everything it drops as a [`Rejected`] with a reason and a byte
//! count, so that `accepted + rejected + buffered == pushed` always holds.
//!
//! Frames are handed out whole, start marker and end delimiter included; stripping them is
//! the driver's business.
//!
//! ```
//! use kakou_plugin_sdk::proto::checksum::{parse_hex_pair, xor};
//! use kakou_plugin_sdk::proto::frame::{Frame, FrameSpec, Splitter};
//!
//! // XK3190 "tF=0": 12 bytes, STX .. ETX, XOR of bytes 1..=8 as two ASCII hex digits.
//! let mut splitter = Splitter::new(FrameSpec::Fixed { start: 0x02, len: 12, end: Some(0x03) });
//! let check = |f: &[u8]| {
//!     if parse_hex_pair(f[9], f[10]) == Some(xor(&f[1..=8])) {
//!         Ok(())
//!     } else {
//!         Err("XOR mismatch".to_string())
//!     }
//! };
//! let wire = b"\xFF\xFF\x02+0032600\x31\x43\x03";
//! let out = splitter.feed_all(&wire[..5], check);
//! assert!(matches!(&out[..], [Frame::Rejected(r)] if r.bytes == 2));
//! let out = splitter.feed_all(&wire[5..], check);
//! assert_eq!(out, vec![Frame::Ok(wire[2..].to_vec())]);
//! ```

use std::fmt;

/// Default cap on buffered bytes (64 KiB); see [`Splitter::with_capacity_limit`].
pub const DEFAULT_CAPACITY_LIMIT: usize = 64 * 1024;

/// How frames are delimited on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameSpec {
    /// Fixed-length frames that begin with `start` (and, if given, end with `end`):
    /// XK3190 tF=0 (`02 .. 03`, 12 bytes), RDM6300 (`02 .. 03`, 14 bytes).
    Fixed {
        /// First byte of every frame.
        start: u8,
        /// Total frame length in bytes, markers included (at least 1).
        len: usize,
        /// Required last byte, if the protocol has one.
        end: Option<u8>,
    },
    /// Frames that end with a delimiter (`b"\r\n"`, `b")"`), optionally beginning with a start
    /// marker (`b"$"` for NMEA, `b"("` for JT701). A frame longer than `max_len` without a
    /// delimiter is rejected.
    ///
    /// Without a start marker the delimiter is the only sync point: a line that fails
    /// validation is dropped whole, and an overlong line is dropped up to and including its
    /// delimiter. An empty `end` never matches, so every byte is eventually rejected.
    Delimited {
        /// Start marker, if frames have one (`None` or an empty marker: no start marker).
        start: Option<Vec<u8>>,
        /// End delimiter, included in the frame.
        end: Vec<u8>,
        /// Longest acceptable frame, markers included.
        max_len: usize,
    },
    /// Frames with a length byte: `sync` bytes (may be empty), a length byte at `len_offset`,
    /// total frame length = length byte + `len_adjust`, accepted only within
    /// `min_len..=max_len`. Chafon UHFReader18: no sync, offset 0, adjust 1; Impinj 0xA0: sync
    /// `[0xA0]`, offset 1, adjust 2; SonMicro SM130: sync `[0xFF, 0x00]`, offset 2, adjust 4.
    ///
    /// Without sync bytes every byte may start a frame: bytes that do not start a valid frame
    /// are reported together as noise once the next valid frame is found.
    LengthPrefixed {
        /// Sync bytes every frame starts with (may be empty).
        sync: Vec<u8>,
        /// Offset of the length byte from the frame start.
        len_offset: usize,
        /// Added to the length byte to give the total frame length.
        len_adjust: usize,
        /// Shortest acceptable total length (raised to `len_offset + 1` if below it).
        min_len: usize,
        /// Longest acceptable total length.
        max_len: usize,
    },
}

/// Bytes the splitter dropped, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Human-readable reason: noise, overflow, bad length, or the validator's message.
    pub reason: String,
    /// Number of bytes dropped from the stream.
    pub bytes: usize,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} rejected: {}", plural(self.bytes), self.reason)
    }
}

/// One result of [`Splitter::next_frame`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A complete frame (markers included) that passed validation.
    Ok(Vec<u8>),
    /// Bytes that were dropped.
    Rejected(Rejected),
}

impl Frame {
    /// The frame bytes, if this is a good frame.
    pub fn as_ok(&self) -> Option<&[u8]> {
        match self {
            Frame::Ok(bytes) => Some(bytes),
            Frame::Rejected(_) => None,
        }
    }

    /// The rejection, if this is one.
    pub fn as_rejected(&self) -> Option<&Rejected> {
        match self {
            Frame::Ok(_) => None,
            Frame::Rejected(r) => Some(r),
        }
    }

    /// Number of stream bytes this result accounts for.
    pub fn len(&self) -> usize {
        match self {
            Frame::Ok(bytes) => bytes.len(),
            Frame::Rejected(r) => r.bytes,
        }
    }

    /// Whether this result accounts for no bytes (never true for splitter output).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The spec with degenerate values clamped, in the shape the splitter works with.
#[derive(Debug, Clone)]
enum Mode {
    Fixed {
        len: usize,
        end: Option<u8>,
    },
    Delimited {
        end: Vec<u8>,
        max_len: usize,
    },
    Length {
        len_offset: usize,
        len_adjust: usize,
        min_len: usize,
        max_len: usize,
    },
}

#[derive(Debug, Clone)]
struct Config {
    /// Start marker or sync bytes; empty when frames have none.
    marker: Vec<u8>,
    mode: Mode,
    cap: usize,
}

/// Outcome of looking for a start marker at one position.
#[derive(PartialEq, Eq)]
enum Match {
    Full,
    Partial,
    No,
}

fn match_at(buf: &[u8], i: usize, marker: &[u8]) -> Match {
    let rest = &buf[i..];
    if rest.len() >= marker.len() {
        if rest.starts_with(marker) {
            Match::Full
        } else {
            Match::No
        }
    } else if marker.starts_with(rest) {
        Match::Partial
    } else {
        Match::No
    }
}

/// First position of `needle` in `hay`; an empty needle never matches.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

fn plural(n: usize) -> String {
    if n == 1 {
        "1 byte".to_string()
    } else {
        format!("{n} bytes")
    }
}

/// Mutable state, kept apart from [`Config`] so both can be borrowed at once.
#[derive(Debug, Clone, Default)]
struct State {
    buf: Vec<u8>,
    /// Logical start of the buffer: `buf[..head]` is consumed.
    head: usize,
    /// `buf[head..scan]` is known not to start a frame (noise awaiting its report).
    scan: usize,
    /// Delimiter search memo: no delimiter starts in `buf[head..end_scan]`.
    end_scan: usize,
    /// Delimited without start marker: dropping the rest of an overlong line.
    discarding: bool,
    /// Sync-less length frames: first reason a candidate inside the pending noise failed.
    noise_reason: Option<String>,
    /// Bytes dropped by the buffer cap, not yet reported.
    overflow: usize,
    /// A validated frame already taken out of `buf`, handed out on the next call.
    ready: Option<Vec<u8>>,
}

/// Cuts a byte stream into validated frames, resynchronising after noise and corruption.
///
/// Feed bytes with [`push`](Splitter::push) and collect results with
/// [`next_frame`](Splitter::next_frame) until it returns `None` (or use
/// [`feed_all`](Splitter::feed_all)). The frames that come out do not depend on how the
/// stream was chunked. The `validate` callback may see the same bytes more than once (for
/// example while looking past an incomplete candidate), so it should be a pure check.
#[derive(Debug, Clone)]
pub struct Splitter {
    spec: FrameSpec,
    cfg: Config,
    st: State,
}

impl Splitter {
    /// A splitter for `spec`, buffering at most [`DEFAULT_CAPACITY_LIMIT`] bytes.
    ///
    /// Degenerate values are clamped so that every frame is at least one byte long and can
    /// hold its markers.
    pub fn new(spec: FrameSpec) -> Self {
        let (marker, mode) = match &spec {
            FrameSpec::Fixed { start, len, end } => (
                vec![*start],
                Mode::Fixed {
                    len: (*len).max(1),
                    end: *end,
                },
            ),
            FrameSpec::Delimited {
                start,
                end,
                max_len,
            } => {
                let marker = start.clone().unwrap_or_default();
                let floor = (marker.len() + end.len()).max(1);
                (
                    marker,
                    Mode::Delimited {
                        end: end.clone(),
                        max_len: (*max_len).max(floor),
                    },
                )
            }
            FrameSpec::LengthPrefixed {
                sync,
                len_offset,
                len_adjust,
                min_len,
                max_len,
            } => {
                let min_len = (*min_len).max(len_offset + 1).max(sync.len());
                (
                    sync.clone(),
                    Mode::Length {
                        len_offset: *len_offset,
                        len_adjust: *len_adjust,
                        min_len,
                        max_len: *max_len,
                    },
                )
            }
        };
        Splitter {
            spec,
            cfg: Config {
                marker,
                mode,
                cap: DEFAULT_CAPACITY_LIMIT,
            },
            st: State::default(),
        }
    }

    /// Sets the cap on buffered bytes (at least 1). When a push would exceed it, the oldest
    /// bytes are dropped down to half the cap and reported as a buffer overflow; keep the cap
    /// at least twice the longest frame.
    pub fn with_capacity_limit(mut self, max_buffered: usize) -> Self {
        self.cfg.cap = max_buffered.max(1);
        self
    }

    /// The spec this splitter was built with.
    pub fn spec(&self) -> &FrameSpec {
        &self.spec
    }

    /// Appends received bytes. If the buffer would exceed its cap, the oldest bytes are
    /// dropped and a rejection ("buffer overflow: N bytes dropped") is queued for
    /// [`next_frame`](Splitter::next_frame).
    pub fn push(&mut self, mut data: &[u8]) {
        let st = &mut self.st;
        let cap = self.cfg.cap;
        let avail = st.buf.len() - st.head;
        if avail + data.len() > cap {
            // Drop down to half the cap so a flood costs one report per cap/2 bytes.
            let drop = avail + data.len() - cap / 2;
            if drop <= avail {
                st.head += drop;
            } else {
                data = &data[drop - avail..];
                st.buf.clear();
                st.head = 0;
            }
            st.scan = st.scan.max(st.head);
            st.end_scan = st.end_scan.max(st.head);
            st.overflow += drop;
            st.compact();
        }
        st.buf.extend_from_slice(data);
    }

    /// Returns the next result: a frame that passed `validate`, or a [`Rejected`] for bytes
    /// dropped (noise before a start marker, a candidate that failed `validate` or had a bad
    /// length or end marker, buffer overflow). `None` means more bytes are needed.
    ///
    /// After a candidate fails, only the bytes up to the next possible start marker inside it
    /// are dropped, so a real frame hidden in a corrupt one is still found. Noise is reported
    /// as one rejection per contiguous run.
    pub fn next_frame<F>(&mut self, mut validate: F) -> Option<Frame>
    where
        F: FnMut(&[u8]) -> Result<(), String>,
    {
        if self.st.overflow > 0 {
            let bytes = std::mem::take(&mut self.st.overflow);
            return Some(Frame::Rejected(Rejected {
                reason: format!("buffer overflow: {} dropped", plural(bytes)),
                bytes,
            }));
        }
        if let Some(frame) = self.st.ready.take() {
            return Some(Frame::Ok(frame));
        }
        let out = self.st.step(&self.cfg, &mut validate);
        self.st.compact();
        out
    }

    /// Pushes `data`, then collects every result available.
    pub fn feed_all<F>(&mut self, data: &[u8], mut validate: F) -> Vec<Frame>
    where
        F: FnMut(&[u8]) -> Result<(), String>,
    {
        self.push(data);
        let mut out = Vec::new();
        while let Some(frame) = self.next_frame(&mut validate) {
            out.push(frame);
        }
        out
    }

    /// Hands back every buffered, unconsumed byte in stream order (for a hot swap to a new
    /// driver instance) and leaves the splitter empty. Unreported overflow is forgotten.
    pub fn drain(&mut self) -> Vec<u8> {
        let st = std::mem::take(&mut self.st);
        let mut out = st.ready.unwrap_or_default();
        out.extend_from_slice(&st.buf[st.head..]);
        out
    }

    /// Number of bytes pushed but not yet handed out as a frame or a rejection.
    pub fn buffered(&self) -> usize {
        self.st.buf.len() - self.st.head + self.st.ready.as_ref().map_or(0, Vec::len)
    }
}

type Validate<'a> = dyn FnMut(&[u8]) -> Result<(), String> + 'a;

impl State {
    fn compact(&mut self) {
        if self.head == self.buf.len() {
            self.buf.clear();
        } else if self.head > 0 && self.head >= self.buf.len() - self.head {
            self.buf.drain(..self.head);
        } else {
            return;
        }
        self.scan = self.scan.saturating_sub(self.head);
        self.end_scan = self.end_scan.saturating_sub(self.head);
        self.head = 0;
    }

    fn avail(&self) -> usize {
        self.buf.len() - self.head
    }

    /// Drops `n` bytes from the front, resetting the search memos.
    fn consume(&mut self, n: usize) {
        self.head += n;
        self.scan = self.head;
        self.end_scan = self.head;
    }

    fn reject(&mut self, reason: String, n: usize) -> Option<Frame> {
        self.consume(n);
        Some(Frame::Rejected(Rejected { reason, bytes: n }))
    }

    fn take_frame(&mut self, len: usize) -> Vec<u8> {
        let frame = self.buf[self.head..self.head + len].to_vec();
        self.consume(len);
        frame
    }

    /// Reports `buf[head..scan]` as noise.
    fn emit_noise(&mut self) -> Option<Frame> {
        let n = self.scan - self.head;
        let mut reason = format!("{} of noise before frame start", plural(n));
        if let Some(first) = self.noise_reason.take() {
            reason.push_str(&format!(" (first rejected candidate: {first})"));
        }
        self.head = self.scan;
        self.end_scan = self.head;
        Some(Frame::Rejected(Rejected { reason, bytes: n }))
    }

    /// Positions `head` on a full start marker. `Err(None)`: need more bytes;
    /// `Err(Some(noise))`: report the noise in front of the marker first.
    fn seek_start(&mut self, marker: &[u8]) -> Result<(), Option<Frame>> {
        let mut i = self.scan.max(self.head);
        while i < self.buf.len() {
            match match_at(&self.buf, i, marker) {
                Match::Full => {
                    self.scan = i;
                    return if i > self.head {
                        Err(self.emit_noise())
                    } else {
                        Ok(())
                    };
                }
                Match::Partial => break,
                Match::No => i += 1,
            }
        }
        self.scan = i;
        Err(None)
    }

    /// Distance from `head` to the first position in `head+1..to` where a start marker is
    /// or may be (partial at the buffer end); `to - head` if there is none.
    fn skip_to_next_start(&self, marker: &[u8], to: usize) -> usize {
        let to = to.min(self.buf.len());
        (self.head + 1..to)
            .find(|&i| match_at(&self.buf, i, marker) != Match::No)
            .unwrap_or(to)
            - self.head
    }

    fn step(&mut self, cfg: &Config, validate: &mut Validate<'_>) -> Option<Frame> {
        match &cfg.mode {
            Mode::Fixed { len, end } => self.step_fixed(&cfg.marker, *len, *end, validate),
            Mode::Delimited { end, max_len } if cfg.marker.is_empty() => {
                self.step_lines(end, *max_len, validate)
            }
            Mode::Delimited { end, max_len } => {
                self.step_delimited(&cfg.marker, end, *max_len, validate)
            }
            Mode::Length { .. } if cfg.marker.is_empty() => self.step_unsynced(cfg, validate),
            Mode::Length { .. } => self.step_synced(cfg, validate),
        }
    }

    fn step_fixed(
        &mut self,
        marker: &[u8],
        len: usize,
        end: Option<u8>,
        validate: &mut Validate<'_>,
    ) -> Option<Frame> {
        if let Err(out) = self.seek_start(marker) {
            return out;
        }
        if self.avail() < len {
            return None;
        }
        let cand = &self.buf[self.head..self.head + len];
        let verdict = match end {
            Some(e) if cand[len - 1] != e => Err(format!(
                "missing end marker: expected 0x{e:02X}, found 0x{:02X}",
                cand[len - 1]
            )),
            _ => validate(cand),
        };
        match verdict {
            Ok(()) => Some(Frame::Ok(self.take_frame(len))),
            Err(reason) => {
                let skip = self.skip_to_next_start(marker, self.head + len);
                self.reject(reason, skip)
            }
        }
    }

    fn step_delimited(
        &mut self,
        marker: &[u8],
        end: &[u8],
        max_len: usize,
        validate: &mut Validate<'_>,
    ) -> Option<Frame> {
        if let Err(out) = self.seek_start(marker) {
            return out;
        }
        let body = self.head + marker.len();
        let from = self.end_scan.max(body);
        let window_end = self.buf.len().min(self.head + max_len);
        let found = if from < window_end {
            find(&self.buf[from..window_end], end)
        } else {
            None
        };
        match found {
            Some(pos) => {
                let len = from + pos + end.len() - self.head;
                match validate(&self.buf[self.head..self.head + len]) {
                    Ok(()) => Some(Frame::Ok(self.take_frame(len))),
                    Err(reason) => {
                        let skip = self.skip_to_next_start(marker, self.head + len);
                        self.reject(reason, skip)
                    }
                }
            }
            None if self.buf.len() >= self.head + max_len => {
                let skip = self.skip_to_next_start(marker, self.head + max_len);
                self.reject(format!("no end delimiter within {}", plural(max_len)), skip)
            }
            None => {
                self.end_scan = (window_end + 1)
                    .saturating_sub(end.len())
                    .clamp(body, window_end.max(body));
                None
            }
        }
    }

    fn step_lines(
        &mut self,
        end: &[u8],
        max_len: usize,
        validate: &mut Validate<'_>,
    ) -> Option<Frame> {
        let from = self.end_scan.max(self.head);
        match find(&self.buf[from..], end) {
            Some(pos) => {
                let len = from + pos + end.len() - self.head;
                if std::mem::take(&mut self.discarding) {
                    return self.reject("rest of an overlong frame".to_string(), len);
                }
                if len > max_len {
                    return self.reject(
                        format!("frame of {} exceeds the maximum of {max_len}", plural(len)),
                        len,
                    );
                }
                match validate(&self.buf[self.head..self.head + len]) {
                    Ok(()) => Some(Frame::Ok(self.take_frame(len))),
                    Err(reason) => self.reject(reason, len),
                }
            }
            None => {
                self.end_scan = (self.buf.len() + 1)
                    .saturating_sub(end.len())
                    .clamp(self.head, self.buf.len());
                let avail = self.avail();
                if avail < max_len {
                    return None;
                }
                // Keep a possible partial delimiter; drop the rest of the overlong line.
                let drop = (avail + 1).saturating_sub(end.len().max(1)).max(1);
                let reason = if self.discarding {
                    "rest of an overlong frame".to_string()
                } else {
                    format!("no end delimiter within {}", plural(max_len))
                };
                self.discarding = true;
                self.reject(reason, drop)
            }
        }
    }

    /// The total length announced by a candidate at `i`: `None` if the length byte has not
    /// arrived, `Some(Err(reason))` if it is out of bounds.
    fn announced(&self, cfg: &Config, i: usize) -> Option<Result<usize, String>> {
        let Mode::Length {
            len_offset,
            len_adjust,
            min_len,
            max_len,
        } = cfg.mode
        else {
            return None;
        };
        let byte = *self.buf.get(i + len_offset)?;
        let total = usize::from(byte) + len_adjust;
        Some(if (min_len..=max_len).contains(&total) {
            Ok(total)
        } else {
            Err(format!(
                "frame length {total} outside {min_len}..={max_len}"
            ))
        })
    }

    /// Looks past an incomplete candidate at `from - 1` for a later complete frame that
    /// validates, so a stray sync or length byte cannot stall a quiet command/response link.
    /// Returns its position and length.
    fn lookahead(
        &self,
        cfg: &Config,
        from: usize,
        validate: &mut Validate<'_>,
    ) -> Option<(usize, usize)> {
        for j in from..self.buf.len() {
            if match_at(&self.buf, j, &cfg.marker) != Match::Full {
                continue;
            }
            match self.announced(cfg, j) {
                None => return None,
                Some(Ok(total)) if j + total <= self.buf.len() => {
                    if validate(&self.buf[j..j + total]).is_ok() {
                        return Some((j, total));
                    }
                }
                Some(_) => {}
            }
        }
        None
    }

    fn step_synced(&mut self, cfg: &Config, validate: &mut Validate<'_>) -> Option<Frame> {
        let marker = &cfg.marker;
        if let Err(out) = self.seek_start(marker) {
            return out;
        }
        let Mode::Length { len_offset, .. } = cfg.mode else {
            return None;
        };
        let total = match self.announced(cfg, self.head)? {
            Ok(total) => total,
            Err(reason) => {
                let skip = self.skip_to_next_start(marker, self.head + len_offset + 1);
                return self.reject(reason, skip);
            }
        };
        if self.avail() < total {
            let (j, len) = self.lookahead(cfg, self.head + 1, validate)?;
            let skipped = j - self.head;
            self.consume(skipped);
            self.ready = Some(self.take_frame(len));
            return Some(Frame::Rejected(Rejected {
                reason: format!(
                    "truncated frame: announced {}, a valid frame followed after {}",
                    plural(total),
                    plural(skipped)
                ),
                bytes: skipped,
            }));
        }
        match validate(&self.buf[self.head..self.head + total]) {
            Ok(()) => Some(Frame::Ok(self.take_frame(total))),
            Err(reason) => {
                let skip = self.skip_to_next_start(marker, self.head + total);
                self.reject(reason, skip)
            }
        }
    }

    fn step_unsynced(&mut self, cfg: &Config, validate: &mut Validate<'_>) -> Option<Frame> {
        loop {
            let i = self.scan.max(self.head);
            let total = match self.announced(cfg, i)? {
                Ok(total) => total,
                Err(reason) => {
                    self.noise_reason.get_or_insert(reason);
                    self.scan = i + 1;
                    continue;
                }
            };
            let (at, len) = if self.buf.len() - i < total {
                let found = self.lookahead(cfg, i + 1, validate)?;
                self.noise_reason
                    .get_or_insert(format!("truncated frame: announced {}", plural(total)));
                found
            } else {
                match validate(&self.buf[i..i + total]) {
                    Ok(()) => (i, total),
                    Err(reason) => {
                        self.noise_reason.get_or_insert(reason);
                        self.scan = i + 1;
                        continue;
                    }
                }
            };
            if at == self.head {
                self.noise_reason = None;
                return Some(Frame::Ok(self.take_frame(len)));
            }
            self.scan = at;
            let noise = self.emit_noise();
            self.ready = Some(self.take_frame(len));
            return noise;
        }
    }
}

impl From<Rejected> for crate::model::Rejected {
    fn from(r: Rejected) -> Self {
        crate::model::Rejected {
            reason: r.reason,
            bytes: u32::try_from(r.bytes).unwrap_or(u32::MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::checksum::{decode_hex, nmea_sentence_ok, parse_hex_pair, sum8, xor};
    use crate::proto::crc::{append_crc16_le, crc16_mcrf4xx, verify_crc16_le};

    type Check = fn(&[u8]) -> Result<(), String>;

    // ---- protocol fixtures -------------------------------------------------------------

    fn xk3190_spec() -> FrameSpec {
        FrameSpec::Fixed {
            start: 0x02,
            len: 12,
            end: Some(0x03),
        }
    }

    fn xk3190(weight: &str) -> Vec<u8> {
        assert_eq!(weight.len(), 8, "sign + 6 digits + decimals");
        let mut f = vec![0x02];
        f.extend_from_slice(weight.as_bytes());
        let x = xor(&f[1..=8]);
        f.extend_from_slice(&crate::proto::checksum::hex_upper(x));
        f.push(0x03);
        f
    }

    fn xk3190_check(f: &[u8]) -> Result<(), String> {
        if parse_hex_pair(f[9], f[10]) == Some(xor(&f[1..=8])) {
            Ok(())
        } else {
            Err("XOR mismatch".to_string())
        }
    }

    fn rdm6300_check(f: &[u8]) -> Result<(), String> {
        let card = decode_hex(&f[1..11]).ok_or("bad hex")?;
        if parse_hex_pair(f[11], f[12]) == Some(xor(&card)) {
            Ok(())
        } else {
            Err("XOR mismatch".to_string())
        }
    }

    fn nmea_spec() -> FrameSpec {
        FrameSpec::Delimited {
            start: Some(b"$".to_vec()),
            end: b"\r\n".to_vec(),
            max_len: 82,
        }
    }

    fn nmea_check(f: &[u8]) -> Result<(), String> {
        if nmea_sentence_ok(f) {
            Ok(())
        } else {
            Err("NMEA checksum mismatch".to_string())
        }
    }

    fn impinj_spec() -> FrameSpec {
        FrameSpec::LengthPrefixed {
            sync: vec![0xA0],
            len_offset: 1,
            len_adjust: 2,
            min_len: 5,
            max_len: 64,
        }
    }

    fn impinj(body: &[u8]) -> Vec<u8> {
        let mut f = vec![0xA0, (body.len() + 1) as u8];
        f.extend_from_slice(body);
        f.push(crate::proto::checksum::twos_complement(&f));
        f
    }

    fn impinj_check(f: &[u8]) -> Result<(), String> {
        if sum8(f) == 0 {
            Ok(())
        } else {
            Err("bad check byte".to_string())
        }
    }

    fn chafon_spec() -> FrameSpec {
        FrameSpec::LengthPrefixed {
            sync: vec![],
            len_offset: 0,
            len_adjust: 1,
            min_len: 5,
            max_len: 64,
        }
    }

    fn chafon(body: &[u8]) -> Vec<u8> {
        let mut f = vec![(body.len() + 2) as u8];
        f.extend_from_slice(body);
        let crc = crc16_mcrf4xx(&f);
        append_crc16_le(&mut f, crc);
        f
    }

    fn chafon_check(f: &[u8]) -> Result<(), String> {
        if verify_crc16_le(f, crc16_mcrf4xx) {
            Ok(())
        } else {
            Err("CRC mismatch".to_string())
        }
    }

    fn sm130_spec() -> FrameSpec {
        FrameSpec::LengthPrefixed {
            sync: vec![0xFF, 0x00],
            len_offset: 2,
            len_adjust: 4,
            min_len: 5,
            max_len: 40,
        }
    }

    fn sm130(cmd_and_data: &[u8]) -> Vec<u8> {
        let mut f = vec![0xFF, 0x00, cmd_and_data.len() as u8];
        f.extend_from_slice(cmd_and_data);
        f.push(sum8(&f[2..]));
        f
    }

    fn sm130_check(f: &[u8]) -> Result<(), String> {
        let n = f.len();
        if sum8(&f[2..n - 1]) == f[n - 1] {
            Ok(())
        } else {
            Err("CSUM mismatch".to_string())
        }
    }

    fn accept_all(_: &[u8]) -> Result<(), String> {
        Ok(())
    }

    // ---- harness -----------------------------------------------------------------------

    /// Feeds `chunks` one after another, collecting every result.
    fn run(spec: &FrameSpec, check: Check, chunks: &[&[u8]]) -> (Vec<Frame>, Splitter) {
        let mut s = Splitter::new(spec.clone());
        let mut out = Vec::new();
        for chunk in chunks {
            out.extend(s.feed_all(chunk, check));
        }
        (out, s)
    }

    fn oks(out: &[Frame]) -> Vec<Vec<u8>> {
        out.iter()
            .filter_map(|f| f.as_ok().map(<[u8]>::to_vec))
            .collect()
    }

    fn rejected_bytes(out: &[Frame]) -> usize {
        out.iter()
            .filter_map(Frame::as_rejected)
            .map(|r| r.bytes)
            .sum()
    }

    fn accounted(out: &[Frame]) -> usize {
        out.iter().map(Frame::len).sum()
    }

    /// Checks that the results do not depend on chunking: whole, every two-way split and
    /// byte by byte. With `exact`, rejections must match too; otherwise good frames, the
    /// rejected byte total and the unconsumed tail.
    fn assert_chunking_invariant(spec: &FrameSpec, check: Check, stream: &[u8], exact: bool) {
        let (whole, s) = run(spec, check, &[stream]);
        let tail = s.buffered();
        assert_eq!(accounted(&whole) + tail, stream.len());
        let compare = |out: &[Frame], s: &Splitter, what: &str| {
            assert_eq!(accounted(out) + s.buffered(), stream.len(), "{what}");
            if exact {
                assert_eq!(out, &whole[..], "{what}");
            } else {
                assert_eq!(oks(out), oks(&whole), "{what}");
                assert_eq!(rejected_bytes(out), rejected_bytes(&whole), "{what}");
            }
            assert_eq!(s.buffered(), tail, "{what}");
        };
        for cut in 0..=stream.len() {
            let (out, s) = run(spec, check, &[&stream[..cut], &stream[cut..]]);
            compare(&out, &s, &format!("split at {cut}"));
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        let (out, s) = run(spec, check, &bytes);
        compare(&out, &s, "byte by byte");
        for size in [2, 3, 5, 7, 13] {
            let chunks: Vec<&[u8]> = stream.chunks(size).collect();
            let (out, s) = run(spec, check, &chunks);
            compare(&out, &s, &format!("chunks of {size}"));
        }
    }

    fn reject(reason: &str, bytes: usize) -> Frame {
        Frame::Rejected(Rejected {
            reason: reason.to_string(),
            bytes,
        })
    }

    // ---- fixed -------------------------------------------------------------------------

    #[test]
    fn domain_xk3190_frame() {
        let frame = [
            0x02, 0x2B, 0x30, 0x30, 0x33, 0x32, 0x36, 0x30, 0x30, 0x31, 0x43, 0x03,
        ];
        assert_eq!(xk3190("+0032600"), frame);
        let (out, s) = run(&xk3190_spec(), xk3190_check, &[&frame]);
        assert_eq!(out, vec![Frame::Ok(frame.to_vec())]);
        assert_eq!(s.buffered(), 0);
    }

    #[test]
    fn fixed_stream_with_noise_and_corruption() {
        let f1 = xk3190("+0032600");
        let f2 = xk3190("-0000120");
        let f3 = xk3190("+0100001");
        let mut bad = f2.clone();
        bad[5] ^= 0x01; // checksum no longer matches
        let mut stream = b"\xFF\x00junk".to_vec();
        stream.extend_from_slice(&f1);
        stream.extend_from_slice(b"zz");
        stream.extend_from_slice(&bad);
        stream.extend_from_slice(&f2);
        // A truncated frame with a real one hidden inside it.
        stream.extend_from_slice(&f3[..4]);
        stream.extend_from_slice(&f3);
        stream.extend_from_slice(&f1[..7]); // incomplete tail

        let (out, s) = run(&xk3190_spec(), xk3190_check, &[&stream]);
        assert_eq!(
            out,
            vec![
                reject("6 bytes of noise before frame start", 6),
                Frame::Ok(f1.clone()),
                reject("2 bytes of noise before frame start", 2),
                reject("XOR mismatch", 12),
                Frame::Ok(f2.clone()),
                reject("missing end marker: expected 0x03, found 0x30", 4),
                Frame::Ok(f3.clone()),
            ]
        );
        assert_eq!(s.buffered(), 7);
        assert_chunking_invariant(&xk3190_spec(), xk3190_check, &stream, true);
    }

    #[test]
    fn fixed_corrupt_frame_skips_only_to_next_start() {
        // STX inside a corrupt candidate is where the search resumes.
        let good = xk3190("+0000500");
        let mut stream = vec![0x02, b'+', 0x02];
        stream.extend_from_slice(&good);
        let (out, _) = run(&xk3190_spec(), xk3190_check, &[&stream]);
        assert_eq!(oks(&out), vec![good]);
        assert_eq!(rejected_bytes(&out), 3);
        assert_chunking_invariant(&xk3190_spec(), xk3190_check, &stream, true);
    }

    #[test]
    fn rdm6300_frames() {
        let spec = FrameSpec::Fixed {
            start: 0x02,
            len: 14,
            end: Some(0x03),
        };
        let mut card = vec![0x02];
        card.extend_from_slice(b"62E3086CED08");
        card.push(0x03);
        let mut corrupt = card.clone();
        corrupt[3] = b'F';
        let mut stream = b"\r\n".to_vec();
        stream.extend_from_slice(&card);
        stream.extend_from_slice(&corrupt);
        stream.extend_from_slice(&card);
        let (out, s) = run(&spec, rdm6300_check, &[&stream]);
        assert_eq!(oks(&out), vec![card.clone(), card.clone()]);
        assert_eq!(rejected_bytes(&out), 2 + 14);
        assert_eq!(s.buffered(), 0);
        assert_chunking_invariant(&spec, rdm6300_check, &stream, true);
    }

    // ---- delimited ---------------------------------------------------------------------

    const GPRMC: &[u8] =
        b"$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A\r\n";
    const GPGGA: &[u8] = b"$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\r\n";

    #[test]
    fn nmea_fixtures_are_valid() {
        assert!(nmea_sentence_ok(GPRMC));
        assert!(nmea_sentence_ok(GPGGA));
    }

    #[test]
    fn nmea_stream_resynchronises() {
        let mut stream = b"\x00\xFFgarbage".to_vec();
        stream.extend_from_slice(GPRMC);
        stream.extend_from_slice(b"$GPRMC,12"); // cut short, a new sentence starts
        stream.extend_from_slice(GPGGA);
        stream.extend_from_slice(b"\r\n");
        let mut corrupt = GPRMC.to_vec();
        corrupt[10] = b'9';
        stream.extend_from_slice(&corrupt);
        stream.extend_from_slice(GPRMC);
        stream.extend_from_slice(&GPGGA[..20]);

        let (out, s) = run(&nmea_spec(), nmea_check, &[&stream]);
        assert_eq!(
            out,
            vec![
                reject("9 bytes of noise before frame start", 9),
                Frame::Ok(GPRMC.to_vec()),
                reject("NMEA checksum mismatch", 9),
                Frame::Ok(GPGGA.to_vec()),
                reject("2 bytes of noise before frame start", 2),
                reject("NMEA checksum mismatch", corrupt.len()),
                Frame::Ok(GPRMC.to_vec()),
            ]
        );
        assert_eq!(s.buffered(), 20);
        assert_chunking_invariant(&nmea_spec(), nmea_check, &stream, true);
    }

    #[test]
    fn delimited_overlong_frame_is_rejected() {
        let spec = FrameSpec::Delimited {
            start: Some(b"$".to_vec()),
            end: b"\r\n".to_vec(),
            max_len: 16,
        };
        let mut stream = b"$".to_vec();
        stream.extend_from_slice(&[b'A'; 40]);
        stream.extend_from_slice(b"\r\n$OK\r\n");
        let (out, s) = run(&spec, accept_all, &[&stream]);
        assert_eq!(
            out,
            vec![
                reject("no end delimiter within 16 bytes", 16),
                reject("27 bytes of noise before frame start", 27),
                Frame::Ok(b"$OK\r\n".to_vec()),
            ]
        );
        assert_eq!(s.buffered(), 0);
        assert_chunking_invariant(&spec, accept_all, &stream, true);
    }

    #[test]
    fn jt701_parenthesised_reports() {
        let spec = FrameSpec::Delimited {
            start: Some(b"(".to_vec()),
            end: b")".to_vec(),
            max_len: 256,
        };
        let r1 = b"(7000000001,P45,010124,080000,2232.1234,N,11356.5678,E,A,0)".to_vec();
        let r2 = b"(7000000001,P45,010124,080100,2232.1240,N,11356.5690,E,A,0)".to_vec();
        let mut stream = b"\r\n".to_vec();
        stream.extend_from_slice(&r1);
        stream.extend_from_slice(b"(70000");
        stream.extend_from_slice(&r2);
        let check: Check = |f| {
            if f.iter().filter(|&&b| b == b'(').count() == 1 {
                Ok(())
            } else {
                Err("nested start".to_string())
            }
        };
        let (out, _) = run(&spec, check, &[&stream]);
        assert_eq!(oks(&out), vec![r1, r2]);
        assert_eq!(rejected_bytes(&out), 2 + 6);
        assert_chunking_invariant(&spec, check, &stream, true);
    }

    #[test]
    fn multi_byte_start_marker_split_across_chunks() {
        let spec = FrameSpec::Delimited {
            start: Some(b"<<".to_vec()),
            end: b">>".to_vec(),
            max_len: 32,
        };
        let stream = b"x<y<<hello>>z<<<bye>><".to_vec();
        let (out, s) = run(&spec, accept_all, &[&stream]);
        assert_eq!(
            out,
            vec![
                reject("3 bytes of noise before frame start", 3),
                Frame::Ok(b"<<hello>>".to_vec()),
                reject("1 byte of noise before frame start", 1),
                Frame::Ok(b"<<<bye>>".to_vec()),
            ]
        );
        assert_eq!(s.buffered(), 1); // a lone '<' may begin the next marker
        assert_chunking_invariant(&spec, accept_all, &stream, true);
    }

    #[test]
    fn lines_without_start_marker() {
        // MT-SICS style responses.
        let spec = FrameSpec::Delimited {
            start: None,
            end: b"\r\n".to_vec(),
            max_len: 32,
        };
        let check: Check = |f| {
            if f.starts_with(b"S ") {
                Ok(())
            } else {
                Err("not an S response".to_string())
            }
        };
        let stream = b"S S     12.340 kg\r\n\xFF\xFEnoise\r\nS D     12.100 kg\r\nS S".to_vec();
        let (out, s) = run(&spec, check, &[&stream]);
        assert_eq!(
            out,
            vec![
                Frame::Ok(b"S S     12.340 kg\r\n".to_vec()),
                reject("not an S response", 9),
                Frame::Ok(b"S D     12.100 kg\r\n".to_vec()),
            ]
        );
        assert_eq!(s.buffered(), 3);
        assert_chunking_invariant(&spec, check, &stream, true);
    }

    #[test]
    fn overlong_line_is_dropped_through_its_delimiter() {
        let spec = FrameSpec::Delimited {
            start: None,
            end: b"\r\n".to_vec(),
            max_len: 8,
        };
        let mut stream = vec![b'x'; 30];
        stream.extend_from_slice(b"\r\nok\r\n");
        let (out, s) = run(&spec, accept_all, &[&stream]);
        assert_eq!(
            out,
            vec![
                reject("frame of 32 bytes exceeds the maximum of 8", 32),
                Frame::Ok(b"ok\r\n".to_vec()),
            ]
        );
        assert_eq!(s.buffered(), 0);
        assert_chunking_invariant(&spec, accept_all, &stream, false);

        // Fed slowly, memory stays within max_len while the line is discarded.
        let mut s = Splitter::new(spec.clone());
        let mut out = Vec::new();
        for b in &stream {
            out.extend(s.feed_all(std::slice::from_ref(b), accept_all));
            assert!(s.buffered() <= 8);
        }
        assert_eq!(oks(&out), vec![b"ok\r\n".to_vec()]);
        assert_eq!(out[0], reject("no end delimiter within 8 bytes", 7));
    }

    #[test]
    fn empty_delimiter_never_matches() {
        let spec = FrameSpec::Delimited {
            start: None,
            end: vec![],
            max_len: 4,
        };
        let (out, s) = run(&spec, accept_all, &[b"abcdefghij"]);
        assert!(oks(&out).is_empty());
        assert_eq!(accounted(&out) + s.buffered(), 10);
        assert!(s.buffered() < 4);
    }

    // ---- length prefixed ---------------------------------------------------------------

    #[test]
    fn impinj_frames_with_noise() {
        let cmd = [0xA0, 0x04, 0x01, 0x89, 0x01, 0xD1];
        assert_eq!(impinj(&[0x01, 0x89, 0x01]), cmd);
        let report = impinj(&[0x01, 0x89, 0x01, 0x30, 0x00, 0xE2, 0x00, 0x12, 0x34, 0x5A]);
        let mut bad = report.clone();
        bad[6] ^= 0xFF;
        let mut stream = vec![0x11, 0x22];
        stream.extend_from_slice(&cmd);
        stream.extend_from_slice(&[0xA0, 0xF0]); // sync with an impossible length
        stream.extend_from_slice(&bad);
        stream.extend_from_slice(&report);
        let (out, s) = run(&impinj_spec(), impinj_check, &[&stream]);
        assert_eq!(
            out,
            vec![
                reject("2 bytes of noise before frame start", 2),
                Frame::Ok(cmd.to_vec()),
                reject("frame length 242 outside 5..=64", 2),
                reject("bad check byte", bad.len()),
                Frame::Ok(report.clone()),
            ]
        );
        assert_eq!(s.buffered(), 0);
        assert_chunking_invariant(&impinj_spec(), impinj_check, &stream, true);
    }

    #[test]
    fn stray_sync_byte_does_not_stall_a_quiet_link() {
        // A0 0A announces 12 bytes, but the reader then answers with a 6-byte frame and
        // falls silent: the answer must come out without waiting for more bytes.
        let cmd = impinj(&[0x01, 0x89, 0x01]);
        let mut stream = vec![0xA0, 0x0A];
        stream.extend_from_slice(&cmd);
        let (out, s) = run(&impinj_spec(), impinj_check, &[&stream]);
        assert_eq!(
            out,
            vec![
                reject(
                    "truncated frame: announced 12 bytes, a valid frame followed after 2 bytes",
                    2
                ),
                Frame::Ok(cmd.clone()),
            ]
        );
        assert_eq!(s.buffered(), 0);
        assert_chunking_invariant(&impinj_spec(), impinj_check, &stream, false);
    }

    #[test]
    fn chafon_unsynced_frames() {
        let inventory = [0x04, 0x00, 0x01, 0xDB, 0x4B];
        assert_eq!(chafon(&[0x00, 0x01]), inventory);
        let reply = chafon(&[0x00, 0x01, 0x01, 0x01, 0x0C, 0xE2, 0x00, 0x12, 0x34]);
        let no_tag = chafon(&[0x00, 0x01, 0xFB]);
        let mut stream = vec![0xEE, 0x99, 0x00];
        stream.extend_from_slice(&reply);
        stream.extend_from_slice(&no_tag);
        let mut corrupt = reply.clone();
        corrupt[5] ^= 0x40;
        stream.extend_from_slice(&corrupt);
        stream.extend_from_slice(&inventory);
        let (out, s) = run(&chafon_spec(), chafon_check, &[&stream]);
        assert_eq!(
            oks(&out),
            vec![reply.clone(), no_tag.clone(), inventory.to_vec()]
        );
        // Noise runs are reported once each, not byte by byte.
        let rejections: Vec<&Rejected> = out.iter().filter_map(Frame::as_rejected).collect();
        assert_eq!(rejections.len(), 2, "{rejections:?}");
        assert_eq!(rejections[0].bytes, 3);
        assert!(
            rejections[0]
                .reason
                .starts_with("3 bytes of noise before frame start")
        );
        assert_eq!(rejections[1].bytes, corrupt.len());
        assert!(
            rejections[1].reason.contains("CRC mismatch"),
            "{rejections:?}"
        );
        assert_eq!(s.buffered(), 0);
        assert_chunking_invariant(&chafon_spec(), chafon_check, &stream, false);
    }

    #[test]
    fn chafon_stray_length_byte_does_not_stall() {
        let no_tag = chafon(&[0x00, 0x01, 0xFB]);
        let mut stream = vec![0x30]; // announces 49 bytes
        stream.extend_from_slice(&no_tag);
        let (out, s) = run(&chafon_spec(), chafon_check, &[&stream]);
        assert_eq!(oks(&out), vec![no_tag]);
        assert_eq!(rejected_bytes(&out), 1);
        assert_eq!(s.buffered(), 0);
    }

    #[test]
    fn sm130_two_byte_sync() {
        let firmware = [0xFF, 0x00, 0x01, 0x81, 0x82];
        assert_eq!(sm130(&[0x81]), firmware);
        let tag = sm130(&[0x82, 0x02, 0x04, 0xA2, 0x2B, 0x91]);
        let mut stream = vec![0xFF, 0xFF, 0x01];
        stream.extend_from_slice(&firmware);
        stream.extend_from_slice(&[0xFF, 0x00, 0x01, 0x81, 0x99]); // bad CSUM
        stream.extend_from_slice(&tag);
        stream.push(0xFF); // may begin the next sync
        let (out, s) = run(&sm130_spec(), sm130_check, &[&stream]);
        assert_eq!(
            out,
            vec![
                reject("3 bytes of noise before frame start", 3),
                Frame::Ok(firmware.to_vec()),
                reject("CSUM mismatch", 5),
                Frame::Ok(tag.clone()),
            ]
        );
        assert_eq!(s.buffered(), 1);
        assert_chunking_invariant(&sm130_spec(), sm130_check, &stream, true);
    }

    // ---- drain, overflow and accounting ------------------------------------------------

    #[test]
    fn drain_returns_exactly_the_unconsumed_tail() {
        let f1 = xk3190("+0032600");
        let f2 = xk3190("+0032610");
        let mut stream = b"ab".to_vec();
        stream.extend_from_slice(&f1);
        stream.extend_from_slice(b"cd");
        stream.extend_from_slice(&f2[..5]);
        let mut s = Splitter::new(xk3190_spec());
        let out = s.feed_all(&stream, xk3190_check);
        assert_eq!(oks(&out), vec![f1]);
        assert_eq!(s.buffered(), 5);
        assert_eq!(s.drain(), f2[..5].to_vec());
        assert_eq!(s.buffered(), 0);
        assert_eq!(s.drain(), Vec::<u8>::new());
        assert_eq!(s.next_frame(xk3190_check), None);

        // Handing the tail to a fresh splitter completes the frame.
        let mut fresh = Splitter::new(xk3190_spec());
        fresh.push(&f2[..5]);
        assert_eq!(fresh.feed_all(&f2[5..], xk3190_check), vec![Frame::Ok(f2)]);
    }

    #[test]
    fn drain_keeps_pending_noise_and_ready_frames() {
        // Noise with no start marker yet is unconsumed: drain hands it back.
        let mut s = Splitter::new(xk3190_spec());
        s.push(b"noise");
        assert_eq!(s.next_frame(xk3190_check), None);
        assert_eq!(s.drain(), b"noise".to_vec());

        // A frame found behind noise is handed out after the noise report; draining in
        // between must not lose it.
        let no_tag = chafon(&[0x00, 0x01, 0xFB]);
        let mut s = Splitter::new(chafon_spec());
        let mut stream = vec![0xEE];
        stream.extend_from_slice(&no_tag);
        stream.extend_from_slice(&[0x05, 0x00]);
        s.push(&stream);
        assert!(matches!(s.next_frame(chafon_check), Some(Frame::Rejected(r)) if r.bytes == 1));
        assert_eq!(s.buffered(), no_tag.len() + 2);
        let mut expected = no_tag.clone();
        expected.extend_from_slice(&[0x05, 0x00]);
        assert_eq!(s.drain(), expected);
    }

    #[test]
    fn garbage_flood_stays_bounded() {
        let cap = 1024;
        for spec in [xk3190_spec(), nmea_spec(), impinj_spec(), chafon_spec()] {
            let mut s = Splitter::new(spec.clone()).with_capacity_limit(cap);
            let mut pushed = 0usize;
            let mut out = Vec::new();
            let mut x = 7u32;
            for round in 0..2000 {
                let n = 1 + round % 97;
                let chunk: Vec<u8> = (0..n)
                    .map(|_| {
                        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                        // Never a start marker; lengths out of range for the sync-less spec.
                        0x40 + ((x >> 16) as u8 % 0x3F)
                    })
                    .collect();
                pushed += chunk.len();
                s.push(&chunk);
                assert!(s.buffered() <= cap, "{spec:?}");
                if round % 3 == 0 {
                    while let Some(f) = s.next_frame(accept_all) {
                        out.push(f);
                    }
                }
                assert!(s.st.buf.capacity() <= 4 * cap, "{spec:?}");
            }
            while let Some(f) = s.next_frame(accept_all) {
                out.push(f);
            }
            assert!(oks(&out).is_empty(), "{spec:?}");
            assert!(!out.is_empty(), "{spec:?}");
            assert!(out.iter().all(|f| !f.is_empty()));
            assert_eq!(accounted(&out) + s.buffered(), pushed, "{spec:?}");
        }
    }

    #[test]
    fn overflow_report_and_recovery() {
        let mut s = Splitter::new(xk3190_spec()).with_capacity_limit(100);
        s.push(&[0x55; 150]);
        assert_eq!(
            s.next_frame(xk3190_check),
            Some(reject("buffer overflow: 100 bytes dropped", 100))
        );
        assert_eq!(s.buffered(), 50);
        let f = xk3190("+0000001");
        let out = s.feed_all(&f, xk3190_check);
        assert_eq!(
            out,
            vec![
                reject("50 bytes of noise before frame start", 50),
                Frame::Ok(f),
            ]
        );
    }

    #[test]
    fn accounting_holds_with_mixed_traffic_and_small_cap() {
        let frames: Vec<Vec<u8>> = (0..200)
            .map(|i| xk3190(&format!("+{:06}0", i * 37)))
            .collect();
        let mut stream = Vec::new();
        let mut x = 99u32;
        for (i, f) in frames.iter().enumerate() {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let noise = (x >> 16) as usize % 5;
            stream.extend((0..noise).map(|k| (k as u8).wrapping_mul(31).wrapping_add(0x41)));
            if i % 17 == 0 {
                let mut bad = f.clone();
                bad[3] ^= 1;
                stream.extend_from_slice(&bad);
            }
            stream.extend_from_slice(f);
        }
        for cap in [24, 64, 4096] {
            let mut s = Splitter::new(xk3190_spec()).with_capacity_limit(cap);
            let mut out = Vec::new();
            let mut pos = 0;
            let mut y = 5u32;
            while pos < stream.len() {
                y = y.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let n = (1 + (y >> 16) as usize % 11).min(stream.len() - pos);
                out.extend(s.feed_all(&stream[pos..pos + n], xk3190_check));
                pos += n;
                assert_eq!(accounted(&out) + s.buffered(), pos, "cap {cap}");
                assert!(s.buffered() <= cap);
            }
            if cap == 4096 {
                assert_eq!(oks(&out), frames);
            } else {
                // Small caps may cost frames, never invent them.
                assert!(oks(&out).iter().all(|f| frames.contains(f)));
                assert!(!oks(&out).is_empty());
            }
        }
    }

    #[test]
    fn frames_identical_across_protocols_for_long_streams() {
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for i in 0..40u8 {
            let f = impinj(&[0x01, 0x89, i, i.wrapping_mul(3)]);
            if i % 5 == 0 {
                stream.extend_from_slice(&[0x00, i]);
            }
            if i % 7 == 3 {
                let mut bad = f.clone();
                bad[4] ^= 0x21;
                stream.extend_from_slice(&bad);
            }
            stream.extend_from_slice(&f);
            expected.push(f);
        }
        let (out, _) = run(&impinj_spec(), impinj_check, &[&stream]);
        assert_eq!(oks(&out), expected);
        assert_chunking_invariant(&impinj_spec(), impinj_check, &stream, false);
    }

    #[test]
    fn helpers_and_display() {
        let r = Rejected {
            reason: "XOR mismatch".to_string(),
            bytes: 12,
        };
        assert_eq!(r.to_string(), "12 bytes rejected: XOR mismatch");
        let f = Frame::Rejected(r.clone());
        assert_eq!(f.as_rejected(), Some(&r));
        assert_eq!(f.as_ok(), None);
        assert_eq!(f.len(), 12);
        let ok = Frame::Ok(vec![1, 2]);
        assert_eq!(ok.as_ok(), Some(&[1u8, 2][..]));
        assert!(!ok.is_empty());
        let s = Splitter::new(xk3190_spec());
        assert_eq!(s.spec(), &xk3190_spec());
        assert_eq!(s.buffered(), 0);
    }

    #[test]
    fn degenerate_specs_still_make_progress() {
        let spec = FrameSpec::Fixed {
            start: b'x',
            len: 0,
            end: None,
        };
        let (out, _) = run(&spec, accept_all, &[b"axxb"]);
        assert_eq!(oks(&out), vec![b"x".to_vec(), b"x".to_vec()]);
        let spec = FrameSpec::LengthPrefixed {
            sync: vec![],
            len_offset: 0,
            len_adjust: 0,
            min_len: 0,
            max_len: 255,
        };
        let (out, s) = run(&spec, accept_all, &[&[0, 0, 2, 9, 1]]);
        assert_eq!(accounted(&out) + s.buffered(), 5);
        assert!(out.iter().all(|f| !f.is_empty()));
    }
}
