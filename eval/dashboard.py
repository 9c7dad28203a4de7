"""The nightly dashboard: one self-contained HTML file (inline CSS and SVG; no script, font or
image is fetched from anywhere).

``render(history, gold_report, regressions, threshold)`` draws, from the history entries written
by ``eval.nightly`` (oldest first, the current run last):

- a banner naming each figure that fell more than ``threshold`` below the previous run;
- the latest figures with their change since the previous run;
- gold-set accuracy over time (accuracy, micro F1, exclusion and title accuracy, cases correct);
- per-genre recall of the latest run (previous run as a tick);
- recommender metrics over time (nDCG@10 and Recall@10 per model, stratified protocol);
- real requests (whole parse, i.e. ``cases_correct``; micro F1; act accuracy) and real dialogues (Recall@10 of
  the agent against its baselines) over time, when the run measured them;
- the like rate over time, and the latest like rate by card position and by candidate source;
- the per-case side-by-side table (utterance, expected, predicted), failures first.
"""
from __future__ import annotations

import html
from typing import Sequence

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")
GOLD_SERIES = ("accuracy", "micro_f1", "exclusion_accuracy", "title_accuracy", "cases_correct")
MODEL_METRICS = ("ndcg@10", "recall@10")
CSS = """
body {font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #222; max-width: 1200px}
h1 {font-size: 1.5em; margin-bottom: 0} h2 {font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ddd}
.sub {color: #666; margin-top: 4px}
.banner {padding: 10px 14px; border-radius: 6px; margin: 14px 0; font-weight: 600}
.bad {background: #fde2e1; border: 1px solid #d62728; color: #8b0000} .good {background: #e3f4e1; border: 1px solid #2ca02c}
.grid {display: flex; flex-wrap: wrap; gap: 18px} .chart {border: 1px solid #eee; border-radius: 6px; padding: 6px}
table {border-collapse: collapse; font-size: 0.86em} td, th {border-bottom: 1px solid #eee; padding: 3px 8px; text-align: left}
tr.fail td {background: #fff4f4} td.num {text-align: right; font-variant-numeric: tabular-nums}
.down {color: #c00} .up {color: #080} .muted {color: #888}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else ("–" if value is None else str(value))


# ---------------------------------------------------------------------------------------- SVG charts
def line_chart(title: str, labels: Sequence[str], series: dict[str, Sequence[float | None]], width: int = 560,
               height: int = 260, y_range: tuple[float, float] | None = None) -> str:
    """An SVG line chart: one polyline (with dots) per series over the run ``labels``; None = gap."""
    left, right, top, bottom = 46, 200, 28, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for vs in series.values() for v in vs if v is not None]
    lo, hi = y_range or ((min(values), max(values)) if values else (0.0, 1.0))
    if hi - lo < 1e-9:
        lo, hi = lo - 0.05, hi + 0.05
    n = max(len(labels), 1)

    def x(i: int) -> float:
        return left + (plot_w * (i / (n - 1)) if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return top + plot_h * (1 - (v - lo) / (hi - lo))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{_e(title)}" class="chart">',
             f'<text x="{left}" y="18" font-size="13" font-weight="600">{_e(title)}</text>']
    for k in range(5):
        v = lo + (hi - lo) * k / 4
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#eee"/>'
                     f'<text x="{left - 4}" y="{y(v) + 4:.1f}" font-size="10" text-anchor="end">{v:.3g}</text>')
    step = max(1, n // 8)
    for i, label in enumerate(labels):
        if i % step == 0 or i == n - 1:
            parts.append(f'<text x="{x(i):.1f}" y="{top + plot_h + 14}" font-size="10" text-anchor="middle">'
                         f'{_e(label)}</text>')
    for k, (name, vs) in enumerate(series.items()):
        color = PALETTE[k % len(PALETTE)]
        runs, current = [], []
        for i, v in enumerate(vs):
            if v is None:
                if current:
                    runs.append(current)
                current = []
            else:
                current.append((x(i), y(v)))
        if current:
            runs.append(current)
        for run in runs:
            if len(run) > 1:
                points = " ".join(f"{px:.1f},{py:.1f}" for px, py in run)
                parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{points}"/>')
            parts.extend(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{color}"/>' for px, py in run)
        ly = top + 12 + 16 * k
        last = next((v for v in reversed(vs) if v is not None), None)
        parts.append(f'<rect x="{left + plot_w + 10}" y="{ly - 9}" width="10" height="10" fill="{color}"/>'
                     f'<text x="{left + plot_w + 24}" y="{ly}" font-size="11">{_e(name)}'
                     f'{"" if last is None else f" {last:.3f}"}</text>')
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(title: str, bars: dict[str, float], marks: dict[str, float] | None = None, width: int = 560,
              counts: dict[str, int] | None = None, x_max: float = 1.0) -> str:
    """Horizontal bars (0..``x_max``), one per key; ``marks`` draws a tick (e.g. the previous run)."""
    row, left, top = 20, 120, 28
    height = top + row * max(len(bars), 1) + 12
    plot_w = width - left - 70
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{_e(title)}" class="chart">',
             f'<text x="{left}" y="18" font-size="13" font-weight="600">{_e(title)}</text>']
    for i, (name, value) in enumerate(bars.items()):
        y = top + i * row
        w = plot_w * max(0.0, min(value, x_max)) / x_max
        label = f"{value:.2f}" + (f" (n={counts[name]})" if counts and name in counts else "")
        parts.append(f'<text x="{left - 6}" y="{y + 13}" font-size="11" text-anchor="end">{_e(name)}</text>'
                     f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="13" fill="{PALETTE[0]}" opacity="0.8"/>'
                     f'<text x="{left + w + 4:.1f}" y="{y + 13}" font-size="10">{_e(label)}</text>')
        if marks and name in marks:
            mx = left + plot_w * max(0.0, min(marks[name], x_max)) / x_max
            parts.append(f'<line x1="{mx:.1f}" x2="{mx:.1f}" y1="{y + 1}" y2="{y + 18}" stroke="{PALETTE[1]}" '
                         f'stroke-width="2"><title>previous run {marks[name]:.3f}</title></line>')
    parts.append("</svg>")
    return "".join(parts)


# ---------------------------------------------------------------------------------------- sections
def _labels(history: Sequence[dict]) -> list[str]:
    return [str(h.get("date", "?"))[5:] + ("q" if h.get("quick") else "") for h in history]


def _figures_table(history: Sequence[dict], regressions: Sequence[dict]) -> str:
    current = history[-1]["figures"]
    previous = history[-2]["figures"] if len(history) > 1 else {}
    regressed = {r["figure"] for r in regressions}
    rows = []
    for name in sorted(current):
        value, before = current[name], previous.get(name)
        delta = "" if before is None or value is None else f"{value - before:+.4f}"
        cls = "down" if name in regressed else ("up" if delta.startswith("+") and delta != "+0.0000" else "")
        rows.append(f'<tr><td>{_e(name)}</td><td class="num">{_fmt(value)}</td><td class="num muted">{_fmt(before)}</td>'
                    f'<td class="num {cls}">{delta}</td></tr>')
    return ("<table><tr><th>figure</th><th>this run</th><th>previous</th><th>change</th></tr>"
            + "".join(rows) + "</table>")


def _cases_table(gold_report: dict, titles: dict[int, str] | None = None) -> str:
    def show(d: dict) -> str:
        parts = []
        if d.get("genres"):
            parts.append(", ".join(d["genres"]))
        if d.get("exclude_genres"):
            parts.append("no " + ", ".join(d["exclude_genres"]))
        if d.get("titles"):
            parts.append("like " + ", ".join((titles or {}).get(t, f"#{t}") for t in d["titles"]))
        years = d.get("years")
        if years and (years.get("start") or years.get("end")):
            parts.append(f"{years.get('start') or '…'}–{years.get('end') or '…'}")
        return " · ".join(parts) or "—"

    rows = sorted(gold_report.get("cases", []), key=lambda r: (r["correct"], r["id"]))
    body = "".join(
        f'<tr class="{"ok" if r["correct"] else "fail"}"><td>{_e(r["id"])}</td><td>{"✓" if r["correct"] else "✗"}</td>'
        f'<td>{_e(r["utterance"])}</td><td>{_e(show(r["expected"]))}</td><td>{_e(show(r["predicted"]))}</td>'
        f'<td class="muted">{_e(", ".join(r.get("tags", [])))}</td></tr>' for r in rows)
    wrong = sum(not r["correct"] for r in rows)
    return (f'<p class="sub">{len(rows)} cases, {wrong} wrong (listed first).</p>'
            '<table><tr><th>id</th><th></th><th>utterance</th><th>expected</th><th>predicted</th><th>tags</th></tr>'
            f"{body}</table>")


def render(history: Sequence[dict], gold_report: dict, regressions: Sequence[dict], threshold: float,
           titles: dict[int, str] | None = None) -> str:
    """The dashboard HTML for ``history`` (oldest first; the last entry is this run); ``titles``
    (item id -> title) names the referenced movies in the case table."""
    current = history[-1]
    labels = _labels(history)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>CineAgent nightly {_e(current['date'])}"
             f"</title><style>{CSS}</style></head><body>",
             f"<h1>CineAgent nightly evaluation</h1><p class='sub'>run {_e(current['ts_iso'])} · parser "
             f"{_e(current.get('parser'))} · prompt {_e(current.get('prompt_version') or '–')} · "
             f"{'quick (stratified ranking only)' if current.get('quick') else 'full'} · {len(history)} run(s) in history"
             f" (dates ending in q: quick runs)</p>"]
    if regressions:
        named = "; ".join(f"{r['figure']} {r['previous']:.4f} → {r['current']:.4f}" for r in regressions)
        parts.append(f"<div class='banner bad' id='regressions'>Regression (more than {threshold} below the previous "
                     f"run): {_e(named)}</div>")
    else:
        parts.append(f"<div class='banner good' id='regressions'>No figure fell more than {threshold} below the "
                     f"previous run.</div>")

    gold_series = {k: [h.get("figures", {}).get(f"gold.{k}") for h in history] for k in GOLD_SERIES}
    genre_now = current.get("gold", {}).get("per_genre_recall", {})
    genre_before = history[-2].get("gold", {}).get("per_genre_recall", {}) if len(history) > 1 else {}
    model_names = sorted({k.split(".")[2] for h in history for k in h.get("figures", {})
                          if k.startswith("ranking.stratified.")})
    gold_values = [v for vs in gold_series.values() for v in vs if v is not None]
    gold_floor = max(0.0, min(gold_values, default=0.0) - 0.05)   # zoomed in: a 2-point drop must show
    parts.append("<h2>Intent parsing (gold set)</h2><div class='grid'>")
    parts.append(line_chart("Gold-set accuracy over time", labels, gold_series, y_range=(gold_floor, 1.0)))
    parts.append(bar_chart("Per-genre recall (latest; red tick = previous run)", genre_now, genre_before))
    parts.append("</div><h2>Recommender (offline benchmark, stratified split)</h2><div class='grid'>")
    for metric in MODEL_METRICS:
        series = {m: [h.get("figures", {}).get(f"ranking.stratified.{m}.{metric}") for h in history]
                  for m in model_names}
        parts.append(line_chart(f"{metric} over time", labels, series))
    requests = {k: [h.get("figures", {}).get(f"requests.{k}") for h in history]
                for k in ("cases_correct", "micro_f1", "act_accuracy")}
    dialogues = {s: [h.get("figures", {}).get(f"dialogues.{s}.R@10") for h in history]
                 for s in ("cineagent", "popularity", "corated", "corated_all")}
    if any(v is not None for vs in (*requests.values(), *dialogues.values()) for v in vs):
        parts.append("</div><h2>Real people (requests and dialogues)</h2><div class='grid'>")
        parts.append(line_chart("Real requests: parse figures over time", labels, requests, y_range=(0.0, 1.0)))
        parts.append(line_chart("Real dialogues: Recall@10 over time", labels, dialogues))
    parts.append("</div><h2>Feedback (swipes)</h2><div class='grid'>")
    parts.append(line_chart("Like rate over time", labels,
                            {"like rate": [h.get("feedback", {}).get("like_rate") for h in history]}, y_range=(0.0, 1.0)))
    fb = current.get("feedback", {})
    if fb.get("n"):
        by_rank = {f"rank {k}": v["like_rate"] for k, v in sorted(fb.get("by_rank", {}).items(), key=lambda kv: int(kv[0]))}
        parts.append(bar_chart(f"Like rate by position ({fb['n']} swipes)", by_rank,
                               counts={f"rank {k}": v["n"] for k, v in fb.get("by_rank", {}).items()}))
        parts.append(bar_chart("Like rate by candidate source", {k: v["like_rate"] for k, v in fb.get("by_source", {}).items()},
                               counts={k: v["n"] for k, v in fb.get("by_source", {}).items()}))
    else:
        parts.append("<p class='muted'>No swipes in the feedback log yet.</p>")
    drift = current.get("drift")
    if drift is not None:
        parts.append("</div><h2>Drift (against the champion's training snapshot)</h2>")
        if drift.get("breaches"):
            parts.append("<div class='banner bad' id='drift'>Drift: " + _e("; ".join(drift["breaches"])) + "</div>")
        else:
            parts.append("<div class='banner good' id='drift'>No drift figure beyond its limit.</div>")
        parts.append("<div class='grid'>")
        parts.append(line_chart("Drift figures over time", labels, {
            name: [h.get("figures", {}).get(f"drift.{name}") for h in history]
            for name in ("request_genre_js", "shown_popularity_ks", "shown_coverage", "like_rate_now")}, y_range=(0.0, 1.0)))
        if drift.get("request_genres_now"):
            parts.append(bar_chart("Genres asked for since the snapshot", drift["request_genres_now"]))
    parts.append("</div><h2>Figures</h2>")
    parts.append(_figures_table(history, regressions))
    parts.append("<h2>Gold set, case by case</h2>")
    parts.append(_cases_table(gold_report, titles))
    parts.append("</body></html>")
    return "\n".join(parts)
