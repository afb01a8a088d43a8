from django.urls import path

from dunning.web import views

app_name = "web"

urlpatterns = [
    path("pay/<str:token>", views.pay_page, name="pay"),
    path("card/<str:token>", views.card_page, name="card"),
    path("u/<str:token>", views.unsubscribe, name="unsubscribe"),
]
