"""Check the three wheels packaging/build-wheels.sh made, without running them.

    python packaging/check-wheels.py WHEEL_DIR

Linux wheels (stable ABI and free-threaded 3.14t): the tags in the wheel's WHEEL file, the
extension module's file name, and `auditwheel show` confirming the manylinux_2_17 tag (glibc
2.17, no external libraries but the system's).

Windows wheel: the tag `cp39-abi3-win_amd64`, the extension `maitred/_maitred.pyd` is a PE32+
x86-64 DLL, it exports `PyInit__maitred`, and its import table names only `python3.dll` (the
stable ABI's DLL, not a versioned `python3X.dll`) and Windows system DLLs: none of mingw's
runtime DLLs (`libgcc_s_seh-1.dll`, `libwinpthread-1.dll`, `libstdc++-6.dll`), which a
Windows machine does not have. Read with `x86_64-w64-mingw32-objdump -p`.

Exit status 0 when every check passes; each failure is one line on stderr.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

OBJDUMP = "x86_64-w64-mingw32-objdump"

# DLLs every Windows x86-64 installation has (compared case-insensitively). API-set names
# (api-ms-win-*) are resolved by the Windows loader itself.
WINDOWS_SYSTEM_DLLS = {
    "kernel32.dll", "kernelbase.dll", "ntdll.dll", "msvcrt.dll", "ucrtbase.dll", "user32.dll",
    "advapi32.dll", "userenv.dll", "ws2_32.dll", "mswsock.dll", "bcrypt.dll", "bcryptprimitives.dll",
    "shell32.dll", "ole32.dll", "oleaut32.dll", "secur32.dll", "crypt32.dll", "iphlpapi.dll",
    "dbghelp.dll", "synchronization.dll", "psapi.dll",
}

failures: list[str] = []


def fail(message: str) -> None:
    failures.append(message)
    print(f"check-wheels: FAIL: {message}", file=sys.stderr)


def ok(message: str) -> None:
    print(f"check-wheels: ok: {message}")


def one(wheel_dir: Path, pattern: str) -> Path | None:
    found = sorted(wheel_dir.glob(pattern))
    if len(found) != 1:
        fail(f"expected one wheel matching {pattern} in {wheel_dir}, found {[p.name for p in found]}")
        return None
    return found[0]


def wheel_tags(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as z:
        name = next(n for n in z.namelist() if n.endswith(".dist-info/WHEEL"))
        text = z.read(name).decode()
    return {line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Tag:")}


def check_tags(wheel: Path, expected: set[str]) -> None:
    tags = wheel_tags(wheel)
    if tags != expected:
        fail(f"{wheel.name}: tags {sorted(tags)}, expected {sorted(expected)}")
    else:
        ok(f"{wheel.name}: tags {', '.join(sorted(tags))}")


def check_member(wheel: Path, member: str) -> None:
    with zipfile.ZipFile(wheel) as z:
        if member not in z.namelist():
            fail(f"{wheel.name}: no {member} in the wheel")
        else:
            ok(f"{wheel.name}: contains {member}")


def check_auditwheel(wheel: Path, platform: str) -> None:
    run = subprocess.run([sys.executable, "-m", "auditwheel", "show", str(wheel)], capture_output=True, text=True)
    text = " ".join((run.stdout + run.stderr).split())
    wanted = f'is consistent with the following platform tag: "{platform}"'
    if run.returncode != 0 or wanted not in text:
        fail(f"{wheel.name}: auditwheel show does not confirm {platform}:\n{run.stdout}{run.stderr}")
    else:
        ok(f"{wheel.name}: auditwheel show: consistent with {platform}")


def check_pe(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z, tempfile.TemporaryDirectory() as tmp:
        member = "maitred/_maitred.pyd"
        if member not in z.namelist():
            fail(f"{wheel.name}: no {member}")
            return
        pyd = Path(z.extract(member, tmp))
        header = subprocess.run([OBJDUMP, "-f", str(pyd)], capture_output=True, text=True, check=True).stdout
        dump = subprocess.run([OBJDUMP, "-p", str(pyd)], capture_output=True, text=True, check=True).stdout
    if "file format pei-x86-64" not in header:
        fail(f"{wheel.name}: {member} is not a PE32+ x86-64 image:\n{header}")
    else:
        ok(f"{wheel.name}: {member} is a PE32+ x86-64 DLL")
    imports = sorted({m.lower() for m in re.findall(r"DLL Name: (\S+)", dump)})
    if "python3.dll" not in imports:
        fail(f"{wheel.name}: does not import python3.dll (imports: {imports})")
    strays = [
        dll for dll in imports
        if dll != "python3.dll" and dll not in WINDOWS_SYSTEM_DLLS and not dll.startswith("api-ms-win-")
    ]
    if strays:
        fail(f"{wheel.name}: imports DLLs that are neither python3.dll nor Windows system DLLs: {strays}")
    else:
        ok(f"{wheel.name}: imports only python3.dll and system DLLs: {', '.join(imports)}")
    # The export table lists "[ordinal] name" lines after "[Ordinal/Name Pointer] Table".
    exports = dump.split("[Ordinal/Name Pointer] Table", 1)[-1] if "[Ordinal/Name Pointer] Table" in dump else ""
    if not re.search(r"\]\s+PyInit__maitred\b", exports):
        fail(f"{wheel.name}: PyInit__maitred is not exported")
    else:
        ok(f"{wheel.name}: exports PyInit__maitred")


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    wheel_dir = Path(sys.argv[1])
    linux_tags = {"cp39-abi3-manylinux_2_17_x86_64", "cp39-abi3-manylinux2014_x86_64"}
    ft_tags = {"cp314-cp314t-manylinux_2_17_x86_64", "cp314-cp314t-manylinux2014_x86_64"}

    wheel = one(wheel_dir, "maitred-*-cp39-abi3-manylinux*_x86_64.whl")
    if wheel:
        check_tags(wheel, linux_tags)
        check_member(wheel, "maitred/_maitred.abi3.so")
        check_auditwheel(wheel, "manylinux_2_17_x86_64")
    wheel = one(wheel_dir, "maitred-*-cp39-abi3-win_amd64.whl")
    if wheel:
        check_tags(wheel, {"cp39-abi3-win_amd64"})
        check_pe(wheel)
    wheel = one(wheel_dir, "maitred-*-cp314-cp314t-manylinux*_x86_64.whl")
    if wheel:
        check_tags(wheel, ft_tags)
        check_member(wheel, "maitred/_maitred.cpython-314t-x86_64-linux-gnu.so")
        check_auditwheel(wheel, "manylinux_2_17_x86_64")
    if failures:
        print(f"check-wheels: {len(failures)} check(s) failed", file=sys.stderr)
        return 1
    print("check-wheels: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
