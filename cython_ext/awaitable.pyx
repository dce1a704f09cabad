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
#
# `await` calls its am_send slot (CPython 3.10+), the C function below: it hands
# the result back without raising StopIteration at all. Its tp_iternext is C too,
# for other callers: an exception raised in Cython code gets a traceback entry
# built through a Python frame (thousands of instructions), so that one sets
# StopIteration(value) as CPython's own Future iterator does.

cdef extern from *:
    """
    static PyObject *(*wsfast_ready_result)(PyObject *);

    /* tp_iternext of Ready: finish at once with the result, or raise the error. */
    static PyObject *wsfast_ready_iternext(PyObject *self) {
        PyObject *value = wsfast_ready_result(self);
        if (value == NULL) {
            return NULL;
        }
        if (value != Py_None) {
            /* A tuple or an exception given as the value would be taken as the
               arguments or the instance: wrap those in a StopIteration first. */
            if (PyTuple_Check(value) || PyExceptionInstance_Check(value)) {
                PyObject *stop = PyObject_CallOneArg(PyExc_StopIteration, value);
                if (stop != NULL) {
                    PyErr_SetObject(PyExc_StopIteration, stop);
                    Py_DECREF(stop);
                }
            } else {
                PyErr_SetObject(PyExc_StopIteration, value);
            }
        }
        /* No exception set means StopIteration(None). */
        Py_DECREF(value);
        return NULL;
    }

    /* am_send of Ready: the result, or NULL with the error set. */
    static PySendResult wsfast_ready_am_send(PyObject *self, PyObject *arg,
                                             PyObject **result) {
        *result = wsfast_ready_result(self);
        return *result == NULL ? PYGEN_ERROR : PYGEN_RETURN;
    }

    static void wsfast_ready_install(PyObject *type) {
        PyTypeObject *tp = (PyTypeObject *)type;
        tp->tp_iternext = wsfast_ready_iternext;
        if (tp->tp_as_async != NULL) {
            tp->tp_as_async->am_send = wsfast_ready_am_send;
        }
        PyType_Modified(tp);
    }
    """
    ctypedef object (*_ReadyResult)(object)
    _ReadyResult wsfast_ready_result
    void wsfast_ready_install(object type)

cdef class Ready:
    """An awaitable that is already complete (internal: see ``wsfast.asyncio``).

    Awaiting it returns its value, or raises its exception, without suspending.
    """

    def __await__(self):
        return self

    def __iter__(self):
        return self

    def __next__(self):
        # Only for explicit calls: awaiting uses wsfast_ready_iternext.
        raise StopIteration(_ready_result(self))

    def send(self, value):
        """Run to completion, as ``coroutine.send``: raises StopIteration(result)."""
        raise StopIteration(_ready_result(self))

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

    cdef int _give_back(self) except -1:
        # Only a message still held: once delivered, value is None.
        if not self.used and self.reader is not None and self.value is not None:
            self.reader.messages.appendleft(self.value)
            self.value = None
        return 0


cdef object _ready_result(object obj):
    """The result of awaiting ``obj`` (a Ready); raises its error; once only."""
    cdef Ready ready = <Ready>obj
    cdef object value
    if ready.reusable:
        return None
    if ready.used:
        raise RuntimeError("cannot reuse already awaited awaitable")
    ready.used = True
    if ready.error is not None:
        error, ready.error = ready.error, None
        raise error
    value, ready.value = ready.value, None
    return value


wsfast_ready_result = _ready_result
wsfast_ready_install(Ready)


cdef Ready _ready(object value, ClientReader reader):
    cdef Ready ready = Ready.__new__(Ready)
    ready.value = value
    ready.reader = reader
    return ready


cdef Ready _done = Ready.__new__(Ready)
_done.reusable = True
#: Awaiting it returns None at once, as often as awaited: the result of every send
#: that did not pause (no allocation per message).
DONE = _done


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
