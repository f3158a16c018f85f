//! Record frames: how one log entry is laid out in a segment file.
//!
//! ```text
//! frame    = length:u32be || body || checksum[32]
//! body     = version:u8 || flags:u8 || seq:u64be || system_time:i64be (µs) || prev[32] || wire
//! flags    = bit 0 COMMIT: the last frame of a write that was synced before any
//!            append in it was acknowledged
//! checksum = BLAKE3-derive-key("docket/v1/frame", length || body)
//! prev     = checksum of the previous frame ([0; 32] for seq 0)
//! ```
//!
//! `wire` is the signed event's wire form (`SignedEvent::to_wire`). The
//! Merkle leaf of a record is its [`entry`]: `seq || system_time || wire`, so
//! the tree commits to the order and time the ledger assigned, not only to
//! what agencies signed.

use docket_model::signed::WIRE_SIZE_BYTES_MAX;

/// Version of the frame layout.
pub const FRAME_VERSION: u8 = 1;
/// Bytes before the wire form: length, version, flags, seq, time, prev.
pub const HEADER_BYTES: usize = 4 + 1 + 1 + 8 + 8 + 32;
/// Flag: last frame of a synced write.
pub const COMMIT: u8 = 0x01;
/// Bytes after the wire form.
pub const TRAILER_BYTES: usize = 32;
/// Largest frame: header, the largest wire form, checksum.
pub const FRAME_BYTES_MAX: usize = HEADER_BYTES + WIRE_SIZE_BYTES_MAX + TRAILER_BYTES;

// How the limits relate, checked when the crate compiles: the length field
// (4 bytes) holds any frame, and the body a frame's length field counts
// holds the header after it.
const _: () = assert!(FRAME_BYTES_MAX - 4 - TRAILER_BYTES <= u32::MAX as usize);
const _: () = assert!(HEADER_BYTES == 4 + 1 + 1 + 8 + 8 + 32);
const CHECKSUM_CONTEXT: &str = "docket/v1/frame";

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub commit: bool,
    pub seq: u64,
    pub system_time: i64,
    pub prev: [u8; 32],
    pub wire: Vec<u8>,
    pub checksum: [u8; 32],
}

/// Why bytes are not a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameFault {
    /// Fewer bytes remain than the frame needs.
    Incomplete { needed: usize, available: usize },
    /// The length field is impossible.
    BadLength(u32),
    /// The checksum does not match.
    Checksum,
    /// Unknown frame version.
    Version(u8),
}

impl std::fmt::Display for FrameFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Incomplete { needed, available } => {
                write!(f, "frame needs {needed} bytes, {available} remain")
            }
            Self::BadLength(length) => write!(f, "frame length {length} is impossible"),
            Self::Checksum => write!(f, "frame checksum does not match its contents"),
            Self::Version(version) => write!(f, "unknown frame version {version}"),
        }
    }
}

fn checksum(bytes: &[u8]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key(CHECKSUM_CONTEXT);
    hasher.update(bytes);
    *hasher.finalize().as_bytes()
}

/// Encodes a frame; returns the bytes and the checksum (the next frame's `prev`).
pub fn encode(commit: bool, seq: u64, system_time: i64, prev: &[u8; 32], wire: &[u8]) -> (Vec<u8>, [u8; 32]) {
    assert!(wire.len() <= WIRE_SIZE_BYTES_MAX, "callers check the wire size first");
    let body_len = HEADER_BYTES - 4 + wire.len();
    let mut out = Vec::with_capacity(4 + body_len + TRAILER_BYTES);
    out.extend_from_slice(&(body_len as u32).to_be_bytes());
    out.push(FRAME_VERSION);
    out.push(if commit { COMMIT } else { 0 });
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&system_time.to_be_bytes());
    out.extend_from_slice(prev);
    out.extend_from_slice(wire);
    let sum = checksum(&out);
    out.extend_from_slice(&sum);
    // Postconditions: the frame is exactly header + wire + trailer, within
    // the maximum, and its length field says so.
    assert_eq!(out.len(), HEADER_BYTES + wire.len() + TRAILER_BYTES);
    assert!(out.len() <= FRAME_BYTES_MAX);
    (out, sum)
}

/// Decodes the frame at the start of `bytes`; returns it and its total size.
pub fn decode(bytes: &[u8]) -> Result<(Frame, usize), FrameFault> {
    if bytes.len() < 4 {
        return Err(FrameFault::Incomplete { needed: 4, available: bytes.len() });
    }
    let length = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let body_len = length as usize;
    if !(HEADER_BYTES - 4..=FRAME_BYTES_MAX - 4 - TRAILER_BYTES).contains(&body_len) {
        return Err(FrameFault::BadLength(length));
    }
    let total = 4 + body_len + TRAILER_BYTES;
    if bytes.len() < total {
        return Err(FrameFault::Incomplete { needed: total, available: bytes.len() });
    }
    let stored: [u8; 32] = bytes[4 + body_len..total].try_into().unwrap_or([0; 32]);
    if checksum(&bytes[..4 + body_len]) != stored {
        return Err(FrameFault::Checksum);
    }
    let body = &bytes[4..4 + body_len];
    if body[0] != FRAME_VERSION {
        return Err(FrameFault::Version(body[0]));
    }
    if body[1] & !COMMIT != 0 {
        return Err(FrameFault::Version(body[0]));
    }
    let commit = body[1] & COMMIT != 0;
    let seq = u64::from_be_bytes(body[2..10].try_into().unwrap_or([0; 8]));
    let system_time = i64::from_be_bytes(body[10..18].try_into().unwrap_or([0; 8]));
    let prev: [u8; 32] = body[18..50].try_into().unwrap_or([0; 32]);
    let wire = body[50..].to_vec();
    // Postconditions: the frame read is within the maximum and no longer than its input.
    assert!(total <= bytes.len() && total <= FRAME_BYTES_MAX);
    assert_eq!(wire.len() + HEADER_BYTES + TRAILER_BYTES, total);
    Ok((Frame { commit, seq, system_time, prev, wire, checksum: stored }, total))
}

/// The Merkle leaf hash of a record: RFC 6962's `H(0x00 || entry)` of its
/// [`entry`]. The one definition of a record's leaf, for the writer, the
/// verifier, readers and outside clients alike.
pub fn leaf(seq: u64, system_time: i64, wire: &[u8]) -> crate::merkle::Hash {
    crate::merkle::leaf_hash(&entry(seq, system_time, wire))
}

/// The Merkle leaf entry of a record.
pub fn entry(seq: u64, system_time: i64, wire: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + wire.len());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&system_time.to_be_bytes());
    out.extend_from_slice(wire);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_every_flipped_byte_is_caught() {
        let (bytes, sum) = encode(true, 7, 1_700_000_000_000_000, &[3; 32], b"wire bytes");
        let (frame, size) = decode(&bytes).unwrap();
        assert_eq!(size, bytes.len());
        assert_eq!(
            (frame.seq, frame.system_time, frame.prev, frame.wire.as_slice(), frame.checksum),
            (7, 1_700_000_000_000_000, [3; 32], &b"wire bytes"[..], sum)
        );
        for index in 0..bytes.len() {
            let mut changed = bytes.clone();
            changed[index] ^= 0x10;
            assert!(decode(&changed).is_err(), "flip at {index} not caught");
        }
        assert!(matches!(decode(&bytes[..bytes.len() - 1]), Err(FrameFault::Incomplete { .. })));
    }
}
