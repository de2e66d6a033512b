"""Log throughput: one stage prints 200,000 lines; a WebSocket client and PostgreSQL must get each once.

Run: .venv/bin/python bench/log_throughput.py [--lines 200000]
Serves the app with werkzeug on 127.0.0.1, watches the run over its WebSocket,
and prints lines per second into PostgreSQL and to the client.
"""

import argparse
import json
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import make_repo  # noqa: E402
from bench._platform import platform  # noqa: E402

PIPELINE = '''import { Pipeline } from "deno-ci";

const pipeline = new Pipeline();
pipeline.stage("flood", () => {
  const encoder = new TextEncoder();
  const chunk = 1000;
  for (let start = 1; start <= %(lines)d; start += chunk) {
    let text = "";
    for (let index = start; index < start + chunk && index <= %(lines)d; index++) text += `line ${index}\\n`;
    Deno.stdout.writeSync(encoder.encode(text));
  }
});
export default pipeline;
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000)
    args = parser.parse_args()
    import requests
    import websocket
    from werkzeug.serving import make_server

    from app.auth.passwords import hash_password
    from app.extensions import db
    from app.models import Run, User
    from app.projects import add_project
    from app.runs.events import make_event
    from app.runs.service import create_run

    with platform(workers=1) as (app, scratch):
        app.config["WTF_CSRF_ENABLED"] = False
        db.session.add(User(username="bench", password_hash=hash_password("bench-password"), is_admin=True))
        db.session.commit()
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_port}"
        session = requests.Session()
        session.post(f"{base}/login", data={"username": "bench", "password": "bench-password"})
        project = add_project("flood", str(make_repo(scratch / "repo", {"deno-pipeline.ts": PIPELINE % {"lines": args.lines}})))
        run = create_run(project, trigger="api", event=make_event("push", branch="main"))
        cookie = "; ".join(f"{name}={value}" for name, value in session.cookies.items())
        socket = websocket.create_connection(f"ws://127.0.0.1:{server.server_port}/ws/runs/{run.id}/logs?after=0",
                                             cookie=cookie, timeout=300)
        seen: list[str] = []
        first_line_at = None
        while True:
            message = json.loads(socket.recv())
            if message["type"] == "lines":
                lines = [line["text"] for line in message["lines"] if line["text"].startswith("line ")]
                if lines and first_line_at is None:
                    first_line_at = time.perf_counter()
                seen += lines
            elif message["type"] == "end":
                break
        received_at = time.perf_counter()
        run = db.session.get(Run, run.id, populate_existing=True)
        stage = run.stages[0]
        stored = db.session.scalar(db.text("SELECT count(*) FROM log_lines WHERE run_id = :id AND text LIKE 'line %'"),
                                   {"id": run.id})
        server.shutdown()
    expected = [f"line {index}" for index in range(1, args.lines + 1)]
    stage_seconds = (stage.finished_at - stage.started_at).total_seconds()
    print(f"stage {stage.status}: {args.lines} lines printed and stored in {stage_seconds:.2f} s "
          f"= {stored / stage_seconds:,.0f} lines/s into PostgreSQL ({stored} stored)")
    print(f"WebSocket client: {len(seen)} lines in {received_at - first_line_at:.2f} s after the first "
          f"= {len(seen) / (received_at - first_line_at):,.0f} lines/s; every line exactly once and in order: {seen == expected}")
    print("target: at least 20,000 lines/s with every line present exactly once")


if __name__ == "__main__":
    main()
