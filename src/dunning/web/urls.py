from django.urls import path

from dunning.web import views

app_name = "web"

urlpatterns = [
    path("pay/<str:token>", views.pay_page, name="pay"),
    path("pay/<str:token>/confirm", views.pay_confirm, name="pay_confirm"),
    path("pay/<str:token>/return", views.pay_return, name="pay_return"),
    path("card/<str:token>", views.card_page, name="card"),
    path("u/<str:token>", views.unsubscribe, name="unsubscribe"),
]
