//! The sealed-text format and the AEAD around it.
//!
//! A sealed field is the text `pii:v1:<customer-id>:<field>:<base64url(nonce ‖ ciphertext ‖ tag)>`,
//! stored in the contract's existing Avro `string` fields (no schema change:
//! every reader still decodes every event). AES-256-GCM with a fresh random
//! 96-bit nonce per call; the associated data binds the ciphertext to its
//! customer and its logical field (`email`, `address.line1`…), so a sealed
//! value moved to another customer or relabelled as another field fails to
//! open. The field is a *logical* name rather than the record's field path
//! because the saga copies a shipping address from `OrderPlaced` into
//! `ScheduleShipment` as is.

use std::fmt;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// Every sealed value starts with this.
pub const PREFIX: &str = "pii:v1:";

/// Length of a data key (AES-256).
pub const KEY_LEN: usize = 32;

/// A customer's data key. Its `Debug` prints nothing of it, and there is no
/// `Display`: key material never reaches a log line.
#[derive(Clone, PartialEq, Eq)]
pub struct DataKey([u8; KEY_LEN]);

impl DataKey {
    /// 32 bytes from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, PiiError> {
        let mut bytes = [0u8; KEY_LEN];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| PiiError::Random)?;
        Ok(Self(bytes))
    }

    /// A key read back from the key store.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PiiError> {
        let bytes: [u8; KEY_LEN] = bytes.try_into().map_err(|_| PiiError::BadKey)?;
        Ok(Self(bytes))
    }

    /// The key material, for the key store only: greppable, so every use is
    /// deliberate.
    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }

    fn aead(&self) -> Result<LessSafeKey, PiiError> {
        UnboundKey::new(&AES_256_GCM, &self.0)
            .map(LessSafeKey::new)
            .map_err(|_| PiiError::BadKey)
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(***)")
    }
}

/// Why sealing or opening failed. Never carries key material or clear text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PiiError {
    #[error("not a sealed value (no `pii:v1:` prefix or a malformed one)")]
    Malformed,
    #[error("the sealed value does not open with this key, customer and field (tampered, moved or a wrong key)")]
    Unauthentic,
    #[error("a data key must be {KEY_LEN} bytes")]
    BadKey,
    #[error("the system random source failed")]
    Random,
    #[error("a customer id or field name may not contain `:` or be empty")]
    BadLabel,
}

/// The parts of a sealed value, before it is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed<'a> {
    pub customer_id: &'a str,
    pub field: &'a str,
    payload: &'a str,
}

impl<'a> Sealed<'a> {
    /// Parses `text` if it is a sealed value.
    pub fn parse(text: &'a str) -> Result<Self, PiiError> {
        let rest = text.strip_prefix(PREFIX).ok_or(PiiError::Malformed)?;
        let (head, payload) = rest.rsplit_once(':').ok_or(PiiError::Malformed)?;
        let (customer_id, field) = head.rsplit_once(':').ok_or(PiiError::Malformed)?;
        if customer_id.is_empty() || field.is_empty() || payload.is_empty() {
            return Err(PiiError::Malformed);
        }
        Ok(Self {
            customer_id,
            field,
            payload,
        })
    }
}

/// Whether `text` looks like a sealed value (a cheap prefix test).
pub fn is_sealed(text: &str) -> bool {
    text.starts_with(PREFIX)
}

fn aad(customer_id: &str, field: &str) -> Vec<u8> {
    format!("{PREFIX}{customer_id}:{field}").into_bytes()
}

fn label(value: &str) -> Result<(), PiiError> {
    if value.is_empty() || value.contains(':') {
        Err(PiiError::BadLabel)
    } else {
        Ok(())
    }
}

/// Seals `clear` for `customer_id`'s `field` with a fresh random nonce.
pub fn seal(
    key: &DataKey,
    customer_id: &str,
    field: &str,
    clear: &str,
) -> Result<String, PiiError> {
    label(customer_id)?;
    label(field)?;
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce).map_err(|_| PiiError::Random)?;
    let mut in_out = clear.as_bytes().to_vec();
    key.aead()?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad(customer_id, field)),
            &mut in_out,
        )
        .map_err(|_| PiiError::Random)?;
    let mut payload = nonce.to_vec();
    payload.extend_from_slice(&in_out);
    Ok(format!(
        "{PREFIX}{customer_id}:{field}:{}",
        URL_SAFE_NO_PAD.encode(payload)
    ))
}

/// Opens a sealed value with its customer's key. `expected_field`, when
/// given, must be the field the value was sealed for (a value copied into
/// the wrong column does not open).
pub fn open(
    key: &DataKey,
    sealed: &Sealed<'_>,
    expected_field: Option<&str>,
) -> Result<String, PiiError> {
    if expected_field.is_some_and(|f| f != sealed.field) {
        return Err(PiiError::Unauthentic);
    }
    let mut bytes = URL_SAFE_NO_PAD
        .decode(sealed.payload)
        .map_err(|_| PiiError::Malformed)?;
    if bytes.len() < NONCE_LEN {
        return Err(PiiError::Malformed);
    }
    let mut in_out = bytes.split_off(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(&bytes).map_err(|_| PiiError::Malformed)?;
    let clear = key
        .aead()?
        .open_in_place(
            nonce,
            Aad::from(aad(sealed.customer_id, sealed.field)),
            &mut in_out,
        )
        .map_err(|_| PiiError::Unauthentic)?;
    String::from_utf8(clear.to_vec()).map_err(|_| PiiError::Unauthentic)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]
mod tests {
    use super::*;

    fn key() -> DataKey {
        DataKey::generate().unwrap()
    }

    #[test]
    fn a_sealed_value_opens_to_its_clear_text() {
        let k = key();
        let s = seal(&k, "c-1", "email", "ada@example.com").unwrap();
        assert!(s.starts_with("pii:v1:c-1:email:"), "{s}");
        assert!(!s.contains("ada"), "no clear text in {s}");
        let parsed = Sealed::parse(&s).unwrap();
        assert_eq!(parsed.customer_id, "c-1");
        assert_eq!(open(&k, &parsed, Some("email")).unwrap(), "ada@example.com");
        assert_eq!(open(&k, &parsed, None).unwrap(), "ada@example.com");
    }

    #[test]
    fn every_seal_uses_a_fresh_nonce() {
        let k = key();
        let a = seal(&k, "c-1", "email", "ada@example.com").unwrap();
        let b = seal(&k, "c-1", "email", "ada@example.com").unwrap();
        assert_ne!(a, b);
        let nonce = |s: &str| {
            URL_SAFE_NO_PAD
                .decode(s.rsplit_once(':').unwrap().1)
                .unwrap()[..NONCE_LEN]
                .to_vec()
        };
        assert_ne!(nonce(&a), nonce(&b));
    }

    #[test]
    fn another_customer_or_field_does_not_open() {
        let k = key();
        let s = seal(&k, "c-1", "email", "ada@example.com").unwrap();
        // Relabelled as another customer's (same key, so only the AAD differs).
        let moved = s.replacen("pii:v1:c-1:", "pii:v1:c-2:", 1);
        assert_eq!(
            open(&k, &Sealed::parse(&moved).unwrap(), None),
            Err(PiiError::Unauthentic)
        );
        // Relabelled as another field.
        let relabelled = s.replacen(":email:", ":display_name:", 1);
        assert_eq!(
            open(&k, &Sealed::parse(&relabelled).unwrap(), None),
            Err(PiiError::Unauthentic)
        );
        // Found in a column that expects another field.
        assert_eq!(
            open(&k, &Sealed::parse(&s).unwrap(), Some("phone")),
            Err(PiiError::Unauthentic)
        );
    }

    #[test]
    fn a_tampered_or_foreign_ciphertext_does_not_open() {
        let k = key();
        let s = seal(&k, "c-1", "email", "ada@example.com").unwrap();
        let (head, payload) = s.rsplit_once(':').unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(payload).unwrap();
        let last = bytes.len() - 1;
        bytes[NONCE_LEN] ^= 1;
        let flipped = format!("{head}:{}", URL_SAFE_NO_PAD.encode(&bytes));
        assert_eq!(
            open(&k, &Sealed::parse(&flipped).unwrap(), None),
            Err(PiiError::Unauthentic)
        );
        bytes[NONCE_LEN] ^= 1;
        bytes[last] ^= 0x80;
        let bad_tag = format!("{head}:{}", URL_SAFE_NO_PAD.encode(&bytes));
        assert_eq!(
            open(&k, &Sealed::parse(&bad_tag).unwrap(), None),
            Err(PiiError::Unauthentic)
        );
        assert_eq!(
            open(&key(), &Sealed::parse(&s).unwrap(), None),
            Err(PiiError::Unauthentic)
        );
    }

    #[test]
    fn malformed_values_are_refused_without_panicking() {
        for bad in [
            "",
            "ada",
            "pii:v1:",
            "pii:v1:c-1",
            "pii:v1:c-1:email",
            "pii:v1::email:AAAA",
            "pii:v1:c:f:",
        ] {
            assert!(Sealed::parse(bad).is_err(), "{bad}");
        }
        let k = key();
        for bad in ["pii:v1:c-1:email:!!!", "pii:v1:c-1:email:AAAA"] {
            assert!(
                open(&k, &Sealed::parse(bad).unwrap(), None).is_err(),
                "{bad}"
            );
        }
        assert_eq!(seal(&k, "c:1", "email", "x"), Err(PiiError::BadLabel));
        assert_eq!(seal(&k, "c-1", "", "x"), Err(PiiError::BadLabel));
    }

    #[test]
    fn a_key_never_prints() {
        let k = DataKey::from_bytes(&[7u8; 32]).unwrap();
        assert_eq!(format!("{k:?}"), "DataKey(***)");
        assert_eq!(DataKey::from_bytes(&[1u8; 31]), Err(PiiError::BadKey));
    }
}
