//! The integrity codes in `ReservedCode1` and `ReservedCode2`: who made a label, and that its
//! fields were not edited since.
//!
//! Both codes are computed over the same bytes: the producer's code over
//! `Label 0x00 ContentProducer 0x00 ProduceID 0x00`, the propagator's over
//! `Label 0x00 ContentPropagator 0x00 PropagateID 0x00 ReservedCode1 0x00` (so it seals the
//! producer's code too). Three ways to compute them, picked with [`Sealer`]:
//!
//! | Scheme | Code | Who can check it |
//! |---|---|---|
//! | SM2 signature (GB/T 32918) over SM3 (GB/T 32905), user ID `1234567812345678` | 128 hex digits: `r ‖ s` | anyone with the signer's public key |
//! | HMAC-SM3 | 64 hex digits | whoever holds the shared key |
//! | HMAC-SHA-256 | 64 hex digits | whoever holds the shared key |
//!
//! Signatures are deterministic (the nonce from RFC 6979 with SM3), so the core needs no
//! randomness to sign; a new key's secret comes from the caller ([`SigningKey::from_secret`]).
//! Keys travel as PEM: PKCS#8 for the private key, SubjectPublicKeyInfo for the public key,
//! both with the SM2 curve OID `1.2.156.10197.1.301`.
//!
//! ```
//! use aigc_edge::label::seal::{Keyring, SigningKey, Sealer, CodeCheck, Scheme};
//! use aigc_edge::ImplicitLabel;
//! let key = SigningKey::from_secret(&[7; 32]).unwrap();
//! let mut label = ImplicitLabel::generated("001191110102MACQD9K64010000", "id-1").unwrap();
//! label.seal_producer(&Sealer::Sm2(&key));
//! assert_eq!(label.reserved_code1.len(), 128);
//! let public = key.public_key();
//! let keys = Keyring::new().with_public_key(public);
//! assert_eq!(label.check_codes(&keys)[0], CodeCheck::Verified(Scheme::Sm2));
//! label.produce_id = "id-2".into(); // edited: the signature no longer holds
//! assert_eq!(label.check_codes(&keys)[0], CodeCheck::DoesNotVerify);
//! ```

use core::fmt;

use super::hex;
use sm2::dsa::signature::{Signer, Verifier};
use sm2::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding};

/// The user ID (distinguishing identifier) GB/T 32918 and GM/T 0009 name as the default.
pub const DEFAULT_USER_ID: &str = "1234567812345678";

/// A key, PEM or signature that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealError(String);

impl fmt::Display for SealError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SealError {}

/// An SM2 private key, for signing labels.
#[derive(Clone)]
pub struct SigningKey {
    secret: sm2::SecretKey,
    key: sm2::dsa::SigningKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the secret: configurations and errors are printed and logged.
        write!(f, "SigningKey({})", self.public_key().to_hex())
    }
}

impl SigningKey {
    /// The key whose secret scalar is `secret` (32 bytes, big-endian; from a random source for
    /// a new key). Zero and values not below the curve order are refused.
    pub fn from_secret(secret: &[u8; 32]) -> Result<SigningKey, SealError> {
        let secret = sm2::SecretKey::from_slice(secret)
            .map_err(|_| SealError("SM2 secret must be a non-zero number below the curve order".into()))?;
        SigningKey::new(secret)
    }

    /// A new key, its secret drawn by `fill` from the host's random source (drawn again in the
    /// astronomically rare case of a value outside [1, order)).
    pub fn generate<E>(mut fill: impl FnMut(&mut [u8; 32]) -> Result<(), E>) -> Result<SigningKey, E> {
        loop {
            let mut secret = [0u8; 32];
            fill(&mut secret)?;
            if let Ok(key) = SigningKey::from_secret(&secret) {
                return Ok(key);
            }
        }
    }

    fn new(secret: sm2::SecretKey) -> Result<SigningKey, SealError> {
        let key =
            sm2::dsa::SigningKey::new(DEFAULT_USER_ID, &secret).map_err(|e| SealError(format!("SM2 key: {e}")))?;
        Ok(SigningKey { secret, key })
    }

    /// A PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`) on the SM2 curve.
    pub fn from_pem(pem: &str) -> Result<SigningKey, SealError> {
        let secret = sm2::SecretKey::from_pkcs8_pem(pem.trim())
            .map_err(|e| SealError(format!("not a PKCS#8 PEM SM2 private key: {e}")))?;
        SigningKey::new(secret)
    }

    /// The key as PKCS#8 PEM.
    pub fn to_pem(&self) -> String {
        self.secret.to_pkcs8_pem(LineEnding::LF).map(|pem| pem.as_str().to_string()).unwrap_or_default()
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey { public: self.secret.public_key(), key: self.key.verifying_key().clone() }
    }

    fn sign(&self, message: &[u8]) -> String {
        match Signer::<sm2::dsa::Signature>::try_sign(&self.key, message) {
            Ok(signature) => hex(&signature.to_bytes()),
            Err(_) => String::new(),
        }
    }
}

/// An SM2 public key, for checking signed labels.
#[derive(Clone, Debug)]
pub struct PublicKey {
    public: sm2::PublicKey,
    key: sm2::dsa::VerifyingKey,
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &PublicKey) -> bool {
        self.public == other.public
    }
}

impl Eq for PublicKey {}

impl PublicKey {
    /// A SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`) on the SM2 curve.
    pub fn from_pem(pem: &str) -> Result<PublicKey, SealError> {
        let public = sm2::PublicKey::from_public_key_pem(pem.trim())
            .map_err(|e| SealError(format!("not a SubjectPublicKeyInfo PEM SM2 public key: {e}")))?;
        PublicKey::new(public)
    }

    /// An uncompressed SEC1 point as hex (`04 ‖ x ‖ y`, 130 digits), or `x ‖ y` (128 digits),
    /// the form many SM2 tools print.
    pub fn from_hex(text: &str) -> Result<PublicKey, SealError> {
        let text = text.trim();
        let bytes = unhex(text).ok_or_else(|| SealError("public key is not hex".into()))?;
        let bytes = if bytes.len() == 64 { [&[4u8][..], &bytes].concat() } else { bytes };
        let public =
            sm2::PublicKey::from_sec1_bytes(&bytes).map_err(|_| SealError("not a point on the SM2 curve".into()))?;
        PublicKey::new(public)
    }

    fn new(public: sm2::PublicKey) -> Result<PublicKey, SealError> {
        let key =
            sm2::dsa::VerifyingKey::new(DEFAULT_USER_ID, public).map_err(|e| SealError(format!("SM2 key: {e}")))?;
        Ok(PublicKey { public, key })
    }

    /// The key as SubjectPublicKeyInfo PEM.
    pub fn to_pem(&self) -> String {
        self.public.to_public_key_pem(LineEnding::LF).unwrap_or_default()
    }

    /// The uncompressed point as hex: `04 ‖ x ‖ y`.
    pub fn to_hex(&self) -> String {
        hex(&self.key.to_sec1_bytes())
    }

    fn verifies(&self, message: &[u8], code: &str) -> bool {
        let Some(bytes) = unhex(code) else { return false };
        match sm2::dsa::Signature::from_slice(&bytes) {
            Ok(signature) => self.key.verify(message, &signature).is_ok(),
            Err(_) => false,
        }
    }
}

/// How [`ImplicitLabel::seal_producer`](super::ImplicitLabel::seal_producer) and
/// [`seal_propagator`](super::ImplicitLabel::seal_propagator) compute a code.
#[derive(Clone, Copy, Debug)]
pub enum Sealer<'k> {
    /// An SM2 signature anyone holding the public key can check.
    Sm2(&'k SigningKey),
    /// HMAC-SM3 under a shared key.
    HmacSm3(&'k [u8]),
    /// HMAC-SHA-256 under a shared key.
    HmacSha256(&'k [u8]),
}

impl Sealer<'_> {
    /// The code over `message`, as lowercase hex.
    pub(crate) fn code(&self, message: &[u8]) -> String {
        match self {
            Sealer::Sm2(key) => key.sign(message),
            Sealer::HmacSm3(key) => keyed_hash::<sm3::Sm3>(key, message),
            Sealer::HmacSha256(key) => keyed_hash::<sha2::Sha256>(key, message),
        }
    }
}

fn keyed_hash<D>(key: &[u8], message: &[u8]) -> String
where
    D: hmac::digest::Digest + hmac::digest::block_api::BlockSizeUser + Clone,
    hmac::SimpleHmac<D>: hmac::KeyInit + hmac::Mac,
{
    use hmac::{KeyInit, Mac};
    match <hmac::SimpleHmac<D> as KeyInit>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(message);
            hex(&mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

/// Which scheme made a code that verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// SM2 signature over SM3.
    Sm2,
    /// HMAC-SM3.
    HmacSm3,
    /// HMAC-SHA-256.
    HmacSha256,
}

impl Scheme {
    /// Lowercase name for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Sm2 => "sm2",
            Scheme::HmacSm3 => "hmac-sm3",
            Scheme::HmacSha256 => "hmac-sha256",
        }
    }
}

/// What checking one reserved code found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeCheck {
    /// The field is empty: nothing was sealed.
    Empty,
    /// A key in the keyring made it.
    Verified(Scheme),
    /// The keyring has a key for this kind of code and none makes it: the fields were edited
    /// or the code forged.
    DoesNotVerify,
    /// The keyring has no key that could check it (a signature and no public key, or an HMAC
    /// and no shared key).
    Unchecked,
}

impl CodeCheck {
    /// Lowercase description for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            CodeCheck::Empty => "empty",
            CodeCheck::Verified(Scheme::Sm2) => "verified: sm2",
            CodeCheck::Verified(Scheme::HmacSm3) => "verified: hmac-sm3",
            CodeCheck::Verified(Scheme::HmacSha256) => "verified: hmac-sha256",
            CodeCheck::DoesNotVerify => "does not verify",
            CodeCheck::Unchecked => "not checked: no key for it",
        }
    }
}

/// The keys a verifier holds: shared HMAC keys, and SM2 public keys — for any party, or for
/// one producer or propagator code.
#[derive(Clone, Debug, Default)]
pub struct Keyring {
    shared: Vec<Vec<u8>>,
    public: Vec<(Option<String>, PublicKey)>,
}

impl Keyring {
    /// No keys: every code is [`CodeCheck::Unchecked`].
    pub fn new() -> Keyring {
        Keyring::default()
    }

    /// Adds a shared key (checks HMAC-SM3 and HMAC-SHA-256 codes).
    pub fn with_shared_key(mut self, key: &[u8]) -> Keyring {
        self.shared.push(key.to_vec());
        self
    }

    /// Adds a public key that may have signed for any party.
    pub fn with_public_key(mut self, key: PublicKey) -> Keyring {
        self.public.push((None, key));
        self
    }

    /// Adds the public key of the party whose code (`ContentProducer` or `ContentPropagator`)
    /// is `party`: its signatures are checked with this key only.
    pub fn with_party_key(mut self, party: &str, key: PublicKey) -> Keyring {
        self.public.push((Some(party.to_string()), key));
        self
    }

    /// No key at all.
    pub fn is_empty(&self) -> bool {
        self.shared.is_empty() && self.public.is_empty()
    }

    /// Checks `code` over `message`, made by `party`.
    pub(crate) fn check(&self, party: &str, message: &[u8], code: &str) -> CodeCheck {
        if code.is_empty() {
            return CodeCheck::Empty;
        }
        if code.len() == 128 {
            let named: Vec<&PublicKey> =
                self.public.iter().filter(|(p, _)| p.as_deref() == Some(party)).map(|(_, k)| k).collect();
            let keys: Vec<&PublicKey> = if named.is_empty() {
                self.public.iter().filter(|(p, _)| p.is_none()).map(|(_, k)| k).collect()
            } else {
                named
            };
            if keys.is_empty() {
                return CodeCheck::Unchecked;
            }
            return if keys.iter().any(|k| k.verifies(message, code)) {
                CodeCheck::Verified(Scheme::Sm2)
            } else {
                CodeCheck::DoesNotVerify
            };
        }
        if self.shared.is_empty() {
            return if self.public.is_empty() { CodeCheck::Unchecked } else { CodeCheck::DoesNotVerify };
        }
        for key in &self.shared {
            for (scheme, sealer) in
                [(Scheme::HmacSm3, Sealer::HmacSm3(key)), (Scheme::HmacSha256, Sealer::HmacSha256(key))]
            {
                if sealer.code(message) == code {
                    return CodeCheck::Verified(scheme);
                }
            }
        }
        CodeCheck::DoesNotVerify
    }
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 == 1 || !text.is_ascii() {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GB/T 32905 appendix A example 1: SM3("abc").
    #[test]
    fn sm3_known_answer() {
        use sm3::Digest;
        assert_eq!(hex(&sm3::Sm3::digest(b"abc")), "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0");
    }

    #[test]
    fn keys_round_trip_through_pem_and_hex() {
        let key = SigningKey::from_secret(&[9; 32]).unwrap();
        let pem = key.to_pem();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{pem}");
        let again = SigningKey::from_pem(&pem).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        let public = key.public_key().to_pem();
        assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"));
        assert_eq!(PublicKey::from_pem(&public).unwrap(), key.public_key());
        let point = key.public_key().to_hex();
        assert_eq!(point.len(), 130);
        assert_eq!(PublicKey::from_hex(&point[2..]).unwrap(), key.public_key());
        assert!(!format!("{key:?}").contains(&hex(&[9; 32])), "Debug never shows the secret");
        let mut draws = [[0u8; 32], [5; 32]].into_iter();
        let drawn = SigningKey::generate(|s| draws.next().map(|d| *s = d).ok_or(())).unwrap();
        assert_eq!(drawn.public_key(), SigningKey::from_secret(&[5; 32]).unwrap().public_key(), "zero is drawn again");
        for bad in ["", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"] {
            assert!(SigningKey::from_pem(bad).unwrap_err().to_string().starts_with("not a PKCS#8 PEM SM2 private key"));
        }
        assert!(SigningKey::from_secret(&[0; 32]).is_err());
        assert!(SigningKey::from_secret(&[0xFF; 32]).is_err(), "not below the order");
        assert!(PublicKey::from_hex("04abcd").is_err());
    }

    #[test]
    fn codes_table() {
        let signer = SigningKey::from_secret(&[3; 32]).unwrap();
        let other = SigningKey::from_secret(&[4; 32]).unwrap();
        let message = b"1\0P\0id\0";
        let sm2 = Sealer::Sm2(&signer).code(message);
        let sm3 = Sealer::HmacSm3(b"k").code(message);
        let sha = Sealer::HmacSha256(b"k").code(message);
        assert_eq!(sm2, Sealer::Sm2(&signer).code(message), "deterministic");
        assert_ne!(sm3, sha);
        let any = Keyring::new().with_public_key(signer.public_key());
        let wrong = Keyring::new().with_public_key(other.public_key());
        let named = Keyring::new().with_party_key("P", signer.public_key()).with_public_key(other.public_key());
        let misnamed = Keyring::new().with_party_key("P", other.public_key()).with_public_key(signer.public_key());
        let shared = Keyring::new().with_shared_key(b"k");
        let cases: [(&Keyring, &str, CodeCheck); 11] = [
            (&any, &sm2, CodeCheck::Verified(Scheme::Sm2)),
            (&wrong, &sm2, CodeCheck::DoesNotVerify),
            (&named, &sm2, CodeCheck::Verified(Scheme::Sm2)),
            // The producer's own key is the only one that counts for it.
            (&misnamed, &sm2, CodeCheck::DoesNotVerify),
            (&shared, &sm2, CodeCheck::Unchecked),
            (&shared, &sm3, CodeCheck::Verified(Scheme::HmacSm3)),
            (&shared, &sha, CodeCheck::Verified(Scheme::HmacSha256)),
            (&any, &sha, CodeCheck::DoesNotVerify),
            (&Keyring::new(), &sha, CodeCheck::Unchecked),
            (&shared, "", CodeCheck::Empty),
            (&any, &"0".repeat(128), CodeCheck::DoesNotVerify),
        ];
        for (i, (keys, code, want)) in cases.into_iter().enumerate() {
            assert_eq!(keys.check("P", message, code), want, "case {i}");
        }
        let mut tampered = sm2.clone().into_bytes();
        tampered[5] ^= 1;
        assert_eq!(any.check("P", message, core::str::from_utf8(&tampered).unwrap()), CodeCheck::DoesNotVerify);
    }
}
