"""Which delivery point a message to a service goes to."""
from __future__ import annotations

from gateway.errors import ErrorCode, GatewayError
from registry.snapshot import DeliveryPointView, ServiceView


def resolve_delivery_point(service: ServiceView, route_id: str | None, points: dict[int, DeliveryPointView]) -> DeliveryPointView:
    """``routeId`` picks a route; without one, the service's default delivery point."""
    if route_id is not None:
        point_id = service.routes.get(route_id)
        if point_id is None:
            raise GatewayError(ErrorCode.UNKNOWN_ROUTE, f"service {service.key} has no route {route_id!r}")
    elif service.default_delivery_point_id is not None:
        point_id = service.default_delivery_point_id
    else:
        raise GatewayError(ErrorCode.UNKNOWN_ROUTE, f"service {service.key} routes by routeId and none was given")
    return points[point_id]
