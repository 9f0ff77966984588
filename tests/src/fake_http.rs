//! The HTTP/1.1 plumbing of the fake servers (OpenSearch, Firehose): a free loopback port,
//! a thread per connection (clients keep idle connections open), keep-alive, bodies by
//! `content-length`. Each fake only says how it answers a request.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;

/// A request as the fakes need it.
pub struct Request {
    /// `POST /index/_bulk HTTP/1.1`.
    pub line: String,
    /// Header names in lower case, with their values.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The value of header `name` (lower case), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Serves `answer` (status, `content_type`, body) on a free loopback port until the
/// process ends; returns `http://127.0.0.1:<port>`.
pub fn serve(
    content_type: &'static str,
    answer: impl Fn(&Request) -> (u16, String) + Send + Sync + 'static,
) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let answer = Arc::new(answer);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let answer = answer.clone();
            std::thread::spawn(move || connection(stream, content_type, &*answer));
        }
    });
    endpoint
}

/// Answers the requests of one connection until it closes.
fn connection(
    stream: std::net::TcpStream,
    content_type: &str,
    answer: &dyn Fn(&Request) -> (u16, String),
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut headers = Vec::new();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
            }
        }
        let length = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .map_or(0, |(_, v)| v.parse().unwrap());
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let (status, reply) = answer(&Request {
            line,
            headers,
            body,
        });
        let _ = write!(
            writer,
            "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n{reply}",
            reply.len()
        );
    }
}
