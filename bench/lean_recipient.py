"""A PUSH recipient for benchmarks: a raw ASGI app (run on uvicorn) that reads each call and acknowledges it with a
fixed ``sendMessageResponse``, so that the recipient is not what a delivery benchmark measures. It counts the
calls it answered (``GET /`` prints the count) and checks nothing: the emulator (``emulators/push_recipient.py``)
is the recipient the tests judge deliveries by."""
from __future__ import annotations

from typing import Any

ANSWER = (
    b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
    b'<ns2:sendMessageResponse xmlns:ns2="http://bip.bee.kz/AsyncChannel/v10/Types"><response>'
    b"<messageId>bench</messageId><responseDate>2026-12-06T00:00:00.000+05:00</responseDate>"
    b"<sessionId>bench</sessionId></response></ns2:sendMessageResponse></soapenv:Body></soapenv:Envelope>"
)
HEADERS = [(b"content-type", b"text/xml; charset=utf-8"), (b"content-length", str(len(ANSWER)).encode())]
answered = 0


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Read the request, answer the acknowledgement (or the count, for ``GET``)."""
    global answered
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    if scope["method"] != "POST":
        count = f"{answered}\n".encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", str(len(count)).encode())]})
        await send({"type": "http.response.body", "body": count})
        return
    answered += 1
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": ANSWER})
