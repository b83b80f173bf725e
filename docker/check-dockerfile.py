#!/usr/bin/env python3
"""Check a Dockerfile's final stages for what a production container needs.

    python3 docker/check-dockerfile.py [Dockerfile ...]      (default: ./Dockerfile)

A *final stage* is the last stage, or any stage no other stage builds on (``FROM stage``) or
copies or mounts from (``--from=stage``): the stages that become images (``--target``).
Each final stage must have:

- ``USER`` set to someone other than root (not ``root``, ``0``, ``root:...`` or ``0:...``), as
  the stage's last USER;
- ``CMD`` and ``ENTRYPOINT`` (at least one of them) only in exec form (a JSON array), so the
  server is PID 1 and receives SIGTERM itself rather than through ``/bin/sh -c``;
- ``HEALTHCHECK CMD [...]`` in exec form (no shell or curl needed in the image); ``NONE`` fails;
- ``STOPSIGNAL``.

And the whole file must build without a registry when given local base images, with the
classic builder as well as BuildKit:

- every ``FROM`` names an earlier stage or a build argument (``FROM ${RUST_IMAGE}``), whose
  default is the official image, so a machine with no registry can pass its own;
- no ``# syntax=`` parser directive (BuildKit pulls that front-end image from a registry);
- no ``RUN --mount`` (the classic builder does not know it).

Exits 0 when every file passes, 1 with one line per problem otherwise, 2 on a usage error.
Standard library only. Understands line continuations, comments, parser directives (including
``escape``), instructions in any case, ``FROM ... AS name`` with flags and numeric stage
references, and heredocs (their bodies are skipped).
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple


@dataclass
class Instruction:
    line: int  # 1-based line of the instruction's first line
    keyword: str  # upper case
    args: str  # everything after the keyword, continuations joined


@dataclass
class Stage:
    index: int
    name: Optional[str]
    base: str
    line: int
    instructions: List[Instruction] = field(default_factory=list)

    def label(self) -> str:
        return f"stage {self.index}" + (f" ({self.name})" if self.name else "")


DIRECTIVE = re.compile(r"^#\s*([a-zA-Z]+)\s*=\s*(\S+)\s*$")
HEREDOC = re.compile(r"<<-?\s*[\"']?([A-Za-z_][A-Za-z0-9_]*)[\"']?")


def parse(text: str) -> List[Instruction]:
    """Split a Dockerfile into instructions (keyword upper-cased, continuations joined)."""
    lines = text.splitlines()
    escape = "\\"
    i = 0
    # Parser directives: only at the very top, before any comment, blank line or instruction.
    while i < len(lines):
        m = DIRECTIVE.match(lines[i])
        if not m:
            break
        if m.group(1).lower() == "escape" and m.group(2) in ("\\", "`"):
            escape = m.group(2)
        i += 1
    out: List[Instruction] = []
    while i < len(lines):
        raw = lines[i]
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        start = i
        parts = []
        current = raw
        while True:
            body = current.rstrip()
            if body.endswith(escape):
                parts.append(body[: -len(escape)])
                i += 1
                # Comment lines and blank lines inside a continuation are skipped.
                while i < len(lines) and (not lines[i].strip() or lines[i].strip().startswith("#")):
                    i += 1
                if i >= len(lines):
                    break
                current = lines[i]
                continue
            parts.append(body)
            i += 1
            break
        joined = " ".join(p.strip() for p in parts).strip()
        keyword, _, args = joined.partition(" ")
        keyword = keyword.upper()
        # Heredocs (RUN <<EOF ... EOF, COPY <<EOF ...): skip their bodies.
        for tag in HEREDOC.findall(args) if keyword in ("RUN", "COPY", "ADD") else []:
            while i < len(lines) and lines[i].strip() != tag:
                i += 1
            i += 1
        out.append(Instruction(start + 1, keyword, args.strip()))
    return out


def split_stages(instructions: List[Instruction]) -> Tuple[List[Stage], List[str]]:
    stages: List[Stage] = []
    problems: List[str] = []
    for ins in instructions:
        if ins.keyword == "FROM":
            words = [w for w in ins.args.split() if not w.startswith("--")]
            if not words:
                problems.append(f"line {ins.line}: FROM without an image")
                continue
            name = None
            if len(words) >= 3 and words[1].lower() == "as":
                name = words[2].lower()
            stages.append(Stage(len(stages), name, words[0].lower(), ins.line))
        elif not stages:
            if ins.keyword != "ARG":
                problems.append(f"line {ins.line}: {ins.keyword} before the first FROM")
        else:
            stages[-1].instructions.append(ins)
    return stages, problems


FROM_FLAG = re.compile(r"(?:^|[\s,]|--)from=([^\s,]+)", re.IGNORECASE)


def referenced_stages(stages: List[Stage]) -> set:
    """Indices of stages that another stage builds on, copies from or mounts from."""
    by_name: Dict[str, int] = {s.name: s.index for s in stages if s.name}
    used = set()

    def resolve(ref: str) -> Optional[int]:
        ref = ref.strip("\"'").lower()
        if ref in by_name:
            return by_name[ref]
        if ref.isdigit() and int(ref) < len(stages):
            return int(ref)
        return None  # an external image

    for stage in stages:
        base = resolve(stage.base)
        if base is not None and base < stage.index:
            used.add(base)
        for ins in stage.instructions:
            if ins.keyword in ("COPY", "ADD", "RUN"):
                for ref in FROM_FLAG.findall(ins.args):
                    index = resolve(ref)
                    if index is not None:
                        used.add(index)
    return used


def strip_flags(args: str) -> str:
    """Remove leading ``--flag=value`` options (HEALTHCHECK's ``--interval=10s`` and so on)."""
    rest = args.strip()
    while rest.startswith("--"):
        _, _, rest = rest.partition(" ")
        rest = rest.strip()
    return rest


def exec_form(args: str) -> Optional[List[str]]:
    """The argument list when ``args`` is a JSON array of strings (exec form), else None."""
    text = args.strip()
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value
    return None


def is_root_user(args: str) -> bool:
    user = args.strip().split(":", 1)[0].strip().strip("\"'")
    return user in ("root", "0", "")


def check_stage(stage: Stage) -> List[str]:
    problems: List[str] = []
    where = stage.label()
    users = [i for i in stage.instructions if i.keyword == "USER"]
    if not users:
        problems.append(f"{where}: no USER (the image would run as root)")
    elif is_root_user(users[-1].args):
        problems.append(f"line {users[-1].line}: {where}: USER {users[-1].args} runs as root")

    runs = [i for i in stage.instructions if i.keyword in ("CMD", "ENTRYPOINT")]
    if not runs:
        problems.append(f"{where}: neither CMD nor ENTRYPOINT")
    for ins in runs:
        if exec_form(ins.args) is None:
            problems.append(
                f"line {ins.line}: {where}: {ins.keyword} in shell form ({ins.args!r}); use the exec form "
                f'["program", "arg", ...] so the server is PID 1 and gets SIGTERM'
            )

    if not any(i.keyword == "STOPSIGNAL" for i in stage.instructions):
        problems.append(f"{where}: no STOPSIGNAL")

    checks = [i for i in stage.instructions if i.keyword == "HEALTHCHECK"]
    if not checks:
        problems.append(f"{where}: no HEALTHCHECK")
    else:
        last = checks[-1]
        body = strip_flags(last.args)
        keyword, _, command = body.partition(" ")
        if keyword.upper() == "NONE":
            problems.append(f"line {last.line}: {where}: HEALTHCHECK NONE disables the health check")
        elif keyword.upper() != "CMD":
            problems.append(f"line {last.line}: {where}: HEALTHCHECK needs CMD [...]")
        elif exec_form(command) is None:
            problems.append(
                f"line {last.line}: {where}: HEALTHCHECK CMD in shell form ({command!r}); use the exec form, "
                f'e.g. CMD ["maitred", "--healthcheck", "http://127.0.0.1:8080/healthz"]'
            )
    return problems


def check_portable(text: str, instructions: List[Instruction], stages: List[Stage]) -> List[str]:
    """No registry needed beyond the base images, which are build arguments; classic builder."""
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        m = DIRECTIVE.match(line)
        if not m:
            break
        if m.group(1).lower() == "syntax":
            problems.append(f"line {number}: `# syntax=` directive: BuildKit would pull the front-end image {m.group(2)}")
    names = set()
    for stage in stages:
        if not (stage.base.startswith("$") or stage.base in names):
            problems.append(f"line {stage.line}: FROM {stage.base}: use a build argument (ARG ...={stage.base}, FROM ${{...}}) so a machine without a registry can pass a local image")
        if stage.name:
            names.add(stage.name)
    for ins in instructions:
        flags = re.match(r"^((?:--\S+\s+)*)", ins.args + " ").group(1).split()
        if ins.keyword == "RUN" and any(f.startswith("--mount") for f in flags):
            problems.append(f"line {ins.line}: RUN --mount needs BuildKit; the classic builder fails on it")
    return problems


def check_text(text: str) -> List[str]:
    instructions = parse(text)
    stages, problems = split_stages(instructions)
    if not stages:
        return problems + ["no FROM: not a Dockerfile"]
    problems.extend(check_portable(text, instructions, stages))
    used = referenced_stages(stages)
    finals = [s for s in stages if s.index == len(stages) - 1 or s.index not in used]
    for stage in finals:
        problems.extend(check_stage(stage))
    return problems


def main(argv: List[str]) -> int:
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__.strip())
        return 0
    paths = argv or ["Dockerfile"]
    failed = False
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            print(f"check-dockerfile: {path}: {e}", file=sys.stderr)
            return 2
        problems = check_text(text)
        stages, _ = split_stages(parse(text))
        used = referenced_stages(stages)
        finals = [s.label() for s in stages if s.index == len(stages) - 1 or s.index not in used]
        if problems:
            failed = True
            for p in problems:
                print(f"{path}: {p}")
        else:
            print(f"{path}: ok (final stages: {', '.join(finals)})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
