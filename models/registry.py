"""The MLflow tracking store and model registry of CineAgent, embedded: no server to start.

Where it lives (``tracking_uri``):

- by default a SQLite file, ``$CINEAGENT_HOME/mlflow/mlflow.db``, with the run artifacts beside it
  in ``$CINEAGENT_HOME/mlflow/artifacts``;
- when the event store is PostgreSQL (``CINEAGENT_DATABASE_URL``), the schema ``mlflow`` of that
  same database (``<schema>_mlflow`` when the URL already sets a ``search_path``), so every
  replica reads one registry. Artifacts stay on the local disk of the machine that trained them
  (``$CINEAGENT_HOME/mlflow/artifacts``): a replica on another host finds them when that folder
  is shared, or loads the copy under its own ``$CINEAGENT_HOME/artifacts/`` when it has one;
- ``CINEAGENT_MLFLOW_URI`` overrides both.

Every trained bundle is a version of the registered model ``cineagent``; serving loads the
version behind the alias ``champion`` (``serving_version``). A version's tags point at the
CineAgent artifact versions it was built from (``artifact_version``: what serving loads;
``eval_artifact_version``: the same recipe fit on the holdout's training part, for the gate).
``champion_history`` (a tag of the registered model) lists earlier champions for ``rollback``.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from data.errors import CineAgentError
from data.store import home

log = logging.getLogger(__name__)

MODEL_NAME = "cineagent"
EXPERIMENT = "cineagent"
CHAMPION, CHALLENGER = "champion", "challenger"
HISTORY_TAG = "champion_history"

# no usage reports from an embedded store (this machine reaches no such service anyway)
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")


class RegistryError(CineAgentError):
    """The registry cannot do what was asked; the message says why and what to do."""


def mlflow_dir() -> Path:
    return home() / "mlflow"


def artifact_root() -> Path:
    return mlflow_dir() / "artifacts"


def tracking_uri(database_url: str | None = None) -> str:
    """The store's URI (see the module docstring)."""
    explicit = os.environ.get("CINEAGENT_MLFLOW_URI")
    if explicit:
        return explicit
    if database_url and database_url.startswith(("postgresql://", "postgres://")):
        return _postgres_uri(database_url)
    return f"sqlite:///{mlflow_dir() / 'mlflow.db'}"


def _postgres_uri(url: str) -> str:
    """The same server and database through SQLAlchemy's psycopg 3 driver, in its own schema."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    base_schema = None
    kept = []
    for key, value in query:
        if key == "options" and "search_path=" in unquote(value):
            base_schema = unquote(value).split("search_path=", 1)[1].split()[0].split(",")[0]
        else:
            kept.append((key, value))
    schema = f"{base_schema}_mlflow" if base_schema else "mlflow"
    kept.append(("options", f"-csearch_path={schema}"))
    return urlunsplit(parts._replace(scheme="postgresql+psycopg", query=urlencode(kept, quote_via=quote)))


def _schema_of(uri: str) -> str | None:
    for key, value in parse_qsl(urlsplit(uri).query):
        if key == "options" and "search_path=" in value:
            return value.split("search_path=", 1)[1].split()[0]
    return None


def exists(database_url: str | None = None) -> bool:
    """Whether a registry has been created (without creating one)."""
    uri = tracking_uri(database_url)
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///"):]).exists()
    return True


class Registry:
    """CineAgent's view of the MLflow registry: runs, versions, aliases."""

    def __init__(self, database_url: str | None = None) -> None:
        self.uri = tracking_uri(database_url)
        try:
            from mlflow import MlflowClient
        except ImportError as exc:  # pragma: no cover - a dependency
            raise RegistryError("the registry needs MLflow: pip install mlflow") from exc
        if self.uri.startswith("sqlite:///"):
            Path(self.uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        elif self.uri.startswith("postgresql"):
            self._create_schema()
        logging.getLogger("alembic").setLevel(logging.WARNING)   # its migration lines on first use
        self.client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    def _create_schema(self) -> None:
        import psycopg
        from psycopg import sql

        schema = _schema_of(self.uri)
        parts = urlsplit(self.uri)
        query = [(k, v) for k, v in parse_qsl(parts.query) if k != "options"]
        plain = urlunsplit(parts._replace(scheme="postgresql", query=urlencode(query)))
        with psycopg.connect(plain, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))

    def describe(self) -> str:
        if self.uri.startswith("sqlite:///"):
            return self.uri
        parts = urlsplit(self.uri)
        return f"postgresql://{parts.hostname}:{parts.port or 5432}{parts.path} (schema {_schema_of(self.uri)})"

    # ---------------------------------------------------------------- runs
    def experiment_id(self) -> str:
        found = self.client.get_experiment_by_name(EXPERIMENT)
        if found is not None:
            return found.experiment_id
        artifacts = artifact_root()
        artifacts.mkdir(parents=True, exist_ok=True)
        try:
            return self.client.create_experiment(EXPERIMENT, artifact_location=artifacts.as_uri())
        except Exception:   # created meanwhile by another process
            found = self.client.get_experiment_by_name(EXPERIMENT)
            if found is None:
                raise
            return found.experiment_id

    def start_run(self, name: str, tags: dict[str, str]) -> str:
        run = self.client.create_run(self.experiment_id(), run_name=name, tags=tags)
        return run.info.run_id

    def log(self, run_id: str, params: dict[str, Any] | None = None, metrics: dict[str, float] | None = None,
            tags: dict[str, Any] | None = None) -> None:
        import time

        from mlflow.entities import Metric, Param, RunTag

        now = int(time.time() * 1000)
        params = [Param(k, str(v)[:6000]) for k, v in (params or {}).items()]
        metrics = [Metric(k, float(v), now, 0) for k, v in (metrics or {}).items() if v is not None]
        tags = [RunTag(k, str(v)[:5000]) for k, v in (tags or {}).items()]
        for start in range(0, max(len(params), len(metrics), len(tags), 1), 100):   # MLflow's batch limits
            self.client.log_batch(run_id, metrics=metrics[start:start + 100], params=params[start:start + 100],
                                  tags=tags[start:start + 100])

    def log_artifacts(self, run_id: str, directory: Path, artifact_path: str) -> None:
        self.client.log_artifacts(run_id, str(directory), artifact_path)

    def finish(self, run_id: str, ok: bool = True) -> None:
        self.client.set_terminated(run_id, "FINISHED" if ok else "FAILED")

    def run(self, run_id: str):
        return self.client.get_run(run_id)

    # ---------------------------------------------------------------- versions and aliases
    def register(self, run_id: str, tags: dict[str, str], description: str = "") -> str:
        from mlflow.exceptions import MlflowException

        try:
            self.client.create_registered_model(MODEL_NAME, description="CineAgent's models (fusion over "
                                                "popularity, EASE, SVD and the two-tower), one version a training run")
        except MlflowException:
            pass   # already there
        source = f"{self.run(run_id).info.artifact_uri}/bundle"
        version = self.client.create_model_version(MODEL_NAME, source, run_id=run_id, tags=tags,
                                                   description=description)
        return str(version.version)

    def version(self, version: str):
        """A model version by number, or by alias (``challenger``, ``champion``)."""
        from mlflow.exceptions import MlflowException

        if not str(version).isdigit():
            found = self.by_alias(str(version))
            if found is None:
                raise RegistryError(f"no version has the alias {version!r}; `cineagent models list` shows them")
            return found
        try:
            return self.client.get_model_version(MODEL_NAME, str(version))
        except MlflowException:
            raise RegistryError(f"there is no model version {version}; `cineagent models list` shows them") from None

    def versions(self) -> list:
        from mlflow.exceptions import MlflowException

        try:
            found = self.client.search_model_versions(f"name='{MODEL_NAME}'")
        except MlflowException:
            return []
        return sorted(found, key=lambda v: int(v.version))

    def aliases(self) -> dict[str, str]:
        from mlflow.exceptions import MlflowException

        try:
            return {a: str(v) for a, v in self.client.get_registered_model(MODEL_NAME).aliases.items()}
        except MlflowException:
            return {}

    def by_alias(self, alias: str):
        """The version behind ``alias``, or None."""
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_model_version_by_alias(MODEL_NAME, alias)
        except MlflowException:
            return None

    def set_alias(self, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(MODEL_NAME, alias, str(version))

    def drop_alias(self, alias: str) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.delete_registered_model_alias(MODEL_NAME, alias)
        except MlflowException:
            pass

    def tag_version(self, version: str, tags: dict[str, Any]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(MODEL_NAME, str(version), key, str(value))

    def history(self) -> list[str]:
        from mlflow.exceptions import MlflowException

        try:
            raw = self.client.get_registered_model(MODEL_NAME).tags.get(HISTORY_TAG, "[]")
        except MlflowException:
            return []
        return [str(v) for v in json.loads(raw)]

    def _set_history(self, history: list[str]) -> None:
        self.client.set_registered_model_tag(MODEL_NAME, HISTORY_TAG, json.dumps(history[-50:]))

    def promote(self, version: str) -> str | None:
        """Make ``version`` the champion; the one it replaces goes on the history. Returns it."""
        version = str(self.version(version).version)   # exists (a number or an alias), or a clear error
        previous = self.by_alias(CHAMPION)
        if previous is not None and str(previous.version) == str(version):
            return str(previous.version)
        self.set_alias(CHAMPION, version)
        if previous is not None:
            self._set_history(self.history() + [str(previous.version)])
        if self.aliases().get(CHALLENGER) == str(version):
            self.drop_alias(CHALLENGER)
        return str(previous.version) if previous is not None else None

    def rollback(self) -> tuple[str, str]:
        """The champion before the current one serves again; returns (from, to)."""
        history = self.history()
        current = self.by_alias(CHAMPION)
        if not history:
            raise RegistryError("no earlier champion to roll back to")
        target = history.pop()
        self.set_alias(CHAMPION, target)
        self._set_history(history)
        return (str(current.version) if current is not None else "-"), target


def serving_version(database_url: str | None = None) -> str | None:
    """The CineAgent artifact version behind the alias ``champion``; None when there is no registry
    or no champion yet (then serving falls back to the latest artifact, ``artifacts/CURRENT``)."""
    if not exists(database_url):
        return None
    try:
        champion = Registry(database_url).by_alias(CHAMPION)
    except Exception as exc:   # a registry that cannot be read must not stop serving
        log.warning("model registry %s unreadable (%s); serving the latest artifact", tracking_uri(database_url), exc)
        return None
    if champion is None:
        return None
    return champion.tags.get("artifact_version")


def champion_state(database_url: str | None = None) -> tuple[str, str] | None:
    """(registry version, artifact version) of the champion, or None: what a running server polls."""
    if not exists(database_url):
        return None
    champion = Registry(database_url).by_alias(CHAMPION)
    if champion is None:
        return None
    return str(champion.version), champion.tags.get("artifact_version", "")
