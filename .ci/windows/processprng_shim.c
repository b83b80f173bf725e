/*
 * bcryptprimitives.dll stand-in for running Windows builds under Wine (.ci/wine-smoke.sh).
 *
 * Rust's standard library fills its random state at start-up with ProcessPrng from
 * bcryptprimitives.dll (Windows 10 and later). Wine 8, Debian's, has the DLL without that
 * export, so every Rust .exe exits at once with status 53. This DLL, placed next to the .exe
 * (the directory of the executable is searched first), exports ProcessPrng and fills the
 * buffer with RtlGenRandom, which advapi32.dll exports as SystemFunction036 and Wine
 * implements.
 *
 * Test tooling only: real Windows has ProcessPrng and needs no shim. Build:
 *
 *     x86_64-w64-mingw32-gcc -shared -o DIR/bcryptprimitives.dll processprng_shim.c -ladvapi32
 */
#include <windows.h>

/* RtlGenRandom (documented in ntsecapi.h under that name); declared here so no other header is
 * needed. It takes a 32-bit length. */
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

/* BOOL ProcessPrng(PBYTE pbData, SIZE_T cbData): fill pbData with cbData random bytes. Windows
 * documents that it always returns TRUE; here FALSE means RtlGenRandom failed, which the Rust
 * standard library reports instead of running on without randomness. */
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG piece = length > (SIZE_T)0x7fffffff ? 0x7fffffffUL : (ULONG)length;
        if (!SystemFunction036(data, piece)) {
            return FALSE;
        }
        data += piece;
        length -= piece;
    }
    return TRUE;
}
