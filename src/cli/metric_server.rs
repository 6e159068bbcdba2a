//! `sandvisor metric-server --listen ADDR [--sandbox ID]`: serves
//! `GET /metrics` for Prometheus, gathering `Metrics.Export` from the
//! supervisor of one sandbox, or of every sandbox under `--root`, into one
//! OpenMetrics exposition (each sample carries its `sandbox` label).

use std::collections::BTreeSet;
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use crossbeam_channel::{Receiver, Sender};
use nix::sys::socket::{setsockopt, sockopt};
use nix::sys::time::{TimeVal, TimeValLike};
use sandvisor_actors::api::metrics::{Export, Exported};
use sandvisor_actors::api::Method;
use tiny_http::{Header, Request, Response};

use super::error::{io, RunError};
use super::GlobalOptions;
use crate::client::Client;
use crate::state::StateDir;

/// How long a scrape waits for one supervisor's export.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client has to send its request (or its next one, on a kept
/// connection), and to take each part of the answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// How many requests are answered at once: a scrape waits on supervisors,
/// so one slow sandbox (or one slow client) holds one of these only.
const SCRAPERS: usize = 4;
/// How long accepting pauses after it failed (out of descriptors, say).
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// The content type OpenMetrics text is served as.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Arguments of `sandvisor metric-server`.
#[derive(Debug, Args)]
pub struct MetricServerArgs {
    /// Address to serve on, e.g. 127.0.0.1:9464 (port 0 picks a free one;
    /// the address bound is printed on standard output).
    #[arg(long, value_name = "ADDR")]
    listen: SocketAddr,
    /// Only this sandbox (its root container's id); every sandbox under
    /// --root when absent.
    #[arg(long, value_name = "ID")]
    sandbox: Option<String>,
}

/// Serves /metrics until killed.
pub fn serve(global: &GlobalOptions, args: MetricServerArgs) -> Result<ExitCode, RunError> {
    let state = StateDir::open(&global.root)?;
    if let Some(id) = &args.sandbox {
        // An unknown sandbox is a mistake to report now, not an empty page.
        let entry = state.load(id)?;
        if entry.sandbox != *id {
            return Err(RunError::Refused(format!(
                "container {id:?} is not a sandbox: it belongs to {:?}",
                entry.sandbox
            )));
        }
    }
    let listener = TcpListener::bind(args.listen)
        .map_err(|e| RunError::Refused(format!("listen on {}: {e}", args.listen)))?;
    // Linux gives each accepted connection the listening socket's
    // timeouts: a client that sends its request, or takes its answer,
    // slowly holds its own connection only, and not for long.
    let timeout = TimeVal::milliseconds(CLIENT_TIMEOUT.as_millis() as i64);
    setsockopt(&listener, sockopt::ReceiveTimeout, &timeout)
        .and_then(|()| setsockopt(&listener, sockopt::SendTimeout, &timeout))
        .map_err(|e| io("set the connection timeouts")(e.into()))?;
    let bound = listener
        .local_addr()
        .map_err(io("read the listening address"))?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "serving metrics on http://{bound}/metrics")
        .and_then(|()| stdout.flush())
        .map_err(io("write standard output"))?;
    let only = args.sandbox.as_deref();
    std::thread::scope(|scope| {
        let (requests, queue) = crossbeam_channel::bounded::<Request>(SCRAPERS);
        for n in 0..SCRAPERS {
            let queue = queue.clone();
            let state = &state;
            std::thread::Builder::new()
                .name(format!("scrape-{n}"))
                .spawn_scoped(scope, move || answer_all(&queue, state, only))
                .map_err(io("start a thread"))?;
        }
        dispatch(&listener, &requests)
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Reads the requests of the listener's connections (the HTTP server reads
/// each connection on a thread of its own) and hands each to a scraper.
fn dispatch(listener: &TcpListener, scrapers: &Sender<Request>) -> Result<(), RunError> {
    loop {
        let socket = listener
            .try_clone()
            .map_err(io("copy the listening socket"))?;
        let server = tiny_http::Server::from_listener(socket, None)
            .map_err(|e| RunError::Refused(format!("serve HTTP: {e}")))?;
        loop {
            match server.recv() {
                Ok(request) => {
                    if scrapers.send(request).is_err() {
                        return Ok(());
                    }
                }
                Err(e) => {
                    // The server stops accepting after a failure: a new
                    // one takes the same socket on.
                    eprintln!("sandvisor metric-server: accept: {e}");
                    std::thread::sleep(ACCEPT_PAUSE);
                    break;
                }
            }
        }
    }
}

/// Answers the requests handed to this scraper.
fn answer_all(queue: &Receiver<Request>, state: &StateDir, only: Option<&str>) {
    for request in queue {
        if let Err(e) = answer(request, state, only) {
            eprintln!("sandvisor metric-server: {e}");
        }
    }
}

/// Answers one request.
fn answer(request: Request, state: &StateDir, only: Option<&str>) -> std::io::Result<()> {
    use tiny_http::Method::{Get, Head};
    let path = request.url().split('?').next().unwrap_or("");
    let (status, content_type, body) = match (request.method(), path) {
        (Get | Head, "/metrics") => (200, OPENMETRICS, scrape(state, only)),
        (Get | Head, _) => (
            404,
            "text/plain; charset=utf-8",
            "metrics are at /metrics\n".to_owned(),
        ),
        _ => (
            405,
            "text/plain; charset=utf-8",
            "only GET and HEAD\n".to_owned(),
        ),
    };
    let content_type = Header::from_bytes("Content-Type", content_type)
        .map_err(|()| std::io::Error::other("a bad Content-Type header"))?;
    // The body's length is known: it goes with a Content-Length (never
    // chunked), and a HEAD request gets the headers only.
    let response = Response::from_string(body)
        .with_status_code(status)
        .with_header(content_type)
        .with_chunked_threshold(usize::MAX);
    request.respond(response)
}

/// One exposition of the metrics of `only`, or of every sandbox whose
/// supervisor answers.
fn scrape(state: &StateDir, only: Option<&str>) -> String {
    let mut sockets = BTreeSet::new();
    for id in state.ids().unwrap_or_default() {
        let Ok(entry) = state.load(&id) else {
            continue;
        };
        if only.is_none_or(|sandbox| entry.sandbox == sandbox) {
            sockets.insert(entry.socket);
        }
    }
    let texts: Vec<String> = sockets
        .iter()
        .filter_map(|socket| match export(socket) {
            Ok(text) => Some(text),
            Err(e) => {
                // A sandbox that stopped between the listing and the call
                // has no metrics left: it is left out, not an error page.
                eprintln!(
                    "sandvisor metric-server: export from {}: {e}",
                    socket.display()
                );
                None
            }
        })
        .collect();
    merge(&texts)
}

fn export(socket: &std::path::Path) -> Result<String, RunError> {
    let client = Client::connect(socket)?;
    let args = serde_cbor::Value::Map(Default::default());
    let (value, _) = client.call_timeout(Export::NAME, &args, Vec::new(), EXPORT_TIMEOUT)?;
    let exported: Exported = serde_cbor::value::from_value(value)
        .map_err(|e| RunError::Refused(format!("decode the export: {e}")))?;
    Ok(exported.text)
}

/// Merges OpenMetrics expositions: each family once (its HELP, TYPE and
/// UNIT lines from the first text that has it), with the samples of every
/// text, then one `# EOF`.
pub fn merge(texts: &[String]) -> String {
    let mut families: Vec<(String, Vec<&str>, Vec<&str>)> = Vec::new();
    for text in texts {
        let mut current: Option<usize> = None;
        for line in text.lines() {
            if line == "# EOF" {
                break;
            }
            if let Some(meta) = line.strip_prefix("# ") {
                let name = meta.split_whitespace().nth(1).unwrap_or("");
                let index = match families.iter().position(|(n, _, _)| n == name) {
                    Some(i) => i,
                    None => {
                        families.push((name.to_owned(), Vec::new(), Vec::new()));
                        families.len() - 1
                    }
                };
                let headers = &mut families[index].1;
                let kind = meta.split_whitespace().next().unwrap_or("");
                if !headers
                    .iter()
                    .any(|h| h.split_whitespace().nth(1) == Some(kind))
                {
                    headers.push(line);
                }
                current = Some(index);
            } else if let Some(i) = current {
                families[i].2.push(line);
            }
        }
    }
    let mut out = String::new();
    for (_, headers, samples) in families {
        for line in headers.into_iter().chain(samples) {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push_str("# EOF\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_of_several_sandboxes_are_merged_once_each() {
        let a = "# HELP x Calls.\n# TYPE x counter\nx_total{sandbox=\"a\"} 1\n# HELP g G.\n# TYPE g gauge\ng{sandbox=\"a\"} 5\n# EOF\n";
        let b = "# HELP x Calls.\n# TYPE x counter\nx_total{sandbox=\"b\"} 2\n# HELP h H.\n# TYPE h gauge\nh{sandbox=\"b\"} 7\n# EOF\n";
        assert_eq!(
            merge(&[a.to_owned(), b.to_owned()]),
            "# HELP x Calls.\n# TYPE x counter\nx_total{sandbox=\"a\"} 1\nx_total{sandbox=\"b\"} 2\n\
             # HELP g G.\n# TYPE g gauge\ng{sandbox=\"a\"} 5\n\
             # HELP h H.\n# TYPE h gauge\nh{sandbox=\"b\"} 7\n# EOF\n"
        );
        assert_eq!(merge(&[]), "# EOF\n");
    }
}
