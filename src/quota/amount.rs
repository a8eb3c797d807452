//! Amounts of a resource as quotas add and compare them: exact thousandths (upstream's
//! `MilliValue`), parsed from quantities and printed back in a quantity's canonical forms.

/// An amount in thousandths of a unit (millicores, millibytes, thousandths of an object).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Amount(pub i128);

impl Amount {
    /// A whole number of units.
    pub fn units(n: i128) -> Self {
        Self(n * 1000)
    }

    /// Parses a quantity (`500m`, `2Gi`, `1e3`, `1.5`), rounding up to a thousandth as upstream's
    /// `MilliValue`; `None` when it is not one.
    pub fn parse(q: &str) -> Option<Self> {
        scaled(q, 3).map(Self)
    }

    /// The amount as a quantity of `resource`: memory and storage in the largest binary (else
    /// decimal) suffix that divides it exactly, anything else whole or in `m`.
    pub fn format(self, resource: &str) -> String {
        if self.0 % 1000 != 0 {
            return format!("{}m", self.0);
        }
        let v = self.0 / 1000;
        if v != 0
            && (resource.contains("memory")
                || resource.contains("storage")
                || resource.contains("hugepages-"))
        {
            for (i, suffix) in ["Ei", "Pi", "Ti", "Gi", "Mi", "Ki"].iter().enumerate() {
                let unit = 1i128 << (10 * (6 - i));
                if v % unit == 0 {
                    return format!("{}{suffix}", v / unit);
                }
            }
            for (i, suffix) in ["E", "P", "T", "G", "M", "k"].iter().enumerate() {
                let unit = 10i128.pow(3 * (6 - i as u32));
                if v % unit == 0 {
                    return format!("{}{suffix}", v / unit);
                }
            }
        }
        v.to_string()
    }
}

/// A quantity (`500m`, `2Gi`, `1e3`, `1.5`) in units of 10^-`decimals`, rounded up as upstream's
/// `ScaledValue`; `None` when it is not one or does not fit.
pub fn scaled(q: &str, decimals: i32) -> Option<i128> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let (negative, digits) = match number.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, number.strip_prefix('+').unwrap_or(number)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole
            .chars()
            .chain(fraction.chars())
            .all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let mantissa: i128 = format!("{whole}{fraction}").parse().ok()?;
    // The value is mantissa × 10^-len(fraction) × suffix, in units of 10^-decimals.
    let (binary, exponent): (i128, i32) = match suffix {
        "" => (1, 0),
        "n" => (1, -9),
        "u" => (1, -6),
        "m" => (1, -3),
        "k" => (1, 3),
        "M" => (1, 6),
        "G" => (1, 9),
        "T" => (1, 12),
        "P" => (1, 15),
        "E" => (1, 18),
        "Ki" => (1 << 10, 0),
        "Mi" => (1 << 20, 0),
        "Gi" => (1 << 30, 0),
        "Ti" => (1 << 40, 0),
        "Pi" => (1 << 50, 0),
        "Ei" => (1 << 60, 0),
        exp => {
            let e = exp.strip_prefix(['e', 'E'])?;
            (1, e.parse().ok()?)
        }
    };
    let scale = exponent + decimals - fraction.len() as i32;
    let value = if scale >= 0 {
        mantissa
            .checked_mul(binary)?
            .checked_mul(10i128.checked_pow(scale as u32)?)?
    } else {
        let divisor = 10i128.checked_pow((-scale) as u32)?;
        let n = mantissa.checked_mul(binary)?;
        (n + divisor - 1) / divisor
    };
    Some(if negative { -value } else { value })
}

impl std::ops::Add for Amount {
    type Output = Amount;
    fn add(self, other: Amount) -> Amount {
        Amount(self.0 + other.0)
    }
}

impl std::ops::Sub for Amount {
    type Output = Amount;
    fn sub(self, other: Amount) -> Amount {
        Amount(self.0 - other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_become_exact_thousandths_and_print_back_canonically() {
        assert_eq!(Amount::parse("500m"), Some(Amount(500)));
        assert_eq!(Amount::parse("2"), Some(Amount(2000)));
        assert_eq!(Amount::parse("1.5"), Some(Amount(1500)));
        assert_eq!(Amount::parse("1Gi"), Some(Amount((1 << 30) * 1000)));
        assert_eq!(Amount::parse("1e3"), Some(Amount(1_000_000)));
        assert_eq!(Amount::parse("1n"), Some(Amount(1)));
        assert_eq!(Amount::parse("x"), None);
        assert_eq!(Amount(1500).format("requests.cpu"), "1500m");
        assert_eq!(Amount(2000).format("count/configmaps"), "2");
        assert_eq!(
            Amount::parse("3Gi").unwrap().format("requests.memory"),
            "3Gi"
        );
        assert_eq!(
            Amount::parse("1G").unwrap().format("requests.storage"),
            "1G"
        );
        assert_eq!(Amount(0).format("memory"), "0");
    }
}
