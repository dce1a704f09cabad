# SPDX-License-Identifier: MIT
# Declarations of awaitable.pyx: already-complete awaitables for the asyncio fast paths.

cdef class Ready:
    # What awaiting gives (a message, or None), or the exception it raises.
    cdef object value
    cdef object error
    # Where an undelivered message goes back to (None: nothing to give back).
    cdef ClientReader reader
    # False until awaited (or closed): an awaitable runs once, like a coroutine.
    cdef bint used
    # True for DONE, shared by every send that did not pause: awaited any number of times.
    cdef bint reusable

    cdef int _give_back(self) except -1


cdef Ready _ready(object value, ClientReader reader)
cdef object _ready_result(object ready)
