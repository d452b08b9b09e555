#!/usr/bin/env python3
"""One big export downloaded by `apsis-exportd once` and by `curl -o` from the same fake.

    bench/downloads.py --size-mb 1024 [--gzip] [--build build-bench]

The daemon's time is the whole `once` run: token, submit, one poll, download, SHA-256, (for gzip a
full check of the stream), fsync and rename. curl's is the GET of the ready poll URL alone, and
also curl followed by `sha256sum` and `sync` of the file: the checksum and durability the daemon
gives.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys

from common import ROOT, Fake, binaries, run_child, workdir, write_config

MB = 1000 * 1000


def daemon_download(build, size_mb, gzip):
    daemon, _ = binaries(build)
    work = workdir("download")
    fake = Fake(build, work, "--ready-after", "0ms", "--size", str(size_mb * MB))
    try:
        compression = ", compression: gzip" if gzip else ""
        config = write_config(work, fake.port, "1ms,2,1ms", extra_export=compression)
        code, wall, peak_kib, cpu = run_child([daemon, "once", "--config", config, "bulk"],
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stats = fake.stats()
    finally:
        fake.stop()
    on_disk = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(os.path.join(work, "exports")) for f in fs)
    shutil.rmtree(work, ignore_errors=True)
    if code != 0:
        raise RuntimeError(f"apsis-exportd once exited {code}")
    return {"tool": "apsis-exportd once", "size_mb": size_mb, "gzip": gzip, "wire_mb": round(on_disk / MB, 1),
            "seconds": round(wall, 2), "content_mb_per_s": round(size_mb / wall, 1), "peak_rss_mib": round(peak_kib / 1024, 1),
            "cpu_s": round(cpu, 2), "downloads": stats.get("downloads_completed")}


def curl_download(build, size_mb, gzip, then_verify):
    work = workdir("curl")
    fake = Fake(build, work, "--ready-after", "0ms", "--size", str(size_mb * MB))
    target = os.path.join(work, "export.csv" + (".gz" if gzip else ""))
    try:
        token = fake.token()
        poll_url = fake.submit(token)
        argv = ["curl", "-sS", "-f", "-o", target, "-H", f"Authorization: Bearer {token}",
                "-H", f"Accept-Encoding: {'gzip' if gzip else 'identity'}", poll_url]
        if then_verify:
            # What the daemon also does before it calls a file done: a checksum on record, on disk.
            argv = ["sh", "-c", '"$@" && sha256sum "$0" >/dev/null && sync "$0"', target, *argv]
        code, wall, peak_kib, cpu = run_child(argv)
    finally:
        fake.stop()
    on_disk = os.path.getsize(target) if os.path.exists(target) else 0
    shutil.rmtree(work, ignore_errors=True)
    if code != 0:
        raise RuntimeError(f"curl exited {code}")
    return {"tool": "curl -o" + (" && sha256sum && sync" if then_verify else ""), "size_mb": size_mb, "gzip": gzip,
            "wire_mb": round(on_disk / MB, 1), "seconds": round(wall, 2), "content_mb_per_s": round(size_mb / wall, 1),
            "peak_rss_mib": round(peak_kib / 1024, 1), "cpu_s": round(cpu, 2)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=1000)
    parser.add_argument("--gzip", action="store_true")
    parser.add_argument("--build", default=os.path.join(ROOT, "build-bench"))
    args = parser.parse_args()
    for result in (daemon_download(args.build, args.size_mb, args.gzip),
                   curl_download(args.build, args.size_mb, args.gzip, False),
                   curl_download(args.build, args.size_mb, args.gzip, True)):
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
