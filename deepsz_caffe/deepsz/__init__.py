"""DeepSZ's own steps: pruning (`prune`), Algorithm 1's rule (`walk`) and its measurement on a
Caffe net (`probe`, `assess`, `parallel`), Algorithm 2 (`optimize`) and the end-to-end,
verified `pipeline.compress`."""
