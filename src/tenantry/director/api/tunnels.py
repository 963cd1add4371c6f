"""Admin routes for tunnels: a local port at the Director relayed to one allow-listed client resource."""

from __future__ import annotations

from fastapi import APIRouter

from tenantry.director.api.deps import Admin, DirectorDep
from tenantry.director.api.schemas import TunnelCreate, TunnelOut

router = APIRouter(prefix="/api/v1/tenants/{name}/tunnels", tags=["tunnels"])


@router.get("")
async def list_tunnels(_: Admin, director: DirectorDep, name: str) -> list[TunnelOut]:
    row = director.tenant_or_404(name)
    return [TunnelOut(**t) for t in director.tunnels.describe_all(row.id)]


@router.post("", status_code=201)
async def create_tunnel(_: Admin, director: DirectorDep, name: str, body: TunnelCreate) -> TunnelOut:
    row = director.tenant_or_404(name)
    tunnel = await director.tunnels.create(row, body.target, body.via, body.listen_port)
    return TunnelOut(**tunnel.describe())


@router.delete("/{tunnel_id}")
async def delete_tunnel(_: Admin, director: DirectorDep, name: str, tunnel_id: str) -> TunnelOut:
    row = director.tenant_or_404(name)
    tunnel = await director.tunnels.delete(row.id, tunnel_id)
    return TunnelOut(**tunnel.describe())
