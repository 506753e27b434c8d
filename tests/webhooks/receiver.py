"""A webhook receiver for the tests: verifies every request with the
Standard Webhooks library and prints one JSON line per request.

    python receiver.py PORT SECRET

Each line: {"verified": bool, "id": webhook-id, "type": ..., "message_id":
..., "answered": status}. POST /fail {"count": n} makes the next n requests
fail with 500 (after verifying and printing them).
"""

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

PORT, SECRET = int(sys.argv[1]), sys.argv[2]
VERIFIER = Webhook(SECRET)
LOCK = threading.Lock()
FAILURES = {"left": 0}
DELAY = {"ms": 0}


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        if self.path == "/fail":
            with LOCK:
                FAILURES["left"] = json.loads(body)["count"]
            self.answer(204)
            return
        if self.path == "/delay":
            DELAY["ms"] = json.loads(body)["ms"]
            self.answer(204)
            return
        time.sleep(DELAY["ms"] / 1000)
        try:
            event = VERIFIER.verify(body, dict(self.headers.items()))
            verified = True
        except WebhookVerificationError:
            event, verified = json.loads(body), False
        with LOCK:
            failing = FAILURES["left"] > 0
            FAILURES["left"] -= int(failing)
            status = 500 if failing or not verified else 204
            print(json.dumps({
                "verified": verified,
                "id": self.headers.get("webhook-id"),
                "type": event.get("type"),
                "message_id": event.get("data", {}).get("id"),
                "delivery_status": event.get("data", {}).get("delivery_status"),
                "answered": status,
            }), flush=True)
        self.answer(status)

    def answer(self, status):
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
print(json.dumps({"listening": PORT}), flush=True)
server.serve_forever()
