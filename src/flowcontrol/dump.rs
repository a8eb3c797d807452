//! `/debug/api_priority_and_fairness/dump_*`: upstream's three debug tables (a row per priority
//! level, per queue, per request), columns separated by `,` and aligned as Go's tabwriter
//! (minimum width 8, padding 1) aligns them.

use super::Digest;
use std::time::SystemTime;

/// The path prefix of the dumps.
pub const PREFIX: &str = "/debug/api_priority_and_fairness/";

/// The dump `path` names, for the current configuration; `None` for another path.
pub fn dump(digest: &Digest, path: &str, query: &str) -> Option<String> {
    let rows = match path.strip_prefix(PREFIX)? {
        "dump_priority_levels" => priority_levels(digest),
        "dump_queues" => queues(digest),
        "dump_requests" => requests(
            digest,
            query.split('&').any(|kv| {
                kv.strip_prefix("includeRequestDetails=")
                    .is_some_and(|v| !v.is_empty())
            }),
        ),
        _ => return None,
    };
    Some(align(&rows))
}

fn priority_levels(digest: &Digest) -> Vec<Vec<String>> {
    let mut rows = vec![cells(&[
        "PriorityLevelName",
        "ActiveQueues",
        "IsIdle",
        "IsQuiescing",
        "WaitingRequests",
        "ExecutingRequests",
        "DispatchedRequests",
        "RejectedRequests",
        "TimedoutRequests",
        "CancelledRequests",
    ])];
    for (name, level) in &digest.levels {
        let queues = level.queues();
        let active = queues.queue_dump().iter().filter(|q| q.waiting > 0).count();
        let (waiting, executing) = queues.counts();
        let t = queues.totals();
        rows.push(vec![
            name.clone(),
            active.to_string(),
            (waiting == 0 && executing == 0).to_string(),
            "false".into(),
            waiting.to_string(),
            executing.to_string(),
            t.dispatched.to_string(),
            t.rejected.to_string(),
            t.timed_out.to_string(),
            t.cancelled.to_string(),
        ]);
    }
    rows
}

fn queues(digest: &Digest) -> Vec<Vec<String>> {
    let mut rows = vec![cells(&[
        "PriorityLevelName",
        "Index",
        "PendingRequests",
        "ExecutingRequests",
        "SeatsInUse",
        "NextDispatchR",
        "InitialSeatsSum",
        "MaxSeatsSum",
        "TotalWorkSum",
    ])];
    for (name, level) in &digest.levels {
        for (i, q) in level.queues().queue_dump().into_iter().enumerate() {
            // A request's seats are its initial and its maximum seats alike (no final seats).
            rows.push(vec![
                name.clone(),
                i.to_string(),
                q.waiting.to_string(),
                q.executing.to_string(),
                q.seats_in_use.to_string(),
                format!("{:.8}ss", q.next_dispatch_r),
                q.waiting_seats.to_string(),
                q.waiting_seats.to_string(),
                format!("{:.8}ss", q.waiting_work()),
            ]);
        }
    }
    rows
}

fn requests(digest: &Digest, details: bool) -> Vec<Vec<String>> {
    let mut header = cells(&[
        "PriorityLevelName",
        "FlowSchemaName",
        "QueueIndex",
        "RequestIndexInQueue",
        "FlowDistingsher",
        "ArriveTime",
        "InitialSeats",
        "FinalSeats",
        "AdditionalLatency",
        "StartTime",
    ]);
    if details {
        header.extend(cells(&[
            "UserName",
            "Verb",
            "APIPath",
            "Namespace",
            "Name",
            "APIVersion",
            "Resource",
            "SubResource",
        ]));
    }
    let mut rows = vec![header];
    for (name, level) in &digest.levels {
        for r in level.queues().request_dump() {
            let mut row = vec![
                name.clone(),
                r.descr.flow_schema.to_string(),
                r.queue.to_string(),
                r.index.to_string(),
                r.descr.distinguisher.clone(),
                rfc3339_nano(r.arrival),
                r.seats.to_string(),
                "0".into(),
                "0s".into(),
                r.start
                    .map(rfc3339_nano)
                    .unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
            ];
            if details {
                row.push(r.descr.user.clone());
                row.extend(r.descr.request.iter().cloned());
            }
            rows.push(row);
        }
    }
    rows
}

fn cells(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn rfc3339_nano(t: SystemTime) -> String {
    time::OffsetDateTime::from(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Rows as upstream writes them: cells joined by ",\t", then aligned by a tabwriter with
/// minimum width 8 and padding 1 (the last cell of a row is not a column).
fn align(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns.saturating_sub(1))
        .map(|c| {
            rows.iter()
                .filter(|r| c + 1 < r.len())
                .map(|r| r[c].len() + 1)
                .max()
                .unwrap_or(0)
                .saturating_add(1)
                .max(8)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        for (c, cell) in row.iter().enumerate() {
            if c + 1 < row.len() {
                let cell = format!("{cell},");
                out.push_str(&format!("{cell:<width$}", width = widths[c]));
            } else {
                out.push_str(cell);
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_align_as_gos_tabwriter_aligns_them() {
        let rows = vec![
            cells(&["PriorityLevelName", "ActiveQueues", "IsIdle"]),
            cells(&["exempt", "0", "true"]),
        ];
        assert_eq!(
            align(&rows),
            "PriorityLevelName, ActiveQueues, IsIdle\nexempt,            0,            true\n"
        );
    }

    #[test]
    fn the_three_dumps_list_every_level() {
        let fc = super::super::FlowControl::new(10);
        let digest = fc.current();
        let levels = dump(
            &digest,
            "/debug/api_priority_and_fairness/dump_priority_levels",
            "",
        )
        .unwrap();
        assert!(levels.starts_with("PriorityLevelName,"));
        assert!(levels.contains("\ncatch-all,") && levels.contains("\nexempt,"));
        assert!(dump(&digest, "/debug/api_priority_and_fairness/dump_queues", "").is_some());
        let requests = dump(
            &digest,
            "/debug/api_priority_and_fairness/dump_requests",
            "includeRequestDetails=1",
        )
        .unwrap();
        assert!(requests.contains("UserName,"));
        assert!(dump(&digest, "/debug/api_priority_and_fairness/other", "").is_none());
    }
}
