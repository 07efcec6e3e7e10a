"""What the package measures about pipelines: `benchmark` (words/s, latency, memory, size, each
pipeline in its own process), `compare-encoders` / `profile-encoder` (the ONNX session alone) and
`loadtest` (the HTTP service under concurrent clients). Nothing here is on the serving path."""
