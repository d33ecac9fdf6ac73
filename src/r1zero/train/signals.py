"""How a training run answers SIGINT / SIGTERM (Ctrl-C, a scheduler's preemption): the first
signal lets the step in flight finish and saves; the second ends the process at once,
whatever it is doing.

"At once" needs a thread: Python runs a signal handler only when the main thread is back
in the interpreter, so a handler cannot stop a long native op (a matmul, a collective) that
has not returned. CPython's C-level handler also writes the signal's number to the file
descriptor given to `signal.set_wakeup_fd`; a watchdog thread blocked on that socket wakes
within milliseconds and, on the second signal, calls `os._exit`. Every file a later step
reads is written atomically (r1zero/durable.py), so the last complete checkpoint stands.
The watchdog needs the GIL for a moment; every torch, safetensors and tokenizer op releases
it, a C extension that holds it for long (none in the loop) would delay the exit.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
from collections.abc import Callable

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

EXIT_INTERRUPTED = 130
"""Exit status of an interrupted run, first signal or second (the shell's 128 + SIGINT)."""


class StopOnSignal:
    """Context manager for the loop: after the first signal ``requested`` is True (the loop
    stops after its step and saves); the second signal exits the process from the watchdog
    with status 130 after printing ``last_words()`` (what stands, how to continue).
    Installed only in the main thread (signal handlers cannot be set elsewhere)."""

    def __init__(self, last_words: Callable[[], str] = lambda: "") -> None:
        self.requested = False
        self.last_words = last_words
        self._old: dict[int, object] = {}
        self._old_fd = -1
        self._sockets: tuple[socket.socket, socket.socket] | None = None
        self._watchdog: threading.Thread | None = None

    def _handle(self, signum, frame) -> None:
        """Python-level handler (main thread, between bytecodes): the loop's flag only;
        the watchdog has already said what happens."""
        self.requested = True

    def _watch(self, reader: socket.socket) -> None:
        """Watchdog thread: count stop signals as the C handler reports them."""
        seen = 0
        while data := reader.recv(64):
            for signum in data:
                if signum == 0:  # `__exit__`'s sentinel: the loop is over
                    return
                if signum not in STOP_SIGNALS:
                    continue
                seen += 1
                name = signal.Signals(signum).name
                if seen == 1:
                    print(f"\n{name}: stopping after this step and saving (send it again to stop "
                          "at once)", file=sys.stderr, flush=True)
                else:
                    print(f"\n{name} again: stopping now. {self.last_words()}", file=sys.stderr, flush=True)
                    os._exit(EXIT_INTERRUPTED)

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is not threading.main_thread():
            return self
        reader, writer = socket.socketpair()
        writer.setblocking(False)  # set_wakeup_fd requires it; a full buffer drops bytes, never blocks
        self._sockets = (reader, writer)
        self._old_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        for sig in STOP_SIGNALS:
            self._old[sig] = signal.signal(sig, self._handle)
        self._watchdog = threading.Thread(target=self._watch, args=(reader,), name="stop-watchdog",
                                          daemon=True)
        self._watchdog.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._sockets is None:
            return
        for sig, old in self._old.items():
            signal.signal(sig, old)
        signal.set_wakeup_fd(self._old_fd)
        reader, writer = self._sockets
        writer.setblocking(True)
        writer.send(b"\0")
        self._watchdog.join()
        reader.close()
        writer.close()
        self._sockets = None
