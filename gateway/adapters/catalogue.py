"""The adapters a delivery point can name, by name. Each adapter package exposes
``create(options, http) -> BackendAdapter``; options are the delivery point's ``adapter`` settings with
``${ENV_NAME}`` references already resolved."""
from __future__ import annotations

import importlib
import typing
from collections.abc import Mapping

from gateway.adapters.base import BackendAdapter
from gateway.outbound.async_client import HttpRequests
from registry.schema import AdapterEntry

ADAPTER_MODULES = {name: f"gateway.adapters.{name}" for name in typing.get_args(AdapterEntry.model_fields["name"].annotation)}


def create_adapter(name: str, options: Mapping[str, str], http: HttpRequests) -> BackendAdapter:
    """Build the adapter ``name`` with its backend settings; ValueError names what is wrong with them."""
    module_name = ADAPTER_MODULES.get(name)
    if module_name is None:
        raise ValueError(f"no adapter {name!r}; known: {', '.join(sorted(ADAPTER_MODULES))}")
    return importlib.import_module(module_name).create(options, http)
