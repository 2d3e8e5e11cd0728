"""Helpers for the console's tests: signing in as a browser does (the sign-in page's
CSRF token, the form post, the session cookie), reading a page's CSRF token, opening a
case through the API with a service token."""

from __future__ import annotations

import re

import httpx

from tests.api_support import Caller
from tests.factories import case_payload

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
TITLE = re.compile(r"<title>(.*?)</title>", re.S)
PERSONAL = ("Wang", "Xiaoming", "8613800138000", "138 0013", "8000", "5678", "Century")


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has no CSRF token"
    return found.group(1)


def title_of(html: str) -> str:
    found = TITLE.search(html)
    assert found, "the page has no title"
    return found.group(1)


async def sign_in(http: httpx.AsyncClient, caller: Caller) -> None:
    page = await http.get("/ui/sign-in")
    assert page.status_code == 200, page.text
    answer = await http.post(
        "/ui/sign-in", data={"csrf": csrf_of(page.text), "token": caller.token, "language": "en"}
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/ui/cases"
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/ui" in cookie
    assert caller.token not in answer.headers["set-cookie"]


async def open_case(http: httpx.AsyncClient, service: Caller, loan: str) -> None:
    opened = await http.post("/cases", json=case_payload(loan), headers=service.headers)
    assert opened.status_code == 201, opened.text
