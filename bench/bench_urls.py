"""The product's routes plus two bare Django JSON views (sync and async): what the framework alone costs."""

from django.http import JsonResponse
from django.urls import path

from powernode.urls import handler404, handler500  # noqa: F401
from powernode.urls import urlpatterns as product_urls


def bare(request):  # noqa: ANN001, ANN201
    return JsonResponse({"ok": True})


async def bare_async(request):  # noqa: ANN001, ANN201
    return JsonResponse({"ok": True})


urlpatterns = [path("bench/bare", bare), path("bench/bare-async", bare_async), *product_urls]
