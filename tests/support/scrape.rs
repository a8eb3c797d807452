//! One `/metrics` scrape, read with a real Prometheus text parser (the `prometheus-parse`
//! crate).

use super::https::Https;

/// One scrape: every sample by name and labels.
pub struct Scrape(Vec<prometheus_parse::Sample>);

impl Scrape {
    /// Scrapes `/metrics` as `client`.
    pub async fn of(client: &Https) -> Scrape {
        Self::at(client, "/metrics").await
    }

    /// Scrapes `path` (`/metrics`, `/metrics/slis`) as `client`.
    pub async fn at(client: &Https, path: &str) -> Scrape {
        let r = client.get(path).await.unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        let content_type = r.headers["content-type"].to_str().unwrap();
        assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
        let lines = r.body.lines().map(|l| Ok(l.to_string()));
        Scrape(prometheus_parse::Scrape::parse(lines).unwrap().samples)
    }

    /// Whether a sample of `name` with (at least) `labels` is there.
    pub fn has(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        self.0
            .iter()
            .any(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
    }

    /// The value of `name` with (at least) `labels`, summed over the samples that have them;
    /// histograms give their count.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .iter()
            .filter(|s| s.metric == name)
            .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match &s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => *v,
                prometheus_parse::Value::Histogram(buckets) => {
                    buckets.last().map_or(0.0, |b| b.count)
                }
                prometheus_parse::Value::Summary(_) => 0.0,
            })
            .sum()
    }
}
