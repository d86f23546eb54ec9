"""Page-number pagination answering Cobee's shape: ``{"employees": [...], "pagination": {...}}``."""

from __future__ import annotations

import math
from typing import Any

from django.db.models import QuerySet
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .serializers import PageSerializer


class PagePagination(BasePagination):
    """``?page=1&pageSize=50``; a bad value is a 400 naming the parameter."""

    results_key = "results"

    def paginate_queryset(self, queryset: QuerySet[Any], request: Request, view: APIView | None = None) -> list[Any]:
        params = PageSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        self.page: int = params.validated_data["page"]
        self.page_size: int = params.validated_data["pageSize"]
        self.total = queryset.count()
        start = (self.page - 1) * self.page_size
        return list(queryset[start : start + self.page_size])

    def get_paginated_response(self, data: Any) -> Response:
        return Response(
            {
                self.results_key: data,
                "pagination": {
                    "page": self.page,
                    "pageSize": self.page_size,
                    "totalItems": self.total,
                    "totalPages": math.ceil(self.total / self.page_size),
                },
            }
        )


class EmployeePagination(PagePagination):
    results_key = "employees"
