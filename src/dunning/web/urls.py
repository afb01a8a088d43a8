from django.urls import path

from dunning.web import views

app_name = "web"

urlpatterns = [
    path("pay/<str:token>", views.pay_page, name="pay"),
    path("pay/<str:token>/confirm", views.pay_confirm, name="pay_confirm"),
    path("pay/<str:token>/return", views.pay_return, name="pay_return"),
    path("pay/<str:token>/card", views.pay_new_card, name="pay_new_card"),
    path("pay/<str:token>/card/return", views.pay_new_card_return, name="pay_new_card_return"),
    path("card/<str:token>", views.card_page, name="card"),
    path("card/<str:token>/new", views.card_new, name="card_new_card"),
    path("card/<str:token>/new/return", views.card_new_return, name="card_new_card_return"),
    path("u/<str:token>", views.unsubscribe, name="unsubscribe"),
]
