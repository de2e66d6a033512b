"""Test results of stages: JUnit reports and LCOV coverage read from a stage's workspace.

Convention: a stage that wants its tests shown writes JUnit XML files
(`deno test --junit-path=.deno-ci/reports/junit.xml`) and LCOV files
(`deno coverage --lcov --output=.deno-ci/reports/coverage.lcov`) under
`.deno-ci/reports/` in its workspace. The worker reads them after the stage
ends, whether it passed or not, because failing tests are the ones worth showing.

The files come from the stage, which is untrusted: a file must be a regular file
inside the workspace (no symbolic link out of it), at most MAX_REPORT_BYTES long,
and XML with a document type declaration is rejected (entity expansion).
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from junitparser import Error, Failure, JUnitXml, JUnitXmlError, Skipped, TestSuite
from sqlalchemy import and_, func, select

from app.extensions import db
from app.models import CaseOutcome, Run, StageTestCase, StageTestReport
from app.models._columns import utcnow

log = logging.getLogger(__name__)

REPORTS_DIR = ".deno-ci/reports"
MAX_REPORT_BYTES = 20 * 1024 * 1024
MAX_CASES = 20_000
MAX_MESSAGE_CHARS = 4000


class ReportError(ValueError):
    """A report file cannot be read; the message names the file and the reason."""


@dataclass(frozen=True)
class ParsedCase:
    suite: str
    name: str
    outcome: CaseOutcome
    message: str | None
    detail: str | None
    duration: float | None


def _trusted_file(workspace: Path, path: Path) -> Path:
    resolved = path.resolve()
    if not resolved.is_relative_to(workspace.resolve()) or not resolved.is_file():
        raise ReportError(f"Report {path.name!r} is not a regular file inside the workspace")
    if resolved.stat().st_size > MAX_REPORT_BYTES:
        raise ReportError(f"Report {path.name!r} is larger than {MAX_REPORT_BYTES} bytes")
    return resolved


def _clip(value: str | None) -> str | None:
    return value[:MAX_MESSAGE_CHARS] if value else value


def _case_outcome(case) -> tuple[CaseOutcome, str | None, str | None]:
    for result in case.result:
        if isinstance(result, Failure):
            return CaseOutcome.FAILED, _clip(result.message), _clip(result.text)
        if isinstance(result, Error):
            return CaseOutcome.ERROR, _clip(result.message), _clip(result.text)
        if isinstance(result, Skipped):
            return CaseOutcome.SKIPPED, _clip(result.message), None
    return CaseOutcome.PASSED, None, None


def parse_junit(text: str, file_name: str = "report") -> list[ParsedCase]:
    """Return the test cases of a JUnit XML document; raise ReportError if it is not one."""
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise ReportError(f"Report {file_name!r} declares a document type, which reports do not need")
    try:
        document = JUnitXml.fromstring(text)
    except (JUnitXmlError, SyntaxError, ValueError) as error:
        raise ReportError(f"Report {file_name!r} is not JUnit XML: {error}") from error
    suites = [document] if isinstance(document, TestSuite) else list(document)
    cases = []
    for suite in suites:
        for case in suite:
            outcome, message, detail = _case_outcome(case)
            cases.append(ParsedCase(suite.name or case.classname or "", case.name or "", outcome, message, detail,
                                    case.time))
    return cases[:MAX_CASES]


def parse_lcov(text: str) -> tuple[int, int]:
    """Return (lines found, lines hit) summed over an LCOV file's LF and LH records."""
    found = hit = 0
    for line in text.splitlines():
        if line.startswith("LF:"):
            found += int(line[3:] or 0)
        elif line.startswith("LH:"):
            hit += int(line[3:] or 0)
    return found, hit


def read_reports(workspace: Path) -> tuple[list[ParsedCase], tuple[int, int] | None, list[str]]:
    """Read every report under REPORTS_DIR; return (cases, coverage or None, problems)."""
    folder = workspace / REPORTS_DIR
    cases: list[ParsedCase] = []
    coverage: tuple[int, int] | None = None
    problems: list[str] = []
    if not folder.is_dir() or folder.is_symlink():
        return cases, coverage, problems
    for path in sorted(folder.iterdir()):
        try:
            if path.suffix == ".xml":
                cases += parse_junit(_trusted_file(workspace, path).read_text(errors="replace"), path.name)
            elif path.suffix in (".lcov", ".info"):
                found, hit = parse_lcov(_trusted_file(workspace, path).read_text(errors="replace"))
                coverage = (found + (coverage or (0, 0))[0], hit + (coverage or (0, 0))[1])
        except (ReportError, OSError, ValueError) as error:
            problems.append(str(error))
    return cases, coverage, problems


def record_stage_reports(run_id: int, stage_id: int, workspace: Path) -> StageTestReport | None:
    """Store the test results a stage left in its workspace; return the report, or None if it left none.

    Safe to call twice for a stage: a second call replaces the first one's rows.
    """
    cases, coverage, problems = read_reports(workspace)
    for problem in problems:
        log.warning("run %s stage %s: skipped a test report: %s", run_id, stage_id, problem)
    if not cases and coverage is None:
        return None
    db.session.execute(db.delete(StageTestReport).where(StageTestReport.stage_id == stage_id))
    report = StageTestReport(
        run_id=run_id, stage_id=stage_id, tests=len(cases),
        failures=sum(case.outcome == CaseOutcome.FAILED for case in cases),
        errors=sum(case.outcome == CaseOutcome.ERROR for case in cases),
        skipped=sum(case.outcome == CaseOutcome.SKIPPED for case in cases),
        duration=sum(case.duration or 0 for case in cases) if cases else None,
        lines_found=coverage[0] if coverage else None, lines_hit=coverage[1] if coverage else None,
    )
    report.cases = [StageTestCase(run_id=run_id, suite=case.suite, name=case.name, outcome=case.outcome,
                                  message=case.message, detail=case.detail, duration=case.duration) for case in cases]
    db.session.add(report)
    db.session.commit()
    log.info("run %s stage %s: stored %s test cases (%s failed)", run_id, stage_id, report.tests,
             report.failures + report.errors)
    return report


OUTCOME_ORDER = {CaseOutcome.FAILED: 0, CaseOutcome.ERROR: 1, CaseOutcome.SKIPPED: 3, CaseOutcome.PASSED: 2}


def run_reports(run_id: int) -> list[StageTestReport]:
    """Return the run's test reports, each with its cases sorted failures first."""
    reports = db.session.scalars(select(StageTestReport).where(StageTestReport.run_id == run_id)
                                 .order_by(StageTestReport.stage_id)).all()
    for report in reports:
        report.cases.sort(key=lambda case: (OUTCOME_ORDER.get(case.outcome, 9), case.suite, case.name))
    return reports


def run_coverage(reports: list[StageTestReport]) -> float | None:
    """Return the run's line coverage in percent over every stage that wrote LCOV, or None."""
    found = sum(report.lines_found or 0 for report in reports)
    hit = sum(report.lines_hit or 0 for report in reports)
    return 100.0 * hit / found if found else None


def flaky_tests(project_id: int, days: int = 30, now: datetime | None = None) -> list[dict]:
    """List tests that failed and later passed on the same commit within the last `days` days."""
    since = (now or utcnow()) - timedelta(days=days)
    failing = {CaseOutcome.FAILED, CaseOutcome.ERROR}
    cases = (select(Run.commit_sha, StageTestCase.suite, StageTestCase.name, StageTestCase.outcome,
                    Run.queued_at, Run.id.label("run_id"), Run.number)
             .join(Run, Run.id == StageTestCase.run_id)
             .where(Run.project_id == project_id, Run.queued_at >= since, Run.commit_sha.is_not(None))
             .subquery())
    failed = select(cases).where(cases.c.outcome.in_(failing)).subquery("failed")
    passed = select(cases).where(cases.c.outcome == CaseOutcome.PASSED).subquery("passed")
    query = (select(failed.c.suite, failed.c.name, failed.c.commit_sha,
                    func.min(failed.c.number).label("failed_run"), func.max(passed.c.number).label("passed_run"))
             .join(passed, and_(passed.c.commit_sha == failed.c.commit_sha, passed.c.suite == failed.c.suite,
                                passed.c.name == failed.c.name, passed.c.queued_at > failed.c.queued_at))
             .group_by(failed.c.suite, failed.c.name, failed.c.commit_sha)
             .order_by(failed.c.suite, failed.c.name))
    return [{"suite": row.suite, "name": row.name, "commit": row.commit_sha, "failed_run": row.failed_run,
             "passed_run": row.passed_run} for row in db.session.execute(query)]


def collect_stage_reports(run_id: int, stage_id: int, workspace: Path) -> None:
    """Store a stage's test results; a failure is logged and never changes how the stage ended."""
    try:
        record_stage_reports(run_id, stage_id, workspace)
    except Exception:  # noqa: BLE001  (test results are extra information; the stage's outcome stands)
        db.session.rollback()
        log.exception("run %s stage %s: could not store test results", run_id, stage_id)
