"""Glimpse HTTP service: FastAPI app, routes, schemas, the web page, the CLI."""
