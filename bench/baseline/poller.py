#!/usr/bin/python3
"""Baseline: what a user would write instead of apsis-exportd.

A plain asyncio + aiohttp script that runs N APSIS One exports at once: one OAuth token
(client credentials), N submits, then each poll URL is polled with exponential back-off and
full jitter (404 = still running, 200 = the file, 410 = gone) and the file is streamed to
OUT/<name>.part and renamed into place.

At the end it prints one JSON line with what it did and what it cost (CPU, peak RSS, and how
late the back-off sleeps woke up). Needs Debian's python3-aiohttp (3.8), so run it with
/usr/bin/python3:

    /usr/bin/python3 bench/baseline/poller.py --base-url http://127.0.0.1:PORT --jobs 1000 \
        --out /tmp/baseline-out --client-id demo-client --client-secret demo-secret \
        --initial-delay 2 --multiplier 2 --max-delay 10
"""

import argparse
import asyncio
import json
import os
import random
import resource
import sys
import time

import aiohttp
from yarl import URL

CSV = "text/csv;charset=UTF-8;header=present"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
GATEWAY_DENY = "explicit deny"
RETRYABLE = {429, 500, 502, 503, 504}
SUBMIT_ATTEMPTS = 5
CHUNK = 64 * 1024


class Gone(Exception):
    pass


class Stats:
    def __init__(self):
        self.submits = 0
        self.polls = 0
        self.published = 0
        self.failed = 0
        self.lateness = []  # seconds, one per back-off sleep
        self.last_submit_at = 0.0  # wall clock (time.time()), for "all ready → all published"
        self.last_publish_at = 0.0
        self.errors = {}

    def error(self, what):
        self.errors[what] = self.errors.get(what, 0) + 1


class Exporter:
    def __init__(self, args, session, stats):
        self.args = args
        self.session = session
        self.stats = stats
        self.base = args.base_url.rstrip("/")
        self.token = None
        self.token_lock = asyncio.Lock()
        self.submit_url = f"{self.base}/audience/profiles/reports/{args.kind}"
        self.body = json.loads(args.body)
        self.download_headers = {
            "Accept": XLSX if args.format == "xlsx" else CSV,
            "Accept-Encoding": "gzip" if args.gzip else "identity",
        }
        self.ext = ("xlsx" if args.format == "xlsx" else "csv") + (".gz" if args.gzip else "")

    # --- auth ---------------------------------------------------------------------------

    async def fetch_token(self):
        body = {"grant_type": "client_credentials", "client_id": self.args.client_id,
                "client_secret": self.args.client_secret}
        async with self.session.post(f"{self.base}/oauth/token", json=body) as resp:
            if resp.status != 200:
                raise RuntimeError(f"token request failed: {resp.status} {await resp.text()}")
            self.token = (await resp.json())["access_token"]

    async def renew_token(self, stale):
        async with self.token_lock:
            if self.token == stale:  # someone else may have renewed it already
                await self.fetch_token()

    def auth(self):
        return {"Authorization": f"Bearer {self.token}"}

    @staticmethod
    async def token_rejected(resp):
        if resp.status == 401:
            return True
        return resp.status == 403 and GATEWAY_DENY in await resp.text()

    # --- back-off -----------------------------------------------------------------------

    def ceiling(self, attempt):
        a = self.args
        return min(a.max_delay, a.initial_delay * a.multiplier ** attempt)

    async def backoff(self, attempt, retry_after=None):
        delay = retry_after if retry_after is not None else random.uniform(0, self.ceiling(attempt))
        intended = time.monotonic() + delay
        await asyncio.sleep(delay)
        self.stats.lateness.append(time.monotonic() - intended)

    @staticmethod
    def retry_after(resp):
        value = resp.headers.get("Retry-After")
        return float(value) if value and value.isdigit() else None

    # --- one export ---------------------------------------------------------------------

    async def submit(self):
        for attempt in range(SUBMIT_ATTEMPTS):
            token = self.token
            self.stats.submits += 1
            wait = None
            try:
                async with self.session.post(self.submit_url, json=self.body, headers=self.auth()) as resp:
                    if 200 <= resp.status < 300:
                        answer = await resp.json()
                        return answer["file_download_url"]
                    if await self.token_rejected(resp):
                        await self.renew_token(token)
                        continue
                    if resp.status not in RETRYABLE:
                        raise RuntimeError(f"submit failed: {resp.status} {await resp.text()}")
                    wait = self.retry_after(resp)
                    self.stats.error(f"submit {resp.status}")
            except aiohttp.ClientConnectionError as e:
                self.stats.error(f"submit {type(e).__name__}")
            await self.backoff(attempt, wait)
        raise RuntimeError(f"submit failed after {SUBMIT_ATTEMPTS} attempts")

    async def download(self, resp, path):
        part = path + ".part"
        with open(part, "wb") as f:
            async for chunk in resp.content.iter_chunked(CHUNK):
                f.write(chunk)
        os.replace(part, path)

    async def poll(self, poll_url, path):
        poll_url = URL(self.base).join(URL(poll_url))  # the poll URL may be relative
        deadline = time.monotonic() + self.args.timeout
        attempt = 0
        while time.monotonic() < deadline:
            await self.backoff(attempt)
            attempt += 1
            token = self.token
            self.stats.polls += 1
            try:
                async with self.session.get(poll_url, headers={**self.auth(), **self.download_headers}) as resp:
                    if resp.status == 200:
                        await self.download(resp, path)
                        return
                    await resp.read()  # drain so the connection goes back to the pool
                    if resp.status == 404:
                        continue
                    if resp.status == 410:
                        raise Gone(poll_url)
                    if await self.token_rejected(resp):
                        await self.renew_token(token)
                        continue
                    if resp.status in RETRYABLE:
                        self.stats.error(f"poll {resp.status}")
                        continue
                    raise RuntimeError(f"poll failed: {resp.status} {await resp.text()}")
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as e:
                # a cut download is simply fetched again from the start
                self.stats.error(f"poll {type(e).__name__}")
        raise RuntimeError(f"export not ready after {self.args.timeout}s")

    async def run_one(self, n):
        path = os.path.join(self.args.out, f"export-{n:06d}.{self.ext}")
        try:
            poll_url = await self.submit()
            self.stats.last_submit_at = max(self.stats.last_submit_at, time.time())
            await self.poll(poll_url, path)
            self.stats.published += 1
            self.stats.last_publish_at = max(self.stats.last_publish_at, time.time())
        except Gone:
            self.stats.failed += 1
            self.stats.error("gone (410)")
        except Exception as e:  # one bad job must not take the others down
            self.stats.failed += 1
            self.stats.error(str(e)[:120])


def percentile(values, p):
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


async def run(args, stats):
    connector = aiohttp.TCPConnector(limit=args.connections)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        exporter = Exporter(args, session, stats)
        await exporter.fetch_token()
        await asyncio.gather(*(exporter.run_one(n) for n in range(args.jobs)))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base-url", required=True)
    p.add_argument("--jobs", type=int, default=100)
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--client-id", default=os.environ.get("APSIS_CLIENT_ID"))
    p.add_argument("--client-secret", default=os.environ.get("APSIS_CLIENT_SECRET"))
    p.add_argument("--kind", default="duplicates", choices=["duplicates", "consents"])
    p.add_argument("--body", default="{}", help="export request body as JSON (default: {})")
    p.add_argument("--format", default="csv", choices=["csv", "xlsx"])
    p.add_argument("--gzip", action="store_true", help="ask for gzip and keep the .gz")
    p.add_argument("--initial-delay", type=float, default=1.0, help="seconds")
    p.add_argument("--multiplier", type=float, default=2.0)
    p.add_argument("--max-delay", type=float, default=30.0, help="seconds")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--timeout", type=float, default=86400.0, help="give up polling a job after this many seconds")
    args = p.parse_args()
    if not args.client_id or not args.client_secret:
        p.error("--client-id and --client-secret (or APSIS_CLIENT_ID / APSIS_CLIENT_SECRET) are required")
    os.makedirs(args.out, exist_ok=True)

    stats = Stats()
    started = time.monotonic()
    asyncio.run(run(args, stats))
    wall = time.monotonic() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    for what, count in sorted(stats.errors.items()):
        print(f"poller: {count} x {what}", file=sys.stderr)
    print(json.dumps({
        "jobs": args.jobs,
        "published": stats.published,
        "failed": stats.failed,
        "submits": stats.submits,
        "polls": stats.polls,
        "wall_s": round(wall, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_kb": usage.ru_maxrss,
        "sleeps": len(stats.lateness),
        "lateness_p50_ms": round(percentile(stats.lateness, 50) * 1000, 2),
        "lateness_p99_ms": round(percentile(stats.lateness, 99) * 1000, 2),
        "last_submit_at": round(stats.last_submit_at, 3),
        "last_publish_at": round(stats.last_publish_at, 3),
    }))
    return 0 if stats.published == args.jobs else 1


if __name__ == "__main__":
    sys.exit(main())
