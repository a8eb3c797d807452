//! Upstream's IP and CIDR libraries (`k8s.io/apiserver/pkg/cel/library/ip.go`, `cidr.go`):
//! `ip(s)`, `isIP(s)`, `ip.isCanonical(s)`, `cidr(s)`, `isCIDR(s)` and what `net.IP` and
//! `net.CIDR` values answer. IPv4-mapped IPv6 addresses and zones are refused, as upstream.

use super::{CelResult, Overload, opaque, ret, string_of, values};
use ::cel::common::types::{STRING_TYPE, Type};
use ::cel::common::value::CowVal;
use ::cel::objects::Opaque;
use ::cel::{Env, ExecutionError, Value};
use ipnet::IpNet;
use std::net::IpAddr;
use std::sync::Arc;

/// The CEL type of IP addresses.
fn ip_type() -> Type {
    Type::new_opaque_type("net.IP")
}
/// The CEL type of networks.
fn cidr_type() -> Type {
    Type::new_opaque_type("net.CIDR")
}

/// An IP address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ip(IpAddr);

impl Opaque for Ip {
    fn runtime_type_name(&self) -> &str {
        "net.IP"
    }
}

/// A network: an address (host bits kept, as written) and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cidr(IpNet);

impl Opaque for Cidr {
    fn runtime_type_name(&self) -> &str {
        "net.CIDR"
    }
}

/// Registers the IP and CIDR libraries' functions.
pub(super) fn register(env: &mut Env) -> Result<(), ::cel::DeclarationError> {
    let (ip, cidr) = (ip_type, cidr_type);
    env.add_overload("ip", "string_to_ip", vec![STRING_TYPE], to_ip)?;
    env.add_overload("isIP", "is_ip", vec![STRING_TYPE], is_ip)?;
    env.add_overload(
        "ip.isCanonical",
        "ip_is_canonical",
        vec![STRING_TYPE],
        is_canonical,
    )?;
    env.add_overload("string", "ip_to_string", vec![ip()], to_string)?;
    env.add_member_overload("family", "ip_family", ip(), vec![], family)?;
    for (name, id, test) in [
        (
            "isUnspecified",
            "ip_is_unspecified",
            is_unspecified as Overload,
        ),
        ("isLoopback", "ip_is_loopback", is_loopback),
        (
            "isLinkLocalMulticast",
            "ip_is_link_local_multicast",
            is_link_local_multicast,
        ),
        (
            "isLinkLocalUnicast",
            "ip_is_link_local_unicast",
            is_link_local_unicast,
        ),
        ("isGlobalUnicast", "ip_is_global_unicast", is_global_unicast),
    ] {
        env.add_member_overload(name, id, ip(), vec![], test)?;
    }

    env.add_overload("cidr", "string_to_cidr", vec![STRING_TYPE], to_cidr)?;
    env.add_overload("isCIDR", "is_cidr", vec![STRING_TYPE], is_cidr)?;
    env.add_overload("string", "cidr_to_string", vec![cidr()], to_string)?;
    env.add_member_overload(
        "containsIP",
        "cidr_contains_ip_ip",
        cidr(),
        vec![ip()],
        contains_ip,
    )?;
    env.add_member_overload(
        "containsIP",
        "cidr_contains_ip_string",
        cidr(),
        vec![STRING_TYPE],
        contains_ip,
    )?;
    env.add_member_overload(
        "containsCIDR",
        "cidr_contains_cidr",
        cidr(),
        vec![cidr()],
        contains_cidr,
    )?;
    env.add_member_overload(
        "containsCIDR",
        "cidr_contains_cidr_string",
        cidr(),
        vec![STRING_TYPE],
        contains_cidr,
    )?;
    env.add_member_overload("ip", "cidr_ip", cidr(), vec![], cidr_ip)?;
    env.add_member_overload("masked", "cidr_masked", cidr(), vec![], masked)?;
    env.add_member_overload(
        "prefixLength",
        "cidr_prefix_length",
        cidr(),
        vec![],
        prefix_length,
    )?;
    Ok(())
}

/// Parses an address as upstream's `parseIPAddr`.
fn parse_ip(raw: &str) -> Result<IpAddr, String> {
    if let Some((addr, _)) = raw.split_once('%')
        && addr.parse::<IpAddr>().is_ok()
    {
        return Err(format!("IP address {raw:?} with zone value is not allowed"));
    }
    let addr: IpAddr = raw.parse().map_err(|_| {
        format!(
            "IP Address {raw:?} parse error during conversion from string: ParseAddr({raw:?}): unable to parse IP"
        )
    })?;
    if let IpAddr::V6(v6) = addr
        && v6.to_ipv4_mapped().is_some()
    {
        return Err(format!("IPv4-mapped IPv6 address {raw:?} is not allowed"));
    }
    Ok(addr)
}

/// Parses a network as upstream's `parseCIDR`.
fn parse_cidr(raw: &str) -> Result<IpNet, String> {
    let net: IpNet = raw.parse().map_err(|_| {
        format!(
            "network address parse error during conversion from string: netip.ParsePrefix({raw:?}): invalid prefix"
        )
    })?;
    if let IpAddr::V6(v6) = net.addr()
        && v6.to_ipv4_mapped().is_some()
    {
        return Err(format!("IPv4-mapped IPv6 address {raw:?} is not allowed"));
    }
    Ok(net)
}

fn failed(function: &str, message: String) -> ExecutionError {
    ExecutionError::function_error(function, message)
}

fn ip_of(v: &Value, function: &str) -> Result<IpAddr, ExecutionError> {
    match v {
        Value::String(s) => parse_ip(s).map_err(|m| failed(function, m)),
        _ => opaque::<Ip>(v, function).map(|ip| ip.0),
    }
}

fn cidr_of(v: &Value, function: &str) -> Result<IpNet, ExecutionError> {
    match v {
        Value::String(s) => parse_cidr(s).map_err(|m| failed(function, m)),
        _ => opaque::<Cidr>(v, function).map(|c| c.0),
    }
}

fn to_ip<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    let args = values(&args)?;
    ret(Value::Opaque(Arc::new(Ip(ip_of(&args[0], "ip")?))))
}

fn is_ip<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    let args = values(&args)?;
    ret(Value::Bool(parse_ip(&string_of(&args[0], "isIP")?).is_ok()))
}

fn is_canonical<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    let args = values(&args)?;
    let raw = string_of(&args[0], "ip.isCanonical")?;
    let ip = parse_ip(&raw).map_err(|m| failed("ip.isCanonical", m))?;
    ret(Value::Bool(ip.to_string() == *raw))
}

fn to_string<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    let args = values(&args)?;
    let s = match &args[0] {
        Value::Opaque(o) if o.runtime_type_name() == "net.CIDR" => {
            cidr_of(&args[0], "string")?.to_string()
        }
        v => ip_of(v, "string")?.to_string(),
    };
    ret(Value::String(Arc::new(s)))
}

fn family<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    let args = values(&args)?;
    let family = if ip_of(&args[0], "family")?.is_ipv4() {
        4
    } else {
        6
    };
    ret(Value::Int(family))
}

fn test<'b, 'v>(
    args: Vec<CowVal<'b, 'v>>,
    function: &str,
    f: fn(IpAddr) -> bool,
) -> CelResult<'b, 'v> {
    let args = values(&args)?;
    ret(Value::Bool(f(ip_of(&args[0], function)?)))
}

fn is_unspecified<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    test(args, "isUnspecified", |ip| ip.is_unspecified())
}

fn is_loopback<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    test(args, "isLoopback", |ip| ip.is_loopback())
}

/// Go's `IsLinkLocalMulticast`: 224.0.0.0/24 and ff02::/16 (any flags).
fn link_local_multicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.octets()[..3] == [224, 0, 0],
        IpAddr::V6(v6) => v6.octets()[0] == 0xff && v6.octets()[1] & 0x0f == 0x02,
    }
}

/// Go's `IsLinkLocalUnicast`: 169.254.0.0/16 and fe80::/10.
fn link_local_unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
    }
}

fn is_link_local_multicast<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    test(args, "isLinkLocalMulticast", link_local_multicast)
}

fn is_link_local_unicast<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    test(args, "isLinkLocalUnicast", link_local_unicast)
}

/// Go's `IsGlobalUnicast`: neither unspecified, loopback, multicast, link-local unicast nor
/// the IPv4 broadcast address (private ranges included).
fn is_global_unicast<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    test(args, "isGlobalUnicast", |ip| {
        let broadcast = matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
        !(ip.is_unspecified()
            || ip.is_loopback()
            || ip.is_multicast()
            || link_local_unicast(ip)
            || broadcast)
    })
}

fn to_cidr<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    let args = values(&args)?;
    ret(Value::Opaque(Arc::new(Cidr(cidr_of(&args[0], "cidr")?))))
}

fn is_cidr<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    let args = values(&args)?;
    ret(Value::Bool(
        parse_cidr(&string_of(&args[0], "isCIDR")?).is_ok(),
    ))
}

fn contains_ip<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    let args = values(&args)?;
    let net = cidr_of(&args[0], "containsIP")?;
    ret(Value::Bool(net.contains(&ip_of(&args[1], "containsIP")?)))
}

fn contains_cidr<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    let args = values(&args)?;
    let net = cidr_of(&args[0], "containsCIDR")?;
    let other = cidr_of(&args[1], "containsCIDR")?;
    ret(Value::Bool(
        net.prefix_len() <= other.prefix_len() && net.contains(&other.addr()),
    ))
}

fn cidr_ip<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    let args = values(&args)?;
    ret(Value::Opaque(Arc::new(Ip(cidr_of(&args[0], "ip")?.addr()))))
}

fn masked<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    let args = values(&args)?;
    ret(Value::Opaque(Arc::new(Cidr(
        cidr_of(&args[0], "masked")?.trunc(),
    ))))
}

fn prefix_length<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> CelResult<'b, 'v> {
    let args = values(&args)?;
    ret(Value::Int(
        cidr_of(&args[0], "prefixLength")?.prefix_len() as i64
    ))
}

#[cfg(test)]
mod tests {
    use super::super::tests::eval;

    #[test]
    fn addresses_and_networks_answer_as_upstream() {
        for (expr, want) in [
            ("ip('10.0.0.1').family()", "4"),
            (
                "ip('fe80::1').family() == 6 && ip('fe80::1').isLinkLocalUnicast()",
                "true",
            ),
            (
                "ip('127.0.0.1').isLoopback() && ip('::').isUnspecified()",
                "true",
            ),
            (
                "ip('224.0.0.5').isLinkLocalMulticast() && ip('ff02::1').isLinkLocalMulticast()",
                "true",
            ),
            (
                "ip('10.1.2.3').isGlobalUnicast() && !ip('255.255.255.255').isGlobalUnicast()",
                "true",
            ),
            (
                "ip.isCanonical('2001:db8::1') && !ip.isCanonical('2001:DB8::1')",
                "true",
            ),
            (
                "isIP('1.2.3.4') && !isIP('1.2.3') && !isIP('::ffff:1.2.3.4')",
                "true",
            ),
            ("string(ip('2001:0db8::0001'))", "2001:db8::1"),
            (
                "ip('10.0.0.1') == ip('10.0.0.1') && ip('10.0.0.1') != ip('10.0.0.2')",
                "true",
            ),
            (
                "cidr('10.0.0.0/8').containsIP(ip('10.1.2.3')) && cidr('10.0.0.0/8').containsIP('10.0.0.1')",
                "true",
            ),
            ("cidr('10.0.0.0/8').containsIP('11.0.0.1')", "false"),
            (
                "cidr('10.0.0.0/8').containsCIDR('10.1.0.0/16') && !cidr('10.1.0.0/16').containsCIDR('10.0.0.0/8')",
                "true",
            ),
            ("string(cidr('192.168.1.7/24').masked())", "192.168.1.0/24"),
            ("string(cidr('192.168.1.7/24').ip())", "192.168.1.7"),
            ("cidr('2001:db8::/32').prefixLength()", "32"),
            (
                "isCIDR('10.0.0.0/8') && !isCIDR('10.0.0.0') && !isCIDR('10.0.0.0/33')",
                "true",
            ),
        ] {
            assert_eq!(eval(expr), Ok(want.to_string()), "{expr}");
        }
        assert!(
            eval("ip('::ffff:1.2.3.4')")
                .unwrap_err()
                .contains("IPv4-mapped IPv6 address \"::ffff:1.2.3.4\" is not allowed")
        );
        assert!(
            eval("ip('fe80::1%eth0')")
                .unwrap_err()
                .contains("with zone value is not allowed")
        );
    }
}
