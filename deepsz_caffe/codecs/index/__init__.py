"""Index-array coders beyond the generic lossless ones: the context-modelled `ctx` coder
(`context`) and its grouped zero-run mode (`grouped`)."""
