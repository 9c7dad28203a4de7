"""Gold-set evaluation of an intent parser: how often it understands requests as a person meant.

A gold case is ``{"id", "utterance", "expected": {"genres", "exclude_genres", "titles"}, "tags"}``
with genres from the MovieLens vocabulary and titles as MovieLens item ids. ``expected`` may also
hold ``"years"`` (``{"start", "end"}``, either may be null, or ``null``: the message asks for no
era), ``"act"`` (an ``Act`` value) and ``"exclude_titles"`` (item ids the person rejects or has
seen); those are scored only over the cases that carry them. ``tags`` is optional. ``turns`` (optional)
lists earlier messages of the same person, oldest first: they are parsed in order, each parse
merged into the standing request (``agent.session.merge``), and the case's utterance is parsed
with that request as ``previous``.

Metrics of ``evaluate_gold``:

- ``accuracy``: the predicted genre set equals the expected one (an empty set counts: chit-chat
  must produce no genres). The whole parse is ``cases_correct``.
- ``micro_precision`` / ``micro_recall`` / ``micro_f1``: over all (case, genre) pairs of wanted
  genres. A case with no expected and no predicted genres adds nothing; when no pair exists at
  all, all three are 1.0.
- ``per_genre_recall``: {genre: recall} for every genre some case expects.
- ``exclusion_accuracy``: exact match of the excluded-genre set, over all cases.
- ``title_accuracy``: exact match of the title id set, over the cases that expect a title OR
  where the parser predicted one, so false references count against it as much as missed ones;
  1.0 when no case is in scope. ``title_cases`` says how many were.
- ``year_accuracy`` / ``act_accuracy`` / ``exclude_title_accuracy``: exact match over the cases
  that carry ``years`` / ``act`` / ``exclude_titles`` (None when none do). ``act_accuracy_no_refine``:
  the same over the cases whose act is not ``refine`` (a message read alone rarely shows that it
  adjusts a standing request).
- ``unwanted_years``: cases expecting no era (``"years": null``, or ``{"start": null, "end": null}``)
  that got a year window; ``year_errors``: cases with any year mismatch.
- ``cases_correct`` (also as ``whole_parse``): the whole parse right (genres, exclusions and
  titles, plus years, act and excluded titles where the case states them).
- ``n`` and ``cases``: every case with its prediction and ``correct`` (genres, exclusions and
  titles all right, and years / act where expected).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Sequence

from agent.intent import Act, Intent, IntentParser
from data.movielens import GENRES

from data.errors import CineAgentError

EXPECTED_KEYS = ("genres", "exclude_genres", "titles")
OPTIONAL_EXPECTED_KEYS = ("years", "act", "exclude_titles")
CASE_KEYS = ("id", "utterance", "expected")
OPTIONAL_CASE_KEYS = ("tags", "turns")


class GoldSetError(CineAgentError, ValueError):
    """A gold-set file is missing, unreadable, or a case breaks the schema (the message names it)."""


# --------------------------------------------------------------------------- loading
def load_cases(path: str | Path) -> list[dict]:
    """Read gold cases from a JSON list or JSON Lines file and validate every case.

    Raises GoldSetError naming the file and the bad case (by id, or by line / position).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise GoldSetError(f"cannot read gold set {path}: {exc}") from exc
    stripped = text.lstrip()
    raw: list[tuple[str, object]] = []
    if stripped.startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise GoldSetError(f"{path}: not valid JSON ({exc})") from exc
        raw = [(f"item {k}", item) for k, item in enumerate(items)]
    else:
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                raw.append((f"line {lineno}", json.loads(line)))
            except json.JSONDecodeError as exc:
                raise GoldSetError(f"{path}: line {lineno} is not valid JSON ({exc})") from exc
    if not raw:
        raise GoldSetError(f"{path}: no cases (expected a JSON list or JSON Lines of cases)")
    cases = [validate_case(item, where=f"{path}: {where}") for where, item in raw]
    seen: set[str] = set()
    for case in cases:
        if case["id"] in seen:
            raise GoldSetError(f"{path}: duplicate case id {case['id']!r}")
        seen.add(case["id"])
    return cases


def validate_case(item: object, where: str = "case") -> dict:
    """Check one case against the schema; return it normalised (id as str, tags defaulted)."""
    if not isinstance(item, dict):
        raise GoldSetError(f"{where}: a case must be an object with keys {list(CASE_KEYS)}, got {type(item).__name__}")
    label = f"{where} (id {item['id']!r})" if "id" in item else where
    missing = [k for k in CASE_KEYS if k not in item]
    if missing:
        raise GoldSetError(f"{label}: missing key(s) {missing}; a case needs {list(CASE_KEYS)} and may have {list(OPTIONAL_CASE_KEYS)}")
    unknown = [k for k in item if k not in CASE_KEYS + OPTIONAL_CASE_KEYS]
    if unknown:
        raise GoldSetError(f"{label}: unknown key(s) {unknown}; allowed: {list(CASE_KEYS + OPTIONAL_CASE_KEYS)}")
    if not isinstance(item["id"], (str, int)) or isinstance(item["id"], bool) or str(item["id"]) == "":
        raise GoldSetError(f"{label}: id must be a non-empty string or an integer")
    if not isinstance(item["utterance"], str):
        raise GoldSetError(f"{label}: utterance must be a string")
    tags = item.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise GoldSetError(f"{label}: tags must be a list of strings")
    expected = item["expected"]
    if not isinstance(expected, dict):
        raise GoldSetError(f"{label}: expected must be an object with keys {list(EXPECTED_KEYS)}")
    missing = [k for k in EXPECTED_KEYS if k not in expected]
    unknown = [k for k in expected if k not in EXPECTED_KEYS + OPTIONAL_EXPECTED_KEYS]
    if missing or unknown:
        raise GoldSetError(f"{label}: expected has missing {missing} / unknown {unknown} keys; "
                           f"required {list(EXPECTED_KEYS)}, optional {list(OPTIONAL_EXPECTED_KEYS)}")
    for key in ("genres", "exclude_genres"):
        value = expected[key]
        if not isinstance(value, list) or not all(isinstance(g, str) for g in value):
            raise GoldSetError(f"{label}: expected.{key} must be a list of genre names")
        bad = [g for g in value if g not in GENRES]
        if bad:
            raise GoldSetError(f"{label}: expected.{key} has unknown genre(s) {bad}; valid genres: {', '.join(GENRES)}")
    titles = expected["titles"]
    if not isinstance(titles, list) or not all(isinstance(t, int) and not isinstance(t, bool) for t in titles):
        raise GoldSetError(f"{label}: expected.titles must be a list of MovieLens item ids (integers)")
    out_expected = {k: list(expected[k]) for k in EXPECTED_KEYS}
    if "exclude_titles" in expected:
        excluded = expected["exclude_titles"]
        if not isinstance(excluded, list) or not all(isinstance(t, int) and not isinstance(t, bool) for t in excluded):
            raise GoldSetError(f"{label}: expected.exclude_titles must be a list of MovieLens item ids (integers)")
        out_expected["exclude_titles"] = list(excluded)
    if "years" in expected:
        years = expected["years"]
        if years is not None and (not isinstance(years, dict) or set(years) - {"start", "end"} or not all(
                v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in years.values())):
            raise GoldSetError(f"{label}: expected.years must be {{\"start\": int|null, \"end\": int|null}} or null")
        # {"start": null, "end": null} and null both say: no era asked for
        if years is not None and (years.get("start") is not None or years.get("end") is not None):
            out_expected["years"] = {"start": years.get("start"), "end": years.get("end")}
        else:
            out_expected["years"] = None
    if "act" in expected:
        valid = [a.value for a in Act]
        if expected["act"] not in valid:
            raise GoldSetError(f"{label}: expected.act {expected['act']!r} is not one of {valid}")
        out_expected["act"] = expected["act"]
    turns = item.get("turns", [])
    if not isinstance(turns, list) or not all(isinstance(t, str) for t in turns):
        raise GoldSetError(f"{label}: turns must be a list of earlier messages (strings), oldest first")
    out = {"id": str(item["id"]), "utterance": item["utterance"], "expected": out_expected, "tags": list(tags)}
    if turns:
        out["turns"] = list(turns)
    return out


# --------------------------------------------------------------------------- scoring
def _prediction(intent: Intent) -> dict:
    years = None if intent.years is None else {"start": intent.years.start, "end": intent.years.end}
    return {"genres": list(intent.genres), "exclude_genres": list(intent.exclude_genres),
            "titles": list(intent.titles), "exclude_titles": list(intent.exclude_titles),
            "years": years, "act": intent.act.value}


def _parse_case(case: dict, parser: IntentParser) -> Intent:
    """The case's utterance parsed with its earlier turns (if any) as the standing request."""
    from agent.session import merge

    standing: Intent | None = None
    for turn in case.get("turns", []):
        standing = merge(standing, parser.parse(turn, standing).intent)
    return parser.parse(case["utterance"], standing).intent


def evaluate_gold(cases: Sequence[dict], parser: IntentParser) -> dict:
    """Run every case through ``parser.parse`` and score it (metrics: see the module docstring)."""
    tp = fp = fn = 0
    genre_hits: dict[str, list[int]] = {}
    n_genre = n_excl = n_title = n_title_ok = n_years = n_years_ok = n_act = n_act_ok = 0
    n_act_nr = n_act_nr_ok = n_xt = n_xt_ok = unwanted_years = 0
    rows = []
    for case in cases:
        case = validate_case(case, where=f"case {case.get('id', '?')!r}" if isinstance(case, dict) else "case")
        expected = case["expected"]
        predicted = _prediction(_parse_case(case, parser))
        exp_g, pred_g = set(expected["genres"]), set(predicted["genres"])
        tp += len(exp_g & pred_g)
        fp += len(pred_g - exp_g)
        fn += len(exp_g - pred_g)
        for g in exp_g:
            genre_hits.setdefault(g, []).append(int(g in pred_g))
        genres_ok = exp_g == pred_g
        excl_ok = set(expected["exclude_genres"]) == set(predicted["exclude_genres"])
        titles_ok = set(expected["titles"]) == set(predicted["titles"])
        n_genre += genres_ok
        n_excl += excl_ok
        if expected["titles"] or predicted["titles"]:
            n_title += 1
            n_title_ok += titles_ok
        correct = genres_ok and excl_ok and titles_ok
        if "years" in expected:
            years_ok = expected["years"] == predicted["years"]
            n_years += 1
            n_years_ok += years_ok
            unwanted_years += expected["years"] is None and predicted["years"] is not None
            correct = correct and years_ok
        if "act" in expected:
            act_ok = expected["act"] == predicted["act"]
            n_act += 1
            n_act_ok += act_ok
            if expected["act"] != Act.refine.value:
                n_act_nr += 1
                n_act_nr_ok += act_ok
            correct = correct and act_ok
        if "exclude_titles" in expected:
            xt_ok = set(expected["exclude_titles"]) == set(predicted["exclude_titles"])
            n_xt += 1
            n_xt_ok += xt_ok
            correct = correct and xt_ok
        rows.append({"id": case["id"], "utterance": case["utterance"], "expected": expected,
                     "predicted": predicted, "tags": case["tags"], "correct": correct})
    n = len(rows)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    report = {
        "n": n,
        "accuracy": n_genre / n if n else 0.0,
        "micro_precision": precision,
        "micro_recall": recall,
        "micro_f1": f1,
        "per_genre_recall": {g: sum(h) / len(h) for g, h in sorted(genre_hits.items())},
        "exclusion_accuracy": n_excl / n if n else 0.0,
        "title_accuracy": n_title_ok / n_title if n_title else 1.0,
        "title_cases": n_title,
        "year_accuracy": n_years_ok / n_years if n_years else None,
        "year_errors": n_years - n_years_ok,
        "unwanted_years": unwanted_years,
        "act_accuracy": n_act_ok / n_act if n_act else None,
        "act_accuracy_no_refine": n_act_nr_ok / n_act_nr if n_act_nr else None,
        "exclude_title_accuracy": n_xt_ok / n_xt if n_xt else None,
        "cases_correct": sum(r["correct"] for r in rows) / n if n else 0.0,
        "cases": rows,
    }
    report["whole_parse"] = report["cases_correct"]  # the same figure, under the name the printed table gives it
    return report


# --------------------------------------------------------------------------- report
def _fmt(values: Iterable) -> str:
    return ",".join(str(v) for v in values) or "-"


def format_table(report: dict, only_failures: bool = False, width: int = 48) -> str:
    """A plain-text table: one line per case (utterance vs interpretation), failures marked "x",
    then the headline metrics."""
    lines = [f"{'':2}{'id':<6} {'utterance':<{width}} {'genres':<24} {'excluded':<18} titles"]
    for row in report["cases"]:
        if only_failures and row["correct"]:
            continue
        p, e = row["predicted"], row["expected"]
        utterance = row["utterance"].replace("\n", " ")
        utterance = utterance if len(utterance) <= width else utterance[:width - 1] + "…"
        mark = "  " if row["correct"] else "x "
        lines.append(f"{mark}{row['id']:<6} {utterance:<{width}} {_fmt(p['genres']):<24} {_fmt(p['exclude_genres']):<18} {_fmt(p['titles'])}")
        if not row["correct"]:
            lines.append(f"{'':2}{'':<6} {'  expected:':<{width}} {_fmt(e['genres']):<24} {_fmt(e['exclude_genres']):<18} {_fmt(e['titles'])}"
                         + (f"  years {e['years']} got {p['years']}" if "years" in e and e["years"] != p["years"] else "")
                         + (f"  act {e['act']} got {p['act']}" if "act" in e and e["act"] != p["act"] else "")
                         + (f"  exclude_titles {_fmt(e['exclude_titles'])} got {_fmt(p['exclude_titles'])}"
                            if "exclude_titles" in e and set(e["exclude_titles"]) != set(p["exclude_titles"]) else ""))
    lines.append("")
    keys = ("n", "accuracy", "micro_precision", "micro_recall", "micro_f1", "exclusion_accuracy",
            "title_accuracy", "exclude_title_accuracy", "year_accuracy", "year_errors", "unwanted_years",
            "act_accuracy", "act_accuracy_no_refine", "whole_parse")
    for key in keys:
        value = report.get(key)
        lines.append(f"{key:<24} {value:.3f}" if isinstance(value, float) else f"{key:<24} {value}")
    return "\n".join(lines)
