//! Go's renderings that upstream's messages carry and clients match: `%q` quoting, `%#v` of
//! decoded JSON values, and encoding/json's syntax errors.

mod json;
mod quote;
mod value;

pub use json::{json_type, syntax_error, unmarshal};
pub use quote::quote;
pub use value::unstructured;
