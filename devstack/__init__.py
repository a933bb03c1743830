"""Run the whole service locally: an embedded Redis (unless REDIS_URL is set) and the
Procfile's `web` and `worker` processes. Used by `make run`, the end-to-end tests and the
benchmark, so all three run exactly what a PaaS would run."""
