"""XML namespaces of the ShEP contract (shep-wire.md §2.2) and of SOAP 1.1."""

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_ENV = "http://www.w3.org/2003/05/soap-envelope"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XS = "http://www.w3.org/2001/XMLSchema"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"

SYNC_TYPES = "http://bip.bee.kz/SyncChannel/v10/Types"
ASYNC_TYPES = "http://bip.bee.kz/AsyncChannel/v10/Types"
ASYNC_CLIENT_TYPES = "http://bip.bee.kz/AsyncChannel/v10/Types/Client"
