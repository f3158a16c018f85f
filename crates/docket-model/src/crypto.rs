//! Keys, signatures, digests, and docket's one signature acceptance rule.
//!
//! # The acceptance rule
//!
//! A signature `(R, S)` by key `A` on message `M` is accepted exactly when:
//!
//! 1. `S` is canonical (`S < L`);
//! 2. `A` and `R` are canonical encodings of curve points;
//! 3. neither `A` nor `R` is of small order;
//! 4. the **cofactored** equation holds: `[8][S]B = [8]R + [8][k]A` with
//!    `k = SHA-512(R || A || M) mod L`.
//!
//! Single and batch verification apply this same rule. The cofactored equation
//! is chosen because batch verification with random coefficients is only
//! equivalent to single verification under it: ed25519-dalek's batch checks the
//! cofactorless equation, which accepts a signature whose `R` has a torsion
//! component with probability 1/8 or more, while `verify_strict` rejects it.
//! This follows ZIP-215 and Chalkias et al., "Taming the many EdDSAs" (2020),
//! minus ZIP-215's tolerance of non-canonical encodings and small-order points.
//! Every signature made by a correct signer passes both rules; they differ only
//! on hand-crafted mixed-order inputs, which `ed25519-speccheck` vectors 4 and 5 pin.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha512};

/// Why a signature was refused. One variant per clause of the acceptance rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    #[error("signature S is not canonical (S >= L)")]
    NonCanonicalS,
    #[error("public key is not a canonical encoding of a curve point")]
    InvalidKey,
    #[error("public key has small order (a weak key that verifies forged signatures)")]
    SmallOrderKey,
    #[error("signature R is not a canonical encoding of a curve point")]
    InvalidR,
    #[error("signature R has small order")]
    SmallOrderR,
    #[error("signature does not verify for this key and message")]
    Equation,
}

macro_rules! hex_bytes_type {
    ($type:ident, $len:expr, $doc:expr) => {
        #[doc = $doc]
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $type(pub [u8; $len]);

        impl $type {
            /// Parses lower- or upper-case hex of exactly the right length.
            pub fn from_hex(text: &str) -> Result<Self, String> {
                let mut bytes = [0u8; $len];
                hex::decode_to_slice(text, &mut bytes).map_err(|error| {
                    format!("{}: expected {} hex digits: {error}", stringify!($type), 2 * $len)
                })?;
                Ok(Self(bytes))
            }
            /// Lower-case hex.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
        }

        impl fmt::Debug for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($type), self.to_hex())
            }
        }

        impl fmt::Display for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl Serialize for $type {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                if serializer.is_human_readable() {
                    serializer.serialize_str(&self.to_hex())
                } else {
                    serde::Serialize::serialize(&serde_big_array_like::Fixed(&self.0), serializer)
                }
            }
        }

        impl<'de> Deserialize<'de> for $type {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                if deserializer.is_human_readable() {
                    let text = Cow::<str>::deserialize(deserializer)?;
                    Self::from_hex(&text).map_err(de::Error::custom)
                } else {
                    serde_big_array_like::deserialize::<D, $len>(deserializer).map(Self)
                }
            }
        }

        impl JsonSchema for $type {
            fn schema_name() -> Cow<'static, str> {
                stringify!($type).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({
                    "description": $doc,
                    "type": "string",
                    "pattern": format!("^[0-9a-fA-F]{{{}}}$", 2 * $len),
                })
            }
        }
    };
}

/// Fixed-size byte arrays as postcard tuples (no length prefix); serde only
/// derives this for arrays up to 32 bytes, and signatures have 64.
mod serde_big_array_like {
    use serde::de::{Error, SeqAccess, Visitor};
    use serde::ser::SerializeTuple;
    use serde::{Deserializer, Serialize, Serializer};

    pub struct Fixed<'a, const N: usize>(pub &'a [u8; N]);

    impl<const N: usize> Serialize for Fixed<'_, N> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let mut tuple = serializer.serialize_tuple(N)?;
            for byte in self.0 {
                tuple.serialize_element(byte)?;
            }
            tuple.end()
        }
    }

    struct ArrayVisitor<const N: usize>;

    impl<'de, const N: usize> Visitor<'de> for ArrayVisitor<N> {
        type Value = [u8; N];
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{N} bytes")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<[u8; N], A::Error> {
            let mut out = [0u8; N];
            for (index, slot) in out.iter_mut().enumerate() {
                *slot = seq.next_element()?.ok_or_else(|| A::Error::invalid_length(index, &self))?;
            }
            Ok(out)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(deserializer: D) -> Result<[u8; N], D::Error> {
        deserializer.deserialize_tuple(N, ArrayVisitor::<N>)
    }
}

hex_bytes_type!(PublicKey, 32, "Ed25519 public key, 32 bytes (64 hex digits)");
hex_bytes_type!(Signature, 64, "Ed25519 signature R || S, 64 bytes (128 hex digits)");
hex_bytes_type!(EventId, 32, "Event id: BLAKE3 (derive-key mode) of the canonical event bytes, 32 bytes");

impl PublicKey {
    /// Checks clauses 2 and 3 of the acceptance rule for the key alone, so that
    /// a key that could never verify anything is refused at registration.
    pub fn check(&self) -> Result<(), SignatureError> {
        decode_point(&self.0, SignatureError::InvalidKey, SignatureError::SmallOrderKey).map(|_| ())
    }
}

/// A digest of an outside document or piece of evidence, tagged by algorithm.
/// In JSON: `sha256:<64 hex>` or `blake3:<64 hex>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub enum Digest {
    Sha256(Hash32),
    Blake3(Hash32),
}

hex_bytes_type!(Hash32, 32, "32-byte hash value");

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sha256(hash) => write!(f, "sha256:{hash}"),
            Self::Blake3(hash) => write!(f, "blake3:{hash}"),
        }
    }
}

impl Digest {
    /// Parses `sha256:<hex>` or `blake3:<hex>`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.split_once(':') {
            Some(("sha256", hex)) => Hash32::from_hex(hex).map(Self::Sha256),
            Some(("blake3", hex)) => Hash32::from_hex(hex).map(Self::Blake3),
            _ => Err(format!("{text:?} is not a digest of the form sha256:<64 hex> or blake3:<64 hex>")),
        }
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            Self::serialize(self, serializer)
        }
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = Cow::<str>::deserialize(deserializer)?;
            Self::parse(&text).map_err(de::Error::custom)
        } else {
            Self::deserialize(deserializer)
        }
    }
}

impl JsonSchema for Digest {
    fn schema_name() -> Cow<'static, str> {
        "Digest".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "digest of an outside document: sha256:<64 hex> or blake3:<64 hex>",
            "type": "string",
            "pattern": "^(sha256|blake3):[0-9a-fA-F]{64}$"
        })
    }
}

/// Whether 32 bytes are the canonical encoding of a y coordinate (y < p = 2^255 - 19),
/// ignoring the sign bit of x. Checked on the bytes: compressing the decoded
/// point would cost a field inversion per check.
fn canonical_y(bytes: &[u8; 32]) -> bool {
    let mut y = *bytes;
    y[31] &= 0x7f;
    // y >= p only if y is one of 2^255 - 19 ..= 2^255 - 1: bytes ed ff .. ff 7f and up.
    let high_all_ones = y[1..31].iter().all(|&b| b == 0xff) && y[31] == 0x7f;
    !(high_all_ones && y[0] >= 0xed)
}

fn decode_point(
    bytes: &[u8; 32],
    invalid: SignatureError,
    small: SignatureError,
) -> Result<EdwardsPoint, SignatureError> {
    if !canonical_y(bytes) {
        return Err(invalid);
    }
    let point = CompressedEdwardsY(*bytes).decompress().ok_or(invalid)?;
    // x = 0 with the sign bit set is the other non-canonical spelling; both such
    // points (y = 1 and y = -1) have small order, so the next check refuses them.
    if point.is_small_order() {
        return Err(small);
    }
    Ok(point)
}

/// The parts of a signature that every check needs, decoded once.
struct Prepared {
    s: Scalar,
    r: EdwardsPoint,
    k: Scalar,
}

fn prepare_signature(key: &PublicKey, message: &[u8], signature: &Signature) -> Result<Prepared, SignatureError> {
    let mut s_bytes = [0u8; 32];
    s_bytes.copy_from_slice(&signature.0[32..]);
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)).ok_or(SignatureError::NonCanonicalS)?;
    let mut r_bytes = [0u8; 32];
    r_bytes.copy_from_slice(&signature.0[..32]);
    let r = decode_point(&r_bytes, SignatureError::InvalidR, SignatureError::SmallOrderR)?;
    let mut hasher = Sha512::new();
    hasher.update(r_bytes);
    hasher.update(key.0);
    hasher.update(message);
    let k = Scalar::from_bytes_mod_order_wide(&hasher.finalize().into());
    Ok(Prepared { s, r, k })
}

fn decode_key(key: &PublicKey) -> Result<EdwardsPoint, SignatureError> {
    decode_point(&key.0, SignatureError::InvalidKey, SignatureError::SmallOrderKey)
}

/// Verifies one signature under the acceptance rule.
pub fn verify(key: &PublicKey, message: &[u8], signature: &Signature) -> Result<(), SignatureError> {
    // Clause order matches the error precedence of the batch path.
    let prepared = prepare_signature(key, message, signature);
    if let Err(SignatureError::NonCanonicalS) = prepared {
        return Err(SignatureError::NonCanonicalS);
    }
    let a = decode_key(key)?;
    let p = prepared?;
    // [S]B - [k]A - R, then clear the cofactor.
    let check = EdwardsPoint::vartime_double_scalar_mul_basepoint(&-p.k, &a, &p.s) - p.r;
    if check.mul_by_cofactor().is_identity() {
        Ok(())
    } else {
        Err(SignatureError::Equation)
    }
}

/// One item of a batch: key, message, signature.
pub type BatchItem<'a> = (&'a PublicKey, &'a [u8], &'a Signature);

/// Verifies many signatures under the acceptance rule and returns one result
/// per item, identical to calling [`verify`] on each.
///
/// The fast path checks one random linear combination of all cofactored
/// equations; if it fails, every item is verified singly to find which.
/// Coefficients are 128-bit and derived from the whole batch with BLAKE3, so a
/// batch with a bad item passes with probability at most 2^-128 per item.
pub fn verify_batch(items: &[BatchItem<'_>]) -> Vec<Result<(), SignatureError>> {
    // Each distinct key is decoded once, and its terms are merged into one
    // point: sum_i z_i k_i A = (sum_i z_i k_i) A when the A_i are equal. In a
    // ledger a few agencies sign most events, so this shrinks the
    // multiscalar multiplication from 2n + 1 points towards n + 1.
    let mut keys: BTreeMap<[u8; 32], Result<(EdwardsPoint, Scalar), SignatureError>> = BTreeMap::new();
    let mut prepared: Vec<Result<Prepared, SignatureError>> = Vec::with_capacity(items.len());
    for (key, message, signature) in items {
        let decoded = keys.entry(key.0).or_insert_with(|| decode_key(key).map(|a| (a, Scalar::ZERO)));
        let result = match prepare_signature(key, message, signature) {
            // Precedence as in verify(): non-canonical S, then the key, then R.
            Err(SignatureError::NonCanonicalS) => Err(SignatureError::NonCanonicalS),
            result => match decoded {
                Err(error) => Err(*error),
                Ok(_) => result,
            },
        };
        prepared.push(result);
    }
    let mut transcript = blake3::Hasher::new_derive_key("docket v1 batch verification coefficients");
    for (key, message, signature) in items {
        transcript.update(&key.0);
        transcript.update(&signature.0);
        transcript.update(&(message.len() as u64).to_le_bytes());
        transcript.update(message);
    }
    let mut coefficients = transcript.finalize_xof();
    let mut b_coefficient = Scalar::ZERO;
    let mut r_terms = Vec::with_capacity(items.len());
    for ((key, _, _), prepared) in items.iter().zip(&prepared) {
        let Ok(p) = prepared else { continue };
        let mut z = [0u8; 32];
        coefficients.fill(&mut z[..16]);
        let z = Scalar::from_bytes_mod_order(z);
        b_coefficient += z * p.s;
        r_terms.push((z, p.r));
        if let Some(Ok((_, sum))) = keys.get_mut(&key.0) {
            *sum += z * p.k;
        }
    }
    let key_terms: Vec<&(EdwardsPoint, Scalar)> = keys.values().filter_map(|k| k.as_ref().ok()).collect();
    let scalars: Vec<Scalar> = std::iter::once(-b_coefficient)
        .chain(r_terms.iter().map(|(z, _)| *z))
        .chain(key_terms.iter().map(|(_, sum)| *sum))
        .collect();
    let points: Vec<EdwardsPoint> = std::iter::once(curve25519_dalek::constants::ED25519_BASEPOINT_POINT)
        .chain(r_terms.iter().map(|(_, r)| *r))
        .chain(key_terms.iter().map(|(a, _)| *a))
        .collect();
    let sum = EdwardsPoint::vartime_multiscalar_mul(&scalars, &points);
    if sum.mul_by_cofactor().is_identity() {
        return prepared.into_iter().map(|p| p.map(|_| ())).collect();
    }
    items.iter().map(|(key, message, signature)| verify(key, message, signature)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    #[test]
    fn accepts_what_dalek_signs_and_rejects_a_changed_message() {
        let signing = SigningKey::from_bytes(&[7u8; 32]);
        let key = PublicKey(signing.verifying_key().to_bytes());
        let signature = Signature(signing.sign(b"hello").to_bytes());
        assert_eq!(verify(&key, b"hello", &signature), Ok(()));
        assert_eq!(verify(&key, b"hellO", &signature), Err(SignatureError::Equation));
    }

    #[test]
    fn batch_reports_exactly_the_bad_items() {
        let keys: Vec<SigningKey> = (0..8u8).map(|i| SigningKey::from_bytes(&[i + 1; 32])).collect();
        let publics: Vec<PublicKey> = keys.iter().map(|k| PublicKey(k.verifying_key().to_bytes())).collect();
        let messages: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; 40]).collect();
        let mut signatures: Vec<Signature> =
            keys.iter().zip(&messages).map(|(k, m)| Signature(k.sign(m).to_bytes())).collect();
        let all = |signatures: &[Signature]| {
            let items: Vec<BatchItem<'_>> =
                publics.iter().zip(&messages).zip(signatures).map(|((k, m), s)| (k, m.as_slice(), s)).collect();
            verify_batch(&items)
        };
        assert!(all(&signatures).iter().all(Result::is_ok));
        signatures[3].0[5] ^= 1;
        signatures[6] = signatures[5];
        let results = all(&signatures);
        for (index, result) in results.iter().enumerate() {
            assert_eq!(result.is_err(), index == 3 || index == 6, "item {index}: {result:?}");
        }
    }
}
