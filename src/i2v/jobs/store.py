"""The job table: every request, its progress and its outcome, surviving restarts. SQLite by default; any
SQLAlchemy URL (PostgreSQL) works. The schema is owned by Alembic migrations from the first table on.

A damaged SQLite file is refused at start-up (`check_integrity`) and, found later, answers StoreUnavailableError
with the same advice instead of a raw DatabaseError.
"""

from __future__ import annotations

import logging
import sqlite3
import uuid
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Integer,
    String,
    Text,
    create_engine,
    event,
    func,
    select,
    update,
)
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from i2v.errors import StoreUnavailableError

log = logging.getLogger(__name__)

JobState = Literal["queued", "running", "succeeded", "failed", "cancelled", "interrupted"]
ACTIVE: tuple[str, ...] = ("queued", "running")
FINISHED: tuple[str, ...] = ("succeeded", "failed", "cancelled")
#: Kept on a job that succeeded although a cancel was asked for: it came after the last step polled for one.
LATE_CANCEL = "the cancel arrived after the last denoising step; the clip was kept"


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, index=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    request: Mapped[dict] = mapped_column(JSON)
    image_path: Mapped[str] = mapped_column(Text)
    refined_prompt: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    #: What ran: the advisor's plan for the device (or the runtime settings of an unplanned run), once done.
    plan: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    #: The RunPlan resolved at submission, which the worker runs (None: resolved by the remote worker that has
    #: the model, or a job from before plans were stored).
    run_plan: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    progress: Mapped[dict] = mapped_column(JSON)
    timings: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    warnings: Mapped[list | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: What went wrong as a stable code (`I2VError.code`; "internal" for any other exception); None unless it failed.
    error_code: Mapped[str | None] = mapped_column(String(40), nullable=True)
    video_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    metadata_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    thumbnail_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: The latest live preview written for the running attempt, {"step": i, "total": n}; kept after the job ends.
    preview: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    worker: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now, onupdate=_now)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


def migrate(url: str) -> None:
    """Bring the schema to the newest Alembic revision (creates it on first use)."""
    # Alembic tells each step at INFO (its plugins as it is imported, "Context impl SQLiteImpl", "Running upgrade …"):
    # a dozen lines before `i2v serve` says anything of its own. Its warnings and errors still show.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(config, "head")


class JobStore:
    """All reads and writes of jobs. Each method is one short transaction, safe from any thread."""

    #: Whether each model has a queue of its own (Redis workers hold one model each): then a job waits only behind
    #: jobs for its model. The embedded worker runs every model from one queue, in submission order.
    per_model_queues = False

    def __init__(self, url: str, *, run_migrations: bool = True):
        if run_migrations:
            migrate(url)
        self.engine = create_engine(url, connect_args={"timeout": 30} if url.startswith("sqlite") else {})
        #: How errors name the database to clients: the file's name, never its path.
        self._name = sqlite_path(url).name if sqlite_path(url) else "in use"
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "handle_error", _refuse_damaged(sqlite_path(url)))
        self.session = sessionmaker(self.engine, expire_on_commit=False)

    # -- writes ---------------------------------------------------------------------------------------------

    def create(self, request: dict[str, Any], image_path: str, job_id: str | None = None,
               warnings: list[str] | None = None, run_plan: dict[str, Any] | None = None) -> Job:
        with self.session.begin() as session:
            seq = (session.scalar(select(func.max(Job.seq))) or 0) + 1
            job = Job(
                id=job_id or uuid.uuid4().hex[:16],
                seq=seq,
                state="queued",
                request=request,
                image_path=image_path,
                run_plan=run_plan,
                progress={"stage": "queued", "step": 0, "total": (run_plan or request).get("steps") or 0},
                attempts=0,
                cancel_requested=False,
                warnings=warnings or None,
            )
            session.add(job)
        return job

    def claim(self, job_id: str, worker: str, *, attempt: int | None = None) -> Job | None:
        """queued -> running, atomically: a job is never run twice at once. None if it was not queued.

        `attempt` (distributed mode) claims only for that attempt number, so a stale queue message cannot.
        """
        conditions = [Job.id == job_id, Job.state == "queued", Job.cancel_requested.is_(False)]
        if attempt is not None:
            conditions.append(Job.attempts == attempt - 1)
        with self.session.begin() as session:
            result = session.execute(
                update(Job)
                .where(*conditions)
                .values(state="running", attempts=Job.attempts + 1, started_at=_now(), worker=worker, error=None, error_code=None,
                        progress={"stage": "starting", "step": 0, "total": 0}, preview=None)
            )
            if result.rowcount != 1:
                return None
        return self.get(job_id)

    def update(self, job_id: str, *, attempt: int | None = None, **values: Any) -> bool:
        """Write columns; with `attempt`, only while that attempt is the one running. Returns whether it wrote."""
        with self.session.begin() as session:
            return _write(session, job_id, attempt, values)

    def finish(self, job_id: str, state: JobState, *, attempt: int | None = None, **values: Any) -> bool:
        """End a job. A success that a cancel reached too late (after the last step) keeps its clip and says so."""
        with self.session.begin() as session:
            if not _write(session, job_id, attempt, {**values, "state": state, "finished_at": _now()}):
                return False
            if state == "succeeded":
                job = session.get(Job, job_id)
                if job is not None and job.cancel_requested:
                    job.warnings = [*(job.warnings or []), LATE_CANCEL]
            return True

    def release(self, job_id: str, attempt: int, max_requeues: int, reason: str) -> str | None:
        """A running attempt whose worker vanished: back to `queued` while attempts are left, else `interrupted`.

        Returns the new state, or None when that attempt is not the one running any more.
        """
        with self.session.begin() as session:
            job = session.get(Job, job_id)
            if job is None or job.state != "running" or job.attempts != attempt:
                return None
            if job.attempts <= max_requeues and not job.cancel_requested:
                job.state, job.worker = "queued", None
                job.progress = {"stage": f"{reason}, re-queued", "step": 0, "total": job.progress.get("total", 0)}
            elif job.cancel_requested:
                job.state, job.finished_at, job.error = "cancelled", _now(), f"cancelled ({reason})"
            else:
                job.state, job.finished_at = "interrupted", _now()
                job.error = f"{reason}; not retried (attempts used up: {job.attempts})"
            return job.state

    def request_cancel(self, job_id: str) -> Job | None:
        """A queued job is cancelled at once; a running one at its next denoising step."""
        with self.session.begin() as session:
            job = session.get(Job, job_id)
            if job is None:
                return None
            if job.state == "queued":
                job.state, job.finished_at = "cancelled", _now()
                job.progress = {**job.progress, "stage": "cancelled"}
            if job.state in ACTIVE:
                job.cancel_requested = True
        return self.get(job_id)

    def delete(self, job_id: str) -> None:
        with self.session.begin() as session:
            job = session.get(Job, job_id)
            if job is not None:
                session.delete(job)

    def recover(self, max_requeues: int) -> tuple[list[str], list[str]]:
        """After a crash: `running` jobs become `interrupted`, and those with attempts left go back to `queued`.

        Returns (requeued ids, every queued id in order) so the caller can enqueue them again.
        """
        with self.session.begin() as session:
            stale = session.scalars(select(Job).where(Job.state == "running")).all()
            requeued = []
            for job in stale:
                if job.attempts <= max_requeues and not job.cancel_requested:
                    job.state = "queued"
                    job.progress = {"stage": "interrupted, re-queued", "step": 0, "total": job.progress.get("total", 0)}
                    requeued.append(job.id)
                else:
                    job.state, job.finished_at = "interrupted", _now()
                    job.error = "the server stopped while this job ran; it was not retried (attempts used up)"
        return requeued, self.ids_in_state("queued")

    # -- reads ----------------------------------------------------------------------------------------------

    def get(self, job_id: str) -> Job | None:
        with self.session() as session:
            return session.get(Job, job_id)

    def cancel_requested(self, job_id: str) -> bool:
        with self.session() as session:
            return bool(session.scalar(select(Job.cancel_requested).where(Job.id == job_id)))

    def jobs_in_state(self, *states: str) -> list[Job]:
        with self.session() as session:
            return list(session.scalars(select(Job).where(Job.state.in_(states)).order_by(Job.seq)))

    def recent_run_seconds(self, limit: int = 20) -> list[float]:
        """How long the last finished runs took (for a Retry-After estimate)."""
        with self.session() as session:
            rows = session.execute(
                select(Job.started_at, Job.finished_at)
                .where(Job.state == "succeeded", Job.started_at.is_not(None), Job.finished_at.is_not(None))
                .order_by(Job.finished_at.desc())
                .limit(limit)
            ).all()
        return [max((finished - started).total_seconds(), 0.0) for started, finished in rows]

    def ids_in_state(self, state: str) -> list[str]:
        with self.session() as session:
            return list(session.scalars(select(Job.id).where(Job.state == state).order_by(Job.seq)))

    def queue_position(self, job: Job) -> int | None:
        """1 for the next job to run in its queue; None unless queued."""
        if job.state != "queued":
            return None
        with self.session() as session:
            ahead = session.scalar(select(func.count()).where(
                Job.state == "queued", Job.seq < job.seq, *self._same_queue((job.request or {}).get("model"))))
        return int(ahead or 0) + 1

    def waiting(self, model: str) -> int:
        """How many jobs wait in the queue a new job for `model` would join."""
        with self.session() as session:
            return int(session.scalar(select(func.count()).where(Job.state == "queued", *self._same_queue(model))) or 0)

    def _same_queue(self, model: str | None) -> list:
        if not self.per_model_queues or model is None:
            return []
        return [Job.request["model"].as_string() == model]

    def list(self, limit: int = 20, offset: int = 0) -> tuple[list[Job], int]:
        with self.session() as session:
            total = session.scalar(select(func.count()).select_from(Job)) or 0
            try:
                jobs = session.scalars(select(Job).order_by(Job.seq.desc()).limit(limit).offset(offset)).all()
            except ValueError as error:  # a damaged page can also read back as a row whose JSON is not JSON
                raise StoreUnavailableError(damaged(self._name, f"a row's JSON does not decode: {error}")) from error
        return list(jobs), int(total)

    def count(self, state: str) -> int:
        with self.session() as session:
            return int(session.scalar(select(func.count()).where(Job.state == state)) or 0)


def _write(session, job_id: str, attempt: int | None, values: dict[str, Any]) -> bool:
    conditions = [Job.id == job_id]
    if attempt is not None:
        conditions += [Job.state == "running", Job.attempts == attempt]
    result = session.execute(update(Job).where(*conditions).values(**values, updated_at=_now()))
    return result.rowcount == 1


# -- damaged SQLite files -----------------------------------------------------------------------------------------


def sqlite_path(url: str) -> Path | None:
    """The file behind an SQLite URL; None for other databases and in-memory ones."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def sqlite_problem(path: Path) -> str | None:
    """What `PRAGMA quick_check` (every page and record, not the indexes' content) finds wrong with an SQLite
    file, in one line; None when it is sound."""
    try:
        with closing(sqlite3.connect(path, timeout=30)) as connection:
            rows = connection.execute("PRAGMA quick_check(1)").fetchall()
    except sqlite3.DatabaseError as error:
        return str(error)
    found = rows[0][0] if rows else "no answer from quick_check"
    if found == "ok":
        return None
    return " ".join(line for line in found.splitlines() if not line.startswith("***"))[:200]


def damaged(where: Path | str, problem: str) -> str:
    """The one line for a damaged job database: which file, what is wrong, what to do."""
    return (f"the job database {where} is damaged ({problem}): restore it from a backup, or stop the server and move "
            f"it (with its -wal and -shm files) aside to start with an empty job history")


def check_integrity(url: str) -> None:
    """Refuse a damaged SQLite job database before anything reads it: StoreUnavailableError naming the file."""
    path = sqlite_path(url)
    if path is None or not path.is_file():
        return
    problem = sqlite_problem(path)
    if problem is not None:
        raise StoreUnavailableError(damaged(path, problem))


def _refuse_damaged(path: Path | None):
    """A `handle_error` hook: damage found while serving becomes StoreUnavailableError (503), not a bare 500. Clients
    get the file's name (server paths are not theirs); the log gets its full path, once."""
    logged = False

    def hook(context: ExceptionContext) -> None:
        nonlocal logged
        error = context.original_exception
        name = getattr(error, "sqlite_errorname", "")
        if isinstance(error, sqlite3.DatabaseError) and (name.startswith("SQLITE_CORRUPT") or name == "SQLITE_NOTADB"):
            if not logged:
                log.error("%s", damaged(path or "in use", str(error)))
                logged = True
            raise StoreUnavailableError(damaged(path.name if path else "in use", str(error))) from error

    return hook


def _sqlite_pragmas(connection, record) -> None:
    """WAL lets the API read while the worker writes progress; NORMAL sync is durable enough with WAL."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
