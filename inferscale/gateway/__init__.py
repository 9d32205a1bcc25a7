"""The OpenAI-compatible gateway (`inferscale serve`): a thin FastAPI adapter over `Engine.aask`.

    schemas.py   the wire format (pydantic)        adapter.py   request -> aask, result -> response
    auth.py      the key dependency                keys.py      salted key hashes, budgets
    streaming.py SSE chunks from engine events     metrics.py   Prometheus text from the monitor
    errors.py    the one OpenAI-shaped handler     routes/      chat, models, ops (health, metrics), feedback
    app.py       the app and uvicorn's factory     cli.py       `serve`, `keys`
"""
