//! Guest stdout/stderr: passed through to the host's, one line at a time,
//! each line prefixed with `[component-id]` so that output from concurrent
//! requests and different components stays readable.
//!
//! A guest's `eprintln!` may reach the host as several writes, so bytes are
//! buffered until a newline; a line is written with one `write_all` on the
//! locked host stream so lines from concurrent instances never interleave.
//! A trailing partial line is written when the guest's stream is dropped
//! (at the latest when the request's store goes away).

use std::io::Write;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Longest line kept in memory before it is written out unfinished.
const MAX_LINE: usize = 64 * 1024;

#[derive(Clone, Copy)]
enum Target {
    Stdout,
    Stderr,
}

/// A `StdoutStream` for one component instance.
#[derive(Clone)]
pub struct PrefixedStdio {
    prefix: Arc<str>,
    target: Target,
}

impl PrefixedStdio {
    pub fn stdout(component_id: &str) -> Self {
        Self { prefix: component_id.into(), target: Target::Stdout }
    }

    pub fn stderr(component_id: &str) -> Self {
        Self { prefix: component_id.into(), target: Target::Stderr }
    }

    fn writer(&self) -> LineWriter {
        LineWriter { prefix: self.prefix.clone(), target: self.target, buf: Vec::new() }
    }
}

impl IsTerminal for PrefixedStdio {
    // Lines are re-framed with a prefix, so guests should not send
    // terminal control sequences.
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for PrefixedStdio {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.writer())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.writer())
    }
}

struct LineWriter {
    prefix: Arc<str>,
    target: Target,
    buf: Vec<u8>,
}

impl LineWriter {
    fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        while let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=pos).collect();
            self.emit(&line[..line.len() - 1]);
        }
        if self.buf.len() > MAX_LINE {
            let line = std::mem::take(&mut self.buf);
            self.emit(&line);
        }
    }

    fn emit(&self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut out = Vec::with_capacity(self.prefix.len() + line.len() + 4);
        out.push(b'[');
        out.extend_from_slice(self.prefix.as_bytes());
        out.extend_from_slice(b"] ");
        out.extend_from_slice(line);
        out.push(b'\n');
        // Output is best effort: a closed host stdout must not fail the guest.
        let _ = match self.target {
            Target::Stdout => std::io::stdout().lock().write_all(&out),
            Target::Stderr => std::io::stderr().lock().write_all(&out),
        };
    }

    fn finish(&mut self) {
        if !self.buf.is_empty() {
            let line = std::mem::take(&mut self.buf);
            self.emit(&line);
        }
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        self.finish();
    }
}

impl OutputStream for LineWriter {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    // Keeping a partial line on flush is deliberate: Rust's `eprintln!`
    // flushes after each piece of a formatted line.
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(MAX_LINE)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LineWriter {
    async fn ready(&mut self) {}
}

impl AsyncWrite for LineWriter {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.get_mut().push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.get_mut().finish();
        Poll::Ready(Ok(()))
    }
}
