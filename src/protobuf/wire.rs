//! Protobuf wire primitives: varints, tags and length-delimited fields.
//!
//! Shared with `openapi::v2proto`, which writes gnostic's OpenAPI v2 `Document` with them, and
//! `server::profiling`, which writes pprof's `Profile`.

use super::ProtobufError;

/// Wire type of varint fields.
pub(crate) const VARINT: u8 = 0;
/// Wire type of fixed 64-bit fields.
pub(crate) const FIXED64: u8 = 1;
/// Wire type of length-delimited fields.
pub(crate) const LEN: u8 = 2;
/// Wire type of fixed 32-bit fields.
pub(crate) const FIXED32: u8 = 5;

/// One field read from the wire.
pub(crate) enum WireValue<'a> {
    /// A varint (wire type 0).
    Varint(u64),
    /// Eight bytes (wire type 1), little-endian: a `double`.
    Fixed64(u64),
    /// A length-delimited payload (wire type 2).
    Bytes(&'a [u8]),
    /// Four bytes (wire type 5); no built-in field has this type, so only skipped.
    Fixed32,
}

/// Iterates over the `(field number, value)` pairs of an encoded message.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Reads `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    fn varint(&mut self) -> Result<u64, ProtobufError> {
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let (&byte, rest) = self.buf.split_first().ok_or(ProtobufError::UnexpectedEof)?;
            self.buf = rest;
            if shift == 63 && byte > 1 {
                return Err(ProtobufError::VarintOverflow);
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ProtobufError::VarintOverflow)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtobufError> {
        if self.buf.len() < n {
            return Err(ProtobufError::UnexpectedEof);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    /// The next field, or `None` at the end of the message.
    pub fn next_field(&mut self) -> Result<Option<(u32, WireValue<'a>)>, ProtobufError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number = u32::try_from(key >> 3).map_err(|_| ProtobufError::IllegalTag(key))?;
        if number == 0 {
            return Err(ProtobufError::IllegalTag(key));
        }
        let value = match (key & 7) as u8 {
            VARINT => WireValue::Varint(self.varint()?),
            FIXED64 => {
                let bytes: [u8; 8] = self.take(8)?.try_into().expect("took 8 bytes");
                WireValue::Fixed64(u64::from_le_bytes(bytes))
            }
            LEN => {
                let len =
                    usize::try_from(self.varint()?).map_err(|_| ProtobufError::UnexpectedEof)?;
                WireValue::Bytes(self.take(len)?)
            }
            FIXED32 => {
                self.take(4)?;
                WireValue::Fixed32
            }
            _ => return Err(ProtobufError::IllegalTag(key)),
        };
        Ok(Some((number, value)))
    }

    /// Reads one varint of a packed repeated field.
    pub fn packed_varint(&mut self) -> Result<Option<u64>, ProtobufError> {
        if self.buf.is_empty() {
            Ok(None)
        } else {
            self.varint().map(Some)
        }
    }
}

/// Appends a `double` field.
pub(crate) fn put_double_field(out: &mut Vec<u8>, number: u32, value: f64) {
    put_key(out, number, FIXED64);
    out.extend_from_slice(&value.to_bits().to_le_bytes());
}

/// Appends `value` as a varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends a field key.
pub(crate) fn put_key(out: &mut Vec<u8>, number: u32, wire_type: u8) {
    put_varint(out, (u64::from(number) << 3) | u64::from(wire_type));
}

/// Appends a length-delimited field.
pub(crate) fn put_bytes(out: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    put_key(out, number, LEN);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Appends a varint field.
pub(crate) fn put_varint_field(out: &mut Vec<u8>, number: u32, value: u64) {
    put_key(out, number, VARINT);
    put_varint(out, value);
}
