"""Stopping: signals (warm stop, then forced stop) and end-of-run policies.

- First SIGTERM / SIGINT: stop polling, let in-flight batches finish within the drain deadline,
  release (visibility 0) everything buffered or unfinished, exit 0.
- Second signal: :class:`ForcedStop` is raised in the main thread (it interrupts a long poll or
  a wait); the loop releases what it holds and the command exits 130 at once.
- Policies (``--max-messages``, ``--idle-exit``) end a run *cleanly*: the messages already
  received are processed, not released.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Protocol

DEFAULT_DRAIN_SECONDS = 30.0


class ForcedStop(BaseException):
    """Raised in the main thread by a second stop signal (BaseException: no handler swallows it)."""


class ShutdownController:
    """Counts stop requests; installs itself as the SIGTERM / SIGINT handler when asked."""

    def __init__(self, drain_seconds: float = DEFAULT_DRAIN_SECONDS):
        self.drain_seconds = drain_seconds
        self._event = threading.Event()
        self.signals = 0
        self.signal_name = ""
        self.releasing = False  # set while the worker releases what it holds: nothing left to force

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def request(self, reason: str = "requested") -> None:
        """Ask for a warm stop (from any thread)."""
        self.signal_name = self.signal_name or reason
        self._event.set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``, waking early on a stop request; True when stop was requested."""
        return self._event.wait(max(0.0, seconds))

    def handle(self, signum: int, _frame: FrameType | None = None) -> None:
        """Signal handler: first call requests a warm stop, second raises :class:`ForcedStop`."""
        self.signals += 1
        name = signal.Signals(signum).name
        if self.signals == 1:
            self.request(name)
            return
        if self.releasing:  # already on the way out: interrupting the release would only lose it
            return
        raise ForcedStop(name)

    def install(self) -> Callable[[], None]:
        """Install the handlers (main thread only); returns a function restoring the old ones."""
        old = {s: signal.signal(s, self.handle) for s in (signal.SIGTERM, signal.SIGINT)}

        def restore() -> None:
            for s, h in old.items():
                signal.signal(s, h)

        return restore


class StopPolicy(Protocol):
    """Decides when a run has done enough (checked by the loop every iteration)."""

    def should_stop(self, received: int, idle_seconds: float) -> bool: ...

    def receive_budget(self, received: int) -> int | None: ...

    # Optional: ``seconds_left(idle_seconds) -> float | None``, how long until the policy stops
    # on idleness; the loop never long-polls past it (see :func:`seconds_left`).


def seconds_left(policy: StopPolicy, idle_seconds: float) -> float | None:
    """Seconds until ``policy`` stops for idleness (``None``: it never does, or it does not say)."""
    fn = getattr(policy, "seconds_left", None)
    return fn(idle_seconds) if fn is not None else None


@dataclass(frozen=True)
class MaxMessages:
    """Stop polling after ``limit`` messages were received; they are all processed."""

    limit: int

    def should_stop(self, received: int, idle_seconds: float) -> bool:
        return received >= self.limit

    def receive_budget(self, received: int) -> int | None:
        return max(0, self.limit - received)


@dataclass(frozen=True)
class IdleShutdown:
    """Stop when nothing was received and nothing was held for ``seconds``."""

    seconds: float

    def should_stop(self, received: int, idle_seconds: float) -> bool:
        return idle_seconds >= self.seconds

    def receive_budget(self, received: int) -> int | None:
        return None

    def seconds_left(self, idle_seconds: float) -> float:
        return max(0.0, self.seconds - idle_seconds)


@dataclass(frozen=True)
class AnyOf:
    """Stop when any of ``policies`` says so."""

    policies: tuple[StopPolicy, ...]

    def should_stop(self, received: int, idle_seconds: float) -> bool:
        return any(p.should_stop(received, idle_seconds) for p in self.policies)

    def receive_budget(self, received: int) -> int | None:
        budgets = [b for b in (p.receive_budget(received) for p in self.policies) if b is not None]
        return min(budgets) if budgets else None

    def seconds_left(self, idle_seconds: float) -> float | None:
        left = [s for s in (seconds_left(p, idle_seconds) for p in self.policies) if s is not None]
        return min(left) if left else None


class NeverStop:
    """The default: run until a signal."""

    def should_stop(self, received: int, idle_seconds: float) -> bool:
        return False

    def receive_budget(self, received: int) -> int | None:
        return None
