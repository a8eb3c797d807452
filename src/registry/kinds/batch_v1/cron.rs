//! CronJob schedules, accepted and refused as robfig/cron v3's `ParseStandard` does (upstream's
//! `validateScheduleFormat`), with its error texts.
//!
//! No crate parses exactly that dialect (five fields, `?`, names, `@every` with Go durations,
//! a `TZ=`/`CRON_TZ=` prefix), so the parser follows robfig/cron's `parser.go` step by step.

/// One field's bounds and names, as robfig/cron's `bounds`.
struct Bounds {
    min: u64,
    max: u64,
    names: &'static [&'static str],
    names_start: u64,
}

const MINUTES: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
    names_start: 0,
};
const HOURS: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
    names_start: 0,
};
const DOM: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
    names_start: 0,
};
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
    names_start: 1,
};
const DOW: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
    names_start: 0,
};

/// Parses a schedule as robfig/cron's `ParseStandard`, returning its error text on failure.
pub fn parse_cron(spec: &str) -> Result<(), String> {
    if spec.is_empty() {
        return Err("empty spec string".into());
    }
    let mut spec = spec;
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        // The location runs up to the first space. Without one, robfig/cron v3.0.1 panics
        // (slicing to -1); this refuses the schedule as having no fields instead.
        // The location itself is not looked up (that needs Go's time zone database): a
        // schedule with TZ is refused by CronJob validation whatever its location, so only
        // the extra "provided bad location" message can be missing.
        spec = spec.find(' ').map_or("", |i| spec[i..].trim());
    }
    if spec.starts_with('@') {
        return parse_descriptor(spec);
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    for (field, bounds) in fields.iter().zip([MINUTES, HOURS, DOM, MONTHS, DOW]) {
        parse_field(field, &bounds)?;
    }
    Ok(())
}

/// robfig/cron's `parseDescriptor`: the named schedules and `@every <Go duration>`.
fn parse_descriptor(descriptor: &str) -> Result<(), String> {
    match descriptor {
        "@yearly" | "@annually" | "@monthly" | "@weekly" | "@daily" | "@midnight" | "@hourly" => {
            Ok(())
        }
        _ => match descriptor.strip_prefix("@every ") {
            Some(duration) => parse_go_duration(duration)
                .map_err(|e| format!("failed to parse duration {descriptor}: {e}")),
            None => Err(format!("unrecognized descriptor: {descriptor}")),
        },
    }
}

/// robfig/cron's `getField`: comma-separated ranges, empty ones skipped (`strings.FieldsFunc`).
fn parse_field(field: &str, bounds: &Bounds) -> Result<(), String> {
    field
        .split(',')
        .filter(|r| !r.is_empty())
        .try_for_each(|r| parse_range(r, bounds))
}

/// robfig/cron's `getRange`: `*`, `?`, `n`, `n-m`, each with an optional `/step`.
fn parse_range(expr: &str, b: &Bounds) -> Result<(), String> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_and_high: Vec<&str> = range_and_step[0].split('-').collect();
    let single = low_and_high.len() == 1;
    let (start, mut end) = if matches!(low_and_high[0], "*" | "?") {
        (b.min, b.max)
    } else {
        let start = parse_int_or_name(low_and_high[0], b)?;
        let end = match low_and_high.len() {
            1 => start,
            2 => parse_int_or_name(low_and_high[1], b)?,
            _ => return Err(format!("too many hyphens: {expr}")),
        };
        (start, end)
    };
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = parse_int(range_and_step[1])?;
            // "N/step" means "N-max/step".
            if single {
                end = b.max;
            }
            step
        }
        _ => return Err(format!("too many slashes: {expr}")),
    };
    if start < b.min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            b.min
        ));
    }
    if end > b.max {
        return Err(format!(
            "end of range ({end}) above maximum ({}): {expr}",
            b.max
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    Ok(())
}

/// robfig/cron's `parseIntOrName`: a field's name (any case) or a number.
fn parse_int_or_name(expr: &str, b: &Bounds) -> Result<u64, String> {
    let lower = expr.to_lowercase();
    match b.names.iter().position(|n| *n == lower) {
        Some(i) => Ok(b.names_start + i as u64),
        None => parse_int(expr),
    }
}

/// robfig/cron's `mustParseInt`: Go's `strconv.Atoi`, refusing negatives.
fn parse_int(expr: &str) -> Result<u64, String> {
    use std::num::IntErrorKind;
    let n: i64 = expr.parse().map_err(|e: std::num::ParseIntError| {
        let reason = match e.kind() {
            IntErrorKind::PosOverflow | IntErrorKind::NegOverflow => "value out of range",
            _ => "invalid syntax",
        };
        format!(
            "failed to parse int from {expr}: strconv.Atoi: parsing {}: {reason}",
            go_quote(expr)
        )
    })?;
    u64::try_from(n).map_err(|_| format!("negative number ({n}) not allowed: {expr}"))
}

/// Go's `strconv.Quote` for the texts a cron field can hold (no whitespace): ASCII controls
/// and DEL as `\xNN`, other non-printable characters as `\uNNNN`/`\UNNNNNNNN`, Unicode
/// printable characters as they are. Go's notion of printable is approximated by "not a control".
fn go_quote(s: &str) -> String {
    let mut out = String::from('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() && (c as u32) < 0x10000 => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if c.is_control() => out.push_str(&format!("\\U{:08x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether Go's `time.ParseDuration` accepts `s`; its error text if not. Only acceptance
/// matters here (the value is not used), so the value's overflow checks are kept as Go's
/// bounds on the running total.
fn parse_go_duration(orig: &str) -> Result<(), String> {
    let invalid = || format!("time: invalid duration {}", go_time_quote(orig));
    let mut s = orig.as_bytes();
    if let [b'-' | b'+', rest @ ..] = s {
        s = rest;
    }
    if s == b"0" {
        return Ok(());
    }
    if s.is_empty() {
        return Err(invalid());
    }
    const LIMIT: u64 = 1 << 63;
    let mut total: u64 = 0;
    while !s.is_empty() {
        if !(s[0] == b'.' || s[0].is_ascii_digit()) {
            return Err(invalid());
        }
        // Consume [0-9]*, failing on overflow as Go's leadingInt does.
        let digits = s.iter().take_while(|c| c.is_ascii_digit()).count();
        let mut v: u64 = 0;
        for &c in &s[..digits] {
            if v > LIMIT / 10 {
                return Err(invalid());
            }
            v = v * 10 + u64::from(c - b'0');
            if v > LIMIT {
                return Err(invalid());
            }
        }
        s = &s[digits..];
        let pre = digits > 0;
        // Consume (\.[0-9]*)?, keeping what precision fits, as Go's leadingFraction does.
        let (mut f, mut scale, mut post) = (0u64, 1f64, false);
        if let [b'.', rest @ ..] = s {
            s = rest;
            let digits = s.iter().take_while(|c| c.is_ascii_digit()).count();
            let mut overflow = false;
            for &c in &s[..digits] {
                if overflow {
                    continue;
                }
                if f > (LIMIT - 1) / 10 {
                    overflow = true;
                    continue;
                }
                let y = f * 10 + u64::from(c - b'0');
                if y > LIMIT {
                    overflow = true;
                    continue;
                }
                f = y;
                scale *= 10.0;
            }
            s = &s[digits..];
            post = digits > 0;
        }
        if !pre && !post {
            return Err(invalid());
        }
        let unit_len = s
            .iter()
            .take_while(|c| !(**c == b'.' || c.is_ascii_digit()))
            .count();
        if unit_len == 0 {
            return Err(format!(
                "time: missing unit in duration {}",
                go_time_quote(orig)
            ));
        }
        let (unit, rest) = s.split_at(unit_len);
        s = rest;
        let unit_name = String::from_utf8_lossy(unit);
        let unit: u64 = match unit_name.as_ref() {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    go_time_quote(&unit_name),
                    go_time_quote(orig)
                ));
            }
        };
        if v > LIMIT / unit {
            return Err(invalid());
        }
        v *= unit;
        if f > 0 {
            v += (f as f64 * (unit as f64 / scale)) as u64;
            if v > LIMIT {
                return Err(invalid());
            }
        }
        total += v;
        if total > LIMIT {
            return Err(invalid());
        }
    }
    if !orig.starts_with('-') && total > LIMIT - 1 {
        return Err(invalid());
    }
    Ok(())
}

/// The `quote` of Go's time package: bytes of non-ASCII and control characters as `\xNN`.
fn go_time_quote(s: &str) -> String {
    let mut out = String::from('"');
    for c in s.chars() {
        if (c as u32) >= 0x80 || c < ' ' {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("\\x{b:02x}"));
            }
        } else {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(min: u64, max: u64) -> Bounds {
        Bounds {
            min,
            max,
            names: &[],
            names_start: 0,
        }
    }

    #[test]
    fn cron_schedules_are_parsed_with_robfig_crons_messages() {
        assert!(parse_cron("*/5 * * * *").is_ok());
        assert!(parse_cron("0 9 * JAN-MAR mon-fri").is_ok());
        assert!(parse_cron("@hourly").is_ok());
        assert_eq!(
            parse_cron("* * *").unwrap_err(),
            "expected exactly 5 fields, found 3: [* * *]"
        );
        assert_eq!(
            parse_cron("60 * * * *").unwrap_err(),
            "end of range (60) above maximum (59): 60"
        );
        assert_eq!(
            parse_cron("x * * * *").unwrap_err(),
            r#"failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax"#
        );
        assert_eq!(
            parse_cron("@often").unwrap_err(),
            "unrecognized descriptor: @often"
        );
    }

    /// robfig/cron's TestRange, case for case.
    #[test]
    fn ranges_as_robfig_crons_test_range() {
        for (expr, min, max) in [
            ("5", 0, 7),
            ("0", 0, 7),
            ("7", 0, 7),
            ("5-5", 0, 7),
            ("5-6", 0, 7),
            ("5-7", 0, 7),
            ("5-6/2", 0, 7),
            ("5-7/2", 0, 7),
            ("5-7/1", 0, 7),
            ("*", 1, 3),
            ("*/2", 1, 3),
        ] {
            assert_eq!(parse_range(expr, &bounds(min, max)), Ok(()), "{expr}");
        }
        for (expr, min, max, err) in [
            ("5--5", 0, 0, "too many hyphens"),
            ("jan-x", 0, 0, "failed to parse int from"),
            ("2-x", 1, 5, "failed to parse int from"),
            ("*/-12", 0, 0, "negative number"),
            ("*//2", 0, 0, "too many slashes"),
            ("1", 3, 5, "below minimum"),
            ("6", 3, 5, "above maximum"),
            ("5-3", 3, 5, "beyond end of range"),
            ("*/0", 0, 0, "should be a positive number"),
        ] {
            let got = parse_range(expr, &bounds(min, max)).unwrap_err();
            assert!(got.contains(err), "{expr}: {got}");
        }
    }

    /// robfig/cron's TestField, plus the empty ranges its `strings.FieldsFunc` skips.
    #[test]
    fn fields_as_robfig_crons_test_field() {
        for expr in ["5", "5,6", "5,6,7", "1,5-7/2,3", "5,,6", ",5", ","] {
            assert_eq!(parse_field(expr, &bounds(1, 7)), Ok(()), "{expr}");
        }
        assert!(parse_cron("1,,2 * * * *").is_ok());
    }

    /// The schedules of robfig/cron's TestParseSchedule and TestStandardSpecSchedule that the
    /// standard parser takes (five fields), and its TestParseScheduleErrors.
    #[test]
    fn schedules_as_robfig_crons_parser_tests() {
        for spec in [
            "5 * * * *",
            "CRON_TZ=UTC  5 * * * *",
            "CRON_TZ=Asia/Tokyo 5 * * * *",
            "@every 5m",
            "@midnight",
            "TZ=UTC  @midnight",
            "TZ=Asia/Tokyo @midnight",
            "@yearly",
            "@annually",
            "@monthly",
            "@weekly",
            "@daily",
            "* 5 * * *",
            "* * * * ?",
            "@every 1h30m",
            "@every 1.5h",
            "@every -1s",
            "@every 0",
        ] {
            assert_eq!(parse_cron(spec), Ok(()), "{spec}");
        }
        for (spec, err) in [
            ("5 j * * *", "failed to parse int from"),
            ("@every Xm", "failed to parse duration"),
            ("@unrecognized", "unrecognized descriptor"),
            ("* * * *", "expected exactly 5 fields"),
            ("* * * * * *", "expected exactly 5 fields"),
            ("", "empty spec string"),
        ] {
            let got = parse_cron(spec).unwrap_err();
            assert!(got.contains(err), "{spec}: {got}");
        }
    }

    /// Where robfig/cron differs from a trimming, lenient parser: nothing is trimmed, a
    /// descriptor is matched whole, the time zone prefix is taken once.
    #[test]
    fn schedules_are_taken_as_written() {
        assert_eq!(
            parse_cron(" @hourly").unwrap_err(),
            "expected exactly 5 fields, found 1: [@hourly]"
        );
        assert_eq!(
            parse_cron("@hourly ").unwrap_err(),
            "unrecognized descriptor: @hourly "
        );
        assert_eq!(
            parse_cron("  ").unwrap_err(),
            "expected exactly 5 fields, found 0: []"
        );
        assert_eq!(
            parse_cron("TZ=UTC CRON_TZ=UTC * * * * *").unwrap_err(),
            "expected exactly 5 fields, found 6: [CRON_TZ=UTC * * * * *]"
        );
        assert_eq!(
            parse_cron("@every").unwrap_err(),
            "unrecognized descriptor: @every"
        );
        assert_eq!(
            parse_cron("@every 5").unwrap_err(),
            r#"failed to parse duration @every 5: time: missing unit in duration "5""#
        );
        assert_eq!(
            parse_cron("@every 5d").unwrap_err(),
            r#"failed to parse duration @every 5d: time: unknown unit "d" in duration "5d""#
        );
        assert_eq!(
            parse_cron("@every 1h 30m").unwrap_err(),
            r#"failed to parse duration @every 1h 30m: time: unknown unit "h " in duration "1h 30m""#
        );
        assert_eq!(
            parse_cron("99999999999999999999 * * * *").unwrap_err(),
            r#"failed to parse int from 99999999999999999999: strconv.Atoi: parsing "99999999999999999999": value out of range"#
        );
        assert_eq!(
            parse_cron("4294967296 * * * *").unwrap_err(),
            "end of range (4294967296) above maximum (59): 4294967296"
        );
        assert!(parse_cron("*-5/2 * * * *").is_ok());
        // Go's duration grammar and bounds.
        for spec in [
            "@every .5s",
            "@every 1.h",
            "@every 2h45m0.5s",
            "@every 1\u{b5}s",
            "@every -9223372036854775808ns",
        ] {
            assert_eq!(parse_cron(spec), Ok(()), "{spec}");
        }
        for spec in [
            "@every .",
            "@every -",
            "@every 9223372036854775808ns",
            "@every 1.5",
        ] {
            assert!(parse_cron(spec).is_err(), "{spec}");
        }
    }
}
