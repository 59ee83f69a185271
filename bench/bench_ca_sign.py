"""Signs 1,000 Ed25519 CSRs with LocalCaAdapter and VaultCaAdapter (its own OpenBao); prints signatures/s.

Run: ``.venv/bin/python bench/bench_ca_sign.py [--count N] [--threads T]``. Targets: local >= 500/s,
Vault >= 100/s. CSRs are made before the clock starts; each signature includes the CSR checks.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apps.pki.adapters.base import CaAdapter  # noqa: E402
from apps.pki.adapters.local import LocalCaAdapter, init_local_ca  # noqa: E402
from apps.pki.adapters.vault import VaultCaAdapter, bootstrap  # noqa: E402
from tests.csr import make_csr  # noqa: E402
from tests.openbao import OpenBaoServer  # noqa: E402

TTL = dt.timedelta(days=30)


def make_csrs(count: int) -> list[str]:
    return [make_csr(common_name=f"agent-{i}") for i in range(count)]


def run(adapter: CaAdapter, csrs: list[str], threads: int) -> float:
    def sign(i_csr: tuple[int, str]) -> str:
        i, csr = i_csr
        return adapter.sign_csr(
            csr_pem=csr, common_name=f"host-{i:06d}", ip_sans=[f"fd00:be::{i + 1:x}"], usage="server", ttl=TTL
        ).serial

    sign((0, csrs[0]))  # warm-up: loads the CA / opens the keep-alive connection
    start = time.perf_counter()
    if threads == 1:
        serials = [sign(item) for item in enumerate(csrs)]
    else:
        with ThreadPoolExecutor(threads) as pool:
            serials = list(pool.map(sign, enumerate(csrs)))
    elapsed = time.perf_counter() - start
    assert len(set(serials)) == len(csrs), "every signature must carry its own serial"
    return len(csrs) / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1, help="also run with this many threads (Vault)")
    args = parser.parse_args()
    csrs = make_csrs(args.count)
    with tempfile.TemporaryDirectory(prefix="bench-ca-") as tmp:
        init_local_ca(Path(tmp) / "pki")
        local_rate = run(LocalCaAdapter(Path(tmp) / "pki"), csrs, 1)
        print(
            f"LocalCaAdapter : {local_rate:8.1f} signatures/s  ({args.count} CSRs, 1 thread; target >= 500)"
        )
        with OpenBaoServer(Path(tmp) / "openbao") as server:
            bootstrap(url=server.url, token=server.token)
            vault = VaultCaAdapter(server.url, server.token)
            vault_rate = run(vault, csrs, 1)
            print(
                f"VaultCaAdapter : {vault_rate:8.1f} signatures/s  ({args.count} CSRs, 1 thread, keep-alive "
                "session; target >= 100)"
            )
            if args.threads > 1:
                threaded = run(vault, csrs, args.threads)
                print(
                    f"VaultCaAdapter : {threaded:8.1f} signatures/s  "
                    f"({args.count} CSRs, {args.threads} threads)"
                )
    ok = local_rate >= 500 and vault_rate >= 100
    print("targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
