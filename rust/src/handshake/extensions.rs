// SPDX-License-Identifier: MIT
//! The `Sec-WebSocket-Extensions` header (RFC 6455 section 9.1): a list of
//! extensions, each with its parameters.

use super::http::{is_ows, is_tchar, is_token};
use super::HandshakeError;

/// One element of a `Sec-WebSocket-Extensions` header: a name and its
/// parameters in order, with quoted values already unquoted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extension {
    /// The extension token, e.g. `permessage-deflate`.
    pub name: String,
    /// Parameters and their values (`None` for a bare parameter).
    pub params: Vec<(String, Option<String>)>,
}

/// Parse `Sec-WebSocket-Extensions` header values (RFC 6455 section 9.1),
/// possibly several header lines, each a comma-separated list:
///
/// ```text
/// extension       = extension-token *( ";" extension-param )
/// extension-param = token [ "=" ( token | quoted-string ) ]
/// ```
///
/// A quoted value must be a token once unescaped. Whitespace is allowed
/// around separators. Errors are 400s.
pub fn parse_extensions(values: &[&str]) -> Result<Vec<Extension>, HandshakeError> {
    let mut extensions = Vec::new();
    for value in values {
        let mut parser = ExtensionParser {
            text: value.as_bytes(),
            pos: 0,
        };
        let count = extensions.len();
        parser.parse(&mut extensions).ok_or_else(|| {
            HandshakeError::bad_request(format!("invalid Sec-WebSocket-Extensions header: {value}"))
        })?;
        if extensions.len() == count {
            return Err(HandshakeError::bad_request(
                "empty Sec-WebSocket-Extensions header",
            ));
        }
    }
    Ok(extensions)
}

/// A cursor over one extension header value; `None` on any syntax error.
struct ExtensionParser<'a> {
    text: &'a [u8],
    pos: usize,
}

impl ExtensionParser<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    fn skip_ows(&mut self) {
        while self.peek().is_some_and(is_ows) {
            self.pos += 1;
        }
    }

    /// Consume `byte` if it comes next (after optional whitespace).
    fn eat(&mut self, byte: u8) -> bool {
        self.skip_ows();
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn token(&mut self) -> Option<String> {
        self.skip_ows();
        let start = self.pos;
        while self.peek().is_some_and(is_tchar) {
            self.pos += 1;
        }
        // tchar bytes are ASCII, so this slice is valid UTF-8.
        (self.pos > start)
            .then(|| String::from_utf8_lossy(&self.text[start..self.pos]).into_owned())
    }

    /// A quoted-string whose unescaped content is a token.
    fn quoted_token(&mut self) -> Option<String> {
        self.pos += 1; // the opening quote
        let mut value = String::new();
        loop {
            let byte = self.peek()?;
            self.pos += 1;
            match byte {
                b'"' => break,
                b'\\' => {
                    let escaped = self.peek()?;
                    self.pos += 1;
                    value.push(char::from(escaped));
                }
                _ => value.push(char::from(byte)),
            }
        }
        is_token(&value).then_some(value)
    }

    fn parse(&mut self, extensions: &mut Vec<Extension>) -> Option<()> {
        loop {
            // Empty list elements (",,") are allowed.
            while self.eat(b',') {}
            self.skip_ows();
            if self.peek().is_none() {
                return Some(());
            }
            let name = self.token()?;
            let mut params = Vec::new();
            while self.eat(b';') {
                let param = self.token()?;
                let value = if self.eat(b'=') {
                    self.skip_ows();
                    Some(if self.peek() == Some(b'"') {
                        self.quoted_token()?
                    } else {
                        self.token()?
                    })
                } else {
                    None
                };
                params.push((param, value));
            }
            extensions.push(Extension { name, params });
            self.skip_ows();
            match self.peek() {
                None => return Some(()),
                Some(b',') => {}
                Some(_) => return None,
            }
        }
    }
}
