"""Process configuration, read from ``FLOWPLANE_*`` environment variables or given directly."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything a Flowplane process needs to know about its surroundings.

    Nothing reads settings from globals: ``create_app(settings)`` and the CLI
    pass an instance down.
    """

    model_config = SettingsConfigDict(env_prefix="FLOWPLANE_", extra="ignore")

    data_dir: Path = Field(default=Path("flowplane-data"), description="Holds the SQLite database")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite in data_dir"
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    public_url: str | None = Field(
        default=None,
        description="The URL people reach the server at (links in notifications); "
        "default: http://host:port",
    )
    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="Largest accepted body")
    workers: int = Field(default=1, ge=0, le=32, description="Embedded workers in the server")
    scheduler: bool = Field(
        default=True, description="Run the Schedule trigger scheduler and the polling-trigger loop"
    )
    poll_sources: bool = Field(default=True, description="Poll Git sources at their interval")
    lease_seconds: float = Field(
        default=15, gt=0, description="How long a worker's claim on a run holds without heartbeat"
    )
    admin_token: SecretStr | None = Field(
        default=None,
        description="Always accepted as the admin token; otherwise the first start makes one",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or CIDRs of reverse proxies whose Remote-User header is trusted",
    )
    proxy_user_header: str = "Remote-User"
    proxy_groups_header: str = "Remote-Groups"
    proxy_email_header: str = "Remote-Email"
    proxy_group_roles: dict[str, str] = Field(
        default_factory=dict,
        description='Proxy group → role, e.g. {"flowplane-reviewers": "reviewer"}',
    )
    secure_cookies: bool = Field(
        default=False,
        description="Mark the UI session cookie Secure (set it when the server is behind TLS)",
    )
    sandbox: str = Field(
        default="auto",
        description="Script isolation: auto (bubblewrap if present), bwrap, setuid, or off",
    )
    sandbox_cpu_seconds: int | None = Field(
        default=3600, ge=1, description="CPU seconds one script may use (None: no limit)"
    )
    sandbox_memory_mb: int | None = Field(
        default=4096, ge=16, description="Address space one script may map, in MiB"
    )
    sandbox_network: bool = Field(default=True, description="Whether scripts reach the network")
    sandbox_prestart: bool = Field(
        default=True,
        description="Keep a bwrap sandbox started ahead of the next script task "
        "(each still serves one task)",
    )
    work_dir: Path | None = Field(
        default=None,
        description="Root of task working directories; never inside data_dir (default: tmp)",
    )
    dependency_cache_dir: Path | None = Field(
        default=None,
        description="Where Python `dependencies` environments are cached; never inside data_dir "
        "(default: tmp)",
    )
    package_index_url: str | None = Field(
        default=None,
        description="Index uv installs `dependencies` from (default: the worker's UV_INDEX_URL "
        "or PIP_INDEX_URL, else PyPI)",
    )
    package_install_args: list[str] = Field(
        default_factory=list,
        description='More `uv pip install` options, e.g. ["--no-index", "--find-links", "/w"]',
    )
    log_level: str = "INFO"
    log_json: bool = True

    def resolved_database_url(self) -> str:
        """The database URL, defaulting to ``<data_dir>/flowplane.db`` (SQLite)."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir.resolve() / 'flowplane.db'}"

    def prepare(self) -> None:
        """Create the data directory when the database lives in it."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
