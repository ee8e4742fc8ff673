"""Glimpse indexer: the domain. Media decoding, the model layer, stores, pipeline, search.

Imports neither FastAPI nor Celery, so the same code runs in the API, a worker and the CLI.
"""
