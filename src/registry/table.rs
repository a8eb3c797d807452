//! Table output (`as=Table`): column definitions and the cells upstream's printers produce.

use crate::registry::strategy::Name;
use serde::Serialize;
use serde_json::Value;
use std::borrow::Cow;

/// The description of the Age column, which is creationTimestamp's.
pub const AGE_DESCRIPTION: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// One column, as `metav1.TableColumnDefinition`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Column {
    /// Header, e.g. "Name".
    pub name: Name,
    /// OpenAPI type: string, integer, number, boolean, date.
    #[serde(rename = "type")]
    pub type_: Name,
    /// OpenAPI format: name for the name column, else empty.
    pub format: Name,
    /// Description shown by `kubectl explain`-like tools.
    pub description: Name,
    /// 0 shows by default, 1 only with `-o wide`.
    pub priority: i32,
}

impl Column {
    /// The Name column every table starts with.
    pub const NAME: Column = Column {
        name: Cow::Borrowed("Name"),
        type_: Cow::Borrowed("string"),
        format: Cow::Borrowed("name"),
        description: Cow::Borrowed(
            "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
        ),
        priority: 0,
    };
    /// The Age column.
    pub const AGE: Column = Column {
        name: Cow::Borrowed("Age"),
        type_: Cow::Borrowed("string"),
        format: Cow::Borrowed(""),
        description: Cow::Borrowed(AGE_DESCRIPTION),
        priority: 0,
    };

    /// The "Created At" column of upstream's default table convertor, for kinds without printers.
    pub const CREATED_AT: Column = Column {
        name: Cow::Borrowed("Created At"),
        type_: Cow::Borrowed("date"),
        format: Cow::Borrowed(""),
        description: Cow::Borrowed(AGE_DESCRIPTION),
        priority: 0,
    };

    /// A string column shown by default.
    pub const fn text(name: &'static str, description: &'static str) -> Self {
        Column {
            name: Cow::Borrowed(name),
            type_: Cow::Borrowed("string"),
            format: Cow::Borrowed(""),
            description: Cow::Borrowed(description),
            priority: 0,
        }
    }
    /// A string column shown only with `-o wide`.
    pub const fn wide(name: &'static str, description: &'static str) -> Self {
        Column {
            name: Cow::Borrowed(name),
            type_: Cow::Borrowed("string"),
            format: Cow::Borrowed(""),
            description: Cow::Borrowed(description),
            priority: 1,
        }
    }
    /// An integer column shown by default.
    pub const fn integer(name: &'static str, description: &'static str) -> Self {
        Column {
            name: Cow::Borrowed(name),
            type_: Cow::Borrowed("integer"),
            format: Cow::Borrowed(""),
            description: Cow::Borrowed(description),
            priority: 0,
        }
    }
}

/// The cells of upstream's default table: the name and the creation timestamp.
pub fn created_at_cells(obj: &Value) -> Vec<Value> {
    vec![
        name_cell(obj),
        obj.pointer("/metadata/creationTimestamp")
            .cloned()
            .unwrap_or(Value::Null),
    ]
}

/// How long ago `timestamp` (RFC 3339) was, in upstream's `duration.HumanDuration` form.
pub fn age(timestamp: Option<&str>) -> String {
    let Some(ts) = timestamp.and_then(|t| {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
    }) else {
        return "<unknown>".into();
    };
    human_duration((time::OffsetDateTime::now_utc() - ts).whole_seconds())
}

/// Upstream's `duration.HumanDuration`, from seconds.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// The name of an object, for the Name cell.
pub fn name_cell(obj: &Value) -> Value {
    obj.pointer("/metadata/name")
        .cloned()
        .unwrap_or(Value::String(String::new()))
}

/// The age of an object, for the Age cell.
pub fn age_cell(obj: &Value) -> Value {
    Value::String(age(obj
        .pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_match_upstream() {
        for (secs, want) in [
            (5, "5s"),
            (119, "119s"),
            (150, "2m30s"),
            (600, "10m"),
            (3 * 3600 + 60, "3h1m"),
            (30 * 3600, "30h"),
            (3 * 86400, "3d"),
            (3 * 86400 + 3600, "3d1h"),
            (400 * 86400, "400d"),
            (3 * 365 * 86400, "3y"),
        ] {
            assert_eq!(human_duration(secs), want, "{secs}");
        }
    }
}
