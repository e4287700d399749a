"""Demo people speaking to the instance API with bearer tokens (no cookies, no CSRF token)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.service.support import person_id
from tests.web.session import Client


class ApiUser:
    def __init__(self, client: Client, employee_no: str, token: str, person: int) -> None:
        self.client = client
        self.employee_no = employee_no
        self.id = person
        self.headers = {"authorization": f"Bearer {token}"}

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(path, params=params, headers=self.headers)

    async def post(self, path: str, json: Any = None, *, key: str | None = None) -> httpx.Response:
        headers = dict(self.headers)
        if key is not None:
            headers["idempotency-key"] = key
        return await self.client.post(path, json=json, headers=headers)

    async def put(self, path: str, json: Any) -> httpx.Response:
        return await self.client.put(path, json=json, headers=self.headers)

    async def send(self, method: str, path: str, content: bytes, content_type: str) -> httpx.Response:
        headers = {**self.headers, "content-type": content_type}
        return await self.client.request(method, path, content=content, headers=headers)

    async def my_task(self, instance_id: int, state: str = "open") -> dict[str, Any]:
        """The caller's one task on the instance (from the inbox API)."""
        response = await self.get("/api/v1/tasks", state=state)
        assert response.status_code == 200, response.text
        tasks = [t for t in response.json()["items"] if t["instance_id"] == instance_id]
        assert len(tasks) == 1, f"{self.employee_no} has {len(tasks)} tasks on {instance_id}: {tasks}"
        return tasks[0]

    async def act(self, task_id: int, action: str, **fields: Any) -> httpx.Response:
        return await self.post(f"/api/v1/tasks/{task_id}/actions", {"action": action, **fields})

    async def detail(self, instance_id: int) -> dict[str, Any]:
        response = await self.get(f"/api/v1/instances/{instance_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


async def api_user(client: Client, employee_no: str, password: str = "formflow") -> ApiUser:
    response = await client.post("/api/v1/auth/token", json={"username": employee_no, "password": password})
    assert response.status_code == 201, response.text
    return ApiUser(client, employee_no, response.json()["token"], await person_id(employee_no))


def ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    body: dict[str, Any] = response.json()
    return body
