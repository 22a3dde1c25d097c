"""Built-in request filters: serial, timeout, timing and toobusy."""

from __future__ import annotations

from .serial import SerialFilter
from .timeout import TimeoutFilter
from .timing import RouteTiming, TimingFilter
from .toobusy import TooBusyFilter

__all__ = ["RouteTiming", "SerialFilter", "TimeoutFilter", "TimingFilter", "TooBusyFilter"]
