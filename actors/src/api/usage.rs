//! `Usage.*`: the sandbox's memory use, by call (`Usage.Collect`) and
//! through a shared page the supervisor keeps current (`Usage.UsageFD`).

use std::os::fd::OwnedFd;

use serde::{Deserialize, Serialize};

use super::{CarriesFds, Fds, Method};

/// `Usage.Collect`: the sandbox's memory use, from its memory cgroup.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Collect {
    /// Also break it down per container (one more cgroup read each);
    /// without it, the call reads only the sandbox's cgroup.
    #[serde(default)]
    pub full: bool,
}

impl Method for Collect {
    const NAME: &'static str = "Usage.Collect";
    type Reply = MemoryUsage;
}

impl CarriesFds for Collect {}

/// The reply to [`Collect`]: bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryUsage {
    /// Everything charged to the sandbox's memory cgroup (the kernel's
    /// counter: v1 `memory.usage_in_bytes`, v2 `memory.current`).
    pub total: u64,
    /// Anonymous memory.
    pub anonymous: u64,
    /// File page cache, tmpfs and shared memory left out.
    pub page_cache: u64,
    /// File pages (page cache and shmem) mapped into processes.
    pub mapped: u64,
    /// tmpfs and shared memory.
    pub shmem: u64,
    /// Kernel memory.
    pub kernel: u64,
    /// The supervisor's own resident set (it is not in the sandbox's cgroup).
    pub supervisor_rss: u64,
    /// With `full`: each container that has a memory cgroup, by id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub containers: Option<Vec<ContainerMemoryUsage>>,
}

impl CarriesFds for MemoryUsage {}

/// One container's memory use in [`MemoryUsage`], from its own cgroup.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerMemoryUsage {
    /// The container id.
    pub id: String,
    /// As [`MemoryUsage::total`], for the container's cgroup.
    pub total: u64,
    /// Anonymous memory.
    pub anonymous: u64,
    /// File page cache.
    pub page_cache: u64,
    /// Mapped file pages.
    pub mapped: u64,
    /// tmpfs and shared memory.
    pub shmem: u64,
    /// Kernel memory.
    pub kernel: u64,
    /// False for a container whose spec put its cgroup (`cgroupsPath`)
    /// outside the sandbox's: the sandbox's figures do not count it.
    pub in_sandbox_cgroup: bool,
}

/// `Usage.UsageFD`: a read-only descriptor of the usage page, which the
/// supervisor keeps current from then on (PROTOCOL.md, "The usage page").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct UsageFd {}

impl Method for UsageFd {
    const NAME: &'static str = "Usage.UsageFD";
    type Reply = UsageFdReply;
}

impl CarriesFds for UsageFd {}

/// The reply to [`UsageFd`]; it carries one descriptor, the page's.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageFdReply {
    /// The page's layout version.
    pub version: u32,
    /// Its size in bytes.
    pub size: u64,
    /// How often the supervisor rewrites it, in milliseconds.
    pub interval_ms: u64,
    /// The page (not part of the body).
    #[serde(skip)]
    pub fds: Fds,
}

impl CarriesFds for UsageFdReply {
    fn take_fds(&mut self) -> Vec<OwnedFd> {
        self.fds.take()
    }

    fn attach_fds(&mut self, fds: Vec<OwnedFd>) -> Result<(), String> {
        if fds.len() != 1 {
            return Err(format!(
                "expected the usage page's descriptor, got {}",
                fds.len()
            ));
        }
        self.fds = Fds(fds);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Request;
    use crate::wire::RawRequest;

    fn decode(method: &str, args: Option<&[u8]>, fds: Vec<OwnedFd>) -> Result<Request, String> {
        let raw = RawRequest {
            id: 1,
            method,
            args,
        };
        Request::decode(&raw, fds).map_err(|e| e.to_string())
    }

    #[test]
    fn usage_requests_decode_with_defaults_and_refuse_descriptors() {
        assert_eq!(
            decode("Usage.Collect", None, Vec::new()),
            Ok(Request::Collect(Collect { full: false }))
        );
        let full = serde_cbor::to_vec(&serde_cbor::Value::Map(
            [(
                serde_cbor::Value::Text("full".into()),
                serde_cbor::Value::Bool(true),
            )]
            .into(),
        ))
        .unwrap();
        assert_eq!(
            decode("Usage.Collect", Some(&full), Vec::new()),
            Ok(Request::Collect(Collect { full: true }))
        );
        assert_eq!(
            decode("Usage.UsageFD", None, Vec::new()),
            Ok(Request::UsageFd(UsageFd {}))
        );
        let (a, _b) = nix::unistd::pipe().unwrap();
        assert_eq!(
            decode("Usage.UsageFD", None, vec![a]),
            Err("bad file descriptors for Usage.UsageFD: takes no file descriptors, got 1".into())
        );
    }

    #[test]
    fn a_usage_fd_reply_takes_exactly_one_descriptor() {
        let mut reply = UsageFdReply {
            version: 1,
            size: 4096,
            interval_ms: 250,
            fds: Fds::none(),
        };
        assert!(reply.attach_fds(Vec::new()).is_err());
        let (a, b) = nix::unistd::pipe().unwrap();
        assert!(reply.attach_fds(vec![a, b]).is_err());
        let (a, _b) = nix::unistd::pipe().unwrap();
        assert_eq!(reply.attach_fds(vec![a]), Ok(()));
        assert_eq!(reply.take_fds().len(), 1);
    }
}
