"""`etagwatch probe`: fetch one URL as fresh clients and test its validators.

client.py (httpx, fresh clients, raw bodies) -> context.py (what checks share) -> checks/ (one
module per concern) -> to_exchange.py (records through the readers' assembler) -> runner.py
(store, detectors) -> render.py (the probe section of the terminal and JSON reports).
"""
