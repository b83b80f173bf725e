#!/usr/bin/env python3
"""Self-test of docker/check-dockerfile.py: the repository's Dockerfile passes, and each kind
of bad Dockerfile fails with the right message, through the command line (exit status) as
.ci/run calls it.

    python3 docker/test_check_dockerfile.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CHECKER = os.path.join(HERE, "check-dockerfile.py")

GOOD = """\
# escape=\\
ARG BASE=debian:bookworm-slim
ARG RUST_IMAGE=rust:1-slim-bookworm
FROM ${RUST_IMAGE} AS build
RUN cargo build --release
FROM ${BASE} AS final
COPY --from=build /out/app /usr/local/bin/app
USER 10001:10001
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s \\
    CMD ["app", "--healthcheck", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["/usr/local/bin/app"]
CMD ["--serve"]
"""


def run_checker(text: str):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "Dockerfile")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        proc = subprocess.run([sys.executable, CHECKER, path], capture_output=True, text=True, timeout=30)
        return proc.returncode, proc.stdout + proc.stderr


class CheckDockerfile(unittest.TestCase):
    def assert_fails(self, text: str, needle: str):
        code, out = run_checker(text)
        self.assertEqual(code, 1, f"expected failure mentioning {needle!r}, got exit {code}:\n{out}")
        self.assertIn(needle, out)

    def test_repository_dockerfile_passes(self):
        proc = subprocess.run(
            [sys.executable, CHECKER, os.path.join(ROOT, "Dockerfile")], capture_output=True, text=True, timeout=30
        )
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        # Both image targets are recognised as final stages.
        self.assertIn("(static)", proc.stdout)
        self.assertIn("(api)", proc.stdout)

    def test_good_example_passes(self):
        code, out = run_checker(GOOD)
        self.assertEqual(code, 0, out)

    def test_missing_user(self):
        self.assert_fails(GOOD.replace("USER 10001:10001\n", ""), "no USER")

    def test_root_users(self):
        for user in ("root", "0", "0:0", "root:root", "root:10001"):
            with self.subTest(user=user):
                self.assert_fails(GOOD.replace("USER 10001:10001", f"USER {user}"), "runs as root")

    def test_last_user_counts(self):
        self.assert_fails(GOOD.replace("USER 10001:10001", "USER 10001:10001\nRUN true\nUSER 0"), "runs as root")
        code, out = run_checker(GOOD.replace("USER 10001:10001", "USER root\nRUN apt-get update\nUSER 10001"))
        self.assertEqual(code, 0, out)

    def test_user_in_builder_stage_only(self):
        text = GOOD.replace("USER 10001:10001\n", "").replace("RUN cargo build --release", "USER 10001\nRUN cargo build --release")
        self.assert_fails(text, "no USER")

    def test_shell_form_cmd(self):
        self.assert_fails(GOOD.replace('CMD ["--serve"]', "CMD /usr/local/bin/app --serve"), "CMD in shell form")

    def test_shell_form_entrypoint(self):
        self.assert_fails(
            GOOD.replace('ENTRYPOINT ["/usr/local/bin/app"]', "ENTRYPOINT /usr/local/bin/app"), "ENTRYPOINT in shell form"
        )

    def test_lower_case_and_invalid_json(self):
        self.assert_fails(GOOD.replace('CMD ["--serve"]', "cmd [--serve]"), "CMD in shell form")
        self.assert_fails(GOOD.replace('CMD ["--serve"]', "CMD []"), "CMD in shell form")

    def test_shell_form_healthcheck(self):
        text = GOOD.replace(
            'CMD ["app", "--healthcheck", "http://127.0.0.1:8080/healthz"]',
            "CMD curl -f http://127.0.0.1:8080/healthz || exit 1",
        )
        self.assert_fails(text, "HEALTHCHECK CMD in shell form")

    def test_healthcheck_none(self):
        text = GOOD.replace(
            'HEALTHCHECK --interval=10s --timeout=3s \\\n    CMD ["app", "--healthcheck", "http://127.0.0.1:8080/healthz"]',
            "HEALTHCHECK NONE",
        )
        self.assert_fails(text, "HEALTHCHECK NONE")

    def test_missing_healthcheck(self):
        text = GOOD.replace(
            'HEALTHCHECK --interval=10s --timeout=3s \\\n    CMD ["app", "--healthcheck", "http://127.0.0.1:8080/healthz"]\n',
            "",
        )
        self.assert_fails(text, "no HEALTHCHECK")

    def test_missing_stopsignal(self):
        self.assert_fails(GOOD.replace("STOPSIGNAL SIGTERM\n", ""), "no STOPSIGNAL")

    def test_missing_cmd_and_entrypoint(self):
        text = GOOD.replace('ENTRYPOINT ["/usr/local/bin/app"]\n', "").replace('CMD ["--serve"]\n', "")
        self.assert_fails(text, "neither CMD nor ENTRYPOINT")

    def test_unreferenced_stage_is_final_too(self):
        # A second target nobody builds on must pass the same checks.
        text = GOOD + "FROM debian:bookworm-slim AS other\nCMD [\"true\"]\n"
        self.assert_fails(text, "(other): no USER")
        # ...while a stage used by a later one (`FROM final`) is not final.
        text = GOOD + "FROM final AS derived\n"
        code, out = run_checker(text)
        self.assertEqual(code, 1, out)
        self.assertIn("(derived)", out)
        self.assertNotIn("(final)", out)

    def test_mount_from_marks_stage_used(self):
        text = GOOD.replace(
            "COPY --from=build /out/app /usr/local/bin/app",
            "RUN --mount=type=bind,from=build,source=/out,target=/tmp/out cp /tmp/out/app /usr/local/bin/app",
        )
        code, out = run_checker(text)
        # The mount counts as a use of `build` (not a final stage), and is itself a problem.
        self.assertEqual(code, 1, out)
        self.assertNotIn("(build)", out)
        self.assertIn("RUN --mount needs BuildKit", out)

    def test_syntax_directive_fails(self):
        self.assert_fails("# syntax=docker/dockerfile:1\n" + GOOD.split("\n", 1)[1], "BuildKit would pull the front-end image")

    def test_literal_base_image_fails(self):
        self.assert_fails(GOOD.replace("FROM ${RUST_IMAGE} AS build", "FROM rust:1-slim-bookworm AS build"),
                          "FROM rust:1-slim-bookworm: use a build argument")
        # A stage built on an earlier stage is fine.
        code, out = run_checker(GOOD + "FROM build AS tools\nUSER 1\nSTOPSIGNAL SIGTERM\n"
                                "HEALTHCHECK CMD [\"true\"]\nCMD [\"true\"]\n")
        self.assertEqual(code, 0, out)

    def test_escape_directive_and_continuations(self):
        text = GOOD.replace("# escape=\\\n", "# escape=`\n").replace(
            'HEALTHCHECK --interval=10s --timeout=3s \\\n', "HEALTHCHECK --interval=10s --timeout=3s `\n"
        )
        code, out = run_checker(text)
        self.assertEqual(code, 0, out)

    def test_heredoc_body_is_not_parsed(self):
        text = GOOD.replace(
            "RUN cargo build --release",
            "RUN <<EOF\nUSER root\nCMD not an instruction\nEOF",
        )
        code, out = run_checker(text)
        self.assertEqual(code, 0, out)

    def test_not_a_dockerfile(self):
        self.assert_fails("RUN true\n", "no FROM")

    def test_missing_file_is_usage_error(self):
        proc = subprocess.run([sys.executable, CHECKER, "/nonexistent/Dockerfile"], capture_output=True, text=True)
        self.assertEqual(proc.returncode, 2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
