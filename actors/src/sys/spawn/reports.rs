//! The supervisor's side of a status pipe: the reports a spawned child
//! (or a resident spawner) writes between `clone3` and `execve`.

use std::os::fd::OwnedFd;

use nix::fcntl::OFlag;

use crate::sys::plan::ChildReport;

/// Reads a child's status pipe report by report.
pub struct ReportReader {
    fd: tokio::io::unix::AsyncFd<OwnedFd>,
    bytes: Vec<u8>,
    parsed: usize,
}

impl ReportReader {
    /// Watches the read end of a status pipe.
    pub fn new(fd: OwnedFd) -> std::io::Result<Self> {
        nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
        Ok(ReportReader {
            fd: crate::sys::socket::register_async(fd)?,
            bytes: Vec::new(),
            parsed: 0,
        })
    }

    /// Waits for more bytes; returns the reports they complete and whether
    /// the pipe has ended.
    pub async fn next_batch(mut self) -> std::io::Result<(Self, Vec<ChildReport>, bool)> {
        let mut buf = [0u8; 4096];
        let ended = loop {
            let mut ready = self.fd.readable().await?;
            match ready
                .try_io(|f| nix::unistd::read(f.get_ref(), &mut buf).map_err(std::io::Error::from))
            {
                Err(_would_block) => continue,
                Ok(Ok(0)) => break true,
                Ok(Ok(n)) => {
                    self.bytes.extend_from_slice(&buf[..n]);
                    break false;
                }
                Ok(Err(e)) => return Err(e),
            }
        };
        // A report cut by the read waits for its end.
        let mut reports = Vec::new();
        let mut de = serde_cbor::Deserializer::from_slice(&self.bytes[self.parsed..])
            .into_iter::<ChildReport>();
        while let Some(Ok(report)) = de.next() {
            reports.push(report);
        }
        self.parsed += de.byte_offset();
        Ok((self, reports, ended))
    }
}
