from django.urls import path

from benchapp.baseline import api as baseline_api
from dunning.urls import urlpatterns as product_urlpatterns

urlpatterns = [path("bench/", baseline_api.urls), *product_urlpatterns]
