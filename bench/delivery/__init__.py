"""Helpers of `bench/delivery_bench.py`: the stand-in servers, the processes, the load."""
