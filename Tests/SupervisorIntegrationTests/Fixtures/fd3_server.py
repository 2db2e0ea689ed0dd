"""A worker that is not ours: serves HTTP on the inherited fd 3 and knows nothing of sd_notify."""
import os
import socket
from http.server import BaseHTTPRequestHandler, HTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"python pid {os.getpid()}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class InheritedServer(HTTPServer):
    def server_bind(self):
        pass

    def server_activate(self):
        pass


def serve():
    """HTTP on the inherited fd 3 until killed (also what tree_worker.py's servers run)."""
    sock = socket.socket(fileno=3)
    server = InheritedServer(sock.getsockname(), Handler, bind_and_activate=False)
    server.socket = sock
    server.serve_forever()


if __name__ == "__main__":
    assert os.environ.get("LISTEN_PID") == str(os.getpid()), "LISTEN_PID is not our pid"
    serve()
