//! Work estimation (upstream's `flowcontrol/request` with its default configuration): the
//! seats a request occupies while it executes. A LIST, and a watch that sends its initial
//! events, takes one seat per 100 objects it is expected to go through, between 1 and its
//! level's most (`max(1, min(⌈15% of nominal⌉, nominal / handSize))`, never above 10). Every
//! other request takes one seat: upstream estimates mutating requests at one seat too, its
//! watcher-based estimate being switched off until it is tuned.

use super::queueset::Limit;
use crate::endpoints::request_info::{RequestInfo, Verb};

/// Upstream's `minimumSeats`.
pub const MINIMUM_SEATS: usize = 1;
/// Upstream's `MaximumListSeatsLimit`.
pub const MAXIMUM_LIST_SEATS: usize = 10;
/// Upstream's `ObjectsPerSeat`.
const OBJECTS_PER_SEAT: f64 = 100.0;
/// Upstream's `priorityLevelMaxSeatsPercent`.
const LEVEL_MAX_SEATS_FRACTION: f64 = 0.15;

/// The most seats one request of a level may take (upstream's `MaxSeatsTracker`); 0 for a
/// level without queues, which is bounded by [`MAXIMUM_LIST_SEATS`] alone.
pub fn level_max_seats(nominal: usize, limit: Limit) -> usize {
    match limit {
        Limit::Queue(q) => ((nominal as f64 * LEVEL_MAX_SEATS_FRACTION).ceil() as usize)
            .min(nominal / q.hand_size)
            .max(1),
        Limit::Exempt | Limit::Reject => 0,
    }
}

/// The seats the request `info` with query `query` takes in a level whose most is
/// `level_max`, `stored` counting the objects of its resource when a list needs them (None: not
/// counted by this server, as an aggregated resource, which costs this server little).
pub fn seats(
    info: &RequestInfo,
    query: &str,
    stored: impl FnOnce() -> Option<i64>,
    level_max: usize,
) -> usize {
    // Upstream's estimator goes by verb first: only lists and watches read their options.
    if !matches!(info.verb, Verb::List | Verb::Watch) {
        return MINIMUM_SEATS;
    }
    let max = match level_max {
        0 => MAXIMUM_LIST_SEATS,
        n => n.min(MAXIMUM_LIST_SEATS),
    };
    let mut options = ListQuery::default();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match &*key {
            "limit" => match value.parse() {
                Ok(limit) => options.limit = limit,
                // The request fails validation; estimated as upstream does, at the most.
                Err(_) => return max,
            },
            "resourceVersion" => options.resource_version = value.into_owned(),
            "resourceVersionMatch" => options.resource_version_match = value.into_owned(),
            "continue" => options.continue_token = !value.is_empty(),
            "labelSelector" | "fieldSelector" => options.selects |= !value.is_empty(),
            "sendInitialEvents" => options.send_initial_events = value == "true",
            _ => {}
        }
    }
    if info.verb == Verb::Watch && !options.send_initial_events {
        return MINIMUM_SEATS;
    }
    let Some(stored) = stored() else {
        return MINIMUM_SEATS;
    };
    let from_cache = info.verb == Verb::Watch || !options.reads_storage();
    let limit = if options.limit > 0 && options.limit < stored {
        options.limit
    } else {
        stored
    };
    let objects = if !info.name.is_empty() {
        1
    } else if from_cache {
        stored
    } else if options.selects {
        stored + limit
    } else {
        2 * limit
    };
    ((objects as f64 / OBJECTS_PER_SEAT).ceil() as usize).clamp(MINIMUM_SEATS, max)
}

/// What of a list's options decides where it is served from.
#[derive(Default)]
struct ListQuery {
    limit: i64,
    resource_version: String,
    resource_version_match: String,
    continue_token: bool,
    selects: bool,
    send_initial_events: bool,
}

impl ListQuery {
    /// Whether the list goes to storage rather than the watch cache (upstream's
    /// `ShouldDelegateListMeta` for a cache without snapshots, consistent reads from the
    /// cache): exact resource versions and continuations do.
    fn reads_storage(&self) -> bool {
        match self.resource_version_match.as_str() {
            "Exact" => true,
            "NotOlderThan" => false,
            "" if self.continue_token => true,
            "" => {
                self.limit > 0 && !self.resource_version.is_empty() && self.resource_version != "0"
            }
            // Invalid: the worst case.
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flowcontrol::queueset::Queuing;

    fn list(path: &str, query: &str) -> RequestInfo {
        RequestInfo::parse(&http::Method::GET, path, Some(query))
    }

    #[test]
    fn lists_take_a_seat_per_hundred_objects_they_go_through_as_upstreams_estimator() {
        let cms = "/api/v1/namespaces/default/configmaps";
        let seats =
            |query: &str, stored: Option<i64>| seats(&list(cms, query), query, || stored, 8);
        // From the watch cache: every stored object.
        assert_eq!(seats("", Some(250)), 3);
        assert_eq!(seats("resourceVersion=0&limit=50", Some(250)), 3);
        // From storage: twice the page, or everything plus the page when selecting.
        assert_eq!(seats("limit=50&continue=abc", Some(250)), 1);
        assert_eq!(seats("limit=200&resourceVersion=12", Some(250)), 4);
        assert_eq!(
            seats(
                "limit=50&resourceVersionMatch=Exact&resourceVersion=12&labelSelector=a%3Db",
                Some(250)
            ),
            3
        );
        // One object by name, an empty collection, a resource not counted here.
        assert_eq!(seats("fieldSelector=metadata.name%3Dx", Some(250)), 1);
        assert_eq!(seats("", Some(0)), 1);
        assert_eq!(seats("", None), 1);
        // At most the level's most, and never above 10.
        assert_eq!(seats("", Some(100_000)), 8);
        assert_eq!(super::seats(&list(cms, ""), "", || Some(100_000), 0), 10);
        assert_eq!(super::seats(&list(cms, ""), "", || Some(100_000), 50), 10);
        // A limit that is no number: the most.
        assert_eq!(seats("limit=many", Some(250)), 8);
    }

    #[test]
    fn only_watches_sending_initial_events_are_estimated_like_lists() {
        let path = "/api/v1/namespaces/default/configmaps";
        let watch = "watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan";
        assert_eq!(seats(&list(path, watch), watch, || Some(250), 8), 3);
        assert_eq!(
            seats(&list(path, "watch=true"), "watch=true", || Some(250), 8),
            1
        );
        let create = RequestInfo::parse(&http::Method::POST, path, None);
        assert_eq!(seats(&create, "", || Some(250), 8), 1);
    }

    #[test]
    fn a_levels_most_seats_follow_its_nominal_limit_and_hand_size() {
        let queue = |hand_size| {
            Limit::Queue(Queuing {
                queues: 64,
                hand_size,
                queue_length_limit: 50,
            })
        };
        // Upstream's 600 seats: global-default (49, hand 6) gets min(⌈7.35⌉, 8) = 8.
        assert_eq!(level_max_seats(49, queue(6)), 8);
        assert_eq!(level_max_seats(245, queue(6)), 37);
        assert_eq!(level_max_seats(1, queue(6)), 1);
        assert_eq!(level_max_seats(49, Limit::Reject), 0);
    }
}
