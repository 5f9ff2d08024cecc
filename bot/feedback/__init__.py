"""Feedback on answers: who rated which answer up or down."""
