//! `/debug/pprof/profile` (`--profiling`, on by default as upstream's): a CPU profile of the
//! running server, sampled for `?seconds=` (30 by default, as Go's handler) by the `pprof`
//! crate's signal-driven sampler, and answered as Go answers it — a gzipped pprof protobuf
//! (`profile.proto`), which `go tool pprof` and flame-graph tools read.

use crate::endpoints::{Response, full};
use crate::protobuf::wire::{put_bytes, put_varint, put_varint_field};
use flate2::Compression;
use flate2::write::GzEncoder;
use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

/// The path of the CPU profile.
pub const PROFILE_PATH: &str = "/debug/pprof/profile";
/// Samples per second, Go's `runtime.SetCPUProfileRate` default.
const FREQUENCY: i32 = 100;
/// Go's default profile length.
const DEFAULT_SECONDS: u64 = 30;

/// Answers a request for a CPU profile: samples for the requested seconds, then the profile.
pub async fn serve(query: Option<&str>) -> Response {
    let seconds = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "seconds")
        .and_then(|(_, v)| v.parse::<u64>().ok())
        .filter(|s| *s > 0)
        .unwrap_or(DEFAULT_SECONDS);
    // Frames inside the C library and the signal trampoline say nothing about the server.
    let guard = match pprof::ProfilerGuardBuilder::default()
        .frequency(FREQUENCY)
        .blocklist(&["libc", "libgcc", "pthread", "vdso"])
        .build()
    {
        Ok(guard) => guard,
        Err(e) => return error(&format!("Could not enable CPU profiling: {e}")),
    };
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let encoded = tokio::task::spawn_blocking(move || {
        let report = guard.report().build().map_err(|e| e.to_string())?;
        drop(guard);
        gzip(&encode(&report)).map_err(|e| e.to_string())
    })
    .await;
    match encoded {
        Ok(Ok(body)) => http::Response::builder()
            .header(http::header::CONTENT_TYPE, "application/octet-stream")
            .header(
                http::header::CONTENT_DISPOSITION,
                r#"attachment; filename="profile""#,
            )
            .header("X-Content-Type-Options", "nosniff")
            .body(full(body))
            .expect("static headers are valid"),
        Ok(Err(e)) => error(&format!("Could not build the CPU profile: {e}")),
        Err(e) => error(&format!("Could not build the CPU profile: {e}")),
    }
}

/// Go's `serveError`: plain text, with the header pprof clients look for.
fn error(message: &str) -> Response {
    http::Response::builder()
        .status(http::StatusCode::INTERNAL_SERVER_ERROR)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header("X-Go-Pprof", "1")
        .body(full(format!("{message}\n")))
        .expect("static headers are valid")
}

fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes)?;
    encoder.finish()
}

/// The strings of a profile: each stored once, referred to by index; index 0 is "".
#[derive(Default)]
struct Strings {
    table: Vec<String>,
    index: HashMap<String, u64>,
}

impl Strings {
    fn id(&mut self, s: &str) -> u64 {
        if self.table.is_empty() {
            self.table.push(String::new());
            self.index.insert(String::new(), 0);
        }
        if let Some(id) = self.index.get(s) {
            return *id;
        }
        let id = self.table.len() as u64;
        self.table.push(s.to_string());
        self.index.insert(s.to_string(), id);
        id
    }
}

/// `values` as a packed repeated varint field.
fn put_packed(out: &mut Vec<u8>, number: u32, values: impl IntoIterator<Item = u64>) {
    let mut packed = Vec::new();
    for v in values {
        put_varint(&mut packed, v);
    }
    put_bytes(out, number, &packed);
}

/// A ValueType message.
fn value_type(strings: &mut Strings, kind: &str, unit: &str) -> Vec<u8> {
    let mut m = Vec::new();
    put_varint_field(&mut m, 1, strings.id(kind));
    put_varint_field(&mut m, 2, strings.id(unit));
    m
}

/// The report as a `perftools.profiles.Profile`: samples (count, cpu nanoseconds) of stacks
/// of one location per function, each sample labelled with its thread.
fn encode(report: &pprof::Report) -> Vec<u8> {
    let mut strings = Strings::default();
    let mut out = Vec::new();
    let samples = value_type(&mut strings, "samples", "count");
    put_bytes(&mut out, 1, &samples);
    let cpu = value_type(&mut strings, "cpu", "nanoseconds");
    put_bytes(&mut out, 1, &cpu);

    let period = 1_000_000_000 / i64::from(report.timing.frequency.max(1));
    let mut functions: HashMap<String, u64> = HashMap::new();
    let mut definitions = Vec::new();
    for (frames, count) in &report.data {
        let mut locations = Vec::new();
        for symbol in frames.frames.iter().flatten() {
            let name = symbol.name();
            let id = match functions.get(&name) {
                Some(id) => *id,
                None => {
                    let id = functions.len() as u64 + 1;
                    let mut function = Vec::new();
                    put_varint_field(&mut function, 1, id);
                    put_varint_field(&mut function, 2, strings.id(&name));
                    put_varint_field(&mut function, 3, strings.id(&symbol.sys_name()));
                    put_varint_field(&mut function, 4, strings.id(&symbol.filename()));
                    let mut line = Vec::new();
                    put_varint_field(&mut line, 1, id);
                    put_varint_field(&mut line, 2, u64::from(symbol.lineno()));
                    let mut location = Vec::new();
                    put_varint_field(&mut location, 1, id);
                    put_bytes(&mut location, 4, &line);
                    definitions.push((function, location));
                    functions.insert(name, id);
                    id
                }
            };
            locations.push(id);
        }
        let count = *count as i64;
        let mut sample = Vec::new();
        put_packed(&mut sample, 1, locations);
        put_packed(&mut sample, 2, [count as u64, (count * period) as u64]);
        let mut label = Vec::new();
        put_varint_field(&mut label, 1, strings.id("thread"));
        put_varint_field(&mut label, 2, strings.id(&frames.thread_name_or_id()));
        put_bytes(&mut sample, 3, &label);
        put_bytes(&mut out, 2, &sample);
    }
    for (function, location) in &definitions {
        put_bytes(&mut out, 4, location);
        put_bytes(&mut out, 5, function);
    }
    let start = report
        .timing
        .start_time
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    put_varint_field(&mut out, 9, start.as_nanos() as u64);
    put_varint_field(&mut out, 10, report.timing.duration.as_nanos() as u64);
    let period_type = value_type(&mut strings, "cpu", "nanoseconds");
    put_bytes(&mut out, 11, &period_type);
    put_varint_field(&mut out, 12, period as u64);
    for s in &strings.table {
        put_bytes(&mut out, 6, s.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protobuf::wire::{Reader, WireValue};

    /// Every field of a message: (number, varint or bytes).
    fn fields(bytes: &[u8]) -> Vec<(u32, Result<u64, Vec<u8>>)> {
        let mut r = Reader::new(bytes);
        let mut out = Vec::new();
        while let Some((n, v)) = r.next_field().unwrap() {
            out.push((
                n,
                match v {
                    WireValue::Varint(v) => Ok(v),
                    WireValue::Bytes(b) => Err(b.to_vec()),
                    _ => panic!("unexpected wire type"),
                },
            ));
        }
        out
    }

    #[test]
    fn a_cpu_profile_of_a_busy_thread_decodes_as_profile_proto() {
        let guard = pprof::ProfilerGuardBuilder::default()
            .frequency(1000)
            .build()
            .unwrap();
        let until = std::time::Instant::now() + Duration::from_millis(300);
        let mut x = 0u64;
        while std::time::Instant::now() < until {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let report = guard.report().build().unwrap();
        drop(guard);
        let profile = fields(&encode(&report));
        let strings: Vec<String> = profile
            .iter()
            .filter(|(n, _)| *n == 6)
            .map(|(_, v)| String::from_utf8(v.clone().unwrap_err()).unwrap())
            .collect();
        assert_eq!(strings[0], "", "the string table starts empty");
        for s in ["samples", "count", "cpu", "nanoseconds", "thread"] {
            assert!(strings.iter().any(|t| t == s), "{s}");
        }
        let samples = profile.iter().filter(|(n, _)| *n == 2).count();
        assert!(samples > 0, "a busy thread was sampled");
        let functions = profile.iter().filter(|(n, _)| *n == 5).count();
        let locations = profile.iter().filter(|(n, _)| *n == 4).count();
        assert_eq!(functions, locations);
        assert!(
            strings
                .iter()
                .any(|s| s.contains("a_cpu_profile_of_a_busy_thread"))
        );
    }
}
