#!/usr/bin/env python3
"""A tiny HTTP sink for the docs tests: answers 200 to every request and appends one JSON line
per request (method, path, headers, body) to the file given as the second argument.
Usage: sink.py PORT_FILE LOG_FILE  (binds 127.0.0.1 on a free port, writes the port to PORT_FILE)"""
import http.server, json, sys

class Sink(http.server.BaseHTTPRequestHandler):
    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode("utf-8", "replace") if n else ""
        with open(sys.argv[2], "a") as f:
            f.write(json.dumps({"method": self.command, "path": self.path,
                                "headers": dict(self.headers), "body": body}) + "\n")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")
    do_POST = do_PUT = do_GET = handle_any
    def log_message(self, *a):
        pass

srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
with open(sys.argv[1], "w") as f:
    f.write(str(srv.server_address[1]))
srv.serve_forever()
