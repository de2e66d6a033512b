"""Check the plan document that the runner prints before the platform stores or runs it.

The plan comes out of the sandbox that imported the repository's code, so the code
can print any JSON it likes in its place. The SDK already rejects mistakes in a
pipeline. This module checks again every field the platform reads: the shapes,
the stage names (shown in pages, logs and terminals), the references between
stages and the limits on what a stage may ask for.
"""

import re
import unicodedata

# GitHub Actions allows at most 256 jobs from one matrix; a run of more stages is a mistake or an attack.
MAX_STAGES = 256
MAX_NAME_LENGTH = 200
MAX_RETRIES = 10
# The longest timeout a stage may set: 30 days, in seconds.
MAX_TIMEOUT_SECONDS = 30 * 24 * 3600
# The runner passes only permission flags; anything else could change how Deno loads the stage.
DENO_FLAG = re.compile(r"^--(allow|deny)-[a-z]+(=[^\x00]*)?$")
# Bidirectional overrides can make a name read differently from what it is.
BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def plan_problems(document: object) -> list[str]:
    """Return every problem of a plan document, as messages; an empty list means it may be stored."""
    return [message for message, _ in located_plan_problems(document)]


def located_plan_problems(document: object) -> list[tuple[str, object]]:
    """Return every problem of a plan document with the stage entry it is about, or None for the whole plan."""
    if not isinstance(document, dict) or not isinstance(document.get("stages"), list):
        return [("the runner's plan is not an object with a list of stages", None)]
    stages = document["stages"]
    if len(stages) > MAX_STAGES:
        # Placed at the first stage over the limit, so the error points at where the plan grows too long.
        return [(f"the pipeline declares {len(stages)} stages; at most {MAX_STAGES} are allowed in one run",
                 stages[MAX_STAGES])]
    problems: list[tuple[str, object]] = []
    names: set[str] = set()
    for position, stage in enumerate(stages):
        if not isinstance(stage, dict):
            problems.append((f"stage {position + 1} of the plan is not an object", None))
            continue
        problems += [(problem, stage) for problem in _stage_problems(stage, position, names)]
    for stage in stages:
        if isinstance(stage, dict) and isinstance(stage.get("needs"), list):
            for need in stage["needs"]:
                if need not in names:
                    problems.append((f"stage {_shown(stage.get('name'))} needs {_shown(need)}, "
                                     "which is not a stage of the pipeline", stage))
    return problems


def name_problem(name: object) -> str | None:
    """Return why `name` cannot be a stage name, or None when it can."""
    if not isinstance(name, str) or not name.strip():
        return f"a stage needs a non-empty name, got {_shown(name)}"
    if len(name) > MAX_NAME_LENGTH:
        return f"stage name {_shown(name)} is {len(name)} characters long; use at most {MAX_NAME_LENGTH}"
    if any(unicodedata.category(character) == "Cc" or character in BIDI_CONTROLS for character in name):
        return f"stage name {_shown(name)} contains control characters; use printable text"
    return None


def _stage_problems(stage: dict, position: int, names: set[str]) -> list[str]:
    name = stage.get("name")
    problem = name_problem(name)
    if problem is not None:
        return [problem]
    label = _shown(name)
    problems = []
    if name in names:
        problems.append(f"stage name {label} is used twice; give each stage its own name")
    names.add(name)
    if not isinstance(stage.get("index"), int) or isinstance(stage.get("index"), bool):
        problems.append(f"stage {label} has no whole-number index in the plan")
    if not isinstance(stage.get("needs"), list) or not all(isinstance(need, str) for need in stage["needs"]):
        problems.append(f"stage {label}: 'needs' must be a list of stage names")
    if not isinstance(stage.get("selected", True), bool):
        problems.append(f"stage {label}: 'selected' must be true or false")
    flags = stage.get("denoFlags", [])
    if not isinstance(flags, list) or not all(isinstance(flag, str) and DENO_FLAG.match(flag) for flag in flags):
        problems.append(f"stage {label}: the plan may give a stage only --allow-* and --deny-* flags")
    options = stage.get("options", {})
    if not isinstance(options, dict):
        return problems + [f"stage {label}: 'options' must be an object"]
    return problems + [f"stage {label}: {problem}" for problem in _option_problems(options)]


def _option_problems(options: dict) -> list[str]:
    problems = []
    timeout = options.get("timeout")
    if timeout is not None and (not _is_number(timeout) or not 0 < timeout <= MAX_TIMEOUT_SECONDS):
        problems.append(f"option 'timeout' must be seconds from 1 to {MAX_TIMEOUT_SECONDS}, got {_shown(timeout)}")
    retries = options.get("retries", 0)
    if retries is not None and (not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= MAX_RETRIES):
        problems.append(f"option 'retries' must be a whole number from 0 to {MAX_RETRIES}, got {_shown(retries)}")
    env = options.get("env") or {}
    if not isinstance(env, dict) or not all(isinstance(key, str) and "\x00" not in key and "=" not in key for key in env):
        problems.append("option 'env' must map variable names (without '=' or NUL) to values")
    elif not all(isinstance(value, (str, int, float, bool)) and "\x00" not in str(value) for value in env.values()):
        problems.append("option 'env' values must be strings, numbers or booleans without NUL characters")
    secrets = options.get("secrets") or []
    if not isinstance(secrets, list) or not all(isinstance(secret, str) for secret in secrets):
        problems.append("option 'secrets' must be a list of secret names")
    for key in ("permissions", "cache"):
        if options.get(key) is not None and not isinstance(options[key], dict):
            problems.append(f"option {key!r} must be an object")
    return problems


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _shown(value: object) -> str:
    """Quote a value for a message, escaped so that control characters cannot reach a terminal or page."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
