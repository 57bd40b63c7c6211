"""Subscribers that hand a run's events to the outside: `jsonl.EventsJsonl` (every event, one
JSON object per line: `tui-flow run --events-jsonl FILE`) and `otel.OtelSubscriber` (an
OpenTelemetry span per run and per attempt: `tui-flow run --otel`, needs tui-flow[otel]).
Each module is imported only when asked for."""
