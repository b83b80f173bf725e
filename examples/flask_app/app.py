"""A small Flask API served by maitred.

Run it from the repository root (after ``pip install .`` and ``pip install -r
examples/flask_app/requirements.txt``)::

    python -m maitred --listen 127.0.0.1:8080 --app-dir examples/flask_app app:app

Routes:

=====================  ==============================================================
``GET /``              a plain-text hello
``GET /api/items``     a JSON list
``POST /api/echo``     echoes a JSON body as JSON, any other body byte for byte (works
                       with ``Transfer-Encoding: chunked`` uploads)
``GET /download``      ``send_file`` of ``static/sample.bin``
``GET /stream``        a streamed response (``?n=`` chunks) using ``stream_with_context``
``GET /boom``          raises; the exception reaches the server, which logs the traceback
                       and answers a bare 500 (``PROPAGATE_EXCEPTIONS`` is on)
``GET /hello/<name>``  a UTF-8 path parameter: ``/hello/J%C3%BCrgen`` says "Hello, Jürgen"
``GET /latin1``        a response header with a non-ASCII latin-1 value (``X-Name: Müller``)
``GET /teardowns``     how many times the ``teardown_request`` callback has run
``GET /health``        ``{"status": "ok"}``
``GET /slow?ms=N``     answers after N milliseconds (at most 10 s): shows a graceful drain
=====================  ==============================================================
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque

from flask import Flask, Response, jsonify, request, send_file, stream_with_context

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLE_FILE = os.path.join(HERE, "static", "sample.bin")

app = Flask(__name__)
# Let unhandled exceptions reach the WSGI server: it logs the traceback and answers 500 with
# `Connection: close`, never showing the traceback to the client.
app.config["PROPAGATE_EXCEPTIONS"] = True

ITEMS = [
    {"id": 1, "name": "espresso", "price_cents": 250},
    {"id": 2, "name": "cappuccino", "price_cents": 380},
    {"id": 3, "name": "crème brûlée", "price_cents": 650},
]

_teardown_lock = threading.Lock()
_teardown_count = 0
_teardown_recent: deque = deque(maxlen=50)


@app.teardown_request
def record_teardown(exc):
    global _teardown_count
    with _teardown_lock:
        _teardown_count += 1
        _teardown_recent.append({"path": request.path, "error": None if exc is None else type(exc).__name__})


@app.get("/")
def index():
    return Response("Hello from Flask on maitred!\n", mimetype="text/plain")


@app.get("/api/items")
def list_items():
    return jsonify(items=ITEMS, count=len(ITEMS))


@app.post("/api/echo")
def echo():
    raw = request.get_data(cache=True)
    if request.is_json:
        return jsonify(echo=request.get_json(), bytes=len(raw))
    return Response(raw, mimetype=request.mimetype or "application/octet-stream")


@app.get("/download")
def download():
    return send_file(SAMPLE_FILE, mimetype="application/octet-stream", as_attachment=True, download_name="sample.bin")


@app.get("/stream")
def stream():
    count = request.args.get("n", default=5, type=int)

    def generate():
        for i in range(count):
            # The request context is still there while streaming, thanks to stream_with_context.
            yield f"chunk {i + 1}/{count} for {request.path}\n"

    return Response(stream_with_context(generate()), mimetype="text/plain")


@app.get("/boom")
def boom():
    raise RuntimeError("deliberate failure in /boom (secret detail: 0xDEADBEEF)")


@app.get("/hello/<name>")
def hello(name: str):
    return Response(f"Hello, {name}\n", mimetype="text/plain")


@app.get("/latin1")
def latin1():
    response = Response("header set\n", mimetype="text/plain")
    # WSGI header values are str holding latin-1 characters; the server writes them as latin-1.
    response.headers["X-Name"] = "Müller"
    return response


@app.get("/teardowns")
def teardowns():
    with _teardown_lock:
        return jsonify(count=_teardown_count, recent=list(_teardown_recent))


@app.get("/slow")
def slow():
    ms = min(max(request.args.get("ms", default=500, type=int), 0), 10_000)
    time.sleep(ms / 1000)
    return jsonify(slept_ms=ms)


@app.get("/health")
def health():
    return jsonify(status="ok")


if __name__ == "__main__":
    import maitred

    maitred.serve(app, listen="127.0.0.1:8080")
