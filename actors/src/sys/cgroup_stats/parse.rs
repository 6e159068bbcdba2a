//! Parsers of control files and `/proc/PID/net/dev`.

use std::collections::BTreeMap;

use super::{DeviceBytes, InterfaceCounters};

/// "key value" lines, as cpu.stat, memory.stat and cpuacct.stat are.
pub fn parse_flat_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let key = parts.next()?;
            let value = parts.next()?.parse().ok()?;
            Some((key.to_owned(), value))
        })
        .collect()
}

fn device(text: &str) -> Option<(u64, u64)> {
    let (major, minor) = text.split_once(':')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// v1 `blkio.throttle.io_service_bytes_recursive`: "MAJ:MIN Op bytes"
/// lines (Read and Write kept), and a "Total" line.
pub fn parse_blkio_v1(text: &str) -> Vec<DeviceBytes> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let (major, minor) = device(parts.next()?)?;
            let op = match parts.next()? {
                "Read" => "Read",
                "Write" => "Write",
                _ => return None,
            };
            let value = parts.next()?.parse().ok()?;
            Some(DeviceBytes {
                major,
                minor,
                op,
                value,
            })
        })
        .collect()
}

/// v2 `io.stat`: "MAJ:MIN rbytes=N wbytes=N ..." lines.
pub fn parse_io_stat(text: &str) -> Vec<DeviceBytes> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let Some((major, minor)) = parts.next().and_then(device) else {
            continue;
        };
        for field in parts {
            let Some((key, value)) = field.split_once('=') else {
                continue;
            };
            let op = match key {
                "rbytes" => "Read",
                "wbytes" => "Write",
                _ => continue,
            };
            if let Ok(value) = value.parse() {
                out.push(DeviceBytes {
                    major,
                    minor,
                    op,
                    value,
                });
            }
        }
    }
    out
}

/// `/proc/PID/net/dev`, loopback left out.
pub fn parse_net_dev(text: &str) -> Vec<InterfaceCounters> {
    text.lines()
        .skip(2)
        .filter_map(|line| {
            let (name, counters) = line.split_once(':')?;
            let name = name.trim();
            if name == "lo" {
                return None;
            }
            let n: Vec<u64> = counters
                .split_whitespace()
                .filter_map(|c| c.parse().ok())
                .collect();
            (n.len() >= 12).then(|| InterfaceCounters {
                name: name.to_owned(),
                rx_bytes: n[0],
                rx_packets: n[1],
                rx_errors: n[2],
                rx_dropped: n[3],
                tx_bytes: n[8],
                tx_packets: n[9],
                tx_errors: n[10],
                tx_dropped: n[11],
            })
        })
        .collect()
}
