#!/usr/bin/env python3
"""A tiny HTTP peer for the docs tests (tests/docs/run_blocks.sh), on 127.0.0.1, a free port.
- /externaldns/...: an ExternalDNS webhook provider (protocol version 1) for the domain
  example.org, records in memory: GET / (domain filter), GET /records, POST /records (changes).
- /docker/...: a stand-in for the Docker Engine API's services (v1.41), enough for the
  scale-service driver's Swarm backend: one replicated service "web" (1 replica), GET /_ping,
  GET /services/NAME, POST /services/ID/update?version=N (refused when N is stale).
- any other path: a sink answering 200 {} and appending one JSON line per request (method, path,
  headers, body) to LOG_FILE.
Usage: sink.py PORT_FILE LOG_FILE  (writes the port it bound to PORT_FILE)"""
import http.server, json, sys, threading

MEDIA = "application/external.dns.webhook+json;version=1"
records = []
services = {"web": {"ID": "web", "Version": {"Index": 1},
                    "Spec": {"Name": "web", "Mode": {"Replicated": {"Replicas": 1}},
                             "TaskTemplate": {"ContainerSpec": {"Image": "nginx:1.25"}}}}}
lock = threading.Lock()

def key(e):
    return (e["dnsName"].rstrip(".").lower(), e["recordType"], e.get("setIdentifier", ""))

class Peer(http.server.BaseHTTPRequestHandler):
    def reply(self, status, body=b"", ctype="application/json"):
        self.send_response(status)
        if body:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode("utf-8", "replace") if n else ""
        if self.path.startswith("/docker/v1.41"):
            return self.docker(self.path[len("/docker/v1.41"):], body)
        if self.path.startswith("/externaldns"):
            return self.externaldns(self.path[len("/externaldns"):] or "/", body)
        with open(sys.argv[2], "a") as f:
            f.write(json.dumps({"method": self.command, "path": self.path,
                                "headers": dict(self.headers), "body": body}) + "\n")
        self.reply(200, b"{}")

    def externaldns(self, path, body):
        with lock:
            if path == "/" and self.command == "GET":
                return self.reply(200, json.dumps({"include": ["example.org"]}).encode(), MEDIA)
            if path == "/records" and self.command == "GET":
                return self.reply(200, json.dumps(records).encode(), MEDIA)
            if path == "/records" and self.command == "POST":
                ch = json.loads(body)
                for e in ch.get("delete") or []:
                    records[:] = [r for r in records if key(r) != key(e)]
                for old, new in zip(ch.get("updateOld") or [], ch.get("updateNew") or []):
                    records[:] = [new if key(r) == key(old) else r for r in records]
                for e in ch.get("create") or []:
                    records.append(e)
                return self.reply(204)
            return self.reply(404, b"404 page not found\n", "text/plain")

    def docker(self, path, body):
        from urllib.parse import urlsplit, parse_qs, unquote
        u = urlsplit(path)
        parts = [unquote(p) for p in u.path.split("/") if p]
        with lock:
            if parts == ["_ping"]:
                return self.reply(200, b"OK", "text/plain")
            if len(parts) >= 2 and parts[0] == "services" and parts[1] in services:
                svc = services[parts[1]]
                if len(parts) == 2 and self.command == "GET":
                    return self.reply(200, json.dumps(svc).encode())
                if parts[2:] == ["update"] and self.command == "POST":
                    if parse_qs(u.query).get("version") != [str(svc["Version"]["Index"])]:
                        return self.reply(500, json.dumps({"message": "update out of sequence"}).encode())
                    svc["Spec"] = json.loads(body)
                    svc["Version"]["Index"] += 1
                    return self.reply(200, b'{"Warnings":null}')
            return self.reply(404, json.dumps({"message": "service not found"}).encode())

    do_POST = do_PUT = do_GET = do_DELETE = handle_any

    def log_message(self, *a):
        pass

srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Peer)
with open(sys.argv[1], "w") as f:
    f.write(str(srv.server_address[1]))
srv.serve_forever()
