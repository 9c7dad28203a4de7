"""The dialogue manager: intent parsing, session state, one turn's orchestration, explanations, tracing."""
