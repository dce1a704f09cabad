# SPDX-License-Identifier: MIT
"""Run every ```python block of docs/, so that no sample in the docs rots.

The convention (also in tests/docs/README.md): each ```python block is a whole
program, run by ``python`` in a fresh process whose working directory holds a
self-signed ``cert.pem`` / ``key.pem`` for localhost and 127.0.0.1. An HTML comment
on the line just before the fence says how to run it:

- no comment: run it; it must exit with status 0 within ``SAMPLE_TIMEOUT`` seconds.
- ``<!-- sample: server [path=/p] [tls] -->``: a server that runs forever. It is
  started in the background, the test waits until it listens, and it keeps running
  for the ``client`` samples that follow it on the page. If none follows, the test
  opens one WebSocket connection to ``ws://127.0.0.1:8765/p`` (``wss://`` with
  ``tls``) and closes it. The server must still be running when it is stopped
  (SIGINT, as Ctrl-C would).
- ``<!-- sample: client -->``: run like a plain sample, while the page's last server
  sample runs.
- ``<!-- sample: skip REASON -->``: not run (say why). Counted: at most
  ``MAX_SKIPPED`` in all the docs.

Samples use port 8765; each server sample (and the samples that follow it) get a
free port in its place, so that tests can run side by side on one machine. Every
fence must name its language, from ``LANGUAGES``: a ``py`` or unnamed block would
escape the run.
"""

from __future__ import annotations

import re
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

import wsfast

DOCS = Path(__file__).resolve().parents[2] / "docs"
# Languages a fence may name; only python runs (shell, configs and JavaScript do not).
LANGUAGES = {
    "python",
    "sh",
    "console",
    "text",
    "nginx",
    "javascript",
    "html",
    "toml",
    "ini",
    "yaml",
    # Cython: only as an include of a file under examples/ (built and run by
    # tests/integration/test_cython_api.py), never as inline code nothing runs.
    "cython",
}
_EXAMPLE_INCLUDE = re.compile(r'^\s*--8<-- "examples/[\w/.-]+\.(pyx|pxd)"\s*$')
KINDS = {"run", "server", "client", "skip"}
MAX_SKIPPED = 5
SAMPLE_TIMEOUT = 60.0
# How long a server sample may take to listen; generous for a loaded machine. It is a
# safety net against a hung start, not a timing assumption: the loop ends as soon as
# the port accepts.
LISTEN_DEADLINE = 60.0
PORT = "8765"

_MARKER = re.compile(r"^\s*<!--\s*sample:\s*(?P<kind>\w+)(?P<args>.*?)-->\s*$")
_FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>\S*)\s*$")


@dataclass(frozen=True)
class Sample:
    """One ```python block and how to run it."""

    page: str
    line: int
    kind: str
    args: str
    code: str

    def __str__(self) -> str:
        return f"{self.page}:{self.line}"


def parse(path: Path, root: Path = DOCS) -> list[Sample]:
    """The python samples of one page, in order.

    Args:
        path: the markdown file.
        root: the folder page names are relative to.

    Returns:
        The samples.

    Raises:
        ValueError: for a fence without a known language, an unclosed fence, a
            marker not followed by a python block, or an unknown marker kind.
    """
    page = str(path.relative_to(root))
    lines = path.read_text(encoding="utf-8").splitlines()
    samples: list[Sample] = []
    i = 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if fence is None:
            i += 1
            continue
        indent, lang = fence["indent"], fence["lang"]
        if lang not in LANGUAGES:
            raise ValueError(f"{page}:{i + 1}: fence language {lang!r} is not one of {LANGUAGES}")
        end = i + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        if end == len(lines):
            raise ValueError(f"{page}:{i + 1}: unclosed fence")
        if lang == "cython" and not all(
            _EXAMPLE_INCLUDE.match(line) for line in lines[i + 1 : end]
        ):
            raise ValueError(
                f"{page}:{i + 1}: a cython block must only include files under examples/ "
                '(--8<-- "examples/...pyx"), which the tests build'
            )
        marker = _MARKER.match(lines[i - 1]) if i > 0 else None
        if marker is not None and lang != "python":
            raise ValueError(f"{page}:{i}: sample marker before a {lang!r} block")
        if lang == "python":
            kind = marker["kind"] if marker else "run"
            if kind not in KINDS:
                raise ValueError(f"{page}:{i}: unknown sample kind {kind!r}")
            body = "\n".join(line.removeprefix(indent) for line in lines[i + 1 : end])
            args = marker["args"].strip() if marker else ""
            samples.append(Sample(page, i + 1, kind, args, textwrap.dedent(body) + "\n"))
        i = end + 1
    # A marker that precedes no fence is a mistake too (a typo in the fence line).
    for n, line in enumerate(lines):
        if _MARKER.match(line) and (n + 1 == len(lines) or not _FENCE.match(lines[n + 1])):
            raise ValueError(f"{page}:{n + 1}: sample marker not followed by a fence")
    return samples


if not DOCS.is_dir():
    # tools/test_wheels.py runs a copy of tests/ against an installed wheel, without
    # the source tree's docs/.
    pytest.skip(f"no docs/ beside this tests/ ({DOCS})", allow_module_level=True)

PAGES = sorted(DOCS.rglob("*.md"))
SAMPLES = {str(p.relative_to(DOCS)): parse(p) for p in PAGES}


def _free_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return str(sock.getsockname()[1])


def _write(sample: Sample, port: str, cwd: Path) -> Path:
    name = re.sub(r"\W", "_", sample.page.removesuffix(".md"))
    script = cwd / f"{name}_{sample.line}.py"
    script.write_text(sample.code.replace(PORT, port), encoding="utf-8")
    return script


def _run(sample: Sample, port: str, cwd: Path) -> None:
    script = _write(sample, port, cwd)
    try:
        done = subprocess.run(
            [sys.executable, str(script)],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=SAMPLE_TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        # TimeoutExpired keeps bytes even with text=True.
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr
        pytest.fail(f"{sample}: still running after {SAMPLE_TIMEOUT} s\n{err}")
    if done.returncode != 0:
        pytest.fail(f"{sample}: exit status {done.returncode}\n{done.stdout}\n{done.stderr}")


class _RunningServer:
    """A server sample in a background process."""

    def __init__(self, sample: Sample, cwd: Path) -> None:
        self.sample = sample
        self.args = sample.args.split()
        self.clients = 0
        self.log = cwd / f"server_{sample.line}.log"
        # The free port is found by binding port 0 and closing; another process may
        # take it before the sample binds it. Then the sample fails to bind: retry.
        for _ in range(3):
            self.port = _free_port()
            script = _write(sample, self.port, cwd)
            with self.log.open("w") as log:
                self.proc = subprocess.Popen(
                    [sys.executable, str(script)], cwd=cwd, stdout=log, stderr=subprocess.STDOUT
                )
            if self._wait_listening():
                return
        self._check_alive()

    def _wait_listening(self) -> bool:
        """Wait until the sample listens; False if its port was taken meanwhile."""
        deadline = time.monotonic() + LISTEN_DEADLINE
        while True:
            if (
                self.proc.poll() is not None
                and "address already in use" in self.log.read_text().lower()
            ):
                return False
            self._check_alive()
            try:
                socket.create_connection(("127.0.0.1", int(self.port)), timeout=1.0).close()
                return True
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"{self.sample}: not listening after {LISTEN_DEADLINE} s")
                time.sleep(0.05)

    def _check_alive(self) -> None:
        if self.proc.poll() is not None:
            pytest.fail(
                f"{self.sample}: server exited with {self.proc.returncode}\n{self.log.read_text()}"
            )

    def connect_once(self, cwd: Path) -> None:
        """Open one WebSocket connection (the check for a server no sample talks to)."""
        path = next((a.removeprefix("path=") for a in self.args if a.startswith("path=")), "/")
        context = None
        scheme = "ws"
        if "tls" in self.args:
            scheme = "wss"
            context = ssl.create_default_context(cafile=str(cwd / "cert.pem"))
        with wsfast.connect(f"{scheme}://127.0.0.1:{self.port}{path}", ssl=context) as ws:
            assert ws.state == wsfast.State.OPEN

    def stop(self) -> None:
        """Interrupt the server (Ctrl-C), failing if it had died on its own."""
        self._check_alive()
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=SAMPLE_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def sample_dir(tmp_path: Path, certificate: tuple[Path, Path]) -> Path:
    """The working directory of a page's samples, with cert.pem and key.pem."""
    cert, key = certificate
    (tmp_path / "cert.pem").write_bytes(cert.read_bytes())
    (tmp_path / "key.pem").write_bytes(key.read_bytes())
    return tmp_path


@pytest.mark.parametrize("page", [p for p, s in SAMPLES.items() if s])
def test_page_samples_run(page: str, sample_dir: Path) -> None:
    server: _RunningServer | None = None
    port = _free_port()
    try:
        for sample in SAMPLES[page]:
            if sample.kind == "skip":
                continue
            if sample.kind == "server":
                if server is not None:
                    _finish(server, sample_dir)
                    server = None
                server = _RunningServer(sample, sample_dir)
                port = server.port
                continue
            if sample.kind == "client":
                assert server is not None, f"{sample}: a client sample needs a server before it"
                server.clients += 1
            _run(sample, port, sample_dir)
        if server is not None:
            _finish(server, sample_dir)
            server = None
    finally:
        if server is not None and server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()


def _finish(server: _RunningServer, cwd: Path) -> None:
    if server.clients == 0:
        server.connect_once(cwd)
    server.stop()


def test_docs_have_samples() -> None:
    # A parser that silently found nothing would pass every page.
    assert sum(len(s) for s in SAMPLES.values()) >= 20


def test_few_samples_are_skipped() -> None:
    skipped = [s for samples in SAMPLES.values() for s in samples if s.kind == "skip"]
    assert all(s.args for s in skipped), "a skipped sample must say why"
    assert len(skipped) <= MAX_SKIPPED, [str(s) for s in skipped]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("```py\nprint(1)\n```\n", "fence language"),
        ("```\nprint(1)\n```\n", "fence language"),
        ("```python\nprint(1)\n", "unclosed fence"),
        ("<!-- sample: sometimes -->\n```python\nprint(1)\n```\n", "unknown sample kind"),
        ("<!-- sample: skip why -->\n\n```python\nprint(1)\n```\n", "not followed"),
        ("<!-- sample: server -->\n```sh\nwsfast echo\n```\n", "before a 'sh' block"),
    ],
)
def test_parser_rejects_blocks_that_would_escape_the_run(
    tmp_path: Path, text: str, error: str
) -> None:
    page = tmp_path / "page.md"
    page.write_text(text)
    with pytest.raises(ValueError, match=error):
        parse(page, tmp_path)


def test_parser_reads_kinds_and_indented_blocks(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "1. a list item:\n\n"
        "   <!-- sample: server path=/chat tls -->\n"
        "   ```python\n   if True:\n       pass\n   ```\n\n"
        "```sh\nmake docs\n```\n"
    )
    (sample,) = parse(page, tmp_path)
    assert (sample.kind, sample.args, sample.line) == ("server", "path=/chat tls", 4)
    assert sample.code == "if True:\n    pass\n"
