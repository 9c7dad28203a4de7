"""Sentence embeddings, the FAISS catalog index and the FAISS per-user profile index."""
