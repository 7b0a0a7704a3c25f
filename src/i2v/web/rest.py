"""What every REST router shares (web/api.py's and the advisor's web/advice.py): the one error body, the error
statuses each route documents, and how a route finds the job service."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from i2v.jobs.service import JobService


class FieldProblem(BaseModel):
    field: str = Field(description="The part of the request at fault: a GenerationRequest field, `image`, `request`, a query parameter …")
    message: str


class ErrorBody(BaseModel):
    """Every error the API answers has this shape."""

    detail: str = Field(description="What was wrong and what to do, for people")
    code: str = Field(description="Stable machine-readable reason, e.g. invalid_input, upload_too_large, job_not_found, queue_full")
    errors: list[FieldProblem] = Field(default_factory=list, description="One entry per bad field, when fields are at fault")


def error_response(status: int, code: str, detail: str, errors: list[tuple[str, str]] | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    body = ErrorBody(detail=detail, code=code, errors=[FieldProblem(field=f, message=m) for f, m in errors or []])
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def _error(description: str) -> dict[str, Any]:
    """An error status as the OpenAPI document lists it: its meaning, and the one error body."""
    return {"model": ErrorBody, "description": description}


#: Statuses every route can answer.
COMMON = {
    401: _error("Missing or wrong token (only when the server has I2V_API_TOKEN set)"),
    403: _error("`cross_site`: a POST or DELETE whose Origin (or Referer) is neither the server's own nor in I2V_CORS_ORIGINS"),
    421: _error("`host_not_allowed`: the Host header names a host the server does not answer to (I2V_ALLOWED_HOSTS)"),
    429: _error("`too_many_attempts`: too many wrong tokens from this address; Retry-After says when to try again"),
    413: _error("The body is over the server's limit (I2V_MAX_UPLOAD_BYTES plus the form's overhead)"),
    422: _error("A parameter is invalid"),
    503: _error("The job database cannot be read (corrupt or gone): the operator must restore it"),
}
NOT_FOUND = {404: _error("No job with that id")}
UPLOAD = {
    400: _error("The body is not valid multipart form data"),
    413: _error("The upload is over I2V_MAX_UPLOAD_BYTES"),
    422: _error("The image or a setting is invalid (errors lists each field)"),
}


def service_of(request: Request) -> JobService:
    return request.app.state.service
