"""What the server's HTTP listeners (Prometheus /metrics, pipelines' webhook triggers) share:
an http.server running serve_forever in a thread of its own, stopped the same way."""

from __future__ import annotations

import threading
from http.server import HTTPServer


class HttpListener:
    """Holds a running listener; subclasses set _httpd and _thread in their start()."""

    _httpd: HTTPServer | None = None
    _thread: threading.Thread | None = None

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(5)
            self._httpd = None
