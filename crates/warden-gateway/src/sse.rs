//! A small Server-Sent Events parser (the WHATWG event-stream format), fed
//! bytes as they arrive. Lines may end in LF, CRLF or CR; `data:` lines of one
//! event are joined with LF; an event is dispatched at a blank line.

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Event {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

#[derive(Default)]
pub struct Parser {
    buf: Vec<u8>,
    data: Option<String>,
    id: Option<String>,
    event: Option<String>,
    last_was_cr: bool,
    max_event: usize,
}

impl Parser {
    /// A parser that refuses events larger than `max_event` bytes.
    pub fn new(max_event: usize) -> Parser {
        Parser {
            max_event,
            ..Default::default()
        }
    }

    /// Feeds bytes; returns the events completed by them, or an error when an
    /// event grows past the limit.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<Event>, String> {
        let mut out = Vec::new();
        for &b in bytes {
            if self.last_was_cr {
                self.last_was_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\n' | b'\r' => {
                    self.last_was_cr = b == b'\r';
                    let line = std::mem::take(&mut self.buf);
                    if let Some(ev) = self.line(&line) {
                        out.push(ev);
                    }
                }
                _ => {
                    self.buf.push(b);
                    let size = self.buf.len() + self.data.as_ref().map_or(0, String::len);
                    if size > self.max_event {
                        return Err(format!("an event exceeded {} bytes", self.max_event));
                    }
                }
            }
        }
        Ok(out)
    }

    fn line(&mut self, line: &[u8]) -> Option<Event> {
        if line.is_empty() {
            let data = self.data.take()?;
            return Some(Event {
                id: self.id.clone(),
                event: self.event.take(),
                data,
            });
        }
        if line[0] == b':' {
            return None;
        }
        let text = String::from_utf8_lossy(line);
        let (field, value) = match text.find(':') {
            Some(i) => {
                let v = &text[i + 1..];
                (&text[..i], v.strip_prefix(' ').unwrap_or(v))
            }
            None => (&text[..], ""),
        };
        match field {
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            "id" if !value.contains('\0') => self.id = Some(value.to_string()),
            "event" => self.event = Some(value.to_string()),
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_events_split_across_chunks_and_line_endings() {
        let mut p = Parser::new(1 << 20);
        let mut evs = p
            .feed(b"id: 7\r\nevent: message\r\ndata: {\"a\":")
            .expect("feed");
        assert!(evs.is_empty());
        evs.extend(
            p.feed(b"1}\r\n\r\n: comment\n\ndata: x\ndata: y\n\n")
                .expect("feed"),
        );
        assert_eq!(evs.len(), 2);
        assert_eq!(evs[0].data, "{\"a\":1}");
        assert_eq!(evs[0].id.as_deref(), Some("7"));
        assert_eq!(evs[0].event.as_deref(), Some("message"));
        assert_eq!(evs[1].data, "x\ny");
        assert_eq!(
            evs[1].id.as_deref(),
            Some("7"),
            "the last event id carries over"
        );
    }

    #[test]
    fn refuses_oversized_events() {
        let mut p = Parser::new(16);
        assert!(p.feed(&[b'a'; 64]).is_err());
    }
}
