"""Speed and memory benchmarks, each run as `python -m benchmarks.<name>` from the checkout
(`make bench` runs the quick ones); each prints ratios against a reference measured in the same
run and writes JSON under results/bench/. What they share is in benchmarks/common.py."""
