"""Server throughput: steps/s over /ws/train and over the OpenEnv /ws socket,
requests/s over HTTP /env/step with a keep-alive client.

Starts `alert-triage serve` in a subprocess on a loopback port, then drives it
from this process (one client, so this measures latency-bound throughput on the
2-core machine: server and client share it).

    python benchmarks/bench_server.py [--seconds 5] [--task easy]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time

import httpx
import websockets
from _server_process import free_port, wait_ready


async def ws_train(ws_url: str, task: str, seconds: float) -> float:
    steps, seed = 0, 0
    async with websockets.connect(f"{ws_url}/ws/train") as ws:
        end = time.perf_counter() + seconds
        start = time.perf_counter()
        while time.perf_counter() < end:
            await ws.send(json.dumps({"type": "reset", "task_id": task, "seed": seed}))
            reply = json.loads(await ws.recv())
            seed += 1
            while not reply["done"] and time.perf_counter() < end:
                alerts = reply["observation"]["alerts"]
                action = [{"alert_id": alerts[0]["id"], "action_type": "IGNORE"}] if alerts else []
                await ws.send(json.dumps({"type": "step", "action": action}))
                reply = json.loads(await ws.recv())
                steps += 1
        return steps / (time.perf_counter() - start)


async def ws_openenv(ws_url: str, task: str, seconds: float) -> float:
    """OpenEnv's /ws session socket, with its own message shapes."""
    steps, seed = 0, 0
    async with websockets.connect(f"{ws_url}/ws") as ws:
        end = time.perf_counter() + seconds
        start = time.perf_counter()
        while time.perf_counter() < end:
            await ws.send(json.dumps({"type": "reset", "data": {"task_id": task, "seed": seed}}))
            reply = json.loads(await ws.recv())
            seed += 1
            data = reply.get("data", {})
            while not data.get("done") and time.perf_counter() < end:
                alerts = data.get("observation", {}).get("alerts", [])
                decisions = (
                    [{"alert_id": alerts[0]["id"], "action_type": "IGNORE"}] if alerts else []
                )
                await ws.send(json.dumps({"type": "step", "data": {"decisions": decisions}}))
                reply = json.loads(await ws.recv())
                if reply.get("type") == "error":
                    raise RuntimeError(f"/ws error: {reply}")
                data = reply.get("data", {})
                steps += 1
        return steps / (time.perf_counter() - start)


def http_steps(url: str, task: str, seconds: float) -> float:
    requests, seed = 0, 0
    with httpx.Client(base_url=url, timeout=10) as client:
        end = time.perf_counter() + seconds
        start = time.perf_counter()
        while time.perf_counter() < end:
            body = client.post(f"/env/reset/{task}", json={"seed": seed}).json()
            seed += 1
            headers = {"X-Session-Id": body["session_id"]}
            done, observation = False, body["observation"]
            while not done and time.perf_counter() < end:
                alerts = observation["alerts"]
                action = [{"alert_id": alerts[0]["id"], "action_type": "IGNORE"}] if alerts else []
                reply = client.post("/env/step", json=action, headers=headers).json()
                done, observation = reply["done"], reply["observation"]
                requests += 1
            client.delete("/env/session", headers=headers)
        return requests / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--task", default="easy", choices=("easy", "medium", "hard"))
    args = parser.parse_args()
    port = free_port()
    url, ws_url = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "adaptive_alert_triage.cli", "serve", "--port", str(port)]
    )
    try:
        wait_ready(url, proc)
        rows = [
            ("/ws/train steps/s", asyncio.run(ws_train(ws_url, args.task, args.seconds))),
            ("/ws (OpenEnv) steps/s", asyncio.run(ws_openenv(ws_url, args.task, args.seconds))),
            ("HTTP /env/step requests/s", http_steps(url, args.task, args.seconds)),
        ]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print(f"task {args.task}, one client, {args.seconds:.0f} s per row")
    for name, rate in rows:
        print(f"{name:28} {rate:10,.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
