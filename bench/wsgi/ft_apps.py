"""The applications of the free-threading benchmark (bench/wsgi/freethreading.sh).

flask_cpu    a Flask view that burns about 2 ms of pure-Python CPU per request (a fixed amount
             of work: BURN_ROUNDS iterations of integer arithmetic on local variables), the
             kind of view the GIL serialises
flask_hello  a Flask view returning 13 bytes: the per-request cost of Flask and the server
"""

from flask import Flask

# Fixed work per request, so every interpreter and thread count does the same work; about
# 2 ms of one core with CPython 3.14 on the 2-core development VM (freethreading.py measures
# and prints the real figure for each interpreter).
BURN_ROUNDS = 27_000


def burn(rounds: int = BURN_ROUNDS) -> int:
    x = 0
    for i in range(rounds):
        x = (x * 31 + i) % 1_000_003
    return x


flask_cpu = Flask("flask_cpu")


@flask_cpu.get("/")
def cpu_view():
    return f"burned {burn()}\n"


flask_hello = Flask("flask_hello")


@flask_hello.get("/")
def hello_view():
    return "Hello, World!"
