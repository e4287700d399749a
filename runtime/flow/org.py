"""The organisation as the engine sees it: a read-only snapshot for resolving assignees.

The service builds an `OrgDirectory` from the organisation tables (and may cache it per
organisation version); the engine never queries anything. Only active people belong in it:
a rule that names someone absent resolves to nobody for that person.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from runtime.flow.shape import Shape


class Department(Shape, frozen=True, kw_only=True):
    id: int
    name: str
    code: str = ""
    parent_id: int | None = None
    head_id: int | None = None
    leader_id: int | None = None
    """The supervising leader (分管领导)."""


class Person(Shape, frozen=True, kw_only=True):
    id: int
    name: str = ""
    department_id: int | None = None
    manager_id: int | None = None
    position: str = ""
    roles: tuple[str, ...] = ()


class OrgDirectory(Shape, frozen=True, kw_only=True):
    departments: dict[int, Department] = {}
    people: dict[int, Person] = {}
    role_members: dict[str, tuple[int, ...]] = {}
    process_admins: tuple[int, ...] = ()

    @classmethod
    def build(
        cls, departments: Iterable[Department], people: Iterable[Person], process_admins: Iterable[int] = ()
    ) -> OrgDirectory:
        """A directory with `role_members` derived from each person's roles (ids ascending)."""
        by_id = {person.id: person for person in people}
        members: dict[str, list[int]] = {}
        for person in sorted(by_id.values(), key=lambda p: p.id):
            for role in person.roles:
                members.setdefault(role, []).append(person.id)
        return cls(
            departments={department.id: department for department in departments},
            people=by_id,
            role_members={role: tuple(ids) for role, ids in members.items()},
            process_admins=tuple(process_admins),
        )

    def department_of(self, person_id: int) -> Department | None:
        person = self.people.get(person_id)
        if person is None or person.department_id is None:
            return None
        return self.departments.get(person.department_id)

    def lineage(self, department_id: int | None) -> Iterator[Department]:
        """The department and its ancestors, nearest first (stops on a cycle)."""
        seen: set[int] = set()
        while department_id is not None and department_id not in seen:
            seen.add(department_id)
            department = self.departments.get(department_id)
            if department is None:
                return
            yield department
            department_id = department.parent_id

    def manager_of(self, person_id: int) -> int | None:
        """The person's manager: `manager_id`, else the nearest department head who is not them."""
        person = self.people.get(person_id)
        if person is None:
            return None
        if person.manager_id is not None and person.manager_id in self.people:
            return person.manager_id
        for department in self.lineage(person.department_id):
            if department.head_id is not None and department.head_id != person_id:
                return department.head_id if department.head_id in self.people else None
        return None
