"""pivot vs DVC comparison suite (entry point: benchmarks/run_dvc_compare.py)."""
