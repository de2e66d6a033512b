"""The unsandboxed executor warns loudly that it does not isolate the stage."""

import logging
import os

from jobs.executor import LogChunk


def test_first_event_is_the_no_sandbox_notice(unsandboxed, run):
    result = run(unsandboxed, ["echo", "hello"])
    first = result.events[0]
    assert isinstance(first, LogChunk)
    assert first.stream == "system"
    assert "WITHOUT A SANDBOX" in first.text
    assert result.stdout == ["hello"]


def test_every_start_logs_a_warning(unsandboxed, run, caplog):
    with caplog.at_level(logging.WARNING, logger="jobs.executor.unsandboxed"):
        run(unsandboxed, ["true"])
        run(unsandboxed, ["true"])
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING and "without a sandbox" in record.message]
    assert len(warnings) == 2


def test_home_is_a_fresh_folder_removed_afterwards(unsandboxed, run):
    result = run(unsandboxed, ["sh", "-c", 'echo "$HOME"; ls -A "$HOME" | wc -l'])
    home, entries = result.stdout
    assert entries == "0"
    assert home.startswith("/")
    assert not os.path.exists(home)
