"""Admin routes for the Expert Settings: the registry, all values, one value; changes are validated."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from tenantry.director import settings as registry
from tenantry.director.api.deps import Admin, DirectorDep, json_body
from tenantry.director.api.schemas import SettingsChanged, SettingsOut, SettingValue
from tenantry.director.errors import DirectorError
from tenantry.director.service import Director

router = APIRouter(prefix="/api/v1/settings", tags=["settings"])


async def _change(director: Director, changes: dict[str, Any]) -> SettingsChanged:
    new, changed = await director.change_settings(changes)
    described = registry.describe()
    return SettingsChanged(
        values=registry.public_values(new),
        changed=changed,
        restart_required=[k for k in changed if described[k]["applies"] == "restart"],
    )


@router.get("")
async def get_settings(_: Admin, director: DirectorDep) -> SettingsOut:
    return SettingsOut(values=registry.public_values(director.settings), registry=registry.describe())


@router.put("")
async def put_settings(_: Admin, director: DirectorDep, request: Request) -> SettingsChanged:
    return await _change(director, await json_body(request))


@router.get("/{key}")
async def get_setting(_: Admin, director: DirectorDep, key: str) -> SettingValue:
    described = registry.describe()
    if key not in described:
        raise DirectorError(404, f"unknown setting {key!r}; allowed settings: {', '.join(sorted(described))}")
    value = registry.public_values(director.settings)[key]
    return SettingValue(key=key, value=value, definition=described[key])


@router.put("/{key}")
async def put_setting(_: Admin, director: DirectorDep, key: str, request: Request) -> SettingsChanged:
    body = await json_body(request, allow_scalar=True)
    value = body["value"] if isinstance(body, dict) and set(body) == {"value"} else body
    return await _change(director, {key: value})
