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
    "StageSpec",
    "get_executor",
]
