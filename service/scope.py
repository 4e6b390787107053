"""What a user may see: everything (admins, ``all_sites`` users) or their unit's sites and cameras."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, false, func, or_, true

from service.db.models import Camera, Case, User

SITE, CAMERA = "site", "camera"


@dataclass(frozen=True)
class Scope:
    everything: bool
    sites: frozenset[str] = frozenset()
    cameras: frozenset[str] = frozenset()

    @classmethod
    def of(cls, user: User) -> Scope:
        if user.role == "admin" or user.all_sites:
            return cls(everything=True)
        return cls(everything=False, sites=frozenset(s.value for s in user.scopes if s.kind == SITE),
                   cameras=frozenset(s.value for s in user.scopes if s.kind == CAMERA))

    def covers(self, site: str | None, camera_id: str | None) -> bool:
        return self.everything or (camera_id is not None and camera_id in self.cameras) or (site is not None and site in self.sites)

    def covers_camera(self, camera: Camera) -> bool:
        return self.covers(camera.site, camera.id)

    def covers_case(self, case: Case) -> bool:
        return self.covers(case_site(case), case.camera_id)

    def camera_clause(self) -> ColumnElement[bool]:
        """Filter on ``Camera`` (events and evidence join their camera)."""
        if self.everything:
            return true()
        if not self.sites and not self.cameras:
            return false()
        return or_(Camera.site.in_(self.sites), Camera.id.in_(self.cameras))

    def case_clause(self) -> ColumnElement[bool]:
        """Filter on ``Case`` outer-joined to ``Camera``: complaints without a camera count by their own site."""
        if self.everything:
            return true()
        if not self.sites and not self.cameras:
            return false()
        return or_(Case.camera_id.in_(self.cameras), func.coalesce(Camera.site, Case.site).in_(self.sites))


def case_site(case: Case) -> str | None:
    return case.camera.site if case.camera is not None else case.site
