"""The RQ worker class that `deno-ci worker` runs."""

from rq import SimpleWorker

from app.extensions import db


class PlatformWorker(SimpleWorker):
    """Runs jobs in this process (no fork per job) and ends each job's database session.

    Without a fork per job, a job that leaves its session inside a transaction would
    keep that transaction, and its locks, open until the next job.
    """

    def execute_job(self, job, queue):
        try:
            return super().execute_job(job, queue)
        finally:
            db.session.remove()
