#!/usr/bin/env python3
"""An HTTP sink for the docs (tests/docs/run_blocks.sh, docs/getting-started.md) on 127.0.0.1, a
free port: answers 200 {} to every request and appends one JSON line per request (method, path,
headers, body) to LOG_FILE. It stands in for a chat's incoming webhook (docs/howto/notify.md):
no chat server (Slack, Mattermost, ...) is packaged for Debian 12, and the webhook driver's
request is the same whoever receives it. Every other peer of the docs is the real one.
Usage: sink.py PORT_FILE LOG_FILE  (writes the port it bound to PORT_FILE)"""
import http.server, json, sys, threading

lock = threading.Lock()

class Sink(http.server.BaseHTTPRequestHandler):
    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode("utf-8", "replace") if n else ""
        with lock, open(sys.argv[2], "a") as f:
            f.write(json.dumps({"method": self.command, "path": self.path,
                                "headers": dict(self.headers), "body": body}) + "\n")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_POST = do_PUT = do_GET = do_DELETE = handle_any

    def log_message(self, *a):
        pass

srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
with open(sys.argv[1], "w") as f:
    f.write(str(srv.server_address[1]))
srv.serve_forever()
