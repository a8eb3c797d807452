//! Small address helpers shared by the options and the service allocator.

use ipnet::IpNet;
use std::net::IpAddr;

/// The address at `index` inside `net` (index 1 is the first usable address).
pub fn indexed_ip(net: &IpNet, index: u128) -> Option<IpAddr> {
    match net {
        IpNet::V4(v4) => {
            let base = u32::from(v4.network()) as u128;
            u32::try_from(base + index)
                .ok()
                .map(|n| IpAddr::V4(n.into()))
        }
        IpNet::V6(v6) => u128::from(v6.network())
            .checked_add(index)
            .map(|n| IpAddr::V6(n.into())),
    }
}
