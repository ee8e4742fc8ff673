"""Reasoning over stored evidence: rerank explanations, reference resolution, answers.

Every claim the cpu backend makes here is read off a view's stored Description (tags with
scores, OCR lines, detected objects with boxes, measured colours, shot times). Nothing is
invented; a question the evidence cannot answer gets an honest "cannot tell".
"""
