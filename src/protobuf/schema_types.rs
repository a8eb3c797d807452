//! Types of the generated wire schema (`schema.rs`): messages, fields and their wire types.

/// A protobuf message of the built-in API.
pub(super) struct Message {
    /// Fully qualified proto name, for error messages.
    pub name: &'static str,
    /// How the JSON form differs from an object of the fields, if it does.
    pub special: Special,
    /// Fields sorted by number.
    pub fields: &'static [Field],
}

/// A field of a message.
pub(super) struct Field {
    /// Proto field number.
    pub number: u32,
    /// JSON name (equal to the proto field name); empty for an inlined embedded struct.
    pub name: &'static str,
    /// Scalar type, or the message (value type for maps).
    pub ty: Ty,
    /// Cardinality.
    pub label: Label,
    /// Whether a zero value read from the wire is kept in the JSON (required or Go pointer fields).
    pub keep_zero: bool,
}

/// Builds a [`Field`]; keeps the generated table short.
pub(super) const fn f(
    number: u32,
    name: &'static str,
    ty: Ty,
    label: Label,
    keep_zero: bool,
) -> Field {
    Field {
        number,
        name,
        ty,
        label,
        keep_zero,
    }
}

/// The proto type of a field (of a map's value for [`Label::Map`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ty {
    /// `string`.
    String,
    /// `bytes`: base64 in JSON.
    Bytes,
    /// `bool`.
    Bool,
    /// `int32` (varint, sign-extended to 64 bits).
    Int32,
    /// `int64` (varint).
    Int64,
    /// `double` (fixed 64 bits).
    Double,
    /// A message: index into `MESSAGES`.
    Message(u16),
}

/// The cardinality of a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Label {
    /// `optional`: one value.
    Single,
    /// `repeated`: a JSON array.
    Repeated,
    /// `map<string, ty>`: a JSON object.
    Map,
    /// An embedded Go struct: its fields are inlined in the parent JSON object.
    Inline,
}

/// Messages whose JSON form is not an object of their fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Special {
    /// An ordinary message.
    None,
    /// `metav1.Time`: RFC 3339 with seconds precision, `null` when zero.
    Time,
    /// `metav1.MicroTime`: RFC 3339 with microseconds, `null` when zero.
    MicroTime,
    /// `metav1.Duration`: a Go duration string.
    Duration,
    /// `resource.Quantity`: its string form.
    Quantity,
    /// `intstr.IntOrString`: a JSON number or string.
    IntOrString,
    /// `runtime.RawExtension`: the embedded JSON (or protobuf) object.
    RawExtension,
    /// Raw JSON bytes in field 1 (`metav1.FieldsV1`).
    RawJson,
    /// `repeated string items = 1` carried as a JSON array (`Verbs`, `ExtraValue`).
    StringArray,
    /// apiextensions' `JSONSchemaPropsOrArray`: a schema (field 1) as an object, or schemas
    /// (field 2) as an array.
    SchemaOrArray,
    /// `JSONSchemaPropsOrBool`: a schema (field 2) as an object, else `allows` (field 1).
    SchemaOrBool,
    /// `JSONSchemaPropsOrStringArray`: property names (field 2) as an array, else a schema
    /// (field 1) as an object.
    SchemaOrStringArray,
}
