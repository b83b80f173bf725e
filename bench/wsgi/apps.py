"""The applications the WSGI benchmark serves (bench/wsgi/run.sh).

hello        plain WSGI, 13 bytes, Content-Length set: the server's own overhead
flask_hello  the same text through Flask's routing and response machinery
sleep        plain WSGI that sleeps 50 ms: a handler that waits (database, upstream call)
"""

import time

from flask import Flask

BODY = b"Hello, World!"


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))])
    return [BODY]


flask_hello = Flask(__name__)


@flask_hello.get("/")
def index():
    return "Hello, World!"


def sleep(environ, start_response):
    time.sleep(0.05)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))])
    return [BODY]
