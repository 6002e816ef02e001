"""A real SMTP server (aiosmtpd) in its own process, for fault tests and bench/faults.py.

Each accepted message appends one line ``<Message-ID> <recipients>`` to the log file
and is flushed *before* the 250 reply, so the log holds exactly what the server
accepted even if this process is killed. It prints ``ready`` once it listens.

If the file ``LOGFILE.kill`` exists and holds ``PID DELAY_MS``, the server removes it
and sends SIGKILL to PID that many milliseconds after its next 250 reply: a kill that
lands right after the server accepted a message, the window issue 11 (item 11) measures.

Usage: python bench/_smtp_sink.py PORT LOGFILE
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
from pathlib import Path

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, log_path: str):
        self.log = open(log_path, "a", encoding="utf-8")  # noqa: SIM115 (lives as long as we do)
        self.kill_order = Path(log_path + ".kill")

    def _arm_kill(self) -> None:
        try:
            pid, delay_ms = self.kill_order.read_text().split()
            self.kill_order.unlink()
        except (OSError, ValueError):
            return
        loop = asyncio.get_running_loop()
        loop.call_later(float(delay_ms) / 1000, _kill, int(pid))

    async def handle_DATA(self, server, session, envelope):
        message_id = "-"
        for line in envelope.content.split(b"\r\n"):
            if line.lower().startswith(b"message-id:"):
                message_id = line.split(b":", 1)[1].strip().decode("ascii", "replace")
                break
            if not line:
                break
        self.log.write(f"{message_id} {','.join(envelope.rcpt_tos)}\n")
        self.log.flush()
        self._arm_kill()  # the timer starts now; the reply goes out as this returns
        return "250 OK"


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def main() -> None:
    port, log_path = int(sys.argv[1]), sys.argv[2]
    controller = Controller(Sink(log_path), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with contextlib.suppress(KeyboardInterrupt):
        done.wait()
    controller.stop()


if __name__ == "__main__":
    main()
