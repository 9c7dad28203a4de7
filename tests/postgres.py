"""A PostgreSQL server for the tests, always: no silent skips.

Where the server comes from, first match wins:

1. ``CINEAGENT_TEST_DATABASE_URL`` (``postgresql://user@host:port/db``): that server; it must be
   reachable, and the user may create databases. The named database is only used to create and
   drop the tests' own database.
2. ``postgresql://postgres@127.0.0.1:5432/test`` when it answers (CI and the dev machines).
3. A throwaway cluster: ``initdb`` into a new directory under ``.cache/pg/`` (gitignored), started
   on a free 127.0.0.1 port, stopped and removed when the session ends. ``initdb``/``pg_ctl`` come
   from PATH or ``/usr/lib/postgresql/*/bin`` (``tests/prepare.sh`` installs Debian's
   ``postgresql`` package when neither a server nor the binaries are there). As root, the cluster
   is made and run by the ``postgres`` system user (PostgreSQL refuses to run as root).

Fixtures (registered by ``tests/conftest.py``):

- ``pg_server_url`` (session): the server's maintenance URL (a database the tests never write to).
- ``pg_database_url`` (session): a fresh ``cineagent_test_<random>`` database, dropped (with
  ``FORCE``) at the end of the session.
- ``pg_url`` (function): a fresh schema in that database, as a URL whose ``search_path`` is that
  schema: each test starts on an empty database without paying for ``CREATE DATABASE``.

Run by hand: ``python -m tests.postgres`` prints a URL and keeps the server until Ctrl-C.
"""
from __future__ import annotations

import contextlib
import glob
import logging
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator
from urllib.parse import quote, urlsplit, urlunsplit

import pytest

from eval.load_test import free_port
from eval.replicas import fresh_database

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "pg"
ENV_URL = "CINEAGENT_TEST_DATABASE_URL"
LOCAL_URL = "postgresql://postgres@127.0.0.1:5432/test"
SOCKET_PATH_MAX = 100        # a unix socket path is at most 107 bytes; the socket adds ".s.PGSQL.NNNNN"


class PostgresUnavailable(RuntimeError):
    """No server could be found or started; the message says why and what to do."""


def connect_error(url: str, timeout: int = 3) -> str | None:
    """None when ``url`` accepts a connection, else why not (one line)."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=timeout):
            return None
    except psycopg.Error as exc:
        return " ".join(str(exc).split())[:300] or type(exc).__name__


def with_search_path(url: str, schema: str) -> str:
    """``url`` whose connections use ``schema`` first (libpq's ``options`` parameter)."""
    parts = urlsplit(url)
    option = "options=" + quote(f"-csearch_path={schema}")
    return urlunsplit(parts._replace(query=f"{parts.query}&{option}" if parts.query else option))


def _bindir() -> Path:
    """The directory holding initdb and pg_ctl: PATH first, then Debian's versioned directories."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    for initdb in reversed(candidates):   # the newest version first
        if (Path(initdb).parent / "pg_ctl").exists():
            return Path(initdb).parent
    raise PostgresUnavailable(
        f"no PostgreSQL for the tests: {LOCAL_URL} does not answer, {ENV_URL} is not set, and initdb/pg_ctl "
        "are neither on PATH nor in /usr/lib/postgresql/*/bin. Run `bash tests/prepare.sh` (installs Debian's "
        f"postgresql package), or set {ENV_URL} to a server where the user may create databases")


class ThrowawayCluster:
    """A PostgreSQL cluster in a new directory, on a free port of 127.0.0.1, trust auth; ``stop``
    removes it."""

    def __init__(self) -> None:
        self.bindir = _bindir()
        self.owner = self._owner()
        self.dir: Path | None = None
        self.socket_dir: Path | None = None
        self.port = 0

    @staticmethod
    def _owner():
        """The system user who runs the cluster: us, or ``postgres`` when we are root."""
        if os.geteuid() != 0:
            return None
        import pwd

        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            raise PostgresUnavailable(
                "the tests run as root and PostgreSQL refuses to: there is no `postgres` system user to run the "
                f"throwaway cluster as. Install Debian's postgresql package (`bash tests/prepare.sh`), run the "
                f"tests as another user, or set {ENV_URL}") from None
        if not shutil.which("runuser"):
            raise PostgresUnavailable("the tests run as root and `runuser` (util-linux) is missing: it is needed to "
                                      f"run the throwaway cluster as the postgres user; install it or set {ENV_URL}")
        return owner

    def _as_owner(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *argv] if self.owner is not None else argv

    def _run(self, argv: list[str], what: str, timeout: float = 120) -> None:
        result = subprocess.run(self._as_owner(argv), capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise PostgresUnavailable(f"{what} failed (exit {result.returncode}): "
                                      f"{(result.stdout + result.stderr).strip()[-2000:]}")

    def _make_dir(self, parent: Path | None, prefix: str) -> Path:
        if parent is not None:
            parent.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
        if self.owner is not None:
            os.chown(path, self.owner.pw_uid, self.owner.pw_gid)
            os.chmod(path, 0o700)
        return path

    def _owner_can_use(self, path: Path) -> bool:
        if self.owner is None:
            return True
        check = subprocess.run(self._as_owner(["test", "-w", str(path), "-a", "-x", str(path)]), capture_output=True)
        return check.returncode == 0

    def start(self) -> str:
        _remove_stale_clusters()
        self.dir = self._make_dir(CACHE, "cluster-")
        if not self._owner_can_use(self.dir):
            # as root in a tree the postgres user cannot enter (a home directory of mode 700, say)
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = self._make_dir(None, "cineagent-pg-")
            if not self._owner_can_use(self.dir):
                raise PostgresUnavailable(f"the postgres user can use neither {CACHE} nor {self.dir.parent}: "
                                          f"make one of them reachable for it, or set {ENV_URL}")
        self.socket_dir = self.dir
        if len(str(self.dir)) > SOCKET_PATH_MAX - 20:
            self.socket_dir = self._make_dir(None, "cineagent-pg-")
        data = self.dir / "data"
        self._run([str(self.bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                   "--encoding=UTF8", "--no-locale", "--no-sync"], "initdb")
        last_error = ""
        for _ in range(3):   # a free port may be taken before the server binds it: try another
            self.port = free_port()
            options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories='{self.socket_dir}' "
                       # only clients get killed in the tests, never this server: no fsync needed
                       "-c fsync=off -c full_page_writes=off -c max_connections=200")
            try:
                self._run([str(self.bindir / "pg_ctl"), "-D", str(data), "-l", str(self.dir / "server.log"),
                           "-w", "-t", "60", "-o", options, "start"], "pg_ctl start")
            except PostgresUnavailable as exc:
                last_error = f"{exc}\n{self._log_tail()}"
                continue
            url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
            error = connect_error(url, timeout=10)
            if error is None:
                return url
            last_error = error
        self.stop()
        raise PostgresUnavailable(f"the throwaway PostgreSQL cluster did not start: {last_error}")

    def _log_tail(self) -> str:
        try:
            return (self.dir / "server.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.dir is None:
            return
        data = self.dir / "data"
        if (data / "postmaster.pid").exists():
            with contextlib.suppress(PostgresUnavailable, subprocess.TimeoutExpired):
                self._run([str(self.bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                          "pg_ctl stop", timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.socket_dir is not None and self.socket_dir != self.dir:
            shutil.rmtree(self.socket_dir, ignore_errors=True)
        self.dir = self.socket_dir = None


def _remove_stale_clusters() -> None:
    """Directories left by sessions that were killed: no live server in them any more."""
    if not CACHE.is_dir():
        return
    for path in CACHE.glob("cluster-*"):
        pid_file = path / "data" / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pid = 0
        if pid:
            try:
                os.kill(pid, 0)
                continue          # a server still runs there (another session's): leave it
            except ProcessLookupError:
                pass
            except PermissionError:
                continue
        # a directory younger than a minute may be a cluster another session is still making
        if time.time() - path.stat().st_mtime > 60:
            shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def server_url() -> Iterator[str]:
    """A maintenance URL of a PostgreSQL server, in the order the module docstring gives."""
    configured = os.environ.get(ENV_URL)
    if configured:
        error = connect_error(configured)
        if error is not None:
            raise PostgresUnavailable(f"{ENV_URL}={configured.split('@', 1)[-1]} does not answer: {error}")
        yield configured
        return
    if connect_error(LOCAL_URL) is None:
        yield LOCAL_URL
        return
    cluster = ThrowawayCluster()
    try:
        url = cluster.start()
        log.info("tests: throwaway PostgreSQL cluster in %s on port %d", cluster.dir, cluster.port)
        yield url
    finally:
        cluster.stop()


@contextlib.contextmanager
def fresh_schema(database: str, prefix: str = "t_") -> Iterator[str]:
    """A new, empty schema in the database, as a URL that uses it; dropped afterwards."""
    import psycopg
    from psycopg import sql

    name = prefix + secrets.token_hex(6)
    with psycopg.connect(database, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    try:
        yield with_search_path(database, name)
    finally:
        with psycopg.connect(database, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """The PostgreSQL server's maintenance URL (env, the machine's server, or a throwaway cluster)."""
    with server_url() as url:
        yield url


@pytest.fixture(scope="session")
def pg_database_url(pg_server_url: str) -> Iterator[str]:
    """A fresh database for this session, dropped at its end."""
    with fresh_database(pg_server_url, prefix="cineagent_test_") as url:
        yield url


@pytest.fixture
def pg_url(pg_database_url: str) -> Iterator[str]:
    """A fresh, empty schema for this test (the URL sets search_path to it), dropped after it."""
    with fresh_schema(pg_database_url) as url:
        yield url


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    with server_url() as server, fresh_database(server) as database:
        print(database, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
