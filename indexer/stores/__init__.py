"""Stores: the catalog (SQL, source of truth), the vector index, and the blob store."""
