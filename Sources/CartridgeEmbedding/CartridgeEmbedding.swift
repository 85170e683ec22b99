// Sentence embeddings for retrieval (all-MiniLM-L6-v2).
