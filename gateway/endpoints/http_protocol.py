"""uvicorn's HTTP/1.1 protocol (httptools), but a request body that breaks HTTP's framing (a chunk size that is
not hexadecimal, a chunk longer than it said) is answered by the channel, not by uvicorn.

uvicorn answers any parse error with a plain-text 400 and closes the connection, while the application is left
reading a body that ends in a disconnect: the caller would get no SOAP fault and the journal no row. Here, when
the error comes inside the body of a request the application is already handling, the application is told (the
request's scope carries :data:`FRAMING_ERROR`) and answers with its fault, journalled like any malformed
request; nothing more is read from that connection, which closes after the answer.
"""
from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

FRAMING_ERROR = "gateway.framing_error"


class GatewayHttpProtocol(HttpToolsProtocol):
    """:class:`HttpToolsProtocol` with the body's framing errors handed to the application."""

    _framing_broken = False

    def data_received(self, data: bytes) -> None:
        if self._framing_broken:  # the parser is in error: what follows on this connection is not HTTP
            return
        super().data_received(data)

    def send_400_response(self, msg: str) -> None:
        cycle = self.cycle
        if cycle is None or cycle.response_started or cycle.response_complete or cycle.disconnected:
            super().send_400_response(msg)
            return
        self._framing_broken = True
        cycle.scope[FRAMING_ERROR] = "the request body's chunked framing is broken"  # type: ignore[literal-required]
        cycle.keep_alive = False
        cycle.more_body = False
        cycle.message_event.set()
