//! Canonical encoding, signing, ids, and the two interchange forms of a signed event.
//!
//! * Canonical bytes: postcard 1.x of [`Event`]. These bytes are what is signed,
//!   stored and hashed; they are never re-encoded to verify. Decoding refuses
//!   any input that does not re-encode to itself (overlong varints, trailing
//!   bytes), so one event has exactly one encoding and one id.
//! * Signed message: [`SIGNING_DOMAIN`] followed by the canonical bytes.
//! * Event id: BLAKE3 in derive-key mode with context [`EVENT_ID_CONTEXT`] over
//!   the canonical bytes. Ed25519 signing is deterministic, so the same event
//!   signed twice by the same key has the same signature and id.
//! * Wire form (log records, `application/octet-stream`): postcard of
//!   `(canonical bytes, signature)`.
//! * JSON form: `{"event": {...}, "signature": "<hex>", "id": "<hex>"}`.

use ed25519_dalek::{Signer as _, SigningKey};
use serde::{Deserialize, Serialize};

use crate::crypto::{self, EventId, PublicKey, Signature, SignatureError};
use crate::event::Event;
use crate::limits::EVENT_SIZE_BYTES_MAX;
use crate::validate::{validate, FormError};

/// Prefix of every signed event message; keeps event signatures apart from
/// checkpoints, requests and anything else a key might sign.
pub const SIGNING_DOMAIN: &[u8] = b"docket/v1/event\0";
/// BLAKE3 derive-key context for event ids.
pub const EVENT_ID_CONTEXT: &str = "docket/v1/event-id";
/// Largest wire form: the event, its length prefix and the signature.
pub const WIRE_SIZE_BYTES_MAX: usize = EVENT_SIZE_BYTES_MAX + 3 + 64;

// The largest event's length prefix (an unsigned LEB128 varint, 7 bits a
// byte) takes at most the 3 bytes counted above, and the signature is 64.
const _: () = assert!(EVENT_SIZE_BYTES_MAX < 1 << 21);
const _: () = assert!(WIRE_SIZE_BYTES_MAX == EVENT_SIZE_BYTES_MAX + 3 + ed25519_dalek::SIGNATURE_LENGTH);

/// Why an event was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    #[error("event is {size} bytes, more than event_size_bytes_max = {max}")]
    TooLarge { size: usize, max: usize },
    #[error("cannot decode event bytes: {reason}")]
    Decode { reason: String },
    #[error("event bytes are not canonical (they decode, but re-encode differently); re-encode before signing")]
    NonCanonical,
    #[error("invalid event: {0}")]
    Form(#[from] FormError),
    #[error("signature: {0}")]
    Signature(#[from] SignatureError),
    #[error("the signing key {actual} is not the key the event names ({stated})")]
    KeyMismatch { stated: PublicKey, actual: PublicKey },
    #[error("id is {stated} but the event hashes to {computed}")]
    IdMismatch { stated: EventId, computed: EventId },
}

/// Canonical bytes of an event. Infallible for any [`Event`] value; the size
/// limit is checked by [`decode`] and [`SignedEvent::sign`].
pub fn encode(event: &Event) -> Vec<u8> {
    // postcard's serializer fails only on types serde cannot express (maps of
    // unknown length, `collect_str` on non-human-readable formats) and none occur
    // in Event; a failure here is a bug in this crate, not bad input.
    postcard::to_allocvec(event).unwrap_or_else(|error| unreachable!("Event always encodes: {error}"))
}

/// Decodes canonical bytes, refusing non-canonical input and events that break a limit or form rule.
pub fn decode(bytes: &[u8]) -> Result<Event, EventError> {
    if bytes.len() > EVENT_SIZE_BYTES_MAX {
        return Err(EventError::TooLarge { size: bytes.len(), max: EVENT_SIZE_BYTES_MAX });
    }
    let event: Event = postcard::from_bytes(bytes).map_err(|error| EventError::Decode { reason: error.to_string() })?;
    if encode(&event) != bytes {
        return Err(EventError::NonCanonical);
    }
    validate(&event)?;
    Ok(event)
}

/// The id of the event whose canonical bytes these are.
pub fn event_id(bytes: &[u8]) -> EventId {
    let mut hasher = blake3::Hasher::new_derive_key(EVENT_ID_CONTEXT);
    hasher.update(bytes);
    EventId(*hasher.finalize().as_bytes())
}

/// The message an event signature covers.
pub fn signing_message(bytes: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(SIGNING_DOMAIN.len() + bytes.len());
    message.extend_from_slice(SIGNING_DOMAIN);
    message.extend_from_slice(bytes);
    message
}

/// A decoded, form-checked event with its canonical bytes, signature and id.
/// Holding one does not mean the signature verifies: call [`SignedEvent::verify`]
/// (or verify a batch with [`verify_all`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedEvent {
    event: Event,
    bytes: Vec<u8>,
    signature: Signature,
    id: EventId,
}

#[derive(Serialize, Deserialize)]
struct Wire<'a> {
    #[serde(borrow)]
    bytes: &'a [u8],
    signature: Signature,
}

/// The JSON interchange form of a signed event.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedJson {
    pub event: Event,
    pub signature: Signature,
    /// Optional on input; if present it must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<EventId>,
}

impl SignedEvent {
    /// Validates and signs an event. The key must be the one the event names.
    pub fn sign(event: Event, key: &SigningKey) -> Result<Self, EventError> {
        let actual = PublicKey(key.verifying_key().to_bytes());
        if actual != event.key {
            return Err(EventError::KeyMismatch { stated: event.key, actual });
        }
        validate(&event)?;
        let bytes = encode(&event);
        if bytes.len() > EVENT_SIZE_BYTES_MAX {
            return Err(EventError::TooLarge { size: bytes.len(), max: EVENT_SIZE_BYTES_MAX });
        }
        let signature = Signature(key.sign(&signing_message(&bytes)).to_bytes());
        let id = event_id(&bytes);
        Ok(Self { event, bytes, signature, id })
    }

    /// From canonical bytes and a signature (not yet verified).
    pub fn from_parts(bytes: Vec<u8>, signature: Signature) -> Result<Self, EventError> {
        let event = decode(&bytes)?;
        let id = event_id(&bytes);
        Ok(Self { event, bytes, signature, id })
    }

    /// From the wire form (not yet verified).
    pub fn from_wire(wire: &[u8]) -> Result<Self, EventError> {
        if wire.len() > WIRE_SIZE_BYTES_MAX {
            return Err(EventError::TooLarge { size: wire.len(), max: WIRE_SIZE_BYTES_MAX });
        }
        let (parts, rest): (Wire<'_>, &[u8]) =
            postcard::take_from_bytes(wire).map_err(|error| EventError::Decode { reason: error.to_string() })?;
        if !rest.is_empty() {
            return Err(EventError::Decode { reason: format!("{} trailing bytes after the signature", rest.len()) });
        }
        Self::from_parts(parts.bytes.to_vec(), parts.signature)
    }

    /// The wire form.
    ///
    /// Byte for byte what postcard makes of `Wire` (the length of the bytes as
    /// an unsigned LEB128 varint, the bytes, the 64 signature bytes), written
    /// directly: through serde, postcard is handed the bytes one at a time,
    /// which cost the log's writer 10% of its time (`log-bench`, `perf`).
    /// `wire_form_is_postcard_of_wire` checks the two agree.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(10 + self.bytes.len() + self.signature.0.len());
        let mut length = self.bytes.len() as u64;
        while length >= 0x80 {
            out.push((length as u8 & 0x7f) | 0x80);
            length >>= 7;
        }
        out.push(length as u8);
        out.extend_from_slice(&self.bytes);
        out.extend_from_slice(&self.signature.0);
        out
    }

    /// The wire form through postcard and serde: the reference [`SignedEvent::to_wire`] is tested against.
    #[doc(hidden)]
    pub fn to_wire_postcard(&self) -> Vec<u8> {
        let wire = Wire { bytes: &self.bytes, signature: self.signature };
        postcard::to_allocvec(&wire).unwrap_or_else(|error| unreachable!("wire form always encodes: {error}"))
    }

    /// From the JSON form: re-encodes the event canonically (not yet verified).
    pub fn from_json(json: SignedJson) -> Result<Self, EventError> {
        validate(&json.event)?;
        let bytes = encode(&json.event);
        if bytes.len() > EVENT_SIZE_BYTES_MAX {
            return Err(EventError::TooLarge { size: bytes.len(), max: EVENT_SIZE_BYTES_MAX });
        }
        let id = event_id(&bytes);
        if let Some(stated) = json.id {
            if stated != id {
                return Err(EventError::IdMismatch { stated, computed: id });
            }
        }
        Ok(Self { event: json.event, bytes, signature: json.signature, id })
    }

    /// The JSON form, with the id.
    pub fn to_json(&self) -> SignedJson {
        SignedJson { event: self.event.clone(), signature: self.signature, id: Some(self.id) }
    }

    /// Verifies the signature under the acceptance rule (see [`crate::crypto`]).
    pub fn verify(&self) -> Result<(), SignatureError> {
        crypto::verify(&self.event.key, &signing_message(&self.bytes), &self.signature)
    }

    pub fn event(&self) -> &Event {
        &self.event
    }
    /// The event, giving up the bytes and signature.
    pub fn into_event(self) -> Event {
        self.event
    }
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
    pub fn signature(&self) -> &Signature {
        &self.signature
    }
    pub fn id(&self) -> EventId {
        self.id
    }
}

/// Verifies many signed events at once; one result per event, the same as
/// [`SignedEvent::verify`] would give.
pub fn verify_all(events: &[SignedEvent]) -> Vec<Result<(), SignatureError>> {
    let messages: Vec<Vec<u8>> = events.iter().map(|e| signing_message(&e.bytes)).collect();
    let items: Vec<crypto::BatchItem<'_>> = events
        .iter()
        .zip(&messages)
        .map(|(event, message)| (&event.event.key, message.as_slice(), &event.signature))
        .collect();
    crypto::verify_batch(&items)
}
