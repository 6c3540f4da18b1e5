"""A tiny order service for the docker-compose demo: accepts PATCH /orders/<id> and logs it.

It honours Idempotency-Key (a repeated key answers 200 without applying twice), as a real
order service behind an at-least-once dispatcher should.
"""
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

orders = {}
seen_keys = set()


class Handler(BaseHTTPRequestHandler):
    def do_PATCH(self):
        if not self.path.startswith("/orders/"):
            return self.answer(404, {"error": "unknown path"})
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
        key = self.headers.get("idempotency-key")
        order_id = self.path[len("/orders/"):]
        if key in seen_keys:
            return self.answer(200, {"order_id": order_id, "duplicate": True})
        seen_keys.add(key)
        orders[order_id] = body.get("order_status", "processing")
        print(f"order {order_id} -> {orders[order_id]} (trace {self.headers.get('traceparent')})", flush=True)
        self.answer(200, {"order_id": order_id, "status": orders[order_id]})

    def answer(self, status, doc):
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("0.0.0.0", 8081), Handler).serve_forever()
