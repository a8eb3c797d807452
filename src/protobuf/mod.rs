//! The Kubernetes protobuf encoding (`application/vnd.kubernetes.protobuf`) of built-in kinds:
//! request and response bodies, and objects in etcd as kube-apiserver stores them.
//!
//! A body is the magic `k8s\0` followed by a `runtime.Unknown` whose `typeMeta` names the kind
//! and whose `raw` is the object's message. Objects are read into, and written from, the JSON
//! form the JSON API carries, driven by a generated wire schema (`schema.rs`, made by
//! `scripts/gen_protobuf_schema.py`) rather than by generated Rust types: kubeboot works on
//! `serde_json::Value`, so a table of field numbers, JSON names and types is all it needs.
//! Responses use [`encode`]; watch streams [`encode_watch_frame`] (upstream's length-delimited
//! framer around bare `metav1.WatchEvent`s). Nested messages are written in place, without
//! buffers of their own.
//!
//! Decoding follows what upstream's Go types then serialise as JSON: zero scalars are dropped
//! (Go's `omitempty`, as non-pointer fields are always on the wire) except in required fields
//! and in Go pointer fields whose zero means something (`replicas: 0`); zero `metav1.Time`s
//! become `null`; embedded structs are inlined; fields unknown to the schema are skipped.

mod formats;
#[rustfmt::skip]
mod schema;
mod schema_types;
pub(crate) mod wire;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use schema::{KINDS, MESSAGES};
use schema_types::{Field, Label, Message, Special, Ty};
use serde_json::{Map, Value};
use wire::{Reader, WireValue};

/// The media type of Kubernetes protobuf bodies.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The magic prefix of every Kubernetes protobuf body.
const MAGIC: &[u8; 4] = b"k8s\0";

/// Why a body could not be decoded or a value encoded.
///
/// Every decoding error is the client's fault: the REST layer answers it with 400 Bad Request
/// carrying the `Display` text, as upstream's `errors.NewBadRequest(err.Error())` does.
#[derive(Debug, thiserror::Error)]
pub enum ProtobufError {
    /// The body lacks the `k8s\0` prefix.
    #[error(
        "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]"
    )]
    MissingMagic,
    /// The message ends inside a field.
    #[error("proto: unexpected EOF")]
    UnexpectedEof,
    /// A varint is longer than 64 bits.
    #[error("proto: integer overflow")]
    VarintOverflow,
    /// A field key has number 0 or an unsupported wire type (groups).
    #[error("proto: illegal tag {} (wire type {})", .0 >> 3, .0 & 7)]
    IllegalTag(u64),
    /// A field has a wire type its schema type cannot have.
    #[error("proto: {message}.{field}: wrong wireType")]
    WrongWireType {
        /// Proto name of the message.
        message: &'static str,
        /// JSON name of the field.
        field: &'static str,
    },
    /// A string field is not UTF-8.
    #[error("proto: {message}.{field}: invalid UTF-8")]
    InvalidUtf8 {
        /// Proto name of the message.
        message: &'static str,
        /// JSON name of the field.
        field: &'static str,
    },
    /// `runtime.Unknown.contentEncoding` is set; upstream supports none.
    #[error("unsupported content encoding {0:?}")]
    ContentEncoding(String),
    /// No protobuf message is known for the apiVersion and kind.
    #[error("no kind {kind:?} is registered for version {api_version:?}")]
    UnknownKind {
        /// The object's apiVersion.
        api_version: String,
        /// The object's kind.
        kind: String,
    },
    /// Embedded JSON (`RawExtension`, `FieldsV1`) does not parse.
    #[error("invalid embedded JSON: {0}")]
    EmbeddedJson(#[source] serde_json::Error),
    /// A JSON value does not fit the schema of the field it is in.
    #[error("{path}: {reason}")]
    InvalidValue {
        /// Where the value is, as a JSON path (`spec.replicas`).
        path: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Result of this module.
pub type Result<T, E = ProtobufError> = std::result::Result<T, E>;

/// Whether `bytes` start with the magic of a Kubernetes protobuf body; a JSON object never
/// does, so stored values of either encoding can be told apart.
pub fn is_protobuf(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

/// Decodes a Kubernetes protobuf body (4-byte magic `k8s\0` + `runtime.Unknown{typeMeta{apiVersion,kind}, raw, contentEncoding, contentType}`) of a built-in kind into its JSON form (with apiVersion and kind set).
///
/// Errors map to 400 Bad Request with their message (see [`ProtobufError`]).
pub fn decode(body: &[u8]) -> Result<Value> {
    let rest = body
        .strip_prefix(MAGIC)
        .ok_or(ProtobufError::MissingMagic)?;
    let (mut api_version, mut kind, mut raw, mut encoding) =
        (String::new(), String::new(), &[][..], String::new());
    let mut reader = Reader::new(rest);
    while let Some((number, value)) = reader.next_field()? {
        match (number, value) {
            (1, WireValue::Bytes(type_meta)) => {
                let mut reader = Reader::new(type_meta);
                while let Some((number, value)) = reader.next_field()? {
                    match (number, value) {
                        (1, WireValue::Bytes(b)) => {
                            api_version = utf8(b, "runtime.TypeMeta", "apiVersion")?
                        }
                        (2, WireValue::Bytes(b)) => kind = utf8(b, "runtime.TypeMeta", "kind")?,
                        _ => {}
                    }
                }
            }
            (2, WireValue::Bytes(b)) => raw = b,
            (3, WireValue::Bytes(b)) => encoding = utf8(b, "runtime.Unknown", "contentEncoding")?,
            _ => {}
        }
    }
    if !encoding.is_empty() {
        return Err(ProtobufError::ContentEncoding(encoding));
    }
    let message = lookup(&api_version, &kind)?;
    let mut object = decode_object(raw, message)?;
    object.insert("apiVersion".into(), Value::String(api_version));
    object.insert("kind".into(), Value::String(kind));
    Ok(Value::Object(object))
}

/// Encodes the JSON form of a built-in object (apiVersion/kind set) as a protobuf body; also lists (kind FooList) and metav1.Status.
pub fn encode(value: &Value) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    encode_into(&mut out, value)?;
    Ok(out)
}

/// [`encode`], appending to `out` (left holding a partial body on error).
pub fn encode_into(out: &mut Vec<u8>, value: &Value) -> Result<()> {
    let field = |name: &str| value.get(name).and_then(Value::as_str).unwrap_or_default();
    let (api_version, kind) = (field("apiVersion"), field("kind"));
    let message = lookup(api_version, kind)?;
    out.extend_from_slice(MAGIC);
    put_message(out, 1, |out| {
        wire::put_bytes(out, 1, api_version.as_bytes());
        wire::put_bytes(out, 2, kind.as_bytes());
        Ok(())
    })?;
    put_message(out, 2, |out| {
        encode_message(out, value, message, Path::Root)
    })?;
    // Go always writes the (empty) contentEncoding and contentType; so do we, byte for byte.
    wire::put_bytes(out, 3, b"");
    wire::put_bytes(out, 4, b"");
    Ok(())
}

/// Whether built-in objects of `kind` in `api_version` have a protobuf message (custom
/// resources and kinds outside the schema do not).
pub fn supports(api_version: &str, kind: &str) -> bool {
    lookup(api_version, kind).is_ok()
}

/// Appends one frame of a protobuf watch stream (`application/vnd.kubernetes.protobuf;stream=watch`)
/// as upstream's length-delimited framer writes it: a 4-byte big-endian length, then a bare
/// (unprefixed) `metav1.WatchEvent{type, object: RawExtension{raw: <the object's protobuf body>}}`.
pub fn encode_watch_frame(out: &mut Vec<u8>, event_type: &str, object: &Value) -> Result<()> {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    wire::put_bytes(out, 1, event_type.as_bytes());
    put_message(out, 2, |out| {
        put_message(out, 1, |out| encode_into(out, object))
    })?;
    let len = u32::try_from(out.len() - start - 4)
        .map_err(|_| invalid(&Path::Root, "watch event larger than 4 GiB"))?;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// Decodes one frame's payload (without its length) of a protobuf watch stream into the
/// event type and the object's JSON form; the inverse of [`encode_watch_frame`].
pub fn decode_watch_event(frame: &[u8]) -> Result<(String, Value)> {
    let (mut event_type, mut raw) = (String::new(), &[][..]);
    let mut reader = Reader::new(frame);
    while let Some((number, value)) = reader.next_field()? {
        match (number, value) {
            (1, WireValue::Bytes(b)) => event_type = utf8(b, "metav1.WatchEvent", "type")?,
            (2, WireValue::Bytes(extension)) => {
                let mut reader = Reader::new(extension);
                while let Some((number, value)) = reader.next_field()? {
                    if let (1, WireValue::Bytes(b)) = (number, value) {
                        raw = b;
                    }
                }
            }
            _ => {}
        }
    }
    Ok((event_type, decode(raw)?))
}

/// Splits a protobuf watch stream into its frames' payloads; a trailing partial frame is an error.
pub fn split_watch_frames(mut stream: &[u8]) -> Result<Vec<&[u8]>> {
    let mut frames = Vec::new();
    while !stream.is_empty() {
        let (len, rest) = stream
            .split_first_chunk::<4>()
            .ok_or(ProtobufError::UnexpectedEof)?;
        let len = u32::from_be_bytes(*len) as usize;
        if rest.len() < len {
            return Err(ProtobufError::UnexpectedEof);
        }
        let (frame, rest) = rest.split_at(len);
        frames.push(frame);
        stream = rest;
    }
    Ok(frames)
}

/// Appends field `number` as a length-delimited message whose bytes `body` appends, writing
/// them in place: one length byte is reserved and, for bodies of 128 bytes or more, the
/// varint's further bytes are spliced in after, so nested messages need no buffers of their own.
fn put_message(
    out: &mut Vec<u8>,
    number: u32,
    body: impl FnOnce(&mut Vec<u8>) -> Result<()>,
) -> Result<()> {
    wire::put_key(out, number, wire::LEN);
    let at = out.len();
    out.push(0);
    body(out)?;
    let len = out.len() - at - 1;
    if len < 0x80 {
        out[at] = len as u8;
    } else {
        let mut varint = [0u8; 10];
        let (mut n, mut v) = (0, len as u64);
        while v >= 0x80 {
            varint[n] = (v as u8) | 0x80;
            v >>= 7;
            n += 1;
        }
        varint[n] = v as u8;
        out[at] = varint[0];
        out.splice(at + 1..at + 1, varint[1..=n].iter().copied());
    }
    Ok(())
}

/// Where a value is, for error messages; built only when an error is reported.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Field(&'a Path<'a>, &'static str),
    Index(&'a Path<'a>, usize),
    Key(&'a Path<'a>, &'a str),
}

impl std::fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Field(Path::Root, name) => f.write_str(name),
            Path::Field(parent, name) => write!(f, "{parent}.{name}"),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
            Path::Key(parent, key) => write!(f, "{parent}.{key}"),
        }
    }
}

/// The message of a kind; meta kinds (Status, DeleteOptions, …) match any apiVersion.
fn lookup(api_version: &str, kind: &str) -> Result<&'static Message> {
    KINDS
        .iter()
        .find(|(v, k, _)| *k == kind && *v == api_version)
        .or_else(|| KINDS.iter().find(|(v, k, _)| *k == kind && *v == "*"))
        .map(|&(_, _, i)| &MESSAGES[usize::from(i)])
        .ok_or_else(|| ProtobufError::UnknownKind {
            api_version: api_version.into(),
            kind: kind.into(),
        })
}

fn utf8(bytes: &[u8], message: &'static str, field: &'static str) -> Result<String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| ProtobufError::InvalidUtf8 { message, field })
}

fn invalid(path: &Path<'_>, reason: impl Into<String>) -> ProtobufError {
    let path = path.to_string();
    ProtobufError::InvalidValue {
        path: if path.is_empty() {
            "<root>".into()
        } else {
            path
        },
        reason: reason.into(),
    }
}

// ---- decoding ----

/// Decodes an ordinary message into a JSON object.
fn decode_object(buf: &[u8], message: &'static Message) -> Result<Map<String, Value>> {
    let mut object = Map::new();
    let mut reader = Reader::new(buf);
    while let Some((number, value)) = reader.next_field()? {
        // Fields unknown to the schema (newer than the served version) are skipped, as Go does.
        let Some(field) = message.fields.iter().find(|f| f.number == number) else {
            continue;
        };
        match field.label {
            Label::Single => {
                let value = decode_value(value, field, message)?;
                if field.keep_zero || !is_zero(&value, field.ty) {
                    object.insert(field.name.into(), value);
                } else {
                    object.remove(field.name);
                }
            }
            Label::Repeated => {
                let items = object
                    .entry(field.name)
                    .or_insert_with(|| Value::Array(Vec::new()));
                let Value::Array(items) = items else {
                    unreachable!("repeated fields hold arrays")
                };
                match (value, field.ty) {
                    // Packed scalars (proto3 style); Go writes them unpacked, but both are valid.
                    (WireValue::Bytes(packed), Ty::Int32 | Ty::Int64 | Ty::Bool) => {
                        let mut reader = Reader::new(packed);
                        while let Some(v) = reader.packed_varint()? {
                            items.push(decode_value(WireValue::Varint(v), field, message)?);
                        }
                    }
                    (value, _) => items.push(decode_value(value, field, message)?),
                }
            }
            Label::Map => {
                let WireValue::Bytes(entry) = value else {
                    return Err(ProtobufError::WrongWireType {
                        message: message.name,
                        field: field.name,
                    });
                };
                let (mut key, mut entry_value) = (String::new(), None);
                let mut reader = Reader::new(entry);
                while let Some((number, value)) = reader.next_field()? {
                    match number {
                        1 => key = decode_string(value, message, field)?,
                        2 => entry_value = Some(decode_value(value, field, message)?),
                        _ => {}
                    }
                }
                let entry_value = match entry_value {
                    Some(v) => v,
                    None => {
                        decode_value(WireValue::Bytes(&[]), field, message).unwrap_or(Value::Null)
                    }
                };
                let map = object
                    .entry(field.name)
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(map) = map {
                    map.insert(key, entry_value);
                }
            }
            Label::Inline => {
                let (WireValue::Bytes(inner), Ty::Message(i)) = (value, field.ty) else {
                    return Err(ProtobufError::WrongWireType {
                        message: message.name,
                        field: field.name,
                    });
                };
                object.extend(decode_object(inner, &MESSAGES[usize::from(i)])?);
            }
        }
    }
    Ok(object)
}

/// Whether a decoded single value is Go's zero value, which `omitempty` drops.
fn is_zero(value: &Value, ty: Ty) -> bool {
    // `additionalProperties: false` is a message Go always writes when set.
    if let Ty::Message(i) = ty
        && MESSAGES[usize::from(i)].special == Special::SchemaOrBool
    {
        return false;
    }
    match value {
        Value::String(s) => s.is_empty() && ty == Ty::String,
        Value::Bool(b) => !b,
        // An IntOrString's zero is the int 0; a plain number's zero is 0.
        Value::Number(n) => n.as_f64() == Some(0.0),
        _ => false,
    }
}

fn decode_string(
    value: WireValue<'_>,
    message: &'static Message,
    field: &'static Field,
) -> Result<String> {
    match value {
        WireValue::Bytes(b) => utf8(b, message.name, field.name),
        _ => Err(ProtobufError::WrongWireType {
            message: message.name,
            field: field.name,
        }),
    }
}

/// Decodes one value of `field` (an element for repeated fields, the value for maps).
fn decode_value(
    value: WireValue<'_>,
    field: &'static Field,
    message: &'static Message,
) -> Result<Value> {
    let wrong = || ProtobufError::WrongWireType {
        message: message.name,
        field: field.name,
    };
    Ok(match (field.ty, value) {
        (Ty::String, value) => Value::String(decode_string(value, message, field)?),
        (Ty::Bytes, WireValue::Bytes(b)) => Value::String(BASE64.encode(b)),
        (Ty::Bool, WireValue::Varint(v)) => Value::Bool(v != 0),
        (Ty::Int32, WireValue::Varint(v)) => Value::from(v as i32),
        (Ty::Int64, WireValue::Varint(v)) => Value::from(v as i64),
        (Ty::Double, WireValue::Fixed64(bits)) => float_value(f64::from_bits(bits)),
        (Ty::Message(i), WireValue::Bytes(b)) => decode_message(b, &MESSAGES[usize::from(i)])?,
        _ => return Err(wrong()),
    })
}

/// A float as Go's encoding/json writes a float64: whole values without a fraction.
fn float_value(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        Value::from(f as i64)
    } else {
        serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
    }
}

/// The message of field `number` of `message`.
fn field_message(message: &'static Message, number: u32) -> &'static Message {
    match message
        .fields
        .iter()
        .find(|f| f.number == number)
        .map(|f| f.ty)
    {
        Some(Ty::Message(i)) => &MESSAGES[usize::from(i)],
        _ => unreachable!("{}: field {number} is a message", message.name),
    }
}

/// Decodes a message into its JSON form, special or not.
fn decode_message(buf: &[u8], message: &'static Message) -> Result<Value> {
    if message.special == Special::None {
        return decode_object(buf, message).map(Value::Object);
    }
    // Special messages are small; collect their fields by number.
    let mut fields: Vec<(u32, WireValue<'_>)> = Vec::new();
    let mut reader = Reader::new(buf);
    while let Some(field) = reader.next_field()? {
        fields.push(field);
    }
    let varint = |n: u32| {
        fields.iter().rev().find_map(|(k, v)| match v {
            WireValue::Varint(x) if *k == n => Some(*x),
            _ => None,
        })
    };
    let bytes = |n: u32| {
        fields.iter().rev().find_map(|(k, v)| match v {
            WireValue::Bytes(b) if *k == n => Some(*b),
            _ => None,
        })
    };
    let string = |n: u32| {
        bytes(n)
            .map(|b| utf8(b, message.name, "string"))
            .transpose()
    };
    Ok(match message.special {
        Special::None => unreachable!("handled above"),
        // Go's Time ignores nanos (JSON carries seconds) and treats an empty message as zero.
        Special::Time if buf.is_empty() => Value::Null,
        Special::Time => {
            Value::String(formats::format_rfc3339(varint(1).unwrap_or(0) as i64, None))
        }
        Special::MicroTime if buf.is_empty() => Value::Null,
        Special::MicroTime => {
            let micros = (varint(2).unwrap_or(0) as i32).clamp(0, 999_999_999) as u32 / 1000;
            Value::String(formats::format_rfc3339(
                varint(1).unwrap_or(0) as i64,
                Some(micros),
            ))
        }
        Special::Duration => Value::String(formats::format_duration(varint(1).unwrap_or(0) as i64)),
        Special::Quantity => Value::String(
            string(1)?
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "0".into()),
        ),
        Special::IntOrString if varint(1) == Some(1) => {
            Value::String(string(3)?.unwrap_or_default())
        }
        Special::IntOrString => Value::from(varint(2).unwrap_or(0) as i32),
        Special::RawExtension | Special::RawJson => match bytes(1) {
            None | Some([]) => Value::Null,
            Some(raw) if raw.starts_with(MAGIC) => decode(raw)?,
            Some(raw) => serde_json::from_slice(raw).map_err(ProtobufError::EmbeddedJson)?,
        },
        Special::StringArray => Value::Array(
            fields
                .iter()
                .filter_map(|(k, v)| match v {
                    WireValue::Bytes(b) if *k == 1 => {
                        Some(utf8(b, message.name, "items").map(Value::String))
                    }
                    _ => None,
                })
                .collect::<Result<_>>()?,
        ),
        // As the Go types' MarshalJSON choose between their two forms.
        Special::SchemaOrArray => match bytes(1) {
            Some(schema) => decode_message(schema, field_message(message, 1))?,
            None => {
                let item = field_message(message, 2);
                let items: Vec<Value> = fields
                    .iter()
                    .filter_map(|(k, v)| match v {
                        WireValue::Bytes(b) if *k == 2 => Some(decode_message(b, item)),
                        _ => None,
                    })
                    .collect::<Result<_>>()?;
                if items.is_empty() {
                    Value::Null
                } else {
                    Value::Array(items)
                }
            }
        },
        Special::SchemaOrBool => match bytes(2) {
            Some(schema) => decode_message(schema, field_message(message, 2))?,
            None => Value::Bool(varint(1).unwrap_or(0) != 0),
        },
        Special::SchemaOrStringArray => {
            let property: Vec<Value> = fields
                .iter()
                .filter_map(|(k, v)| match v {
                    WireValue::Bytes(b) if *k == 2 => {
                        Some(utf8(b, message.name, "property").map(Value::String))
                    }
                    _ => None,
                })
                .collect::<Result<_>>()?;
            match bytes(1) {
                _ if !property.is_empty() => Value::Array(property),
                Some(schema) => decode_message(schema, field_message(message, 1))?,
                None => Value::Null,
            }
        }
    })
}

// ---- encoding ----

/// Encodes the fields of `message` found in `object`, in field-number order as Go does.
fn encode_object(
    out: &mut Vec<u8>,
    object: &Map<String, Value>,
    message: &'static Message,
    path: Path<'_>,
) -> Result<()> {
    for field in message.fields {
        if field.label == Label::Inline {
            let Ty::Message(i) = field.ty else { continue };
            put_message(out, field.number, |out| {
                encode_object(out, object, &MESSAGES[usize::from(i)], path)
            })?;
            continue;
        }
        let Some(value) = object.get(field.name).filter(|v| !v.is_null()) else {
            // A `null` time is Go's zero Time, which Go writes as an empty message.
            if let (Some(Value::Null), Ty::Message(i), Label::Single) =
                (object.get(field.name), field.ty, field.label)
                && matches!(
                    MESSAGES[usize::from(i)].special,
                    Special::Time | Special::MicroTime
                )
            {
                wire::put_bytes(out, field.number, &[]);
            }
            continue;
        };
        let path = Path::Field(&path, field.name);
        match field.label {
            Label::Single | Label::Inline => {
                encode_value(out, field.number, field.ty, value, path)?
            }
            Label::Repeated => {
                let items = value
                    .as_array()
                    .ok_or_else(|| invalid(&path, "an array is required"))?;
                for (i, item) in items.iter().enumerate() {
                    encode_value(out, field.number, field.ty, item, Path::Index(&path, i))?;
                }
            }
            Label::Map => {
                let map = value
                    .as_object()
                    .ok_or_else(|| invalid(&path, "an object is required"))?;
                // Go sorts map keys, which makes the bytes deterministic.
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                for key in keys {
                    let value = &map[key];
                    let path = Path::Key(&path, key);
                    put_message(out, field.number, |entry| {
                        wire::put_bytes(entry, 1, key.as_bytes());
                        if value.is_null() {
                            encode_value(entry, 2, field.ty, &zero_of(field.ty), path)
                        } else {
                            encode_value(entry, 2, field.ty, value, path)
                        }
                    })?;
                }
            }
        }
    }
    Ok(())
}

/// The JSON zero of a type, for `null` map values.
fn zero_of(ty: Ty) -> Value {
    match ty {
        Ty::String | Ty::Bytes => Value::String(String::new()),
        Ty::Bool => Value::Bool(false),
        Ty::Int32 | Ty::Int64 | Ty::Double => Value::from(0),
        Ty::Message(_) => Value::Object(Map::new()),
    }
}

/// Reads a JSON integer, accepting integral floats as Go's decoder does.
fn as_integer(value: &Value, path: Path<'_>) -> Result<i64> {
    value
        .as_i64()
        .or_else(|| {
            value
                .as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18)
                .map(|f| f as i64)
        })
        .ok_or_else(|| invalid(&path, format!("an integer is required, got {value}")))
}

/// Encodes one value as field `number`.
fn encode_value(
    out: &mut Vec<u8>,
    number: u32,
    ty: Ty,
    value: &Value,
    path: Path<'_>,
) -> Result<()> {
    match ty {
        Ty::String => {
            let s = value
                .as_str()
                .ok_or_else(|| invalid(&path, "a string is required"))?;
            wire::put_bytes(out, number, s.as_bytes());
        }
        Ty::Bytes => {
            let s = value
                .as_str()
                .ok_or_else(|| invalid(&path, "a base64 string is required"))?;
            let bytes = BASE64
                .decode(s)
                .map_err(|e| invalid(&path, format!("invalid base64: {e}")))?;
            wire::put_bytes(out, number, &bytes);
        }
        Ty::Bool => {
            let b = value
                .as_bool()
                .ok_or_else(|| invalid(&path, "a boolean is required"))?;
            wire::put_varint_field(out, number, u64::from(b));
        }
        Ty::Int32 => {
            let n = as_integer(value, path)?;
            let n = i32::try_from(n).map_err(|_| invalid(&path, "out of int32 range"))?;
            // Negative int32s are sign-extended to ten bytes on the wire.
            wire::put_varint_field(out, number, i64::from(n) as u64);
        }
        Ty::Int64 => wire::put_varint_field(out, number, as_integer(value, path)? as u64),
        Ty::Double => {
            let f = value
                .as_f64()
                .ok_or_else(|| invalid(&path, "a number is required"))?;
            wire::put_double_field(out, number, f);
        }
        Ty::Message(i) => put_message(out, number, |out| {
            encode_message(out, value, &MESSAGES[usize::from(i)], path)
        })?,
    }
    Ok(())
}

/// Encodes a message's JSON form (special or not) as its fields.
fn encode_message(
    out: &mut Vec<u8>,
    value: &Value,
    message: &'static Message,
    path: Path<'_>,
) -> Result<()> {
    let text = || {
        value
            .as_str()
            .ok_or_else(|| invalid(&path, "a string is required"))
    };
    match message.special {
        Special::None => {
            let object = value
                .as_object()
                .ok_or_else(|| invalid(&path, "an object is required"))?;
            if message.name == "k8s.io.apimachinery.pkg.apis.meta.v1.WatchEvent" {
                return encode_watch_event(out, object, message, path);
            }
            encode_object(out, object, message, path)?;
        }
        Special::Time | Special::MicroTime => {
            let (seconds, nanos) = formats::parse_rfc3339(text()?)
                .ok_or_else(|| invalid(&path, "an RFC 3339 time is required"))?;
            // metav1.Time carries seconds only; MicroTime keeps microseconds.
            let nanos = if message.special == Special::Time {
                0
            } else {
                nanos / 1000 * 1000
            };
            wire::put_varint_field(out, 1, seconds as u64);
            wire::put_varint_field(out, 2, u64::from(nanos));
        }
        Special::Duration => {
            let nanos = formats::parse_duration(text()?)
                .ok_or_else(|| invalid(&path, "a Go duration is required"))?;
            wire::put_varint_field(out, 1, nanos as u64);
        }
        Special::Quantity => {
            // Quantities may be written as JSON numbers; their text is the quantity.
            let s = match value {
                Value::Number(n) => n.to_string(),
                _ => text()?.to_string(),
            };
            wire::put_bytes(out, 1, s.as_bytes());
        }
        Special::IntOrString => {
            // Go writes all three fields of its non-pointer struct.
            let (kind, int, string) = match value {
                Value::String(s) => (1, 0, s.as_str()),
                _ => {
                    let n = as_integer(value, path)?;
                    (
                        0,
                        i32::try_from(n).map_err(|_| invalid(&path, "out of int32 range"))?,
                        "",
                    )
                }
            };
            wire::put_varint_field(out, 1, kind);
            wire::put_varint_field(out, 2, i64::from(int) as u64);
            wire::put_bytes(out, 3, string.as_bytes());
        }
        Special::RawExtension | Special::RawJson => {
            let raw = serde_json::to_vec(value).map_err(ProtobufError::EmbeddedJson)?;
            wire::put_bytes(out, 1, &raw);
        }
        Special::StringArray => {
            let items = value
                .as_array()
                .ok_or_else(|| invalid(&path, "an array is required"))?;
            for (i, item) in items.iter().enumerate() {
                let s = item
                    .as_str()
                    .ok_or_else(|| invalid(&Path::Index(&path, i), "a string is required"))?;
                wire::put_bytes(out, 1, s.as_bytes());
            }
        }
        // As the Go types' UnmarshalJSON read their two forms.
        Special::SchemaOrArray => match value {
            Value::Array(items) => {
                let item = field_message(message, 2);
                for (i, schema) in items.iter().enumerate() {
                    put_message(out, 2, |out| {
                        encode_message(out, schema, item, Path::Index(&path, i))
                    })?;
                }
            }
            schema => put_message(out, 1, |out| {
                encode_message(out, schema, field_message(message, 1), path)
            })?,
        },
        Special::SchemaOrBool => match value {
            Value::Bool(allows) => wire::put_varint_field(out, 1, u64::from(*allows)),
            schema => {
                wire::put_varint_field(out, 1, 1);
                put_message(out, 2, |out| {
                    encode_message(out, schema, field_message(message, 2), path)
                })?;
            }
        },
        Special::SchemaOrStringArray => match value {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let s = item
                        .as_str()
                        .ok_or_else(|| invalid(&Path::Index(&path, i), "a string is required"))?;
                    wire::put_bytes(out, 2, s.as_bytes());
                }
            }
            schema => put_message(out, 1, |out| {
                encode_message(out, schema, field_message(message, 1), path)
            })?,
        },
    }
    Ok(())
}

/// Encodes a watch event; its object travels as an embedded protobuf body, as client-go's
/// protobuf watch decoder expects, when the object is a built-in kind.
fn encode_watch_event(
    out: &mut Vec<u8>,
    object: &Map<String, Value>,
    message: &'static Message,
    path: Path<'_>,
) -> Result<()> {
    let Some(inner) = object.get("object").filter(|o| o.is_object()) else {
        return encode_object(out, object, message, path);
    };
    if let Some(kind) = object.get("type").and_then(Value::as_str) {
        wire::put_bytes(out, 1, kind.as_bytes());
    }
    let field = |name: &str| inner.get(name).and_then(Value::as_str).unwrap_or_default();
    if supports(field("apiVersion"), field("kind")) {
        put_message(out, 2, |out| {
            put_message(out, 1, |out| encode_into(out, inner))
        })
    } else {
        let raw = serde_json::to_vec(inner).map_err(ProtobufError::EmbeddedJson)?;
        put_message(out, 2, |out| {
            wire::put_bytes(out, 1, &raw);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests;
