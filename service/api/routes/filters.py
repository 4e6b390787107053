"""Query filters shared by the list routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import Depends, HTTPException, Query
from pydantic import BaseModel
from sqlalchemy import ColumnElement, Select
from sqlalchemy.orm import QueryableAttribute

SelectT = TypeVar("SelectT", bound=Select[Any])


class ListFilters(BaseModel):
    camera: str | None
    site: str | None
    since: datetime | None
    until: datetime | None
    limit: int
    offset: int


def list_filters(
    camera: Annotated[str | None, Query(description="Camera id")] = None,
    site: Annotated[str | None, Query(description="Site or unit")] = None,
    since: Annotated[datetime | None, Query(description="From this time (ISO 8601, with zone)")] = None,
    until: Annotated[datetime | None, Query(description="Before this time (ISO 8601, with zone)")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> ListFilters:
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise HTTPException(422, f"'{name}' needs a time zone, e.g. 2026-01-01T08:00:00+08:00")
    if since and until and since > until:
        raise HTTPException(422, "'since' is after 'until'")
    return ListFilters(camera=camera, site=site, since=since, until=until, limit=limit, offset=offset)


Column = ColumnElement[Any] | QueryableAttribute[Any]


def apply_filters(query: SelectT, filters: ListFilters, camera: Column, site: Column, time: Column) -> SelectT:
    """Narrow a list query by camera, site and time range, on the columns that hold them for that resource."""
    if filters.camera:
        query = query.where(camera == filters.camera)
    if filters.site:
        query = query.where(site == filters.site)
    if filters.since:
        query = query.where(time >= filters.since)
    if filters.until:
        query = query.where(time < filters.until)
    return query


FiltersDep = Annotated[ListFilters, Depends(list_filters)]
