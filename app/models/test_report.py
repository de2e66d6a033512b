"""Test results a stage left behind: its JUnit report's cases and its line coverage."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, DateTime, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models._columns import utcnow


class CaseOutcome(StrEnum):
    PASSED = "passed"  # the test ran and passed
    FAILED = "failed"  # an assertion failed (JUnit <failure>)
    ERROR = "error"  # the test could not run to the end (JUnit <error>)
    SKIPPED = "skipped"  # the test was ignored or skipped (JUnit <skipped>)


class StageTestReport(db.Model):
    """The totals of one stage's JUnit report and coverage; one row per stage."""

    __tablename__ = "test_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    stage_id: Mapped[int] = mapped_column(ForeignKey("stages.id", ondelete="CASCADE"), unique=True)
    tests: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    # Seconds, as the report states them.
    duration: Mapped[float | None] = mapped_column(Float)
    # Sums of LCOV's LF and LH records; NULL when the stage wrote no coverage.
    lines_found: Mapped[int | None] = mapped_column(Integer)
    lines_hit: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    stage = relationship("Stage")
    cases = relationship("StageTestCase", back_populates="report", cascade="all, delete-orphan")

    @property
    def coverage_percent(self) -> float | None:
        if not self.lines_found:
            return None
        return 100.0 * (self.lines_hit or 0) / self.lines_found


class StageTestCase(db.Model):
    """One test case of a stage's JUnit report."""

    __tablename__ = "test_cases"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("test_reports.id", ondelete="CASCADE"), index=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    # The test suite's name (for `deno test`, the test file) and the case's name.
    suite: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(10))
    # The failure's message attribute, and its text (usually the stack).
    message: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[str | None] = mapped_column(Text)
    duration: Mapped[float | None] = mapped_column(Float)

    report = relationship("StageTestReport", back_populates="cases")
