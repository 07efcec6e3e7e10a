"""Serving a pipeline: an HTTP service with dynamic micro-batching (`bertprod serve`), a load
generator to measure it (`bertprod loadtest`), and corpus annotation on one machine or a Ray
cluster (`bertprod apply`).

Everything here needs the optional `serve` (FastAPI, uvicorn, prometheus-client) or `ray`
extras; the base install and the pipelines themselves never import them.
"""
