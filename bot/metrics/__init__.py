"""Metrics: what the process counts and times, served to Prometheus at `GET /metrics`.

`recorder.Metrics` holds one `CollectorRegistry` per app (never prometheus_client's global
one) and one method per thing worth counting; `chat_model.MeteredChatModel` times every model
call under OpenTelemetry's GenAI client metric names.
"""
