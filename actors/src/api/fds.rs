//! File descriptors that travel beside a message's CBOR body.

use std::fmt;
use std::os::fd::{AsRawFd, OwnedFd};

/// The descriptors bound to one request or reply frame, in frame order.
/// They are not part of the CBOR body; a body refers to them by index.
#[derive(Default)]
pub struct Fds(pub Vec<OwnedFd>);

impl Fds {
    /// No descriptors.
    pub fn none() -> Self {
        Fds(Vec::new())
    }

    /// How many descriptors are held.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when none are held.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Takes the descriptors out, leaving none.
    pub fn take(&mut self) -> Vec<OwnedFd> {
        std::mem::take(&mut self.0)
    }
}

impl fmt::Debug for Fds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|fd| fd.as_raw_fd()))
            .finish()
    }
}

/// Descriptors compare by count: their numbers differ between processes.
impl PartialEq for Fds {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len()
    }
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for Fds {
    fn arbitrary(_: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Fds::none())
    }
}

/// A message (arguments or reply) that may carry descriptors.
pub trait CarriesFds {
    /// Takes the descriptors to send with this message.
    fn take_fds(&mut self) -> Vec<OwnedFd> {
        Vec::new()
    }

    /// Binds received descriptors to this message; refuses any by default,
    /// returning what was wrong.
    fn attach_fds(&mut self, fds: Vec<OwnedFd>) -> Result<(), String> {
        if fds.is_empty() {
            Ok(())
        } else {
            Err(format!("takes no file descriptors, got {}", fds.len()))
        }
    }
}
