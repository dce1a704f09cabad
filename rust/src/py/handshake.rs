// SPDX-License-Identifier: MIT
//! Python wrappers for the opening handshake: parse and check requests and
//! responses, build them, and raise the `wsfast.exceptions` classes.

// The `///` comments on Python-facing items are Python docstrings (Google style),
// where parameter names are plain words, not rustdoc code spans.
#![allow(clippy::doc_markdown)]

use pyo3::call::PyCallArgs;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyString, PyType};

use super::buffers::with_bytes;
use super::errors;
use crate::handshake::{
    self, ClientHello, HandshakeError, HandshakeErrorKind, Request, Response, DEFAULT_MAX_SIZE,
};

fn exception_class<'py>(
    py: Python<'py>,
    cell: &'static PyOnceLock<Py<PyType>>,
    name: &str,
) -> PyResult<Bound<'py, PyType>> {
    let cls = cell.get_or_try_init(py, || -> PyResult<Py<PyType>> {
        let cls = py.import("wsfast.exceptions")?.getattr(name)?;
        Ok(cls.cast_into::<PyType>()?.unbind())
    })?;
    Ok(cls.bind(py).clone())
}

/// Instantiate the `wsfast.exceptions` class `name` with `args`; a failure
/// to do so (an import error...) is returned instead.
fn new_exception<'py>(
    py: Python<'py>,
    cell: &'static PyOnceLock<Py<PyType>>,
    name: &str,
    args: impl PyCallArgs<'py>,
) -> PyErr {
    match exception_class(py, cell, name).and_then(|cls| cls.call1(args)) {
        Ok(exc) => PyErr::from_value(exc),
        Err(err) => err,
    }
}

/// Build a `wsfast.exceptions.InvalidRequest(status, reason)`.
pub(crate) fn invalid_request(py: Python<'_>, status: u16, reason: &str) -> PyErr {
    static CELL: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    new_exception(py, &CELL, "InvalidRequest", (status, reason))
}

/// Build a `wsfast.exceptions.InvalidStatus(status)`.
fn invalid_status(py: Python<'_>, status: u16) -> PyErr {
    static CELL: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    new_exception(py, &CELL, "InvalidStatus", (status,))
}

/// Build a `wsfast.exceptions.InvalidHeader(message)`.
fn invalid_header(py: Python<'_>, message: &str) -> PyErr {
    static CELL: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    new_exception(py, &CELL, "InvalidHeader", (message,))
}

/// Map a client-side handshake error to its exception class.
fn client_error(py: Python<'_>, err: &HandshakeError) -> PyErr {
    match err.kind {
        HandshakeErrorKind::Status => invalid_status(py, err.status),
        HandshakeErrorKind::Header => invalid_header(py, &err.reason),
        HandshakeErrorKind::Negotiation => errors::negotiation_error(py, err.reason.clone()),
        HandshakeErrorKind::Malformed => errors::invalid_handshake(py, err.reason.clone()),
        HandshakeErrorKind::Build => PyValueError::new_err(err.reason.clone()),
    }
}

/// Errors of `build_*`: the caller passed values that cannot be sent.
fn build_error(err: HandshakeError) -> PyErr {
    PyValueError::new_err(err.reason)
}

fn get_header(
    py: Python<'_>,
    headers: &[(String, String)],
    name: &str,
    default: Option<Py<PyAny>>,
) -> Py<PyAny> {
    match headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
    {
        Some((_, value)) => PyString::new(py, value).into_any().unbind(),
        None => default.unwrap_or_else(|| py.None()),
    }
}

fn get_all_headers(headers: &[(String, String)], name: &str) -> Vec<String> {
    headers
        .iter()
        .filter(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.clone())
        .collect()
}

/// A valid WebSocket upgrade request, as returned by `parse_request`.
///
/// Header values are decoded as ISO-8859-1.
#[pyclass(name = "Request", module = "wsfast._rust", frozen)]
pub struct PyRequest {
    request: Request,
    hello: ClientHello,
}

#[pymethods]
impl PyRequest {
    /// str: the request method (always "GET").
    #[getter]
    fn method(&self) -> &str {
        &self.request.method
    }

    /// str: the request target, e.g. "/chat?room=1".
    #[getter]
    fn path(&self) -> &str {
        &self.request.path
    }

    /// list[tuple[str, str]]: every header, in order, names as sent.
    #[getter]
    fn headers(&self) -> Vec<(String, String)> {
        self.request.headers.clone()
    }

    /// str: the Sec-WebSocket-Key value.
    #[getter]
    fn key(&self) -> &str {
        &self.hello.key
    }

    /// str: the Host value.
    #[getter]
    fn host(&self) -> &str {
        &self.hello.host
    }

    /// str | None: the Origin value.
    #[getter]
    fn origin(&self) -> Option<&str> {
        self.hello.origin.as_deref()
    }

    /// list[str]: offered subprotocols, in order of preference.
    #[getter]
    fn subprotocols(&self) -> Vec<String> {
        self.hello.subprotocols.clone()
    }

    /// list[str]: the raw Sec-WebSocket-Extensions header values (already
    /// checked for syntax), for `negotiate_deflate`.
    #[getter]
    fn extensions(&self) -> Vec<String> {
        self.hello.extension_values.clone()
    }

    /// The first value of a header.
    ///
    /// Args:
    ///     name: the header name, matched case-insensitively.
    ///     default: returned when the header is absent.
    ///
    /// Returns:
    ///     str | None: the value, or default.
    #[pyo3(signature = (name, default = None))]
    fn get(&self, py: Python<'_>, name: &str, default: Option<Py<PyAny>>) -> Py<PyAny> {
        get_header(py, &self.request.headers, name, default)
    }

    /// Every value of a header, in order.
    ///
    /// Args:
    ///     name: the header name, matched case-insensitively.
    ///
    /// Returns:
    ///     list[str]: the values (empty if absent).
    fn get_all(&self, name: &str) -> Vec<String> {
        get_all_headers(&self.request.headers, name)
    }

    fn __repr__(&self) -> String {
        format!(
            "Request(method={:?}, path={:?})",
            self.request.method, self.request.path
        )
    }
}

/// Any HTTP/1.x request head, as returned by `parse_request_head`: what a
/// server needs to answer a request that is not a WebSocket upgrade (a health
/// check, a page, a 404 or a 426).
///
/// Header values are decoded as ISO-8859-1.
#[pyclass(name = "RequestHead", module = "wsfast._rust", frozen)]
pub struct PyRequestHead {
    request: Request,
}

#[pymethods]
impl PyRequestHead {
    /// str: the request method, e.g. "GET".
    #[getter]
    fn method(&self) -> &str {
        &self.request.method
    }

    /// str: the request target (path and query), e.g. "/health?full=1".
    #[getter]
    fn target(&self) -> &str {
        &self.request.path
    }

    /// int: the minor HTTP version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    #[getter]
    fn http_version(&self) -> u8 {
        self.request.version
    }

    /// list[tuple[str, str]]: every header, in order, names as sent.
    #[getter]
    fn headers(&self) -> Vec<(String, String)> {
        self.request.headers.clone()
    }

    /// bool: an Upgrade header asks for websocket. Such a request goes to
    /// `parse_request`'s checks; any other one is plain HTTP.
    #[getter]
    fn is_upgrade(&self) -> bool {
        self.request.is_upgrade()
    }

    /// The first value of a header.
    ///
    /// Args:
    ///     name: the header name, matched case-insensitively.
    ///     default: returned when the header is absent.
    ///
    /// Returns:
    ///     str | None: the value, or default.
    #[pyo3(signature = (name, default = None))]
    fn get(&self, py: Python<'_>, name: &str, default: Option<Py<PyAny>>) -> Py<PyAny> {
        get_header(py, &self.request.headers, name, default)
    }

    /// Every value of a header, in order.
    ///
    /// Args:
    ///     name: the header name, matched case-insensitively.
    ///
    /// Returns:
    ///     list[str]: the values (empty if absent).
    fn get_all(&self, name: &str) -> Vec<String> {
        get_all_headers(&self.request.headers, name)
    }

    fn __repr__(&self) -> String {
        format!(
            "RequestHead(method={:?}, target={:?}, is_upgrade={})",
            self.request.method,
            self.request.path,
            if self.request.is_upgrade() {
                "True"
            } else {
                "False"
            }
        )
    }
}

/// A server's response to the upgrade request, as returned by
/// `parse_response`.
///
/// Args:
///     status: the status code.
///     reason: the reason phrase.
///     headers: (name, value) pairs, in order.
#[pyclass(name = "Response", module = "wsfast._rust", frozen)]
pub struct PyResponse {
    inner: Response,
}

#[pymethods]
impl PyResponse {
    #[new]
    #[pyo3(signature = (status, reason = String::new(), headers = Vec::new()))]
    fn new(status: u16, reason: String, headers: Vec<(String, String)>) -> Self {
        Self {
            inner: Response {
                status,
                reason,
                version: 1,
                headers,
            },
        }
    }

    /// int: the status code.
    #[getter]
    fn status(&self) -> u16 {
        self.inner.status
    }

    /// str: the reason phrase (may be empty).
    #[getter]
    fn reason(&self) -> &str {
        &self.inner.reason
    }

    /// list[tuple[str, str]]: every header, in order, names as sent.
    #[getter]
    fn headers(&self) -> Vec<(String, String)> {
        self.inner.headers.clone()
    }

    /// The first value of a header.
    ///
    /// Args:
    ///     name: the header name, matched case-insensitively.
    ///     default: returned when the header is absent.
    ///
    /// Returns:
    ///     str | None: the value, or default.
    #[pyo3(signature = (name, default = None))]
    fn get(&self, py: Python<'_>, name: &str, default: Option<Py<PyAny>>) -> Py<PyAny> {
        get_header(py, &self.inner.headers, name, default)
    }

    /// Every value of a header, in order.
    ///
    /// Args:
    ///     name: the header name, matched case-insensitively.
    ///
    /// Returns:
    ///     list[str]: the values (empty if absent).
    fn get_all(&self, name: &str) -> Vec<String> {
        get_all_headers(&self.inner.headers, name)
    }

    fn __repr__(&self) -> String {
        format!(
            "Response(status={}, reason={:?})",
            self.inner.status, self.inner.reason
        )
    }
}

/// The Sec-WebSocket-Accept value for a Sec-WebSocket-Key (RFC 6455 section 1.3).
///
/// Args:
///     key: the client's Sec-WebSocket-Key.
///
/// Returns:
///     str: base64 of SHA-1(key + GUID).
#[pyfunction]
fn accept_key(key: &str) -> String {
    handshake::accept_key(key)
}

/// Parse and check a client's upgrade request.
///
/// Args:
///     data: the bytes received so far (any bytes-like object).
///     max_size: the longest request head accepted, in bytes.
///
/// Returns:
///     tuple[Request, int] | None: the request and the length of its head,
///     or None if the head is not complete yet.
///
/// Raises:
///     InvalidRequest: with the status to answer: 400 (malformed or invalid
///         request), 426 (not a WebSocket upgrade, or not version 13) or 431
///         (head over max_size, or too many headers).
///     TypeError: if data is not bytes-like.
#[pyfunction]
#[pyo3(signature = (data, max_size = DEFAULT_MAX_SIZE))]
fn parse_request(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    max_size: usize,
) -> PyResult<Option<(PyRequest, usize)>> {
    let parsed = with_bytes(data, |data| handshake::parse_request(data, max_size))?;
    let Some((request, consumed)) =
        parsed.map_err(|err| invalid_request(py, err.status, &err.reason))?
    else {
        return Ok(None);
    };
    let hello = handshake::validate_request(&request)
        .map_err(|err| invalid_request(py, err.status, &err.reason))?;
    Ok(Some((PyRequest { request, hello }, consumed)))
}

/// Parse any HTTP/1.x request head, without the WebSocket upgrade checks.
///
/// The same parser as parse_request, for requests that parse_request refuses
/// because they are not (valid) upgrades: a server answers those as plain
/// HTTP when is_upgrade is False.
///
/// Args:
///     data: the bytes received so far (any bytes-like object).
///     max_size: the longest request head accepted, in bytes.
///
/// Returns:
///     tuple[RequestHead, int] | None: the head and its length in bytes, or
///     None if the head is not complete yet.
///
/// Raises:
///     InvalidRequest: with status 400 if the head is malformed (a bad
///         request line, a header without a colon, whitespace around a
///         header name...), or 431 if it is longer than max_size or has too
///         many headers.
///     TypeError: if data is not bytes-like.
#[pyfunction]
#[pyo3(signature = (data, max_size = DEFAULT_MAX_SIZE))]
fn parse_request_head(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    max_size: usize,
) -> PyResult<Option<(PyRequestHead, usize)>> {
    let parsed = with_bytes(data, |data| handshake::parse_request(data, max_size))?;
    let parsed = parsed.map_err(|err| invalid_request(py, err.status, &err.reason))?;
    Ok(parsed.map(|(request, consumed)| (PyRequestHead { request }, consumed)))
}

/// Build the 101 response accepting a handshake.
///
/// Args:
///     key: the client's Sec-WebSocket-Key.
///     subprotocol: the chosen subprotocol, if any.
///     extensions: the full Sec-WebSocket-Extensions value, if any.
///     headers: extra (name, value) pairs, appended in order.
///
/// Returns:
///     bytes: the response head.
///
/// Raises:
///     ValueError: if a name or value cannot be sent (control characters
///         such as CR or LF, a name or subprotocol that is not a token).
#[pyfunction]
#[pyo3(signature = (key, subprotocol = None, extensions = None, headers = Vec::new()))]
fn build_response<'py>(
    py: Python<'py>,
    key: &str,
    subprotocol: Option<&str>,
    extensions: Option<&str>,
    headers: Vec<(String, String)>,
) -> PyResult<Bound<'py, PyBytes>> {
    let out =
        handshake::build_response(key, subprotocol, extensions, &headers).map_err(build_error)?;
    Ok(PyBytes::new(py, &out))
}

/// Build a response refusing a handshake, then closing the connection.
///
/// Args:
///     status: the HTTP status, 200 to 599 (426 adds Upgrade and
///         Sec-WebSocket-Version: 13).
///     body: the body (bytes-like, or str sent as UTF-8), sent as
///         text/plain unless headers has a Content-Type.
///     headers: extra (name, value) pairs, appended in order.
///
/// Returns:
///     bytes: the full response.
///
/// Raises:
///     ValueError: if status is out of range or a header cannot be sent.
#[pyfunction]
#[pyo3(signature = (status, body = None, headers = Vec::new()))]
fn build_rejection<'py>(
    py: Python<'py>,
    status: u16,
    body: Option<&Bound<'py, PyAny>>,
    headers: Vec<(String, String)>,
) -> PyResult<Bound<'py, PyBytes>> {
    let out = match body {
        None => handshake::build_rejection(status, b"", &headers),
        Some(body) => match body.cast::<PyString>() {
            Ok(text) => handshake::build_rejection(status, text.to_str()?.as_bytes(), &headers),
            Err(_) => with_bytes(body, |body| {
                handshake::build_rejection(status, body, &headers)
            })?,
        },
    }
    .map_err(build_error)?;
    Ok(PyBytes::new(py, &out))
}

/// Build the client's upgrade request.
///
/// Args:
///     host: the Host value, e.g. "example.com:8080".
///     path: the request target, e.g. "/chat?room=1" (visible ASCII only).
///     key: the Sec-WebSocket-Key, base64 of 16 random bytes.
///     subprotocols: subprotocols to offer, in order of preference.
///     extensions: the full Sec-WebSocket-Extensions value, if any.
///     headers: extra (name, value) pairs, appended in order.
///
/// Returns:
///     bytes: the request head.
///
/// Raises:
///     ValueError: if a value cannot be sent.
#[pyfunction]
#[pyo3(signature = (host, path, key, subprotocols = Vec::new(), extensions = None, headers = Vec::new()))]
fn build_request<'py>(
    py: Python<'py>,
    host: &str,
    path: &str,
    key: &str,
    subprotocols: Vec<String>,
    extensions: Option<&str>,
    headers: Vec<(String, String)>,
) -> PyResult<Bound<'py, PyBytes>> {
    let out = handshake::build_request(host, path, key, &subprotocols, extensions, &headers)
        .map_err(build_error)?;
    Ok(PyBytes::new(py, &out))
}

/// Parse the server's response head.
///
/// Args:
///     data: the bytes received so far (any bytes-like object).
///     max_size: the longest response head accepted, in bytes.
///
/// Returns:
///     tuple[Response, int] | None: the response and the length of its head,
///     or None if the head is not complete yet.
///
/// Raises:
///     InvalidHandshake: if the head is malformed or longer than max_size.
///     TypeError: if data is not bytes-like.
#[pyfunction]
#[pyo3(signature = (data, max_size = DEFAULT_MAX_SIZE))]
fn parse_response(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    max_size: usize,
) -> PyResult<Option<(PyResponse, usize)>> {
    let parsed = with_bytes(data, |data| handshake::parse_response(data, max_size))?;
    let parsed = parsed.map_err(|err| errors::invalid_handshake(py, err.reason))?;
    Ok(parsed.map(|(inner, consumed)| (PyResponse { inner }, consumed)))
}

/// Check the server's response to our upgrade request (RFC 6455 section 4.1).
///
/// Args:
///     response: the parsed response.
///     key: the Sec-WebSocket-Key we sent.
///     subprotocols: the subprotocols we offered.
///     extensions: the Sec-WebSocket-Extensions value we sent, if any; the
///         server may accept only extensions named there.
///
/// Returns:
///     tuple[str | None, list[str]]: the chosen subprotocol, and the raw
///     Sec-WebSocket-Extensions values (for `accept_deflate_response`).
///
/// Raises:
///     InvalidStatus: if the status is not 101.
///     InvalidHeader: if Upgrade, Connection, Sec-WebSocket-Accept or
///         Sec-WebSocket-Extensions is missing or wrong.
///     NegotiationError: if the server chose a subprotocol or extension we
///         did not offer.
///     InvalidHandshake: if the response is not HTTP/1.1.
#[pyfunction]
#[pyo3(signature = (response, key, subprotocols = Vec::new(), extensions = None))]
fn validate_response(
    py: Python<'_>,
    response: PyRef<'_, PyResponse>,
    key: &str,
    subprotocols: Vec<String>,
    extensions: Option<&str>,
) -> PyResult<(Option<String>, Vec<String>)> {
    let (subprotocol, _) =
        handshake::validate_response(&response.inner, key, &subprotocols, extensions)
            .map_err(|err| client_error(py, &err))?;
    Ok((
        subprotocol,
        get_all_headers(&response.inner.headers, "Sec-WebSocket-Extensions"),
    ))
}

/// Register the handshake classes and functions on `wsfast._rust`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyRequest>()?;
    m.add_class::<PyRequestHead>()?;
    m.add_class::<PyResponse>()?;
    m.add_function(wrap_pyfunction!(accept_key, m)?)?;
    m.add_function(wrap_pyfunction!(parse_request, m)?)?;
    m.add_function(wrap_pyfunction!(parse_request_head, m)?)?;
    m.add_function(wrap_pyfunction!(build_response, m)?)?;
    m.add_function(wrap_pyfunction!(build_rejection, m)?)?;
    m.add_function(wrap_pyfunction!(build_request, m)?)?;
    m.add_function(wrap_pyfunction!(parse_response, m)?)?;
    m.add_function(wrap_pyfunction!(validate_response, m)?)?;
    Ok(())
}
