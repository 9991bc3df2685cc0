"""Durable jobs: the job model and store Protocol, the SQLite and Redis stores, the workers that run them."""
