"""Prometheus metrics of the serving path (exposed by the web app at ``/metrics``).

Labels are bounded: ``endpoint`` is a route template, a UI action or ``turn``; ``step`` is
``total`` for a whole request, else a turn's step name (intent_parse, recommend, …); ``status`` an
HTTP code, ``action`` like|dislike, ``reason`` the LLM parser's failure code (never free text),
``outcome`` one of five words.
"""
from __future__ import annotations

from prometheus_client import Counter, Histogram

# seconds; a warm offline turn takes tens of ms, an LLM-parsed one up to a few seconds
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

REQUESTS = Counter("agent_requests_total", "Requests answered, by endpoint and HTTP status",
                   ["endpoint", "status"])
LATENCY = Histogram("agent_request_latency_seconds", "Time to answer a request (step=total) or to run one step "
                    "of a turn (endpoint=turn)", ["endpoint", "step"], buckets=LATENCY_BUCKETS)
RECOMMENDATIONS = Counter("recommendations_served_total", "Movies shown on recommendation cards")
FEEDBACK = Counter("feedback_total", "Swipes recorded, by action", ["action"])
PARSER_FALLBACKS = Counter("parser_fallbacks_total", "Turns where the LLM parser failed and the offline parser "
                           "answered, by failure code", ["reason"])
LLM_TOKENS_IN = Counter("llm_tokens_in", "Prompt tokens sent to the LLM parser")
LLM_TOKENS_OUT = Counter("llm_tokens_out", "Completion tokens received from the LLM parser")
LANGFUSE_SCORES = Counter("langfuse_scores_total", "Swipe scores for Langfuse, by outcome: batched (handed to the "
                          "SDK's batches), posted (one by one, accepted), refused, failed, dropped", ["outcome"])


def observe_request(endpoint: str, status: int, seconds: float) -> None:
    REQUESTS.labels(endpoint=endpoint, status=str(status)).inc()
    LATENCY.labels(endpoint=endpoint, step="total").observe(seconds)


def observe_step(step: str, seconds: float) -> None:
    """One step of a turn (fed by agent.tracing from each finished turn's steps)."""
    LATENCY.labels(endpoint="turn", step=step).observe(seconds)


def observe_langfuse_score(outcome: str) -> None:
    LANGFUSE_SCORES.labels(outcome=outcome).inc()


def observe_llm_tokens(tokens_in: int, tokens_out: int) -> None:
    LLM_TOKENS_IN.inc(tokens_in)
    LLM_TOKENS_OUT.inc(tokens_out)


def observe_turn(cards: int, fallback_reason: str | None) -> None:
    """Count a turn's cards and, when the LLM parser fell back, its failure code."""
    RECOMMENDATIONS.inc(cards)
    if fallback_reason:
        # "timeout: Request timed out." -> "timeout"; the message part would explode cardinality
        PARSER_FALLBACKS.labels(reason=fallback_reason.split(":", 1)[0].strip()[:40] or "unknown").inc()


def observe_feedback(action: str) -> None:
    FEEDBACK.labels(action=action).inc()
