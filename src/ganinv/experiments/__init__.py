"""The papers' experiments and our benchmarks: compare, ablation, the bench suites and the demo."""
