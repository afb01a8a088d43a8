from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from dunning.api.routes import api

admin.site.site_header = "dunning"
admin.site.site_title = "dunning"
admin.site.index_title = "Ledger and operations"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("webhooks/", include("dunning.gateways.urls")),
    path("", include("dunning.web.urls")),
]
