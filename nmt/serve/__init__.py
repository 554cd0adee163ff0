"""``nmt serve``: an HTTP translation server for model bundles (FastAPI on uvicorn).

- ``models``: the served bundles and how language codes pick one;
- ``batcher``: dynamic batching: the lines of concurrent requests share batches on every decoding worker;
- ``guard``: body limit and read timeout, API keys, access log, request metrics;
- ``app``: the routes (nmt's ``/v1`` API, the LibreTranslate subset, health, metrics);
- ``server``: binding, uvicorn (header timeout, connection limit), graceful shutdown;
- ``limits``: what one server accepts (the options of ``nmt serve``).
"""
