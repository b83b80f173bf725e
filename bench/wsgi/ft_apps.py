"""The applications of the free-threading benchmark (bench/wsgi/freethreading.sh).

flask_cpu          a Flask view that burns about 2 ms of pure-Python CPU per request: a fixed
                   amount of integer arithmetic on local variables (BURN_ROUNDS iterations), the
                   kind of view the GIL serialises
flask_cpu_generic  the same with `%` instead of `&` (an operation CPython 3.14 does not
                   specialise), a second mix of operations (CASES=generic-t1,generic-t4)
flask_hello        a Flask view returning 13 bytes: the per-request cost of Flask and the server
"""

from flask import Flask

# Fixed work per request, so every interpreter and thread count does the same work: about
# 2 ms of one core on the 2-core development VM (freethreading.py measures and prints the real
# figure for each interpreter).
BURN_ROUNDS = 27_000


def burn(rounds: int = BURN_ROUNDS) -> int:
    mask = 0xFFFFF
    x = 0
    for i in range(rounds):
        x = (x * 31 + i) & mask
    return x


def burn_generic(rounds: int = BURN_ROUNDS) -> int:
    modulus = 1_000_003
    x = 0
    for i in range(rounds):
        x = (x * 31 + i) % modulus
    return x


flask_cpu = Flask("flask_cpu")


@flask_cpu.get("/")
def cpu_view():
    return f"burned {burn()}\n"


flask_cpu_generic = Flask("flask_cpu_generic")


@flask_cpu_generic.get("/")
def cpu_generic_view():
    return f"burned {burn_generic()}\n"


flask_hello = Flask("flask_hello")


@flask_hello.get("/")
def hello_view():
    return "Hello, World!"
