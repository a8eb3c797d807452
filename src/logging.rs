//! The process's log (`-v`, `--logging-format`): klog-style text, or upstream's JSON lines —
//! `{"ts":<unix seconds>,"caller":"file:line","msg":"…","v":<level>,…}`, errors without `v` —
//! so log pipelines built for kube-apiserver's JSON read kubeboot's unchanged.

use serde_json::{Value, json};
use std::fmt;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// Upstream's JSON lines.
    Json,
}

/// Installs the process's logger: `verbosity` as klog's `-v` (2 and up: debug, 5 and up:
/// trace), lines on stderr in `format`.
pub fn init(verbosity: u8, format: LogFormat) {
    let level = match verbosity {
        0..=1 => Level::INFO,
        2..=4 => Level::DEBUG,
        _ => Level::TRACE,
    };
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .with_target(false)
            .init(),
        LogFormat::Json => builder.event_format(Json).init(),
    }
}

/// Upstream's JSON line format.
struct Json;

impl<S, N> FormatEvent<S, N> for Json
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        writeln!(writer, "{}", line(event, std::time::SystemTime::now()))
    }
}

/// An event as upstream's JSON logger writes it, keys in its order: ts, caller, msg, v, then
/// the event's fields.
fn line(event: &Event<'_>, now: std::time::SystemTime) -> String {
    let ts = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let meta = event.metadata();
    let mut fields = Fields::default();
    event.record(&mut fields);
    let mut head: Vec<(String, Value)> = vec![("ts".into(), json!(ts))];
    if let (Some(file), Some(line)) = (meta.file(), meta.line()) {
        let file = file.rsplit('/').next().unwrap_or(file);
        head.push(("caller".into(), json!(format!("{file}:{line}"))));
    }
    head.push(("msg".into(), json!(fields.message)));
    let v = match *meta.level() {
        Level::ERROR => None,
        Level::WARN | Level::INFO => Some(0),
        Level::DEBUG => Some(4),
        Level::TRACE => Some(6),
    };
    if let Some(v) = v {
        head.push(("v".into(), json!(v)));
    }
    let pairs: Vec<String> = head
        .into_iter()
        .chain(fields.values)
        .map(|(k, v)| format!("{}:{v}", json!(k)))
        .collect();
    format!("{{{}}}", pairs.join(","))
}

/// An event's message and its other fields (`error` named `err`, as upstream's).
#[derive(Default)]
struct Fields {
    message: String,
    values: Vec<(String, Value)>,
}

impl Fields {
    fn put(&mut self, field: &Field, value: Value) {
        match field.name() {
            "message" => {
                self.message = match value {
                    Value::String(s) => s,
                    other => other.to_string(),
                }
            }
            "error" => self.values.push(("err".into(), value)),
            name => self.values.push((name.into(), value)),
        }
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, json!(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, json!(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, json!(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, json!(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, json!(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, json!(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Collects the JSON lines of the events logged while it is the default subscriber.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<String>>>);

    impl<S: Subscriber> tracing_subscriber::Layer<S> for Lines {
        fn on_event(&self, event: &Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
            let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_500);
            self.0.lock().unwrap().push(line(event, at));
        }
    }

    #[test]
    fn events_are_written_as_upstreams_json_lines() {
        use tracing_subscriber::layer::SubscriberExt;
        let lines = Lines::default();
        let subscriber = tracing_subscriber::registry().with(lines.clone());
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(address = "127.0.0.1:6443", port = 6443, "serving securely");
            tracing::error!(error = "boom", "hook failed");
        });
        let raw = lines.0.lock().unwrap();
        assert!(
            raw[0].starts_with(r#"{"ts":1.5,"caller":"logging.rs:"#),
            "{}",
            raw[0]
        );
        assert!(
            raw[0].contains(r#""msg":"serving securely","v":0,"address""#),
            "{}",
            raw[0]
        );
        let lines: Vec<Value> = raw
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["ts"], 1.5);
        assert_eq!(lines[0]["msg"], "serving securely");
        assert_eq!(lines[0]["v"], 0);
        assert_eq!(lines[0]["address"], "127.0.0.1:6443");
        assert_eq!(lines[0]["port"], 6443);
        assert!(
            lines[0]["caller"]
                .as_str()
                .unwrap()
                .starts_with("logging.rs:")
        );
        assert_eq!(lines[1]["err"], "boom");
        assert!(lines[1].get("v").is_none());
    }
}
