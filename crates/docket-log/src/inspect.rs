//! Read-only views of a segment file's bytes for forensic tools and damage
//! tests: where each frame lies. Nothing here is needed to read or verify a
//! ledger (that is [`crate::Reader`] and [`crate::verify`]).

/// Bytes of the header at the start of every segment file.
pub const SEGMENT_HEADER_BYTES: usize = crate::segment::HEADER_BYTES;

/// Where one frame lies in a segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameSpan {
    /// Byte offset of the frame's first byte.
    pub start: usize,
    /// Byte offset just past the frame.
    pub end: usize,
    /// The frame's record number.
    pub seq: u64,
}

/// The frames of a segment file's `bytes`, in order, up to the first that
/// does not decode (its offset and why, in the error).
pub fn frame_spans(bytes: &[u8]) -> Result<Vec<FrameSpan>, String> {
    let mut spans = Vec::new();
    let mut offset = SEGMENT_HEADER_BYTES;
    while offset < bytes.len() {
        let (frame, size) =
            crate::frame::decode(&bytes[offset..]).map_err(|fault| format!("offset {offset}: {fault}"))?;
        spans.push(FrameSpan { start: offset, end: offset + size, seq: frame.seq });
        offset += size;
    }
    Ok(spans)
}
