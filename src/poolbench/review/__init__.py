"""Looking at finished runs: sweep reports, the W&B dashboard, a run's pictures, embeddings,
and the lecture's figures."""
