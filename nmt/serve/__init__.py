"""``nmt serve``: an HTTP translation server for model bundles (FastAPI on uvicorn).

- ``models``: the served bundles and how language codes pick one;
- ``batcher``: dynamic batching of concurrent requests into ``Translator.translate`` calls;
- ``guard``: body limit, API keys, access log, request metrics;
- ``app``: the routes (nmt's ``/v1`` API, the LibreTranslate subset, health, metrics);
- ``server``: binding, uvicorn, graceful shutdown.
"""
