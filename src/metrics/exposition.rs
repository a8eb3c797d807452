//! The exposition kube-apiserver serves: Prometheus' text format 0.0.4, as upstream's promhttp
//! handler writes it. The `prometheus-client` crate writes OpenMetrics, whose counter families
//! drop the `_total` suffix; there `aggregator_unavailable_apiservice_total` (a counter) and
//! `aggregator_unavailable_apiservice` (a gauge) would be one family named twice. In the text
//! format each family is named by its samples, as upstream names them.

use prometheus_client::registry::Registry;

/// The content type of `/metrics` and `/metrics/slis`.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every metric of `registry`, in the text format.
pub fn encode(registry: &Registry) -> String {
    let mut openmetrics = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode_registry(&mut openmetrics, registry);
    text_format(&openmetrics)
}

/// `openmetrics`, as the crate writes it, in the text format: counter families are named with
/// `_total`, the `.` the crate appends to each help text is dropped, and the UNIT and EOF lines
/// the text format lacks are left out.
fn text_format(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut lines = openmetrics.lines().peekable();
    while let Some(line) = lines.next() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            let help = help.strip_suffix('.').unwrap_or(help);
            let kind = lines
                .next_if(|l| l.starts_with("# TYPE "))
                .and_then(|l| l.rsplit_once(' '))
                .map_or("untyped", |(_, kind)| kind);
            let (family, kind) = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "gauge" | "histogram" | "summary" => (name.to_string(), kind),
                // Info and state sets are gauges of 1s in the text format.
                "info" => (format!("{name}_info"), "gauge"),
                "stateset" => (name.to_string(), "gauge"),
                _ => (name.to_string(), "untyped"),
            };
            out.push_str(&format!("# HELP {family} {help}\n# TYPE {family} {kind}\n"));
        } else if !line.starts_with('#') {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::gauge::Gauge;
    use prometheus_client::metrics::histogram::Histogram;

    #[test]
    fn families_are_named_by_their_samples_as_upstream_names_them() {
        let mut registry = Registry::default();
        let unavailable = Gauge::<i64>::default();
        unavailable.set(1);
        registry.register(
            "aggregator_unavailable_apiservice",
            "Gauge of APIServices which are marked as unavailable broken down by APIService name.",
            unavailable,
        );
        let transitions = Counter::<u64>::default();
        transitions.inc();
        registry.register(
            "aggregator_unavailable_apiservice",
            "Counter of APIServices which are marked as unavailable broken down by APIService name and reason.",
            transitions,
        );
        let latency = Histogram::new([0.5]);
        latency.observe(0.1);
        registry.register("apiserver_latency_seconds", "A latency", latency);
        assert_eq!(
            encode(&registry),
            "# HELP aggregator_unavailable_apiservice Gauge of APIServices which are marked as unavailable broken down by APIService name.\n\
             # TYPE aggregator_unavailable_apiservice gauge\n\
             aggregator_unavailable_apiservice 1\n\
             # HELP aggregator_unavailable_apiservice_total Counter of APIServices which are marked as unavailable broken down by APIService name and reason.\n\
             # TYPE aggregator_unavailable_apiservice_total counter\n\
             aggregator_unavailable_apiservice_total 1\n\
             # HELP apiserver_latency_seconds A latency\n\
             # TYPE apiserver_latency_seconds histogram\n\
             apiserver_latency_seconds_sum 0.1\n\
             apiserver_latency_seconds_count 1\n\
             apiserver_latency_seconds_bucket{le=\"0.5\"} 1\n\
             apiserver_latency_seconds_bucket{le=\"+Inf\"} 1\n"
        );
    }
}
