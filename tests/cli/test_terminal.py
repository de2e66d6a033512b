"""Stage output printed by the CLI keeps colours and loses every other escape sequence."""

import pytest

from app.cli.terminal import printable
from tests.cli.test_local_run import deno_ci, local_data  # noqa: F401  (the fixture is used by name)


@pytest.mark.parametrize("raw, shown", [
    ("\x1b[32mok\x1b[0m", "\x1b[32mok\x1b[0m"),
    ("\x1b[38;5;245mgrey\x1b[0m", "\x1b[38;5;245mgrey\x1b[0m"),
    ("\x1b]52;c;aGVsbG8=\x07copied", "copied"),
    ("\x1b]0;new title\x1b\\text", "text"),
    ("\x1b]8;;https://example.com\x07link\x1b]8;;\x07", "link"),
    ("keep\x1b[1A\x1b[2Khidden", "keephidden"),
    ("\x9b2Jcleared", "cleared"),
    ("bell\x07 and\rreturn", "bell andreturn"),
    ("tab\tstays", "tab\tstays"),
    ("trailing\x1b", "trailing"),
])
def test_printable_keeps_only_colours(raw, shown):
    assert printable(raw) == shown


ESCAPING_PIPELINE = '''import { Pipeline } from "deno-ci";

export default new Pipeline().stage("print", () => {
  console.log("\\u001b]52;c;c2VjcmV0\\u0007\\u001b[31mred\\u001b[0m");
});
'''


def test_local_run_strips_clipboard_sequence(make_repo, local_data):
    repo = make_repo({"deno-pipeline.ts": ESCAPING_PIPELINE})
    result = deno_ci("--data", local_data, "run", str(repo))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[print] \x1b[31mred\x1b[0m" in result.stdout
    assert "\x1b]52" not in result.stdout
