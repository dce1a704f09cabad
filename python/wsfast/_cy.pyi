# SPDX-License-Identifier: MIT
# Type stubs for the Cython extension wsfast._cy (cython_ext/). Users import from `wsfast`.
# Checked against the compiled module by mypy.stubtest (make lint).
import enum
import socket
import ssl
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Final, Self, TypeAlias, TypeVarTuple

from typing_extensions import Buffer, disjoint_base

from wsfast._rust import DeflateParams

_Ts = TypeVarTuple("_Ts")

# A message as handlers and readers get it: text as ``str``, binary as ``bytes``.
_Message: TypeAlias = str | bytes
# ``(kind, payload)``: the payload's type depends on the kind (an ``EventKind``):
# ``str`` text, ``bytes`` binary/ping/pong, ``(code, reason)`` close.
_Event: TypeAlias = tuple[int, Any]

#: Identifies this extension in wsfast.build_info.
BUILD: Final[str]

# ---- enums (cython_ext/enums.pxd) ------------------------------------------------------

class Opcode(enum.IntEnum):
    OP_CONTINUATION = 0
    OP_TEXT = 1
    OP_BINARY = 2
    OP_CLOSE = 8
    OP_PING = 9
    OP_PONG = 10

class EventKind(enum.IntEnum):
    EV_TEXT = 1
    EV_BINARY = 2
    EV_CLOSE = 8
    EV_PING = 9
    EV_PONG = 10

class ProtocolState(enum.IntEnum):
    STATE_CONNECTING = 0
    STATE_OPEN = 1
    STATE_CLOSING = 2
    STATE_CLOSED = 3

class SendResult(enum.IntEnum):
    SEND_OK = 0
    SEND_ZERO_COPY = 1
    SEND_CLOSING = -1
    SEND_FRAGMENTATION = -2
    SEND_INVALID_ARGUMENT = -3
    SEND_DEFLATE_ERROR = -4

class TransportMode(enum.IntEnum):
    MODE_HTTP = 0
    MODE_WS = 1
    MODE_DONE = 2
    MODE_LINGER = 3

class SlowConsumerPolicy(enum.IntEnum):
    POLICY_CLOSE = 0
    POLICY_DROP = 1

# Every enum member is also a module constant.
OP_CONTINUATION: Final = Opcode.OP_CONTINUATION
OP_TEXT: Final = Opcode.OP_TEXT
OP_BINARY: Final = Opcode.OP_BINARY
OP_CLOSE: Final = Opcode.OP_CLOSE
OP_PING: Final = Opcode.OP_PING
OP_PONG: Final = Opcode.OP_PONG
EV_TEXT: Final = EventKind.EV_TEXT
EV_BINARY: Final = EventKind.EV_BINARY
EV_CLOSE: Final = EventKind.EV_CLOSE
EV_PING: Final = EventKind.EV_PING
EV_PONG: Final = EventKind.EV_PONG
STATE_CONNECTING: Final = ProtocolState.STATE_CONNECTING
STATE_OPEN: Final = ProtocolState.STATE_OPEN
STATE_CLOSING: Final = ProtocolState.STATE_CLOSING
STATE_CLOSED: Final = ProtocolState.STATE_CLOSED
SEND_OK: Final = SendResult.SEND_OK
SEND_ZERO_COPY: Final = SendResult.SEND_ZERO_COPY
SEND_CLOSING: Final = SendResult.SEND_CLOSING
SEND_FRAGMENTATION: Final = SendResult.SEND_FRAGMENTATION
SEND_INVALID_ARGUMENT: Final = SendResult.SEND_INVALID_ARGUMENT
SEND_DEFLATE_ERROR: Final = SendResult.SEND_DEFLATE_ERROR
MODE_HTTP: Final = TransportMode.MODE_HTTP
MODE_WS: Final = TransportMode.MODE_WS
MODE_DONE: Final = TransportMode.MODE_DONE
MODE_LINGER: Final = TransportMode.MODE_LINGER
POLICY_CLOSE: Final = SlowConsumerPolicy.POLICY_CLOSE
POLICY_DROP: Final = SlowConsumerPolicy.POLICY_DROP

def _capi_layout() -> dict[str, dict[str, int]]: ...

# ---- core.pyx ------------------------------------------------------------------------

@disjoint_base
class Core:
    def __new__(
        cls,
        side: str = "server",
        *,
        max_size: int = 1048576,
        max_frame_size: int | None = None,
        deflate: DeflateParams | None = None,
        compression_level: int = 1,
        compress_min_size: int = 0,
        auto_pong: bool = True,
        mask_seed: bytes | None = None,
    ) -> Self: ...
    @property
    def is_client(self) -> bool: ...
    chunks: list[Buffer]
    # receiving
    def set_handlers(
        self,
        owner: object,
        on_message: Callable[[Any, _Message], object],
        on_ping: Callable[[Any, bytes], object] | None = None,
        on_pong: Callable[[Any, bytes], object] | None = None,
        on_close: Callable[[Any, int, str], object] | None = None,
    ) -> None: ...
    def receive_and_dispatch(self, data: Buffer) -> int: ...
    def receive_data(self, data: Buffer) -> list[_Event]: ...
    def receive_eof(self) -> list[_Event]: ...
    # sending
    def send(self, data: str | Buffer) -> None: ...
    def send_text(self, data: str | Buffer, fin: bool = True) -> None: ...
    def send_binary(self, data: Buffer, fin: bool = True) -> None: ...
    def send_continuation(self, data: str | Buffer, fin: bool) -> None: ...
    def send_ping(self, data: Buffer = b"") -> None: ...
    def send_pong(self, data: Buffer = b"") -> None: ...
    def send_close(self, code: int | None = 1000, reason: str = "") -> None: ...
    def fail(self, code: int, reason: str = "") -> None: ...
    # output
    def data_to_send(self) -> bytes: ...
    def output_size(self) -> int: ...
    def release_memory(self, keep: int = 0) -> None: ...
    # state
    @property
    def state(self) -> int: ...
    def close_expected(self) -> bool: ...
    @property
    def close_sent(self) -> tuple[int, str] | None: ...
    @property
    def close_received(self) -> tuple[int, str] | None: ...
    @property
    def error(self) -> str | None: ...

# ---- loop.pyx ------------------------------------------------------------------------

@disjoint_base
class TimerHandle:
    @property
    def when(self) -> float: ...
    @property
    def interval(self) -> float: ...
    @property
    def cancelled(self) -> bool: ...
    def cancel(self) -> None: ...

@disjoint_base
class Loop:
    @property
    def transports(self) -> set[Transport]: ...
    @property
    def now(self) -> float: ...
    sweep_interval: float
    busy_poll_us: int
    @property
    def thread_id(self) -> int | None: ...
    @property
    def running(self) -> bool: ...
    @property
    def closed(self) -> bool: ...
    def add_listener(self, fd: int, factory: Callable[[Transport], object]) -> None: ...
    def remove_listeners(self) -> None: ...
    def wakeup(self) -> None: ...
    def call_soon_threadsafe(self, fn: Callable[[*_Ts], object], *args: *_Ts) -> None: ...
    def call_later(
        self, delay: float, fn: Callable[[*_Ts], object], *args: *_Ts
    ) -> TimerHandle: ...
    def call_every(
        self, interval: float, fn: Callable[[*_Ts], object], *args: *_Ts
    ) -> TimerHandle: ...
    def new_timer(
        self,
        delay: float,
        interval: float,
        fn: Callable[[*_Ts], object],
        args: tuple[*_Ts],
    ) -> TimerHandle: ...
    def push_timer(self, h: TimerHandle) -> None: ...
    def stop(self) -> None: ...
    def run(self) -> None: ...
    def close(self) -> None: ...

# ---- transport.pyx -------------------------------------------------------------------

@disjoint_base
class Transport:
    fd: int
    @property
    def loop(self) -> Loop: ...
    # The owner, called back as described in Transport's docstring (duck-typed: before
    # and after the upgrade the owner may be different objects).
    proto: Any
    @property
    def core(self) -> Core | None: ...
    @property
    def remote_address(self) -> tuple[str, int] | None: ...
    @property
    def closed(self) -> bool: ...
    # flow control
    high_water: int
    low_water: int
    policy: int
    @property
    def paused(self) -> bool: ...
    @property
    def dropped(self) -> int: ...
    # timers
    @property
    def created(self) -> float: ...
    last_message: float
    next_ping: float
    pong_deadline: float
    close_deadline: float
    handshake_timeout: float
    ping_interval: float
    ping_timeout: float
    idle_timeout: float
    close_timeout: float
    # handshake
    def start_tls(self, context: ssl.SSLContext) -> None: ...
    @property
    def tls_object(self) -> ssl.SSLObject | None: ...
    def write(self, data: Buffer) -> None: ...
    def close_after_write(self) -> None: ...
    def upgrade(self, core: Core) -> None: ...
    def feed(self, data: Buffer) -> None: ...
    # messages
    def send(self, data: str | Buffer) -> None: ...
    def send_text(self, data: str | Buffer, fin: bool = True) -> None: ...
    def send_binary(self, data: Buffer, fin: bool = True) -> None: ...
    def send_continuation(self, data: str | Buffer, fin: bool) -> None: ...
    def ping(self, data: Buffer = b"") -> None: ...
    def close(self, code: int | None = 1000, reason: str = "") -> None: ...
    def fail(self, code: int, reason: str = "") -> None: ...
    def abort(self) -> None: ...
    @property
    def buffered_amount(self) -> int: ...
    @property
    def writable(self) -> bool: ...
    @property
    def tls_active(self) -> bool: ...

# ---- client.pyx ----------------------------------------------------------------------

@disjoint_base
class ClientReader:
    def __new__(
        cls,
        core: Core,
        sock: socket.socket | None,
        size: int,
        fill: Callable[[float | None], object] | None,
        lock: threading.Lock | None = None,
        on_read: Callable[[list[_Event] | None], object] | None = None,
        busy_poll: float = 0.0,
    ) -> Self: ...
    @property
    def messages(self) -> deque[_Message]: ...
    @property
    def eof(self) -> bool: ...
    @property
    def closed(self) -> bool: ...
    @property
    def busy_poll(self) -> float: ...
    @busy_poll.setter
    def busy_poll(self, value: float) -> None: ...
    def feed(self, data: Buffer) -> list[_Event] | None: ...
    def feed_buffer(self, n: int) -> list[_Event] | None: ...
    def get_buffer(self) -> memoryview: ...
    def read(self, timeout: float = -1.0) -> list[_Event] | None: ...
    def mark_closed(self) -> None: ...
    def pending(self) -> bool: ...
    def pending_count(self) -> int: ...
    def keep_pending(self) -> None: ...
    def take(self) -> _Message | None: ...
    def recv(self, timeout: float | None = None) -> _Message: ...
    def recv_many(self, timeout: float | None = None) -> list[_Message]: ...
    def recv_view(self, timeout: float | None = None) -> memoryview: ...
    def recv_into(self, buffer: Buffer, timeout: float | None = None) -> int: ...
    def run(self, handler: Callable[[Any], object], view: bool = False) -> bool: ...

@disjoint_base
class MessageIterator:
    def __new__(cls, reader: ClientReader) -> Self: ...
    def __iter__(self) -> Self: ...
    def __next__(self) -> _Message: ...

@disjoint_base
class ClientSender:
    def __new__(
        cls,
        core: Core,
        sock: socket.socket,
        lock: threading.Lock,
        closed_error: Callable[..., BaseException],
    ) -> Self: ...
    def mark_closed(self) -> None: ...
    def flush(self, ignore_errors: bool = False) -> None: ...
    def send(self, data: str | Buffer) -> None: ...
    def send_text(self, data: str | Buffer) -> None: ...
    def send_binary(self, data: Buffer) -> None: ...
