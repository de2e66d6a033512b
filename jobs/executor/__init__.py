"""Executors run one stage process each, in a sandbox, and stream its events back."""

from .base import (
    ControlEvent,
    Execution,
    Executor,
    ExecutorError,
    ExecutorUnavailableError,
    Exit,
    ExitReason,
    LogChunk,
    START_FD,
    Mount,
    StageSpec,
    get_executor,
)

__all__ = [
    "ControlEvent",
    "Execution",
    "Executor",
    "ExecutorError",
    "ExecutorUnavailableError",
    "Exit",
    "ExitReason",
    "LogChunk",
    "Mount",
    "START_FD",
    "StageSpec",
    "get_executor",
]
