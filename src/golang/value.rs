//! Go's `%#v` of a decoded JSON value, as upstream's field errors show values of custom
//! resources (`map[string]interface {}{"name":"a"}`).

use super::quote;
use serde_json::Value;

/// The value as `%#v` prints what encoding/json decodes it to in an `interface{}`.
pub fn unstructured(value: &Value) -> String {
    match value {
        Value::Null => "interface {}(nil)".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => quote(s),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(unstructured).collect();
            format!("[]interface {{}}{{{}}}", items.join(", "))
        }
        // Go's fmt sorts map keys, as the map here already is.
        Value::Object(map) => {
            let pairs: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}:{}", quote(k), unstructured(v)))
                .collect();
            format!("map[string]interface {{}}{{{}}}", pairs.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::unstructured;
    use serde_json::json;

    #[test]
    fn values_print_as_gos_percent_sharp_v() {
        assert_eq!(
            unstructured(&json!({"name": "a", "port": 80, "on": true, "l": ["x"], "n": null})),
            r#"map[string]interface {}{"l":[]interface {}{"x"}, "n":interface {}(nil), "name":"a", "on":true, "port":80}"#
        );
    }
}
