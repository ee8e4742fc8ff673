"""The indexing pipeline, one module per stage: decode → encode → persist, run by runner."""
