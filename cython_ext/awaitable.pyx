# SPDX-License-Identifier: MIT
# Ready: an awaitable whose result is already known, for the asyncio connections'
# per-message fast paths (a message already received, a send that did not pause).
#
# `await x` runs the iterator x.__await__() returns: the interpreter calls its
# __next__, and one that raises StopIteration(value) at once makes the `await`
# evaluate to value without suspending the task. uvloop and picows answer this way
# when a result is at hand; here it replaces a Python coroutine per message (a
# generator object, a frame, the send machinery) in `async for message in ws` and
# `await ws.send(message)`.
#
# It also has send/throw/close, so collections.abc.Coroutine recognises it, hence
# asyncio.iscoroutine: asyncio.create_task, ensure_future, wait_for and gather take
# it as they take a coroutine (a task's first step completes it).
#
# Like a coroutine, it can be awaited once: a second await raises RuntimeError.
# A message it holds but never delivered (closed, an exception thrown in as when a
# task is cancelled before its first step, or dropped unawaited) goes back to the
# front of its reader's queue, where it came from: a cancelled receive loses no
# message.

cdef class Ready:
    """An awaitable that is already complete (internal: see ``wsfast.asyncio``).

    Awaiting it returns its value, or raises its exception, without suspending.
    """

    def __await__(self):
        return self

    def __iter__(self):
        return self

    def __next__(self):
        return self._step()

    def send(self, value):
        """Run to completion, as ``coroutine.send``: raises StopIteration(result)."""
        return self._step()

    def throw(self, typ, val=None, tb=None):
        """Raise the exception thrown in, as a coroutine that has not started does."""
        self._give_back()
        self.used = True
        if val is None:
            raise typ
        if not isinstance(val, BaseException):
            val = typ(val)
        raise val.with_traceback(tb)

    def close(self):
        """Finish without running, as ``coroutine.close``: the message goes back."""
        self._give_back()
        self.used = True

    def __del__(self):
        self._give_back()

    cdef object _step(self):
        cdef object value
        if self.used:
            raise RuntimeError("cannot reuse already awaited awaitable")
        self.used = True
        if self.error is not None:
            error, self.error = self.error, None
            raise error
        value, self.value = self.value, None
        raise StopIteration(value)

    cdef int _give_back(self) except -1:
        # Only a message still held: once delivered, value is None.
        if not self.used and self.reader is not None and self.value is not None:
            self.reader.messages.appendleft(self.value)
            self.value = None
        return 0


cdef Ready _ready(object value, ClientReader reader):
    cdef Ready ready = Ready.__new__(Ready)
    ready.value = value
    ready.reader = reader
    return ready


def completed(value):
    """An awaitable that returns ``value`` at once.

    Args:
        value: what awaiting it returns.

    Returns:
        The awaitable (a ``Ready``).
    """
    return _ready(value, None)


def failed(BaseException error not None):
    """An awaitable that raises ``error`` when awaited (as a coroutine that raised would).

    Args:
        error: the exception.

    Returns:
        The awaitable (a ``Ready``).
    """
    cdef Ready ready = Ready.__new__(Ready)
    ready.error = error
    return ready
