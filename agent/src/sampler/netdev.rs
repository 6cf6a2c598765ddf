//! Network I/O per interface from `/proc/net/dev`: one file, read whole at each sample.
//!
//! sysinfo's `Networks` listed the interfaces through netlink (`getifaddrs`) and read eight
//! files under `/sys/class/net/<if>/statistics` for each, about a quarter of an idle
//! agent's writer CPU (one flush a second, four interfaces); the sampler needs only the two
//! byte counters, which this one file has for every interface.

use std::path::Path;

/// Cumulative bytes received and transmitted by each interface, in the file's order.
pub fn read(path: &Path) -> Vec<(String, u64, u64)> {
    std::fs::read_to_string(path).map(|t| parse(&t)).unwrap_or_default()
}

/// [`read`]'s parse: after two header lines, `name: rx_bytes rx_packets … tx_bytes …`, the
/// transmitted bytes the ninth number. A line that does not have that shape is skipped.
pub fn parse(text: &str) -> Vec<(String, u64, u64)> {
    text.lines()
        .skip(2)
        .filter_map(|line| {
            // Interface names cannot hold `:` or spaces (the kernel's `dev_valid_name`).
            let (name, numbers) = line.split_once(':')?;
            let mut n = numbers.split_whitespace().map(str::parse::<u64>);
            let rx = n.next()?.ok()?;
            let tx = n.nth(7)?.ok()?;
            Some((name.trim().to_owned(), rx, tx))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_each_way_for_every_interface_and_odd_lines_skipped() {
        let text = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 222037647742 168030181    0    0    0     0          0         0 222037647742 168030181    0    0    0     0       0          0
  eth0: 309039082   12361    0    0    0     0          0         0   803825    9205    0    0    0     0       0          0
 short: 1 2 3
  veth-a1b2c3:18446744073709551615 1 0 0 0 0 0 0 7 1 0 0 0 0 0 0
";
        assert_eq!(
            parse(text),
            [
                ("lo".to_owned(), 222_037_647_742, 222_037_647_742),
                ("eth0".to_owned(), 309_039_082, 803_825),
                ("veth-a1b2c3".to_owned(), u64::MAX, 7),
            ]
        );
        assert!(parse("").is_empty());
    }

    #[test]
    fn this_host_has_its_loopback() {
        let found = read(Path::new("/proc/net/dev"));
        assert!(found.iter().any(|(name, ..)| name == "lo"), "{found:?}");
    }
}
