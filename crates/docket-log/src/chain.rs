//! The chain walk: the checks every record must pass against the record
//! before it (gapless seq, `prev` equal to the previous frame's checksum,
//! strictly increasing system time). Recovery (`Log::open`), the streaming
//! `Reader` and `verify` all walk the log through this one type, so the three
//! cannot disagree about what a well-formed log is.

use crate::frame::Frame;

/// Why a frame does not follow the one before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainFault {
    /// The frame's seq is not the next one.
    Seq { expected: u64, found: u64 },
    /// `prev` is not the previous frame's checksum.
    Prev,
    /// The system time does not increase.
    Time,
}

impl std::fmt::Display for ChainFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Seq { expected, found } => write!(f, "seq {found} where {expected} was expected"),
            Self::Prev => write!(f, "hash chain broken: prev does not match the previous record"),
            Self::Time => write!(f, "system time does not increase"),
        }
    }
}

/// Where the walk stands: the next seq and what the frame before it left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chain {
    next_seq: u64,
    /// Checksum of the frame before `next_seq`; `None` when it is unknown
    /// (a walk that starts in the middle without an earlier read).
    last_checksum: Option<[u8; 32]>,
    /// System time of the frame before `next_seq`; `None` when unknown.
    last_time: Option<i64>,
}

impl Default for Chain {
    fn default() -> Self {
        Self::new()
    }
}

impl Chain {
    /// The walk of a log from its first record.
    pub fn new() -> Self {
        Self { next_seq: 0, last_checksum: Some([0; 32]), last_time: None }
    }

    /// A walk resumed at `next_seq`. With `prev`, the first frame's `prev`
    /// is checked against it; without, the first frame is taken as it is.
    pub fn resume(next_seq: u64, prev: Option<[u8; 32]>) -> Self {
        let last_checksum = if next_seq == 0 { Some([0; 32]) } else { prev };
        Self { next_seq, last_checksum, last_time: None }
    }

    /// Checks that `frame` follows, and if so moves past it. On a fault the
    /// walk stays where it was.
    pub fn link(&mut self, frame: &Frame) -> Result<(), ChainFault> {
        self.link_fields(frame.seq, &frame.prev, frame.system_time, frame.checksum)
    }

    /// [`Chain::link`] on a frame's fields, for a writer that has not
    /// decoded the frame it wrote.
    pub fn link_fields(
        &mut self,
        seq: u64,
        prev: &[u8; 32],
        system_time: i64,
        checksum: [u8; 32],
    ) -> Result<(), ChainFault> {
        if seq != self.next_seq {
            return Err(ChainFault::Seq { expected: self.next_seq, found: seq });
        }
        if self.last_checksum.is_some_and(|last| last != *prev) {
            return Err(ChainFault::Prev);
        }
        if self.last_time.is_some_and(|last| system_time <= last) {
            return Err(ChainFault::Time);
        }
        self.next_seq = seq + 1;
        self.last_checksum = Some(checksum);
        self.last_time = Some(system_time);
        Ok(())
    }

    /// The seq the next frame must have.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Checksum of the last linked frame (`[0; 32]` before the first record
    /// or when unknown).
    pub fn last_checksum(&self) -> [u8; 32] {
        self.last_checksum.unwrap_or([0; 32])
    }

    /// System time of the last linked frame, if known.
    pub fn last_time(&self) -> Option<i64> {
        self.last_time
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame;

    fn frame_at(seq: u64, time: i64, prev: [u8; 32]) -> Frame {
        let (bytes, _) = frame::encode(true, seq, time, &prev, b"wire");
        frame::decode(&bytes).expect("decodes").0
    }

    #[test]
    fn links_a_chain_and_names_each_fault() {
        let mut chain = Chain::new();
        let first = frame_at(0, 10, [0; 32]);
        chain.link(&first).expect("first record");
        let second = frame_at(1, 11, first.checksum);
        assert_eq!(chain.link(&frame_at(2, 11, first.checksum)), Err(ChainFault::Seq { expected: 1, found: 2 }));
        assert_eq!(chain.link(&frame_at(1, 11, [9; 32])), Err(ChainFault::Prev));
        assert_eq!(chain.link(&frame_at(1, 10, first.checksum)), Err(ChainFault::Time));
        assert_eq!(chain.next_seq(), 1, "a fault leaves the walk in place");
        chain.link(&second).expect("second record");
        assert_eq!((chain.next_seq(), chain.last_checksum(), chain.last_time()), (2, second.checksum, Some(11)));
    }

    #[test]
    fn a_resumed_walk_checks_prev_only_when_given() {
        let frame = frame_at(5, 50, [7; 32]);
        assert_eq!(Chain::resume(5, Some([8; 32])).link(&frame), Err(ChainFault::Prev));
        assert_eq!(Chain::resume(5, Some([7; 32])).link(&frame), Ok(()));
        assert_eq!(Chain::resume(5, None).link(&frame), Ok(()));
        assert_eq!(Chain::resume(0, None).link(&frame_at(0, 1, [1; 32])), Err(ChainFault::Prev));
    }
}
