"""Database layer: models, engine/session set-up and queries."""
