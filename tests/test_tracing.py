"""Tracing of real turns (real models, parser, FAISS, profile store) into a real local stand-in for
Langfuse's OTLP endpoint: one trace per turn, the step observations, auth, scores, dead endpoints,
the local trace log, metrics, JSON logs, prompt management. Span shapes that need no network are
checked with the SDK's ``InMemorySpanExporter``."""
from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import time
import uuid
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from agent.dialogue import DialogueManager
from agent.prompt_registry import PromptRegistry, from_langfuse, to_langfuse
from agent.prompts import load_prompt
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agent.intent import Intent, IntentParser
from agent.langfuse_attrs import MIN_SERVER_VERSION, SCOPE
from agent.steps import in_turn, recording
from agent.langfuse_attrs import PERSONAL_KEYS, scrub, step_attributes
from agent.langfuse_server import ScoreSender, ServerCheck, summary, takes_score_batches
from agent.steps import Step
from agent.tracing import JsonFormatter, TraceLog, Tracing, TracingConfig, iter_traces, person_traces, recent_traces
from agent.users import User
from tests.llm_server import fake_endpoint, free_port, tool_call_completion
from tests.otlp_receiver import (OLD_SERVER_VERSION, SERVER_VERSION, TRACES_PATH, langfuse_receiver, score_batch_problem,
                                 score_problem)

CONVERSATION = ["a funny sci-fi movie", "no horror please", "show me more", "why the second one?", "thanks!"]


# ---------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def offline(movielens):
    from agent.offline_parser import OfflineParser

    parser = OfflineParser(movielens)
    parser.warm_up()
    return parser


@pytest.fixture(scope="module")
def parts(trained, movielens, stratified_split, item_text_vectors, tmp_path_factory):
    from agent.runtime import base_profiles
    from retrieval.catalog import CatalogIndex
    from retrieval.profile_index import ProfileStore

    profiles = ProfileStore(item_text_vectors, movielens.item_ids, base_profiles(stratified_split.train))
    return trained, CatalogIndex(item_text_vectors, movielens.item_ids), profiles


def make_agent(parts, parser, tracer=None) -> DialogueManager:
    bundle, catalog, profiles = parts
    return DialogueManager(bundle, parser, catalog, profiles, tracer=tracer)


def tracing_for(base_url: str, tmp_path, **overrides) -> Tracing:
    """A Tracing exporting to ``base_url`` with its own Langfuse key (the SDK keeps one client per key)."""
    key = uuid.uuid4().hex[:8]
    config = TracingConfig(langfuse_public_key=f"pk-lf-test-{key}", langfuse_secret_key=f"sk-lf-test-{key}",
                           langfuse_base_url=base_url, trace_log=tmp_path / "traces.jsonl", flush_interval_s=0.1,
                           **overrides)
    return Tracing(config)


def model_version(parts) -> str:
    return parts[0].manifest.version


# ---------------------------------------------------------------------------------------- one trace per turn
@pytest.mark.integration
def test_a_conversation_is_one_trace_per_turn_with_every_step(parts, offline, tmp_path):
    with langfuse_receiver() as receiver:
        tracing = tracing_for(receiver.base_url, tmp_path)
        agent = make_agent(parts, offline, tracing.turn_tracer(model_version(parts), offline))
        # user 833: no other test swipes as them (a swipe folds into the shared trained models)
        results = [agent.turn("833", "s-traced", message) for message in CONVERSATION]
        agent.feedback("833", results[0].cards[0].item_id, liked=True, trace_id=results[0].trace_id)
        agent.feedback("833", results[0].cards[1].item_id, liked=False, trace_id=results[0].trace_id)
        assert tracing.flush(30)
        expected_spans = sum(len(r.steps) + 1 for r in results)
        receiver.wait_for(lambda r: len(r.spans) >= expected_spans and len(r.scores) >= 2)
        time.sleep(0.5)  # nothing more may arrive: exactly one trace per turn
        traces = receiver.traces()
        tracing.shutdown()

    assert set(traces) == {r.trace_id for r in results}, "one trace per turn, with the agent's trace id"
    for result in results:
        spans = traces[result.trace_id]
        roots = [s for s in spans if s.parent_span_id is None]
        assert [s.name for s in roots] == ["chat-turn"]
        root = roots[0]
        assert sorted(s.name for s in spans) == sorted(["chat-turn", *[s.name for s in result.steps]])
        by_id = {s.span_id: s for s in spans}
        for span, step in ((next(s for s in spans if s.name == step.name), step) for step in result.steps):
            parent = by_id[span.parent_span_id]
            assert parent.name == (step.parent or "chat-turn"), f"{step.name} under {parent.name}"
            assert span.start_ns == int(step.started * 1e9)
            assert abs((span.end_ns - span.start_ns) / 1e6 - step.duration_ms) < 0.01
            assert root.start_ns <= span.start_ns and span.end_ns <= root.end_ns + 1_000_000
            # trace-level attributes on every observation, as the Langfuse SDK propagates them
            # the session namespaced by person (another person's "s-traced" is another session)
            assert span.attributes["user.id"] == "833" and span.attributes["session.id"] == "833:s-traced"
            assert span.attributes["langfuse.trace.name"] == "chat-turn"
            assert span.attributes["langfuse.version"] == model_version(parts)
            assert json.loads(span.attributes["langfuse.trace.metadata.model_version"]) == model_version(parts)
            # Langfuse's own scope, with our key: the server copies no attributes into metadata
            assert span.scope == SCOPE and span.scope_attributes == {"public_key": tracing.config.langfuse_public_key}
        assert root.attributes["langfuse.observation.type"] == "agent"
        assert root.json_attr("langfuse.observation.input") == {"message": result.message}
        assert root.json_attr("langfuse.observation.output")["items"] == [c.item_id for c in result.cards]
        assert f"act:{result.act}" in root.attributes["langfuse.trace.tags"]
        assert json.loads(root.attributes["langfuse.trace.metadata.model_version"]) == model_version(parts)
        assert "langfuse.trace.metadata.prompt_version" not in root.attributes   # no placeholder "none"
        assert json.loads(root.attributes["langfuse.trace.metadata.parser"]) == "offline"
        assert root.resource["service.name"] == "cineagent" and root.resource["langfuse.release"]
        assert root.headers["authorization"] == "Basic " + base64.b64encode(
            f"{tracing.config.langfuse_public_key}:{tracing.config.langfuse_secret_key.get_secret_value()}".encode()).decode()

    first = {s.name: s for s in traces[results[0].trace_id]}
    parse = first["intent_parse"]
    assert parse.attributes["langfuse.observation.type"] == "span"   # the offline parser answered
    assert parse.json_attr("langfuse.observation.input")["message"] == "a funny sci-fi movie"
    assert set(parse.json_attr("langfuse.observation.output")["intent"]["genres"]) == {"Comedy", "Sci-Fi"}
    retrieval = first["profile_retrieval"]
    assert retrieval.attributes["langfuse.observation.type"] == "retriever"
    hits = retrieval.json_attr("langfuse.observation.output")["hits"]
    assert hits and all(set(h) == {"item_id", "score"} for h in hits)
    rerank = first["rerank"].json_attr("langfuse.observation.output")["top_out"]
    assert [h["item_id"] for h in rerank] == [c.item_id for c in results[0].cards]
    assert {n for n in first if n.startswith("candidates.")} >= {"candidates.semantic"}
    assert first["explain"].json_attr("langfuse.observation.output")["cards"][0]["item_id"] == results[0].cards[0].item_id

    why = {s.name for s in traces[results[3].trace_id]}
    assert "explain_card" in why and "recommend" not in why

    scores = sorted(receiver.scores, key=lambda s: s["value"])
    assert [(s["name"], s["traceId"], s["dataType"], s["value"]) for s in scores] == [
        ("user_feedback", results[0].trace_id, "BOOLEAN", 0.0), ("user_feedback", results[0].trace_id, "BOOLEAN", 1.0)]
    assert scores[1]["metadata"]["item_id"] == results[0].cards[0].item_id


@pytest.mark.integration
def test_exported_steps_carry_only_ids_scores_and_the_request(parts, offline, tmp_path):
    with langfuse_receiver() as receiver:
        tracing = tracing_for(receiver.base_url, tmp_path)
        agent = make_agent(parts, offline, tracing.turn_tracer(model_version(parts), offline))
        result = agent.turn("42", "s-private", "an action movie from the 90s")
        tracing.flush(30)
        receiver.wait_for(lambda r: len(r.spans) >= len(result.steps) + 1)
        tracing.shutdown()
    profile_titles = {agent.data.movies[i].label for i in agent.profiles.ratings("42")}   # "Heat (1995)"
    cited = {p["title"] for c in result.cards for p in c.evidence["profile_items"]}
    assert cited, "the cards cite profile titles, so the check below means something"
    exported = json.dumps([s.attributes for s in receiver.spans])
    assert not any(title in exported for title in cited | profile_titles), "a profile title left the process"
    for span in receiver.spans:
        for key in ("langfuse.observation.input", "langfuse.observation.output"):
            if key in span.attributes:
                assert not PERSONAL_KEYS & _keys(span.json_attr(key)), span.name


def _keys(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


def test_scrub_drops_profile_data_and_bounds_sizes():
    planted = {"hits": [{"item_id": 1, "score": 0.5}], "ratings": {"1": 5}, "nested": {"your_rating": 4, "ok": "x" * 5000},
               "many": list(range(500))}
    out = scrub(planted)
    assert out["hits"] == [{"item_id": 1, "score": 0.5}] and "ratings" not in out and "your_rating" not in out["nested"]
    assert len(out["nested"]["ok"]) <= 1001 and len(out["many"]) == 50


# ---------------------------------------------------------------------------------------- failures never hurt the turn
@pytest.mark.integration
@pytest.mark.parametrize("endpoint", ["dead", "slow"])
def test_a_dead_or_slow_endpoint_costs_the_turn_nothing(parts, offline, tmp_path, endpoint):
    from eval.trace_bench import bench_trace_overhead

    agent = make_agent(parts, offline)
    if endpoint == "dead":
        tracing = tracing_for(f"http://127.0.0.1:{free_port()}", tmp_path, export_timeout_s=1)
        figures = bench_trace_overhead(agent, {"dead": tracing.turn_tracer(model_version(parts), offline)}, n=60)
    else:
        with langfuse_receiver(delay_s=3.0) as receiver:   # every answer 3 s late: past the 1 s export timeout
            tracing = tracing_for(receiver.base_url, tmp_path, export_timeout_s=1)
            figures = bench_trace_overhead(agent, {"slow": tracing.turn_tracer(model_version(parts), offline)}, n=60)
            tracing.flush(10)
            assert receiver.calls("POST", TRACES_PATH), "the slow endpoint was tried"
    # ending a span only queues it for the export threads: no turn waits on the network (a send
    # takes the 1 s export timeout with this endpoint); what remains is creating the spans and the
    # GIL passing to the export threads, up to its 5 ms switch interval on a loaded machine
    assert figures[endpoint]["added_p50_ms"] < 5.0 and figures[endpoint]["turn"]["max_ms"] < 1000.0, figures
    started = time.perf_counter()
    tracing.shutdown()   # what exit costs with the endpoint dead or slow: bounded by the export timeout
    assert time.perf_counter() - started < 15
    assert len(recent_traces(100, tmp_path / "traces.jsonl")) == 60 + 2, "the local log has every traced turn"


@pytest.mark.integration
def test_a_turn_that_raises_marks_the_step_that_raised(parts, offline, tmp_path):
    class Broken(IntentParser):
        name = "broken"

        def parse(self, text, previous=None):
            raise RuntimeError("parser exploded")

    with langfuse_receiver() as receiver:
        tracing = tracing_for(receiver.base_url, tmp_path)
        agent = make_agent(parts, Broken(), tracing.turn_tracer(model_version(parts), Broken()))
        with pytest.raises(RuntimeError, match="parser exploded"):
            agent.turn("196", "s-error", "a comedy")
        tracing.flush(30)
        receiver.wait_for(lambda r: len(r.spans) >= 2)
        tracing.shutdown()
    spans = {s.name: s for s in receiver.spans}
    assert spans["intent_parse"].attributes["langfuse.observation.level"] == "ERROR"
    assert "parser exploded" in spans["intent_parse"].attributes["langfuse.observation.status_message"]
    assert spans["intent_parse"].status_code == 2 and spans["chat-turn"].status_code == 2
    assert "error" in spans["chat-turn"].attributes["langfuse.trace.tags"]
    assert recent_traces(1, tmp_path / "traces.jsonl")[0]["error"] == "RuntimeError: parser exploded"


# ---------------------------------------------------------------------------------------- LLM turns
def llm_parser(movielens, offline, base_url, timeout_s=5.0):
    from agent.llm_parser import LLMParser, LLMSettings

    return LLMParser(movielens, offline=offline, settings=LLMSettings(base_url=base_url, timeout_s=timeout_s))


@pytest.mark.integration
def test_llm_turns_are_generations_and_fallbacks_are_recorded(parts, movielens, offline, tmp_path):
    answer = tool_call_completion(json.dumps({"act": "recommend", "genres": ["western"]}), prompt_tokens=600,
                                  completion_tokens=17)
    with langfuse_receiver() as receiver, fake_endpoint(answer) as good, fake_endpoint(tool_call_completion('{"genres": ["Come')) as broken:
        tracing = tracing_for(receiver.base_url, tmp_path)
        ok_parser = llm_parser(movielens, offline, good.base_url)
        agent = make_agent(parts, ok_parser, tracing.turn_tracer(model_version(parts), ok_parser))
        answered = agent.turn("7", "s-llm", "a western please")
        bad_parser = llm_parser(movielens, offline, broken.base_url)
        agent.parser, agent.tracer = bad_parser, tracing.turn_tracer(model_version(parts), bad_parser)
        fell_back = agent.turn("7", "s-llm-2", "a comedy")
        tracing.flush(30)
        receiver.wait_for(lambda r: len(r.traces()) == 2 and len(r.spans) >= len(answered.steps) + len(fell_back.steps) + 2)
        traces = receiver.traces()
        tracing.shutdown()
    answered_spans = {s.name: s for s in traces[answered.trace_id]}
    gen = answered_spans["llm_call"]   # the LLM call, a generation inside the parse step
    assert gen.parent_span_id == answered_spans["intent_parse"].span_id
    assert answered_spans["intent_parse"].attributes["langfuse.observation.type"] == "span"
    assert gen.attributes["langfuse.observation.type"] == "generation"
    assert gen.json_attr("langfuse.observation.usage_details") == {"input": 600, "output": 17, "total": 617}
    assert (gen.attributes["gen_ai.usage.input_tokens"], gen.attributes["gen_ai.usage.output_tokens"]) == (600, 17)
    assert gen.attributes["langfuse.observation.model.name"] == ok_parser.settings.model
    # the model's parameters only: the client's timeout_s is not something the model was given
    assert gen.json_attr("langfuse.observation.model.parameters") == {"temperature": 0.0, "max_tokens": 256}
    assert json.loads(gen.attributes["langfuse.observation.metadata.prompt_version"]) == "intent_v2"
    assert json.loads(gen.attributes["langfuse.trace.metadata.llm_model"]) == ok_parser.settings.model
    assert gen.json_attr("langfuse.observation.output")["intent"]["genres"] == ["Western"]
    root = next(s for s in traces[answered.trace_id] if s.parent_span_id is None)
    assert json.loads(root.attributes["langfuse.trace.metadata.prompt_version"]) == "intent_v2"

    spans = {s.name: s for s in traces[fell_back.trace_id]}
    parse, attempt = spans["intent_parse"], spans["llm_call"]
    assert parse.attributes["langfuse.observation.type"] == "span"
    assert parse.attributes["langfuse.observation.level"] == "WARNING"
    assert "invalid_output" in json.loads(parse.attributes["langfuse.observation.metadata.fallback_reason"])
    assert attempt.parent_span_id == parse.span_id and attempt.attributes["langfuse.observation.level"] == "ERROR"
    assert attempt.attributes["langfuse.observation.type"] == "generation" and attempt.status_code == 2
    assert attempt.json_attr("langfuse.observation.usage_details") == {"input": 100, "output": 20, "total": 120}
    assert "llm-fallback" in spans["chat-turn"].attributes["langfuse.trace.tags"]


@pytest.mark.llm
@pytest.mark.integration
def test_real_llm_server_turn_is_a_generation_with_token_usage(parts, movielens, offline, tmp_path, llama_url):
    with langfuse_receiver() as receiver:
        parser = llm_parser(movielens, offline, llama_url, timeout_s=120.0)
        parser.warm_up()
        tracing = tracing_for(receiver.base_url, tmp_path)
        agent = make_agent(parts, parser, tracing.turn_tracer(model_version(parts), parser))
        result = agent.turn("196", "s-real-llm", "I want a romantic movie")
        tracing.flush(30)
        receiver.wait_for(lambda r: any(s.name == "llm_call" for s in r.spans))
        tracing.shutdown()
    assert result.parse.parser == "llm", result.parse.fallback_reason
    gen = next(s for s in receiver.spans if s.name == "llm_call")
    usage = gen.json_attr("langfuse.observation.usage_details")
    assert gen.attributes["langfuse.observation.type"] == "generation"
    assert usage["input"] > 200 and usage["output"] > 0 and usage["total"] == usage["input"] + usage["output"]
    assert usage["input"] == result.parse.details["input_tokens"]


# ---------------------------------------------------------------------------------------- local log, metrics, logs
def test_trace_log_rotates_and_reads_back_newest_first(tmp_path):
    log = TraceLog(tmp_path / "traces.jsonl", max_bytes=4096, backups=2)
    for i in range(200):
        log.append({"trace_id": f"{i:032x}", "pad": "x" * 100})
    assert [p.name for p in log.files()] == ["traces.jsonl", "traces.jsonl.1", "traces.jsonl.2"]
    assert all(p.stat().st_size <= 4096 for p in log.files())
    newest = recent_traces(40, tmp_path / "traces.jsonl", backups=2)
    assert [int(t["trace_id"], 16) for t in newest] == list(range(199, 159, -1))
    with open(tmp_path / "traces.jsonl", "ab") as fh:
        fh.write(b'{"trace_id": "torn')   # a writer killed mid-line
    assert int(recent_traces(1, tmp_path / "traces.jsonl", backups=2)[0]["trace_id"], 16) == 199


def test_one_persons_traces_come_through_the_index_across_rotation(tmp_path):
    log = TraceLog(tmp_path / "traces.jsonl", max_bytes=4096, backups=2)
    for i in range(200):
        log.append_many([{"trace_id": f"{i:032x}", "user": "p_ann" if i % 7 == 0 else f"p_{i}", "pad": "x" * 100}])
    kept = [int(t["trace_id"], 16) for t in iter_traces(tmp_path / "traces.jsonl", backups=2)]
    assert [int(t["trace_id"], 16) for t in person_traces("p_ann", tmp_path / "traces.jsonl", backups=2)] == \
        [i for i in kept if i % 7 == 0] and kept[-1] == 199
    assert sorted(p.name for p in tmp_path.glob("*.idx")) == ["traces.jsonl.1.idx", "traces.jsonl.2.idx", "traces.jsonl.idx"]
    assert person_traces("p_nobody", tmp_path / "traces.jsonl", backups=2) == []
    # a file written before indexes were kept is read whole
    (tmp_path / "traces.jsonl.2.idx").unlink()
    assert [int(t["trace_id"], 16) for t in person_traces("p_ann", tmp_path / "traces.jsonl", backups=2)] == \
        [i for i in kept if i % 7 == 0]


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.integration
def test_turns_move_step_latency_and_token_metrics_and_log_json(parts, movielens, offline, tmp_path, caplog):
    answer = tool_call_completion(json.dumps({"genres": ["comedy"]}), prompt_tokens=500, completion_tokens=12)
    parse_count = ("agent_request_latency_seconds_count", {"endpoint": "turn", "step": "intent_parse"})
    before = (sample(parse_count[0], **parse_count[1]), sample("llm_tokens_in_total"), sample("llm_tokens_out_total"))
    with fake_endpoint(answer) as endpoint, caplog.at_level(logging.INFO, logger="cineagent.turns"):
        tracing = Tracing(TracingConfig(trace_log=tmp_path / "traces.jsonl"))   # no exporter: local log only
        parser = llm_parser(movielens, offline, endpoint.base_url)
        agent = make_agent(parts, parser, tracing.turn_tracer(model_version(parts), parser))
        result = agent.turn("196", "s-metrics", "a comedy")
        agent.turn("196", "s-metrics", "show me more")
        assert tracing.flush(30)
    after = (sample(parse_count[0], **parse_count[1]), sample("llm_tokens_in_total"), sample("llm_tokens_out_total"))
    assert after[0] - before[0] == 2
    assert (after[1] - before[1], after[2] - before[2]) == (1000, 24)
    assert sample("agent_request_latency_seconds_count", endpoint="turn", step="rerank") >= 2
    record = next(r for r in caplog.records if getattr(r, "trace_id", None) == result.trace_id)
    line = json.loads(JsonFormatter().format(record))
    assert {k: line[k] for k in ("trace_id", "user_id", "session_id", "prompt_version", "parser")} == {
        "trace_id": result.trace_id, "user_id": "196", "session_id": "s-metrics", "prompt_version": "intent_v2",
        "parser": "llm"}
    assert line["latency_ms"] == pytest.approx(result.duration_ms, abs=0.1)
    local = recent_traces(2, tmp_path / "traces.jsonl")
    assert [t["trace_id"] for t in local][1] == result.trace_id
    assert [s["name"] for s in local[1]["steps"]] == [s.name for s in result.steps]


def test_a_tracing_problem_never_reaches_the_turn(tmp_path):
    tracing = Tracing(TracingConfig(trace_log=tmp_path / "traces.jsonl"))
    tracer = tracing.turn_tracer("v0", None)
    with tracer.turn(User("ana", 10_000_001, False), "s", "hi", time.time()) as turn:
        turn.finish(object())                    # not a TurnResult at all
    tracer.record_feedback("not-a-trace-id", object(), 1, True)
    assert tracing.flush(10)


def a_result(trace, started: float, message: str = "x"):
    from agent.dialogue import TurnResult

    return TurnResult("", [], "recommend", Intent(), None, User("ana", 10_000_001, False), "s", trace_id=trace.trace_id,
                      message=message, started=started, duration_ms=10.0)


def test_steps_are_live_spans_nested_by_the_context_across_tasks_and_threads(tmp_path):
    """The parent of a step's span is whatever is current where it runs: concurrent tasks and a
    worker thread (``asyncio.to_thread`` copies the context) each nest under the right step."""
    spans = InMemorySpanExporter()
    tracing = Tracing(TracingConfig(trace_log=tmp_path / "traces.jsonl"), exporters=[spans])
    tracer = tracing.turn_tracer("v0", None)
    steps = []

    def embed_in_a_thread():
        with recording(None, "embed"):
            time.sleep(0.001)

    async def branch(name, work=None):
        with recording(None, name):
            if work:
                await asyncio.to_thread(work)
            await asyncio.sleep(0)

    async def a_turn():
        started = time.time()
        with tracer.turn(User("ana", 10_000_001, False), "s", "x", started) as turn, in_turn(steps, turn.spans):
            with recording(None, "recommend", "retriever"):
                await asyncio.gather(branch("candidates.a", embed_in_a_thread), branch("candidates.b"))
            turn.finish(a_result(turn, started))
        return turn.trace_id

    trace_id = asyncio.run(a_turn())
    assert tracing.flush(10)
    tracing.shutdown()
    finished = spans.get_finished_spans()
    by_name = {s.name: s for s in finished}
    assert {f"{s.context.trace_id:032x}" for s in finished} == {trace_id}
    parent_of = {s.name: next((p.name for p in finished if s.parent and p.context.span_id == s.parent.span_id), None)
                 for s in finished}
    assert parent_of == {"chat-turn": None, "recommend": "chat-turn", "candidates.a": "recommend",
                         "candidates.b": "recommend", "embed": "candidates.a"}
    assert {s.name: s.parent for s in steps} == {"recommend": None, "candidates.a": "recommend",
                                                 "candidates.b": "recommend", "embed": "candidates.a"}
    assert by_name["recommend"].attributes["langfuse.observation.type"] == "retriever"
    assert by_name["chat-turn"].instrumentation_scope.name == "cineagent"   # no Langfuse: our own scope
    local = recent_traces(1, tmp_path / "traces.jsonl")[0]
    assert local["trace_id"] == trace_id and {s["name"]: s["parent"] for s in local["steps"]} == {
        s.name: s.parent for s in steps}
    assert local["duration_ms"] == 10.0


def test_swipe_scores_are_sent_in_the_shape_the_minimum_server_accepts(tmp_path):
    """The README's minimum Langfuse server is the one the receiver checks score batches against:
    the SDK's score queue sends a JSON array, which that version takes and older ones refuse."""
    assert SERVER_VERSION == MIN_SERVER_VERSION
    trace_id = uuid.uuid4().hex
    with langfuse_receiver() as receiver:
        tracing = tracing_for(receiver.base_url, tmp_path)
        tracing.turn_tracer("v0", None).record_feedback(trace_id, User("196", 196, True), 50, True)
        tracing.flush(10)
        receiver.wait_for(lambda r: len(r.scores) == 1)
        tracing.shutdown()
    (call,) = receiver.calls("POST", "/api/public/scores")
    body = json.loads(call.body)
    assert isinstance(body, list) and score_batch_problem(body) is None
    assert {k: body[0][k] for k in ("name", "traceId", "dataType", "value")} == {
        "name": "user_feedback", "traceId": trace_id, "dataType": "BOOLEAN", "value": 1.0}
    assert score_batch_problem(body[0]) == "expected an array of scores"   # one object: the older API's shape


# ---------------------------------------------------------------------------------------- prompt management
def test_prompts_come_from_langfuse_production_label_with_the_repo_as_fallback(tmp_path):
    repo = load_prompt("intent")
    with langfuse_receiver() as receiver:
        tracing = tracing_for(receiver.base_url, tmp_path)
        registry = PromptRegistry(tracing.langfuse)
        missing = registry.get("intent")
        assert missing.source == "repo" and missing.prompt == repo and "404" in missing.fallback_reason

        text, config = to_langfuse(repo)
        receiver.add_prompt("intent", "You parse movie requests (v2). Genres: {genres}", config)
        fresh = PromptRegistry(tracing.langfuse)
        resolved = fresh.get("intent")
        assert (resolved.source, resolved.langfuse_version, resolved.prompt.version) == ("langfuse", 1, "intent@langfuse-v1")
        assert resolved.prompt.system.startswith("You parse movie requests (v2)")
        assert resolved.prompt.examples == repo.examples
        assert fresh.link("intent@langfuse-v1") == ("intent", 1) and fresh.link("intent_v1") is None
        calls = len(receiver.calls("GET", "/api/public/v2/prompts/intent"))
        assert fresh.get("intent") is resolved and len(receiver.calls("GET", "/api/public/v2/prompts/intent")) == calls
        assert receiver.calls("GET", "/api/public/v2/prompts/intent")[-1].query["label"] == ["production"]

        version = fresh.publish("intent")
        assert version == 2 and receiver.prompts["intent"][-1]["labels"] == ["production"]
        published = receiver.prompts["intent"][-1]
        assert from_langfuse("intent", 2, published["prompt"], published["config"]).examples == repo.examples
        tracing.shutdown()


def test_a_dead_prompt_endpoint_falls_back_to_the_repo_quickly(tmp_path):
    tracing = tracing_for(f"http://127.0.0.1:{free_port()}", tmp_path)
    started = time.perf_counter()
    resolved = PromptRegistry(tracing.langfuse).get("intent")
    assert resolved.source == "repo" and resolved.prompt == load_prompt("intent") and resolved.fallback_reason
    assert time.perf_counter() - started < 5
    tracing.shutdown()


def test_config_reads_the_documented_environment(tmp_path):
    env = {"LANGFUSE_PUBLIC_KEY": "pk", "LANGFUSE_SECRET_KEY": "sk", "LANGFUSE_HOST": "http://h:3000/",
           "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "CINEAGENT_TRACE_EXPORT_TIMEOUT_S": "3",
           "CINEAGENT_LOG_FORMAT": "json"}
    config = TracingConfig.from_env(env)
    assert (config.langfuse, config.langfuse_base_url, config.otlp, config.export_timeout_s, config.log_format) == (
        True, "http://h:3000", True, 3, "json")
    assert TracingConfig.from_env({**env, "LANGFUSE_BASE_URL": "http://b"}).langfuse_base_url == "http://b"
    off = TracingConfig.from_env({**env, "OTEL_SDK_DISABLED": "true"})
    assert not off.langfuse and not off.otlp
    assert not TracingConfig.from_env({}).langfuse


def test_generic_otlp_exporter_uses_the_standard_variables(tmp_path, monkeypatch):
    with langfuse_receiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", receiver.base_url + TRACES_PATH)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=cineagent")
        tracing = Tracing(TracingConfig.from_env(trace_log=tmp_path / "traces.jsonl", flush_interval_s=0.1))
        assert tracing.langfuse is None and tracing.config.otlp
        started = time.time()
        with tracing.turn_tracer(None, None).turn(User("ana", 10_000_001, False), "s", "hi", started) as turn, \
                in_turn([], turn.spans):
            with recording(None, "chit_chat"):
                pass
            result = a_result(turn, started, "hi")
            turn.finish(result)
        tracing.flush(10)
        receiver.wait_for(lambda r: len(r.spans) == 2)
        tracing.shutdown()
    assert {s.trace_id for s in receiver.spans} == {result.trace_id}
    assert receiver.spans[0].headers["x-tenant"] == "cineagent"


# ---------------------------------------------------------------------------------------- the server's version
def swipe(tracing, trace_id: str, item: int, liked: bool = True, user: str = "196") -> None:
    tracing.turn_tracer("v0", None).record_feedback(trace_id, User(user, 196, True), item, liked)


def test_an_older_server_gets_swipe_scores_one_by_one_and_it_is_said(tmp_path, caplog):
    """Langfuse v4.16.0 refuses the SDK's score batches (a JSON array): read from its health
    endpoint at start, said in the log and the status, and every swipe score posted on its own."""
    traces = [uuid.uuid4().hex for _ in range(3)]
    posted_before = sample("langfuse_scores_total", outcome="posted")
    with langfuse_receiver(version=OLD_SERVER_VERSION) as receiver, caplog.at_level(logging.INFO, "agent.langfuse_server"):
        tracing = tracing_for(receiver.base_url, tmp_path)
        assert tracing.langfuse_server.wait(10)
        for n, trace_id in enumerate(traces):
            swipe(tracing, trace_id, 50 + n, liked=n != 1)
        assert tracing.flush(10)
        receiver.wait_for(lambda r: len(r.scores) == 3)
        status = tracing.langfuse_status()
        # the SDK's own queue, as it was used before: its batch is refused by this server
        tracing.langfuse.create_score(name="user_feedback", value=1.0, data_type="BOOLEAN", trace_id=uuid.uuid4().hex)
        tracing.langfuse.flush()
        receiver.wait_for(lambda r: any(isinstance(json.loads(c.body), list) for c in r.calls("POST", "/api/public/scores")))
        tracing.shutdown()
    assert receiver.calls("GET", "/api/public/health")
    posts = [json.loads(c.body) for c in receiver.calls("POST", "/api/public/scores")]
    singles = [p for p in posts if isinstance(p, dict)]
    assert len(singles) == 3 and all(score_problem(p) is None for p in singles)
    assert sorted((p["traceId"], p["value"], p["dataType"], p["name"]) for p in singles) == sorted(
        (t, 0.0 if n == 1 else 1.0, "BOOLEAN", "user_feedback") for n, t in enumerate(traces))
    assert all(p["metadata"]["user_id"] == "196" and len(p["id"]) == 32 for p in singles)
    assert len(receiver.scores) == 3, "the SDK's batch was refused: only the scores posted one by one arrived"
    assert status["version"] == OLD_SERVER_VERSION and status["scores"] == "one-by-one"
    assert status["score_counts"]["posted"] == 3 and status["score_counts"]["refused"] == 0
    assert sample("langfuse_scores_total", outcome="posted") - posted_before == 3   # /metrics says it too
    assert "older than 4.59.0" in status["note"] and "one at a time" in status["note"]
    warning = next(r for r in caplog.records if r.levelno == logging.WARNING)
    assert "v4.16.0, older than 4.59.0" in warning.getMessage() and receiver.base_url in warning.getMessage()


def test_a_current_server_gets_batches_through_the_sdk(tmp_path, caplog):
    with langfuse_receiver(version="4.60.1") as receiver, caplog.at_level(logging.INFO, "agent.langfuse_server"):
        tracing = tracing_for(receiver.base_url, tmp_path)
        trace_ids = [uuid.uuid4().hex for _ in range(4)]
        for n, trace_id in enumerate(trace_ids):
            swipe(tracing, trace_id, n)
        assert tracing.flush(10)
        receiver.wait_for(lambda r: len(r.scores) == 4)
        status = tracing.langfuse_status()
        tracing.shutdown()
    posts = [json.loads(c.body) for c in receiver.calls("POST", "/api/public/scores")]
    assert all(isinstance(p, list) for p in posts) and sum(len(p) for p in posts) == 4
    assert {s["traceId"] for s in receiver.scores} == set(trace_ids)
    assert (status["version"], status["scores"], status["score_counts"]["batched"]) == ("4.60.1", "batch", 4)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("v4.60.1 (4.59.0 or later needed)" in r.getMessage() for r in caplog.records)


def test_an_unknown_version_is_said_and_read_again(tmp_path, caplog):
    """A server that names no version (or does not answer): batches, said plainly as a warning."""
    with langfuse_receiver(version=None) as receiver, caplog.at_level(logging.INFO, "agent.langfuse_server"):
        tracing = tracing_for(receiver.base_url, tmp_path)
        assert tracing.langfuse_server.wait(10)
        status = tracing.langfuse_status()
        swipe(tracing, uuid.uuid4().hex, 7)
        assert tracing.flush(10)
        receiver.wait_for(lambda r: len(r.scores) == 1)
        tracing.shutdown()
    assert (status["version"], status["scores"]) == (None, "unknown") and "unknown" in status["note"]
    assert any(r.levelno == logging.WARNING and "could not read its version" in r.getMessage() for r in caplog.records)

    check = ServerCheck(f"http://127.0.0.1:{free_port()}", timeout_s=1)
    started = time.perf_counter()
    assert check.check() == "unknown" and check.problem and time.perf_counter() - started < 3
    assert not check.due()   # read again only after a while, before a later score


def test_server_versions_are_compared_as_numbers():
    assert takes_score_batches("4.59.0") and takes_score_batches("v4.100.2") and takes_score_batches("5.0.0-rc1")
    assert takes_score_batches("4.16.0") is False and takes_score_batches("3.999.9") is False
    assert takes_score_batches(None) is None and takes_score_batches("latest") is None


# ---------------------------------------------------------------------------------------- what is sent
def test_sessions_are_namespaced_by_person_and_placeholders_left_out(tmp_path):
    spans = InMemorySpanExporter()
    tracing = Tracing(TracingConfig(trace_log=tmp_path / "traces.jsonl"), exporters=[spans])
    tracer = tracing.turn_tracer("v0", None)   # no LLM parser: no prompt version
    for name in ("ana", "bob"):
        started = time.time()
        with tracer.turn(User(name, 10_000_001, False), "s1", "hi", started) as turn:
            turn.finish(a_result(turn, started))
    assert tracing.flush(10)
    tracing.shutdown()
    roots = {s.attributes["user.id"]: s for s in spans.get_finished_spans()}
    assert {u: s.attributes["session.id"] for u, s in roots.items()} == {"ana": "ana:s1", "bob": "bob:s1"}
    assert all("langfuse.trace.metadata.prompt_version" not in s.attributes for s in roots.values())
    assert all(json.loads(s.attributes["langfuse.trace.metadata.model_version"]) == "v0" for s in roots.values())
    # the local log (the person's export, the operator view) keeps the person's own session id
    assert sorted((t["user"], t["session"]) for t in recent_traces(2, tmp_path / "traces.jsonl")) == [
        ("ana", "s1"), ("bob", "s1")]


def test_a_generation_carries_the_models_parameters_only():
    step = Step(name="llm_call", kind="generation", started=time.time(), duration_ms=12.0)
    step.facts = {"model": "qwen", "prompt_version": "intent_v2",
                  "model_parameters": {"temperature": 0.0, "max_tokens": 256, "timeout_s": 5.0, "base_url": "http://x"}}
    attrs = step_attributes(step, lambda version: None)
    assert json.loads(attrs["langfuse.observation.model.parameters"]) == {"temperature": 0.0, "max_tokens": 256}
    assert attrs["gen_ai.request.temperature"] == 0.0 and attrs["gen_ai.request.max_tokens"] == 256


def test_the_operator_view_and_healthz_say_when_scores_go_one_by_one(tmp_path, monkeypatch):
    import asyncio as aio

    import httpx

    from agent import tracing as tracing_module
    from agent.settings import Settings
    from eval.load_test import scratch_home
    from tests.app_server import ensure_artifacts
    from web.api import Runtime, build_api
    from web.ui import langfuse_note

    test_home = Path(os.environ["CINEAGENT_HOME"])
    ensure_artifacts(test_home)
    monkeypatch.setenv("CINEAGENT_HOME", str(scratch_home(tmp_path / "home", test_home)))
    with langfuse_receiver(version=OLD_SERVER_VERSION) as receiver:
        tracing = tracing_for(receiver.base_url, tmp_path)
        assert tracing.langfuse_server.wait(10)
        monkeypatch.setattr(tracing_module, "_active", tracing)   # as setup_tracing leaves it

        async def healthz() -> dict:
            app = build_api(Runtime(Settings(parser="offline")))
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
                return (await client.get("/healthz")).json()

        body = aio.run(healthz())
        note = langfuse_note()
        tracing.shutdown()
    assert body["langfuse"]["version"] == OLD_SERVER_VERSION and body["langfuse"]["scores"] == "one-by-one"
    assert body["langfuse"]["min_version"] == MIN_SERVER_VERSION and "posted one at a time" in body["langfuse"]["note"]
    assert note == body["langfuse"]["note"]


def test_a_score_the_older_server_refuses_is_logged_and_counted(caplog):
    """One by one, a refusal is the server's answer, said and counted (never retried: it would be
    refused again); what it accepts still arrives."""
    with langfuse_receiver(version=OLD_SERVER_VERSION) as receiver, caplog.at_level(logging.INFO, "agent.langfuse_server"):
        check = ServerCheck(receiver.base_url, timeout_s=2)
        assert check.check() == "one-by-one"
        sender = ScoreSender(check, "pk", "sk", 2, sdk_score=lambda **_: pytest.fail("not the SDK's batches"))
        sender.submit(score_id=uuid.uuid4().hex, name="user_feedback", value=1.0, data_type="BOOLEAN")   # no target
        sender.submit(score_id=uuid.uuid4().hex, name="user_feedback", value=True, data_type="BOOLEAN",
                      trace_id=uuid.uuid4().hex)
        assert sender.join(10)
        sender.close()
    assert sender.counts["refused"] == 1 and sender.counts["posted"] == 1
    assert "HTTP 400" in sender.last_refusal and "traceId" in sender.last_refusal
    assert receiver.scores[0]["value"] == 1.0 and len(receiver.calls("POST", "/api/public/scores")) == 2
    assert any("refused the swipe score" in r.getMessage() for r in caplog.records)
    assert summary(check, sender)["score_counts"]["refused"] == 1 and "last_refusal" not in summary(check, sender)
