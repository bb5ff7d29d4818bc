"""The load benchmark's parts (`bench/load_bench.py`): the processes, the webhook flood and the
`/usage` flood."""
