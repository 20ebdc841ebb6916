"""The paper's tables and figures, one script each: `python -m experiments.<name> [--render-only]`."""
