use super::*;

#[test]
fn keyed_files_parse_into_figures() {
    let stat = parse_flat_keyed("usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nbad\n");
    assert_eq!(stat.get("usage_usec"), Some(&1500));
    assert_eq!(stat.len(), 3);
}

#[test]
fn block_io_parses_in_both_versions() {
    let v1 = "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 1\n8:0 Total 12288\nTotal 12288\n";
    let want = vec![
        DeviceBytes {
            major: 8,
            minor: 0,
            op: "Read",
            value: 4096,
        },
        DeviceBytes {
            major: 8,
            minor: 0,
            op: "Write",
            value: 8192,
        },
    ];
    assert_eq!(parse_blkio_v1(v1), want);
    assert_eq!(
        parse_io_stat("8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n"),
        want
    );
}

#[test]
fn interfaces_but_loopback_are_listed() {
    let text = "Inter-|   Receive                                                |  Transmit\n \
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0\n  \
eth0:    2000      20    1    2    0     0          0         0     3000      30    3    4    0     0       0          0\n";
    assert_eq!(
        parse_net_dev(text),
        vec![InterfaceCounters {
            name: "eth0".into(),
            rx_bytes: 2000,
            rx_packets: 20,
            rx_errors: 1,
            rx_dropped: 2,
            tx_bytes: 3000,
            tx_packets: 30,
            tx_errors: 3,
            tx_dropped: 4,
        }]
    );
}

#[test]
fn a_v2_cgroup_reads_from_its_files_and_max_means_no_limit() {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        ("cpu.stat", "usage_usec 2000\nuser_usec 1500\nsystem_usec 500\nnr_periods 4\nnr_throttled 1\nthrottled_usec 30\n"),
        ("memory.current", "4096\n"),
        ("memory.max", "max\n"),
        ("memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n"),
        ("memory.stat", "anon 1024\nfile 2048\n"),
        ("pids.current", "2\n"),
        ("pids.max", "max\n"),
    ];
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let hierarchies = [Hierarchy {
        mount: dir.path().to_path_buf(),
        root: "/".into(),
        v1_controllers: None,
    }];
    let stats = CgroupFiles::default().read_stats(&hierarchies, &[dir.path().to_path_buf()], None);
    assert_eq!(stats.cpu.usage.total, 2_000_000);
    assert_eq!(
        (stats.cpu.usage.user, stats.cpu.usage.kernel),
        (1_500_000, 500_000)
    );
    assert_eq!(stats.cpu.throttling.throttled_time, 30_000);
    assert_eq!(stats.memory.usage.usage, 4096);
    assert_eq!(stats.memory.usage.limit, u64::MAX);
    assert_eq!(stats.memory.usage.failcnt, 3);
    assert_eq!(stats.memory.oom_kills, 1);
    assert_eq!(
        CgroupFiles::default().oom_kills(&hierarchies, &[dir.path().to_path_buf()]),
        1
    );
    assert_eq!(stats.memory.cache, 2048);
    assert_eq!(stats.memory.raw.get("anon"), Some(&1024));
    assert_eq!((stats.pids.current, stats.pids.limit), (2, 0));
}

/// memory.stat of a v1 cgroup holding 64 MiB of tmpfs and a child.
const V1_STAT: &str = "cache 1048576\nrss 2097152\nrss_huge 0\nshmem 0\nmapped_file 4096\n\
dirty 0\nwriteback 0\nswap 0\npgpgin 10\npgpgout 5\ninactive_anon 0\nactive_anon 2097152\n\
hierarchical_memory_limit 9223372036854771712\ntotal_cache 68157440\ntotal_rss 3145728\n\
total_rss_huge 0\ntotal_shmem 67108864\ntotal_mapped_file 8192\ntotal_dirty 0\n\
total_swap 0\ntotal_pgpgin 20\n";

/// memory.stat of a v2 cgroup (kernel 6.x: with `kernel`).
const V2_STAT: &str = "anon 3145728\nfile 68157440\nkernel 524288\nkernel_stack 32768\n\
pagetables 65536\nsec_pagetables 0\npercpu 1024\nsock 0\nvmalloc 0\nshmem 67108864\n\
zswap 0\nfile_mapped 8192\nfile_dirty 0\nslab_reclaimable 200000\nslab_unreclaimable 100000\n\
slab 300000\nanon_thp 0\n";

#[test]
fn usage_v1_figures_come_from_the_hierarchical_keys() {
    let b = memory_breakdown_v1(V1_STAT, 71_000_000, Some(400_000));
    assert_eq!(
        b,
        MemoryBreakdown {
            total: 71_000_000,
            anonymous: 3_145_728,
            page_cache: 1_048_576,
            mapped: 8192,
            shmem: 67_108_864,
            kernel: 400_000,
        }
    );
    // No kmem file: no kernel figure; no total_ keys: the plain ones.
    let b = memory_breakdown_v1("cache 300\nrss 100\nshmem 200\nmapped_file 50\n", 500, None);
    assert_eq!(
        (b.anonymous, b.page_cache, b.shmem, b.mapped, b.kernel),
        (100, 100, 200, 50, 0)
    );
}

#[test]
fn usage_v2_figures_split_shmem_from_file_and_sum_kernel_parts_on_old_kernels() {
    let b = memory_breakdown_v2(V2_STAT, 72_000_000);
    assert_eq!(
        b,
        MemoryBreakdown {
            total: 72_000_000,
            anonymous: 3_145_728,
            page_cache: 1_048_576,
            mapped: 8192,
            shmem: 67_108_864,
            kernel: 524_288,
        }
    );
    // Before 5.18 there is no `kernel` key: kernel_stack, slab, sock
    // (0), percpu and pagetables.
    let old = V2_STAT.replace("kernel 524288\n", "");
    assert_eq!(
        memory_breakdown_v2(&old, 0).kernel,
        32_768 + 300_000 + 1024 + 65_536
    );
}

#[test]
fn usage_figures_are_read_from_a_cgroup_directory() {
    let v1 = tempfile::tempdir().unwrap();
    std::fs::write(v1.path().join("memory.stat"), V1_STAT).unwrap();
    std::fs::write(v1.path().join("memory.usage_in_bytes"), "71000000\n").unwrap();
    std::fs::write(v1.path().join("memory.kmem.usage_in_bytes"), "400000\n").unwrap();
    let b = memory_breakdown(v1.path(), true).unwrap();
    assert_eq!(
        (b.total, b.shmem, b.kernel),
        (71_000_000, 67_108_864, 400_000)
    );
    let v2 = tempfile::tempdir().unwrap();
    std::fs::write(v2.path().join("memory.stat"), V2_STAT).unwrap();
    std::fs::write(v2.path().join("memory.current"), "72000000\n").unwrap();
    let b = memory_breakdown(v2.path(), false).unwrap();
    assert_eq!(
        (b.total, b.anonymous, b.kernel),
        (72_000_000, 3_145_728, 524_288)
    );
    // A v2 cgroup whose parent does not enable the controller.
    let bare = tempfile::tempdir().unwrap();
    let missing = memory_breakdown(bare.path(), false).unwrap_err();
    assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
}
