"""Service settings from `I2V_*` environment variables (pydantic-settings)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from i2v.paths import data_dir


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="I2V_", extra="ignore")

    home: Path | None = Field(default=None, description="Data folder; default: the platform's user data dir.")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default: SQLite in the data folder.")
    queue_url: str | None = Field(default=None, description="redis://… for the distributed queue; default: SQLite.")
    api_token: str | None = Field(default=None, description="Required on API and UI when set (and for non-loopback hosts).")
    max_upload_bytes: int = Field(default=25 * 1024 * 1024, gt=0)
    max_requeues: int = Field(default=1, ge=0, description="How often a job interrupted by a crash is re-queued.")
    queue_limit: int = Field(
        default=100, ge=0,
        description="Waiting jobs (of one model's queue) beyond which a submit answers 429; 0: no limit. A default, so "
        "a flood of submits cannot fill the disk and the table.",
    )
    lease_seconds: float = Field(
        default=15.0, gt=0, description="Redis mode: a running job whose worker stopped renewing its lease this long is re-queued."
    )
    local_worker: bool = True
    models: str = Field(
        default="",
        description="Comma-separated models (hub ids or local folders) clients may pick besides the default I2V_MODEL.",
    )
    min_free_bytes: int = Field(
        default=64 * 1024 * 1024, ge=0, description="Free space the data folder must keep beyond an upload (room for outputs)."
    )
    cors_origins: str = Field(default="", description="Comma-separated origins allowed to call the API from a browser.")
    allowed_hosts: str = Field(
        default="", description="Comma-separated host names the server answers to besides localhost, 127.0.0.1 and [::1]."
    )
    max_connections: int = Field(default=200, gt=0, description="Open connections beyond which a request answers 503.")

    @property
    def model_list(self) -> list[str]:
        return [model.strip() for model in self.models.split(",") if model.strip()]

    @property
    def origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]

    @property
    def host_list(self) -> list[str]:
        return [host.strip() for host in self.allowed_hosts.split(",") if host.strip()]

    @property
    def folder(self) -> Path:
        folder = (self.home or data_dir()).expanduser()
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.folder / 'i2v.sqlite'}"

    def subfolder(self, name: str) -> Path:
        path = self.folder / name
        path.mkdir(parents=True, exist_ok=True)
        return path
